//! A typed event read by the rules without building its JSON tree.
//!
//! A [`Plan`] is a trie of every field path the engine reads, each ending
//! in a numbered slot. [`Plan::capture`] serialises any `Serialize` event
//! through it: keys off the trie are skipped without serialising their
//! values, and each value a path reaches is appended to its slot (strings
//! into one reused buffer). So a capture allocates nothing once its
//! buffers have grown, and the engine finds a path's values with one
//! index ([`crate::value::FieldId`]) instead of walking maps by name.
//!
//! Values are exactly those [`crate::value::FieldPath::any`] finds in the
//! serialised JSON: arrays are walked element by element (and flattened
//! below a path's end, 8 levels deep), keys spelling several segments
//! with dots count as those segments, and an object at a path's end is
//! reported as present, with its JSON only where the plan keeps it
//! (`keep_json`: KQL nested queries, which evaluate inside the object).
//! Join keys and suppression terms read scalars: an object there (which
//! Elasticsearch refuses for `by` and `group_by` fields) joins and groups
//! as `{}`. The `capture_matches_the_json_walk` tests and the `event_eval`
//! fuzz target compare the two.
//!
//! Hand-written because it is the engine's hot path: a JSON tree of the
//! wanted fields (the projection this replaced) cost 37 µs per exec of the
//! agent's 170 µs on the development VM (`perf`, 2026-12-07).

use crate::document::{Document, Leaf};
use crate::value::{FieldPath, Val};
use serde::ser::{self, Impossible, Serialize};
use serde_json::Value;
use std::borrow::Cow;

type Error = serde_json::Error;

const NONE: u32 = u32::MAX;
/// Array nesting flattened below a path's end, as `FieldPath::any` does.
const MAX_ARRAY_DEPTH: u8 = 8;

#[derive(Debug, Default, Clone)]
struct PlanNode {
    children: Vec<(Box<str>, PlanNode)>,
    /// Index of each child by name (most keys a document has are looked
    /// up here: a scan of the children was 7 % of a capture's cost).
    by_name: foldhash::HashMap<Box<str>, u32>,
    /// The slot of the path that ends here.
    slot: Option<u32>,
    /// Objects reached at or below here are kept as JSON.
    keep_json: bool,
}

impl PlanNode {
    /// The nodes a document key leads to: the child of that name, and the
    /// nodes it reaches when it spells several segments with dots. With
    /// `seen_all` (every child was met under its own name already) only a
    /// dotted key can lead on. Returns whether a child was met by name.
    fn targets<'p>(&'p self, key: &str, seen_all: bool, out: &mut Targets<'p>) -> bool {
        if !has_dot(key.as_bytes()) {
            if seen_all {
                return false;
            }
            let Some(&i) = self.by_name.get(key) else {
                return false;
            };
            out.push(&self.children[i as usize].1);
            return true;
        }
        for (name, child) in &self.children {
            if key.len() == name.len() {
                if key == &**name {
                    out.push(child);
                }
            } else if key.len() > name.len()
                && key.as_bytes()[name.len()] == b'.'
                && key.starts_with(&**name)
            {
                child.targets(&key[name.len() + 1..], false, out);
            }
        }
        false
    }
}

/// Whether a key has a `.`: a plain loop, as `contains`' memchr call cost
/// more than the whole look-up for keys this short (callgrind).
#[allow(clippy::manual_contains)]
fn has_dot(key: &[u8]) -> bool {
    key.iter().any(|&b| b == b'.')
}

/// The nodes one key leads to (almost always none or one).
#[derive(Default)]
enum Targets<'p> {
    #[default]
    None,
    One(&'p PlanNode),
    Many(Vec<&'p PlanNode>),
}

impl<'p> Targets<'p> {
    fn push(&mut self, n: &'p PlanNode) {
        *self = match std::mem::take(self) {
            Targets::None => Targets::One(n),
            Targets::One(a) => Targets::Many(vec![a, n]),
            Targets::Many(mut v) => {
                v.push(n);
                Targets::Many(v)
            }
        };
    }

    fn each(&self, mut f: impl FnMut(&'p PlanNode) -> Result<(), Error>) -> Result<(), Error> {
        match self {
            Targets::None => Ok(()),
            Targets::One(n) => f(n),
            Targets::Many(v) => v.iter().try_for_each(|n| f(n)),
        }
    }
}

/// The fields a rule set reads, as a trie with a slot per path.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    root: PlanNode,
    /// Slot of each [`crate::value::FieldId`]; `NONE` when not planned.
    slot_of: Vec<u32>,
    slots: u32,
}

impl Plan {
    /// Plans `paths`; `keep_json` keeps the objects a path reaches as JSON.
    pub fn new<'a>(paths: impl IntoIterator<Item = (&'a FieldPath, bool)>) -> Plan {
        let mut plan = Plan::default();
        for (path, keep_json) in paths {
            plan.add(path, keep_json);
        }
        plan
    }

    fn add(&mut self, path: &FieldPath, keep_json: bool) {
        if path.segments.is_empty() {
            return;
        }
        let mut node = &mut self.root;
        for seg in &path.segments {
            let i = match node.children.iter().position(|(n, _)| **n == **seg) {
                Some(i) => i,
                None => {
                    node.children
                        .push((seg.as_str().into(), PlanNode::default()));
                    let i = node.children.len() - 1;
                    node.by_name.insert(seg.as_str().into(), i as u32);
                    i
                }
            };
            node = &mut node.children[i].1;
        }
        node.keep_json |= keep_json;
        let slot = *node.slot.get_or_insert_with(|| {
            self.slots += 1;
            self.slots - 1
        });
        let id = path.id.index();
        if self.slot_of.len() <= id {
            self.slot_of.resize(id + 1, NONE);
        }
        self.slot_of[id] = slot;
    }

    /// Whether `path` was planned (only planned paths can be read).
    pub fn covers(&self, path: &FieldPath) -> bool {
        self.slot(path).is_some()
    }

    fn slot(&self, path: &FieldPath) -> Option<usize> {
        match self.slot_of.get(path.id.index()) {
            Some(&s) if s != NONE => Some(s as usize),
            _ => None,
        }
    }

    /// Captures `doc` into `out` (its previous content is dropped). A
    /// document that fails to serialise is captured as empty, as the
    /// projection it replaced gave `null`.
    pub fn capture<T: Serialize + ?Sized>(&self, doc: &T, out: &mut Captured) {
        out.reset(self.slots as usize);
        let cap = Cap {
            node: &self.root,
            out,
            end: None,
            walk: Walk::Keys,
        };
        if doc.serialize(cap).is_err() {
            out.reset(self.slots as usize);
        }
    }

    /// `cap` (captured with this plan) as a document.
    pub fn doc<'a>(&'a self, cap: &'a Captured) -> CapturedDoc<'a> {
        CapturedDoc { plan: self, cap }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A range of `Captured::text`.
    Str(u32, u32),
    Object,
    /// An index into `Captured::json`.
    Json(u32),
}

/// The captured values of one event, by slot. Reused from event to event.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// First and last item of each slot.
    heads: Vec<[u32; 2]>,
    /// Each item with the index of the next one of its slot.
    items: Vec<(Item, u32)>,
    text: String,
    json: Vec<Value>,
    ts_ns: Option<i64>,
}

impl Captured {
    fn reset(&mut self, slots: usize) {
        self.heads.clear();
        self.heads.resize(slots, [NONE, NONE]);
        self.items.clear();
        self.text.clear();
        self.json.clear();
        self.ts_ns = None;
    }

    /// The event time, when the producer knows it as a number (the
    /// engine otherwise parses `@timestamp`).
    pub fn set_timestamp_ns(&mut self, ns: i64) {
        self.ts_ns = Some(ns);
    }

    fn push(&mut self, slot: u32, item: Item) {
        let idx = self.items.len() as u32;
        self.items.push((item, NONE));
        let h = &mut self.heads[slot as usize];
        if h[0] == NONE {
            h[0] = idx;
        } else {
            self.items[h[1] as usize].1 = idx;
        }
        h[1] = idx;
    }

    fn push_str(&mut self, slot: u32, s: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        self.push(slot, Item::Str(start, self.text.len() as u32));
    }

    fn push_json(&mut self, slot: u32, v: &Value) {
        match Val::from_json(v) {
            Some(Val::Null) => self.push(slot, Item::Null),
            Some(Val::Bool(b)) => self.push(slot, Item::Bool(b)),
            Some(Val::Int(i)) => self.push(slot, Item::Int(i)),
            Some(Val::Float(f)) => self.push(slot, Item::Float(f)),
            Some(Val::Str(s)) => self.push_str(slot, &s),
            None => {
                self.json.push(v.clone());
                self.push(slot, Item::Json(self.json.len() as u32 - 1));
            }
        }
    }
}

/// A [`Captured`] event read through its [`Plan`].
#[derive(Clone, Copy)]
pub struct CapturedDoc<'a> {
    plan: &'a Plan,
    cap: &'a Captured,
}

impl Document for CapturedDoc<'_> {
    fn leaves<'e>(&'e self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'e>) -> bool) -> bool {
        let Some(slot) = self.plan.slot(path) else {
            debug_assert!(false, "field {} read but not planned", path.dotted());
            return false;
        };
        let cap = self.cap;
        let mut i = cap.heads.get(slot).map_or(NONE, |h| h[0]);
        while i != NONE {
            let (item, next) = cap.items[i as usize];
            let leaf = match item {
                Item::Null => Leaf::Scalar(Val::Null),
                Item::Bool(b) => Leaf::Scalar(Val::Bool(b)),
                Item::Int(n) => Leaf::Scalar(Val::Int(n)),
                Item::Float(x) => Leaf::Scalar(Val::Float(x)),
                Item::Str(a, b) => {
                    Leaf::Scalar(Val::Str(Cow::Borrowed(&cap.text[a as usize..b as usize])))
                }
                Item::Object => Leaf::Object(None),
                Item::Json(j) => Leaf::Object(Some(&cap.json[j as usize])),
            };
            if f(leaf) {
                return true;
            }
            i = next;
        }
        false
    }

    fn timestamp_ns(&self) -> Option<i64> {
        match self.cap.ts_ns {
            Some(ns) => Some(ns),
            None => {
                static TS: std::sync::OnceLock<FieldPath> = std::sync::OnceLock::new();
                let ts = TS.get_or_init(|| FieldPath::dotted_name("@timestamp"));
                let mut out = None;
                if self.plan.covers(ts) {
                    self.leaves(ts, &mut |l| {
                        if let Leaf::Scalar(Val::Str(s)) = l {
                            out = crate::date::parse_timestamp_ns(&s);
                        }
                        true
                    });
                }
                out
            }
        }
    }
}

/// How a value is walked, as `FieldPath::any` walks JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// An object's keys lead on to child nodes.
    Keys,
    /// An array element: only an object element leads on.
    ObjectItems,
    /// Nothing leads on (an array inside an array element).
    No,
}

/// Serialises one value at `node`. `end` is set while the value is at the
/// end of a planned path (the array depth below it).
struct Cap<'p, 'c> {
    node: &'p PlanNode,
    out: &'c mut Captured,
    end: Option<u8>,
    walk: Walk,
}

impl Cap<'_, '_> {
    fn scalar(self, item: Item) -> Result<(), Error> {
        if self.end.is_some()
            && let Some(slot) = self.node.slot
        {
            self.out.push(slot, item);
        }
        Ok(())
    }

    fn string(self, s: &str) -> Result<(), Error> {
        if self.end.is_some()
            && let Some(slot) = self.node.slot
        {
            self.out.push_str(slot, s);
        }
        Ok(())
    }

    fn float(self, f: f64) -> Result<(), Error> {
        // serde_json turns a non-finite float into null.
        self.scalar(if f.is_finite() {
            Item::Float(f)
        } else {
            Item::Null
        })
    }

    fn object<'p, 'c>(cap: Cap<'p, 'c>) -> CapMap<'p, 'c> {
        if cap.end.is_some()
            && let Some(slot) = cap.node.slot
        {
            cap.out.push(slot, Item::Object);
        }
        let leads_on = cap.walk != Walk::No && !cap.node.children.is_empty();
        CapMap {
            node: leads_on.then_some(cap.node),
            unseen: cap.node.children.len(),
            out: cap.out,
            targets: Targets::None,
        }
    }
}

/// Values at a child node reached through an object key.
fn at_child<T: Serialize + ?Sized>(
    node: &PlanNode,
    out: &mut Captured,
    v: &T,
) -> Result<(), Error> {
    if node.keep_json {
        let j = serde_json::to_value(v)?;
        capture_json(node, &j, node.slot.map(|_| 0), Walk::Keys, out);
        return Ok(());
    }
    v.serialize(Cap {
        node,
        out,
        end: node.slot.map(|_| 0),
        walk: Walk::Keys,
    })
}

/// The same walk over JSON, for the subtrees whose objects are kept.
fn capture_json(node: &PlanNode, v: &Value, end: Option<u8>, walk: Walk, out: &mut Captured) {
    match v {
        Value::Array(items) => {
            let end = end.and_then(|d| (d < MAX_ARRAY_DEPTH).then_some(d + 1));
            let walk = item_walk(walk);
            for it in items {
                capture_json(node, it, end, walk, out);
            }
        }
        Value::Object(map) => {
            if end.is_some()
                && let Some(slot) = node.slot
            {
                out.push_json(slot, v);
            }
            if walk != Walk::No && !node.children.is_empty() {
                for (k, child) in map {
                    let mut t = Targets::None;
                    node.targets(k, false, &mut t);
                    let _ = t.each(|n| {
                        capture_json(n, child, n.slot.map(|_| 0), Walk::Keys, out);
                        Ok(())
                    });
                }
            }
        }
        scalar => {
            if end.is_some()
                && let Some(slot) = node.slot
            {
                out.push_json(slot, scalar);
            }
        }
    }
}

fn item_walk(walk: Walk) -> Walk {
    match walk {
        Walk::Keys => Walk::ObjectItems,
        Walk::ObjectItems | Walk::No => Walk::No,
    }
}

macro_rules! int_scalar {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            self.scalar(Item::Int(i64::from(v)))
        }
    )*};
}

impl<'p, 'c> ser::Serializer for Cap<'p, 'c> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = CapSeq<'p, 'c>;
    type SerializeTuple = CapSeq<'p, 'c>;
    type SerializeTupleStruct = CapSeq<'p, 'c>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = CapMap<'p, 'c>;
    type SerializeStruct = CapMap<'p, 'c>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(Item::Bool(v))
    }
    int_scalar!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32
    );
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        // Past i64, JSON's number reads back as a float.
        match i64::try_from(v) {
            Ok(i) => self.scalar(Item::Int(i)),
            Err(_) => self.float(v as f64),
        }
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        match i64::try_from(v) {
            Ok(i) => self.scalar(Item::Int(i)),
            Err(_) => match u64::try_from(v) {
                Ok(u) => self.float(u as f64),
                Err(_) => Err(ser::Error::custom("number out of range")),
            },
        }
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => self.serialize_u64(u),
            Err(_) => Err(ser::Error::custom("number out of range")),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // serde_json writes bytes as an array of numbers.
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.scalar(Item::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.scalar(Item::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.scalar(Item::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        // Externally tagged, like serde_json: `{variant: value}`.
        use ser::SerializeMap;
        let mut m = Cap::object(self);
        m.serialize_entry(variant, v)?;
        m.end()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<CapSeq<'p, 'c>, Error> {
        Ok(CapSeq {
            node: self.node,
            out: self.out,
            end: self
                .end
                .and_then(|d| (d < MAX_ARRAY_DEPTH).then_some(d + 1)),
            walk: item_walk(self.walk),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<CapSeq<'p, 'c>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<CapSeq<'p, 'c>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom("tuple variants have no JSON field form"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<CapMap<'p, 'c>, Error> {
        Ok(Cap::object(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<CapMap<'p, 'c>, Error> {
        Ok(Cap::object(self))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom(
            "struct variants have no JSON field form",
        ))
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        if self.end.is_some()
            && let Some(slot) = self.node.slot
        {
            use std::fmt::Write;
            let start = self.out.text.len() as u32;
            let _ = write!(self.out.text, "{v}");
            let end = self.out.text.len() as u32;
            self.out.push(slot, Item::Str(start, end));
        }
        Ok(())
    }
}

/// Array elements, each at the same node.
struct CapSeq<'p, 'c> {
    node: &'p PlanNode,
    out: &'c mut Captured,
    end: Option<u8>,
    walk: Walk,
}

impl CapSeq<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if self.end.is_none() && self.walk == Walk::No {
            return Ok(());
        }
        v.serialize(Cap {
            node: self.node,
            out: self.out,
            end: self.end,
            walk: self.walk,
        })
    }
}

/// The three sequence traits differ only in the element method's name.
macro_rules! cap_seq {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for CapSeq<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

cap_seq!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// An object's entries; `node` is `None` when no key can lead on.
struct CapMap<'p, 'c> {
    node: Option<&'p PlanNode>,
    /// Children of `node` not met by name yet: at 0 the remaining keys
    /// (most of an object's, for the index's few fields) need no look-up.
    unseen: usize,
    out: &'c mut Captured,
    /// Where the value of the key just serialised goes.
    targets: Targets<'p>,
}

impl<'p> CapMap<'p, '_> {
    /// Looks `key` up at `node`, counting the children met.
    fn look_up(&mut self, node: &'p PlanNode, key: &str, targets: &mut Targets<'p>) {
        if node.targets(key, self.unseen == 0, targets) {
            self.unseen = self.unseen.saturating_sub(1);
        }
    }

    fn entry<T: Serialize + ?Sized>(&mut self, targets: &Targets<'p>, v: &T) -> Result<(), Error> {
        let out = &mut *self.out;
        targets.each(|n| at_child(n, out, v))
    }
}

impl ser::SerializeMap for CapMap<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.targets = Targets::None;
        match self.node {
            Some(node) => key.serialize(KeyLookup { map: self, node }),
            None => Ok(()),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let targets = std::mem::take(&mut self.targets);
        self.entry(&targets, v)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ser::SerializeStruct for CapMap<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        let Some(node) = self.node else {
            return Ok(());
        };
        let mut targets = Targets::None;
        self.look_up(node, key, &mut targets);
        self.entry(&targets, v)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Looks a map key up in the trie without allocating (map keys are
/// strings, or numbers and booleans written as text, as serde_json does).
struct KeyLookup<'m, 'p, 'c> {
    map: &'m mut CapMap<'p, 'c>,
    node: &'p PlanNode,
}

impl KeyLookup<'_, '_, '_> {
    fn text(self, key: &str) -> Result<(), Error> {
        let mut targets = Targets::None;
        self.map.look_up(self.node, key, &mut targets);
        self.map.targets = targets;
        Ok(())
    }
}

macro_rules! key_as_text {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            self.text(&v.to_string())
        }
    )*};
}

fn key_error() -> Error {
    ser::Error::custom("map key must be a string")
}

impl ser::Serializer for KeyLookup<'_, '_, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.text(v.encode_utf8(&mut [0; 4]))
    }
    key_as_text!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64
    );
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        self.text(&v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(names: &[&str]) -> Vec<FieldPath> {
        names.iter().map(|n| FieldPath::dotted_name(n)).collect()
    }

    /// Every leaf of every path, captured and walked in the JSON.
    fn both(
        doc: &Value,
        names: &[&str],
        keep_json: bool,
    ) -> Vec<(Vec<Leaf<'static>>, Vec<Leaf<'static>>)> {
        let ps = paths(names);
        let plan = Plan::new(ps.iter().map(|p| (p, keep_json)));
        let mut cap = Captured::default();
        plan.capture(doc, &mut cap);
        let view = plan.doc(&cap);
        let owned = |l: Leaf<'_>| match l {
            Leaf::Scalar(v) => Leaf::Scalar(v.into_owned()),
            Leaf::Object(_) => Leaf::Object(None),
        };
        ps.iter()
            .map(|p| {
                let mut a = Vec::new();
                view.leaves(p, &mut |l| {
                    a.push(owned(l));
                    false
                });
                let mut b = Vec::new();
                doc.leaves(p, &mut |l| {
                    b.push(owned(l));
                    false
                });
                (a, b)
            })
            .collect()
    }

    fn same(doc: Value, names: &[&str]) {
        for keep in [false, true] {
            for (i, (a, b)) in both(&doc, names, keep).into_iter().enumerate() {
                assert_eq!(a, b, "path {} keep_json={keep} in {doc}", names[i]);
            }
        }
    }

    #[test]
    fn capture_matches_the_json_walk_for_scalars_and_arrays() {
        same(
            json!({"process": {"name": "curl", "args": ["curl", "-k"], "pid": 7,
                   "interactive": true, "x": null, "f": 1.5, "big": u64::MAX}}),
            &[
                "process.name",
                "process.args",
                "process.pid",
                "process.interactive",
                "process.x",
                "process.f",
                "process.big",
                "process.missing",
                "process",
            ],
        );
    }

    #[test]
    fn capture_matches_the_json_walk_through_arrays_of_objects() {
        same(
            json!({"spec": {"containers": [{"image": "a", "ports": [1, [2, [3]]]},
                                           [{"image": "hidden"}], {"image": "b"}]}}),
            &[
                "spec.containers.image",
                "spec.containers.ports",
                "spec.containers",
            ],
        );
    }

    #[test]
    fn capture_matches_the_json_walk_for_dotted_keys() {
        same(
            json!({"process.name": "a", "process": {"parent.name": "b", "parent": {"name": "c"}},
                   "user": {"id": "0"}, "a.b": {"c": 1}}),
            &["process.name", "process.parent.name", "user.id", "a.b.c"],
        );
    }

    #[test]
    fn an_object_at_a_path_end_is_present_and_kept_only_where_asked() {
        let doc = json!({"process": {"parent": {"name": "sh"}}});
        let ps = paths(&["process.parent", "process.parent.name"]);
        for keep in [false, true] {
            let plan = Plan::new(ps.iter().map(|p| (p, keep)));
            let mut cap = Captured::default();
            plan.capture(&doc, &mut cap);
            let view = plan.doc(&cap);
            assert!(crate::document::exists(&view, &ps[0]));
            let mut got = Vec::new();
            view.leaves(&ps[0], &mut |l| {
                got.push(l.to_json());
                false
            });
            let want = if keep {
                json!({"name": "sh"})
            } else {
                json!({})
            };
            assert_eq!(got, vec![want]);
            assert!(crate::document::has_str(&view, &ps[1], "sh"));
        }
    }

    #[test]
    fn typed_structs_capture_like_their_json() {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            process: Proc<'a>,
        }
        #[derive(serde::Serialize)]
        struct Proc<'a> {
            name: &'a str,
            args: Vec<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cwd: Option<&'a str>,
            tty: Option<u32>,
            kind: Kind,
        }
        #[derive(serde::Serialize)]
        enum Kind {
            Exec,
        }
        let p = Proc {
            name: "ls",
            args: vec!["ls", "-l"],
            cwd: None,
            tty: None,
            kind: Kind::Exec,
        };
        let typed_doc = Doc { process: p };
        let doc = serde_json::to_value(&typed_doc).unwrap();
        let names = [
            "process.name",
            "process.args",
            "process.cwd",
            "process.tty",
            "process.kind",
        ];
        let ps = paths(&names);
        let plan = Plan::new(ps.iter().map(|p| (p, false)));
        let mut cap = Captured::default();
        plan.capture(&typed_doc, &mut cap);
        let typed = plan.doc(&cap);
        for path in &ps {
            let mut a = Vec::new();
            typed.leaves(path, &mut |l| {
                a.push(l.to_json());
                false
            });
            let mut b = Vec::new();
            doc.leaves(path, &mut |l| {
                b.push(l.to_json());
                false
            });
            assert_eq!(a, b, "{}", path.dotted());
        }
    }

    #[test]
    fn a_capture_reuses_its_buffers_and_forgets_the_previous_event() {
        let ps = paths(&["a"]);
        let plan = Plan::new(ps.iter().map(|p| (p, false)));
        let mut cap = Captured::default();
        plan.capture(&json!({"a": "first"}), &mut cap);
        plan.capture(&json!({"b": 1}), &mut cap);
        assert!(!crate::document::exists(&plan.doc(&cap), &ps[0]));
    }

    #[test]
    fn the_timestamp_is_taken_as_given_or_parsed() {
        let ps = paths(&["@timestamp"]);
        let plan = Plan::new(ps.iter().map(|p| (p, false)));
        let mut cap = Captured::default();
        plan.capture(&json!({"@timestamp": "1970-01-01T00:00:01Z"}), &mut cap);
        assert_eq!(plan.doc(&cap).timestamp_ns(), Some(1_000_000_000));
        cap.set_timestamp_ns(5);
        assert_eq!(plan.doc(&cap).timestamp_ns(), Some(5));
    }
}
