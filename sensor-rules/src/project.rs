//! The part of a document a rule set can look at.
//!
//! A [`FieldSet`] holds every field path the rules read. [`FieldSet::project`]
//! serialises any `Serialize` document (a typed event, or a
//! `serde_json::Value`) straight into a `Value` that keeps only those fields,
//! so a producer that already has typed events never builds the whole JSON
//! tree just to evaluate rules: the result matches exactly as the full
//! document would (`projection_matches_like_the_full_document` below, and the
//! `project` fuzz target).
//!
//! Walking the same way [`crate::value::FieldPath`] does, a projection keeps
//! arrays (each element projected), and keys that spell several path
//! segments with dots (`"user.id"`).

use serde::ser::{self, Impossible, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A trie of field paths.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldSet {
    /// The whole subtree below this node is wanted.
    whole: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Adds a path (its segments, e.g. `["process", "args"]`). The empty
    /// path wants everything.
    pub fn insert<S: AsRef<str>>(&mut self, path: &[S]) {
        let mut node = self;
        for seg in path {
            if node.whole {
                return;
            }
            node = node.children.entry(seg.as_ref().to_string()).or_default();
        }
        node.whole = true;
        node.children.clear();
    }

    /// True when nothing is wanted.
    pub fn is_empty(&self) -> bool {
        !self.whole && self.children.is_empty()
    }

    /// The node for a key, which may spell several segments with dots.
    fn child(&self, key: &str) -> Option<&FieldSet> {
        if self.whole {
            return Some(self);
        }
        if let Some(c) = self.children.get(key) {
            return Some(c);
        }
        if !key.contains('.') {
            return None;
        }
        let mut node = self;
        for seg in key.split('.') {
            if node.whole {
                return Some(node);
            }
            node = node.children.get(seg)?;
        }
        Some(node)
    }

    /// The set wanted below `key` (which may spell several segments with dots).
    pub fn below(&self, key: &str) -> Option<&FieldSet> {
        self.child(key)
    }

    /// Wants `set` below `key`, in addition to what is wanted there already.
    pub fn graft(&mut self, key: &str, set: &FieldSet) {
        if self.whole {
            return;
        }
        let node = self.children.entry(key.to_string()).or_default();
        node.merge(set);
    }

    /// Adds everything `other` wants.
    pub fn merge(&mut self, other: &FieldSet) {
        if self.whole {
            return;
        }
        if other.whole {
            self.whole = true;
            self.children.clear();
            return;
        }
        for (k, sub) in &other.children {
            self.children.entry(k.clone()).or_default().merge(sub);
        }
    }

    /// JSON text parsed into only the wanted fields: what [`FieldSet::project`]
    /// of the parsed document gives, without building the rest. Unwanted
    /// values are skipped by the parser (no allocation); the text must still
    /// be valid JSON.
    pub fn project_json(&self, text: &str) -> Result<Value, Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        let v = JsonSeed(self).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// `doc` reduced to the wanted fields. Serialisation errors (a map with
    /// non-string keys, a failing `Serialize` impl) give `Value::Null`.
    pub fn project<T: Serialize + ?Sized>(&self, doc: &T) -> Value {
        doc.serialize(Projector { want: self })
            .unwrap_or(Value::Null)
    }
}

macro_rules! scalar_as_json {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Value, Error> {
            full(&v)
        }
    )*};
}

/// Serialises one value, keeping only what `want` asks for.
#[derive(Clone, Copy)]
struct Projector<'w> {
    want: &'w FieldSet,
}

type Error = serde_json::Error;

fn full<T: Serialize + ?Sized>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v)
}

impl<'w> ser::Serializer for Projector<'w> {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqProjector<'w>;
    type SerializeTuple = SeqProjector<'w>;
    type SerializeTupleStruct = SeqProjector<'w>;
    type SerializeTupleVariant = Impossible<Value, Error>;
    type SerializeMap = MapProjector<'w>;
    type SerializeStruct = MapProjector<'w>;
    type SerializeStructVariant = Impossible<Value, Error>;

    // Scalars are kept as they are: a path that goes on below one finds
    // nothing there, exactly as in the whole document.
    scalar_as_json!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_i128: i128,
        serialize_u128: u128,
        serialize_f32: f32,
        serialize_f64: f64
    );
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        full(v)
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        // Externally tagged, like serde_json: `{variant: value}`.
        match self.want.child(variant) {
            Some(w) if w.whole => ser::Serializer::serialize_newtype_variant(
                serde_json::value::Serializer,
                name,
                index,
                variant,
                v,
            ),
            Some(w) => {
                let mut m = Map::new();
                m.insert(variant.to_string(), v.serialize(Projector { want: w })?);
                Ok(Value::Object(m))
            }
            None => Ok(Value::Object(Map::new())),
        }
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqProjector<'w>, Error> {
        Ok(SeqProjector {
            want: self.want,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqProjector<'w>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<SeqProjector<'w>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom(
            "tuple variants have no JSON field form to project",
        ))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapProjector<'w>, Error> {
        Ok(MapProjector {
            want: self.want,
            map: Map::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapProjector<'w>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom(
            "struct variants have no JSON field form to project",
        ))
    }
}

/// Array elements are projected with the same wants: a path walks into
/// every element (`threat.technique.id`).
struct SeqProjector<'w> {
    want: &'w FieldSet,
    items: Vec<Value>,
}

impl SeqProjector<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.items.push(v.serialize(Projector { want: self.want })?);
        Ok(())
    }
}

/// The three sequence traits differ only in the element method's name.
macro_rules! seq_projector {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqProjector<'_> {
            type Ok = Value;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.push(v)
            }
            fn end(self) -> Result<Value, Error> {
                Ok(Value::Array(self.items))
            }
        }
    )*};
}

seq_projector!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// Keeps the entries whose key leads to a wanted field.
struct MapProjector<'w> {
    want: &'w FieldSet,
    map: Map<String, Value>,
    /// The key of a map entry whose value comes next, if wanted.
    key: Option<(String, Option<&'w FieldSet>)>,
}

impl<'w> MapProjector<'w> {
    fn entry<T: Serialize + ?Sized>(
        &mut self,
        key: String,
        want: Option<&'w FieldSet>,
        v: &T,
    ) -> Result<(), Error> {
        let Some(want) = want else { return Ok(()) };
        let projected = if want.whole {
            full(v)?
        } else {
            v.serialize(Projector { want })?
        };
        self.map.insert(key, projected);
        Ok(())
    }
}

impl ser::SerializeMap for MapProjector<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let key = key.serialize(KeySerializer)?;
        let want = self.want.child(&key);
        self.key = Some((key, want));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let (key, want) = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("map value without a key"))?;
        self.entry(key, want, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

impl ser::SerializeStruct for MapProjector<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        let want = self.want.child(key);
        if want.is_none() {
            return Ok(());
        }
        self.entry(key.to_string(), want, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

/// Map keys as JSON object keys: strings, or numbers and booleans written
/// as text, the way serde_json does.
struct KeySerializer;

macro_rules! key_as_text {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<String, Error> {
            Ok(v.to_string())
        }
    )*};
}

fn key_error() -> Error {
    ser::Error::custom("map key must be a string")
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
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
    fn serialize_f32(self, _: f32) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _: f64) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Error> {
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
}

/// Parses one JSON value keeping what the set wants (scalars are kept as
/// they are, as [`Projector`] keeps them).
struct JsonSeed<'w>(&'w FieldSet);

impl<'de> serde::de::DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

/// A map key, borrowed from the text when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

impl<'de> serde::de::Visitor<'de> for JsonSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(JsonSeed(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.child(key.as_str()) {
                Some(want) => {
                    let v = map.next_value_seed(JsonSeed(want))?;
                    let k = match key {
                        Key::Borrowed(s) => s.to_string(),
                        Key::Owned(s) => s,
                    };
                    out.insert(k, v);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(paths: &[&str]) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.split('.').collect::<Vec<_>>());
        }
        s
    }

    #[test]
    fn projecting_json_text_equals_projecting_the_parsed_document() {
        let text = r#"{"process": {"name": "curl", "pid": 7, "args": ["a", "b"],
            "parent": {"name": "sh", "pid": 1}}, "host": {"name": "n"},
            "k": {"a.b": [{"c": 1, "d": 2}, {"c": 3}], "s": "x"}, "e": "\u00e9"}"#;
        let doc: Value = serde_json::from_str(text).unwrap();
        for paths in [
            &["process.name", "process.parent.name"][..],
            &["process.args", "k.a.b.c"][..],
            &["k.s.deeper", "e", "missing.x"][..],
            &[""][..],
        ] {
            let s = set(paths);
            assert_eq!(s.project_json(text).unwrap(), s.project(&doc), "{paths:?}");
        }
    }

    #[test]
    fn projecting_json_text_still_rejects_invalid_json() {
        assert!(set(&["a"]).project_json(r#"{"b": [1, }"#).is_err());
        assert!(set(&["a"]).project_json(r#"{"a": 1} trailing"#).is_err());
    }

    #[test]
    fn projection_keeps_only_the_wanted_fields() {
        let doc = json!({"process": {"name": "curl", "pid": 7, "args": ["a", "b"],
                         "parent": {"name": "sh", "pid": 1}}, "host": {"name": "n"}});
        let p = set(&["process.name", "process.parent.name"]).project(&doc);
        assert_eq!(
            p,
            json!({"process": {"name": "curl", "parent": {"name": "sh"}}})
        );
    }

    #[test]
    fn a_wanted_object_is_kept_whole() {
        let doc =
            json!({"process": {"tty": {"char_device": {"major": 136, "minor": 0}}, "pid": 7}});
        let p = set(&["process.tty"]).project(&doc);
        assert_eq!(
            p,
            json!({"process": {"tty": {"char_device": {"major": 136, "minor": 0}}}})
        );
    }

    #[test]
    fn arrays_of_objects_are_projected_element_by_element() {
        let doc =
            json!({"threat": [{"tactic": {"id": "TA1", "name": "x"}}, {"tactic": {"id": "TA2"}}]});
        let p = set(&["threat.tactic.id"]).project(&doc);
        assert_eq!(
            p,
            json!({"threat": [{"tactic": {"id": "TA1"}}, {"tactic": {"id": "TA2"}}]})
        );
    }

    #[test]
    fn dotted_keys_count_as_their_segments() {
        let doc = json!({"user.id": "0", "process": {"parent.name": "sh", "x": 1}});
        let p = set(&["user.id", "process.parent.name"]).project(&doc);
        assert_eq!(p, json!({"user.id": "0", "process": {"parent.name": "sh"}}));
    }

    #[test]
    fn typed_structs_project_like_their_json() {
        #[derive(serde::Serialize)]
        struct Proc<'a> {
            name: &'a str,
            args: Vec<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tty: Option<u32>,
        }
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            process: Proc<'a>,
            #[serde(rename = "@timestamp")]
            ts: &'a str,
        }
        let d = Doc {
            process: Proc {
                name: "curl",
                args: vec!["curl", "-k"],
                tty: None,
            },
            ts: "t",
        };
        let s = set(&["process.args", "process.tty", "@timestamp"]);
        assert_eq!(s.project(&d), s.project(&serde_json::to_value(&d).unwrap()));
        assert_eq!(
            s.project(&d),
            json!({"process": {"args": ["curl", "-k"]}, "@timestamp": "t"})
        );
    }

    #[test]
    fn a_prefix_path_absorbs_longer_ones() {
        let mut s = set(&["process.parent.name"]);
        s.insert(&["process"]);
        s.insert(&["process", "args"]);
        assert_eq!(s, set(&["process"]));
        assert!(FieldSet::new().is_empty());
    }
}
