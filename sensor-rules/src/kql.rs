//! KQL (Kibana Query Language, `language = "kuery"`) compiled into the same
//! matcher tree as EQL, with Kibana's semantics:
//!
//! - `field:value` on a keyword field (every field but the text ones below)
//!   is exact and case-sensitive; numbers and booleans match their text;
//! - an unquoted `*` is a wildcard (the only one: `?` is literal) and
//!   `field:*` means the field exists; `\` escapes `\():<>"*{}` and the
//!   keywords, so `ubuntu\:*` is the prefix `ubuntu:`;
//! - `"quoted"` values are literal phrases (no wildcards);
//! - `field:(a or b and not c)` tests each value on the field, `not`
//!   binds tighter than `and`, which binds tighter than `or`;
//! - `field < v`, `<=`, `>`, `>=` are ranges (dates for ECS date fields);
//! - `field:{ query }` holds when one object under `field` satisfies the
//!   inner query (nested fields), whose field names are relative to it;
//! - on ECS's text fields (`message`, `error.message`) and `*.text`
//!   multi-fields, values are split into lower-case words as the standard
//!   analyzer does: unquoted, any word matches; quoted, the words must be
//!   adjacent and in order.
//!
//! Hand-written: KQL is part of the product's rule core, and Kibana's own
//! grammar is a PEG in JavaScript with no Rust port.

use crate::ast::{CmpOp, Expr, Literal};
use crate::compile::{
    Compiled, Node, Operand, TextWord, cheapest_first, compile_condition, exact_test,
};
use crate::error::Error;
use crate::value::FieldPath;
use crate::wildcard::{Piece, Wildcard};

/// Nesting depth of parentheses and braces accepted; deeper is an error
/// (bounds recursion on hostile input).
const MAX_DEPTH: usize = 64;

/// Parses and compiles a KQL query.
pub fn compile_kql(text: &str) -> Result<Compiled, Error> {
    let mut p = Parser {
        s: text,
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.at_end() {
        // An empty query matches every document, as in Kibana.
        return Ok(Compiled {
            category: None,
            root: Node::Const(true),
        });
    }
    let q = p.or_query()?;
    p.ws();
    if !p.at_end() {
        return Err(p.error("expected `and`, `or` or the end of the query"));
    }
    Ok(Compiled {
        category: None,
        root: q.compile(&[])?,
    })
}

/// A parsed KQL query (before field types are applied).
#[derive(Debug, Clone, PartialEq)]
enum Query {
    Or(Vec<Query>),
    And(Vec<Query>),
    Not(Box<Query>),
    /// `field:values`.
    Field {
        field: String,
        values: Values,
        pos: usize,
    },
    Range {
        field: String,
        op: CmpOp,
        value: String,
        pos: usize,
    },
    Nested {
        field: String,
        inner: Box<Query>,
    },
}

/// The right-hand side of `field:`.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Or(Vec<Values>),
    And(Vec<Values>),
    Not(Box<Values>),
    One(Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Unquoted: literal pieces and wildcards.
    Unquoted(Vec<Piece>),
    Quoted(String),
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
    depth: usize,
}

const SPECIAL: &[char] = &['\\', '(', ')', ':', '<', '>', '"', '*', '{', '}'];

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, msg: impl Into<String>) -> Error {
        let found = match self.peek() {
            Some(c) => format!(" (found `{c}`)"),
            None => " (found the end of the query)".into(),
        };
        Error::syntax(self.i, format!("KQL: {}{found}", msg.into()))
    }

    fn ws(&mut self) -> usize {
        let start = self.i;
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.i += c.len_utf8();
        }
        self.i - start
    }

    /// At `kw` as a whole word (case-insensitive) followed by whitespace or,
    /// for `not`, also by `(`.
    fn keyword_len(&self, kw: &str) -> Option<usize> {
        let r = self.rest();
        let head = r.get(..kw.len())?;
        if !head.eq_ignore_ascii_case(kw) {
            return None;
        }
        let next = r[kw.len()..].chars().next();
        match next {
            None => Some(kw.len()),
            Some(c) if c.is_whitespace() => Some(kw.len()),
            Some('(') if kw == "not" => Some(kw.len()),
            _ => None,
        }
    }

    /// After whitespace: is there a binary keyword (`or`/`and`) here? Consumes it.
    fn binary(&mut self, kw: &str) -> bool {
        let save = self.i;
        if self.ws() == 0 && save != 0 && !self.s[..save].ends_with([')', '}', '"']) {
            self.i = save;
            return false;
        }
        if let Some(n) = self.keyword_len(kw) {
            self.i += n;
            self.ws();
            return true;
        }
        self.i = save;
        false
    }

    fn not(&mut self) -> bool {
        if let Some(n) = self.keyword_len("not") {
            self.i += n;
            self.ws();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or_query(&mut self) -> Result<Query, Error> {
        let mut parts = vec![self.and_query()?];
        while self.binary("or") {
            parts.push(self.and_query()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    fn and_query(&mut self) -> Result<Query, Error> {
        let mut parts = vec![self.not_query()?];
        while self.binary("and") {
            parts.push(self.not_query()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    fn not_query(&mut self) -> Result<Query, Error> {
        if self.not() {
            return Ok(Query::Not(Box::new(self.not_query()?)));
        }
        self.sub_query()
    }

    fn sub_query(&mut self) -> Result<Query, Error> {
        if self.peek() == Some('(') {
            self.i += 1;
            self.enter()?;
            self.ws();
            let q = self.or_query()?;
            self.ws();
            if self.peek() != Some(')') {
                return Err(self.error("expected `)` to close the group"));
            }
            self.i += 1;
            self.depth -= 1;
            return Ok(q);
        }
        let pos = self.i;
        let field = self.field()?;
        self.ws();
        for (tok, op) in [
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.rest().starts_with(tok) {
                self.i += tok.len();
                self.ws();
                let value = match self.value()? {
                    Value::Quoted(s) => s,
                    Value::Unquoted(pieces) => pieces_text(&pieces).ok_or_else(|| {
                        Error::syntax(self.i, "KQL: a range value cannot have a wildcard")
                    })?,
                };
                return Ok(Query::Range {
                    field,
                    op,
                    value,
                    pos,
                });
            }
        }
        if self.peek() != Some(':') {
            return Err(Error::unsupported(
                pos,
                "KQL: a value without a field (free text over every field) is not supported; write field:value",
            ));
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some('{') {
            self.i += 1;
            self.enter()?;
            self.ws();
            let inner = self.or_query()?;
            self.ws();
            if self.peek() != Some('}') {
                return Err(self.error("expected `}` to close the nested query"));
            }
            self.i += 1;
            self.depth -= 1;
            return Ok(Query::Nested {
                field,
                inner: Box::new(inner),
            });
        }
        let values = self.list_of_values()?;
        Ok(Query::Field { field, values, pos })
    }

    fn field(&mut self) -> Result<String, Error> {
        if self.peek() == Some('"') {
            return self.quoted();
        }
        let start = self.i;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || SPECIAL.contains(&c) && c != '\\' && c != '*' {
                break;
            }
            if c == '*' {
                return Err(Error::unsupported(
                    self.i,
                    "KQL: wildcards in field names are not supported",
                ));
            }
            if c == '\\' {
                out.push(self.escape()?);
                continue;
            }
            out.push(c);
            self.i += c.len_utf8();
        }
        if out.is_empty() {
            self.i = start;
            return Err(self.error("expected a field name"));
        }
        Ok(out)
    }

    fn list_of_values(&mut self) -> Result<Values, Error> {
        if self.peek() == Some('(') {
            self.i += 1;
            self.enter()?;
            self.ws();
            let v = self.or_values()?;
            self.ws();
            if self.peek() != Some(')') {
                return Err(self.error("expected `)` to close the list of values"));
            }
            self.i += 1;
            self.depth -= 1;
            return Ok(v);
        }
        Ok(Values::One(self.value()?))
    }

    fn or_values(&mut self) -> Result<Values, Error> {
        let mut parts = vec![self.and_values()?];
        while self.binary("or") {
            parts.push(self.and_values()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Values::Or(parts)
        })
    }

    fn and_values(&mut self) -> Result<Values, Error> {
        let mut parts = vec![self.not_values()?];
        while self.binary("and") {
            parts.push(self.not_values()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Values::And(parts)
        })
    }

    fn not_values(&mut self) -> Result<Values, Error> {
        if self.not() {
            return Ok(Values::Not(Box::new(self.not_values()?)));
        }
        self.list_of_values()
    }

    fn value(&mut self) -> Result<Value, Error> {
        if self.peek() == Some('"') {
            return Ok(Value::Quoted(self.quoted()?));
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut lit = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                // Whitespace belongs to the value unless a keyword, a closing
                // bracket or the end follows it.
                let save = self.i;
                self.ws();
                let stop = self.at_end()
                    || matches!(self.peek(), Some(')') | Some('}'))
                    || self.keyword_len("or").is_some()
                    || self.keyword_len("and").is_some()
                    || self.keyword_len("not").is_some();
                let ws = self.s[save..self.i].to_string();
                if stop {
                    self.i = save;
                    break;
                }
                lit.push_str(&ws);
                continue;
            }
            match c {
                '*' => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Star);
                    self.i += 1;
                }
                '\\' => lit.push(self.escape()?),
                c if SPECIAL.contains(&c) => break,
                c => {
                    lit.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        if pieces.is_empty() {
            return Err(self.error("expected a value"));
        }
        Ok(Value::Unquoted(pieces))
    }

    /// `\x` in an unquoted literal: a special character, a keyword, or `\t \r \n \uXXXX`.
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.i;
        self.i += 1;
        let Some(c) = self.peek() else {
            self.i = at;
            return Err(self.error("a `\\` must be followed by the character it escapes"));
        };
        for kw in ["or", "and", "not"] {
            if self
                .rest()
                .get(..kw.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(kw))
            {
                // `\or`: the keyword's first letter, the rest follows as text.
                self.i += 1;
                return Ok(c);
            }
        }
        self.i += c.len_utf8();
        Ok(match c {
            't' => '\t',
            'r' => '\r',
            'n' => '\n',
            'u' => {
                let hex = self.rest().get(..4).unwrap_or("");
                let v = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match v {
                    Some(ch) if hex.len() == 4 => {
                        self.i += 4;
                        ch
                    }
                    _ => {
                        self.i = at;
                        return Err(self.error("`\\u` must be followed by four hex digits"));
                    }
                }
            }
            c if SPECIAL.contains(&c) || c.is_whitespace() => c,
            _ => {
                self.i = at;
                return Err(self.error(format!(
                    "`\\{c}` is not an escape; KQL escapes only \\():<>\"*{{}}, whitespace and the keywords (write `\\\\` for a backslash)"
                )));
            }
        })
    }

    fn quoted(&mut self) -> Result<String, Error> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.i = start;
                return Err(self.error("unterminated quoted string"));
            };
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.i += e.len_utf8();
                    out.push(match e {
                        't' => '\t',
                        'r' => '\r',
                        'n' => '\n',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }
}

/// The text of pieces with no wildcard.
fn pieces_text(pieces: &[Piece]) -> Option<String> {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Lit(l) => s.push_str(l),
            Piece::Star => return None,
        }
    }
    Some(s)
}

fn path_of(prefix: &[String], field: &str) -> Vec<String> {
    let mut v = prefix.to_vec();
    v.extend(field.split('.').map(str::to_string));
    v
}

/// Is the field analysed text in ECS (or a `.text` multi-field)?
fn is_text_field(dotted: &str) -> bool {
    matches!(dotted, "message" | "error.message") || dotted.ends_with(".text")
}

/// Lower-case words, split where the standard analyzer splits (anything
/// not a letter or digit), keeping a `*` inside a word for wildcards.
fn words(s: &str, keep_star: bool) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_' || keep_star && c == '*'))
        .filter(|w| !w.is_empty() && *w != "*" || keep_star && *w == "*")
        .map(str::to_lowercase)
        .collect()
}

/// Does analysed `value` satisfy the query words?
pub fn text_matches(value: &str, query: &[TextWord], phrase: bool) -> bool {
    let have = words(value, false);
    let hit = |w: &TextWord, h: &str| match w {
        TextWord::Exact(x) => x == h,
        TextWord::Wild(p) => p.matches(h),
    };
    if !phrase {
        return query.iter().any(|w| have.iter().any(|h| hit(w, h)));
    }
    if query.is_empty() {
        return false;
    }
    have.windows(query.len())
        .any(|win| win.iter().zip(query).all(|(h, w)| hit(w, h)))
}

impl Query {
    fn compile(&self, prefix: &[String]) -> Result<Node, Error> {
        Ok(match self {
            Query::Or(xs) => Node::Or(cheapest_first(
                xs.iter()
                    .map(|x| x.compile(prefix))
                    .collect::<Result<_, _>>()?,
            )),
            Query::And(xs) => Node::And(cheapest_first(
                xs.iter()
                    .map(|x| x.compile(prefix))
                    .collect::<Result<_, _>>()?,
            )),
            Query::Not(x) => Node::Not(Box::new(x.compile(prefix)?)),
            Query::Field { field, values, .. } => {
                let path = path_of(prefix, field);
                values.compile(&path)?
            }
            Query::Range {
                field,
                op,
                value,
                pos,
            } => {
                let path = path_of(prefix, field);
                let lit = match value.parse::<i64>() {
                    Ok(i) => Literal::Int(i),
                    Err(_) => match value.parse::<f64>() {
                        Ok(f) if f.is_finite() => Literal::Float(f),
                        _ => Literal::Str(value.clone()),
                    },
                };
                let e = Expr::Cmp(
                    *op,
                    Box::new(Expr::Field {
                        path,
                        optional: false,
                    }),
                    Box::new(Expr::Lit(lit)),
                );
                compile_condition(&e).map_err(|mut e| {
                    e.pos = *pos;
                    e
                })?
            }
            Query::Nested { field, inner } => {
                let path = path_of(prefix, field);
                let inner = inner.compile(&[])?;
                let mut rel = Vec::new();
                inner.fields(&mut rel);
                let full = rel
                    .iter()
                    .map(|p| {
                        let mut v = path.clone();
                        v.extend(p.segments.iter().cloned());
                        FieldPath::new(v)
                    })
                    .collect();
                Node::Nested {
                    path: FieldPath::new(path),
                    inner: Box::new(inner),
                    full,
                }
            }
        })
    }
}

impl Values {
    fn compile(&self, path: &[String]) -> Result<Node, Error> {
        Ok(match self {
            Values::Or(xs) => {
                // Exact keyword values of one `or` list test as one set.
                let mut exact = Vec::new();
                let mut rest = Vec::new();
                for x in xs {
                    match x {
                        Values::One(v) if !is_text_field(&path.join(".")) => match v.exact() {
                            Some(s) => exact.push(s),
                            None => rest.push(x.compile(path)?),
                        },
                        _ => rest.push(x.compile(path)?),
                    }
                }
                if !exact.is_empty() {
                    rest.push(Node::Str {
                        src: Operand::Field(FieldPath::new(path.to_vec())),
                        test: exact_test(exact, false),
                    });
                }
                Node::Or(cheapest_first(rest))
            }
            Values::And(xs) => Node::And(cheapest_first(
                xs.iter()
                    .map(|x| x.compile(path))
                    .collect::<Result<_, _>>()?,
            )),
            Values::Not(x) => Node::Not(Box::new(x.compile(path)?)),
            Values::One(v) => v.compile(path),
        })
    }
}

impl Value {
    /// The literal text, when this value is a plain keyword term.
    fn exact(&self) -> Option<String> {
        match self {
            Value::Quoted(s) => Some(s.clone()),
            Value::Unquoted(p) => pieces_text(p),
        }
    }

    fn compile(&self, path: &[String]) -> Node {
        let fp = FieldPath::new(path.to_vec());
        if let Value::Unquoted(p) = self
            && p == &[Piece::Star]
        {
            // `field:*`: the field exists.
            return Node::Not(Box::new(Node::IsNull(Operand::Field(fp))));
        }
        if is_text_field(&path.join(".")) {
            return match self {
                Value::Quoted(s) => Node::Text {
                    field: fp,
                    words: words(s, false).into_iter().map(TextWord::Exact).collect(),
                    phrase: true,
                },
                Value::Unquoted(pieces) => {
                    let text: String = pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Lit(l) => l.as_str(),
                            Piece::Star => "*",
                        })
                        .collect();
                    Node::Text {
                        field: fp,
                        words: words(&text, true)
                            .into_iter()
                            .map(|w| {
                                if w.contains('*') {
                                    TextWord::Wild(Wildcard::new(&w, false))
                                } else {
                                    TextWord::Exact(w)
                                }
                            })
                            .collect(),
                        phrase: false,
                    }
                }
            };
        }
        let test = match self {
            Value::Quoted(s) => exact_test(vec![s.clone()], false),
            Value::Unquoted(pieces) => match pieces_text(pieces) {
                Some(s) => exact_test(vec![s], false),
                None => {
                    let mut t = exact_test(vec![], false);
                    t.wild.push(Wildcard::from_pieces(pieces, false));
                    t
                }
            },
        };
        Node::Str {
            src: Operand::Field(fp),
            test,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(q: &str, ev: serde_json::Value) -> bool {
        compile_kql(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .matches(&ev)
    }

    #[test]
    fn keyword_values_are_exact_and_case_sensitive() {
        let ev = json!({"event": {"action": "get"}});
        assert!(m("event.action:get", ev.clone()));
        assert!(m("event.action:\"get\"", ev.clone()));
        assert!(!m("event.action:GET", ev.clone()));
        assert!(!m("event.action:ge", ev));
    }

    #[test]
    fn question_mark_is_literal_and_star_is_the_only_wildcard() {
        let ev = json!({"u": "/api/v1/secrets?limit=500"});
        assert!(m("u:/api/v1/secrets?limit*", ev.clone()));
        assert!(!m(
            "u:/api/v1/secrets?limit*",
            json!({"u": "/api/v1/secretsXlimit=5"})
        ));
        assert!(m("u:*secrets*", ev));
    }

    #[test]
    fn escaped_colon_is_literal_and_a_prefix_wildcard_follows() {
        assert!(m(r"i:ubuntu\:*", json!({"i": "ubuntu:22.04"})));
        assert!(!m(r"i:ubuntu\:*", json!({"i": "ubuntu22.04"})));
        assert!(m(
            r"u:system\:serviceaccount\:*",
            json!({"u": "system:serviceaccount:a:b"})
        ));
    }

    #[test]
    fn escaped_star_is_a_literal_star() {
        assert!(m(r"a:x\*", json!({"a": "x*"})));
        assert!(!m(r"a:x\*", json!({"a": "xy"})));
    }

    #[test]
    fn quoted_values_have_no_wildcards() {
        assert!(m("a:\"x*\"", json!({"a": "x*"})));
        assert!(!m("a:\"x*\"", json!({"a": "xy"})));
    }

    #[test]
    fn star_alone_means_exists() {
        assert!(m("a:*", json!({"a": ""})));
        assert!(!m("a:*", json!({"b": 1})));
        assert!(!m("a:*", json!({"a": null})));
    }

    #[test]
    fn value_lists_take_and_or_not_with_precedence() {
        let q = "ua:(* and not (*kubernetes/$Format))";
        assert!(m(q, json!({"ua": "curl/8.0"})));
        assert!(!m(
            q,
            json!({"ua": "kubectl/v1.30 (linux/amd64) kubernetes/$Format"})
        ));
        assert!(!m(q, json!({})));
        assert!(m("v:(get or list)", json!({"v": "list"})));
        assert!(m("u:(\"a\" or \"b\" or not *)", json!({})));
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        // a or (b and (not c))
        let q = "x:1 or y:1 and not z:1";
        assert!(m(q, json!({"x": 1, "z": 1})));
        assert!(m(q, json!({"y": 1})));
        assert!(!m(q, json!({"y": 1, "z": 1})));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert!(m("x:1 OR y:1", json!({"y": 1})));
        assert!(m("NOT x:1", json!({"x": 2})));
    }

    #[test]
    fn booleans_and_numbers_match_their_text() {
        assert!(m("a.b:true", json!({"a": {"b": true}})));
        assert!(!m("a.b:true", json!({"a": {"b": false}})));
        assert!(m("code:403", json!({"code": 403})));
    }

    #[test]
    fn paths_go_through_arrays_of_objects() {
        let ev = json!({"spec": {"containers": [{"image": "nginx"}, {"image": "busybox:1.36"}]}});
        assert!(m("spec.containers.image:(alpine* or busybox*)", ev.clone()));
        assert!(!m("spec.containers.image:alpine*", ev));
    }

    #[test]
    fn field_names_keep_slashes_and_dots_reach_nested_keys() {
        let ev = json!({"k": {"annotations": {"authorization_k8s_io/decision": "forbid"}}});
        assert!(m(
            "k.annotations.authorization_k8s_io/decision:\"forbid\"",
            ev
        ));
        let ev = json!({"extra": {"authentication.kubernetes.io/pod-name": ["trivy-operator-1"]}});
        assert!(m(
            "extra.authentication.kubernetes.io/pod-name :trivy-operator-*",
            ev
        ));
    }

    #[test]
    fn ranges_compare_numbers_and_dates() {
        assert!(m("code >= 400", json!({"code": 403})));
        assert!(!m("code < 400", json!({"code": 403})));
        assert!(m(
            "@timestamp > \"2026-01-01\"",
            json!({"@timestamp": "2026-06-01T00:00:00Z"})
        ));
    }

    #[test]
    fn nested_queries_hold_on_one_element() {
        let ev = json!({"c": [{"name": "a", "priv": true}, {"name": "b", "priv": false}]});
        assert!(m("c:{ name:a and priv:true }", ev.clone()));
        assert!(!m("c:{ name:b and priv:true }", ev));
    }

    #[test]
    fn text_fields_match_words_and_phrases() {
        let ev = json!({"message": "Quick brown fox jumps"});
        assert!(m("message:fox", ev.clone()));
        assert!(m("message:FOX", ev.clone()));
        assert!(m("message:\"brown fox\"", ev.clone()));
        assert!(!m("message:\"fox brown\"", ev.clone()));
        assert!(m("message:jum*", ev));
    }

    #[test]
    fn unquoted_values_keep_inner_spaces() {
        assert!(m("a:hello world", json!({"a": "hello world"})));
        assert!(m(
            "a:hello world and b:1",
            json!({"a": "hello world", "b": 1})
        ));
    }

    #[test]
    fn empty_quoted_value_matches_the_empty_string() {
        assert!(m("i:(x* or \"\")", json!({"i": ""})));
    }

    #[test]
    fn errors_have_positions() {
        let e = compile_kql("a:(b or c").unwrap_err();
        assert_eq!(e.pos, 9);
        let e = compile_kql("a:b and").unwrap_err();
        assert!(e.message.contains("KQL"), "{}", e.message);
        let e = compile_kql(r"a:b\q").unwrap_err();
        assert_eq!(e.pos, 3);
    }

    #[test]
    fn free_text_is_declined_not_misread() {
        let e = compile_kql("foo").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Unsupported);
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let q = format!("{}a:b{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(compile_kql(&q).is_err());
    }
}
