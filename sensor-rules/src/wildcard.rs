//! EQL wildcard patterns: `*` = any run (maybe empty), `?` = exactly one
//! character, everything else literal (the backslash too: Elasticsearch's
//! EQL spec tests match `C:\*` against `C:\Windows`); whole-value match.

use crate::casefold::fold;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Lit(u8),
    /// `?`: one whole UTF-8 character.
    One,
    Star,
}

/// Shapes that can skip the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Any,
    General(Vec<Item>),
}

/// A compiled wildcard pattern. Case-insensitive patterns are folded once here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    shape: Shape,
    ci: bool,
}

/// One piece of a pattern built from parsed text (see [`Wildcard::from_pieces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Star,
}

/// Does the pattern text contain a `*` or `?`? A backslash escapes nothing.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

impl Wildcard {
    pub fn new(pattern: &str, ci: bool) -> Wildcard {
        let text = if ci {
            fold(pattern).into_owned()
        } else {
            pattern.to_string()
        };
        let mut items = Vec::new();
        let mut buf = [0u8; 4];
        for c in text.chars() {
            match c {
                '*' => {
                    if items.last() != Some(&Item::Star) {
                        items.push(Item::Star);
                    }
                }
                '?' => items.push(Item::One),
                c => items.extend(c.encode_utf8(&mut buf).bytes().map(Item::Lit)),
            }
        }
        Wildcard {
            shape: shape_of(items),
            ci,
        }
    }

    /// A KQL pattern: `*` is the only wildcard, so `?` and an escaped `\*`
    /// arrive as literal text in `Lit` pieces.
    pub fn from_pieces(pieces: &[Piece], ci: bool) -> Wildcard {
        let mut items = Vec::new();
        for p in pieces {
            match p {
                Piece::Star => {
                    if items.last() != Some(&Item::Star) {
                        items.push(Item::Star);
                    }
                }
                Piece::Lit(s) => {
                    let s = if ci { fold(s) } else { s.as_str().into() };
                    items.extend(s.bytes().map(Item::Lit));
                }
            }
        }
        Wildcard {
            shape: shape_of(items),
            ci,
        }
    }

    /// The literal a matching value starts with ("" when the pattern opens
    /// with a wildcard), and whether the pattern is that literal alone
    /// (an exact match). Folded when the pattern is case-insensitive.
    pub fn literal_prefix(&self) -> (String, bool) {
        match &self.shape {
            Shape::Exact(s) => (s.clone(), true),
            Shape::Prefix(s) => (s.clone(), false),
            Shape::Suffix(_) | Shape::Contains(_) | Shape::Any => (String::new(), false),
            Shape::General(items) => {
                let lead: Vec<u8> = items
                    .iter()
                    .map_while(|i| if let Item::Lit(b) = i { Some(*b) } else { None })
                    .collect();
                (String::from_utf8_lossy(&lead).into_owned(), false)
            }
        }
    }

    /// The literal a matching value ends with, when the pattern is `*lit`.
    pub fn literal_suffix(&self) -> Option<&str> {
        match &self.shape {
            Shape::Suffix(s) => Some(s),
            _ => None,
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        if !self.ci {
            return self.match_bytes(value.as_bytes(), false);
        }
        if value.is_ascii() {
            // The pattern is folded, so an ASCII value folds byte by byte.
            self.match_bytes(value.as_bytes(), true)
        } else {
            self.match_bytes(fold(value).as_bytes(), false)
        }
    }

    fn match_bytes(&self, v: &[u8], fold_ascii: bool) -> bool {
        let eq = |a: &[u8], b: &str| {
            if fold_ascii {
                a.eq_ignore_ascii_case(b.as_bytes())
            } else {
                a == b.as_bytes()
            }
        };
        match &self.shape {
            Shape::Any => true,
            Shape::Exact(p) => v.len() == p.len() && eq(v, p),
            Shape::Prefix(p) => v.len() >= p.len() && eq(&v[..p.len()], p),
            Shape::Suffix(p) => v.len() >= p.len() && eq(&v[v.len() - p.len()..], p),
            Shape::Contains(p) => {
                if !fold_ascii {
                    // Both are valid UTF-8 here, so a substring search on str is exact.
                    std::str::from_utf8(v).is_ok_and(|s| s.contains(p.as_str()))
                } else {
                    p.is_empty() || v.windows(p.len()).any(|w| eq(w, p))
                }
            }
            Shape::General(items) => glob(items, v, fold_ascii),
        }
    }
}

fn shape_of(items: Vec<Item>) -> Shape {
    let lit_run = |s: &[Item]| -> Option<String> {
        let bytes: Option<Vec<u8>> = s
            .iter()
            .map(|i| if let Item::Lit(b) = i { Some(*b) } else { None })
            .collect();
        bytes.and_then(|b| String::from_utf8(b).ok())
    };
    let n = items.len();
    let starts = items.first() == Some(&Item::Star);
    if n == 1 && starts {
        return Shape::Any;
    }
    let ends = n >= 2 && items.last() == Some(&Item::Star);
    let inner = &items[usize::from(starts)..n - usize::from(ends)];
    if let Some(lit) = lit_run(inner) {
        return match (starts, ends) {
            (false, false) => Shape::Exact(lit),
            (false, true) => Shape::Prefix(lit),
            (true, false) => Shape::Suffix(lit),
            (true, true) => Shape::Contains(lit),
        };
    }
    Shape::General(items)
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Greedy glob with single-star backtracking: linear on typical patterns,
/// O(n·m) worst case, no recursion (safe on hostile input).
fn glob(p: &[Item], v: &[u8], fold_ascii: bool) -> bool {
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut back: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some(Item::Star) => {
                back = Some((pi + 1, vi));
                pi += 1;
                continue;
            }
            Some(Item::One) => {
                pi += 1;
                vi += utf8_len(v[vi]);
                continue;
            }
            Some(Item::Lit(b))
                if (if fold_ascii {
                    v[vi].to_ascii_lowercase() == *b
                } else {
                    v[vi] == *b
                }) =>
            {
                pi += 1;
                vi += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last star swallow one more character.
        match back {
            Some((bp, bv)) => {
                let nv = bv + utf8_len(v[bv]);
                back = Some((bp, nv));
                pi = bp;
                vi = nv;
            }
            None => return false,
        }
    }
    vi == v.len() && p[pi.min(p.len())..].iter().all(|i| *i == Item::Star)
}

/// Several wildcard patterns as one anchored `regex` alternation, so a long
/// `like~ (...)` list costs one automaton pass per value instead of one scan
/// per pattern. (`(?i)` here is Unicode simple case folding, which agrees
/// with [`fold`] on ASCII and on the common non-ASCII letters.)
pub fn to_regex(patterns: &[&str], ci: bool) -> Result<regex::Regex, regex::Error> {
    let mut alts = Vec::with_capacity(patterns.len());
    for p in patterns {
        let mut re = String::new();
        for c in p.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4]))),
            }
        }
        alts.push(re);
    }
    regex::RegexBuilder::new(&format!(r"\A(?:{})\z", alts.join("|")))
        .case_insensitive(ci)
        .dot_matches_new_line(true)
        .size_limit(1 << 22)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_take_the_fast_paths() {
        assert_eq!(
            Wildcard::new("abc", false).shape,
            Shape::Exact("abc".into())
        );
        assert_eq!(
            Wildcard::new("ab*", false).shape,
            Shape::Prefix("ab".into())
        );
        assert_eq!(
            Wildcard::new("*ab", false).shape,
            Shape::Suffix("ab".into())
        );
        assert_eq!(
            Wildcard::new("**ab**", false).shape,
            Shape::Contains("ab".into())
        );
        assert_eq!(Wildcard::new("*", false).shape, Shape::Any);
    }

    #[test]
    fn backslash_is_a_literal_character_and_star_stays_a_wildcard() {
        assert!(has_wildcard(r"a\*b"));
        let w = Wildcard::new(r"C:\*", false);
        assert!(w.matches(r"C:\Windows"));
        assert!(!w.matches("C:*"));
        let set = to_regex(&[r"C:\*", "x"], false).unwrap();
        assert!(set.is_match(r"C:\Windows") && !set.is_match("C:Windows"));
    }

    #[test]
    fn hostile_pattern_stays_linear_enough() {
        let w = Wildcard::new(&"*a".repeat(50), false);
        assert!(!w.matches(&"a".repeat(49)));
        assert!(w.matches(&"a".repeat(5000)));
    }
}
