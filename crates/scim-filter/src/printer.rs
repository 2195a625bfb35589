//! The canonical text form of the AST (RFC 7644 section 3.4.2.2 syntax), through
//! [`std::fmt::Display`].
//!
//! Canonical means: lower-case keywords and operators, single spaces, `not (...)` with its
//! space (the form of the RFC's examples, and the one erratum 7319 makes normative), paths
//! exactly as written, JSON literals as `serde_json` writes them, and parentheses only
//! where the tree needs them. The parser folds `and`/`or` to the left and binds `and`
//! tighter than `or`, so parentheses are printed for an `or` under an `and`, and for a
//! right operand of the same operator (`a and (b and c)`): without them the text would
//! parse back to a different tree.
//!
//! The guarantee, checked by property tests and the fuzzer: for every AST whose names are
//! valid attribute names, `parse_filter(&filter.to_string()) == Ok(filter)`, and the same
//! for [`PatchPath`] with `parse_patch_path` (where `sub_attr` is only set together with
//! `filter`, the only shape the grammar can express).

use std::fmt::{self, Display, Formatter};

use crate::ast::{CompValue, CompareOp, Comparison, Filter, PatchPath, ValuePath};

impl Display for CompareOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for CompValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(true) => f.write_str("true"),
            CompValue::Bool(false) => f.write_str("false"),
            CompValue::Number(n) => write_number(f, n),
            CompValue::String(s) => {
                // Serialising a `str` cannot fail; map the impossible error rather than panic.
                let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
                f.write_str(&quoted)
            }
        }
    }
}

/// Writes a number so it parses back to the same variant: a float always shows a `.` or an
/// exponent (`1500.0`, not `1500`), or it would come back as an integer.
fn write_number(f: &mut Formatter<'_>, n: &serde_json::Number) -> fmt::Result {
    if !n.is_f64() {
        return write!(f, "{n}");
    }
    let text = n.to_string();
    f.write_str(&text)?;
    if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        f.write_str(".0")?;
    }
    Ok(())
}

impl Display for Comparison {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.path, self.op, self.value)
    }
}

impl Display for ValuePath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.attr)?;
        write_filter(f, &self.filter)?;
        f.write_str("]")
    }
}

impl Display for Filter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_filter(f, self)
    }
}

impl Display for PatchPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            f.write_str("[")?;
            write_filter(f, filter)?;
            f.write_str("]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

fn write_filter(f: &mut Formatter<'_>, filter: &Filter) -> fmt::Result {
    match filter {
        Filter::Compare(c) => write!(f, "{c}"),
        Filter::Present(path) => write!(f, "{path} pr"),
        Filter::And(..) => write_chain(f, filter, Chain::And),
        Filter::Or(..) => write_chain(f, filter, Chain::Or),
        Filter::Not(inner) => {
            f.write_str("not (")?;
            write_filter(f, inner)?;
            f.write_str(")")
        }
        Filter::ValuePath(vp) => write!(f, "{vp}"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Chain {
    And,
    Or,
}

/// Writes a left-folded chain of one operator. The left spine is walked in a loop, not by
/// recursion, so a parsed chain of thousands of operands prints without deep recursion.
fn write_chain(f: &mut Formatter<'_>, filter: &Filter, chain: Chain) -> fmt::Result {
    let mut right_operands = Vec::new();
    let mut leftmost = filter;
    while let (Filter::And(l, r), Chain::And) | (Filter::Or(l, r), Chain::Or) = (leftmost, chain) {
        right_operands.push(&**r);
        leftmost = l;
    }
    // The leftmost operand is not of this chain's operator; only an `or` under an `and`
    // needs parentheses there.
    write_operand(
        f,
        leftmost,
        chain == Chain::And && matches!(leftmost, Filter::Or(..)),
    )?;
    let keyword = match chain {
        Chain::And => " and ",
        Chain::Or => " or ",
    };
    for operand in right_operands.iter().rev() {
        f.write_str(keyword)?;
        // A right operand of the same operator would re-associate to the left, and an `or`
        // under an `and` would escape it.
        let parens = match chain {
            Chain::And => matches!(operand, Filter::And(..) | Filter::Or(..)),
            Chain::Or => matches!(operand, Filter::Or(..)),
        };
        write_operand(f, operand, parens)?;
    }
    Ok(())
}

fn write_operand(f: &mut Formatter<'_>, operand: &Filter, parens: bool) -> fmt::Result {
    if parens {
        f.write_str("(")?;
        write_filter(f, operand)?;
        f.write_str(")")
    } else {
        write_filter(f, operand)
    }
}
