//! EQL lexer: query text → tokens with byte offsets (for `line:col` errors).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// An identifier written directly before `~`: `in~`, `like~`, `startsWith~`.
    TildeIdent(String),
    /// A backtick-quoted field name segment.
    Quoted(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Question,
    Colon,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pipe,
    /// A lone `=`, only valid in `with maxspan=...` / `with runs=...`.
    Assign,
    /// A lone `!`, which opens a missing-event stage `![...]`.
    Bang,
    /// A time span such as `5m` or `500ms` (`maxspan=`), in milliseconds.
    Duration(u64),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::TildeIdent(s) => write!(f, "'{s}~'"),
            Tok::Quoted(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Int(n) => write!(f, "number {n}"),
            Tok::Float(n) => write!(f, "number {n}"),
            Tok::Duration(ms) => write!(f, "time span {ms}ms"),
            Tok::Eof => f.write_str("end of query"),
            other => write!(f, "'{}'", punct_text(other)),
        }
    }
}

fn punct_text(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Dot => ".",
        Tok::Question => "?",
        Tok::Colon => ":",
        Tok::EqEq => "==",
        Tok::Ne => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Pipe => "|",
        Tok::Assign => "=",
        Tok::Bang => "!",
        _ => "?",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character in the query text.
    pub pos: usize,
}

/// A syntax error at a byte offset in the query text.
pub type SyntaxError = crate::error::Error;

pub fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        i: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    out: Vec<Token>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'@'
}

fn is_ident_cont(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.b.get(self.i + off).copied()
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn run(&mut self) -> Result<(), SyntaxError> {
        while self.i < self.b.len() {
            let c = self.b[self.i];
            let start = self.i;
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'/' if self.peek(1) == Some(b'*') => match self.src[self.i + 2..].find("*/") {
                    Some(end) => self.i += 2 + end + 2,
                    None => {
                        return Err(SyntaxError::syntax(
                            start,
                            "unterminated comment: expected '*/'",
                        ));
                    }
                },
                b'/' if self.peek(1) == Some(b'/') => {
                    self.i = self.src[self.i..]
                        .find('\n')
                        .map_or(self.b.len(), |n| self.i + n);
                }
                b'"' => self.string()?,
                b'\'' => {
                    return Err(SyntaxError::syntax(
                        start,
                        "single-quoted strings are not supported: expected a \"double-quoted\" string",
                    ));
                }
                b'`' => self.backtick()?,
                b'0'..=b'9' => self.number()?,
                c if is_ident_start(c) => {
                    self.i += 1; // the start char may be '@', which cannot continue a name
                    while self.i < self.b.len() && is_ident_cont(self.b[self.i]) {
                        self.i += 1;
                    }
                    let word = self.src[start..self.i].to_string();
                    if self.peek(0) == Some(b'~') {
                        self.i += 1;
                        self.push(Tok::TildeIdent(word), start);
                    } else {
                        self.push(Tok::Ident(word), start);
                    }
                }
                _ => {
                    let two = (c, self.peek(1).unwrap_or(0));
                    let (tok, len) = match two {
                        (b'=', b'=') => (Tok::EqEq, 2),
                        (b'!', b'=') => (Tok::Ne, 2),
                        (b'<', b'=') => (Tok::Le, 2),
                        (b'>', b'=') => (Tok::Ge, 2),
                        (b'<', _) => (Tok::Lt, 1),
                        (b'>', _) => (Tok::Gt, 1),
                        (b'(', _) => (Tok::LParen, 1),
                        (b')', _) => (Tok::RParen, 1),
                        (b'[', _) => (Tok::LBracket, 1),
                        (b']', _) => (Tok::RBracket, 1),
                        (b',', _) => (Tok::Comma, 1),
                        (b'.', _) => (Tok::Dot, 1),
                        (b'?', _) => (Tok::Question, 1),
                        (b':', _) => (Tok::Colon, 1),
                        (b'+', _) => (Tok::Plus, 1),
                        (b'-', _) => (Tok::Minus, 1),
                        (b'*', _) => (Tok::Star, 1),
                        (b'/', _) => (Tok::Slash, 1),
                        (b'%', _) => (Tok::Percent, 1),
                        (b'|', _) => (Tok::Pipe, 1),
                        (b'=', _) => (Tok::Assign, 1),
                        (b'!', _) => (Tok::Bang, 1),
                        _ => {
                            let ch = self.src[start..].chars().next().unwrap_or('?');
                            return Err(SyntaxError::syntax(
                                start,
                                format!("unexpected character {ch:?}"),
                            ));
                        }
                    };
                    self.i += len;
                    self.push(tok, start);
                }
            }
        }
        self.push(Tok::Eof, self.b.len());
        Ok(())
    }

    fn string(&mut self) -> Result<(), SyntaxError> {
        let start = self.i;
        if self.src[start..].starts_with("\"\"\"") {
            // Raw string: no escapes, ends at the first closing triple quote.
            let body = start + 3;
            return match self.src[body..].find("\"\"\"") {
                Some(n) => {
                    let s = self.src[body..body + n].to_string();
                    self.i = body + n + 3;
                    self.push(Tok::Str(s), start);
                    Ok(())
                }
                None => Err(SyntaxError::syntax(
                    start,
                    "unterminated raw string: expected '\"\"\"'",
                )),
            };
        }
        self.i += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.src[self.i..].chars().next() else {
                return Err(SyntaxError::syntax(
                    start,
                    "unterminated string: expected '\"'",
                ));
            };
            match c {
                '"' => {
                    self.i += 1;
                    break;
                }
                '\\' => {
                    let esc_pos = self.i;
                    let e = self.peek(1);
                    self.i += 2;
                    match e {
                        Some(b'n') => s.push('\n'),
                        Some(b'r') => s.push('\r'),
                        Some(b't') => s.push('\t'),
                        Some(b'\\') => s.push('\\'),
                        Some(b'"') => s.push('"'),
                        Some(b'u') => s.push(self.unicode_escape(esc_pos)?),
                        _ => {
                            let shown = self.src[esc_pos..].chars().take(2).collect::<String>();
                            return Err(SyntaxError::syntax(
                                esc_pos,
                                format!(
                                    "invalid escape sequence {shown:?}: expected one of \\n \\r \\t \\\\ \\\" \\u{{hex}}"
                                ),
                            ));
                        }
                    }
                }
                c => {
                    s.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
        self.push(Tok::Str(s), start);
        Ok(())
    }

    /// `\u{hex}`; `self.i` is just after the `u`.
    fn unicode_escape(&mut self, esc_pos: usize) -> Result<char, SyntaxError> {
        let bad = |m: &str| SyntaxError::syntax(esc_pos, format!("invalid unicode escape: {m}"));
        if self.peek(0) != Some(b'{') {
            return Err(bad("expected '{' after \\u"));
        }
        let close = self.src[self.i..]
            .find('}')
            .ok_or_else(|| bad("expected '}'"))?;
        let hex = &self.src[self.i + 1..self.i + close];
        if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected 1 to 8 hex digits"));
        }
        let code = u32::from_str_radix(hex, 16).map_err(|_| bad("expected hex digits"))?;
        self.i += close + 1;
        char::from_u32(code).ok_or_else(|| bad("not a unicode scalar value"))
    }

    fn backtick(&mut self) -> Result<(), SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.src[self.i..].chars().next() else {
                return Err(SyntaxError::syntax(
                    start,
                    "unterminated field name: expected '`'",
                ));
            };
            self.i += c.len_utf8();
            if c == '`' {
                // A doubled backtick stands for one literal backtick.
                if self.peek(0) == Some(b'`') {
                    self.i += 1;
                    s.push('`');
                    continue;
                }
                break;
            }
            s.push(c);
        }
        if s.is_empty() {
            return Err(SyntaxError::syntax(start, "empty quoted field name"));
        }
        self.push(Tok::Quoted(s), start);
        Ok(())
    }

    /// A time unit right after a number (`5m`, `10ms`): its length and size in ms.
    fn time_unit(&self) -> Option<(usize, u64)> {
        let rest = &self.b[self.i..];
        let word = rest.iter().take_while(|c| is_ident_cont(**c)).count();
        let ms = match &rest[..word] {
            b"ms" => 1,
            b"s" => 1_000,
            b"m" => 60_000,
            b"h" => 3_600_000,
            b"d" => 86_400_000,
            _ => return None,
        };
        Some((word, ms))
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.i;
        let digits = |lx: &mut Self| {
            while lx.i < lx.b.len() && lx.b[lx.i].is_ascii_digit() {
                lx.i += 1;
            }
        };
        digits(self);
        let mut float = false;
        if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.i += 1;
            digits(self);
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.peek(0), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                digits(self);
            } else {
                self.i = save;
            }
        }
        if !float && let Some((unit_len, ms)) = self.time_unit() {
            let n: u64 = self.src[start..self.i]
                .parse()
                .map_err(|_| SyntaxError::syntax(start, "invalid time span"))?;
            self.i += unit_len;
            let total = n
                .checked_mul(ms)
                .ok_or_else(|| SyntaxError::syntax(start, "time span too large"))?;
            self.push(Tok::Duration(total), start);
            return Ok(());
        }
        if self.peek(0).is_some_and(is_ident_start) {
            return Err(SyntaxError::syntax(
                start,
                "invalid number: expected a digit or operator after it \
                 (time spans take the units ms, s, m, h or d)",
            ));
        }
        let text = &self.src[start..self.i];
        let tok = if float {
            Tok::Float(
                text.parse()
                    .map_err(|_| SyntaxError::syntax(start, "invalid number"))?,
            )
        } else {
            match text.parse::<i64>() {
                Ok(n) => Tok::Int(n),
                Err(_) => Tok::Float(
                    text.parse()
                        .map_err(|_| SyntaxError::syntax(start, "invalid number"))?,
                ),
            }
        };
        self.push(tok, start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tilde_binds_to_the_preceding_word() {
        assert_eq!(
            toks("in~ like~ f~("),
            [
                Tok::TildeIdent("in".into()),
                Tok::TildeIdent("like".into()),
                Tok::TildeIdent("f".into()),
                Tok::LParen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn token_positions_are_byte_offsets() {
        let t = tokenize("a /* c */ == \"x\"").unwrap();
        assert_eq!(t.iter().map(|t| t.pos).collect::<Vec<_>>(), [0, 10, 13, 16]);
    }

    #[test]
    fn numbers_lex_as_int_or_float() {
        assert_eq!(
            toks("1 2.5 1e3 99999999999999999999"),
            [
                Tok::Int(1),
                Tok::Float(2.5),
                Tok::Float(1000.0),
                Tok::Float(1e20),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn doubled_backtick_is_a_literal_backtick() {
        assert_eq!(toks("`a``b`"), [Tok::Quoted("a`b".into()), Tok::Eof]);
    }

    #[test]
    fn unterminated_comment_is_an_error() {
        assert!(tokenize("a /* b").unwrap_err().message.contains("'*/'"));
    }

    #[test]
    fn escape_error_points_at_the_backslash() {
        assert_eq!(tokenize(r#"  "ab\x""#).unwrap_err().pos, 5);
    }
}
