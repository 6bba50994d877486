//! EQL parser: tokens → [`Query`] (recursive descent, precedence `or` < `and` < `not`).

use crate::ast::{ArithOp, CmpOp, Expr, Literal, MatchKind, Query};
use crate::lexer::{SyntaxError, Tok, Token, tokenize};

/// What a query text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Query(Query),
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
    // Sequences use syntax this lexer does not know (`maxspan=1s`), so decline
    // them on their first word, before tokenizing the rest.
    if let Some((pos, word)) = first_word(src)
        && ["sequence", "sample", "join"].contains(&word)
    {
        return Ok(Parsed::Unsupported {
            pos,
            reason: format!(
                "EQL `{word}` queries correlate several events over time; this engine evaluates single-event queries only"
            ),
        });
    }
    let toks = tokenize(src)?;
    let mut p = Parser { toks, i: 0 };
    p.query()
}

/// Parses a bare condition (no `category where`); handy for tests and tools.
pub fn parse_condition(src: &str) -> Result<Expr, SyntaxError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, i: 0 };
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
        SyntaxError::new(
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
        if *self.peek() == Tok::Pipe {
            return Ok(Parsed::Unsupported {
                pos: self.pos(),
                reason: "EQL pipes (`| head`, `| unique`, ...) act on result sets; this engine evaluates single events"
                    .into(),
            });
        }
        self.expect_eof()?;
        Ok(Parsed::Query(Query {
            category,
            condition,
        }))
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
                Tok::LBracket => {
                    return Err(SyntaxError::new(
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
