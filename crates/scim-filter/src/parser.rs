//! The filter grammar of RFC 7644 section 3.4.2.2 (Figure 1) and the PATCH path grammar of
//! section 3.5.2, on `nom`.
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1("not" SP) "(" FILTER ")"   ; erratum 7319
//! valuePath = attrPath "[" valFilter "]"
//! valFilter = attrExp / logExp / *1("not" SP) "(" valFilter ")"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER
//! compValue = false / null / true / number / string        ; JSON literals, RFC 7159
//! compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"
//! PATH      = attrPath / valuePath [subAttr]                 ; section 3.5.2
//! ```
//!
//! The ABNF leaves precedence to the prose: grouping first, then attribute operators, then
//! `not` over `and` over `or`. The parser encodes that as precedence climbing (`or` of `and`s
//! of operands), with `and`/`or` chains folded left-associatively in a loop rather than by
//! recursion, so a chain of any length costs no stack. Recursion happens only where the
//! grammar nests (parentheses, `not`, brackets), and every nesting is counted against
//! [`Limits::max_depth`] *before* descending.
//!
//! What the parser accepts beyond the letter of the ABNF, each a deliberate leniency seen in
//! real clients:
//!
//! - keywords, operators and the literals `true`/`false`/`null` in any case (section 3.4.2.2
//!   makes attribute operators case-insensitive; `TRUE` has no other meaning);
//! - `not(` and `not (` alike (erratum 7319 shows both readings are in use);
//! - any run of spaces, tabs, CR or LF where the ABNF has one `SP`, and around the filter;
//! - no space after a self-delimiting token: `(a pr)and(b pr)`, `eq"x"`.
//!
//! A word-like token (attribute path, keyword, number, literal) must end at a delimiter, so
//! `andx` is an attribute name, never `and` followed by `x`.
//!
//! Happy-path cost: the error type is a `Copy` pair (position, static message), no
//! alternative re-parses a sub-expression (each choice is made on the next byte), and each
//! name or string is allocated exactly once.

use std::str::FromStr;

use nom::character::complete::char;
use nom::combinator::{cut, opt, recognize};
use nom::error::{ContextError, ErrorKind, ParseError, context};
use nom::sequence::delimited;
use nom::{IResult, Parser};
use scim_schema::AttrPath;
use scim_schema::path::check_attr_name;

use crate::ast::{CompValue, CompareOp, Comparison, Filter, PatchPath, ValuePath};
use crate::error::FilterError;

/// Bounds on what the parser accepts, so a hostile filter costs bounded time and stack.
///
/// Depth counts each `(...)`, each `not (...)` and each `attr[...]`; `and`/`or` chains do
/// not nest (they are folded iteratively), so their length is bounded by `max_len` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted input, in bytes.
    pub max_len: usize,
    /// Deepest accepted nesting of parentheses, `not` and brackets. Values above
    /// [`Limits::DEPTH_CEILING`] are treated as the ceiling.
    pub max_depth: usize,
}

impl Limits {
    /// The defaults: 8 KiB, the request-line limit of common HTTP servers, so anything a
    /// client can put in a `?filter=` parameter fits (a `.search` body can carry longer
    /// filters; raise `max_len` there if needed), and 64 levels of nesting, far beyond any
    /// filter a person or an IdP writes.
    pub const DEFAULT: Limits = Limits {
        max_len: 8 * 1024,
        max_depth: 64,
    };

    /// The hard ceiling on `max_depth`, so no configuration can buy a stack overflow: a
    /// level costs about 2 KiB of stack in a release build and 12 KiB in a debug build, so
    /// 128 levels fit a 2 MiB thread stack (Rust's default for spawned threads) in both.
    pub const DEPTH_CEILING: usize = 128;

    fn effective_depth(&self) -> usize {
        self.max_depth.min(Self::DEPTH_CEILING)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Parses a filter expression (RFC 7644 section 3.4.2.2) with the default [`Limits`].
///
/// ```
/// use scim_filter::{parse_filter, Filter};
/// let filter = parse_filter(r#"title pr and userType eq "Employee""#).unwrap();
/// assert!(matches!(filter, Filter::And(..)));
/// assert_eq!(filter.to_string(), r#"title pr and userType eq "Employee""#);
/// ```
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    parse_filter_with(input, &Limits::DEFAULT)
}

/// Parses a filter expression (RFC 7644 section 3.4.2.2) within the given [`Limits`].
pub fn parse_filter_with(input: &str, limits: &Limits) -> Result<Filter, FilterError> {
    check_len(input, limits)?;
    let ctx = Ctx::top(limits);
    // Sequenced by hand rather than with `delimited`: the filter is then moved once, not
    // through each combinator's return value.
    let fail = |e| nom_error(input, limits, e);
    let (rest, ()) = ws0(input).map_err(fail)?;
    let (rest, filter) = or_expr(ctx, rest).map_err(fail)?;
    let (rest, ()) = ws0(rest).map_err(fail)?;
    context(EXPECTED_AFTER_FILTER, end_of_input)
        .parse(rest)
        .map_err(fail)?;
    Ok(filter)
}

/// Parses a PATCH operation path (RFC 7644 section 3.5.2: `PATH = attrPath / valuePath
/// [subAttr]`) with the default [`Limits`].
///
/// ```
/// use scim_filter::parse_patch_path;
/// let path = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
/// assert_eq!(path.attr.name, "emails");
/// assert_eq!(path.sub_attr.as_deref(), Some("value"));
/// ```
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    parse_patch_path_with(input, &Limits::DEFAULT)
}

/// Parses a PATCH operation path (RFC 7644 section 3.5.2) within the given [`Limits`]. The
/// value filter, if any, counts as one level of depth.
pub fn parse_patch_path_with(input: &str, limits: &Limits) -> Result<PatchPath, FilterError> {
    check_len(input, limits)?;
    let ctx = Ctx::top(limits);
    let parsed = delimited(ws0, |i| patch_path(ctx, i), ws0).parse(input);
    let parsed = match parsed {
        Ok((rest, path)) => {
            let expected = if path.filter.is_none() {
                EXPECTED_AFTER_PATH
            } else if path.sub_attr.is_none() {
                EXPECTED_AFTER_VALUE_PATH
            } else {
                EXPECTED_END
            };
            context(expected, end_of_input)
                .parse(rest)
                .map(|(rest, _)| (rest, path))
        }
        Err(e) => Err(e),
    };
    finish(input, limits, parsed)
}

impl FromStr for Filter {
    type Err = FilterError;

    /// Same as [`parse_filter`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_filter(s)
    }
}

impl FromStr for PatchPath {
    type Err = FilterError;

    /// Same as [`parse_patch_path`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_patch_path(s)
    }
}

// ---------------------------------------------------------------------------------------
// Error plumbing
// ---------------------------------------------------------------------------------------

const EXPECTED_OPERAND: &str = "an attribute path, '(' or 'not ('";
const EXPECTED_OPERATOR: &str = "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le) or pr";
const EXPECTED_NOT_PAREN: &str = "'(' after 'not'";
const EXPECTED_NESTED: &str =
    "a comparison operator or pr ('[...]' cannot nest inside a value filter)";
const EXPECTED_VALUE: &str = "a JSON value (string, number, true, false, null)";
const EXPECTED_FINITE: &str = "a number within the range of a 64-bit float";
const EXPECTED_CLOSE_QUOTE: &str = "a closing '\"'";
const EXPECTED_STRING_CHAR: &str = "a string character (control characters must be escaped)";
const EXPECTED_ESCAPE: &str = "a JSON escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)";
const EXPECTED_UNICODE_ESCAPE: &str = "4 hex digits after \\u";
const EXPECTED_LOW_SURROGATE: &str =
    "a low surrogate escape (\\uDC00-\\uDFFF) after a high surrogate";
const EXPECTED_LONE_SURROGATE: &str = "a \\u escape that is not a lone low surrogate";
const EXPECTED_CLOSE_PAREN: &str = "'and', 'or' or a closing ')'";
const EXPECTED_CLOSE_BRACKET: &str = "'and', 'or' or a closing ']'";
const EXPECTED_AFTER_FILTER: &str = "'and', 'or' or end of input";
const EXPECTED_PATH: &str = "an attribute path";
const EXPECTED_AFTER_PATH: &str = "'[' or end of path";
const EXPECTED_AFTER_VALUE_PATH: &str = "'.' and a sub-attribute name, or end of path";
const EXPECTED_END: &str = "end of path";
const EXPECTED_SUB_ATTR: &str = "a sub-attribute name (a letter, then letters, digits, '-' or '_')";
const EXPECTED_FALLBACK: &str = "a valid filter";

/// The parser's own error: where (as the length of the input left, which converts to an
/// offset without carrying the input around) and what was expected. `Copy` and
/// allocation-free, so the failed probes of the happy path (is the next word `and`?) cost
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PErr {
    rest_len: usize,
    expected: &'static str,
    too_deep: bool,
}

impl PErr {
    fn at(rest: &str, expected: &'static str) -> Self {
        PErr {
            rest_len: rest.len(),
            expected,
            too_deep: false,
        }
    }

    fn failure<T>(rest: &str, expected: &'static str) -> Result<T, nom::Err<PErr>> {
        Err(nom::Err::Failure(PErr::at(rest, expected)))
    }

    fn error<T>(rest: &str, expected: &'static str) -> Result<T, nom::Err<PErr>> {
        Err(nom::Err::Error(PErr::at(rest, expected)))
    }
}

impl<'a> ParseError<&'a str> for PErr {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        // Unlabelled until a `context` names what was expected.
        PErr::at(input, "")
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

impl<'a> ContextError<&'a str> for PErr {
    /// The innermost label wins: a context only names an error nobody named yet, so the
    /// message describes the exact place of failure, not the construct around it.
    fn add_context(_input: &'a str, ctx: &'static str, mut other: Self) -> Self {
        if other.expected.is_empty() {
            other.expected = ctx;
        }
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr>;

fn check_len(input: &str, limits: &Limits) -> Result<(), FilterError> {
    if input.len() > limits.max_len {
        return Err(FilterError::TooLong {
            len: input.len(),
            limit: limits.max_len,
        });
    }
    Ok(())
}

fn finish<T>(input: &str, limits: &Limits, parsed: PResult<'_, T>) -> Result<T, FilterError> {
    parsed
        .map(|(_, value)| value)
        .map_err(|e| nom_error(input, limits, e))
}

#[cold]
fn nom_error(input: &str, limits: &Limits, e: nom::Err<PErr>) -> FilterError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => to_filter_error(input, limits, e),
        // Only streaming parsers report Incomplete; every parser here is `complete`.
        nom::Err::Incomplete(_) => FilterError::Syntax {
            offset: input.len(),
            expected: EXPECTED_FALLBACK,
            found: String::new(),
        },
    }
}

/// How many characters of the input an error quotes.
const EXCERPT_CHARS: usize = 16;

fn to_filter_error(input: &str, limits: &Limits, e: PErr) -> FilterError {
    let offset = input.len().saturating_sub(e.rest_len);
    if e.too_deep {
        return FilterError::TooDeep {
            offset,
            limit: limits.effective_depth(),
        };
    }
    let found = input
        .get(offset..)
        .unwrap_or("")
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    let expected = if e.expected.is_empty() {
        EXPECTED_FALLBACK
    } else {
        e.expected
    };
    FilterError::Syntax {
        offset,
        expected,
        found,
    }
}

fn end_of_input(input: &str) -> PResult<'_, ()> {
    if input.is_empty() {
        Ok((input, ()))
    } else {
        Err(nom::Err::Error(PErr::from_error_kind(
            input,
            ErrorKind::Eof,
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------

/// Parse state threaded through the recursive parsers: how deep we are, the limit, and
/// whether we are inside `[...]` (where another `[` is an error).
#[derive(Debug, Clone, Copy)]
struct Ctx {
    depth: usize,
    max_depth: usize,
    in_brackets: bool,
}

impl Ctx {
    fn top(limits: &Limits) -> Self {
        Ctx {
            depth: 0,
            max_depth: limits.effective_depth(),
            in_brackets: false,
        }
    }

    /// The context one nesting level down, or `TooDeep` at `at` (the opening token): the
    /// check runs before descending, so a depth bomb never reaches the stack.
    fn deeper(self, at: &str) -> Result<Ctx, nom::Err<PErr>> {
        if self.depth >= self.max_depth {
            return Err(nom::Err::Failure(PErr {
                rest_len: at.len(),
                expected: "",
                too_deep: true,
            }));
        }
        Ok(Ctx {
            depth: self.depth + 1,
            ..self
        })
    }
}

/// `or` binds loosest: `and_expr *(SP "or" SP and_expr)`, folded to the left.
///
/// Each loop has a single call site for its operand parser so that parser can be inlined:
/// a `Filter` returned through fewer layers is copied fewer times, which measurably
/// matters at a few hundred nanoseconds per filter.
fn or_expr(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    let mut rest = input;
    let mut lhs: Option<Filter> = None;
    loop {
        let (after, rhs) = and_expr(ctx, rest)?;
        let folded = match lhs.take() {
            None => rhs,
            Some(lhs) => Filter::Or(Box::new(lhs), Box::new(rhs)),
        };
        match keyword(after, "or") {
            Ok((next, ())) => {
                lhs = Some(folded);
                rest = next;
            }
            Err(nom::Err::Error(_)) => return Ok((after, folded)),
            Err(e) => return Err(e),
        }
    }
}

/// `and` binds tighter than `or`: `operand *(SP "and" SP operand)`, folded to the left.
#[inline(always)]
fn and_expr(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    let mut rest = input;
    let mut lhs: Option<Filter> = None;
    loop {
        // Once a keyword is consumed an operand must follow: `cut` turns a miss into a
        // failure at the operand's place, never a silent stop at the keyword.
        let (after, rhs) = cut(|i| operand(ctx, i)).parse(rest)?;
        let folded = match lhs.take() {
            None => rhs,
            Some(lhs) => Filter::And(Box::new(lhs), Box::new(rhs)),
        };
        match keyword(after, "and") {
            Ok((next, ())) => {
                lhs = Some(folded);
                rest = next;
            }
            Err(nom::Err::Error(_)) => return Ok((after, folded)),
            Err(e) => return Err(e),
        }
    }
}

/// Optional whitespace, then the keyword `kw` (any case) as a whole word, then optional
/// whitespace. Fails with a plain `Error` (the caller's loop simply stops) when absent.
fn keyword<'a>(input: &'a str, kw: &'static str) -> PResult<'a, ()> {
    let (rest, _) = ws0(input)?;
    let (after, word) = word(rest)?;
    if word.eq_ignore_ascii_case(kw) {
        let (after, _) = ws0(after)?;
        Ok((after, ()))
    } else {
        PErr::error(rest, "")
    }
}

/// A run of attribute-path bytes: the unit every word-like token is cut from, so a keyword
/// is only recognised when followed by a delimiter.
fn word(input: &str) -> PResult<'_, &str> {
    take_bytes_while1(input, is_path_byte)
}

// The token primitives below are nom parsers written over bytes: nom's own `take_while1`
// and `multispace0` on `&str` decode UTF-8 one `char` at a time, which showed up as a tenth
// of the parse time. Every byte they accept is ASCII, so the split always falls on a
// character boundary.

/// Like nom's `take_while1`, over bytes.
#[inline]
fn take_bytes_while1(input: &str, accept: impl Fn(u8) -> bool) -> PResult<'_, &str> {
    let len = input
        .bytes()
        .position(|b| !accept(b))
        .unwrap_or(input.len());
    match input.split_at_checked(len) {
        Some((taken, rest)) if len > 0 => Ok((rest, taken)),
        _ => Err(nom::Err::Error(PErr::from_error_kind(
            input,
            ErrorKind::TakeWhile1,
        ))),
    }
}

/// Byte classes, looked up in one table instead of chains of comparisons on every byte.
const PATH: u8 = 1;
const NAME: u8 = 2;
const SPACE: u8 = 4;

const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let name = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        if name || matches!(c, b'.' | b':' | b'$') {
            table[b] |= PATH;
        }
        if name {
            table[b] |= NAME;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            table[b] |= SPACE;
        }
        b += 1;
    }
    table
};

/// Same as [`scim_schema::path::is_path_byte`] (a test checks every byte), by table.
#[inline(always)]
fn is_path_byte(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & PATH != 0
}

/// `nameChar = "-" / "_" / DIGIT / ALPHA`.
#[inline(always)]
fn is_name_byte(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & NAME != 0
}

/// The whitespace accepted where the ABNF has `SP`: space, tab, CR, LF.
#[inline(always)]
fn is_space(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & SPACE != 0
}

/// Like nom's `multispace0`, over bytes, with a fast exit for the common no-space case.
#[inline]
fn ws0(input: &str) -> PResult<'_, ()> {
    match input.as_bytes().first() {
        Some(&b) if is_space(b) => {
            let len = input
                .bytes()
                .position(|b| !is_space(b))
                .unwrap_or(input.len());
            Ok((tail(input, len), ()))
        }
        _ => Ok((input, ())),
    }
}

/// Like nom's `multispace1`, over bytes.
#[inline]
fn ws1(input: &str) -> PResult<'_, ()> {
    take_bytes_while1(input, is_space).map(|(rest, _)| (rest, ()))
}

/// One operand of `and`: a group, `not (...)`, a value path or an attribute expression.
/// The first byte decides, so nothing is parsed twice.
#[inline(always)]
fn operand(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    match input.as_bytes().first() {
        Some(b'(') => {
            let inner = ctx.deeper(input)?;
            group(inner, input)
        }
        Some(&b) if is_path_byte(b) => match not_keyword(input) {
            Some(paren) => {
                let inner = ctx.deeper(input)?;
                let (rest, filter) = group(inner, paren)?;
                Ok((rest, Filter::Not(Box::new(filter))))
            }
            None => attr_operand(ctx, input),
        },
        _ => PErr::error(input, EXPECTED_OPERAND),
    }
}

/// `not` (any case) followed by optional whitespace and `(`: the rest from the `(`.
/// Elsewhere `not` is an attribute name. Checked apart from [`attr_operand`] so the
/// recursion through `not (...)` keeps to small stack frames.
fn not_keyword(input: &str) -> Option<&str> {
    let after = input.get(3..).filter(|_| {
        input
            .get(..3)
            .is_some_and(|w| w.eq_ignore_ascii_case("not"))
    })?;
    let paren = after.trim_start_matches([' ', '\t', '\r', '\n']);
    paren.starts_with('(').then_some(paren)
}

/// `"(" filter ")"`; the caller has already counted the level.
fn group(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    delimited(
        (char('('), ws0),
        |i| or_expr(ctx, i),
        context(EXPECTED_CLOSE_PAREN, cut((ws0, char(')')))),
    )
    .parse(input)
}

/// An operand that starts with an attribute path, followed by `[`, an operator and value,
/// or `pr`.
fn attr_operand(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    let (rest, token) = path_word(input)?;
    // `not` not followed by `(` names an attribute, but most likely the `(` was forgotten.
    let is_not = token.text.eq_ignore_ascii_case("not");
    let path = attr_path(input, token)?;
    if rest.starts_with('[') {
        return value_path(ctx, rest, path);
    }
    let operator_expected = if is_not {
        EXPECTED_NOT_PAREN
    } else {
        EXPECTED_OPERATOR
    };
    let (rest, _) = context(operator_expected, cut(ws1)).parse(rest)?;
    let (rest, op) = operator(rest, operator_expected)?;
    let Some(op) = op else {
        return Ok((rest, Filter::Present(path)));
    };
    let (rest, _) = ws0(rest)?;
    let (rest, value) = comp_value(rest)?;
    Ok((rest, Filter::Compare(Comparison { path, op, value })))
}

/// `attrPath "[" valFilter "]"`, with `input` at the `[`.
fn value_path(ctx: Ctx, input: &str, attr: AttrPath) -> PResult<'_, Filter> {
    let (rest, filter) = bracketed(ctx, input)?;
    Ok((
        rest,
        Filter::ValuePath(ValuePath {
            attr,
            filter: Box::new(filter),
        }),
    ))
}

/// `"[" valFilter "]"`: one level deeper, and no further `[` allowed inside.
fn bracketed(ctx: Ctx, input: &str) -> PResult<'_, Filter> {
    if ctx.in_brackets {
        return PErr::failure(input, EXPECTED_NESTED);
    }
    let inner = Ctx {
        in_brackets: true,
        ..ctx.deeper(input)?
    };
    delimited(
        (char('['), ws0),
        cut(|i| or_expr(inner, i)),
        context(EXPECTED_CLOSE_BRACKET, cut((ws0, char(']')))),
    )
    .parse(input)
}

/// A word cut as an attribute path, with the split points found while scanning it: the
/// last `:` (ending the URN) and the first `.` after it (starting the sub-attribute).
#[derive(Clone, Copy)]
struct PathToken<'a> {
    text: &'a str,
    last_colon: Option<usize>,
    dot: Option<usize>,
}

/// Like [`word`], but notes where the path splits, so building it takes no second scan.
#[inline]
fn path_word(input: &str) -> PResult<'_, PathToken<'_>> {
    let mut last_colon = None;
    let mut dot = None;
    let mut len = 0;
    for (i, &b) in input.as_bytes().iter().enumerate() {
        match b {
            b':' => {
                last_colon = Some(i);
                dot = None;
            }
            b'.' if dot.is_none() => dot = Some(i),
            _ if !is_path_byte(b) => break,
            _ => {}
        }
        len = i + 1;
    }
    match input.split_at_checked(len) {
        Some((text, rest)) if len > 0 => Ok((
            rest,
            PathToken {
                text,
                last_colon,
                dot,
            },
        )),
        _ => Err(nom::Err::Error(PErr::from_error_kind(
            input,
            ErrorKind::TakeWhile1,
        ))),
    }
}

/// Builds the [`AttrPath`] of a token that starts at `at`, mapping a malformed path to a
/// syntax error at the absolute offset of the offending byte.
///
/// Valid paths take a fast route over the split points of [`path_word`]; anything it does
/// not accept goes through [`AttrPath::parse`], so the accepted language and every error
/// are exactly those of the shared path type (a property test checks the two agree).
fn attr_path(at: &str, token: PathToken<'_>) -> Result<AttrPath, nom::Err<PErr>> {
    if let Some(path) = attr_path_fast(token) {
        return Ok(path);
    }
    AttrPath::parse(token.text).map_err(|e| {
        nom::Err::Failure(PErr {
            rest_len: at.len().saturating_sub(e.offset),
            expected: e.reason,
            too_deep: false,
        })
    })
}

/// [`AttrPath::parse`] without its error reporting: `None` when the token is not a valid
/// path. The URN (before the last `:`) must start with `urn:`.
#[inline]
fn attr_path_fast(token: PathToken<'_>) -> Option<AttrPath> {
    let text = token.text;
    let (schema, name_start) = match token.last_colon {
        Some(colon) => {
            let urn = text.get(..colon)?;
            if !urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
                return None;
            }
            (Some(urn), colon + 1)
        }
        None => (None, 0),
    };
    let (name, sub_attr) = match token.dot {
        Some(dot) => (text.get(name_start..dot)?, Some(text.get(dot + 1..)?)),
        None => (text.get(name_start..)?, None),
    };
    if !is_attr_name(name) || !sub_attr.is_none_or(is_attr_name) {
        return None;
    }
    Some(AttrPath {
        schema: schema.map(str::to_owned),
        name: name.to_owned(),
        sub_attr: sub_attr.map(str::to_owned),
    })
}

/// `ATTRNAME = ALPHA *(nameChar)`, or `$ref` (see [`check_attr_name`]).
#[inline]
fn is_attr_name(name: &str) -> bool {
    match name.as_bytes() {
        [first, rest @ ..] if first.is_ascii_alphabetic() => rest.iter().all(|&b| is_name_byte(b)),
        _ => name.eq_ignore_ascii_case("$ref"),
    }
}

/// `compareOp` or `pr` (`None`), as a whole word in any case.
fn operator<'a>(input: &'a str, expected: &'static str) -> PResult<'a, Option<CompareOp>> {
    let (rest, token) = context(expected, cut(word)).parse(input)?;
    let op = match token.as_bytes() {
        [a, b] => match [a.to_ascii_lowercase(), b.to_ascii_lowercase()] {
            [b'e', b'q'] => Some(CompareOp::Eq),
            [b'n', b'e'] => Some(CompareOp::Ne),
            [b'c', b'o'] => Some(CompareOp::Co),
            [b's', b'w'] => Some(CompareOp::Sw),
            [b'e', b'w'] => Some(CompareOp::Ew),
            [b'g', b't'] => Some(CompareOp::Gt),
            [b'g', b'e'] => Some(CompareOp::Ge),
            [b'l', b't'] => Some(CompareOp::Lt),
            [b'l', b'e'] => Some(CompareOp::Le),
            [b'p', b'r'] => None,
            _ => return PErr::failure(input, expected),
        },
        _ => return PErr::failure(input, expected),
    };
    Ok((rest, op))
}

// ---------------------------------------------------------------------------------------
// JSON literals (RFC 7159)
// ---------------------------------------------------------------------------------------

/// `compValue = false / null / true / number / string`, chosen on the first byte.
fn comp_value(input: &str) -> PResult<'_, CompValue> {
    match input.as_bytes().first() {
        Some(b'"') => {
            let (rest, s) = json_string(input)?;
            Ok((rest, CompValue::String(s)))
        }
        Some(b'-' | b'0'..=b'9') => json_number(input),
        Some(b) if b.is_ascii_alphabetic() => {
            let (rest, token) = word(input)?;
            let value = if token.eq_ignore_ascii_case("true") {
                CompValue::Bool(true)
            } else if token.eq_ignore_ascii_case("false") {
                CompValue::Bool(false)
            } else if token.eq_ignore_ascii_case("null") {
                CompValue::Null
            } else {
                return PErr::failure(input, EXPECTED_VALUE);
            };
            Ok((rest, value))
        }
        _ => PErr::failure(input, EXPECTED_VALUE),
    }
}

/// `number = [ minus ] int [ frac ] [ exp ]` (RFC 7159 section 6). Integers stay exact
/// (`u64`/`i64`) when they fit; anything else becomes an `f64` parsed with correct rounding.
fn json_number(input: &str) -> PResult<'_, CompValue> {
    let digits = |i| take_bytes_while1(i, |b| b.is_ascii_digit());
    let (rest, text) = context(
        EXPECTED_VALUE,
        cut(recognize((
            opt(char('-')),
            nom::branch::alt((recognize(char('0')), digits)),
            opt((char('.'), cut(digits))),
            opt((
                nom::character::complete::one_of("eE"),
                opt(nom::character::complete::one_of("+-")),
                cut(digits),
            )),
        ))),
    )
    .parse(input)?;
    // The number must end at a delimiter: `10x`, `1.` or `01` are not numbers.
    if rest
        .as_bytes()
        .first()
        .is_some_and(|&b| is_path_byte(b) || b == b'+')
    {
        return PErr::failure(input, EXPECTED_VALUE);
    }
    let is_integer = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    let exact = if !is_integer {
        None
    } else if text.starts_with('-') {
        text.parse::<i64>().ok().map(serde_json::Number::from)
    } else {
        text.parse::<u64>().ok().map(serde_json::Number::from)
    };
    let number = match exact {
        Some(n) => n,
        None => match text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => n,
            None => return PErr::failure(input, EXPECTED_FINITE),
        },
    };
    Ok((rest, CompValue::Number(number)))
}

/// A JSON string (RFC 7159 section 7) with `input` at the opening quote. One allocation:
/// the common unescaped string is copied whole; an escaped one is decoded into a buffer
/// sized from its raw length (decoding never grows a string).
fn json_string(input: &str) -> PResult<'_, String> {
    let body = input.get(1..).unwrap_or("");
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => {
                let (text, rest) = body.split_at_checked(i).unwrap_or((body, ""));
                return Ok((rest.get(1..).unwrap_or(""), text.to_owned()));
            }
            b'\\' => return json_string_escaped(body, i),
            0x00..=0x1f => return PErr::failure(tail(body, i), EXPECTED_STRING_CHAR),
            _ => {}
        }
    }
    PErr::failure(tail(body, bytes.len()), EXPECTED_CLOSE_QUOTE)
}

/// `s[at..]`, or the empty tail when `at` is out of range or not a char boundary (callers
/// only pass offsets of ASCII bytes or the length, so that never happens).
fn tail(s: &str, at: usize) -> &str {
    s.get(at..).unwrap_or(&s[s.len()..])
}

/// The slow path of [`json_string`]: `body` follows the opening quote, and the first escape
/// is at `first_escape`.
fn json_string_escaped(body: &str, first_escape: usize) -> PResult<'_, String> {
    let bytes = body.as_bytes();
    // Find the closing quote first, to size the buffer exactly once.
    let mut end = first_escape;
    loop {
        match bytes.get(end) {
            Some(b'"') => break,
            Some(b'\\') => end += 2,
            Some(0x00..=0x1f) => return PErr::failure(tail(body, end), EXPECTED_STRING_CHAR),
            Some(_) => end += 1,
            None => return PErr::failure(tail(body, bytes.len()), EXPECTED_CLOSE_QUOTE),
        }
    }
    let mut out = String::with_capacity(end);
    let mut pos = 0;
    while pos < end {
        let Some(rel) = bytes
            .get(pos..end)
            .and_then(|s| s.iter().position(|&b| b == b'\\'))
        else {
            out.push_str(body.get(pos..end).unwrap_or(""));
            break;
        };
        let escape = pos + rel;
        out.push_str(body.get(pos..escape).unwrap_or(""));
        let (decoded, len) = decode_escape(body, escape)?;
        out.push(decoded);
        pos = escape + len;
    }
    Ok((tail(body, end + 1), out))
}

/// Decodes the escape at `body[at]` (a backslash): the character and the escape's length.
fn decode_escape(body: &str, at: usize) -> Result<(char, usize), nom::Err<PErr>> {
    let bytes = body.as_bytes();
    let simple = match bytes.get(at + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let high = hex4(body, at)?;
            return match high {
                0xD800..=0xDBFF => {
                    let low_at = at + 6;
                    if bytes.get(low_at..low_at + 2) != Some(&b"\\u"[..]) {
                        return PErr::failure(tail(body, low_at), EXPECTED_LOW_SURROGATE);
                    }
                    let low = hex4(body, low_at)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return PErr::failure(tail(body, low_at), EXPECTED_LOW_SURROGATE);
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    match char::from_u32(code) {
                        Some(c) => Ok((c, 12)),
                        None => PErr::failure(tail(body, at), EXPECTED_UNICODE_ESCAPE),
                    }
                }
                0xDC00..=0xDFFF => PErr::failure(tail(body, at), EXPECTED_LONE_SURROGATE),
                _ => match char::from_u32(high) {
                    Some(c) => Ok((c, 6)),
                    None => PErr::failure(tail(body, at), EXPECTED_UNICODE_ESCAPE),
                },
            };
        }
        _ => return PErr::failure(tail(body, at), EXPECTED_ESCAPE),
    };
    Ok((simple, 2))
}

/// The 4 hex digits of the `\uXXXX` escape at `body[at]`.
fn hex4(body: &str, at: usize) -> Result<u32, nom::Err<PErr>> {
    let digits = body.as_bytes().get(at + 2..at + 6);
    let value = digits.and_then(|d| {
        d.iter().try_fold(0u32, |acc, &b| {
            char::from(b).to_digit(16).map(|v| acc * 16 + v)
        })
    });
    match value {
        Some(v) => Ok(v),
        None => PErr::failure(tail(body, at), EXPECTED_UNICODE_ESCAPE),
    }
}

// ---------------------------------------------------------------------------------------
// PATCH paths (RFC 7644 section 3.5.2)
// ---------------------------------------------------------------------------------------

/// `PATH = attrPath / valuePath [subAttr]`.
fn patch_path(ctx: Ctx, input: &str) -> PResult<'_, PatchPath> {
    let (rest, token) = context(EXPECTED_PATH, cut(path_word)).parse(input)?;
    let attr = attr_path(input, token)?;
    if !rest.starts_with('[') {
        return Ok((
            rest,
            PatchPath {
                attr,
                filter: None,
                sub_attr: None,
            },
        ));
    }
    let (rest, filter) = bracketed(ctx, rest)?;
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Ok((
            rest,
            PatchPath {
                attr,
                filter: Some(Box::new(filter)),
                sub_attr: None,
            },
        ));
    };
    let (rest, sub) = context(EXPECTED_SUB_ATTR, cut(word)).parse(after_dot)?;
    if let Err(offset) = check_attr_name(sub) {
        return PErr::failure(tail(after_dot, offset), EXPECTED_SUB_ATTR);
    }
    Ok((
        rest,
        PatchPath {
            attr,
            filter: Some(Box::new(filter)),
            sub_attr: Some(sub.to_owned()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_classes_match_the_shared_definitions() {
        for b in 0..=u8::MAX {
            assert_eq!(
                is_path_byte(b),
                scim_schema::path::is_path_byte(b),
                "byte {b}"
            );
            assert_eq!(
                is_name_byte(b),
                b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
            );
            assert_eq!(is_space(b), matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        }
    }
}
