//! The filter parser against RFC 7644 section 3.4.2.2: the RFC's own examples, the
//! benchmark and edge-case files, precedence, literals, errors and limits.

use scim_filter::{
    CompValue, CompareOp, Comparison, Filter, FilterError, Limits, ValuePath, parse_filter,
    parse_filter_with,
};
use scim_schema::AttrPath;

fn path(s: &str) -> AttrPath {
    AttrPath::parse(s).expect("a valid attribute path")
}

fn cmp(p: &str, op: CompareOp, value: CompValue) -> Filter {
    Filter::Compare(Comparison {
        path: path(p),
        op,
        value,
    })
}

fn s(v: &str) -> CompValue {
    CompValue::String(v.to_owned())
}

fn pr(p: &str) -> Filter {
    Filter::Present(path(p))
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

/// Parses, and checks the canonical form parses back to the same tree.
fn parse_round_trip(input: &str) -> Filter {
    let filter = parse_filter(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    let canonical = filter.to_string();
    assert_eq!(
        parse_filter(&canonical).as_ref(),
        Ok(&filter),
        "canonical form {canonical:?}"
    );
    filter
}

fn lines(data: &str) -> impl Iterator<Item = &str> {
    data.lines().filter(|l| !l.trim().is_empty())
}

/// The filter examples of RFC 7644 section 3.4.2.2 (Figure 2), in order.
const RFC_EXAMPLES: &[&str] = &[
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
];

#[test]
fn rfc_7644_examples() {
    let mut report = String::new();
    for input in RFC_EXAMPLES {
        let filter = parse_round_trip(input);
        report.push_str(&format!("{input}\n=> {filter}\n=> {filter:#?}\n\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn rfc_examples_print_as_written() {
    // The RFC writes every example canonically, except the redundant parentheses of
    // `(emails.type eq "work")`.
    for input in RFC_EXAMPLES {
        let printed = parse_filter(input).unwrap().to_string();
        if input.contains("(emails.type") {
            assert_eq!(
                printed,
                r#"userType eq "Employee" and emails.type eq "work""#
            );
        } else {
            assert_eq!(&printed, input);
        }
    }
}

#[test]
fn urn_path_is_split_at_the_last_colon() {
    let filter = parse_filter(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
    )
    .unwrap();
    let Filter::Compare(c) = filter else {
        panic!("not a comparison: {filter:?}")
    };
    assert_eq!(
        c.path.schema.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(c.path.name, "manager");
    assert_eq!(c.path.sub_attr.as_deref(), Some("value"));
}

#[test]
fn benchmark_filters_parse_and_round_trip() {
    let data = include_str!("data/filters.txt");
    assert_eq!(lines(data).count(), 13);
    for line in lines(data) {
        parse_round_trip(line);
    }
}

#[test]
fn edge_filters_parse_and_round_trip() {
    let data = include_str!("data/filters-edge.txt");
    let mut report = String::new();
    for line in lines(data) {
        let filter = parse_round_trip(line);
        report.push_str(&format!("{line:?}\n=> {filter}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn and_binds_tighter_than_or() {
    let expected = or(
        pr("title"),
        and(cmp("userType", CompareOp::Eq, s("A")), pr("nickName")),
    );
    assert_eq!(
        parse_filter(r#"title pr or userType eq "A" and nickName pr"#),
        Ok(expected)
    );
    let expected = or(and(pr("a"), pr("b")), pr("c"));
    assert_eq!(parse_filter("a pr and b pr or c pr"), Ok(expected));
}

#[test]
fn not_binds_tighter_than_and() {
    let expected = and(not(pr("a")), pr("b"));
    assert_eq!(parse_filter("not (a pr) and b pr"), Ok(expected));
}

#[test]
fn chains_fold_to_the_left() {
    assert_eq!(
        parse_filter("a pr and b pr and c pr"),
        Ok(and(and(pr("a"), pr("b")), pr("c")))
    );
    assert_eq!(
        parse_filter("a pr or b pr or c pr"),
        Ok(or(or(pr("a"), pr("b")), pr("c")))
    );
}

#[test]
fn parentheses_override_precedence_and_print_only_where_needed() {
    let f = parse_filter("(a pr or b pr) and c pr").unwrap();
    assert_eq!(f, and(or(pr("a"), pr("b")), pr("c")));
    assert_eq!(f.to_string(), "(a pr or b pr) and c pr");

    let f = parse_filter("a pr and (b pr and c pr)").unwrap();
    assert_eq!(f, and(pr("a"), and(pr("b"), pr("c"))));
    assert_eq!(f.to_string(), "a pr and (b pr and c pr)");

    let f = parse_filter("a pr or (b pr or c pr)").unwrap();
    assert_eq!(f.to_string(), "a pr or (b pr or c pr)");

    let f = parse_filter("a pr or (b pr and c pr)").unwrap();
    assert_eq!(f.to_string(), "a pr or b pr and c pr");

    let f = parse_filter("((a pr)) and ((b pr or c pr))").unwrap();
    assert_eq!(f.to_string(), "a pr and (b pr or c pr)");
}

#[test]
fn keywords_and_operators_are_case_insensitive() {
    let expected = and(
        cmp("USERNAME", CompareOp::Eq, s("john")),
        cmp("active", CompareOp::Eq, CompValue::Bool(true)),
    );
    assert_eq!(
        parse_filter(r#"USERNAME eq "john" AND active EQ true"#),
        Ok(expected)
    );
    assert_eq!(
        parse_filter("NOT (a Pr) Or b PR"),
        Ok(or(not(pr("a")), pr("b")))
    );
    for (text, op) in [
        ("eQ", CompareOp::Eq),
        ("NE", CompareOp::Ne),
        ("Co", CompareOp::Co),
        ("sW", CompareOp::Sw),
        ("EW", CompareOp::Ew),
        ("Gt", CompareOp::Gt),
        ("gE", CompareOp::Ge),
        ("LT", CompareOp::Lt),
        ("le", CompareOp::Le),
    ] {
        assert_eq!(
            parse_filter(&format!("x {text} 1")),
            Ok(cmp("x", op, CompValue::Number(1.into())))
        );
    }
    assert_eq!(
        parse_filter("a eq TRUE or b eq False or c ne NULL"),
        Ok(or(
            or(
                cmp("a", CompareOp::Eq, CompValue::Bool(true)),
                cmp("b", CompareOp::Eq, CompValue::Bool(false))
            ),
            cmp("c", CompareOp::Ne, CompValue::Null)
        ))
    );
}

#[test]
fn not_with_or_without_space() {
    for input in [
        "not(title pr)",
        "not (title pr)",
        "not   (title pr)",
        "NOT(title pr)",
    ] {
        assert_eq!(parse_filter(input), Ok(not(pr("title"))), "{input}");
    }
    // `not` is a keyword only before `(`: elsewhere it names an attribute.
    assert_eq!(parse_filter("not pr"), Ok(pr("not")));
    assert_eq!(
        parse_filter("not eq 1"),
        Ok(cmp("not", CompareOp::Eq, CompValue::Number(1.into())))
    );
}

#[test]
fn whitespace_is_tolerated_around_and_between_tokens() {
    let expected = and(cmp("userName", CompareOp::Eq, s("bjensen")), pr("title"));
    for input in [
        r#"userName eq "bjensen" and title pr"#,
        r#"   userName   eq   "bjensen"   and   title   pr   "#,
        "\tuserName\teq\t\"bjensen\"\r\nand\ntitle pr\n",
        r#"(userName eq "bjensen")and(title pr)"#,
        r#"userName eq"bjensen" and title pr"#,
        r#"( userName eq "bjensen" ) and ( title pr )"#,
    ] {
        assert_eq!(parse_filter(input).as_ref(), Ok(&expected), "{input:?}");
    }
    let expected = Filter::ValuePath(ValuePath {
        attr: path("emails"),
        filter: Box::new(cmp("type", CompareOp::Eq, s("work"))),
    });
    assert_eq!(parse_filter(r#"emails[  type eq "work"  ]"#), Ok(expected));
}

#[test]
fn keywords_must_end_at_a_delimiter() {
    // `andx` and `orx` are attribute names, so these are not logical expressions.
    assert_eq!(parse_filter("andx pr"), Ok(pr("andx")));
    assert!(parse_filter("a pr andx b pr").is_err());
    assert!(parse_filter("a eq 1and b pr").is_err());
    assert!(parse_filter("a eqq 1").is_err());
    assert!(parse_filter("a prx").is_err());
    assert!(parse_filter("a eq truex").is_err());
    // Words that look like keywords are fine as operands.
    assert_eq!(parse_filter("and pr or or pr"), Ok(or(pr("and"), pr("or"))));
}

#[test]
fn json_strings_decode_every_escape() {
    let cases: &[(&str, &str)] = &[
        (r#""plain""#, "plain"),
        (r#""""#, ""),
        (r#""Ba\"bs Jensen""#, "Ba\"bs Jensen"),
        (r#""a\\b\/c""#, "a\\b/c"),
        (r#""\b\f\n\r\t""#, "\u{8}\u{c}\n\r\t"),
        (r#""\u00e9\u00E9""#, "éé"),
        (r#""\u0000""#, "\0"),
        (r#""\ud83d\ude00 ok""#, "😀 ok"),
        (r#""\uD834\uDD1E""#, "𝄞"),
        (r#""unicode raw: 日本語 😀""#, "unicode raw: 日本語 😀"),
        (r#""O'Malley""#, "O'Malley"),
        (r#""(not) [and] or""#, "(not) [and] or"),
    ];
    for (literal, expected) in cases {
        let f = parse_round_trip(&format!("x eq {literal}"));
        assert_eq!(f, cmp("x", CompareOp::Eq, s(expected)), "{literal}");
    }
}

#[test]
fn json_numbers_keep_integers_exact() {
    let num = |input: &str| match parse_round_trip(&format!("x eq {input}")) {
        Filter::Compare(c) => match c.value {
            CompValue::Number(n) => n,
            other => panic!("{input}: {other:?}"),
        },
        other => panic!("{input}: {other:?}"),
    };
    assert_eq!(num("0").as_u64(), Some(0));
    assert_eq!(num("10").as_u64(), Some(10));
    assert_eq!(num("-42").as_i64(), Some(-42));
    assert_eq!(num("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(num("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(num("1.5e3").as_f64(), Some(1500.0));
    assert!(num("1.5e3").is_f64());
    assert_eq!(num("2.5").as_f64(), Some(2.5));
    assert_eq!(num("-0.001").as_f64(), Some(-0.001));
    assert_eq!(num("1E+2").as_f64(), Some(100.0));
    assert_eq!(num("1e-2").as_f64(), Some(0.01));
    // Beyond 64 bits an integer becomes a float rather than an error.
    assert_eq!(
        num("18446744073709551616").as_f64(),
        Some(18446744073709551616.0)
    );
    // A float prints with a fraction, so it parses back as a float.
    let f = parse_filter("score ge 1.5e3").unwrap();
    assert_eq!(f.to_string(), "score ge 1500.0");
}

#[test]
fn value_paths_take_full_value_filters() {
    let f = parse_round_trip(r#"emails[not (type eq "work") or primary eq true]"#);
    let Filter::ValuePath(vp) = f else {
        panic!("{f:?}")
    };
    assert_eq!(vp.attr, path("emails"));
    assert_eq!(
        *vp.filter,
        or(
            not(cmp("type", CompareOp::Eq, s("work"))),
            cmp("primary", CompareOp::Eq, CompValue::Bool(true))
        )
    );
    // A URN-qualified multi-valued attribute.
    let f = parse_round_trip(r#"urn:example:2.0:Ext:tags[value sw "a"] and (x pr)"#);
    assert_eq!(
        f.to_string(),
        r#"urn:example:2.0:Ext:tags[value sw "a"] and x pr"#
    );
}

fn err(input: &str) -> FilterError {
    parse_filter(input).expect_err(input)
}

fn offset(input: &str) -> usize {
    match err(input) {
        FilterError::Syntax { offset, .. } | FilterError::TooDeep { offset, .. } => offset,
        other => panic!("{input}: {other}"),
    }
}

/// Malformed filters, each with the offset the error must point at.
const MALFORMED: &[(&str, usize)] = &[
    ("", 0),
    ("   ", 3),
    ("userName", 8),
    ("userName eq", 11),
    (r#"userName = "bjensen""#, 9),
    (r#"userName eqq "bjensen""#, 9),
    (r#"userName eq "bjensen"#, 20),
    (r#"userName eq bjensen"#, 12),
    (r#"title pr and"#, 12),
    (r#"title pr xor b pr"#, 9),
    (r#"(title pr"#, 9),
    (r#"title pr)"#, 8),
    (r#"emails[type eq "work""#, 21),
    (r#"emails[type[value eq 1] pr]"#, 11),
    (r#"not title pr"#, 4),
    (r#"1name pr"#, 0),
    (r#"name. pr"#, 5),
    (r#"foo:bar pr"#, 0),
    (r#"x eq "a\qb""#, 7),
    (r#"x eq "\ud800""#, 12),
    (r#"x eq "\udc00""#, 6),
    ("x eq \"tab\there\"", 9),
    (r#"x eq 01"#, 5),
    (r#"x eq 1.5.2"#, 5),
    (r#"x eq 1e400"#, 5),
    (r#"x eq -"#, 6),
    (r#"a pr and (b pr or c pr"#, 22),
    (r#"emails[type eq "work"].value eq "x""#, 22),
];

#[test]
fn errors_point_at_the_real_place() {
    let mut report = String::new();
    let mut mismatches = Vec::new();
    for (input, expected_offset) in MALFORMED {
        let error = err(input);
        report.push_str(&format!("{input:?}\n=> {error}\n"));
        if offset(input) != *expected_offset {
            mismatches.push(format!(
                "{input:?} (expected offset {expected_offset}): {error}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    insta::assert_snapshot!(report);
}

#[test]
fn errors_say_what_was_expected() {
    let FilterError::Syntax {
        expected, found, ..
    } = err(r#"userName xx "a""#)
    else {
        panic!()
    };
    assert_eq!(
        expected,
        "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le) or pr"
    );
    assert_eq!(found, r#"xx "a""#);
    let FilterError::Syntax {
        expected, found, ..
    } = err("(a pr")
    else {
        panic!()
    };
    assert_eq!(expected, "'and', 'or' or a closing ')'");
    assert_eq!(found, "");
    let FilterError::Syntax { expected, .. } = err("a eq ]") else {
        panic!()
    };
    assert_eq!(expected, "a JSON value (string, number, true, false, null)");
    assert_eq!(err("").scim_type(), scim_schema::ScimType::InvalidFilter);
}

#[test]
fn too_long_input_is_rejected_before_parsing() {
    let limits = Limits {
        max_len: 10,
        ..Limits::DEFAULT
    };
    assert_eq!(parse_filter_with("title pr", &limits).map(|_| ()), Ok(()));
    assert_eq!(
        parse_filter_with("title pr and x pr", &limits),
        Err(FilterError::TooLong { len: 17, limit: 10 })
    );
    let long = format!("x eq \"{}\"", "a".repeat(9000));
    assert!(matches!(
        parse_filter(&long),
        Err(FilterError::TooLong { .. })
    ));
}

fn unlimited_len(depth: usize) -> Limits {
    Limits {
        max_len: usize::MAX,
        max_depth: depth,
    }
}

#[test]
fn depth_bombs_are_rejected_not_overflowed() {
    let limits = unlimited_len(64);
    let parens = "(".repeat(100_000) + "a pr" + &")".repeat(100_000);
    assert_eq!(
        parse_filter_with(&parens, &limits),
        Err(FilterError::TooDeep {
            offset: 64,
            limit: 64
        })
    );
    let nots = "not (".repeat(100_000) + "a pr" + &")".repeat(100_000);
    assert_eq!(
        parse_filter_with(&nots, &limits),
        Err(FilterError::TooDeep {
            offset: 64 * 5,
            limit: 64
        })
    );
    let nots_tight = "not(".repeat(100_000);
    assert!(matches!(
        parse_filter_with(&nots_tight, &limits),
        Err(FilterError::TooDeep { .. })
    ));
    let unclosed = "(".repeat(100_000);
    assert!(matches!(
        parse_filter_with(&unclosed, &limits),
        Err(FilterError::TooDeep { .. })
    ));
    // The default 8 KiB limit stops a bomb earlier still.
    assert!(matches!(
        parse_filter(&parens),
        Err(FilterError::TooLong { .. })
    ));
    // A huge configured depth is capped, so it cannot buy a stack overflow either.
    let capped = unlimited_len(usize::MAX);
    assert_eq!(
        parse_filter_with(&parens, &capped),
        Err(FilterError::TooDeep {
            offset: Limits::DEPTH_CEILING,
            limit: Limits::DEPTH_CEILING
        })
    );
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let limits = unlimited_len(64);
    let at_limit = "(".repeat(64) + "a pr" + &")".repeat(64);
    assert_eq!(parse_filter_with(&at_limit, &limits), Ok(pr("a")));
    let over = "(".repeat(65) + "a pr" + &")".repeat(65);
    assert!(matches!(
        parse_filter_with(&over, &limits),
        Err(FilterError::TooDeep { .. })
    ));
    // Brackets and `not` count too: `not (` + `x[` + 62 parentheses = 64 levels.
    let mixed = format!("not (x[{}a pr{}])", "(".repeat(62), ")".repeat(62));
    assert!(parse_filter_with(&mixed, &limits).is_ok());
    let mixed_over = format!("not (x[{}a pr{}])", "(".repeat(63), ")".repeat(63));
    assert!(matches!(
        parse_filter_with(&mixed_over, &limits),
        Err(FilterError::TooDeep { .. })
    ));
    // At the ceiling, in a debug build, on a test thread's stack.
    let ceiling = Limits::DEPTH_CEILING;
    let deepest = "not (".repeat(ceiling / 2)
        + &"x[".repeat(0)
        + &"(".repeat(ceiling / 2)
        + "a pr"
        + &")".repeat(ceiling);
    let f = parse_filter_with(&deepest, &unlimited_len(ceiling)).unwrap();
    assert_eq!(
        parse_filter_with(&f.to_string(), &unlimited_len(ceiling)),
        Ok(f)
    );
}

#[test]
fn long_chains_are_folded_without_recursion() {
    let limits = unlimited_len(64);
    let n = 10_000;
    for keyword in ["and", "or"] {
        let chain = vec!["a pr"; n].join(&format!(" {keyword} "));
        let filter = parse_filter_with(&chain, &limits).unwrap();
        // Walk the left spine: n - 1 operators, all folded to the left.
        let mut depth = 0;
        let mut node = &filter;
        while let Filter::And(l, r) | Filter::Or(l, r) = node {
            assert_eq!(**r, pr("a"));
            node = l;
            depth += 1;
        }
        assert_eq!(depth, n - 1);
        assert_eq!(filter.to_string(), chain);
    }
    // Within the default 8 KiB, the longest chain still parses.
    let chain = vec!["a pr"; 900].join(" or ");
    assert!(chain.len() <= Limits::DEFAULT.max_len);
    assert!(parse_filter(&chain).is_ok());
}

#[test]
fn from_str_is_parse_filter() {
    let f: Filter = "title pr".parse().unwrap();
    assert_eq!(f, pr("title"));
    assert!("title".parse::<Filter>().is_err());
}
