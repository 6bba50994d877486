//! What the engine reads an event through: a JSON tree
//! (`serde_json::Value`: replay, audit, rule tests), or a typed event
//! captured onto the rules' fields ([`crate::capture::Captured`]: the
//! kernel pipeline), with the same answers for every path.

use crate::value::{FieldPath, Val};
use serde_json::Value;

/// One value a path reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf<'e> {
    /// A scalar, null included.
    Scalar(Val<'e>),
    /// An object (or an array nested too deep to flatten). Its JSON is
    /// there where the reader asked for it (join keys, suppression terms,
    /// KQL nested queries); elsewhere only its presence is known.
    Object(Option<&'e Value>),
}

/// An event the rules can read.
pub trait Document {
    /// Calls `f` on every value `path` reaches (array elements one by one)
    /// until `f` returns true; returns whether it did. A missing field or
    /// an empty array calls nothing.
    fn leaves<'e>(&'e self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'e>) -> bool) -> bool;

    /// The event time (`@timestamp`) in ns since the epoch.
    fn timestamp_ns(&self) -> Option<i64> {
        static TS: std::sync::OnceLock<FieldPath> = std::sync::OnceLock::new();
        let ts = TS.get_or_init(|| FieldPath::dotted_name("@timestamp"));
        let mut out = None;
        self.leaves(ts, &mut |l| {
            if let Leaf::Scalar(Val::Str(s)) = l {
                out = crate::date::parse_timestamp_ns(&s);
            }
            true
        });
        out
    }
}

/// Calls `f` on every scalar `path` reaches, skipping objects.
pub fn scalars<'e, D: Document + ?Sized>(
    doc: &'e D,
    path: &FieldPath,
    f: &mut dyn FnMut(Val<'e>) -> bool,
) -> bool {
    doc.leaves(path, &mut |l| match l {
        Leaf::Scalar(v) => f(v),
        Leaf::Object(_) => false,
    })
}

/// True when `path` reaches at least one non-null value (an object counts).
pub fn exists<D: Document + ?Sized>(doc: &D, path: &FieldPath) -> bool {
    doc.leaves(path, &mut |l| !matches!(l, Leaf::Scalar(Val::Null)))
}

/// True when some string `path` reaches equals `want`.
pub fn has_str<D: Document + ?Sized>(doc: &D, path: &FieldPath, want: &str) -> bool {
    scalars(doc, path, &mut |v| matches!(v, Val::Str(s) if s == want))
}

/// The first string `path` reaches, if the first value is one.
pub fn first_str<D: Document + ?Sized>(doc: &D, path: &FieldPath) -> Option<String> {
    let mut out = None;
    doc.leaves(path, &mut |l| {
        if let Leaf::Scalar(Val::Str(s)) = l {
            out = Some(s.into_owned());
        }
        true
    });
    out
}

impl Leaf<'_> {
    /// The value as JSON (an object whose content was not kept is `{}`).
    pub fn to_json(&self) -> Value {
        match self {
            Leaf::Scalar(v) => v.to_json(),
            Leaf::Object(Some(v)) => (*v).clone(),
            Leaf::Object(None) => Value::Object(Default::default()),
        }
    }
}

impl Document for Value {
    fn leaves<'e>(&'e self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'e>) -> bool) -> bool {
        path.any(self, &mut |v| {
            f(match Val::from_json(v) {
                Some(s) => Leaf::Scalar(s),
                None => Leaf::Object(Some(v)),
            })
        })
    }
}
