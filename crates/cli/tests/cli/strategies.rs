//! Generators: arbitrary JSON biased towards the configuration's shape (as
//! crates/core/tests/properties/strategies.rs), and valid configurations.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

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
    "sampleBy",
    "methods",
    "authority",
    "hostSuffix",
    "addHeaders",
    "removeHeaders",
    "compare",
    "body",
    "ignoreFields",
    "logMismatches",
    "maxRequestsPerSecond",
    "burst",
    "copies",
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
        prop::sample::select(vec![
            "shadow",
            "GET",
            "x-user-id",
            "-shadow",
            "",
            " s",
            "get",
            ":path",
            "json"
        ])
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

/// A configuration document: sometimes arbitrary, mostly shaped like one
/// (a forward block with mirror objects whose fields are drawn from valid
/// and invalid values), so that both outcomes are common.
pub fn config_document() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => json_value(),
        1 => json_value().prop_map(|v| json!({"forward": {"mirror": v}})),
        3 => valid_config(),
        2 => (valid_config(), json_key(), json_value()).prop_map(|(mut config, key, value)| {
            // One field of the first mirror replaced by something arbitrary.
            if let Some(mirror) = config.pointer_mut("/forward/mirrors/0").and_then(Value::as_object_mut) {
                mirror.insert(key, value);
            }
            config
        }),
    ]
}

fn mirror() -> impl Strategy<Value = Map<String, Value>> {
    let percentage = prop_oneof![
        Just(None),
        (0u32..=100).prop_map(|p| Some(json!(p))),
        (0.0f64..=100.0).prop_map(|p| Some(json!(p))),
    ];
    let authority = prop_oneof![
        Just(None),
        "[a-z][a-z0-9.-]{0,10}(:[0-9]{1,5})?".prop_map(|a| Some(("authority", a))),
        "-[a-z0-9]{1,8}".prop_map(|s| Some(("hostSuffix", s))),
    ];
    let methods = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]).prop_map(str::to_owned),
        1..4,
    ));
    let compare = prop_oneof![
        Just(None),
        Just(Some(json!({"body": "none"}))),
        (0u32..100).prop_map(|n| Some(json!({"body": "exact", "maxBodyBytes": n * 1000, "logMismatches": n}))),
        Just(Some(json!({"body": "json", "ignoreFields": ["ts", "id"]}))),
    ];
    (
        percentage,
        prop::option::of(1u32..=300_000),
        prop::option::of(0u64..=64 * 1024 * 1024),
        prop::option::of(1u32..=100_000),
        prop::option::of("[A-Za-z][A-Za-z0-9-]{0,10}"),
        methods,
        authority,
        prop::collection::btree_map("x-[a-z0-9]{1,8}", "[ -~]{0,16}", 0..3),
        prop::collection::btree_set("[a-z][a-z0-9-]{0,8}", 0..3),
        compare,
        prop_oneof![
            Just(None),
            (1u32..5000).prop_map(|r| Some((f64::from(r) / 10.0, None))),
            (1u32..5000, 1u32..100).prop_map(|(r, b)| Some((f64::from(r), Some(b)))),
        ],
        (
            prop::option::of(1u32..=10),
            prop::option::of(prop::sample::select(vec!["drop", "keep"])),
        ),
    )
        .prop_map(
            |(
                percentage,
                timeout,
                body,
                in_flight,
                sample_by,
                methods,
                authority,
                adds,
                removes,
                compare,
                cap,
                (copies, trace_context),
            )| {
                let mut m = Map::new();
                if let Some(p) = percentage {
                    m.insert("percentage".into(), p);
                }
                if let Some(t) = timeout {
                    m.insert("timeoutMs".into(), json!(t));
                }
                if let Some(b) = body {
                    m.insert("maxBodyBytes".into(), json!(b));
                }
                if let Some(f) = in_flight {
                    m.insert("maxInFlight".into(), json!(f));
                }
                if let Some(s) = sample_by {
                    m.insert("sampleBy".into(), json!(s));
                }
                if let Some(methods) = methods {
                    m.insert("methods".into(), json!(methods));
                }
                if let Some((key, value)) = authority {
                    m.insert(key.into(), json!(value));
                }
                if !adds.is_empty() {
                    m.insert("addHeaders".into(), json!(adds));
                }
                if !removes.is_empty() {
                    m.insert("removeHeaders".into(), json!(removes));
                }
                if let Some(c) = compare {
                    m.insert("compare".into(), c);
                }
                if let Some((rate, burst)) = cap {
                    m.insert("maxRequestsPerSecond".into(), json!(rate));
                    if let Some(b) = burst {
                        m.insert("burst".into(), json!(b));
                    }
                }
                if let Some(n) = copies {
                    m.insert("copies".into(), json!(n));
                }
                if let Some(choice) = trace_context {
                    m.insert("traceContext".into(), json!(choice));
                }
                m
            },
        )
}

/// A forward block: weighted destinations and mirrors to distinct shadows.
fn forward() -> impl Strategy<Value = Value> {
    let destinations = prop::collection::btree_map("p[a-z0-9]{0,6}", 0u64..200, 0..3);
    let mirrors = prop::collection::btree_set("s[a-z0-9_.-]{0,6}", 0..3)
        .prop_flat_map(|names| names.into_iter().map(|n| (Just(n), mirror())).collect::<Vec<_>>());
    (destinations, mirrors).prop_map(|(destinations, mirrors)| {
        let mut forward = Map::new();
        if !destinations.is_empty() {
            let list: Vec<Value> = destinations
                .into_iter()
                .map(|(id, weight)| json!({"destinationId": id, "weight": weight}))
                .collect();
            forward.insert("destinations".into(), Value::Array(list));
        }
        let list: Vec<Value> = mirrors
            .into_iter()
            .map(|(name, mut m)| {
                m.insert("destinationId".into(), json!(name));
                Value::Object(m)
            })
            .collect();
        forward.insert("mirrors".into(), Value::Array(list));
        Value::Object(forward)
    })
}

/// A configuration the filter accepts.
pub fn valid_config() -> impl Strategy<Value = Value> {
    // The loop marker: the default, on, off, or renamed (to a name no
    // generated addHeaders or removeHeaders can take).
    let loop_marker = prop_oneof![
        Just(None),
        any::<bool>().prop_map(|on| Some(json!(on))),
        "x-copy-marker-[a-z]{1,4}".prop_map(|name| Some(json!(name))),
    ];
    (
        forward(),
        prop::collection::btree_map("[a-z][a-z0-9_-]{0,8}", forward(), 0..3),
        loop_marker,
    )
        .prop_map(|(forward, routes, loop_marker)| {
            let routes: Map<String, Value> = routes
                .into_iter()
                .map(|(name, forward)| (name, json!({ "forward": forward })))
                .collect();
            let mut config = json!({"forward": forward, "routes": routes});
            if let (Some(marker), Some(top)) = (loop_marker, config.as_object_mut()) {
                top.insert("loopMarker".into(), marker);
            }
            config
        })
}
