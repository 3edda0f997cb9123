//! Metric names with their labels encoded Istio-style, so that Envoy's
//! `stats_tags` (or Istio's `extraStatTags`) turn them into Prometheus labels:
//! `route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total`
//! becomes `vrata_mirror_requests_total{route="api",destination="shadow"}`.

use super::catalogue::{Label, Point};
use super::{ResponseClass, SkipReason};
use crate::compare::CompareResult;

pub const REQUESTS_TOTAL: &str = "vrata_mirror_requests_total";
pub const SKIPPED_TOTAL: &str = "vrata_mirror_skipped_total";
pub const RESPONSES_TOTAL: &str = "vrata_mirror_responses_total";
pub const LATENCY_MS: &str = "vrata_mirror_response_time_ms";
pub const COMPARE_TOTAL: &str = "vrata_mirror_compare_total";
pub const PRIMARY_LATENCY_MS: &str = "vrata_mirror_primary_response_time_ms";

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

/// Reads a stat name as Envoy's admin `/stats` prints it back into the
/// metric and its labels: the inverse of the functions below. Envoy may
/// put a prefix before the labels (`wasmcustom.`); `None` for a name that
/// is not one of the catalogue's metrics with all its labels.
pub fn decode(name: &str) -> Option<Decoded> {
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

/// The name of one point of the (route, destination) series: its metric,
/// with the route, the destination and the point's value as its labels.
pub fn point_name(route: &str, destination: &str, point: &Point) -> String {
    let values = [route, destination, point.value.unwrap_or_default()];
    let labels: Vec<(Label, &str)> = point.metric.labels.iter().copied().zip(values).collect();
    encode(&labels, point.metric.name)
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
    fn unnamed_routes_get_a_stable_label() {
        assert_eq!(route_label(None), UNNAMED_ROUTE);
        assert_eq!(route_label(Some(b"")), UNNAMED_ROUTE);
        assert_eq!(route_label(Some(b"api")), "api");
        assert_eq!(route_label(Some(b"a\xffb")), "a\u{fffd}b");
    }
}
