//! The EQL syntax tree produced by the parser and consumed by the compiler.

/// A parsed single-event EQL query: `<category> where <condition>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `None` for `any where`.
    pub category: Option<String>,
    pub condition: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The string-matching operators that take constant patterns on the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// `:` — case-insensitive equality, or `like~` when the value has a wildcard.
    Seq,
    /// `like` / `like~`.
    Like,
    /// `regex` / `regex~` (Lucene syntax, whole-value match).
    Regex,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Literal),
    /// A field path such as `process.parent.name`; `optional` for `?field`.
    Field {
        path: Vec<String>,
        optional: bool,
    },
    /// `name(args)`; `ci` for the `name~(...)` form. `pos` is the byte offset for errors.
    Call {
        name: String,
        ci: bool,
        args: Vec<Expr>,
        pos: usize,
    },
    Neg(Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In {
        lhs: Box<Expr>,
        list: Vec<Expr>,
        ci: bool,
        negated: bool,
    },
    Match {
        lhs: Box<Expr>,
        kind: MatchKind,
        ci: bool,
        patterns: Vec<(Literal, usize)>,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A join key of a sequence (`by process.entity_id`); `optional` for `?field`,
/// whose missing value joins as null (a plain field must be present).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    pub path: Vec<String>,
    pub optional: bool,
    pub pos: usize,
}

/// One `[ category where condition ]` term of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub query: Query,
    /// The stage's own `by` keys, joined after the sequence's shared ones.
    pub by: Vec<KeyField>,
    /// `with runs=N`: the stage stands for N consecutive stages.
    pub runs: u32,
    /// `![ ... ]`: the sequence matches only if no such event happens here.
    pub missing: bool,
    /// Byte offset of the stage's `[` (or `!`).
    pub pos: usize,
}

/// `sequence [by keys] [with maxspan=N] [stage]... [until [stage]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceQuery {
    pub by: Vec<KeyField>,
    pub maxspan_ms: Option<u64>,
    pub stages: Vec<Stage>,
    pub until: Option<Stage>,
    /// Byte offset of the `sequence` keyword.
    pub pos: usize,
}
