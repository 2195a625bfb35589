//! Properties of the parser and the canonical printer: printing then parsing any AST gives
//! the same AST, and no input, however mangled, makes the parser panic.

use proptest::prelude::*;
use scim_filter::{
    CompValue, CompareOp, Comparison, Filter, FilterError, PatchPath, ValuePath, parse_filter,
    parse_patch_path,
};
use scim_schema::AttrPath;

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
        // Names that are also keywords or literals must still round-trip.
        1 => prop::sample::select(vec![
            "not", "NOT", "and", "or", "pr", "eq", "true", "null", "$ref", "$Ref",
        ])
        .prop_map(str::to_owned),
    ]
}

fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("urn:ietf:params:scim:schemas:core:2.0:User".to_owned()),
        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned()),
        "(urn|URN|Urn):[a-zA-Z0-9._$-]{1,8}(:[a-zA-Z0-9._$-]{1,8}){0,3}",
    ]
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.2, urn()),
        attr_name(),
        prop::option::weighted(0.3, attr_name()),
    )
        .prop_map(|(schema, name, sub_attr)| AttrPath {
            schema,
            name,
            sub_attr,
        })
}

fn json_string() -> impl Strategy<Value = String> {
    let interesting = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '/', '\'', ' ', '(', ')', '[', ']']),
        1 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('?')),
        1 => prop::sample::select(vec!['\u{7f}', '\u{2028}', '\u{fffd}', '\u{10ffff}', '😀']),
    ];
    prop::collection::vec(interesting, 0..16).prop_map(String::from_iter)
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        prop::sample::select(vec![0.0, -0.0, 1500.0, 1e300, 5e-324, 0.1])
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        json_string().prop_map(CompValue::String),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn attr_exp() -> impl Strategy<Value = Filter> {
    prop_oneof![
        3 => (attr_path(), compare_op(), comp_value())
            .prop_map(|(path, op, value)| Filter::Compare(Comparison { path, op, value })),
        1 => attr_path().prop_map(Filter::Present),
    ]
}

/// Wraps leaves into `and`/`or`/`not` trees of any shape, including right-nested chains
/// that need parentheses to survive printing.
fn logical(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// `valFilter`: no value paths inside (the grammar forbids nested brackets).
fn val_filter() -> impl Strategy<Value = Filter> {
    logical(attr_exp().boxed())
}

fn value_path() -> impl Strategy<Value = Filter> {
    (attr_path(), val_filter()).prop_map(|(attr, f)| {
        Filter::ValuePath(ValuePath {
            attr,
            filter: Box::new(f),
        })
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    logical(prop_oneof![3 => attr_exp(), 1 => value_path()].boxed())
}

fn patch_path() -> impl Strategy<Value = PatchPath> {
    prop_oneof![
        attr_path().prop_map(|attr| PatchPath {
            attr,
            filter: None,
            sub_attr: None
        }),
        (attr_path(), val_filter(), prop::option::of(attr_name())).prop_map(
            |(attr, f, sub_attr)| PatchPath {
                attr,
                filter: Some(Box::new(f)),
                sub_attr
            }
        ),
    ]
}

/// Every error offset lies in the input, on a character boundary.
fn assert_sane_error(input: &str, error: &FilterError) {
    match error {
        FilterError::Syntax { offset, .. } | FilterError::TooDeep { offset, .. } => {
            assert!(*offset <= input.len(), "{input:?}: {error}");
            assert!(input.is_char_boundary(*offset), "{input:?}: {error}");
        }
        FilterError::TooLong { .. } => {}
        // NotApplicable comes from the compiler, and any kind added later is news to this test.
        _ => panic!("the parser never reports {error}"),
    }
}

/// Whatever the input, the parser answers; and whatever it accepts prints canonically.
fn check_total(input: &str) {
    match parse_filter(input) {
        Ok(f) => {
            let printed = f.to_string();
            assert_eq!(
                parse_filter(&printed).as_ref(),
                Ok(&f),
                "{input:?} printed {printed:?}"
            );
        }
        Err(e) => assert_sane_error(input, &e),
    }
    match parse_patch_path(input) {
        Ok(p) => {
            let printed = p.to_string();
            assert_eq!(
                parse_patch_path(&printed).as_ref(),
                Ok(&p),
                "{input:?} printed {printed:?}"
            );
        }
        Err(e) => assert_sane_error(input, &e),
    }
}

const SEEDS: &str = concat!(
    include_str!("data/filters.txt"),
    include_str!("data/filters-edge.txt")
);

/// Tokens that steer random text towards the interesting corners of the grammar.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "(", ")", "[", "]", " ", "  ", "\t", "not", "not(", "and", "or", "AND", "pr", "eq", "gt",
        "\"", "\\", "\\u", "d83d", "\\ud800", "\\udc00", "\"x\"", "a", "emails", ".", ":", "urn:",
        "urn:a:b", "1", "-", "0", "e", "E+", ".5", "true", "null", "$ref", "é", "😀", "\u{0}",
    ]);
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

/// A seed filter with a few random edits (insert, delete, replace) at char boundaries.
fn mutated_seed() -> impl Strategy<Value = String> {
    let seeds: Vec<&'static str> = SEEDS.lines().filter(|l| !l.is_empty()).collect();
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<char>());
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit, 1..4),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, kind, c) in edits {
                let i = at.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_filters_parse_back_to_the_same_ast(f in filter()) {
        let printed = f.to_string();
        prop_assert_eq!(parse_filter(&printed), Ok(f), "printed: {}", printed);
    }

    #[test]
    fn printing_is_canonical(f in filter()) {
        let printed = f.to_string();
        let reparsed = parse_filter(&printed).unwrap();
        prop_assert_eq!(reparsed.to_string(), printed);
    }

    #[test]
    fn printed_patch_paths_parse_back(p in patch_path()) {
        let printed = p.to_string();
        prop_assert_eq!(parse_patch_path(&printed), Ok(p), "printed: {}", printed);
    }

    #[test]
    fn paths_in_filters_are_exactly_attr_paths(token in "[a-zA-Z0-9:._$-]{1,24}|(urn|URN):[a-z0-9:._$-]{0,16}") {
        // The parser builds paths on a fast route of its own; it must accept exactly what
        // `AttrPath::parse` accepts, and fail where and why that does.
        let parsed = parse_filter(&format!("{token} pr"));
        match AttrPath::parse(&token) {
            Ok(path) => prop_assert_eq!(parsed, Ok(Filter::Present(path))),
            Err(e) => prop_assert_eq!(
                parsed,
                Err(FilterError::Syntax {
                    offset: e.offset,
                    expected: e.reason,
                    found: format!("{token} pr").get(e.offset..).unwrap_or("").chars().take(16).collect(),
                })
            ),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(input in any::<String>()) {
        check_total(&input);
    }

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        check_total(&input);
    }

    #[test]
    fn mutated_filters_never_panic(input in mutated_seed()) {
        check_total(&input);
    }
}
