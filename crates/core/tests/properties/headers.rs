//! The copy's headers: never hop-by-hop or framing (but `te: trailers`), no
//! mesh peer metadata, trace context only when the mirror keeps it, always
//! an `:authority` and the loop marker, removes and adds applied, everything
//! else carried over in order and byte for byte (values that are not UTF-8
//! included).

use crate::strategies::header_pairs;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::rc::Rc;
use vrata_mirror_core::config::{parse, MirrorPolicy};
use vrata_mirror_core::mirror::request::{shape_headers, RequestHead};

/// RFC 9110 connection-specific fields plus body framing, written out here
/// rather than taken from the crate.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "content-length",
    "expect",
];

/// Trace context: the copy is not the primary's span, unless the mirror's
/// `traceContext` is `"keep"`.
const TRACE_CONTEXT: [&str; 14] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "uber-trace-id",
    "grpc-trace-bin",
    "x-cloud-trace-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
];

/// Istio peer metadata: the copy is not sent by the primary's caller.
const PEER_METADATA: [&str; 2] = ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"];

/// Whether the copy may carry the primary's `name: value`: gRPC needs
/// `te: trailers`, the only `te` HTTP/2 allows.
fn carried(name: &str, value: &[u8], keep_trace: bool) -> bool {
    if name == "te" {
        return value.trim_ascii().eq_ignore_ascii_case(b"trailers");
    }
    !HOP_BY_HOP.contains(&name) && !PEER_METADATA.contains(&name) && (keep_trace || !TRACE_CONTEXT.contains(&name))
}

#[derive(Debug, Clone)]
enum Authority {
    Keep,
    Replace(String),
    Suffix(String),
}

fn policy(removes: &[String], adds: &[(String, String)], authority: &Authority, keep_trace: bool) -> Rc<MirrorPolicy> {
    let mut m = Map::new();
    m.insert("destinationId".into(), json!("shadow"));
    m.insert("traceContext".into(), json!(if keep_trace { "keep" } else { "drop" }));
    m.insert("removeHeaders".into(), json!(removes));
    let adds: Map<String, Value> = adds.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    m.insert("addHeaders".into(), Value::Object(adds));
    match authority {
        Authority::Keep => {}
        Authority::Replace(a) => {
            m.insert("authority".into(), json!(a));
        }
        Authority::Suffix(s) => {
            m.insert("hostSuffix".into(), json!(s));
        }
    }
    let text = json!({"forward": {"mirror": m}}).to_string();
    match parse(text.as_bytes()) {
        Ok(cfg) => cfg.default_policy.mirrors[0].clone(),
        Err(err) => panic!("generated policy refused: {err}\n{text}"),
    }
}

fn name_pool() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}",
        prop::sample::select(vec!["cookie", "authorization", "x-user-id", "accept", "host"]).prop_map(str::to_owned),
    ]
}

/// Names `addHeaders` accepts: the configuration refuses hop-by-hop and
/// framing headers there (a random name can be `te` or `expect`).
fn addable_name() -> impl Strategy<Value = String> {
    name_pool().prop_filter("hop-by-hop and framing headers cannot be added", |name| {
        !HOP_BY_HOP.contains(&name.as_str())
    })
}

fn authority() -> impl Strategy<Value = Authority> {
    prop_oneof![
        Just(Authority::Keep),
        "[a-z][a-z0-9.-]{0,10}(:[0-9]{1,4})?".prop_map(Authority::Replace),
        "-[a-z0-9]{1,6}".prop_map(Authority::Suffix),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_copy_follows_the_policy(
        input in header_pairs(),
        removes in prop::collection::vec(name_pool(), 0..4),
        adds in prop::collection::btree_map(addable_name(), "[ -~]{0,12}", 0..3),
        authority in authority(),
        keep_trace in any::<bool>(),
    ) {
        let adds: Vec<(String, String)> = adds.into_iter().collect();
        let policy = policy(&removes, &adds, &authority, keep_trace);
        let head = RequestHead::from_pairs(input.iter().map(|(n, v)| (n.as_bytes(), v.as_slice())));
        let mut shaped: Vec<(String, Vec<u8>)> = shape_headers(head.headers.clone(), &policy)
            .iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect();
        // The loop marker, on every copy (after the mirror's own headers).
        let marker = shaped.iter().position(|(n, _)| n == "x-vrata-mirror");
        prop_assert!(marker.is_some(), "no loop marker in {shaped:?}");
        prop_assert_eq!(marker.map(|at| shaped.remove(at).1), Some(b"1".to_vec()));
        prop_assert!(shaped.iter().all(|(n, _)| n != "x-vrata-mirror"), "one marker: {shaped:?}");
        let is_added = |name: &str| adds.iter().any(|(n, _)| n == name);

        for (name, value) in &shaped {
            prop_assert!(carried(name, value, keep_trace) || is_added(name), "{name}: {value:?} in {shaped:?}");
        }
        for removed in removes.iter().filter(|r| !is_added(r)) {
            prop_assert!(shaped.iter().all(|(n, _)| n != removed), "{removed} not removed: {shaped:?}");
        }
        for (name, value) in &adds {
            let found: Vec<&[u8]> = shaped.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_slice()).collect();
            prop_assert_eq!(found, vec![value.as_bytes()], "added header {} in {:?}", name, shaped);
        }

        // :authority: always there; rewritten as the policy says.
        let original = input.iter().find(|(n, _)| n == ":authority").map(|(_, v)| v.clone());
        let authorities: Vec<&Vec<u8>> = shaped.iter().filter(|(n, _)| n == ":authority").map(|(_, v)| v).collect();
        prop_assert!(!authorities.is_empty(), "no :authority in {shaped:?}");
        let first = authorities[0].clone();
        match (&original, &authority) {
            (None, Authority::Replace(a)) => prop_assert_eq!(&first, a.as_bytes()),
            (None, _) => prop_assert_eq!(first.as_slice(), b"shadow"),
            (Some(o), Authority::Keep) => prop_assert_eq!(&first, o),
            (Some(_), Authority::Replace(a)) => prop_assert_eq!(&first, a.as_bytes()),
            (Some(o), Authority::Suffix(s)) => {
                let s = s.as_bytes();
                prop_assert_eq!(first.len(), o.len() + s.len());
                let at = first.windows(s.len()).position(|w| w == s);
                prop_assert!(at.is_some_and(|i| [&first[..i], &first[i + s.len()..]].concat() == *o),
                    "{first:?} is not {o:?} with {s:?} inserted");
            }
        }
        if original.is_none() {
            prop_assert_eq!(authorities.len(), 1);
        }

        // Everything else: the request's own headers, in order, byte for byte.
        let untouched = |name: &str| name != ":authority" && !is_added(name) && !removes.iter().any(|r| r == name);
        let kept: Vec<&(String, Vec<u8>)> = shaped.iter().filter(|(n, _)| untouched(n)).collect();
        let expected: Vec<&(String, Vec<u8>)> = input
            .iter()
            .filter(|(n, v)| untouched(n) && carried(n, v, keep_trace))
            .collect();
        prop_assert_eq!(kept, expected);
    }
}
