//! Runtime values and field resolution over a `serde_json::Value` event.

use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A scalar produced while evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl<'a> Val<'a> {
    /// Converts one JSON leaf; objects and arrays are not scalars (`None`).
    pub fn from_json(v: &'a Value) -> Option<Val<'a>> {
        Some(match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Float(n.as_f64()?),
            },
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            _ => return None,
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The keyword form of a scalar, as Elasticsearch indexes numbers and
    /// booleans sent into keyword fields.
    pub fn keyword(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Int(i) => Some(Cow::Owned(i.to_string())),
            Val::Float(f) => Some(Cow::Owned(f.to_string())),
            Val::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Val::Null => None,
        }
    }

    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Int(i) => Val::Int(i),
            Val::Float(f) => Val::Float(f),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(i) => Value::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Str(s) => Value::String(s.to_string()),
        }
    }
}

fn parse_num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Orders two scalars: numbers numerically, strings by code point, booleans
/// with each other. A numeric string compares with a number as that number.
/// Null and mixed kinds are unordered (`None`), so every comparison is false.
pub fn compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Str(s), n) if n.as_f64().is_some() => parse_num(s)?.partial_cmp(&n.as_f64()?),
        (n, Val::Str(s)) if n.as_f64().is_some() => n.as_f64()?.partial_cmp(&parse_num(s)?),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A field path's number, the same for equal segments in the whole
/// process: a captured document ([`crate::capture`]) finds a path's values
/// by it with one index instead of comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u32);

impl FieldId {
    /// The id of these segments (assigned on first sight, at rule load).
    fn of(segments: &[String]) -> FieldId {
        static IDS: OnceLock<Mutex<HashMap<Vec<String>, u32>>> = OnceLock::new();
        let mut ids = IDS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let next = ids.len() as u32;
        FieldId(*ids.entry(segments.to_vec()).or_insert(next))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A compiled field path. Besides nested objects it accepts literal dotted
/// keys at any level (`{"process.name": ..}`, `{"process": {"parent.name": ..}}`),
/// since some ECS sources flatten; the joined keys are built once here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub segments: Vec<String>,
    pub id: FieldId,
    /// `joined[i]` = for each end `j > i + 1`, the key `segments[i..j].join(".")`.
    joined: Vec<Vec<(usize, String)>>,
}

impl FieldPath {
    pub fn new(segments: Vec<String>) -> FieldPath {
        let n = segments.len();
        let joined = (0..n)
            .map(|i| {
                ((i + 2)..=n)
                    .map(|j| (j, segments[i..j].join(".")))
                    .collect()
            })
            .collect();
        FieldPath {
            id: FieldId::of(&segments),
            segments,
            joined,
        }
    }

    /// A dotted name such as `process.parent.name`.
    pub fn dotted_name(name: &str) -> FieldPath {
        FieldPath::new(name.split('.').map(str::to_string).collect())
    }

    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }

    /// Calls `f` on every leaf scalar the path reaches (array elements one by
    /// one) until `f` returns true; returns whether it did. A missing field or
    /// an empty array calls nothing.
    pub fn any<'e>(&self, event: &'e Value, f: &mut dyn FnMut(&'e Value) -> bool) -> bool {
        self.walk(event, 0, f)
    }

    fn walk<'e>(&self, v: &'e Value, i: usize, f: &mut dyn FnMut(&'e Value) -> bool) -> bool {
        if i == self.segments.len() {
            return leaves(v, f, 0);
        }
        match v {
            Value::Object(map) => {
                if let Some(child) = map.get(&self.segments[i])
                    && self.walk(child, i + 1, f)
                {
                    return true;
                }
                for (j, key) in &self.joined[i] {
                    if let Some(child) = map.get(key)
                        && self.walk(child, *j, f)
                    {
                        return true;
                    }
                }
                false
            }
            // An array of objects on the way: each element is tried.
            Value::Array(items) => items
                .iter()
                .any(|item| item.is_object() && self.walk(item, i, f)),
            _ => false,
        }
    }

    /// True when the path reaches at least one non-null value.
    pub fn exists(&self, event: &Value) -> bool {
        self.any(event, &mut |v| !v.is_null())
    }
}

fn leaves<'e>(v: &'e Value, f: &mut dyn FnMut(&'e Value) -> bool, depth: usize) -> bool {
    match v {
        Value::Array(items) if depth < 8 => items.iter().any(|x| leaves(x, f, depth + 1)),
        Value::Array(_) => false,
        other => f(other),
    }
}
