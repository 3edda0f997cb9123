//! Strict JSON reading for the plugin configuration.
//!
//! serde_json's own `Value` keeps the last of two equal keys, so
//! `{"mirror": {...}, "mirror": {...}}` would silently drop a mirror, and its
//! maps forget the order keys were written in. This reader uses serde_json's
//! parser but builds a small value of its own that refuses duplicate keys and
//! keeps objects in document order (so the first problem in the text is the
//! one reported). It also renders values briefly for error messages, and
//! refuses unknown keys with a hint at the nearest allowed one.

use super::ConfigError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt::{self, Write};

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(String),
    Array(Vec<Json>),
    /// Keys in document order, each once.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Any number as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Json::Unsigned(n) => Some(n as f64),
            Json::Signed(n) => Some(n as f64),
            Json::Float(n) => Some(n),
            _ => None,
        }
    }

    /// A non-negative integer (not a float, even `1.0`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Json::Unsigned(n) => Some(n),
            _ => None,
        }
    }
}

/// Parses `text` as JSON, refusing duplicate object keys.
pub fn parse_strict(text: &[u8]) -> Result<Json, serde_json::Error> {
    let Strict(value) = serde_json::from_slice(text)?;
    Ok(value)
}

/// Quotes a string as JSON (`"a\"b"`), for paths and messages.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders a value for an error message: JSON text, cut short when long, with
/// the kind of value named so `"10"` (a string) and `10` are told apart.
pub fn describe(value: &Json) -> String {
    const MAX_CHARS: usize = 60;
    let mut text = String::new();
    render(value, &mut text);
    let shown = if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    } else {
        text
    };
    let kind = match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Unsigned(_) | Json::Signed(_) | Json::Float(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    };
    format!("{shown} ({kind})")
}

fn render(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Unsigned(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Signed(n) => {
            let _ = write!(out, "{n}");
        }
        // serde_json's float printer is in the module already: core's `{}` for
        // f64 would link a second one.
        Json::Float(n) => out.push_str(&serde_json::to_string(n).unwrap_or_default()),
        Json::String(s) => out.push_str(&quote(s)),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(key));
                out.push(':');
                render(item, out);
            }
            out.push('}');
        }
    }
}

/// A `Json` built from serde_json's parser with duplicate keys refused.
struct Strict(Json);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(if v >= 0 {
            Json::Unsigned(v as u64)
        } else {
            Json::Signed(v)
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Json, A::Error> {
        let mut fields: Vec<(String, Json)> = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate key {}", quote(&key))));
            }
            let Strict(value) = access.next_value()?;
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

/// A JSON object's fields, in document order.
#[derive(Clone, Copy)]
pub struct Object<'a>(pub &'a [(String, Json)]);

impl<'a> Object<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a (String, Json)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Refuses keys that are neither `allowed` nor `ignored`, suggesting the
/// nearest allowed key: a typo must not silently change what is mirrored.
pub fn check_keys(obj: Object<'_>, path: &str, allowed: &[&str], ignored: &[&str]) -> Result<(), ConfigError> {
    for key in obj.keys() {
        if allowed.contains(&key.as_str()) || ignored.contains(&key.as_str()) {
            continue;
        }
        let at = key_path(path, key);
        let hint = nearest(key, allowed)
            .map(|k| format!("did you mean \"{k}\"? "))
            .unwrap_or_default();
        return Err(ConfigError::new(
            at,
            format!("unknown key; {hint}allowed keys here: {}", allowed.join(", ")),
        ));
    }
    Ok(())
}

/// The path of `key` inside `path`: `forward.mirror` for a plain key, and
/// the key JSON-quoted (`forward["\r"]`) otherwise, so that an error line
/// can never be split, forged or left naming nothing by the key it echoes.
fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (plain, path.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!("{path}[{}]", quote(key)),
    }
}

/// The allowed key within edit distance 2 of `key`, if any, ignoring case:
/// the hint for a typo.
pub fn nearest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| {
            (
                edit_distance(&key.to_ascii_lowercase(), &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance: insertions, deletions and substitutions of chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let delete = previous.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = current.get(j).copied().unwrap_or(0) + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_json_in_document_order() {
        let v = parse_strict(br#"{"b": [1, 2.5, "x", null, true, -3], "a": {}}"#).unwrap();
        let Json::Object(fields) = &v else { panic!("{v:?}") };
        assert_eq!(fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(
            fields[0].1,
            Json::Array(vec![
                Json::Unsigned(1),
                Json::Float(2.5),
                Json::String("x".into()),
                Json::Null,
                Json::Bool(true),
                Json::Signed(-3)
            ])
        );
        assert_eq!(fields[1].1, Json::Object(vec![]));
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let err = parse_strict(br#"{"forward": {"mirror": 1, "mirror": 2}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"mirror\""), "{err}");
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(parse_strict(b"10").unwrap().as_u64(), Some(10));
        assert_eq!(parse_strict(b"10.0").unwrap().as_u64(), None);
        assert_eq!(parse_strict(b"10.5").unwrap().as_f64(), Some(10.5));
        assert_eq!(parse_strict(b"-1").unwrap().as_u64(), None);
    }

    #[test]
    fn describe_names_the_kind_and_cuts_long_values() {
        assert_eq!(describe(&Json::String("10".into())), "\"10\" (a string)");
        assert_eq!(describe(&Json::Unsigned(10)), "10 (a number)");
        assert_eq!(
            describe(&parse_strict(br#"{"a":[1,"b"]}"#).unwrap()),
            "{\"a\":[1,\"b\"]} (an object)"
        );
        let shown = describe(&Json::String("x".repeat(200)));
        assert!(shown.ends_with("... (a string)"), "{shown}");
        assert!(shown.len() < 80);
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("body", "body"), 0);
        assert_eq!(edit_distance("bodyy", "body"), 1);
        assert_eq!(edit_distance("bdy", "body"), 1);
        assert_eq!(edit_distance("bady", "body"), 1);
        assert_eq!(edit_distance("", "body"), 4);
        assert_eq!(edit_distance("percentage", "percnetage"), 2);
    }

    #[test]
    fn nearest_is_within_two_edits_ignoring_case() {
        let allowed = ["body", "ignoreFields", "maxBodyBytes"];
        assert_eq!(nearest("ignorefields", &allowed), Some("ignoreFields"));
        assert_eq!(nearest("bdy", &allowed), Some("body"));
        assert_eq!(nearest("headers", &allowed), None);
    }

    #[test]
    fn check_keys_names_the_unknown_key_and_the_nearest_allowed_one() {
        let value = parse_strict(br#"{"body": 1, "retry": 2, "bodyy": 3}"#).unwrap();
        let Json::Object(fields) = &value else {
            panic!("{value:?}")
        };
        let err = check_keys(Object(fields), "compare", &["body"], &["retry"]).unwrap_err();
        assert_eq!(err.path, "compare.bodyy");
        assert_eq!(
            err.problem,
            "unknown key; did you mean \"body\"? allowed keys here: body"
        );
        assert!(check_keys(Object(fields), "compare", &["body", "bodyy"], &["retry"]).is_ok());
    }

    #[test]
    fn key_paths_quote_keys_that_are_not_plain() {
        assert_eq!(key_path("", "forward"), "forward");
        assert_eq!(key_path("forward", "mirror"), "forward.mirror");
        assert_eq!(key_path("forward", "\r"), "forward[\"\\r\"]");
        assert_eq!(key_path("", ""), "[\"\"]");
    }
}
