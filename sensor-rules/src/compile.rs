//! AST → matcher tree. Patterns, sets, regexes and function constants are
//! compiled here once per rule, so evaluation only walks the event.

use crate::ast::{ArithOp, CmpOp, Expr, Literal, MatchKind, Query};
use crate::casefold::fold;
use crate::functions::{Cidr, Func, Prepared};
use crate::lucene;
use crate::value::{FieldPath, Val};
use crate::wildcard::{self, Wildcard, has_wildcard};

/// Wildcard lists at least this long are matched as one regex.
const WILD_SET_MIN: usize = 4;
use regex::Regex;
use std::collections::HashSet;

/// A compile error (bad regex, unknown function, ...) at a byte offset of the query.
pub type CompileError = crate::error::Error;

/// Something that yields values: fields yield one per array element.
#[derive(Debug, Clone)]
pub enum Operand {
    Lit(Val<'static>),
    Field(FieldPath),
    Call {
        func: Func,
        ci: bool,
        args: Vec<Operand>,
        prepared: Prepared,
    },
    Neg(Box<Operand>),
    /// A boolean sub-condition used as a value (`f(a == b)`, `(x : "a") == true`).
    Cond(Box<Node>),
}

/// Literal string sets, folded when case-insensitive.
#[derive(Debug, Clone)]
pub enum Exact {
    None,
    One(String),
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl Exact {
    fn from_vec(mut v: Vec<String>) -> Exact {
        v.sort();
        v.dedup();
        match v.len() {
            0 => Exact::None,
            1 => Exact::One(v.pop().unwrap_or_default()),
            2..=6 => Exact::Few(v),
            _ => Exact::Many(v.into_iter().collect()),
        }
    }

    pub fn values(&self) -> Vec<&str> {
        match self {
            Exact::None => vec![],
            Exact::One(s) => vec![s],
            Exact::Few(v) => v.iter().map(String::as_str).collect(),
            Exact::Many(h) => h.iter().map(String::as_str).collect(),
        }
    }
}

/// A string test on each value: exact literals, wildcards, one regex.
#[derive(Debug, Clone)]
pub struct StrTest {
    pub ci: bool,
    pub exact: Exact,
    pub wild: Vec<Wildcard>,
    /// Long wildcard lists, compiled into one automaton (see [`crate::wildcard::to_regex`]).
    pub wild_set: Option<Regex>,
    /// The patterns `wild_set` was built from (kept for the file watch
    /// set, which needs their literal parts; not used to match).
    pub wild_src: Vec<Wildcard>,
    pub regex: Option<Regex>,
}

impl StrTest {
    /// Every wildcard pattern of the test, however it is matched.
    pub fn wildcards(&self) -> &[Wildcard] {
        if self.wild.is_empty() {
            &self.wild_src
        } else {
            &self.wild
        }
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Str {
        src: Operand,
        test: StrTest,
    },
    /// True when the operand yields no non-null value (`x == null`).
    IsNull(Operand),
    /// `==`, `<`, `<=`, `>`, `>=` between arbitrary operands (`!=` is `Not(Eq)`).
    Cmp {
        op: CmpOp,
        lhs: Operand,
        rhs: Operand,
    },
    /// `in` / `in~` with non-literal or non-string members.
    InList {
        lhs: Operand,
        list: Vec<Operand>,
        ci: bool,
    },
    /// A value used as a condition: true when any value is boolean true.
    Truthy(Operand),
    /// A date field against a constant date, in epoch milliseconds
    /// (`field <op> ms`; see [`crate::date`]).
    DateCmp {
        op: CmpOp,
        field: FieldPath,
        ms: i64,
    },
    /// KQL `path:{ inner }`: `inner` holds for one object under `path`
    /// (its fields are relative to it); `full` lists them from the root.
    Nested {
        path: FieldPath,
        inner: Box<Node>,
        full: Vec<FieldPath>,
    },
    /// KQL on a text field (`message`, `*.text`): the value is split into
    /// lower-case words, as the standard analyzer does; `phrase` needs
    /// them adjacent and in order, otherwise any one word matches.
    Text {
        field: FieldPath,
        words: Vec<TextWord>,
        phrase: bool,
    },
}

/// One analysed word of a KQL text query: literal, or a wildcard pattern.
#[derive(Debug, Clone)]
pub enum TextWord {
    Exact(String),
    Wild(Wildcard),
}

impl Operand {
    /// Every field path this operand reads.
    pub fn fields<'a>(&'a self, out: &mut Vec<&'a FieldPath>) {
        match self {
            Operand::Lit(_) => {}
            Operand::Field(p) => out.push(p),
            Operand::Call { args, .. } => args.iter().for_each(|a| a.fields(out)),
            Operand::Neg(x) => x.fields(out),
            Operand::Cond(n) => n.fields(out),
        }
    }
}

impl Node {
    /// Every field path this condition reads.
    pub fn fields<'a>(&'a self, out: &mut Vec<&'a FieldPath>) {
        match self {
            Node::Const(_) => {}
            Node::And(xs) | Node::Or(xs) => xs.iter().for_each(|x| x.fields(out)),
            Node::Not(x) => x.fields(out),
            Node::Str { src, .. } | Node::IsNull(src) | Node::Truthy(src) => src.fields(out),
            Node::DateCmp { field, .. } | Node::Text { field, .. } => out.push(field),
            Node::Nested { full, .. } => out.extend(full.iter()),
            Node::Cmp { lhs, rhs, .. } => {
                lhs.fields(out);
                rhs.fields(out);
            }
            Node::InList { lhs, list, .. } => {
                lhs.fields(out);
                list.iter().for_each(|x| x.fields(out));
            }
        }
    }
}

impl Node {
    /// The paths of the KQL nested queries in this condition (their
    /// objects are read as JSON).
    pub fn nested_paths<'a>(&'a self, out: &mut Vec<&'a FieldPath>) {
        let mut ops = Vec::new();
        match self {
            Node::Nested { path, .. } => out.push(path),
            Node::And(xs) | Node::Or(xs) => xs.iter().for_each(|x| x.nested_paths(out)),
            Node::Not(x) => x.nested_paths(out),
            Node::Str { src, .. } | Node::IsNull(src) | Node::Truthy(src) => ops.push(src),
            Node::Cmp { lhs, rhs, .. } => ops.extend([lhs, rhs]),
            Node::InList { lhs, list, .. } => {
                ops.push(lhs);
                ops.extend(list);
            }
            Node::Const(_) | Node::DateCmp { .. } | Node::Text { .. } => {}
        }
        while let Some(op) = ops.pop() {
            match op {
                Operand::Cond(n) => n.nested_paths(out),
                Operand::Call { args, .. } => ops.extend(args),
                Operand::Neg(x) => ops.push(x),
                Operand::Lit(_) | Operand::Field(_) => {}
            }
        }
    }
}

/// A compiled single-event query.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub category: Option<String>,
    pub root: Node,
}

pub fn compile_query(q: &Query) -> Result<Compiled, CompileError> {
    Ok(Compiled {
        category: q.category.clone(),
        root: cond(&q.condition)?,
    })
}

pub fn compile_condition(e: &Expr) -> Result<Node, CompileError> {
    cond(e)
}

fn lit_val(l: &Literal) -> Val<'static> {
    match l {
        Literal::Null => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(i) => Val::Int(*i),
        Literal::Float(f) => Val::Float(*f),
        Literal::Str(s) => Val::Str(s.clone().into()),
    }
}

pub(crate) fn exact_test(values: Vec<String>, ci: bool) -> StrTest {
    let values = if ci {
        values.iter().map(|s| fold(s).into_owned()).collect()
    } else {
        values
    };
    StrTest {
        ci,
        exact: Exact::from_vec(values),
        wild: vec![],
        wild_set: None,
        wild_src: vec![],
        regex: None,
    }
}

fn or(mut parts: Vec<Node>) -> Node {
    if parts.len() == 1 {
        parts.pop().unwrap_or(Node::Const(false))
    } else {
        Node::Or(parts)
    }
}

fn cond(e: &Expr) -> Result<Node, CompileError> {
    Ok(match e {
        Expr::Lit(Literal::Bool(b)) => Node::Const(*b),
        Expr::And(xs) => Node::And(cheapest_first(flatten(xs, true)?)),
        Expr::Or(xs) => Node::Or(cheapest_first(flatten(xs, false)?)),
        Expr::Not(x) => Node::Not(Box::new(cond(x)?)),
        Expr::Cmp(op, a, b) => cmp(*op, a, b)?,
        Expr::In {
            lhs,
            list,
            ci,
            negated,
        } => {
            let lhs_op = operand(lhs)?;
            let mut strings = Vec::new();
            let mut others = Vec::new();
            let mut null = false;
            for item in list {
                match item {
                    Expr::Lit(Literal::Str(s)) => strings.push(s.clone()),
                    Expr::Lit(Literal::Null) => null = true,
                    other => others.push(operand(other)?),
                }
            }
            let mut parts = Vec::new();
            if !strings.is_empty() {
                parts.push(Node::Str {
                    src: lhs_op.clone(),
                    test: exact_test(strings, *ci),
                });
            }
            if !others.is_empty() {
                parts.push(Node::InList {
                    lhs: lhs_op.clone(),
                    list: others,
                    ci: *ci,
                });
            }
            if null {
                parts.push(Node::IsNull(lhs_op));
            }
            let n = or(parts);
            if *negated { Node::Not(Box::new(n)) } else { n }
        }
        Expr::Match {
            lhs,
            kind,
            ci,
            patterns,
        } => matcher(lhs, *kind, *ci, patterns)?,
        other => Node::Truthy(operand(other)?),
    })
}

/// `field <op> literal` (or flipped) where the field is an ECS date: the
/// literal as epoch milliseconds, and the operator as seen from the field.
fn date_cmp(op: CmpOp, a: &Expr, b: &Expr) -> Result<Option<Node>, CompileError> {
    let flip = |op| match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    };
    let (path, lit, op) = match (a, b) {
        (Expr::Field { path, .. }, Expr::Lit(l)) => (path, l, op),
        (Expr::Lit(l), Expr::Field { path, .. }) => (path, l, flip(op)),
        _ => return Ok(None),
    };
    if !crate::date::is_date_field(&path.join(".")) {
        return Ok(None);
    }
    let ms = match lit {
        Literal::Str(s) => crate::date::to_epoch_ms(&Val::Str(s.as_str().into())),
        Literal::Int(i) => Some(*i),
        Literal::Float(f) => Some(f.trunc() as i64),
        _ => return Ok(None),
    };
    let Some(ms) = ms else {
        return Err(CompileError::compile(
            0,
            format!(
                "'{}' is a date field: compare it with an ISO-8601 date such as \"2026-12-01T10:00:00Z\" or epoch milliseconds",
                path.join(".")
            ),
        ));
    };
    Ok(Some(Node::DateCmp {
        op,
        field: FieldPath::new(path.clone()),
        ms,
    }))
}

fn cmp(op: CmpOp, a: &Expr, b: &Expr) -> Result<Node, CompileError> {
    let negate = op == CmpOp::Ne;
    let base = if negate { CmpOp::Eq } else { op };
    if let Some(node) = date_cmp(base, a, b)? {
        return Ok(if negate {
            Node::Not(Box::new(node))
        } else {
            node
        });
    }
    let node = match (base, a, b) {
        (CmpOp::Eq, x, Expr::Lit(Literal::Null)) | (CmpOp::Eq, Expr::Lit(Literal::Null), x) => {
            Node::IsNull(operand(x)?)
        }
        // `==` is exact and case-sensitive: `*` and `?` are literal characters.
        (CmpOp::Eq, x, Expr::Lit(Literal::Str(s))) | (CmpOp::Eq, Expr::Lit(Literal::Str(s)), x) => {
            Node::Str {
                src: operand(x)?,
                test: exact_test(vec![s.clone()], false),
            }
        }
        _ => Node::Cmp {
            op: base,
            lhs: operand(a)?,
            rhs: operand(b)?,
        },
    };
    Ok(if negate {
        Node::Not(Box::new(node))
    } else {
        node
    })
}

fn matcher(
    lhs: &Expr,
    kind: MatchKind,
    ci: bool,
    patterns: &[(Literal, usize)],
) -> Result<Node, CompileError> {
    let src = operand(lhs)?;
    let mut exact = Vec::new();
    let mut wild = Vec::new();
    let mut regexes = Vec::new();
    let mut parts = Vec::new();
    for (lit, pos) in patterns {
        match (kind, lit) {
            (MatchKind::Regex, Literal::Str(s)) => regexes.push((s.as_str(), *pos)),
            (_, Literal::Str(s)) if has_wildcard(s) => wild.push(s.as_str()),
            (_, Literal::Str(s)) => exact.push(s.clone()),
            (MatchKind::Seq, Literal::Null) => parts.push(Node::IsNull(src.clone())),
            (MatchKind::Seq, other) => parts.push(Node::Cmp {
                op: CmpOp::Eq,
                lhs: src.clone(),
                rhs: Operand::Lit(lit_val(other)),
            }),
            (_, _) => {
                let op = if kind == MatchKind::Like {
                    "like"
                } else {
                    "regex"
                };
                return Err(CompileError::compile(
                    *pos,
                    format!("'{op}' needs string patterns"),
                ));
            }
        }
    }
    let regex = match regexes.len() {
        0 => None,
        _ => {
            let texts: Vec<&str> = regexes.iter().map(|(s, _)| *s).collect();
            Some(lucene::compile_any(&texts, ci).map_err(|message| {
                // Point at the offending pattern when there is one.
                let pos = regexes
                    .iter()
                    .find(|(s, _)| lucene::translate(s).is_err())
                    .map_or(regexes[0].1, |r| r.1);
                CompileError::compile(pos, format!("invalid regex: {message}"))
            })?)
        }
    };
    if !exact.is_empty() || !wild.is_empty() || regex.is_some() {
        let mut test = exact_test(exact, ci);
        // Past a handful of patterns one automaton beats pattern-by-pattern scans.
        // (Built only for such lists: a discarded automaton cost 1 ms a rule.)
        match (wild.len() >= WILD_SET_MIN)
            .then(|| wildcard::to_regex(&wild, ci))
            .and_then(Result::ok)
        {
            Some(set) => {
                test.wild_set = Some(set);
                test.wild_src = wild.iter().map(|p| Wildcard::new(p, ci)).collect();
            }
            None => test.wild = wild.iter().map(|p| Wildcard::new(p, ci)).collect(),
        }
        test.regex = regex;
        parts.insert(0, Node::Str { src, test });
    }
    Ok(or(parts))
}

fn operand(e: &Expr) -> Result<Operand, CompileError> {
    Ok(match e {
        Expr::Lit(l) => Operand::Lit(lit_val(l)),
        Expr::Field { path, .. } => Operand::Field(FieldPath::new(path.clone())),
        Expr::Neg(x) => Operand::Neg(Box::new(operand(x)?)),
        Expr::Arith(op, a, b) => {
            let func = match op {
                ArithOp::Add => Func::Add,
                ArithOp::Sub => Func::Subtract,
                ArithOp::Mul => Func::Multiply,
                ArithOp::Div => Func::Divide,
                ArithOp::Mod => Func::Modulo,
            };
            Operand::Call {
                func,
                ci: false,
                args: vec![operand(a)?, operand(b)?],
                prepared: Prepared::None,
            }
        }
        Expr::Call {
            name,
            ci,
            args,
            pos,
        } => {
            let err = |message: String| CompileError::compile(*pos, message);
            let func = Func::resolve(name, *ci, args.len()).map_err(err)?;
            let constant_strings = || -> Result<Vec<&str>, CompileError> {
                args[1..]
                    .iter()
                    .map(|a| match a {
                        Expr::Lit(Literal::Str(s)) => Ok(s.as_str()),
                        _ => Err(err(format!(
                            "'{name}' needs constant string patterns after the first argument"
                        ))),
                    })
                    .collect()
            };
            let (prepared, used) = match func {
                Func::Wildcard => (
                    Prepared::Wildcards(
                        constant_strings()?
                            .into_iter()
                            .map(|p| Wildcard::new(p, *ci))
                            .collect(),
                    ),
                    1,
                ),
                Func::CidrMatch => {
                    let cidrs = constant_strings()?
                        .into_iter()
                        .map(Cidr::parse)
                        .collect::<Result<_, _>>()
                        .map_err(err)?;
                    (Prepared::Cidrs(cidrs), 1)
                }
                _ => (Prepared::None, args.len()),
            };
            let args = args[..used].iter().map(operand).collect::<Result<_, _>>()?;
            Operand::Call {
                func,
                ci: *ci,
                args,
                prepared,
            }
        }
        cond_expr => Operand::Cond(Box::new(cond(cond_expr)?)),
    })
}

/// Compiles the operands of an `and` (`and_ = true`) or `or`, lifting nested
/// operands of the same kind (`a and (b and c)`) so they can be reordered together.
fn flatten(xs: &[Expr], and_: bool) -> Result<Vec<Node>, CompileError> {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        match (cond(x)?, and_) {
            (Node::And(inner), true) | (Node::Or(inner), false) => out.extend(inner),
            (n, _) => out.push(n),
        }
    }
    Ok(out)
}

/// Conditions have no side effects and cannot fail, so `and`/`or` operands
/// may run in any order: run the cheap ones first so short-circuiting skips
/// the wildcard lists and regexes on most events. The sort is stable.
pub(crate) fn cheapest_first(mut xs: Vec<Node>) -> Vec<Node> {
    xs.sort_by_key(cost);
    xs
}

/// A rough relative evaluation cost.
fn cost(n: &Node) -> u32 {
    let operand = |o: &Operand| match o {
        Operand::Lit(_) => 0,
        Operand::Field(p) => p.segments.len() as u32,
        Operand::Neg(_) | Operand::Call { .. } | Operand::Cond(_) => 20,
    };
    match n {
        Node::Const(_) => 0,
        Node::IsNull(o) => 1 + operand(o),
        Node::Cmp { lhs, rhs, .. } => 2 + operand(lhs) + operand(rhs),
        Node::Str { src, test } => {
            let patterns = test.wild.len() as u32 * 4 + if test.wild_set.is_some() { 8 } else { 0 };
            let exact = if matches!(test.exact, Exact::None) {
                0
            } else {
                1
            };
            2 + operand(src) + exact + patterns + if test.regex.is_some() { 12 } else { 0 }
        }
        Node::InList { lhs, list, .. } => 4 + operand(lhs) + list.iter().map(operand).sum::<u32>(),
        Node::Truthy(o) => 2 + operand(o),
        Node::DateCmp { field, .. } => 6 + field.segments.len() as u32,
        Node::Text { field, words, .. } => 8 + field.segments.len() as u32 + words.len() as u32,
        Node::Nested { path, inner, .. } => 4 + path.segments.len() as u32 + cost(inner),
        Node::Not(x) => cost(x),
        // Operands are already sorted: an `and` usually stops at its first one.
        Node::And(xs) => xs.first().map_or(0, cost) + xs.len() as u32,
        Node::Or(xs) => xs.iter().map(cost).sum(),
    }
}
