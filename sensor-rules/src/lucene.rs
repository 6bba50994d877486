//! Lucene regular expressions (the syntax of Elasticsearch `regexp` queries,
//! which EQL's `regex` uses) translated into `regex` crate syntax.
//!
//! Differences handled here: the whole value must match (no anchors exist in
//! Lucene; `^` and `$` are literal), `.` matches newlines, `@` is any string,
//! `#` the empty language, `"..."` a literal string, `()` the empty string,
//! a repeat operator applies to everything built so far (`a+?` is `(a+)?`, not
//! a lazy `a+`), a leading `*` is literal, and `\d \s \w` are ASCII classes.
//! The complement `~`, intersection `&` and `<...>` operators have no
//! equivalent here and are rejected with a clear error (escape them to match
//! them literally).

use regex::{Regex, RegexBuilder};

const SIZE_LIMIT: usize = 1 << 20;

/// Compiles Lucene `pattern` into an anchored `Regex`.
pub fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    build(&format!(r"\A(?:{translated})\z"), case_insensitive)
}

/// Compiles several Lucene patterns into one anchored alternation.
pub fn compile_any(patterns: &[&str], case_insensitive: bool) -> Result<Regex, String> {
    let mut parts = Vec::with_capacity(patterns.len());
    for p in patterns {
        parts.push(format!("(?:{})", translate(p)?));
    }
    build(&format!(r"\A(?:{})\z", parts.join("|")), case_insensitive)
}

fn build(re: &str, ci: bool) -> Result<Regex, String> {
    RegexBuilder::new(re)
        .case_insensitive(ci)
        .dot_matches_new_line(true)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| format!("regex too large or invalid after translation: {e}"))
}

/// Translates a Lucene pattern into `regex` syntax (without anchors).
pub fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut p = Lucene {
        c: &chars,
        i: 0,
        depth: 0,
    };
    let out = p.union()?;
    if p.i < chars.len() {
        return Err(format!(
            "unexpected {:?} at character {} of the regex",
            chars[p.i],
            p.i + 1
        ));
    }
    Ok(out)
}

struct Lucene<'a> {
    c: &'a [char],
    i: usize,
    depth: usize,
}

fn lit(c: char) -> String {
    if c.is_alphanumeric() || c == '_' {
        c.to_string()
    } else {
        format!("\\x{{{:x}}}", c as u32)
    }
}

fn class_escape(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "0-9",
        'w' => "a-zA-Z0-9_",
        's' => r"\t\n\x0B\x0C\r ",
        _ => return None,
    })
}

impl Lucene<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at character {} of the regex", self.i + 1)
    }

    fn union(&mut self) -> Result<String, String> {
        self.depth += 1;
        if self.depth > 50 {
            return Err(self.err("regex nested too deeply"));
        }
        let mut alts = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.concat()?);
        }
        self.depth -= 1;
        Ok(alts.join("|"))
    }

    fn concat(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut any = false;
        while let Some(c) = self.peek() {
            if c == ')' || c == '|' {
                break;
            }
            if c == '&' {
                return Err(self.err("the Lucene intersection operator '&' is not supported (write '\\&' for a literal '&')"));
            }
            out.push_str(&self.repeat()?);
            any = true;
        }
        if !any {
            return Err(self.err("empty regex branch: expected an expression"));
        }
        Ok(out)
    }

    fn repeat(&mut self) -> Result<String, String> {
        let mut e = self.atom()?;
        loop {
            let op = match self.peek() {
                Some(c @ ('?' | '*' | '+')) => {
                    self.i += 1;
                    c.to_string()
                }
                Some('{') => self.bounds()?,
                _ => return Ok(e),
            };
            e = format!("(?:{e}){op}");
        }
    }

    fn bounds(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let num = |s: &mut Self| -> Option<u32> {
            let b = s.i;
            while s.peek().is_some_and(|c| c.is_ascii_digit()) {
                s.i += 1;
            }
            s.c[b..s.i].iter().collect::<String>().parse().ok()
        };
        let lo = num(self).ok_or_else(|| self.err("expected a number after '{'"))?;
        let hi = if self.peek() == Some(',') {
            self.i += 1;
            if self.peek() == Some('}') {
                None
            } else {
                Some(num(self).ok_or_else(|| self.err("expected a number"))?)
            }
        } else {
            Some(lo)
        };
        if self.peek() != Some('}') {
            return Err(self.err("expected '}'"));
        }
        self.i += 1;
        if hi.is_some_and(|h| h < lo) || lo > 1000 || hi.is_some_and(|h| h > 1000) {
            self.i = start;
            return Err(self.err("invalid repeat bounds"));
        }
        Ok(match hi {
            None => format!("{{{lo},}}"),
            Some(h) if h == lo => format!("{{{lo}}}"),
            Some(h) => format!("{{{lo},{h}}}"),
        })
    }

    fn atom(&mut self) -> Result<String, String> {
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end of regex"));
        };
        self.i += 1;
        Ok(match c {
            '.' => ".".into(),
            '@' => "(?:.*)".into(),
            '#' => r"[^\x{0}-\x{10FFFF}]".into(),
            '~' => {
                return Err(self.err("the Lucene complement operator '~' is not supported (write '\\~' for a literal '~')"));
            }
            '<' => {
                return Err(self.err(
                    "Lucene '<...>' intervals are not supported (write '\\<' for a literal '<')",
                ));
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match self.peek() {
                        Some('"') => {
                            self.i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push_str(&lit(ch));
                            self.i += 1;
                        }
                        None => return Err(self.err("unterminated '\"' string in regex")),
                    }
                }
                format!("(?:{s})")
            }
            '(' => {
                if self.peek() == Some(')') {
                    self.i += 1;
                    return Ok("(?:)".into());
                }
                let inner = self.union()?;
                if self.peek() != Some(')') {
                    return Err(self.err("expected ')'"));
                }
                self.i += 1;
                format!("(?:{inner})")
            }
            '[' => self.class()?,
            '\\' => {
                let e = self.peek().ok_or_else(|| self.err("trailing '\\'"))?;
                self.i += 1;
                match e {
                    'd' | 'w' | 's' => format!("[{}]", class_escape(e).unwrap_or_default()),
                    'D' | 'W' | 'S' => format!(
                        "[^{}]",
                        class_escape(e.to_ascii_lowercase()).unwrap_or_default()
                    ),
                    other => lit(other),
                }
            }
            other => lit(other),
        })
    }

    fn class(&mut self) -> Result<String, String> {
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.i += 1;
            out.push('^');
        }
        let mut items = 0;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated '[' class: expected ']'"));
            };
            self.i += 1;
            if c == ']' {
                break;
            }
            let first = if c == '\\' {
                let e = self.peek().ok_or_else(|| self.err("trailing '\\'"))?;
                self.i += 1;
                if let Some(cls) = class_escape(e) {
                    out.push_str(cls);
                    items += 1;
                    continue;
                }
                e
            } else {
                c
            };
            if self.peek() == Some('-') && self.c.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let mut last = self.peek().ok_or_else(|| self.err("unterminated range"))?;
                self.i += 1;
                if last == '\\' {
                    last = self.peek().ok_or_else(|| self.err("trailing '\\'"))?;
                    self.i += 1;
                }
                if last < first {
                    return Err(self.err("invalid character range"));
                }
                out.push_str(&format!("{}-{}", lit(first), lit(last)));
            } else {
                out.push_str(&lit(first));
            }
            items += 1;
        }
        if items == 0 {
            // Lucene accepts an empty class; it matches nothing (or anything when negated).
            return Ok(if out == "[^" {
                ".".into()
            } else {
                r"[^\x{0}-\x{10FFFF}]".into()
            });
        }
        out.push(']');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile(p, false).unwrap().is_match(s)
    }

    #[test]
    fn repeat_applies_to_everything_before_it() {
        assert!(m("ab*+", "abbb") && m("a+?", "") && !m("a+", ""));
    }

    #[test]
    fn leading_star_is_literal() {
        assert!(m("*a", "*a") && !m("*a", "a"));
    }

    #[test]
    fn empty_group_and_empty_language() {
        assert!(m("a()b", "ab"));
        assert!(!m("#", "") && !m("a#", "a"));
    }

    #[test]
    fn class_ranges_negation_and_escapes() {
        assert!(m("[a-c]+", "abc") && !m("[^a-c]", "a") && m(r"[\d]", "7") && m(r"[\]]", "]"));
    }

    #[test]
    fn interval_and_automaton_operators_are_rejected() {
        assert!(translate("<1-5>").is_err() && translate("a&b").is_err());
    }

    #[test]
    fn oversized_repeats_are_rejected() {
        assert!(translate("a{2000}").is_err() && compile("(a{1000}){1000}", false).is_err());
    }
}
