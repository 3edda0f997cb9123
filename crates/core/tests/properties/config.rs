//! `config::parse`: total on any input, one-line errors that say where, and
//! every field of a valid configuration read back as written.

use crate::strategies::json_value;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use vrata_mirror_core::config::{
    parse, AuthorityRewrite, ConfigError, MirrorPolicy, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TIMEOUT_MS,
};

/// Errors about the document as a whole carry no field path; these are the
/// only ones allowed to.
const WHOLE_DOCUMENT_ERRORS: [&str; 3] = ["is empty", "is not valid JSON", "nothing to mirror"];

fn check_error_shape(err: &ConfigError, input: &str) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(
        !message.contains('\n') && !message.contains('\r'),
        "the error must be one line (Envoy logs it as one): {message:?}\ninput: {input}"
    );
    if err.path.is_empty() {
        prop_assert!(
            WHOLE_DOCUMENT_ERRORS.iter().any(|m| message.contains(m)),
            "an error without a field path must be about the whole document: {message:?}\ninput: {input}"
        );
    } else {
        prop_assert!(
            message.starts_with(&format!("{}: ", err.path)),
            "the message must start with its field path: {message:?}\ninput: {input}"
        );
    }
    Ok(())
}

/// Keys with control characters: a path built from such a key must still
/// print on one line.
fn awkward_key() -> impl Strategy<Value = String> {
    "[a-z]{0,4}[\n\r\t\u{0}\u{1b}][a-z]{0,4}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(err) = parse(&bytes) {
            check_error_shape(&err, &String::from_utf8_lossy(&bytes))?;
        }
    }

    #[test]
    fn never_panics_on_arbitrary_json_and_errors_name_a_path(value in json_value()) {
        let text = value.to_string();
        if let Err(err) = parse(text.as_bytes()) {
            check_error_shape(&err, &text)?;
        }
        // The same document wrapped where a mirror belongs goes deeper.
        let wrapped = json!({"forward": {"mirror": value}}).to_string();
        if let Err(err) = parse(wrapped.as_bytes()) {
            check_error_shape(&err, &wrapped)?;
        }
    }

    #[test]
    fn unknown_keys_with_control_characters_give_one_line_errors(key in awkward_key(), at_mirror in any::<bool>()) {
        let mut mirror = Map::new();
        mirror.insert("destinationId".to_owned(), json!("shadow"));
        let doc = if at_mirror {
            mirror.insert(key, json!(1));
            json!({"forward": {"mirror": mirror}})
        } else {
            let mut top = Map::new();
            top.insert("forward".to_owned(), json!({"mirror": mirror}));
            top.insert(key, json!(1));
            Value::Object(top)
        };
        let text = doc.to_string();
        let err = parse(text.as_bytes()).expect_err("an unknown key is refused");
        check_error_shape(&err, &text)?;
    }

    #[test]
    fn duplicate_keys_with_control_characters_give_one_line_errors(key in awkward_key()) {
        let quoted = Value::from(key.as_str()).to_string();
        let text = format!(r#"{{"forward": {{"mirror": {{"destinationId": "s", {quoted}: 1, {quoted}: 2}}}}}}"#);
        let err = parse(text.as_bytes()).expect_err("a duplicate key is refused");
        check_error_shape(&err, &text)?;
    }
}

// ----- valid configurations ----------------------------------------------

#[derive(Debug, Clone)]
enum Authority {
    Keep,
    Replace(String),
    Suffix(String),
}

#[derive(Debug, Clone)]
struct MirrorSpec {
    destination: String,
    percentage: Option<f64>,
    timeout_ms: Option<u32>,
    max_body_bytes: Option<u64>,
    max_in_flight: Option<u32>,
    sample_by: Option<String>,
    methods: Option<Vec<String>>,
    authority: Authority,
    /// Distinct when lower-cased; written in mixed case.
    add_headers: Vec<(String, String)>,
    remove_headers: Vec<String>,
}

impl MirrorSpec {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("destinationId".into(), json!(self.destination));
        if let Some(p) = self.percentage {
            m.insert("percentage".into(), json!(p));
        }
        if let Some(t) = self.timeout_ms {
            m.insert("timeoutMs".into(), json!(t));
        }
        if let Some(b) = self.max_body_bytes {
            m.insert("maxBodyBytes".into(), json!(b));
        }
        if let Some(f) = self.max_in_flight {
            m.insert("maxInFlight".into(), json!(f));
        }
        if let Some(s) = &self.sample_by {
            m.insert("sampleBy".into(), json!(s));
        }
        if let Some(methods) = &self.methods {
            m.insert("methods".into(), json!(methods));
        }
        match &self.authority {
            Authority::Keep => {}
            Authority::Replace(a) => {
                m.insert("authority".into(), json!(a));
            }
            Authority::Suffix(s) => {
                m.insert("hostSuffix".into(), json!(s));
            }
        }
        if !self.add_headers.is_empty() {
            let adds: Map<String, Value> = self.add_headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
            m.insert("addHeaders".into(), Value::Object(adds));
        }
        if !self.remove_headers.is_empty() {
            m.insert("removeHeaders".into(), json!(self.remove_headers));
        }
        Value::Object(m)
    }

    fn check(&self, got: &MirrorPolicy) -> Result<(), TestCaseError> {
        prop_assert_eq!(&got.destination, &self.destination);
        let fraction = self.percentage.unwrap_or(100.0) / 100.0;
        prop_assert!(
            (got.rate.fraction() - fraction).abs() < 1e-9,
            "rate {} vs {}",
            got.rate.fraction(),
            fraction
        );
        prop_assert_eq!(got.timeout_ms, self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        prop_assert_eq!(
            got.max_body_bytes as u64,
            self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES as u64)
        );
        prop_assert_eq!(got.max_in_flight, self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT));
        prop_assert_eq!(
            got.sample_by.clone(),
            self.sample_by.as_ref().map(|s| s.to_ascii_lowercase())
        );
        prop_assert_eq!(got.methods.clone(), self.methods.as_ref().map(|m| first_occurrences(m)));
        let authority = match &self.authority {
            Authority::Keep => AuthorityRewrite::Keep,
            Authority::Replace(a) => AuthorityRewrite::Replace(a.clone()),
            Authority::Suffix(s) => AuthorityRewrite::Suffix(s.clone()),
        };
        prop_assert_eq!(&got.authority, &authority);
        let mut want_adds: Vec<(String, String)> = self
            .add_headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let mut got_adds = got.add_headers.clone();
        want_adds.sort();
        got_adds.sort();
        prop_assert_eq!(got_adds, want_adds);
        let want_removes: Vec<String> = self.remove_headers.iter().map(|n| n.to_ascii_lowercase()).collect();
        prop_assert_eq!(got.remove_headers.clone(), first_occurrences(&want_removes));
        Ok(())
    }
}

fn first_occurrences(list: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    for item in list {
        if !seen.contains(item) {
            seen.push(item.clone());
        }
    }
    seen
}

fn mirror_spec(destination: String) -> impl Strategy<Value = MirrorSpec> {
    let percentage = prop_oneof![
        Just(None),
        (0u32..=100).prop_map(|p| Some(f64::from(p))),
        (0.0f64..=100.0).prop_map(Some)
    ];
    let authority = prop_oneof![
        Just(Authority::Keep),
        "[a-z][a-z0-9.-]{0,10}(:[0-9]{1,5})?".prop_map(Authority::Replace),
        "-[a-z0-9]{1,8}".prop_map(Authority::Suffix),
    ];
    let methods = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]).prop_map(str::to_owned),
        1..6,
    ));
    let add_headers = prop::collection::btree_map("x-[a-z0-9]{1,8}", ("[ -~]{0,16}", any::<bool>()), 0..4).prop_map(
        |map: BTreeMap<String, (String, bool)>| {
            map.into_iter()
                .map(|(name, (value, upper))| (if upper { name.to_ascii_uppercase() } else { name }, value))
                .collect::<Vec<_>>()
        },
    );
    (
        percentage,
        prop::option::of(1u32..=300_000),
        prop::option::of(0u64..=64 * 1024 * 1024),
        prop::option::of(1u32..=100_000),
        prop::option::of("[A-Za-z][A-Za-z0-9-]{0,10}"),
        methods,
        authority,
        add_headers,
        prop::collection::vec("[A-Za-z][A-Za-z0-9-]{0,8}", 0..4),
    )
        .prop_map(
            move |(
                percentage,
                timeout_ms,
                max_body_bytes,
                max_in_flight,
                sample_by,
                methods,
                authority,
                add_headers,
                remove_headers,
            )| {
                MirrorSpec {
                    destination: destination.clone(),
                    percentage,
                    timeout_ms,
                    max_body_bytes,
                    max_in_flight,
                    sample_by,
                    methods,
                    authority,
                    add_headers,
                    remove_headers,
                }
            },
        )
}

/// Mirrors to distinct destinations (one mirror per destination per block).
fn mirror_list() -> impl Strategy<Value = Vec<MirrorSpec>> {
    prop::collection::btree_set("[a-z][a-z0-9_.-]{0,12}", 1..4)
        .prop_flat_map(|destinations| destinations.into_iter().map(mirror_spec).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_configs_round_trip_every_field(
        default in mirror_list(),
        single in any::<bool>(),
        routes in prop::collection::btree_map("[a-z][a-z0-9_-]{0,8}", mirror_list(), 0..3),
    ) {
        let forward = if single && default.len() == 1 {
            json!({"mirror": default[0].to_json()})
        } else {
            json!({"mirrors": default.iter().map(MirrorSpec::to_json).collect::<Vec<_>>()})
        };
        let route_json: Map<String, Value> = routes
            .iter()
            .map(|(name, mirrors)| {
                (name.clone(), json!({"forward": {"mirrors": mirrors.iter().map(MirrorSpec::to_json).collect::<Vec<_>>()}}))
            })
            .collect();
        let text = json!({"forward": forward, "routes": route_json}).to_string();
        let cfg = match parse(text.as_bytes()) {
            Ok(cfg) => cfg,
            Err(err) => return Err(TestCaseError::fail(format!("valid config refused: {err}\n{text}"))),
        };

        prop_assert_eq!(cfg.default_policy.mirrors.len(), default.len());
        for (spec, got) in default.iter().zip(&cfg.default_policy.mirrors) {
            spec.check(got)?;
        }
        prop_assert_eq!(cfg.needs_route_name(), !routes.is_empty());
        for (name, specs) in &routes {
            let policy = cfg.policy_for(Some(name));
            prop_assert_eq!(policy.mirrors.len(), specs.len());
            for (spec, got) in specs.iter().zip(&policy.mirrors) {
                spec.check(got)?;
            }
        }

        // Every destination once, and every mirror's index pointing at its name.
        let all: BTreeSet<&str> = default
            .iter()
            .chain(routes.values().flatten())
            .map(|m| m.destination.as_str())
            .collect();
        prop_assert_eq!(cfg.destinations.len(), all.len());
        prop_assert_eq!(cfg.destinations.iter().map(String::as_str).collect::<BTreeSet<_>>(), all);
        for policy in std::iter::once(&cfg.default_policy).chain(cfg.routes.iter().map(|(_, policy)| policy)) {
            for mirror in &policy.mirrors {
                prop_assert_eq!(cfg.destinations.get(mirror.destination_index), Some(&mirror.destination));
            }
        }
    }
}
