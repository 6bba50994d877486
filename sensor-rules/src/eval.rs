//! Evaluates compiled matchers against one ECS event.
//!
//! Values flow through callbacks so the common path (a field tested against
//! compiled literals) allocates nothing. Every positive test is existential
//! over array elements; negations (`not`, `!=`, `not in`) are the boolean
//! complement, i.e. "no element matches", and are true on a missing field.

use crate::ast::CmpOp;
use crate::casefold::{eq_folded, fold};
use crate::compile::{Compiled, Exact, Node, Operand, StrTest};
use crate::document::{Document, Leaf, exists, has_str, scalars};
use crate::functions;
use crate::value::{FieldPath, Val, compare};
use std::cmp::Ordering;
use std::sync::OnceLock;

/// Upper bound on argument combinations for one function call (array fields
/// multiply); beyond it the remaining combinations are not evaluated.
const MAX_COMBINATIONS: usize = 4096;

fn category_field() -> &'static FieldPath {
    static F: OnceLock<FieldPath> = OnceLock::new();
    F.get_or_init(|| FieldPath::new(vec!["event".into(), "category".into()]))
}

impl Compiled {
    pub fn matches(&self, event: &dyn Document) -> bool {
        if let Some(cat) = &self.category
            && !has_str(event, category_field(), cat)
        {
            return false;
        }
        self.root.eval(event)
    }
}

impl StrTest {
    pub fn matches(&self, s: &str) -> bool {
        let exact = match &self.exact {
            Exact::None => false,
            Exact::One(x) => {
                if self.ci {
                    eq_folded(s, x)
                } else {
                    s == x
                }
            }
            Exact::Few(xs) => xs
                .iter()
                .any(|x| if self.ci { eq_folded(s, x) } else { s == x }),
            Exact::Many(set) => {
                if self.ci {
                    set.contains(fold(s).as_ref())
                } else {
                    set.contains(s)
                }
            }
        };
        exact
            || self.wild.iter().any(|w| w.matches(s))
            || self.wild_set.as_ref().is_some_and(|r| r.is_match(s))
            || self.regex.as_ref().is_some_and(|r| r.is_match(s))
    }
}

impl Node {
    pub fn eval(&self, ev: &dyn Document) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::And(xs) => xs.iter().all(|x| x.eval(ev)),
            Node::Or(xs) => xs.iter().any(|x| x.eval(ev)),
            Node::Not(x) => !x.eval(ev),
            Node::Str { src, test } => each(src, ev, &mut |v| match v {
                Val::Str(s) => test.matches(&s),
                other => other.keyword().is_some_and(|k| test.matches(&k)),
            }),
            // An object counts as present too, so test the path itself for fields.
            Node::IsNull(Operand::Field(path)) => !exists(ev, path),
            Node::IsNull(op) => !each(op, ev, &mut |v| !v.is_null()),
            Node::Cmp { op, lhs, rhs } => each(lhs, ev, &mut |a| {
                each(rhs, ev, &mut |b| cmp_holds(*op, compare(&a, &b)))
            }),
            Node::InList { lhs, list, ci } => each(lhs, ev, &mut |a| {
                list.iter()
                    .any(|item| each(item, ev, &mut |b| values_equal(&a, &b, *ci)))
            }),
            Node::Truthy(op) => each(op, ev, &mut |v| v == Val::Bool(true)),
            // The plan keeps these objects' JSON (`Engine::new`).
            Node::Nested { path, inner, .. } => ev.leaves(path, &mut |l| match l {
                Leaf::Object(Some(obj)) => obj.is_object() && inner.eval(obj),
                _ => false,
            }),
            Node::Text {
                field,
                words,
                phrase,
            } => scalars(ev, field, &mut |v| {
                v.keyword()
                    .is_some_and(|s| crate::kql::text_matches(&s, words, *phrase))
            }),
            Node::DateCmp { op, field, ms } => scalars(ev, field, &mut |v| {
                crate::date::to_epoch_ms(&v).is_some_and(|v| cmp_holds(*op, Some(v.cmp(ms))))
            }),
        }
    }
}

fn cmp_holds(op: CmpOp, ord: Option<Ordering>) -> bool {
    let Some(o) = ord else { return false };
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

fn values_equal(a: &Val, b: &Val, ci: bool) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) if ci => fold(x) == fold(y),
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

/// Feeds each value of `op` to `f` until it returns true; returns whether it did.
/// A missing field feeds nothing; a function feeds one result per argument combination.
fn each<'a>(op: &'a Operand, ev: &'a dyn Document, f: &mut dyn FnMut(Val<'a>) -> bool) -> bool {
    match op {
        Operand::Lit(v) => f(v.clone()),
        Operand::Field(path) => scalars(ev, path, f),
        Operand::Cond(node) => f(Val::Bool(node.eval(ev))),
        Operand::Neg(x) => {
            let mut vals = Vec::new();
            each(x, ev, &mut |v| {
                vals.push(functions::arith(
                    functions::Func::Subtract,
                    &Val::Int(0),
                    &v,
                ));
                false
            });
            if vals.is_empty() {
                return f(Val::Null);
            }
            vals.into_iter().any(f)
        }
        Operand::Call {
            func,
            ci,
            args,
            prepared,
        } => {
            let mut columns: Vec<Vec<Val<'a>>> = Vec::with_capacity(args.len());
            for a in args {
                let mut col = Vec::new();
                each(a, ev, &mut |v| {
                    col.push(v);
                    false
                });
                if col.is_empty() {
                    // A missing argument is null, and functions return null on null.
                    return f(Val::Null);
                }
                columns.push(col);
            }
            let mut idx = vec![0usize; columns.len()];
            let mut buf: Vec<Val<'a>> = Vec::with_capacity(columns.len());
            for _ in 0..MAX_COMBINATIONS {
                buf.clear();
                buf.extend(idx.iter().zip(&columns).map(|(i, c)| c[*i].clone()));
                if f(functions::call(*func, *ci, prepared, &buf)) {
                    return true;
                }
                // Odometer step over the argument columns.
                let mut k = columns.len();
                loop {
                    if k == 0 {
                        return false;
                    }
                    k -= 1;
                    idx[k] += 1;
                    if idx[k] < columns[k].len() {
                        break;
                    }
                    idx[k] = 0;
                }
            }
            false
        }
    }
}
