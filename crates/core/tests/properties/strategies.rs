//! Generators shared by the property tests.

use proptest::prelude::*;
use serde_json::Value;

/// Header names Envoy could hand a filter: lower-case tokens, a few
/// pseudo-headers, every hop-by-hop or framing name, and some trace
/// context and mesh headers the copy drops.
pub fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9-]{0,12}",
        1 => prop::sample::select(vec![
            ":method", ":path", ":authority", ":scheme", "content-length", "transfer-encoding",
            "connection", "keep-alive", "proxy-connection", "upgrade", "te", "expect", "cookie",
            "authorization", "x-user-id", "host", "traceparent", "x-b3-traceid", "b3",
            "x-envoy-peer-metadata", "grpc-timeout",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Header values: mostly printable, sometimes arbitrary bytes (not UTF-8).
pub fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,24}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["trailers", " Trailers", "trailers, gzip"]).prop_map(|v| v.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ]
}

pub fn header_pairs() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec((header_name(), header_value()), 0..16)
}

/// Keys the configuration understands, so that random documents reach deep
/// into the parser instead of stopping at the first unknown key.
const KNOWN_KEYS: &[&str] = &[
    "forward",
    "routes",
    "mirror",
    "mirrors",
    "destinations",
    "destinationId",
    "weight",
    "percentage",
    "timeoutMs",
    "maxBodyBytes",
    "maxInFlight",
    "maxRequestsPerSecond",
    "burst",
    "copies",
    "sampleBy",
    "methods",
    "authority",
    "hostSuffix",
    "addHeaders",
    "removeHeaders",
    "traceContext",
    "loopMarker",
    "retry",
    "api",
];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..200).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec!["shadow", "GET", "x-user-id", "-shadow", "", " s", "get", ":path"])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

/// Arbitrary JSON documents biased towards the configuration's shape.
pub fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A 64-bit generator for statistical checks, seeded by proptest
/// (SplitMix64: fast, and good enough to look uniform at these sample sizes).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

/// Six standard deviations of Binomial(n, p), plus one for rounding.
pub fn binomial_slack(n: u64, p: f64) -> f64 {
    6.0 * (n as f64 * p * (1.0 - p)).sqrt() + 1.0
}
