//! Strict JSON reading for the plugin configuration.
//!
//! `serde_json::Value` keeps the last of two equal keys, so
//! `{"mirror": {...}, "mirror": {...}}` would silently drop a mirror. This
//! reader builds the same `Value` but refuses duplicate keys, and renders
//! values briefly for error messages.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses `text` as JSON, refusing duplicate object keys.
pub fn parse_strict(text: &[u8]) -> Result<Value, serde_json::Error> {
    let StrictValue(value) = serde_json::from_slice(text)?;
    Ok(value)
}

/// A JSON value whose objects had no duplicate keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Renders a value for an error message: JSON text, cut short when long, with
/// the kind of value named so `"10"` (a string) and `10` are told apart.
pub fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = value.to_string();
    let shown = if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    } else {
        text
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("{shown} ({kind})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_json() {
        let v = parse_strict(br#"{"a": [1, 2.5, "x", null, true], "b": {}}"#).unwrap();
        assert_eq!(v["a"][1], Value::from(2.5));
        assert!(v["b"].is_object());
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let err = parse_strict(br#"{"forward": {"mirror": 1, "mirror": 2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"mirror\""), "{err}");
    }

    #[test]
    fn describe_names_the_kind_and_cuts_long_values() {
        assert_eq!(describe(&Value::from("10")), "\"10\" (a string)");
        assert_eq!(describe(&Value::from(10)), "10 (a number)");
        let long = Value::from("x".repeat(200));
        let shown = describe(&long);
        assert!(shown.ends_with("... (a string)"), "{shown}");
        assert!(shown.len() < 80);
    }
}
