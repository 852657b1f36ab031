//! A JSON value that keeps what trajectory files need kept.
//!
//! `serde_json::Value` loses three things the product must reproduce: integers of any size
//! (Python keeps them whole), the difference between `100` and `100.0`, and the `NaN` /
//! `Infinity` literals Python's `json` module reads and writes. [`Json`] keeps all three, keeps
//! object keys in file order (a repeated key keeps its first place and its last value, as a
//! Python dict does), and writes itself back the way Python's `json.dumps` does.

mod number;
mod parse;
mod write;

pub use number::{python_float, write_python_float, Number};
pub use parse::{parse, parse_bytes, parse_reusing, parse_with, Limits, ParseBuffers, ParseError};
pub use write::{
    python_dumps, write_f64, write_python, write_python_str, write_str_contents, write_str_styled,
    write_styled, Decimal, Style,
};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(JsonObject),
}

impl Json {
    /// The name of this value's kind, for error messages ("expected a string, found an array").
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&JsonObject> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as Python's `json.dumps` writes it with default settings except
    /// `ensure_ascii=False`: `", "` and `": "` separators, keys in order, non-ASCII kept.
    pub fn to_python_json(&self) -> String {
        python_dumps(self)
    }
}

/// `value["key"]`: the member of an object, or null when `value` is not an object or has no
/// such member (as `serde_json::Value` indexes).
impl std::ops::Index<&str> for Json {
    type Output = Json;

    fn index(&self, key: &str) -> &Json {
        static NULL: Json = Json::Null;
        self.as_object().and_then(|o| o.get(key)).unwrap_or(&NULL)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::String(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Json::Number(Number::from(n))
    }
}

impl From<f64> for Json {
    fn from(n: f64) -> Self {
        Json::Number(Number::Float(n))
    }
}

impl From<JsonObject> for Json {
    fn from(o: JsonObject) -> Self {
        Json::Object(o)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::Number(Number::from(n))
    }
}

impl From<usize> for Json {
    fn from(n: usize) -> Self {
        Json::Number(Number::from(n as u64))
    }
}

impl From<i32> for Json {
    fn from(n: i32) -> Self {
        Json::Number(Number::from(i64::from(n)))
    }
}

impl From<u32> for Json {
    fn from(n: u32) -> Self {
        Json::Number(Number::from(u64::from(n)))
    }
}

impl From<Vec<Json>> for Json {
    fn from(items: Vec<Json>) -> Self {
        Json::Array(items)
    }
}

/// `None` is null.
impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Self {
        v.map_or(Json::Null, Into::into)
    }
}

/// An object of `fields`, in their order (a later field replaces an earlier one of the same
/// name).
pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Json)>) -> Json {
    let mut o = JsonObject::new();
    for (k, v) in fields {
        o.insert(k, v);
    }
    Json::Object(o)
}

/// A value of the program's own types (settings, totals, verdicts) as [`Json`], as serde
/// writes it.
///
/// # Panics
/// When `value`'s serialization fails, which the program's own types never do.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Json {
    let text = serde_json::to_string(value).expect("the program's own values serialize");
    parse(&text).expect("serde_json writes JSON")
}

/// A JSON object: keys in insertion order, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonObject {
    entries: Vec<(String, Json)>,
}

impl JsonObject {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`. A key already present keeps its place and takes the new value (Python dict
    /// semantics, which is also what a JSON reader does with a repeated key).
    pub fn insert(&mut self, key: impl Into<String>, value: Json) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// An object of `entries`, whose keys the caller knows to be distinct (the parser checks
    /// that itself, faster than `insert` on wide objects).
    pub(crate) fn from_unique_entries(entries: Vec<(String, Json)>) -> Self {
        JsonObject { entries }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The members in order, by value.
    pub fn into_entries(self) -> Vec<(String, Json)> {
        self.entries
    }
}

impl FromIterator<(String, Json)> for JsonObject {
    fn from_iter<T: IntoIterator<Item = (String, Json)>>(iter: T) -> Self {
        let mut o = JsonObject::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&python_dumps(self))
    }
}

// Serde support, so the data model can be stored and exchanged with serde formats. A serde
// format cannot carry a NaN or an integer wider than 64 bits: those travel as f64 (NaN and
// infinities become whatever the format does with them). The product's own writers
// (`python_dumps`) are exact.
impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(o) => o.serialize(s),
        }
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
        Ok(Json::from(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::from(n)))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float(n)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut o = JsonObject::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            o.insert(k, v);
        }
        Ok(Json::Object(o))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonObject, D::Error> {
        match Json::deserialize(d)? {
            Json::Object(o) => Ok(o),
            other => Err(de::Error::custom(format!(
                "expected an object, found {}",
                other.kind()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_s_own_values_become_json_as_serde_writes_them() {
        #[derive(Serialize)]
        struct Settings {
            model: String,
            theta: f64,
            whole: f64,
            attempts: u32,
            key: Option<String>,
            tags: Vec<&'static str>,
        }
        let s = Settings {
            model: "m".into(),
            theta: 0.5,
            whole: 100.0,
            attempts: 3,
            key: None,
            tags: vec!["a", "b"],
        };
        let json = to_json(&s);
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(json["theta"], Json::from(0.5));
        assert_eq!(json["attempts"], Json::from(3u32));
        assert_eq!(json["key"], Json::Null);
        // Fields in order; a later one of the same name replaces the earlier.
        let o = object([
            ("b", Json::from(1)),
            ("a", Json::from(None::<&str>)),
            ("b", Json::from(2)),
        ]);
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"{"b":2,"a":null}"#);
        assert_eq!(
            Json::from(vec![Json::from(7usize)]),
            Json::Array(vec![Json::from(7)])
        );
    }

    #[test]
    fn insert_keeps_first_place_and_last_value() {
        let mut o = JsonObject::new();
        o.insert("a", Json::from(1));
        o.insert("b", Json::from(2));
        o.insert("a", Json::from(3));
        assert_eq!(o.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(o.get("a"), Some(&Json::from(3)));
    }

    #[test]
    fn serde_round_trip_keeps_order_and_kinds() {
        let text = r#"{"z":1,"a":[true,null,2.5,"s"],"m":{"y":-3,"b":100.0}}"#;
        let v: Json = serde_json::from_str(text).unwrap();
        let back = serde_json::to_string(&v).unwrap();
        assert_eq!(back, text);
    }
}
