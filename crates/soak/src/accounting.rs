//! Every copy accounted for, from Envoy's `/stats/prometheus` (the
//! filter's metrics, named by crates/core's catalogue), what the clients
//! sent and what the upstreams received. Pure: unit-tested with made-up
//! figures, including ones that must fail.
//!
//! What is counted, exactly:
//! - *sampled*: a request in a mirror's sample, once per copy. The filter
//!   has no counter of its own for it; the soak knows it from what it sent:
//!   routes `api`, `grpc` and `probe` mirror 100 % in every configuration
//!   (`grpc` with 2 copies), so sampled = requests × copies there; the
//!   default route samples by `x-soak-key` at 10 % or 30 % depending on the
//!   configuration, so its sampled count lies between the keys in the 10 %
//!   sample and those in the 30 % one (both computed with the filter's own
//!   draw); route `extra`'s keys are in neither, so it copies only while its
//!   route entry (to the witness) is in force.
//! - *sent*: `vrata_mirror_requests_total`; *skipped*: `vrata_mirror_skipped_total`
//!   (the native host's `envoy_vrata_mirror_*` are read under these names).
//! - *answered* classes: the shadow sent an answer's head (1xx-5xx, gRPC
//!   statuses, and `too_large_or_reset`: the big answer began and Envoy cut
//!   it off); *failed* classes: `timeout`, `reset`, `connect_failure`.
//! - An upstream's *received*: requests it read whole; *answered*: requests
//!   it answered with a status. A stuck or reset copy was received and not
//!   answered; a refused one was neither.

use std::collections::{BTreeMap, BTreeSet};
use vrata_mirror_core::compare::CompareResult;
use vrata_mirror_core::telemetry::names::{
    from_prometheus, COMPARE_TOTAL, REQUESTS_TOTAL, RESPONSES_TOTAL, SKIPPED_TOTAL,
};
use vrata_mirror_core::telemetry::{ResponseClass, SkipReason};

/// One Prometheus text scrape, parsed.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    series: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.trim().parse().ok()?;
                let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
                let labels = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        Some((k.to_owned(), v.trim_matches('"').to_owned()))
                    })
                    .collect();
                // Either host's names: the native host's `envoy_vrata_mirror_*` read as the wasm host's.
                Some((from_prometheus(name).into_owned(), labels, value))
            })
            .collect();
        Metrics { series }
    }

    /// The sum of every series of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.series
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
            .sum::<f64>() as u64
    }

    /// Sent copies of (route, destination); `None` for either: all.
    pub fn sent(&self, route: Option<&str>, destination: Option<&str>) -> u64 {
        self.sum(REQUESTS_TOTAL, &filter(route, destination, None))
    }

    pub fn skipped(&self, route: Option<&str>, destination: Option<&str>, reason: Option<SkipReason>) -> u64 {
        self.sum(
            SKIPPED_TOTAL,
            &filter(route, destination, reason.map(|r| ("reason", r.label()))),
        )
    }

    pub fn responses(&self, route: Option<&str>, destination: Option<&str>, class: Option<ResponseClass>) -> u64 {
        self.sum(
            RESPONSES_TOTAL,
            &filter(route, destination, class.map(|c| ("class", c.label()))),
        )
    }

    pub fn compared(&self, route: Option<&str>, destination: Option<&str>, result: Option<CompareResult>) -> u64 {
        self.sum(
            COMPARE_TOTAL,
            &filter(route, destination, result.map(|r| ("result", r.label()))),
        )
    }
}

fn filter<'a>(
    route: Option<&'a str>,
    destination: Option<&'a str>,
    more: Option<(&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut labels = Vec::new();
    if let Some(route) = route {
        labels.push(("route", route));
    }
    if let Some(destination) = destination {
        labels.push(("destination", destination));
    }
    labels.extend(more);
    labels
}

/// The classes where the shadow sent the head of an answer.
pub fn answered_class(class: ResponseClass) -> bool {
    !matches!(
        class,
        ResponseClass::Timeout | ResponseClass::Reset | ResponseClass::ConnectFailure
    )
}

/// What an upstream counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCount {
    /// Its cluster name (the metrics' `destination`).
    pub cluster: String,
    pub received: u64,
    pub answered: u64,
    /// Every pair mirroring to it is kept by every configuration, so its
    /// counters never restart: the identities hold exactly. Otherwise a
    /// dropped pair's counters restart from 0 (Envoy frees them), and the
    /// counters can only be at most what it received.
    pub exact: bool,
}

/// What the clients sent (every one answered by the primary: a request
/// that was not is a client difference, asserted separately).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub api: u64,
    pub grpc: u64,
    pub probe: u64,
    pub default: u64,
    /// Default-route requests whose key is in the 10 % / 30 % sample.
    pub default_in_low: u64,
    pub default_in_high: u64,
    pub extra: u64,
}

/// One assertion and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Sent + skipped over every destination of `route`.
fn sampled(m: &Metrics, route: &str) -> u64 {
    m.sent(Some(route), None) + m.skipped(Some(route), None, None)
}

/// The accounting identities, each a [`Check`]. `kept`: the (route,
/// destination) pairs every configuration has.
pub fn checks(
    m: &Metrics,
    sent: &Sent,
    copies_grpc: u64,
    shadows: &[&str],
    kept: &[(&str, &str)],
    upstreams: &[UpstreamCount],
) -> Vec<Check> {
    let mut out = Vec::new();
    let exact = |route: &str, expected: u64| {
        let got = sampled(m, route);
        check(
            format!("sent + skipped = sampled, route {route}"),
            got == expected,
            format!(
                "sent {} + skipped {} = {got}, sampled {expected}",
                m.sent(Some(route), None),
                m.skipped(Some(route), None, None)
            ),
        )
    };
    out.push(exact("api", sent.api));
    out.push(exact("grpc", sent.grpc * copies_grpc));
    let probe = sampled(m, "probe");
    out.push(check(
        "route probe (destination switching): sent + skipped at most sampled",
        probe <= sent.probe,
        format!(
            "{probe} counted since the last restart of its counters, {} sampled",
            sent.probe
        ),
    ));
    let default = sampled(m, "default");
    out.push(check(
        "sent + skipped = sampled, route default (sampleBy, 10 % or 30 %)",
        (sent.default_in_low..=sent.default_in_high).contains(&default),
        format!(
            "sent {} + skipped {} = {default}; keys in the 10 % sample {}, in the 30 % sample {} (of {})",
            m.sent(Some("default"), None),
            m.skipped(Some("default"), None, None),
            sent.default_in_low,
            sent.default_in_high,
            sent.default
        ),
    ));
    let extra_to_shadows: u64 = shadows
        .iter()
        .map(|s| m.sent(Some("extra"), Some(s)) + m.skipped(Some("extra"), Some(s), None))
        .sum();
    let extra = sampled(m, "extra");
    out.push(check(
        "route extra copies only through its entry",
        extra_to_shadows == 0 && extra <= sent.extra,
        format!(
            "{extra} of {} sampled, {extra_to_shadows} of them to the shadows",
            sent.extra
        ),
    ));

    // sent = answered + failed, per route and destination kept throughout.
    let pairs: BTreeSet<(String, String)> = kept.iter().map(|(r, d)| ((*r).to_owned(), (*d).to_owned())).collect();
    let mut unbalanced = Vec::new();
    for (route, dest) in &pairs {
        let s = m.sent(Some(route), Some(dest));
        let r = m.responses(Some(route), Some(dest), None);
        if s != r {
            unbalanced.push(format!("{route}/{dest}: sent {s}, ended {r}"));
        }
    }
    out.push(check(
        "sent = answered + failed, by route and destination (the pairs kept throughout)",
        unbalanced.is_empty() && !pairs.is_empty(),
        if unbalanced.is_empty() {
            format!(
                "{} sent, {} ended, over {} route/destination pairs ({} sent, {} ended over all)",
                pairs.iter().map(|(r, d)| m.sent(Some(r), Some(d))).sum::<u64>(),
                pairs
                    .iter()
                    .map(|(r, d)| m.responses(Some(r), Some(d), None))
                    .sum::<u64>(),
                pairs.len(),
                m.sent(None, None),
                m.responses(None, None, None)
            )
        } else {
            unbalanced.join("; ")
        },
    ));

    // What each upstream received and answered against how the copies to it ended.
    for upstream in upstreams {
        let dest = Some(upstream.cluster.as_str());
        let answered: u64 = ResponseClass::all()
            .filter(|c| answered_class(*c))
            .map(|c| m.responses(None, dest, Some(c)))
            .sum();
        let unanswered =
            m.responses(None, dest, Some(ResponseClass::Timeout)) + m.responses(None, dest, Some(ResponseClass::Reset));
        let refused = m.responses(None, dest, Some(ResponseClass::ConnectFailure));
        let delivered = m.sent(None, dest) - refused.min(m.sent(None, dest));
        if !upstream.exact {
            out.push(check(
                format!("{}: received at least sent - connect_failure", upstream.cluster),
                upstream.received >= delivered && upstream.answered >= answered,
                format!(
                    "received {}, answered {}; counted since the last restart of the counters: sent {} - \
                     connect_failure {refused} = {delivered}, answered classes {answered}",
                    upstream.received,
                    upstream.answered,
                    m.sent(None, dest)
                ),
            ));
            continue;
        }
        out.push(check(
            format!("{}: received = sent - connect_failure", upstream.cluster),
            upstream.received == delivered,
            format!(
                "received {}, sent {} - connect_failure {refused} = {delivered}",
                upstream.received,
                m.sent(None, dest)
            ),
        ));
        out.push(check(
            format!("{}: answered = copies ended with an answer", upstream.cluster),
            upstream.answered == answered,
            format!(
                "answered {}, answered classes {answered}; received and unanswered {}, timeout + reset {unanswered}",
                upstream.answered,
                upstream.received.saturating_sub(upstream.answered)
            ),
        ));
    }

    // Comparison: route api always compares, so every copy sent there ends
    // in exactly one result; overflow would mean the pairing table filled
    // (leaked pairs accumulate into it).
    let compared = m.compared(Some("api"), None, None);
    out.push(check(
        "compare: every copy sent on route api has one result",
        compared == m.sent(Some("api"), None),
        format!("results {compared}, sent {}", m.sent(Some("api"), None)),
    ));
    // In-flight slots: no gauge shows them, but a leaked slot never comes
    // back, and 128 leaks on a worker (its maxInFlight) would turn every
    // later copy into an in_flight_limit skip. The load never fills them
    // otherwise: a stuck shadow holds a worker's copies for 1 s, about 50.
    let in_flight = m.skipped(None, None, Some(SkipReason::InFlightLimit));
    out.push(check(
        "no in_flight_limit skip (no leaked in-flight slot)",
        in_flight == 0,
        format!("in_flight_limit {in_flight}"),
    ));
    let overflow = m.compared(None, None, Some(CompareResult::Overflow));
    out.push(check(
        "compare: no pairing-table overflow",
        overflow == 0,
        format!("overflow {overflow}"),
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    const SHADOWS: [&str; 2] = ["a", "b"];
    const KEPT: [(&str, &str); 3] = [("api", "a"), ("grpc", "b"), ("default", "b")];

    /// A consistent run: 10 api requests (8 sent to a: 6 answered 2xx, 1
    /// timeout, 1 refused; 2 rate-limited), 3 gRPC calls × 2 copies to b
    /// (grpc_unavailable), 2 probes to the witness, default: 1 sent of keys
    /// 1..=2 in the sample.
    fn text() -> String {
        let mut lines = vec![
            r#"vrata_mirror_requests_total{route="api",destination="a"} 8"#,
            r#"vrata_mirror_skipped_total{route="api",destination="a",reason="rate_limited"} 2"#,
            r#"vrata_mirror_responses_total{route="api",destination="a",class="2xx"} 6"#,
            r#"vrata_mirror_responses_total{route="api",destination="a",class="timeout"} 1"#,
            r#"vrata_mirror_responses_total{route="api",destination="a",class="connect_failure"} 1"#,
            r#"vrata_mirror_compare_total{route="api",destination="a",result="match"} 6"#,
            r#"vrata_mirror_compare_total{route="api",destination="a",result="shadow_failed"} 2"#,
            r#"vrata_mirror_requests_total{route="grpc",destination="b"} 6"#,
            r#"vrata_mirror_responses_total{route="grpc",destination="b",class="grpc_unavailable"} 6"#,
            r#"vrata_mirror_requests_total{route="probe",destination="w"} 2"#,
            r#"vrata_mirror_responses_total{route="probe",destination="w",class="2xx"} 2"#,
            r#"vrata_mirror_requests_total{route="default",destination="b"} 1"#,
            r#"vrata_mirror_responses_total{route="default",destination="b",class="2xx"} 1"#,
            "# TYPE x counter",
        ];
        lines.push(r#"vrata_mirror_response_time_ms_bucket{route="api",destination="a",le="1"} 3"#);
        lines.join("\n")
    }

    fn sent() -> Sent {
        Sent {
            api: 10,
            grpc: 3,
            probe: 2,
            default: 20,
            default_in_low: 1,
            default_in_high: 2,
            extra: 0,
        }
    }

    fn upstreams() -> Vec<UpstreamCount> {
        vec![
            UpstreamCount {
                cluster: "a".into(),
                received: 7,
                answered: 6,
                exact: true,
            },
            UpstreamCount {
                cluster: "b".into(),
                received: 7,
                answered: 7,
                exact: true,
            },
            UpstreamCount {
                cluster: "w".into(),
                received: 3,
                answered: 3,
                exact: false,
            },
        ]
    }

    fn failing(checks: &[Check]) -> Vec<String> {
        checks.iter().filter(|c| !c.ok).map(|c| c.name.clone()).collect()
    }

    #[test]
    fn a_consistent_run_passes_every_check() {
        let checks = checks(&Metrics::parse(&text()), &sent(), 2, &SHADOWS, &KEPT, &upstreams());
        assert_eq!(failing(&checks), Vec::<String>::new(), "{checks:#?}");
        assert!(checks.len() >= 14);
    }

    #[test]
    fn a_lost_skip_fails_the_sampled_identity() {
        let mut s = sent();
        s.api = 11;
        let checks = checks(&Metrics::parse(&text()), &s, 2, &SHADOWS, &KEPT, &upstreams());
        assert_eq!(failing(&checks), vec!["sent + skipped = sampled, route api"]);
    }

    #[test]
    fn a_copy_that_never_ended_fails_sent_equals_ended() {
        let text = text().replace(
            r#"vrata_mirror_requests_total{route="grpc",destination="b"} 6"#,
            r#"vrata_mirror_requests_total{route="grpc",destination="b"} 7"#,
        );
        let mut s = sent();
        s.grpc = 3; // 7 sent of 6 sampled also breaks the grpc identity
        let f = failing(&checks(&Metrics::parse(&text), &s, 2, &SHADOWS, &KEPT, &upstreams()));
        assert!(
            f.contains(&"sent = answered + failed, by route and destination (the pairs kept throughout)".to_owned()),
            "{f:?}"
        );
        assert!(f.contains(&"b: received = sent - connect_failure".to_owned()), "{f:?}");
    }

    #[test]
    fn a_shadow_that_answered_more_than_envoy_saw_fails() {
        let mut ups = upstreams();
        ups[0].answered = 7;
        let f = failing(&checks(&Metrics::parse(&text()), &sent(), 2, &SHADOWS, &KEPT, &ups));
        assert_eq!(f, vec!["a: answered = copies ended with an answer"]);
    }

    #[test]
    fn default_route_outside_its_key_bounds_fails_and_extra_to_a_shadow_fails() {
        let mut s = sent();
        s.default_in_high = 0;
        s.default_in_low = 0;
        let text = text() + "\n" + r#"vrata_mirror_skipped_total{route="extra",destination="a",reason="backoff"} 1"#;
        let f = failing(&checks(&Metrics::parse(&text), &s, 2, &SHADOWS, &KEPT, &upstreams()));
        assert!(f.iter().any(|n| n.contains("route default")), "{f:?}");
        assert!(
            f.contains(&"route extra copies only through its entry".to_owned()),
            "{f:?}"
        );
    }

    #[test]
    fn overflow_and_missing_results_fail() {
        let text = text().replace(r#"result="match"} 6"#, r#"result="overflow"} 5"#);
        let f = failing(&checks(
            &Metrics::parse(&text),
            &sent(),
            2,
            &SHADOWS,
            &KEPT,
            &upstreams(),
        ));
        assert!(f.contains(&"compare: no pairing-table overflow".to_owned()), "{f:?}");
        assert!(
            f.contains(&"compare: every copy sent on route api has one result".to_owned()),
            "{f:?}"
        );
    }

    #[test]
    fn an_in_flight_limit_skip_fails() {
        let text = text().replace("rate_limited", "in_flight_limit");
        let f = failing(&checks(
            &Metrics::parse(&text),
            &sent(),
            2,
            &SHADOWS,
            &KEPT,
            &upstreams(),
        ));
        assert_eq!(f, vec!["no in_flight_limit skip (no leaked in-flight slot)"]);
    }

    #[test]
    fn sums_match_label_subsets() {
        let m = Metrics::parse(&text());
        assert_eq!(m.sent(None, None), 17);
        assert_eq!(m.sent(Some("api"), None), 8);
        assert_eq!(m.responses(None, Some("a"), Some(ResponseClass::Timeout)), 1);
        assert_eq!(m.skipped(None, None, Some(SkipReason::RateLimited)), 2);
    }
}
