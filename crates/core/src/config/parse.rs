//! Walks the plugin JSON into validated policies. Each check names the field
//! path, the value it got and what it accepts, in one line.

use super::json::{check_keys, describe, nearest, parse_strict, quote, Json, Object};
use super::{
    AuthorityRewrite, BodyComparison, ComparePolicy, ConfigError, Destination, ForwardPolicy, MirrorPolicy,
    NoisePolicy, PluginConfig, TraceContext, DEFAULT_COMPARE_MAX_BODY_BYTES, DEFAULT_COPIES, DEFAULT_LOG_MISMATCHES,
    DEFAULT_LOOP_MARKER, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_NOISE_ABSOLUTE_PPM,
    DEFAULT_NOISE_MAX_ENDPOINTS, DEFAULT_NOISE_MAX_FIELDS, DEFAULT_NOISE_MIN_REQUESTS, DEFAULT_NOISE_RELATIVE_PPM,
    DEFAULT_PERCENTAGE, DEFAULT_TIMEOUT_MS, LOOP_MARKER_VALUE, MAX_BODY_BYTES_LIMIT, MAX_BURST,
    MAX_COMPARE_BODY_BYTES_LIMIT, MAX_COPIES, MAX_IN_FLIGHT_LIMIT, MAX_LOG_MISMATCHES, MAX_NOISE_MAX_ENDPOINTS,
    MAX_NOISE_MAX_FIELDS, MAX_NOISE_MIN_REQUESTS, MAX_REQUESTS_PER_SECOND, MAX_TIMEOUT_MS, NOISE_KEY_PREFIX,
    RATE_KEY_PREFIX,
};
use crate::http::headers::{is_framing_or_hop_by_hop, is_header_name, is_token};
use crate::rate::{RateCap, RateLimit};
use crate::sampling::SampleRate;
use std::rc::Rc;

const TOP_KEYS: &[&str] = &["forward", "routes", "loopMarker"];
const ROUTE_KEYS: &[&str] = &["forward"];
const FORWARD_KEYS: &[&str] = &["destinations", "mirror", "mirrors"];
/// Vrata `forward` keys that Envoy's route owns here: accepted and ignored.
const FORWARD_KEYS_FOR_ENVOY: &[&str] = &["destinationBalancing", "timeouts", "retry", "rewrite", "maxGrpcTimeout"];
const DESTINATION_KEYS: &[&str] = &["destinationId", "weight"];
const MIRROR_KEYS: &[&str] = &[
    "destinationId",
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
    "maxRequestsPerSecond",
    "burst",
    "copies",
    "traceContext",
];
const COMPARE_KEYS: &[&str] = &[
    "body",
    "ignoreFields",
    "maxBodyBytes",
    "logMismatches",
    "secondary",
    "noise",
];
const NOISE_KEYS: &[&str] = &[
    "relativePercent",
    "absolutePercent",
    "minRequests",
    "maxFields",
    "maxEndpoints",
];

const EXAMPLE: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 10}}}"#;

/// Parses and validates the plugin configuration.
pub fn parse(text: &[u8]) -> Result<PluginConfig, ConfigError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "",
            format!("the plugin configuration is empty; expected a JSON object such as {EXAMPLE}"),
        ));
    }
    let root = parse_strict(text)
        .map_err(|err| ConfigError::new("", format!("the plugin configuration is not valid JSON: {err}")))?;
    let top = as_object(&root, "(top level)", "an object with \"forward\" and/or \"routes\"")?;
    check_keys(top, "", TOP_KEYS, &[])?;
    let loop_marker = parse_loop_marker(top.get("loopMarker"))?;
    let marker = loop_marker.as_ref();

    let mut destinations = Vec::new();
    let default_policy = match top.get("forward") {
        Some(forward) => parse_forward(forward, "forward", marker, &mut destinations)?,
        None => ForwardPolicy::default(),
    };
    let routes = match top.get("routes") {
        Some(routes) => parse_routes(routes, marker, &mut destinations)?,
        None => Vec::new(),
    };
    if !top.contains_key("forward") && routes.is_empty() {
        return Err(ConfigError::new(
            "",
            format!("nothing to mirror: set \"forward\" or \"routes\", e.g. {EXAMPLE}"),
        ));
    }
    Ok(PluginConfig {
        default_policy,
        routes,
        destinations,
        loop_marker,
    })
}

/// `loopMarker`: absent or `true` for the default name, a header name to
/// rename it, `false` to turn it off. The name must be one no client sends:
/// a request carrying it is never mirrored.
fn parse_loop_marker(value: Option<&Json>) -> Result<Option<Rc<str>>, ConfigError> {
    const PATH: &str = "loopMarker";
    let name = match value {
        None | Some(Json::Bool(true)) => return Ok(Some(DEFAULT_LOOP_MARKER.into())),
        Some(Json::Bool(false)) => return Ok(None),
        Some(name @ Json::String(_)) => header_name(name, PATH, false)?,
        Some(other) => {
            return Err(ConfigError::new(
                PATH,
                format!(
                    "got {}, expected a header name such as {} (the header every copy carries), or false to turn the marker off",
                    describe(other),
                    quote(DEFAULT_LOOP_MARKER)
                ),
            ))
        }
    };
    if is_framing_or_hop_by_hop(name.as_bytes()) || name == "host" {
        return Err(ConfigError::new(
            PATH,
            format!(
                "got {}, a header Envoy rewrites or drops on the copy; expected a name of its own such as {}",
                quote(&name),
                quote(DEFAULT_LOOP_MARKER)
            ),
        ));
    }
    Ok(Some(name.into()))
}

/// Refuses `addHeaders` or `removeHeaders` naming the loop marker: every
/// copy carries it, and `loopMarker` is where it is renamed or turned off.
fn not_the_marker(name: &str, at: &str, marker: Option<&str>) -> Result<(), ConfigError> {
    match marker {
        Some(marker) if marker == name => Err(ConfigError::new(
            at,
            format!(
                "is the loop marker, which every copy carries ({marker}: {LOOP_MARKER_VALUE}); \
                 rename it with the top-level \"loopMarker\", or set \"loopMarker\": false to turn it off"
            ),
        )),
        _ => Ok(()),
    }
}
fn parse_routes(
    value: &Json,
    marker: Option<&Rc<str>>,
    destinations: &mut Vec<String>,
) -> Result<Vec<(String, ForwardPolicy)>, ConfigError> {
    let routes = as_object(
        value,
        "routes",
        "an object from Envoy route name to {\"forward\": {...}}",
    )?;
    let mut parsed = Vec::with_capacity(routes.len());
    for (name, entry) in routes.iter() {
        let path = format!("routes[{}]", quote(name));
        if name.is_empty() {
            return Err(ConfigError::new(
                "routes",
                "a route name is empty; expected the name of an Envoy route (the route's `name`)",
            ));
        }
        let entry_obj = as_object(entry, &path, "an object such as {\"forward\": {...}}")?;
        check_keys(entry_obj, &path, ROUTE_KEYS, &[])?;
        let policy = match entry_obj.get("forward") {
            Some(forward) => parse_forward(forward, &format!("{path}.forward"), marker, destinations)?,
            None => ForwardPolicy::default(),
        };
        parsed.push((name.clone(), policy));
    }
    Ok(parsed)
}

fn parse_forward(
    value: &Json,
    path: &str,
    marker: Option<&Rc<str>>,
    destinations: &mut Vec<String>,
) -> Result<ForwardPolicy, ConfigError> {
    let forward = as_object(value, path, "an object with \"mirror\" or \"mirrors\"")?;
    check_keys(forward, path, FORWARD_KEYS, FORWARD_KEYS_FOR_ENVOY)?;
    let forward_to = match forward.get("destinations") {
        Some(list) => parse_destinations(list, &format!("{path}.destinations"))?,
        None => Vec::new(),
    };
    if forward.contains_key("mirror") && forward.contains_key("mirrors") {
        return Err(ConfigError::new(
            path,
            "has both \"mirror\" and \"mirrors\"; use \"mirror\" for one shadow or \"mirrors\" (a list) for several",
        ));
    }

    let mut mirrors: Vec<Rc<MirrorPolicy>> = Vec::new();
    let mut add = |policy: MirrorPolicy, at: String| -> Result<(), ConfigError> {
        if let Some(earlier) = mirrors.iter().position(|m| m.destination == policy.destination) {
            return Err(ConfigError::new(
                format!("{at}.destinationId"),
                format!(
                    "{} is already mirrored to by {path}.mirrors[{earlier}]; one mirror per destination",
                    quote(&policy.destination)
                ),
            ));
        }
        mirrors.push(Rc::new(policy));
        Ok(())
    };
    match forward.get("mirror") {
        None | Some(Json::Null) => {}
        Some(mirror) => {
            let at = format!("{path}.mirror");
            add(parse_mirror(mirror, &at, marker, destinations)?, at)?;
        }
    }
    match forward.get("mirrors") {
        None => {}
        Some(Json::Array(list)) => {
            for (i, mirror) in list.iter().enumerate() {
                let at = format!("{path}.mirrors[{i}]");
                add(parse_mirror(mirror, &at, marker, destinations)?, at)?;
            }
        }
        Some(other) => {
            return Err(ConfigError::new(
                format!("{path}.mirrors"),
                format!("got {}, expected a list of mirror objects", describe(other)),
            ))
        }
    }
    Ok(ForwardPolicy {
        mirrors,
        destinations: forward_to,
    })
}

/// `destinations` does not route in the filter (Envoy's weighted_clusters
/// do; the tools render them from this list) but a malformed list is still a
/// sign of a wrong config, so it is checked.
fn parse_destinations(value: &Json, path: &str) -> Result<Vec<Destination>, ConfigError> {
    let Json::Array(list) = value else {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}, expected a list of {{\"destinationId\", \"weight\"}} objects",
                describe(value)
            ),
        ));
    };
    let mut parsed = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let obj = as_object(entry, &at, "an object with \"destinationId\" and \"weight\"")?;
        check_keys(obj, &at, DESTINATION_KEYS, &[])?;
        let id = required_name(obj, &at, "destinationId")?;
        let weight = match obj.get("weight") {
            None => None,
            Some(weight) => match weight.as_u64() {
                Some(w) => Some(w),
                None => {
                    return Err(ConfigError::new(
                        format!("{at}.weight"),
                        format!("got {}, expected a non-negative integer", describe(weight)),
                    ))
                }
            },
        };
        parsed.push(Destination { id, weight });
    }
    Ok(parsed)
}

fn parse_mirror(
    value: &Json,
    path: &str,
    marker: Option<&Rc<str>>,
    destinations: &mut Vec<String>,
) -> Result<MirrorPolicy, ConfigError> {
    let mirror = as_object(
        value,
        path,
        "an object such as {\"destinationId\": \"shadow\", \"percentage\": 10}",
    )?;
    check_keys(mirror, path, MIRROR_KEYS, &[])?;
    let field = |key: &str| format!("{path}.{key}");

    let destination = required_name(mirror, path, "destinationId")?;
    let percentage = match mirror.get("percentage") {
        None => DEFAULT_PERCENTAGE,
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=100.0).contains(&p) => p,
            _ => {
                return Err(ConfigError::new(
                    field("percentage"),
                    format!("got {}, expected a number from 0 to 100", describe(v)),
                ))
            }
        },
    };
    let timeout_ms = integer_in(
        mirror,
        path,
        "timeoutMs",
        1,
        MAX_TIMEOUT_MS.into(),
        DEFAULT_TIMEOUT_MS.into(),
    )?;
    let max_body_bytes = integer_in(
        mirror,
        path,
        "maxBodyBytes",
        0,
        MAX_BODY_BYTES_LIMIT as u64,
        DEFAULT_MAX_BODY_BYTES as u64,
    )?;
    let max_in_flight = integer_in(
        mirror,
        path,
        "maxInFlight",
        1,
        MAX_IN_FLIGHT_LIMIT.into(),
        DEFAULT_MAX_IN_FLIGHT.into(),
    )?;

    let sample_by = match mirror.get("sampleBy") {
        None => None,
        Some(v) => Some(header_name(v, &field("sampleBy"), true)?),
    };
    let methods = match mirror.get("methods") {
        None => None,
        Some(v) => Some(parse_methods(v, &field("methods"))?),
    };
    let authority = parse_authority(mirror, path)?;
    let add_headers = match mirror.get("addHeaders") {
        None => Vec::new(),
        Some(v) => parse_add_headers(v, &field("addHeaders"), marker.map(|m| &**m))?,
    };
    let remove_headers = match mirror.get("removeHeaders") {
        None => Vec::new(),
        Some(v) => parse_remove_headers(v, &field("removeHeaders"), marker.map(|m| &**m))?,
    };
    let compare = match mirror.get("compare") {
        None => None,
        Some(v) => parse_compare(v, path, &destination, destinations)?,
    };
    let copies = integer_in(mirror, path, "copies", 1, MAX_COPIES.into(), DEFAULT_COPIES.into())?;
    let trace_context = match mirror.get("traceContext") {
        None => TraceContext::Drop,
        Some(v) => trace_context(v, &field("traceContext"))?,
    };
    let rate_cap = parse_rate_cap(mirror, path, &destination)?;

    let destination_index = match destinations.iter().position(|d| *d == destination) {
        Some(i) => i,
        None => {
            destinations.push(destination.clone());
            destinations.len() - 1
        }
    };
    let mut policy = MirrorPolicy {
        destination,
        destination_index,
        rate: SampleRate::from_percentage(percentage),
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES),
        max_in_flight: u32::try_from(max_in_flight).unwrap_or(DEFAULT_MAX_IN_FLIGHT),
        sample_by,
        methods,
        authority,
        add_headers,
        remove_headers,
        compare,
        rate_cap,
        copies: u32::try_from(copies).unwrap_or(DEFAULT_COPIES),
        trace_context,
        loop_marker: marker.cloned(),
        secondary: None,
    };
    policy.secondary = secondary_mirror(&policy, path).map(Rc::new);
    Ok(policy)
}

/// The mirror a comparing mirror's secondary copies go through (see
/// `MirrorPolicy::secondary`): the candidate's copy, sent to the secondary.
/// Its rate bucket is its own, keyed `<mirror's place>.compare.secondary`.
fn secondary_mirror(candidate: &MirrorPolicy, path: &str) -> Option<MirrorPolicy> {
    let noise = candidate.compare.as_ref()?.noise.as_ref()?;
    let rate_cap = candidate.rate_cap.as_ref().map(|cap| RateCap {
        limit: cap.limit,
        key: format!("{RATE_KEY_PREFIX}:{path}.compare.secondary:{}", noise.secondary),
    });
    Some(MirrorPolicy {
        destination: noise.secondary.clone(),
        destination_index: noise.secondary_index,
        compare: None,
        rate_cap,
        copies: 1,
        secondary: None,
        ..candidate.clone()
    })
}

/// `MAX_REQUESTS_PER_SECOND` as the error message spells it (a literal: an
/// f64 formatted at run time would add float printing to the module).
const MAX_REQUESTS_PER_SECOND_TEXT: &str = "1000000";

/// `maxRequestsPerSecond` and `burst`. The bucket's shared-data key names
/// the mirror's place in the configuration and its destination: one bucket
/// per mirror object, shared by every worker (and by every filter chain of
/// the Envoy that carries this configuration).
fn parse_rate_cap(mirror: Object<'_>, path: &str, destination: &str) -> Result<Option<RateCap>, ConfigError> {
    let Some(value) = mirror.get("maxRequestsPerSecond") else {
        if mirror.contains_key("burst") {
            return Err(ConfigError::new(
                format!("{path}.burst"),
                "only applies with \"maxRequestsPerSecond\" (the rate cap it is the burst of); set both or neither",
            ));
        }
        return Ok(None);
    };
    let per_second = match value.as_f64() {
        Some(n) if n > 0.0 && n <= MAX_REQUESTS_PER_SECOND => n,
        _ => {
            return Err(ConfigError::new(
                format!("{path}.maxRequestsPerSecond"),
                format!(
                    "got {}, expected a number above 0 and at most {MAX_REQUESTS_PER_SECOND_TEXT} \
                     (copies a second from one Envoy, all its workers together)",
                    describe(value)
                ),
            ))
        }
    };
    let default_burst = RateLimit::default_burst(per_second);
    let burst = integer_in(mirror, path, "burst", 1, MAX_BURST.into(), default_burst.into())?;
    // Checked above; refused rather than silently uncapped if it ever were not.
    let limit = RateLimit::new(per_second, u32::try_from(burst).unwrap_or(default_burst)).ok_or_else(|| {
        ConfigError::new(
            format!("{path}.maxRequestsPerSecond"),
            "is not a usable rate cap with this burst",
        )
    })?;
    Ok(Some(RateCap {
        limit,
        key: format!("{RATE_KEY_PREFIX}:{path}:{destination}"),
    }))
}

/// A mirror's `compare` object; `null` is the same as leaving it out.
/// A setting that could not take effect (`ignoreFields` unless `body` is
/// `"json"`, `maxBodyBytes` when `body` is `"none"`) is refused, like a typo:
/// whoever wrote it expects it to change what is compared.
fn parse_compare(
    value: &Json,
    mirror_path: &str,
    destination: &str,
    destinations: &mut Vec<String>,
) -> Result<Option<ComparePolicy>, ConfigError> {
    if matches!(value, Json::Null) {
        return Ok(None);
    }
    let path = &format!("{mirror_path}.compare");
    let compare = as_object(
        value,
        path,
        "an object such as {\"body\": \"json\", \"ignoreFields\": [\"timestamp\"]}",
    )?;
    check_keys(compare, path, COMPARE_KEYS, &[])?;
    let body = match compare.get("body") {
        None => BodyComparison::None,
        Some(v) => body_comparison(v, &format!("{path}.body"))?,
    };
    let ignore_fields = match compare.get("ignoreFields") {
        None => Vec::new(),
        Some(v) => parse_ignore_fields(v, &format!("{path}.ignoreFields"))?,
    };
    let max_body_bytes = integer_in(
        compare,
        path,
        "maxBodyBytes",
        0,
        MAX_COMPARE_BODY_BYTES_LIMIT as u64,
        DEFAULT_COMPARE_MAX_BODY_BYTES as u64,
    )?;
    let log_mismatches = integer_in(
        compare,
        path,
        "logMismatches",
        0,
        MAX_LOG_MISMATCHES.into(),
        DEFAULT_LOG_MISMATCHES.into(),
    )?;
    if !ignore_fields.is_empty() && body != BodyComparison::Json {
        return Err(ConfigError::new(
            format!("{path}.ignoreFields"),
            format!(
                "only applies when \"body\" is \"json\" (here it is {}); set \"body\": \"json\" or drop \"ignoreFields\"",
                quote(body.name())
            ),
        ));
    }
    if body == BodyComparison::None && compare.contains_key("maxBodyBytes") {
        return Err(ConfigError::new(
            format!("{path}.maxBodyBytes"),
            "only applies when bodies are compared (\"body\": \"exact\" or \"json\"); with \"body\": \"none\" only the status is",
        ));
    }
    let noise = parse_noise(compare, body, mirror_path, destination, destinations)?;
    Ok(Some(ComparePolicy {
        body,
        ignore_fields,
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(DEFAULT_COMPARE_MAX_BODY_BYTES),
        log_mismatches: u32::try_from(log_mismatches).unwrap_or(DEFAULT_LOG_MISMATCHES),
        noise,
    }))
}

/// `compare.secondary` and `compare.noise`. The secondary is a cluster name
/// checked as `destinationId` is (Envoy alone knows its clusters; a wrong
/// name is counted as `dispatch_failed`), added to the destinations so its
/// copies have metrics of their own, and never the mirror's own destination
/// (the candidate compared with itself would teach that nothing is noise).
/// `noise` without `secondary`, or either with `"body": "none"` (no field
/// to learn), is refused like a typo.
fn parse_noise(
    compare: Object<'_>,
    body: BodyComparison,
    mirror_path: &str,
    destination: &str,
    destinations: &mut Vec<String>,
) -> Result<Option<NoisePolicy>, ConfigError> {
    let path = format!("{mirror_path}.compare");
    if !compare.contains_key("secondary") {
        if compare.contains_key("noise") {
            return Err(ConfigError::new(
                format!("{path}.noise"),
                "only applies with \"secondary\" (the second known-good cluster noise is learned from); set both or neither",
            ));
        }
        return Ok(None);
    }
    let secondary = required_name(compare, &path, "secondary")?;
    if secondary == destination {
        return Err(ConfigError::new(
            format!("{path}.secondary"),
            format!(
                "got {}, the mirror's own destination; expected another cluster running the primary's version",
                quote(&secondary)
            ),
        ));
    }
    if body == BodyComparison::None {
        return Err(ConfigError::new(
            format!("{path}.secondary"),
            "only applies when bodies are compared (\"body\": \"json\" or \"exact\"); with \"body\": \"none\" there is no field to learn noise on",
        ));
    }
    let noise_path = format!("{path}.noise");
    let noise = match compare.get("noise") {
        None | Some(Json::Null) => Object(&[]),
        Some(v) => as_object(
            v,
            &noise_path,
            "an object such as {\"relativePercent\": 20, \"absolutePercent\": 0.03}",
        )?,
    };
    check_keys(noise, &noise_path, NOISE_KEYS, &[])?;
    let relative_ppm = percent_ppm(noise, &noise_path, "relativePercent", DEFAULT_NOISE_RELATIVE_PPM)?;
    let absolute_ppm = percent_ppm(noise, &noise_path, "absolutePercent", DEFAULT_NOISE_ABSOLUTE_PPM)?;
    let min_requests = integer_in(
        noise,
        &noise_path,
        "minRequests",
        1,
        MAX_NOISE_MIN_REQUESTS,
        DEFAULT_NOISE_MIN_REQUESTS,
    )?;
    let max_fields = integer_in(
        noise,
        &noise_path,
        "maxFields",
        1,
        MAX_NOISE_MAX_FIELDS as u64,
        DEFAULT_NOISE_MAX_FIELDS as u64,
    )?;
    let max_endpoints = integer_in(
        noise,
        &noise_path,
        "maxEndpoints",
        1,
        MAX_NOISE_MAX_ENDPOINTS as u64,
        DEFAULT_NOISE_MAX_ENDPOINTS as u64,
    )?;
    let secondary_index = match destinations.iter().position(|d| *d == secondary) {
        Some(i) => i,
        None => {
            destinations.push(secondary.clone());
            destinations.len() - 1
        }
    };
    Ok(Some(NoisePolicy {
        secondary,
        secondary_index,
        relative_ppm,
        absolute_ppm,
        min_requests,
        max_fields: usize::try_from(max_fields).unwrap_or(DEFAULT_NOISE_MAX_FIELDS),
        max_endpoints: usize::try_from(max_endpoints).unwrap_or(DEFAULT_NOISE_MAX_ENDPOINTS),
        key_prefix: format!("{NOISE_KEY_PREFIX}:{mirror_path}:{destination}"),
    }))
}

/// An optional percentage in `[0, 100)`, as millionths (to the nearest
/// 0.0001 %), or `default` when absent. 100 is refused: a share is never
/// above 100 %, so no field could ever be a real difference.
fn percent_ppm(obj: Object<'_>, path: &str, key: &str, default: u32) -> Result<u32, ConfigError> {
    let Some(value) = obj.get(key) else {
        return Ok(default);
    };
    match value.as_f64() {
        Some(p) if (0.0..100.0).contains(&p) => Ok((p * 10_000.0).round() as u32),
        _ => Err(ConfigError::new(
            format!("{path}.{key}"),
            format!(
                "got {}, expected a percentage from 0 up to (not including) 100, such as 20 or 0.03",
                describe(value)
            ),
        )),
    }
}

/// `compare.body`'s values, and as an error message lists them (literals:
/// nothing mapped or joined at run time in the module).
const BODY_NAMES: [&str; 3] = ["none", "exact", "json"];
const BODY_CHOICES: &str = r#""none", "exact", "json""#;

fn body_comparison(value: &Json, path: &str) -> Result<BodyComparison, ConfigError> {
    let mut hint = String::new();
    if let Json::String(text) = value {
        if let Some(body) = BodyComparison::ALL.into_iter().find(|b| b.name() == text) {
            return Ok(body);
        }
        if let Some(name) = nearest(text, &BODY_NAMES) {
            hint = format!("; did you mean \"{name}\"?");
        }
    }
    Err(ConfigError::new(
        path,
        format!("got {}, expected one of {BODY_CHOICES}{hint}", describe(value)),
    ))
}

/// `traceContext`'s values, and as an error message lists them.
const TRACE_CONTEXT_NAMES: [&str; 2] = ["drop", "keep"];
const TRACE_CONTEXT_CHOICES: &str = r#""drop" (the default: the shadow's spans start a trace of their own), "keep" (the copy carries the primary's trace headers unchanged)"#;

fn trace_context(value: &Json, path: &str) -> Result<TraceContext, ConfigError> {
    let mut hint = String::new();
    if let Json::String(text) = value {
        if let Some(choice) = TraceContext::ALL.into_iter().find(|t| t.name() == text) {
            return Ok(choice);
        }
        if let Some(name) = nearest(text, &TRACE_CONTEXT_NAMES) {
            hint = format!("; did you mean \"{name}\"?");
        }
    }
    Err(ConfigError::new(
        path,
        format!("got {}, expected {TRACE_CONTEXT_CHOICES}{hint}", describe(value)),
    ))
}

/// `ignoreFields`: object keys, each a non-empty string, each once.
fn parse_ignore_fields(value: &Json, path: &str) -> Result<Vec<String>, ConfigError> {
    let Json::Array(list) = value else {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}, expected a list of object keys such as [\"timestamp\", \"requestId\"]",
                describe(value)
            ),
        ));
    };
    let mut fields: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let field = non_empty_string(item, &at, "an object key such as \"timestamp\"")?;
        if let Some(earlier) = fields.iter().position(|f| *f == field) {
            return Err(ConfigError::new(
                at,
                format!("{} is already listed at {path}[{earlier}]", quote(&field)),
            ));
        }
        fields.push(field);
    }
    Ok(fields)
}

fn parse_authority(mirror: Object<'_>, path: &str) -> Result<AuthorityRewrite, ConfigError> {
    match (mirror.get("authority"), mirror.get("hostSuffix")) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            path,
            "has both \"authority\" and \"hostSuffix\"; set one: \"authority\" replaces the copy's host, \"hostSuffix\" appends to it",
        )),
        (Some(v), None) => {
            let at = format!("{path}.authority");
            let value = non_empty_string(v, &at, "a host such as \"api-shadow\" or \"api-shadow:8080\"")?;
            if value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/') {
                return Err(ConfigError::new(
                    at,
                    format!("got {}, expected a host[:port] without spaces or '/'", describe(v)),
                ));
            }
            Ok(AuthorityRewrite::Replace(value))
        }
        (None, Some(v)) => {
            let at = format!("{path}.hostSuffix");
            let value = non_empty_string(v, &at, "a suffix such as \"-shadow\"")?;
            if value
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/' || b == b':')
            {
                return Err(ConfigError::new(
                    at,
                    format!("got {}, expected a suffix without spaces, ':' or '/' such as \"-shadow\"", describe(v)),
                ));
            }
            Ok(AuthorityRewrite::Suffix(value))
        }
        (None, None) => Ok(AuthorityRewrite::Keep),
    }
}

fn parse_methods(value: &Json, path: &str) -> Result<Vec<String>, ConfigError> {
    let list = match value {
        Json::Array(list) if !list.is_empty() => list,
        _ => {
            return Err(ConfigError::new(
                path,
                format!(
                    "got {}, expected a non-empty list of methods such as [\"GET\", \"POST\"]",
                    describe(value)
                ),
            ))
        }
    };
    let mut methods: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let method = non_empty_string(item, &at, "a method such as \"GET\"")?;
        if !is_token(method.as_bytes()) {
            return Err(ConfigError::new(
                at,
                format!("got {}, expected an HTTP method token such as \"GET\"", describe(item)),
            ));
        }
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(ConfigError::new(
                at,
                format!(
                    "got {}; methods are case-sensitive, expected upper case such as \"{}\"",
                    describe(item),
                    method.to_ascii_uppercase()
                ),
            ));
        }
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    Ok(methods)
}

fn parse_add_headers(value: &Json, path: &str, marker: Option<&str>) -> Result<Vec<(String, String)>, ConfigError> {
    let Json::Object(map) = value else {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}, expected an object of header name to value, such as {{\"x-mirrored\": \"true\"}}",
                describe(value)
            ),
        ));
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(map.len());
    for (name, v) in map {
        let at = format!("{path}[{}]", quote(name));
        let lower = header_name(&Json::String(name.clone()), &at, false)?;
        not_the_marker(&lower, &at, marker)?;
        if is_framing_or_hop_by_hop(lower.as_bytes()) {
            return Err(ConfigError::new(
                at,
                "is a hop-by-hop or framing header; Envoy frames the copy itself, so it cannot be added",
            ));
        }
        let Json::String(text) = v else {
            return Err(ConfigError::new(
                at,
                format!("got {}, expected a string value", describe(v)),
            ));
        };
        if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ConfigError::new(
                at,
                format!("got {}, expected a value without CR, LF or NUL", describe(v)),
            ));
        }
        if headers.iter().any(|(n, _)| *n == lower) {
            return Err(ConfigError::new(
                at,
                "is given twice (header names are case-insensitive)",
            ));
        }
        headers.push((lower, text.clone()));
    }
    Ok(headers)
}

fn parse_remove_headers(value: &Json, path: &str, marker: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let Json::Array(list) = value else {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}, expected a list of header names such as [\"authorization\", \"cookie\"]",
                describe(value)
            ),
        ));
    };
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = header_name(item, &at, false)?;
        not_the_marker(&name, &at, marker)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A header name, lower-cased. Pseudo-headers (`:path`) only where `allow_pseudo`.
fn header_name(value: &Json, path: &str, allow_pseudo: bool) -> Result<String, ConfigError> {
    let name = non_empty_string(value, path, "a header name such as \"x-user-id\"")?.to_ascii_lowercase();
    let pseudo = name.starts_with(':');
    if pseudo && !allow_pseudo {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}; pseudo-headers cannot be added or removed (use \"authority\" or \"hostSuffix\" for :authority)",
                describe(value)
            ),
        ));
    }
    if !is_header_name(name.as_bytes()) {
        return Err(ConfigError::new(
            path,
            format!(
                "got {}, expected a header name (letters, digits and !#$%&'*+-.^_`|~)",
                describe(value)
            ),
        ));
    }
    Ok(name)
}

/// A required, non-empty string naming something (a cluster, a destination).
fn required_name(obj: Object<'_>, path: &str, key: &str) -> Result<String, ConfigError> {
    let at = format!("{path}.{key}");
    let Some(value) = obj.get(key) else {
        return Err(ConfigError::new(
            at,
            "is required: the name of the Envoy cluster, e.g. \"shadow\"",
        ));
    };
    let name = non_empty_string(value, &at, "the name of an Envoy cluster, e.g. \"shadow\"")?;
    if name.trim() != name || name.bytes().any(|b| b.is_ascii_control()) {
        return Err(ConfigError::new(
            at,
            format!(
                "got {}, expected a cluster name without surrounding spaces or control characters",
                describe(value)
            ),
        ));
    }
    Ok(name)
}

fn non_empty_string(value: &Json, path: &str, expected: &str) -> Result<String, ConfigError> {
    match value {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ConfigError::new(
            path,
            format!("got {}, expected {expected}", describe(value)),
        )),
    }
}

/// An optional integer field within `[min, max]`, or its default when absent.
fn integer_in(obj: Object<'_>, path: &str, key: &str, min: u64, max: u64, default: u64) -> Result<u64, ConfigError> {
    let Some(value) = obj.get(key) else {
        return Ok(default);
    };
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            let why = if key == "timeoutMs" && value.as_u64() == Some(0) {
                " (0 would mean no timeout at all to Envoy)"
            } else {
                ""
            };
            Err(ConfigError::new(
                format!("{path}.{key}"),
                format!("got {}, expected an integer from {min} to {max}{why}", describe(value)),
            ))
        }
    }
}

fn as_object<'a>(value: &'a Json, path: &str, expected: &str) -> Result<Object<'a>, ConfigError> {
    match value {
        Json::Object(fields) => Ok(Object(fields)),
        _ => Err(ConfigError::new(
            path,
            format!("got {}, expected {expected}", describe(value)),
        )),
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
