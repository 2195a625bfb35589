//! Case-insensitive text comparison for `caseExact: false` attributes (RFC 7643 section 2.2).
//!
//! One folding function for the whole product: the filter evaluator, uniqueness checks and the
//! stores' folded index columns all call [`fold_case`], so that SQL push-down and in-process
//! evaluation can never disagree. It is Unicode lower-casing (`str::to_lowercase`), not ASCII
//! only: `"Élodie"` and `"élodie"` are equal, which SQLite's `NOCASE` would miss.

use std::borrow::Cow;

/// Folds `s` for case-insensitive comparison. Borrows when nothing changes (the common case
/// of already-lower-case ASCII), so hot paths allocate only when they must.
pub fn fold_case(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else if s.is_ascii() {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// Compares two strings for equality, case-sensitively or after [`fold_case`].
pub fn text_eq(a: &str, b: &str, case_exact: bool) -> bool {
    if case_exact {
        a == b
    } else if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold_case(a) == fold_case(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_unicode_not_just_ascii() {
        assert_eq!(fold_case("Élodie"), "élodie");
        assert_eq!(fold_case("ÅSA"), "åsa");
        assert!(matches!(fold_case("already lower"), Cow::Borrowed(_)));
        assert!(text_eq("Élodie", "éLODIE", false));
        assert!(!text_eq("Élodie", "élodie", true));
        assert!(text_eq("BJensen", "bjensen", false));
    }
}
