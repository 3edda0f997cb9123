//! Structural JSON comparison for `"body": "json"`.
//!
//! Each body is read with serde_json's parser into a small tree that
//! borrows its strings from the body where it can (a string without
//! escapes costs no allocation). While reading:
//! - a key named in `ignoreFields` is skipped with its value, at any depth
//!   (the value is still checked to be JSON, but nothing of it is kept);
//! - each object's members are sorted by key, so key order never matters
//!   and members are matched in O(n log n), not O(n²);
//! - a key given twice in one object (after unescaping: `"a"` and
//!   `"\u0061"` are the same key) makes the body "not JSON" here: which of
//!   the two values counts is up to each reader, so the bytes are compared
//!   instead. serde_json's own `Value` would silently keep the last one.
//!
//! Also "not JSON": nesting deeper than 128 (serde_json's recursion limit,
//! which also bounds the comparison's own recursion), a number beyond f64
//! (`1e400`), invalid UTF-8 or lone surrogates, trailing data.
//!
//! **Numbers** are equal when they are the same number as serde_json reads
//! them, whatever their spelling: `1`, `1.0`, `1e0` and `10e-1` are all
//! equal, and `-0` equals `0`. Integers within i64/u64 are exact; an
//! integer-valued float equals an integer only if it is exactly that
//! integer (no rounding either way). Anything with a fraction or an
//! exponent, and integers beyond u64 or below i64, are read as f64:
//! differences past ~17 significant digits are not seen, and as serde_json
//! is built without `float_roundtrip`, two spellings of one long decimal
//! can rarely read one unit in the last place apart. Services that
//! re-serialize the same values print them the same way, so neither
//! matters in practice. (Exact decimal comparison would need serde_json's
//! `arbitrary_precision`, which changes every number it reads, config
//! included.)
//!
//! **The first difference** is found depth-first: array elements in index
//! order, then a length difference; object members in key order (bytes,
//! which for UTF-8 is code point order), a key on one side only counting
//! where it sorts. Its path is built only once a difference is found:
//! `$` for the root, else keys joined by `.` and indexes in brackets, as in
//! `items[3].price` or `[0].id`; a key that is not a plain name (ASCII
//! letters, digits, `_`, `-`) is JSON-quoted in brackets, as in
//! `meta["a.b"]` or `["x y"]`.

use crate::config::quote;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::{self, Write};

use super::Side;

/// Two JSON bodies compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonComparison {
    Equal,
    Differ(JsonDifference),
    /// This body is not JSON as read here (see the module documentation);
    /// the primary's is read first.
    NotJson(Side),
}

/// The first difference between two JSON values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDifference {
    /// Where, e.g. `items[3].price`; `$` for the root.
    pub path: String,
    pub kind: JsonDifferenceKind,
}

/// What differs at [`JsonDifference::path`], or at a field path of
/// [`fields`](super::fields) (which alone uses `Order` and `Length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JsonDifferenceKind {
    /// Same type, different values.
    Value,
    /// Different types (a number and a string, an object and null...).
    Type,
    /// A member or element only the primary has.
    OnlyInPrimary,
    /// A member or element only the shadow has.
    OnlyInShadow,
    /// Two lists with the same elements in a different order (field paths only).
    Order,
    /// Two lists of different lengths (field paths only).
    Length,
}

impl JsonDifferenceKind {
    pub fn label(self) -> &'static str {
        match self {
            JsonDifferenceKind::Value => "value",
            JsonDifferenceKind::Type => "type",
            JsonDifferenceKind::OnlyInPrimary => "only_in_primary",
            JsonDifferenceKind::OnlyInShadow => "only_in_shadow",
            JsonDifferenceKind::Order => "order",
            JsonDifferenceKind::Length => "length",
        }
    }
}

/// Compares two bodies as JSON values, leaving out members whose key is in
/// `ignore` at any depth.
pub fn compare(primary: &[u8], shadow: &[u8], ignore: &[String]) -> JsonComparison {
    let Some(p) = parse(primary, ignore) else {
        return JsonComparison::NotJson(Side::Primary);
    };
    let Some(s) = parse(shadow, ignore) else {
        return JsonComparison::NotJson(Side::Shadow);
    };
    let mut at = Vec::new();
    match first_difference(&p, &s, &mut at) {
        None => JsonComparison::Equal,
        Some(kind) => JsonComparison::Differ(JsonDifference {
            path: render_path(&at),
            kind,
        }),
    }
}

/// A parsed value. Objects are sorted by key, each key once, ignored keys left out.
#[derive(Debug)]
pub(super) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A number as serde_json reads it (without `arbitrary_precision`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Number {
    /// 0 and up.
    Unsigned(u64),
    /// Below 0.
    Negative(i64),
    Float(f64),
}

impl Number {
    /// Equal as numbers: see the module documentation.
    pub(super) fn same(self, other: Number) -> bool {
        match (self, other) {
            (Number::Unsigned(a), Number::Unsigned(b)) => a == b,
            (Number::Negative(a), Number::Negative(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Float(f), Number::Unsigned(u)) | (Number::Unsigned(u), Number::Float(f)) => {
                float_is_unsigned(f, u)
            }
            (Number::Float(f), Number::Negative(n)) | (Number::Negative(n), Number::Float(f)) => {
                float_is_negative(f, n)
            }
            (Number::Unsigned(_), Number::Negative(_)) | (Number::Negative(_), Number::Unsigned(_)) => false,
        }
    }
}

/// Whether `f` is exactly the integer `u`. Within [0, 2^64) (both ends are
/// exact doubles) an integral f64 converts to u64 exactly: no rounding, and
/// no 128-bit arithmetic in the module.
fn float_is_unsigned(f: f64, u: u64) -> bool {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    f.trunc() == f && (0.0..TWO_POW_64).contains(&f) && f as u64 == u
}

/// Whether `f` is exactly the negative integer `n`, within [-2^63, 0).
fn float_is_negative(f: f64, n: i64) -> bool {
    const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    f.trunc() == f && (MINUS_TWO_POW_63..0.0).contains(&f) && f as i64 == n
}

pub(super) fn parse<'a>(body: &'a [u8], ignore: &[String]) -> Option<Node<'a>> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let node = NodeSeed { ignore }.deserialize(&mut reader).ok()?;
    reader.end().ok()?;
    Some(node)
}

/// Reads one value, skipping members named in `ignore`.
#[derive(Clone, Copy)]
struct NodeSeed<'i> {
    ignore: &'i [String],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(if v >= 0 {
            Number::Unsigned(v.unsigned_abs())
        } else {
            Number::Negative(v)
        }))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Number::Unsigned(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Number::Float(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if self.ignore.iter().any(|ignored| **ignored == *key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(self)?;
            members.push((key, value));
        }
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if members.windows(2).any(|pair| matches!(pair, [a, b] if a.0 == b.0)) {
            return Err(de::Error::custom("duplicate key"));
        }
        Ok(Node::Object(members))
    }
}

/// Reads an object key, borrowing it from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// One step of a path.
#[derive(Debug)]
enum Step<'n> {
    Key(&'n str),
    Index(usize),
}

/// The first difference between `p` and `s`, or `None`. On a difference,
/// `at` receives its path, innermost step first (it is only written then,
/// so a match allocates nothing for it). Recursion is bounded by the
/// parser's depth limit.
fn first_difference<'n>(p: &'n Node<'_>, s: &'n Node<'_>, at: &mut Vec<Step<'n>>) -> Option<JsonDifferenceKind> {
    use JsonDifferenceKind::{OnlyInPrimary, OnlyInShadow, Type, Value};
    match (p, s) {
        (Node::Null, Node::Null) => None,
        (Node::Bool(a), Node::Bool(b)) => (a != b).then_some(Value),
        (Node::Number(a), Node::Number(b)) => (!a.same(*b)).then_some(Value),
        (Node::String(a), Node::String(b)) => (a != b).then_some(Value),
        (Node::Array(a), Node::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(kind) = first_difference(x, y, at) {
                    at.push(Step::Index(i));
                    return Some(kind);
                }
            }
            let (index, kind) = match a.len().cmp(&b.len()) {
                Ordering::Equal => return None,
                Ordering::Greater => (b.len(), OnlyInPrimary),
                Ordering::Less => (a.len(), OnlyInShadow),
            };
            at.push(Step::Index(index));
            Some(kind)
        }
        (Node::Object(a), Node::Object(b)) => {
            let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
            loop {
                let (key, kind) = match (a.peek(), b.peek()) {
                    (None, None) => return None,
                    (Some((key, _)), None) => (key, OnlyInPrimary),
                    (None, Some((key, _))) => (key, OnlyInShadow),
                    (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                        Ordering::Less => (ka, OnlyInPrimary),
                        Ordering::Greater => (kb, OnlyInShadow),
                        Ordering::Equal => match first_difference(va, vb, at) {
                            Some(kind) => (ka, kind),
                            None => {
                                a.next();
                                b.next();
                                continue;
                            }
                        },
                    },
                };
                at.push(Step::Key(key));
                return Some(kind);
            }
        }
        _ => Some(Type),
    }
}

/// `steps` innermost first, as `first_difference` leaves them.
fn render_path(steps: &[Step<'_>]) -> String {
    if steps.is_empty() {
        return "$".to_owned();
    }
    let mut path = String::new();
    for step in steps.iter().rev() {
        match step {
            Step::Key(key) if is_plain(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Step::Key(key) => {
                path.push('[');
                path.push_str(&quote(key));
                path.push(']');
            }
            Step::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
        }
    }
    path
}

/// A key written bare in a path: the same rule as configuration paths.
pub(super) fn is_plain(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn differ(p: &str, s: &str) -> (String, JsonDifferenceKind) {
        match compare(p.as_bytes(), s.as_bytes(), &[]) {
            JsonComparison::Differ(d) => (d.path, d.kind),
            other => panic!("{p} vs {s}: {other:?}"),
        }
    }

    fn equal(p: &str, s: &str, ignore: &[&str]) -> bool {
        let ignore: Vec<String> = ignore.iter().map(|f| (*f).to_owned()).collect();
        match compare(p.as_bytes(), s.as_bytes(), &ignore) {
            JsonComparison::Equal => true,
            JsonComparison::Differ(_) => false,
            other => panic!("{p} vs {s}: {other:?}"),
        }
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert!(equal(
            r#"{"a":1,"b":[true,null,"x"]}"#,
            r#" { "b" : [ true , null , "x" ] , "a" : 1 } "#,
            &[]
        ));
        assert!(equal(
            r#"{"o":{"z":1,"y":{"b":2,"a":3}}}"#,
            r#"{"o":{"y":{"a":3,"b":2},"z":1}}"#,
            &[]
        ));
        assert!(!equal("[1,2]", "[2,1]", &[]), "array order matters");
    }

    #[test]
    fn paths_name_the_first_difference() {
        let (path, kind) = differ(
            r#"{"items":[{"id":1,"price":10},{"id":2,"price":20},{"id":3},{"id":4,"price":5}]}"#,
            r#"{"items":[{"id":1,"price":10},{"id":2,"price":20},{"id":3},{"id":4,"price":6}]}"#,
        );
        assert_eq!((path.as_str(), kind), ("items[3].price", JsonDifferenceKind::Value));
        assert_eq!(
            differ(r#"{"a":{"b":1}}"#, r#"{"a":{"b":"1"}}"#),
            ("a.b".to_owned(), JsonDifferenceKind::Type)
        );
        assert_eq!(differ("1", "2"), ("$".to_owned(), JsonDifferenceKind::Value));
        assert_eq!(differ("{}", "[]"), ("$".to_owned(), JsonDifferenceKind::Type));
        assert_eq!(
            differ(r#"[{"id":1}]"#, r#"[{"id":2}]"#),
            ("[0].id".to_owned(), JsonDifferenceKind::Value)
        );
        assert_eq!(
            differ(r#"{"a.b":1}"#, r#"{"a.b":2}"#),
            (r#"["a.b"]"#.to_owned(), JsonDifferenceKind::Value)
        );
        assert_eq!(
            differ(r#"{"m":{"x y":{"":1}}}"#, r#"{"m":{"x y":{"":2}}}"#),
            (r#"m["x y"][""]"#.to_owned(), JsonDifferenceKind::Value)
        );
        assert_eq!(differ(r#"{"$":1}"#, r#"{"$":2}"#).0, r#"["$"]"#);
        assert_eq!(differ(r#"{"a\nb":1}"#, r#"{"a\nb":2}"#).0, r#"["a\nb"]"#);
        assert_eq!(
            differ(r#"{"x-request-id":1,"_k9":2}"#, r#"{"x-request-id":1,"_k9":3}"#).0,
            "_k9"
        );
    }

    #[test]
    fn missing_and_extra_members_and_elements() {
        assert_eq!(
            differ("[1,2,3]", "[1,2]"),
            ("[2]".to_owned(), JsonDifferenceKind::OnlyInPrimary)
        );
        assert_eq!(
            differ("[1]", "[1,2,3]"),
            ("[1]".to_owned(), JsonDifferenceKind::OnlyInShadow)
        );
        assert_eq!(
            differ(r#"{"a":1,"b":2}"#, r#"{"a":1}"#),
            ("b".to_owned(), JsonDifferenceKind::OnlyInPrimary)
        );
        assert_eq!(
            differ(r#"{"a":1}"#, r#"{"a":1,"c":2}"#),
            ("c".to_owned(), JsonDifferenceKind::OnlyInShadow)
        );
        // First in key order: "b" (only in the primary) sorts before "c".
        assert_eq!(
            differ(r#"{"c":1,"b":1}"#, r#"{"c":2}"#),
            ("b".to_owned(), JsonDifferenceKind::OnlyInPrimary)
        );
        // A value difference inside an earlier element wins over a length difference.
        assert_eq!(
            differ("[[1],2]", "[[2]]"),
            ("[0][0]".to_owned(), JsonDifferenceKind::Value)
        );
    }

    #[test]
    fn ignored_fields_are_left_out_at_any_depth() {
        let ignore = ["timestamp", "requestId"];
        assert!(equal(
            r#"{"timestamp":1,"data":{"requestId":"a","v":[{"timestamp":"x","k":1}]}}"#,
            r#"{"data":{"v":[{"k":1,"timestamp":{"deep":[1,2]}}],"requestId":null}}"#,
            &ignore
        ));
        assert!(!equal(r#"{"timestamp":1,"k":1}"#, r#"{"timestamp":2,"k":2}"#, &ignore));
        // A name in ignoreFields is a key: a string value equal to it is compared.
        assert!(!equal(r#"["timestamp"]"#, r#"["other"]"#, &ignore));
        // An ignored key given twice is no conflict: it is not kept at all.
        assert!(equal(r#"{"timestamp":1,"timestamp":2,"k":1}"#, r#"{"k":1}"#, &ignore));
    }

    #[test]
    fn numbers_are_equal_as_numbers() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1e0"),
            ("1", "10e-1"),
            ("100", "1E2"),
            ("0", "-0"),
            ("0", "0.0"),
            ("-0.0", "0"),
            ("-5", "-5.0"),
            ("-1", "-1e0"),
            ("0", "-0e5"),
            ("0.5", "5e-1"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808.0"),
            ("9007199254740992", "9007199254740992.0"),
        ] {
            assert!(equal(a, b, &[]), "{a} == {b}");
            assert!(equal(b, a, &[]), "{b} == {a}");
        }
        for (a, b) in [
            ("1", "1.5"),
            ("1", "-1"),
            ("1", "2"),
            ("-1", "18446744073709551615"),
            ("0.1", "0.2"),
            ("9223372036854775807", "9223372036854775806"),
            ("18446744073709551615", "18446744073709551614"),
            // 2^53 + 1 is not a double: the float reads as 2^53, an integer stays exact.
            ("9007199254740993", "9007199254740993.0"),
            ("18446744073709551615", "18446744073709551616"),
            ("18446744073709551615", "18446744073709551615.0"),
            ("1", "true"),
            ("0", "null"),
            ("1", "\"1\""),
        ] {
            assert!(!equal(a, b, &[]), "{a} != {b}");
            assert!(!equal(b, a, &[]), "{b} != {a}");
        }
        // Beyond u64 (or below i64) a number reads as an f64: differences past
        // double precision are not seen.
        assert!(equal("18446744073709551616", "18446744073709551617", &[]));
        assert!(equal("-9223372036854775808", "-9223372036854775809", &[]));
    }

    #[test]
    fn strings_compare_unescaped() {
        assert!(equal(r#"{"a":"\u0041\n"}"#, "{\"a\":\"A\\n\"}", &[]));
        assert!(equal(r#"{"\u0061":1}"#, r#"{"a":1}"#, &[]));
        assert!(equal(r#"["é"]"#, r#"["\u00e9"]"#, &[]));
        assert!(!equal(r#"["é"]"#, r#"["e\u0301"]"#, &[]), "no Unicode normalisation");
    }

    #[test]
    fn what_is_not_json_here() {
        let not_json = |p: &str, s: &str| compare(p.as_bytes(), s.as_bytes(), &[]);
        assert_eq!(not_json("{", "{}"), JsonComparison::NotJson(Side::Primary));
        assert_eq!(not_json("{}", "{} x"), JsonComparison::NotJson(Side::Shadow));
        assert_eq!(not_json("", "{}"), JsonComparison::NotJson(Side::Primary));
        assert_eq!(not_json("1e400", "1"), JsonComparison::NotJson(Side::Primary));
        assert_eq!(
            not_json(r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            JsonComparison::NotJson(Side::Primary)
        );
        assert_eq!(
            not_json(r#"{"a":2}"#, r#"{"a":1,"\u0061":2}"#),
            JsonComparison::NotJson(Side::Shadow)
        );
        assert_eq!(not_json(r#"["\ud800"]"#, "[]"), JsonComparison::NotJson(Side::Primary));
        assert_eq!(
            compare(b"[\"\xff\"]", b"[]", &[]),
            JsonComparison::NotJson(Side::Primary)
        );
        assert_eq!(not_json("NaN", "1"), JsonComparison::NotJson(Side::Primary));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let nest = |depth: usize, leaf: &str| format!("{}{leaf}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(equal(&nest(127, "1"), &nest(127, "1.0"), &[]));
        let (path, _) = differ(&nest(127, "1"), &nest(127, "2"));
        assert_eq!(path, "[0]".repeat(127));
        let objects = |depth: usize| format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth));
        assert!(equal(&objects(127), &objects(127), &[]));
        assert_eq!(
            compare(objects(128).as_bytes(), b"1", &[]),
            JsonComparison::NotJson(Side::Primary)
        );
        assert_eq!(
            compare(nest(128, "1").as_bytes(), b"1", &[]),
            JsonComparison::NotJson(Side::Primary)
        );
        assert_eq!(
            compare(nest(129, "1").as_bytes(), b"1", &[]),
            JsonComparison::NotJson(Side::Primary)
        );
        assert_eq!(
            compare(b"1", nest(100_000, "1").as_bytes(), &[]),
            JsonComparison::NotJson(Side::Shadow)
        );
        assert_eq!(
            compare(b"1", objects(100_000).as_bytes(), &[]),
            JsonComparison::NotJson(Side::Shadow)
        );
    }

    #[test]
    fn large_objects_compare_without_quadratic_cost() {
        let object = |n: usize, reversed: bool, last: u32| {
            let mut keys: Vec<usize> = (0..n).collect();
            if reversed {
                keys.reverse();
            }
            let members: Vec<String> = keys
                .iter()
                .map(|k| format!("\"k{k}\":{}", if *k == n - 1 { last } else { 0 }))
                .collect();
            format!("{{{}}}", members.join(","))
        };
        let n = 50_000;
        assert!(equal(&object(n, false, 0), &object(n, true, 0), &[]));
        assert_eq!(
            differ(&object(n, false, 0), &object(n, true, 1)).0,
            format!("k{}", n - 1)
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body = br#"{"key":"value","esc\n":"a\u0041"}"#;
        let Some(Node::Object(members)) = parse(body, &[]) else {
            panic!()
        };
        let (escaped_key, escaped_value) = &members[0];
        assert!(matches!(escaped_key, Cow::Owned(_)));
        assert!(matches!(escaped_value, Node::String(Cow::Owned(s)) if s == "aA"));
        let (key, value) = &members[1];
        assert!(matches!(key, Cow::Borrowed("key")));
        assert!(matches!(value, Node::String(Cow::Borrowed("value"))));
    }
}
