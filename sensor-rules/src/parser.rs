//! EQL parser: tokens → [`Query`] (recursive descent, precedence `or` < `and` < `not`).

use crate::ast::{ArithOp, CmpOp, Expr, KeyField, Literal, MatchKind, Query, SequenceQuery, Stage};
use crate::lexer::{SyntaxError, Tok, Token, tokenize};

/// What a query text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Query(Query),
    Sequence(SequenceQuery),
    /// Valid-looking EQL this engine deliberately does not run (sequences, samples, pipes).
    Unsupported {
        pos: usize,
        reason: String,
    },
}

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "like", "regex", "where", "by", "with", "until", "maxspan", "of",
    "sequence", "sample", "join",
];

pub fn parse_query(src: &str) -> Result<Parsed, SyntaxError> {
    // Samples and joins are declined on their first word, so their syntax
    // need not be known to the lexer.
    if let Some((pos, word)) = first_word(src)
        && ["sample", "join"].contains(&word)
    {
        return Ok(Parsed::Unsupported {
            pos,
            reason: format!(
                "EQL `{word}` queries are not supported (single-event queries and sequences are)"
            ),
        });
    }
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        in_keys: false,
    };
    if p.is_kw("sequence") {
        return p.sequence();
    }
    p.query()
}

/// Parses a bare condition (no `category where`); handy for tests and tools.
pub fn parse_condition(src: &str) -> Result<Expr, SyntaxError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        in_keys: false,
    };
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

/// The first identifier of `src` after whitespace and comments, with its offset.
fn first_word(src: &str) -> Option<(usize, &str)> {
    let mut i = 0;
    loop {
        let rest = &src[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("/*") {
            i += trimmed.find("*/")? + 2;
        } else if trimmed.starts_with("//") {
            i += trimmed.find('\n')?;
        } else {
            let len = trimmed
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(trimmed.len());
            return (len > 0).then(|| (i, &trimmed[..len]));
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Parsing `by` keys: a `[` after a field opens the next stage.
    in_keys: bool,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == kw)
    }

    fn is_tilde_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::TildeIdent(w) if w == kw)
    }

    fn err(&self, expected: &str) -> SyntaxError {
        SyntaxError::syntax(
            self.pos(),
            format!("found {}: expected {expected}", self.peek()),
        )
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<(), SyntaxError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    fn expect_eof(&self) -> Result<(), SyntaxError> {
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.err("'and', 'or' or end of query"))
        }
    }

    fn query(&mut self) -> Result<Parsed, SyntaxError> {
        let q = self.event_query()?;
        if *self.peek() == Tok::Pipe {
            return Ok(self.pipe_unsupported());
        }
        self.expect_eof()?;
        Ok(Parsed::Query(q))
    }

    fn pipe_unsupported(&self) -> Parsed {
        Parsed::Unsupported {
            pos: self.pos(),
            reason: "EQL pipes (`| head`, `| unique`, ...) act on result sets; this engine evaluates events as they come"
                .into(),
        }
    }

    /// `category where condition`, stopping at whatever follows the condition.
    fn event_query(&mut self) -> Result<Query, SyntaxError> {
        let category = match self.peek().clone() {
            Tok::Ident(w) if w == "any" => None,
            Tok::Ident(w) if !RESERVED.contains(&w.as_str()) => Some(w),
            Tok::Str(s) => Some(s),
            _ => return Err(self.err("an event category such as 'process' or 'any'")),
        };
        self.bump();
        if !self.is_kw("where") {
            return Err(self.err("'where'"));
        }
        self.bump();
        let condition = self.expr()?;
        Ok(Query {
            category,
            condition,
        })
    }

    /// `sequence [by k, ...] [with maxspan=N]` (either order), two or more
    /// stages, then an optional `until [stage]`.
    fn sequence(&mut self) -> Result<Parsed, SyntaxError> {
        let pos = self.pos();
        self.bump(); // sequence
        let mut by = Vec::new();
        let mut maxspan_ms = None;
        for _ in 0..2 {
            if self.is_kw("by") && by.is_empty() {
                by = self.join_keys()?;
            } else if self.is_kw("with") && maxspan_ms.is_none() {
                self.bump();
                if !self.is_kw("maxspan") {
                    return Err(self.err("'maxspan' after 'with'"));
                }
                self.bump();
                self.expect(Tok::Assign, "'=' after 'maxspan'")?;
                maxspan_ms = Some(match *self.peek() {
                    Tok::Duration(ms) => ms,
                    // A bare number is milliseconds, as in Elasticsearch.
                    Tok::Int(n) if n >= 0 => n as u64,
                    _ => return Err(self.err("a time span such as 30s, 5m or 500ms")),
                });
                self.bump();
            }
        }
        let mut stages = Vec::new();
        while matches!(self.peek(), Tok::LBracket | Tok::Bang) {
            stages.push(self.stage(true)?);
        }
        let until = if self.is_kw("until") {
            self.bump();
            if *self.peek() != Tok::LBracket {
                return Err(self.err("'[' to start the until stage"));
            }
            Some(self.stage(false)?)
        } else {
            None
        };
        if *self.peek() == Tok::Pipe {
            return Ok(self.pipe_unsupported());
        }
        if stages.is_empty() {
            return Err(self.err("'by', 'with maxspan=' or '[' to start the first stage"));
        }
        if *self.peek() != Tok::Eof {
            return Err(self.err("'[' for another stage, 'until' or end of query"));
        }
        let positive: u32 = stages.iter().filter(|s| !s.missing).map(|s| s.runs).sum();
        let total: u32 = stages.iter().map(|s| s.runs).sum();
        if total < 2 {
            return Err(SyntaxError::syntax(
                stages[0].pos,
                "a sequence needs at least two stages",
            ));
        }
        if positive == 0 {
            return Err(SyntaxError::syntax(
                stages[0].pos,
                "a sequence needs at least one stage that is not a missing event ('![...]')",
            ));
        }
        Ok(Parsed::Sequence(SequenceQuery {
            by,
            maxspan_ms,
            stages,
            until,
            pos,
        }))
    }

    /// `[query] [by keys] [with runs=N]`, or `![query] [by keys]` when `allow_missing`.
    fn stage(&mut self, allow_missing: bool) -> Result<Stage, SyntaxError> {
        let pos = self.pos();
        let missing = *self.peek() == Tok::Bang;
        if missing {
            if !allow_missing {
                return Err(self.err("'[' (an until stage cannot be a missing event)"));
            }
            self.bump();
        }
        self.expect(Tok::LBracket, "'[' to start a stage")?;
        let query = self.event_query()?;
        self.expect(Tok::RBracket, "']' to close the stage, or 'and'/'or'")?;
        let by = if self.is_kw("by") {
            self.join_keys()?
        } else {
            Vec::new()
        };
        let mut runs = 1;
        if self.is_kw("with") && matches!(self.peek_at(1), Tok::Ident(w) if w == "runs") {
            self.bump();
            self.bump();
            self.expect(Tok::Assign, "'=' after 'runs'")?;
            runs = match *self.peek() {
                Tok::Int(n) if (1..=100).contains(&n) && !missing => n as u32,
                _ => {
                    return Err(
                        self.err("a number of runs from 1 to 100 (not on a missing-event stage)")
                    );
                }
            };
            self.bump();
        }
        Ok(Stage {
            query,
            by,
            runs,
            missing,
            pos,
        })
    }

    /// `by field, ?field, ...`.
    fn join_keys(&mut self) -> Result<Vec<KeyField>, SyntaxError> {
        self.bump(); // by
        let mut keys = Vec::new();
        loop {
            let pos = self.pos();
            let optional = *self.peek() == Tok::Question;
            if optional {
                self.bump();
            }
            match self.peek() {
                Tok::Ident(w) if !RESERVED.contains(&w.as_str()) => {}
                Tok::Quoted(_) => {}
                _ => return Err(self.err("a field name as join key")),
            }
            self.in_keys = true;
            let field = self.field(optional);
            self.in_keys = false;
            let Expr::Field { path, .. } = field? else {
                return Err(self.err("a field name as join key"));
            };
            keys.push(KeyField {
                path,
                optional,
                pos,
            });
            if *self.peek() != Tok::Comma {
                return Ok(keys);
            }
            self.bump();
        }
    }

    pub fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.and()?];
        while self.is_kw("or") {
            self.bump();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.not()?];
        while self.is_kw("and") {
            self.bump();
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap()
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.is_kw("not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicated()
    }

    fn predicated(&mut self) -> Result<Expr, SyntaxError> {
        let lhs = self.arith()?;
        // `not in` / `not in~`
        let negated = self.is_kw("not")
            && (matches!(self.peek_at(1), Tok::Ident(w) if w == "in")
                || matches!(self.peek_at(1), Tok::TildeIdent(w) if w == "in"));
        if negated {
            self.bump();
        }
        if self.is_kw("in") || self.is_tilde_kw("in") {
            let ci = self.is_tilde_kw("in");
            self.bump();
            self.expect(Tok::LParen, "'(' to start the 'in' list")?;
            let mut list = vec![self.expr()?];
            while *self.peek() == Tok::Comma {
                self.bump();
                list.push(self.expr()?);
            }
            self.expect(Tok::RParen, "',' or ')' in the 'in' list")?;
            return Ok(Expr::In {
                lhs: Box::new(lhs),
                list,
                ci,
                negated,
            });
        }
        let m = match self.peek() {
            Tok::Colon => Some((MatchKind::Seq, true)),
            Tok::Ident(w) if w == "like" => Some((MatchKind::Like, false)),
            Tok::TildeIdent(w) if w == "like" => Some((MatchKind::Like, true)),
            Tok::Ident(w) if w == "regex" => Some((MatchKind::Regex, false)),
            Tok::TildeIdent(w) if w == "regex" => Some((MatchKind::Regex, true)),
            _ => None,
        };
        if let Some((kind, ci)) = m {
            self.bump();
            let mut patterns = Vec::new();
            if *self.peek() == Tok::LParen {
                self.bump();
                patterns.push(self.constant()?);
                while *self.peek() == Tok::Comma {
                    self.bump();
                    patterns.push(self.constant()?);
                }
                self.expect(Tok::RParen, "',' or ')' in the pattern list")?;
            } else {
                patterns.push(self.constant()?);
            }
            return Ok(Expr::Match {
                lhs: Box::new(lhs),
                kind,
                ci,
                patterns,
            });
        }
        let op = match self.peek() {
            Tok::EqEq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Assign => {
                return Err(
                    self.err("'==' (EQL has no single '=' outside `with maxspan=` and `runs=`)")
                );
            }
            _ => return Ok(lhs),
        };
        self.bump();
        let rhs = self.arith()?;
        Ok(Expr::Cmp(op, Box::new(lhs), Box::new(rhs)))
    }

    fn constant(&mut self) -> Result<(Literal, usize), SyntaxError> {
        let pos = self.pos();
        let neg = *self.peek() == Tok::Minus;
        if neg {
            self.bump();
        }
        let lit = match self.peek().clone() {
            Tok::Str(s) if !neg => Literal::Str(s),
            Tok::Int(n) => Literal::Int(if neg { -n } else { n }),
            Tok::Float(f) => Literal::Float(if neg { -f } else { f }),
            Tok::Ident(w) if !neg && w == "true" => Literal::Bool(true),
            Tok::Ident(w) if !neg && w == "false" => Literal::Bool(false),
            Tok::Ident(w) if !neg && w == "null" => Literal::Null,
            _ => return Err(self.err("a constant (string, number, boolean or null)")),
        };
        self.bump();
        Ok((lit, pos))
    }

    fn arith(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            lhs = Expr::Arith(op, Box::new(lhs), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                Tok::Percent => ArithOp::Mod,
                _ => return Ok(lhs),
            };
            self.bump();
            lhs = Expr::Arith(op, Box::new(lhs), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            Tok::Minus => {
                self.bump();
                Ok(match self.unary()? {
                    Expr::Lit(Literal::Int(n)) => Expr::Lit(Literal::Int(n.wrapping_neg())),
                    Expr::Lit(Literal::Float(f)) => Expr::Lit(Literal::Float(-f)),
                    e => Expr::Neg(Box::new(e)),
                })
            }
            Tok::Plus => {
                self.bump();
                self.unary()
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Lit(Literal::Str(s)))
            }
            Tok::Int(n) => {
                self.bump();
                Ok(Expr::Lit(Literal::Int(n)))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Expr::Lit(Literal::Float(f)))
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::TildeIdent(name) if *self.peek_at(1) == Tok::LParen => self.call(name, true, pos),
            Tok::Ident(w) if w == "true" || w == "false" || w == "null" => {
                self.bump();
                Ok(Expr::Lit(match w.as_str() {
                    "true" => Literal::Bool(true),
                    "false" => Literal::Bool(false),
                    _ => Literal::Null,
                }))
            }
            Tok::Ident(w) if !RESERVED.contains(&w.as_str()) && *self.peek_at(1) == Tok::LParen => {
                self.call(w, false, pos)
            }
            Tok::Question => {
                self.bump();
                self.field(true)
            }
            Tok::Ident(w) if !RESERVED.contains(&w.as_str()) => self.field(false),
            Tok::Quoted(_) => self.field(false),
            _ => Err(self.err("a field, constant, function call or '('")),
        }
    }

    fn call(&mut self, name: String, ci: bool, pos: usize) -> Result<Expr, SyntaxError> {
        self.bump(); // name
        self.bump(); // (
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            args.push(self.expr()?);
            while *self.peek() == Tok::Comma {
                self.bump();
                args.push(self.expr()?);
            }
        }
        self.expect(Tok::RParen, "',' or ')' in the argument list")?;
        Ok(Expr::Call {
            name,
            ci,
            args,
            pos,
        })
    }

    fn field(&mut self, optional: bool) -> Result<Expr, SyntaxError> {
        let mut path = self.segment()?;
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    path.extend(self.segment()?);
                }
                Tok::LBracket if !self.in_keys => {
                    return Err(SyntaxError::syntax(
                        self.pos(),
                        "array index access is not supported in EQL field names",
                    ));
                }
                _ => return Ok(Expr::Field { path, optional }),
            }
        }
    }

    /// One name segment; a backtick name is a whole dotted path (`` `a.b` `` is `a.b`).
    fn segment(&mut self) -> Result<Vec<String>, SyntaxError> {
        match self.peek().clone() {
            Tok::Ident(w) => {
                self.bump();
                Ok(vec![w])
            }
            Tok::Quoted(w) => {
                self.bump();
                Ok(w.split('.').map(str::to_string).collect())
            }
            // Numeric path segments (`a.0`) are plain object keys.
            Tok::Int(n) => {
                self.bump();
                Ok(vec![n.to_string()])
            }
            _ => Err(self.err("a field name")),
        }
    }
}
