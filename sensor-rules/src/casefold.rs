//! One case-folding rule for every case-insensitive operator: Unicode simple
//! lower-casing (`char::to_lowercase`), with an allocation-free ASCII fast path.

use std::borrow::Cow;

/// Lower-cases `s`, borrowing when it is already folded (the common case for
/// process names and arguments).
pub fn fold(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else if s.chars().all(|c| c.to_lowercase().eq(std::iter::once(c))) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `fold(value) == folded` without allocating; `folded` must already be folded.
pub fn eq_folded(value: &str, folded: &str) -> bool {
    if value.is_ascii() {
        value.len() == folded.len() && value.as_bytes().eq_ignore_ascii_case(folded.as_bytes())
    } else {
        value
            .chars()
            .flat_map(char::to_lowercase)
            .eq(folded.chars())
    }
}
