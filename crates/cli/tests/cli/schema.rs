//! The part of a CRD's openAPIV3Schema that a rendered manifest uses, and a
//! check of a manifest against it: the shape tests of `vrata-mirror istio`
//! (Istio's CRDs) and `vrata-mirror gateway` (Envoy Gateway's and Gateway
//! API's) write the fields they use, and the fields next to them, from the
//! published CRDs.

use serde::Deserialize;
use serde_json::Value;

/// A CRD's schema for the fields a manifest uses (and the fields next to
/// them, so that a typo is caught, not just a missing field).
pub enum Schema {
    String,
    /// A string with a pattern-like check.
    StringWith(fn(&str) -> bool, &'static str),
    Enum(&'static [&'static str]),
    /// An integer in this range.
    Int(i64, i64),
    /// Named fields, each with whether it is required; no others allowed.
    Object(Vec<(&'static str, Schema, bool)>),
    /// Any keys, each value of this schema (additionalProperties).
    MapOf(Box<Schema>),
    List(Box<Schema>),
    /// x-kubernetes-preserve-unknown-fields: any object.
    AnyObject,
    /// Any JSON value (x-kubernetes-preserve-unknown-fields without a type).
    Any,
    /// A boolean.
    Bool,
    /// Exactly one of these fields (a oneOf of single-field objects).
    OneOf(Vec<(&'static str, Schema)>),
}

use Schema::*;

pub fn check(value: &Value, schema: &Schema, at: &str) -> Result<(), std::string::String> {
    let wrong = |what: &str| Err(format!("{at}: {what}, got {value}"));
    match schema {
        String => value
            .as_str()
            .map(|_| ())
            .ok_or(())
            .or_else(|()| wrong("expected a string")),
        StringWith(ok, pattern) => match value.as_str() {
            Some(s) if ok(s) => Ok(()),
            _ => wrong(&format!("expected a string matching {pattern}")),
        },
        Enum(values) => match value.as_str() {
            Some(s) if values.contains(&s) => Ok(()),
            _ => wrong(&format!("expected one of {values:?}")),
        },
        Int(min, max) => match value.as_i64() {
            Some(n) if (*min..=*max).contains(&n) => Ok(()),
            _ => wrong(&format!("expected an integer from {min} to {max}")),
        },
        Object(fields) => {
            let Some(object) = value.as_object() else {
                return wrong("expected an object");
            };
            for (key, field) in object {
                let Some((_, schema, _)) = fields.iter().find(|(name, _, _)| name == key) else {
                    return Err(format!("{at}.{key}: not a field of the CRD"));
                };
                check(field, schema, &format!("{at}.{key}"))?;
            }
            for (name, _, required) in fields {
                if *required && !object.contains_key(*name) {
                    return Err(format!("{at}.{name}: required"));
                }
            }
            Ok(())
        }
        MapOf(inner) => {
            let Some(object) = value.as_object() else {
                return wrong("expected an object");
            };
            object
                .iter()
                .try_for_each(|(k, v)| check(v, inner, &format!("{at}.{k}")))
        }
        List(inner) => {
            let Some(items) = value.as_array() else {
                return wrong("expected a list");
            };
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| check(v, inner, &format!("{at}[{i}]")))
        }
        Any => Ok(()),
        Bool => value
            .as_bool()
            .map(|_| ())
            .ok_or(())
            .or_else(|()| wrong("expected a boolean")),
        AnyObject => value
            .as_object()
            .map(|_| ())
            .ok_or(())
            .or_else(|()| wrong("expected an object")),
        OneOf(choices) => {
            let Some(object) = value.as_object() else {
                return wrong("expected an object");
            };
            let [(key, field)] = object.iter().collect::<Vec<_>>()[..] else {
                return wrong("expected exactly one field");
            };
            let Some((_, schema)) = choices.iter().find(|(name, _)| name == key) else {
                return Err(format!("{at}.{key}: not one of the choices"));
            };
            check(field, schema, &format!("{at}.{key}"))
        }
    }
}

/// The YAML stream's documents, as JSON values.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}")))
        .collect()
}
