//! The one list of what the filter reports: every metric with its kind and
//! labels, every label and the Envoy `stats_tags` rule that makes it a
//! Prometheus label, and the values of the enumerated labels. The filter's
//! metric names ([`super::names`]), the README's table, the reference
//! configs' `stats_tags` and the tools all come from here, or a test checks
//! them against it.

use super::names::{
    COMPARE_TOTAL, FIELD_DIFFERENCES_TOTAL, LATENCY_MS, NOISE_REQUESTS_TOTAL, NOISE_UNAVAILABLE_TOTAL,
    PRIMARY_LATENCY_MS, REQUESTS_TOTAL, RESPONSES_TOTAL, SKIPPED_TOTAL,
};
use super::{ResponseClass, SkipReason};
use crate::compare::CompareResult;

/// How Envoy stores a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Histogram,
}

/// One metric the filter defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The name Prometheus shows (Envoy's `/stats/prometheus` adds no prefix).
    pub name: &'static str,
    pub kind: MetricKind,
    /// Its labels, in the order they are encoded in the name.
    pub labels: &'static [Label],
    /// One line: what it counts.
    pub help: &'static str,
}

/// A label encoded in metric names (`route=.=api;.;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Route,
    Destination,
    Reason,
    Class,
    Result,
    /// An endpoint's method part (`compare::noise::endpoint_method`).
    Method,
    /// A field path with its difference kind (`items[].price`, `tags[]#order`).
    Field,
    /// `raw` (primary vs candidate) or `noise` (primary vs secondary).
    Kind,
}

/// The values of [`Label::Kind`].
pub const FIELD_KINDS: [&str; 2] = ["raw", "noise"];

impl Label {
    pub const ALL: [Label; 8] = [
        Label::Route,
        Label::Destination,
        Label::Reason,
        Label::Class,
        Label::Result,
        Label::Method,
        Label::Field,
        Label::Kind,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Label::Route => "route",
            Label::Destination => "destination",
            Label::Reason => "reason",
            Label::Class => "class",
            Label::Result => "result",
            Label::Method => "method",
            Label::Field => "field",
            Label::Kind => "kind",
        }
    }

    /// The `stats_tags` regex that extracts this label from a metric name
    /// (Envoy's `stats_config.stats_tags`; Istio derives the same from
    /// `extraStatTags`).
    pub fn stats_tag_regex(self) -> String {
        format!(r"({}=\.=(.*?);\.;)", self.name())
    }

    /// The values an enumerated label takes; `None` for free-form labels
    /// (route and destination names come from the configuration).
    pub fn values(self) -> Option<Vec<&'static str>> {
        match self {
            Label::Route | Label::Destination | Label::Method | Label::Field => None,
            Label::Reason => Some(SkipReason::ALL.iter().map(|r| r.label()).collect()),
            Label::Class => Some(ResponseClass::all().map(ResponseClass::label).collect()),
            Label::Result => Some(CompareResult::ALL.iter().map(|r| r.label()).collect()),
            Label::Kind => Some(FIELD_KINDS.to_vec()),
        }
    }
}

const ROUTE_DESTINATION: &[Label] = &[Label::Route, Label::Destination];

pub const REQUESTS: Metric = Metric {
    name: REQUESTS_TOTAL,
    kind: MetricKind::Counter,
    labels: ROUTE_DESTINATION,
    help: "Copies Envoy accepted for sending to the shadow.",
};
pub const SKIPPED: Metric = Metric {
    name: SKIPPED_TOTAL,
    kind: MetricKind::Counter,
    labels: &[Label::Route, Label::Destination, Label::Reason],
    help: "Sampled requests not sent, by reason.",
};
pub const RESPONSES: Metric = Metric {
    name: RESPONSES_TOTAL,
    kind: MetricKind::Counter,
    labels: &[Label::Route, Label::Destination, Label::Class],
    help: "How each sent copy ended, by class.",
};
pub const LATENCY: Metric = Metric {
    name: LATENCY_MS,
    kind: MetricKind::Histogram,
    labels: ROUTE_DESTINATION,
    help: "Milliseconds from sending a copy to the shadow's answer.",
};
pub const COMPARED: Metric = Metric {
    name: COMPARE_TOTAL,
    kind: MetricKind::Counter,
    labels: &[Label::Route, Label::Destination, Label::Result],
    help: "How each copy sent with compare ended: the shadow's answer against the primary's.",
};
pub const PRIMARY_LATENCY: Metric = Metric {
    name: PRIMARY_LATENCY_MS,
    kind: MetricKind::Histogram,
    labels: ROUTE_DESTINATION,
    help: "Milliseconds from the request's end to the primary's whole answer, on the requests compared.",
};

pub const NOISE_REQUESTS: Metric = Metric {
    name: NOISE_REQUESTS_TOTAL,
    kind: MetricKind::Counter,
    labels: &[Label::Route, Label::Destination, Label::Method],
    help: "With compare.secondary: compared requests counted in their endpoint's noise table (both answers, equal statuses).",
};
pub const FIELD_DIFFERENCES: Metric = Metric {
    name: FIELD_DIFFERENCES_TOTAL,
    kind: MetricKind::Counter,
    labels: &[Label::Route, Label::Destination, Label::Method, Label::Field, Label::Kind],
    help: "With compare.secondary: counted requests where a field differed, raw (primary vs candidate) or noise (primary vs secondary).",
};
pub const NOISE_UNAVAILABLE: Metric = Metric {
    name: NOISE_UNAVAILABLE_TOTAL,
    kind: MetricKind::Counter,
    labels: ROUTE_DESTINATION,
    help: "With compare.secondary: compared requests whose noise counts were skipped (shared data failed or stayed contended).",
};

/// Every metric the filter defines.
pub const METRICS: [Metric; 9] = [
    REQUESTS,
    SKIPPED,
    RESPONSES,
    LATENCY,
    COMPARED,
    PRIMARY_LATENCY,
    NOISE_REQUESTS,
    FIELD_DIFFERENCES,
    NOISE_UNAVAILABLE,
];

/// What happened to a copy, as the worker reports it: each event is one or
/// two [`Point`]s of the copy's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The host accepted the copy.
    Sent,
    /// A sampled copy not sent.
    Skipped(SkipReason),
    /// The copy's call ended: its class, and its latency when the shadow
    /// answered (see [`ResponseClass::is_answer`]).
    Answered {
        class: ResponseClass,
        latency_ms: Option<u64>,
    },
    /// How a copy sent with `compare` ended.
    Compared(CompareResult),
    /// The primary's latency on a compared request.
    PrimaryLatency(u64),
    /// A compared request's noise counts were skipped: shared data failed.
    NoiseUnavailable,
}

/// A count at a point whose labels are not enumerated (an endpoint's
/// method, a field): [`NOISE_REQUESTS`] or [`FIELD_DIFFERENCES`], with
/// the values of its labels after the route and the destination. Bounded
/// by the caller (`compare::noise`'s tables: at most `maxEndpoints` + 1
/// methods and `maxFields` + 1 fields per endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelledPoint<'a> {
    pub metric: &'static Metric,
    pub values: &'a [&'a str],
}

/// One counter or histogram of a series: its metric, the value of its
/// enumerated label (reason, class or result) if it has one, and a dense
/// index in `0..Point::SLOTS`, for hosts that keep something per point of
/// a series (the wasm host caches each point's metric id there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub metric: &'static Metric,
    pub value: Option<&'static str>,
    pub slot: usize,
}

/// What to do at a point: count one, or record a value in a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Increment,
    Record(u64),
}

const SKIPPED_BASE: usize = 1;
const RESPONSES_BASE: usize = SKIPPED_BASE + SkipReason::ALL.len();
const LATENCY_SLOT: usize = RESPONSES_BASE + ResponseClass::COUNT;
const COMPARED_BASE: usize = LATENCY_SLOT + 1;
const PRIMARY_LATENCY_SLOT: usize = COMPARED_BASE + CompareResult::ALL.len();
const NOISE_UNAVAILABLE_SLOT: usize = PRIMARY_LATENCY_SLOT + 1;

impl Point {
    /// How many points one series has.
    pub const SLOTS: usize = NOISE_UNAVAILABLE_SLOT + 1;

    const fn new(metric: &'static Metric, value: Option<&'static str>, slot: usize) -> Point {
        Point { metric, value, slot }
    }
}

impl Event {
    /// The points this event touches, in order, and what to do at each.
    pub fn points(self) -> impl Iterator<Item = (Point, Measure)> {
        let (first, second) = match self {
            Event::Sent => ((Point::new(&REQUESTS, None, 0), Measure::Increment), None),
            Event::Skipped(reason) => (
                (
                    Point::new(&SKIPPED, Some(reason.label()), SKIPPED_BASE + reason.index()),
                    Measure::Increment,
                ),
                None,
            ),
            Event::Answered { class, latency_ms } => (
                (
                    Point::new(&RESPONSES, Some(class.label()), RESPONSES_BASE + class.index()),
                    Measure::Increment,
                ),
                latency_ms.map(|ms| (Point::new(&LATENCY, None, LATENCY_SLOT), Measure::Record(ms))),
            ),
            Event::Compared(result) => (
                (
                    Point::new(&COMPARED, Some(result.label()), COMPARED_BASE + result.index()),
                    Measure::Increment,
                ),
                None,
            ),
            Event::PrimaryLatency(ms) => (
                (
                    Point::new(&PRIMARY_LATENCY, None, PRIMARY_LATENCY_SLOT),
                    Measure::Record(ms),
                ),
                None,
            ),
            Event::NoiseUnavailable => (
                (
                    Point::new(&NOISE_UNAVAILABLE, None, NOISE_UNAVAILABLE_SLOT),
                    Measure::Increment,
                ),
                None,
            ),
        };
        std::iter::once(first).chain(second)
    }
}

/// `(tag_name, regex)` for every label: the bootstrap's `stats_tags`.
pub fn stats_tags() -> Vec<(&'static str, String)> {
    Label::ALL
        .iter()
        .map(|label| (label.name(), label.stats_tag_regex()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::names;

    #[test]
    fn every_label_of_every_metric_has_a_stats_tag() {
        let tags: Vec<&str> = stats_tags().iter().map(|(name, _)| *name).collect();
        for metric in METRICS {
            for label in metric.labels {
                assert!(tags.contains(&label.name()), "{} {:?}", metric.name, label);
            }
        }
    }

    #[test]
    fn the_catalogue_names_what_the_filter_defines() {
        let defined = [
            names::requests_total("r", "d"),
            names::skipped_total("r", "d", SkipReason::Backoff),
            names::responses_total("r", "d", ResponseClass::Timeout),
            names::latency_ms("r", "d"),
            names::compare_total("r", "d", CompareResult::ShadowFailed),
            names::primary_latency_ms("r", "d"),
            names::labelled_name(
                "r",
                "d",
                &LabelledPoint {
                    metric: &NOISE_REQUESTS,
                    values: &["GET"],
                },
            ),
            names::labelled_name(
                "r",
                "d",
                &LabelledPoint {
                    metric: &FIELD_DIFFERENCES,
                    values: &["GET", "items[].price", "raw"],
                },
            ),
            names::noise_unavailable_total("r", "d"),
        ];
        assert_eq!(defined.len(), METRICS.len());
        for (metric, name) in METRICS.iter().zip(&defined) {
            assert!(name.ends_with(&format!(";.;{}", metric.name)), "{name}");
            let encoded: Vec<&str> = name
                .split(";.;")
                .filter_map(|part| part.split_once("=.="))
                .map(|(l, _)| l)
                .collect();
            let labels: Vec<&str> = metric.labels.iter().map(|l| l.name()).collect();
            assert_eq!(encoded, labels, "{name}");
        }
    }

    #[test]
    fn every_point_has_its_own_slot_and_its_metrics_labels() {
        let mut events = vec![Event::Sent, Event::PrimaryLatency(1), Event::NoiseUnavailable];
        events.extend(SkipReason::ALL.map(Event::Skipped));
        events.extend(ResponseClass::all().map(|class| Event::Answered {
            class,
            latency_ms: Some(1),
        }));
        events.extend(CompareResult::ALL.map(Event::Compared));
        let mut slots: Vec<usize> = Vec::new();
        for event in events {
            for (point, measure) in event.points() {
                assert!(point.slot < Point::SLOTS, "{event:?}");
                assert_eq!(point.value.is_some(), point.metric.labels.len() == 3, "{event:?}");
                let histogram = point.metric.kind == MetricKind::Histogram;
                assert_eq!(matches!(measure, Measure::Record(_)), histogram, "{event:?}");
                if !slots.contains(&point.slot) {
                    slots.push(point.slot);
                }
            }
        }
        slots.sort_unstable();
        assert_eq!(slots, (0..Point::SLOTS).collect::<Vec<_>>(), "dense and all used");
        let answered = Event::Answered {
            class: ResponseClass::Timeout,
            latency_ms: None,
        };
        assert_eq!(answered.points().count(), 1, "no latency without an answer");
    }

    #[test]
    fn a_stats_tag_regex_extracts_its_label() {
        assert_eq!(Label::Route.stats_tag_regex(), r"(route=\.=(.*?);\.;)");
        assert_eq!(Label::Class.values().map(|v| v.len()), Some(ResponseClass::COUNT));
        assert_eq!(Label::Reason.values().map(|v| v.len()), Some(SkipReason::ALL.len()));
        assert_eq!(Label::Route.values(), None);
    }
}
