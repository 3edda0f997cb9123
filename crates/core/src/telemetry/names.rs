//! Metric names with their labels encoded Istio-style, so that Envoy's
//! `stats_tags` (or Istio's `extraStatTags`) turn them into Prometheus labels:
//! `route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total`
//! becomes `vrata_mirror_requests_total{route="api",destination="shadow"}`.

use super::catalogue::{Label, LabelledPoint, Point};
use super::{ResponseClass, SkipReason};
use crate::compare::CompareResult;

pub const REQUESTS_TOTAL: &str = "vrata_mirror_requests_total";
pub const SKIPPED_TOTAL: &str = "vrata_mirror_skipped_total";
pub const RESPONSES_TOTAL: &str = "vrata_mirror_responses_total";
pub const LATENCY_MS: &str = "vrata_mirror_response_time_ms";
pub const COMPARE_TOTAL: &str = "vrata_mirror_compare_total";
pub const PRIMARY_LATENCY_MS: &str = "vrata_mirror_primary_response_time_ms";
pub const NOISE_REQUESTS_TOTAL: &str = "vrata_mirror_noise_requests_total";
pub const FIELD_DIFFERENCES_TOTAL: &str = "vrata_mirror_field_differences_total";
pub const NOISE_UNAVAILABLE_TOTAL: &str = "vrata_mirror_noise_unavailable_total";

/// The label for a request whose route has no name.
pub const UNNAMED_ROUTE: &str = "unnamed";

/// A label value that cannot break the encoding: `;` and `=` delimit it, and
/// quotes, backslashes and control characters would need escaping in
/// Prometheus' text format, so each becomes `_`.
pub fn label_value(raw: &str) -> String {
    if raw.is_empty() {
        return "_".to_owned();
    }
    raw.chars()
        .map(|c| match c {
            ';' | '=' | '"' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The route label for a route name as the host reports it (bytes, maybe absent).
pub fn route_label(name: Option<&[u8]>) -> String {
    match name {
        None | Some(b"") => UNNAMED_ROUTE.to_owned(),
        Some(bytes) => label_value(&String::from_utf8_lossy(bytes)),
    }
}

fn encode(labels: &[(Label, &str)], metric: &str) -> String {
    let mut name = String::with_capacity(64);
    for (key, value) in labels {
        name.push_str(key.name());
        name.push_str("=.=");
        name.push_str(&label_value(value));
        name.push_str(";.;");
    }
    name.push_str(metric);
    name
}

/// A metric name taken apart: its catalogue entry and its labels' values,
/// in the catalogue's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub metric: &'static super::catalogue::Metric,
    pub labels: Vec<(super::catalogue::Label, String)>,
}

impl Decoded {
    /// The value of `label`, if the metric has it.
    pub fn label(&self, label: super::catalogue::Label) -> Option<&str> {
        self.labels.iter().find(|(l, _)| *l == label).map(|(_, v)| v.as_str())
    }
}

/// The native host's (crates/native) `metrics_namespace`: it defines the
/// catalogue's `vrata_mirror_requests_total` as `requests_total` with real
/// labels, which Envoy's admin prints as
/// `vrata_mirror.requests_total.route.api.destination.shadow` in `/stats` and
/// as `envoy_vrata_mirror_requests_total{route="api",destination="shadow"}`
/// in `/stats/prometheus` (Envoy puts `envoy_` before every dynamic module's
/// metric; crates/render's `observability::native_relabel_configs` is the
/// Prometheus rule that gives the catalogue's names back).
pub const NATIVE_NAMESPACE: &str = "vrata_mirror";

/// The prefix `/stats/prometheus` gives the native host's metrics:
/// `envoy_vrata_mirror_`, where the wasm host's are `vrata_mirror_`.
pub const NATIVE_PROMETHEUS_PREFIX: &str = "envoy_vrata_mirror_";

/// Envoy's namespace for a dynamic module's metrics when the filter names
/// none, as Envoy Gateway's `dynamicModule` filters do (measured on 1.40.0:
/// `envoy_dynamicmodulescustom_requests_total{route,destination}` in
/// `/stats/prometheus`, `dynamicmodulescustom.requests_total.route...` in
/// `/stats`). Shared by every module of that Envoy: only the catalogue's
/// names in it are the filter's.
pub const DEFAULT_NATIVE_NAMESPACE: &str = "dynamicmodulescustom";

/// The native host's own counter (not the catalogue's): panics caught in its
/// hooks, `envoy_vrata_mirror_panics_total`.
pub const NATIVE_PANICS_TOTAL: &str = "panics_total";

/// The native host's name of a catalogue metric (or of `panics_total`),
/// without its namespace: `requests_total` for `vrata_mirror_requests_total`.
pub fn native_short_name(catalogue_name: &str) -> Option<&str> {
    catalogue_name.strip_prefix(NATIVE_NAMESPACE)?.strip_prefix('_')
}

/// The wasm host's name for a series name of either host in
/// `/stats/prometheus`: the native host's `envoy_vrata_mirror_X` and, in
/// Envoy's default namespace, `envoy_dynamicmodulescustom_X` for the
/// catalogue's X (with `_bucket`, `_sum`, `_count`) become `vrata_mirror_X`,
/// as the Prometheus rule (crates/render's `observability::native_relabel_configs`)
/// renames them; any other name stays as it is.
pub fn from_prometheus(name: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if let Some(rest) = name.strip_prefix(NATIVE_PROMETHEUS_PREFIX) {
        return Cow::Owned(format!("{NATIVE_NAMESPACE}_{rest}"));
    }
    let default = name
        .strip_prefix("envoy_")
        .and_then(|n| n.strip_prefix(DEFAULT_NATIVE_NAMESPACE))
        .and_then(|n| n.strip_prefix('_'));
    if let Some(rest) = default {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| rest.strip_suffix(suffix))
            .unwrap_or(rest);
        let ours = base == NATIVE_PANICS_TOTAL
            || super::catalogue::METRICS
                .iter()
                .any(|m| native_short_name(m.name) == Some(base));
        if ours {
            return Cow::Owned(format!("{NATIVE_NAMESPACE}_{rest}"));
        }
    }
    Cow::Borrowed(name)
}

/// Reads a stat name as Envoy's admin `/stats` prints it back into the
/// metric and its labels: the inverse of the functions below. Envoy may
/// put a prefix before the labels (`wasmcustom.`); `None` for a name that
/// is not one of the catalogue's metrics with all its labels. Also reads
/// the native host's names (see [`NATIVE_NAMESPACE`]), whose labels are
/// `.label.value` pairs after the metric: a route or destination value that
/// itself holds `.destination.` (or, for the last label, `.class.` and the
/// like) would be split at the wrong place there; the values of `class`,
/// `reason` and `result` never hold a dot.
pub fn decode(name: &str) -> Option<Decoded> {
    if !name.contains(";.;") {
        return decode_native(name);
    }
    let (encoded, metric_name) = name.rsplit_once(";.;")?;
    let metric = super::catalogue::METRICS.iter().find(|m| m.name == metric_name)?;
    let first = metric.labels.first()?;
    let start = encoded.find(&format!("{}=.=", first.name()))?;
    let parts: Vec<&str> = encoded.get(start..)?.split(";.;").collect();
    if parts.len() != metric.labels.len() {
        return None;
    }
    let mut labels = Vec::with_capacity(parts.len());
    for (label, part) in metric.labels.iter().zip(parts) {
        let value = part.strip_prefix(label.name())?.strip_prefix("=.=")?;
        labels.push((*label, value.to_owned()));
    }
    Some(Decoded { metric, labels })
}

/// `vrata_mirror.<metric without vrata_mirror_>.<label>.<value>...`, the
/// labels in the catalogue's order (or `dynamicmodulescustom.` in place of
/// `vrata_mirror.`: Envoy Gateway's).
fn decode_native(name: &str) -> Option<Decoded> {
    let rest = [NATIVE_NAMESPACE, DEFAULT_NATIVE_NAMESPACE]
        .iter()
        .find_map(|namespace| name.strip_prefix(namespace)?.strip_prefix('.'))?;
    let (metric, rest) = super::catalogue::METRICS.iter().find_map(|m| {
        let short = native_short_name(m.name)?;
        let first = m.labels.first()?;
        let rest = rest
            .strip_prefix(short)?
            .strip_prefix('.')?
            .strip_prefix(first.name())?;
        Some((m, rest.strip_prefix('.')?))
    })?;
    // `rest` is the first label's value, then `.label.value` for each other
    // label: the last from the end (its values have no dot), the middle one
    // at its first separator.
    let mut values: Vec<String> = Vec::with_capacity(metric.labels.len());
    let mut rest = rest;
    let others = metric.labels.get(1..)?;
    let mut tail: Vec<String> = Vec::with_capacity(others.len());
    for (i, label) in others.iter().enumerate().rev() {
        let separator = format!(".{}.", label.name());
        let (before, value) = if i == 0 {
            rest.split_once(&separator)?
        } else {
            rest.rsplit_once(&separator)?
        };
        tail.push(value.to_owned());
        rest = before;
    }
    values.push(rest.to_owned());
    values.extend(tail.into_iter().rev());
    if values.iter().any(String::is_empty) {
        return None;
    }
    let labels = metric.labels.iter().copied().zip(values).collect();
    Some(Decoded { metric, labels })
}

/// The name of one point of the (route, destination) series: its metric,
/// with the route, the destination and the point's value as its labels.
pub fn point_name(route: &str, destination: &str, point: &Point) -> String {
    let values = [route, destination, point.value.unwrap_or_default()];
    let labels: Vec<(Label, &str)> = point.metric.labels.iter().copied().zip(values).collect();
    encode(&labels, point.metric.name)
}

/// The name of a labelled point of the (route, destination) series: its
/// metric, with the route, the destination and the point's values.
pub fn labelled_name(route: &str, destination: &str, point: &LabelledPoint<'_>) -> String {
    let values = [route, destination].into_iter().chain(point.values.iter().copied());
    let labels: Vec<(Label, &str)> = point.metric.labels.iter().copied().zip(values).collect();
    encode(&labels, point.metric.name)
}

pub fn noise_unavailable_total(route: &str, destination: &str) -> String {
    encode(
        &[(Label::Route, route), (Label::Destination, destination)],
        NOISE_UNAVAILABLE_TOTAL,
    )
}

pub fn requests_total(route: &str, destination: &str) -> String {
    encode(
        &[(Label::Route, route), (Label::Destination, destination)],
        REQUESTS_TOTAL,
    )
}

pub fn skipped_total(route: &str, destination: &str, reason: SkipReason) -> String {
    encode(
        &[
            (Label::Route, route),
            (Label::Destination, destination),
            (Label::Reason, reason.label()),
        ],
        SKIPPED_TOTAL,
    )
}

pub fn responses_total(route: &str, destination: &str, class: ResponseClass) -> String {
    encode(
        &[
            (Label::Route, route),
            (Label::Destination, destination),
            (Label::Class, class.label()),
        ],
        RESPONSES_TOTAL,
    )
}

pub fn latency_ms(route: &str, destination: &str) -> String {
    encode(&[(Label::Route, route), (Label::Destination, destination)], LATENCY_MS)
}

pub fn compare_total(route: &str, destination: &str, result: CompareResult) -> String {
    encode(
        &[
            (Label::Route, route),
            (Label::Destination, destination),
            (Label::Result, result.label()),
        ],
        COMPARE_TOTAL,
    )
}

pub fn primary_latency_ms(route: &str, destination: &str) -> String {
    encode(
        &[(Label::Route, route), (Label::Destination, destination)],
        PRIMARY_LATENCY_MS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_istio_encoding() {
        assert_eq!(
            requests_total("api", "shadow"),
            "route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total"
        );
        assert_eq!(
            skipped_total("api", "shadow", SkipReason::BodyTooLarge),
            "route=.=api;.;destination=.=shadow;.;reason=.=body_too_large;.;vrata_mirror_skipped_total"
        );
        assert_eq!(
            responses_total("r", "d", ResponseClass::ServerError),
            "route=.=r;.;destination=.=d;.;class=.=5xx;.;vrata_mirror_responses_total"
        );
        assert_eq!(
            latency_ms("r", "d"),
            "route=.=r;.;destination=.=d;.;vrata_mirror_response_time_ms"
        );
    }

    #[test]
    fn a_point_is_named_as_its_metric() {
        use super::super::catalogue::Event;
        let named = |event: Event| -> Vec<String> {
            event
                .points()
                .map(|(point, _)| point_name("api", "shadow", &point))
                .collect()
        };
        assert_eq!(named(Event::Sent), [requests_total("api", "shadow")]);
        assert_eq!(
            named(Event::Skipped(SkipReason::Backoff)),
            [skipped_total("api", "shadow", SkipReason::Backoff)]
        );
        let answered = Event::Answered {
            class: ResponseClass::Success,
            latency_ms: Some(3),
        };
        assert_eq!(
            named(answered),
            [
                responses_total("api", "shadow", ResponseClass::Success),
                latency_ms("api", "shadow")
            ]
        );
        assert_eq!(
            named(Event::Compared(CompareResult::Overflow)),
            [compare_total("api", "shadow", CompareResult::Overflow)]
        );
        assert_eq!(named(Event::PrimaryLatency(1)), [primary_latency_ms("api", "shadow")]);
    }

    #[test]
    fn label_values_cannot_break_the_encoding() {
        assert_eq!(label_value("a;.;b=.=c"), "a_._b_._c");
        assert_eq!(label_value("say \"hi\"\\\n"), "say _hi___");
        assert_eq!(label_value("api.v1/x-y:8080"), "api.v1/x-y:8080");
        let name = requests_total("evil;.;destination=.=x", "shadow");
        assert_eq!(name.matches(";.;").count(), 2, "{name}");
    }

    #[test]
    fn decode_reads_back_every_encoded_name() {
        use super::super::catalogue::{Label, METRICS};
        let names = [
            requests_total("api", "outbound|8080||a.b.svc"),
            skipped_total("api", "shadow", SkipReason::InFlightLimit),
            responses_total("r.x", "d", ResponseClass::Timeout),
            latency_ms("r", "d;.;x"),
            compare_total("r", "d", CompareResult::PrimaryIncomplete),
            primary_latency_ms("r", "d"),
            labelled_name(
                "r",
                "d",
                &LabelledPoint {
                    metric: &super::super::catalogue::NOISE_REQUESTS,
                    values: &["/pkg.S/M"],
                },
            ),
            labelled_name(
                "r",
                "d",
                &LabelledPoint {
                    metric: &super::super::catalogue::FIELD_DIFFERENCES,
                    values: &["GET", "m[_x y_]", "noise"],
                },
            ),
            noise_unavailable_total("r", "d"),
        ];
        for (name, metric) in names.iter().zip(METRICS.iter()) {
            for prefix in ["", "wasmcustom.", "a.b.c."] {
                let decoded = decode(&format!("{prefix}{name}")).expect(name);
                assert_eq!(decoded.metric, metric);
                assert_eq!(decoded.labels.len(), metric.labels.len());
            }
        }
        let decoded = decode(&names[0]).unwrap();
        assert_eq!(decoded.label(Label::Destination), Some("outbound|8080||a.b.svc"));
        assert_eq!(decoded.label(Label::Reason), None);
        assert_eq!(decode(&names[1]).unwrap().label(Label::Reason), Some("in_flight_limit"));
        assert_eq!(decode(&names[3]).unwrap().label(Label::Destination), Some("d_._x"));
        assert_eq!(
            decode(&names[4]).unwrap().label(Label::Result),
            Some("primary_incomplete")
        );
        for other in [
            "cluster.shadow.upstream_rq_completed",
            "route=.=a;.;vrata_mirror_requests_total",
            "route=.=a;.;destination=.=b;.;vrata_mirror_unknown",
            "destination=.=b;.;route=.=a;.;vrata_mirror_requests_total",
        ] {
            assert_eq!(decode(other), None, "{other}");
        }
    }

    #[test]
    fn decode_reads_the_native_hosts_names() {
        use super::super::catalogue::Label;
        // As Envoy 1.40's /stats printed them (crates/cli/tests/cli/report.rs).
        let sent = decode("vrata_mirror.requests_total.route.api.destination.shadow").unwrap();
        assert_eq!(sent.metric.name, REQUESTS_TOTAL);
        assert_eq!(sent.label(Label::Route), Some("api"));
        assert_eq!(sent.label(Label::Destination), Some("shadow"));
        let answered =
            decode("vrata_mirror.responses_total.route.r.v1.destination.outbound|8080||a.b.svc.class.4xx").unwrap();
        assert_eq!(answered.metric.name, RESPONSES_TOTAL);
        assert_eq!(answered.label(Label::Route), Some("r.v1"));
        assert_eq!(answered.label(Label::Destination), Some("outbound|8080||a.b.svc"));
        assert_eq!(answered.label(Label::Class), Some("4xx"));
        let skipped = decode("vrata_mirror.skipped_total.route.a.destination.b.reason.in_flight_limit").unwrap();
        assert_eq!(skipped.label(Label::Reason), Some("in_flight_limit"));
        let compared = decode("vrata_mirror.compare_total.route.a.destination.b.result.match").unwrap();
        assert_eq!(compared.label(Label::Result), Some("match"));
        assert_eq!(
            decode("vrata_mirror.response_time_ms.route.a.destination.b")
                .unwrap()
                .metric
                .name,
            LATENCY_MS
        );
        assert_eq!(
            decode("vrata_mirror.primary_response_time_ms.route.a.destination.b")
                .unwrap()
                .metric
                .name,
            PRIMARY_LATENCY_MS
        );
        let gateway = decode("dynamicmodulescustom.requests_total.route.a.destination.b").unwrap();
        assert_eq!(gateway.metric.name, REQUESTS_TOTAL);
        assert_eq!(gateway.label(Label::Destination), Some("b"));
        for other in [
            "vrata_mirror.panics_total",
            "vrata_mirror.requests_total.route.a",
            "vrata_mirror.requests_total.destination.b.route.a",
            "vrata_mirror.requests_total.route..destination.b",
            "vrata_mirror.responses_total.route.a.destination.b",
            "vrata_mirror.unknown.route.a.destination.b",
            "other.requests_total.route.a.destination.b",
            "cluster.shadow.upstream_rq_completed",
        ] {
            assert_eq!(decode(other), None, "{other}");
        }
    }

    #[test]
    fn prometheus_names_of_both_hosts_read_as_the_wasm_hosts() {
        for (name, wasm) in [
            ("envoy_vrata_mirror_requests_total", "vrata_mirror_requests_total"),
            (
                "envoy_vrata_mirror_response_time_ms_bucket",
                "vrata_mirror_response_time_ms_bucket",
            ),
            ("envoy_vrata_mirror_panics_total", "vrata_mirror_panics_total"),
            (
                "envoy_dynamicmodulescustom_requests_total",
                "vrata_mirror_requests_total",
            ),
            (
                "envoy_dynamicmodulescustom_primary_response_time_ms_count",
                "vrata_mirror_primary_response_time_ms_count",
            ),
            ("envoy_dynamicmodulescustom_panics_total", "vrata_mirror_panics_total"),
            // Another module's metric in the default namespace, and the rest.
            (
                "envoy_dynamicmodulescustom_waf_blocked_total",
                "envoy_dynamicmodulescustom_waf_blocked_total",
            ),
            ("vrata_mirror_requests_total", "vrata_mirror_requests_total"),
            ("envoy_cluster_upstream_rq_total", "envoy_cluster_upstream_rq_total"),
        ] {
            assert_eq!(from_prometheus(name), wasm, "{name}");
        }
    }

    #[test]
    fn unnamed_routes_get_a_stable_label() {
        assert_eq!(route_label(None), UNNAMED_ROUTE);
        assert_eq!(route_label(Some(b"")), UNNAMED_ROUTE);
        assert_eq!(route_label(Some(b"api")), "api");
        assert_eq!(route_label(Some(b"a\xffb")), "a\u{fffd}b");
    }
}
