//! `vrata-mirror check`: the plugin JSON through the filter's own parser
//! (`vrata_mirror_core::config::parse`, the call the filter makes in
//! `on_configure`), and on success the effective policy of every route with
//! every default filled in.

use serde_json::{json, Map, Value};
use vrata_mirror_core::config::{
    parse, AuthorityRewrite, BodyComparison, ComparePolicy, ForwardPolicy, MirrorPolicy, PluginConfig,
    LOOP_MARKER_VALUE,
};
use vrata_mirror_core::sampling::SampleRate;
use vrata_mirror_core::worker::refusal_line;

/// Parses `text` exactly as the filter does; the error is the filter's line.
pub fn check(text: &[u8]) -> Result<PluginConfig, String> {
    parse(text).map_err(|err| refusal_line(&err.to_string()))
}

/// The smallest decimal percentage that samples exactly as `rate` does.
pub fn percentage_of(rate: SampleRate) -> f64 {
    let exact = rate.fraction() * 100.0;
    for decimals in 0..=12 {
        let scale = 10f64.powi(decimals);
        let rounded = (exact * scale).round() / scale;
        if SampleRate::from_percentage(rounded) == rate {
            return rounded;
        }
    }
    exact
}

/// A whole number without a fraction (`10`, not `10.0`).
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// The effective configuration as plugin JSON: every block written out in
/// full, each numeric setting with its default filled in. Loading it gives
/// the same policies as the original (settings whose default is "not set",
/// such as `sampleBy`, stay absent).
pub fn effective_json(config: &PluginConfig) -> Value {
    let routes: Map<String, Value> = config
        .routes
        .iter()
        .map(|(name, policy)| (name.clone(), json!({ "forward": forward_json(policy) })))
        .collect();
    let mut top = Map::new();
    let marker = match &config.loop_marker {
        Some(name) => json!(&**name),
        None => json!(false),
    };
    top.insert("loopMarker".to_owned(), marker);
    top.insert("forward".to_owned(), forward_json(&config.default_policy));
    if !routes.is_empty() {
        top.insert("routes".to_owned(), Value::Object(routes));
    }
    Value::Object(top)
}

fn forward_json(policy: &ForwardPolicy) -> Value {
    let ForwardPolicy { mirrors, destinations } = policy;
    let mut forward = Map::new();
    if !destinations.is_empty() {
        let list: Vec<Value> = destinations
            .iter()
            .map(|d| match d.weight {
                Some(w) => json!({"destinationId": d.id, "weight": w}),
                None => json!({"destinationId": d.id}),
            })
            .collect();
        forward.insert("destinations".to_owned(), Value::Array(list));
    }
    if !mirrors.is_empty() {
        let list: Vec<Value> = mirrors.iter().map(|m| mirror_json(m)).collect();
        forward.insert("mirrors".to_owned(), Value::Array(list));
    }
    Value::Object(forward)
}

/// Every field is named here (no `..`): a field added to `MirrorPolicy`
/// does not compile until `check` shows it.
fn mirror_json(mirror: &MirrorPolicy) -> Value {
    let MirrorPolicy {
        destination,
        destination_index: _,
        rate,
        timeout_ms,
        max_body_bytes,
        max_in_flight,
        sample_by,
        methods,
        authority,
        add_headers,
        remove_headers,
        compare,
        rate_cap,
        copies,
        trace_context,
        // The top-level `loopMarker`, shown there.
        loop_marker: _,
        // Derived from `compare.secondary` (shown with `compare`), not written.
        secondary: _,
    } = mirror;
    let mut m = Map::new();
    m.insert("destinationId".to_owned(), json!(destination));
    m.insert("percentage".to_owned(), number(percentage_of(*rate)));
    m.insert("timeoutMs".to_owned(), json!(timeout_ms));
    m.insert("maxBodyBytes".to_owned(), json!(max_body_bytes));
    m.insert("maxInFlight".to_owned(), json!(max_in_flight));
    if let Some(header) = sample_by {
        m.insert("sampleBy".to_owned(), json!(header));
    }
    if let Some(methods) = methods {
        m.insert("methods".to_owned(), json!(methods));
    }
    match authority {
        AuthorityRewrite::Keep => {}
        AuthorityRewrite::Replace(a) => {
            m.insert("authority".to_owned(), json!(a));
        }
        AuthorityRewrite::Suffix(s) => {
            m.insert("hostSuffix".to_owned(), json!(s));
        }
    }
    let adds: Map<String, Value> = add_headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    m.insert("addHeaders".to_owned(), Value::Object(adds));
    m.insert("removeHeaders".to_owned(), json!(remove_headers));
    if let Some(compare) = compare {
        m.insert("compare".to_owned(), compare_json(compare));
    }
    if let Some(cap) = rate_cap {
        // (The cap's shared-data key is derived from where the mirror is
        // written; it is not a setting.)
        m.insert("maxRequestsPerSecond".to_owned(), number(cap.limit.per_second()));
        m.insert("burst".to_owned(), json!(cap.limit.burst()));
    }
    m.insert("copies".to_owned(), json!(copies));
    m.insert("traceContext".to_owned(), json!(trace_context.name()));
    Value::Object(m)
}

fn compare_json(compare: &ComparePolicy) -> Value {
    let ComparePolicy {
        body,
        ignore_fields,
        max_body_bytes,
        log_mismatches,
        noise,
    } = compare;
    let mut c = Map::new();
    c.insert("body".to_owned(), json!(body.name()));
    if *body == BodyComparison::Json {
        c.insert("ignoreFields".to_owned(), json!(ignore_fields));
    }
    if *body != BodyComparison::None {
        c.insert("maxBodyBytes".to_owned(), json!(max_body_bytes));
    }
    c.insert("logMismatches".to_owned(), json!(log_mismatches));
    if let Some(noise) = noise {
        // (The tables' shared-data key, like the rate cap's, is derived
        // from where the mirror is written; it is not a setting.)
        let percent = |ppm: u32| number(f64::from(ppm) / 10_000.0);
        c.insert("secondary".to_owned(), json!(noise.secondary));
        c.insert(
            "noise".to_owned(),
            json!({
                "relativePercent": percent(noise.relative_ppm),
                "absolutePercent": percent(noise.absolute_ppm),
                "minRequests": noise.min_requests,
                "maxFields": noise.max_fields,
                "maxEndpoints": noise.max_endpoints,
            }),
        );
    }
    Value::Object(c)
}

/// The effective policy of every route, for a person: which block applies
/// where, and every setting of every mirror, defaults included.
pub fn effective_text(config: &PluginConfig) -> String {
    let mut out = String::new();
    let shadows = config.destinations.join(", ");
    out.push_str(&format!(
        "valid: {} route(s) in \"routes\" and the default block; mirror destinations: {}\n",
        config.routes.len(),
        if shadows.is_empty() { "none" } else { &shadows }
    ));
    match &config.loop_marker {
        Some(name) => out.push_str(&format!(
            "loop marker: every copy carries \"{name}: {LOOP_MARKER_VALUE}\"; a request carrying {name} is not mirrored (skipped as loop)\n"
        )),
        None => out.push_str("loop marker: off (\"loopMarker\": false); copies are not marked, and a copy can be mirrored again\n"),
    }
    if let Some(field) = config.first_compare_field() {
        out.push_str(&format!(
            "module: vrata_mirror_compare.wasm ({field} is set; vrata_mirror.wasm refuses compare at load)\n"
        ));
    }
    out.push_str("\nevery route not listed below (\"forward\"):\n");
    forward_text(&mut out, &config.default_policy);
    for (name, policy) in &config.routes {
        out.push_str(&format!(
            "\nroute {name:?} (routes[{name:?}]: replaces \"forward\" on this route):\n"
        ));
        forward_text(&mut out, policy);
    }
    out
}

fn forward_text(out: &mut String, policy: &ForwardPolicy) {
    if !policy.destinations.is_empty() {
        let list: Vec<String> = policy
            .destinations
            .iter()
            .map(|d| match d.weight {
                Some(w) => format!("{} (weight {w})", d.id),
                None => d.id.clone(),
            })
            .collect();
        out.push_str(&format!("  forward to: {} (Envoy's route)\n", list.join(", ")));
    }
    if policy.mirrors.is_empty() {
        out.push_str("  no mirror: mirroring is off here\n");
    }
    let Some(Value::Array(mirrors)) = forward_json(policy).get("mirrors").cloned() else {
        return;
    };
    for (mirror, json) in policy.mirrors.iter().zip(mirrors) {
        out.push_str(&format!("  mirror to {:?}:\n", mirror.destination));
        let Value::Object(fields) = json else { continue };
        let shown = |key: &str| fields.get(key).map(|v| v.to_string());
        let rows: [(&str, Option<String>, &str); 15] = [
            ("percentage", shown("percentage"), ""),
            ("timeoutMs", shown("timeoutMs"), ""),
            ("maxBodyBytes", shown("maxBodyBytes"), ""),
            ("maxInFlight", shown("maxInFlight"), "per Envoy worker"),
            ("sampleBy", shown("sampleBy"), "random"),
            ("methods", shown("methods"), "all"),
            ("authority", shown("authority"), "unchanged"),
            ("hostSuffix", shown("hostSuffix"), "none"),
            ("addHeaders", shown("addHeaders"), ""),
            ("removeHeaders", shown("removeHeaders"), ""),
            ("compare", shown("compare"), "off"),
            ("maxRequestsPerSecond", shown("maxRequestsPerSecond"), "no cap"),
            ("burst", shown("burst"), "no cap"),
            ("copies", shown("copies"), ""),
            ("traceContext", shown("traceContext"), ""),
        ];
        for (key, value, note) in rows {
            let text = match (value, note) {
                (Some(v), "") => v,
                (Some(v), note) if key == "maxInFlight" => format!("{v} ({note})"),
                (Some(v), _) => v,
                (None, note) => format!("({note})"),
            };
            out.push_str(&format!("    {key:<21}{text}\n"));
        }
    }
}
