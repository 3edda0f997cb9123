//! `vrata-mirror report`: what a running Envoy mirrored, per route and
//! destination, from its admin interface (`/stats?format=json`, whose stat
//! names carry the labels whatever the `stats_tags`, so it reads an Istio
//! sidecar the same). Metric names and labels come from the catalogue.

use crate::Failure;
use std::collections::BTreeMap;
use std::time::Duration;
use vrata_mirror_core::compare::noise::is_real;
use vrata_mirror_core::compare::CompareResult;
use vrata_mirror_core::config::{self, NoisePolicy, PluginConfig};
use vrata_mirror_core::telemetry::catalogue::{Label, MetricKind, FIELD_KINDS};
use vrata_mirror_core::telemetry::names::{
    self, COMPARE_TOTAL, FIELD_DIFFERENCES_TOTAL, LATENCY_MS, NOISE_REQUESTS_TOTAL, PRIMARY_LATENCY_MS, REQUESTS_TOTAL,
    RESPONSES_TOTAL, SKIPPED_TOTAL,
};
use vrata_mirror_core::telemetry::ResponseClass;
use vrata_mirror_render::observability::{is_compared, is_error, is_mismatch};

/// Print, per route and destination: copies sent, copies skipped by
/// reason, the shadow's answers by class with the error share, and p50/p99
/// of the shadow's latency (from the histogram, as of Envoy's last stats
/// flush). Where mirrors compare (vrata_mirror_compare.wasm), also p50/p99
/// of the primary on the compared requests, the comparison results by kind
/// and the mismatch share.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Envoy's admin interface, e.g. http://127.0.0.1:9901.
    #[arg(long, value_name = "URL")]
    pub admin: String,
    /// Re-read every SECONDS and print rates over each interval.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch: Option<u64>,
    /// With --watch: stop after this many intervals (default: until interrupted).
    #[arg(long, value_name = "N", requires = "watch")]
    pub intervals: Option<u64>,
    /// Noise cancellation (compare.secondary): list each endpoint's
    /// differing fields with their raw and noise counts and the verdict
    /// instead of the table.
    #[arg(long, conflicts_with = "watch")]
    pub fields: bool,
    /// With --fields: the plugin configuration (JSON), whose compare.noise
    /// thresholds judge the fields of each mirror's destination (default:
    /// Diffy's, 20 % and 0.03 %, after 3334 requests).
    #[arg(long, value_name = "FILE", requires = "fields")]
    pub config: Option<std::path::PathBuf>,
}

/// One endpoint's noise counts (`compare.secondary`), from the
/// `vrata_mirror_noise_requests_total` and `vrata_mirror_field_differences_total` counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    /// Requests counted (both answers, equal statuses).
    pub requests: f64,
    /// By field label: raw and noise counts.
    pub fields: BTreeMap<String, (f64, f64)>,
}

/// Route, destination and method.
pub type EndpointKey = (String, String, String);

/// Everything the filter reports for one route and destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub sent: f64,
    /// By skip reason.
    pub skipped: BTreeMap<String, f64>,
    /// By response class.
    pub answers: BTreeMap<String, f64>,
    /// The latency histogram: (upper bound in ms, cumulative count).
    pub buckets: Vec<(f64, f64)>,
    /// By comparison result (mirrors with `compare` only).
    pub compare: BTreeMap<String, f64>,
    /// The primary's latency histogram on the compared requests.
    pub primary_buckets: Vec<(f64, f64)>,
}

impl Series {
    /// Whether the comparison metrics exist for it.
    pub fn compares(&self) -> bool {
        !self.compare.is_empty() || !self.primary_buckets.is_empty()
    }
}

/// Route and destination.
pub type Key = (String, String);

/// One reading of Envoy's stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub series: BTreeMap<Key, Series>,
    /// With compare.secondary: per endpoint.
    pub endpoints: BTreeMap<EndpointKey, Endpoint>,
}

impl Snapshot {
    /// Reads `/stats?format=json` (with cumulative histogram buckets).
    pub fn from_json(text: &str) -> Result<Snapshot, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("the admin interface's /stats is not JSON: {e}"))?;
        let stats = json
            .get("stats")
            .and_then(serde_json::Value::as_array)
            .ok_or("the admin interface's /stats has no \"stats\" list")?;
        let mut snapshot = Snapshot::default();
        for stat in stats {
            if let (Some(name), Some(value)) = (stat.get("name").and_then(|n| n.as_str()), stat.get("value")) {
                snapshot.counter(name, value.as_f64().unwrap_or(0.0));
            }
            if let Some(histograms) = stat.get("histograms").and_then(|h| h.as_array()) {
                for histogram in histograms {
                    snapshot.histogram(histogram);
                }
            }
        }
        Ok(snapshot)
    }

    fn entry(&mut self, decoded: &names::Decoded) -> Option<&mut Series> {
        let route = decoded.label(Label::Route)?.to_owned();
        let destination = decoded.label(Label::Destination)?.to_owned();
        Some(self.series.entry((route, destination)).or_default())
    }

    fn counter(&mut self, name: &str, value: f64) {
        let Some(decoded) = names::decode(name) else { return };
        if decoded.metric.kind != MetricKind::Counter {
            return;
        }
        if matches!(decoded.metric.name, NOISE_REQUESTS_TOTAL | FIELD_DIFFERENCES_TOTAL) {
            self.endpoint_counter(&decoded, value);
            return;
        }
        let reason = decoded.label(Label::Reason).map(str::to_owned);
        let class = decoded.label(Label::Class).map(str::to_owned);
        let result = decoded.label(Label::Result).map(str::to_owned);
        let metric = decoded.metric.name;
        let Some(series) = self.entry(&decoded) else { return };
        match (metric, reason, class, result) {
            (REQUESTS_TOTAL, ..) => series.sent += value,
            (SKIPPED_TOTAL, Some(reason), _, _) => *series.skipped.entry(reason).or_default() += value,
            (RESPONSES_TOTAL, _, Some(class), _) => *series.answers.entry(class).or_default() += value,
            (COMPARE_TOTAL, _, _, Some(result)) => *series.compare.entry(result).or_default() += value,
            _ => {}
        }
    }

    fn endpoint_counter(&mut self, decoded: &names::Decoded, value: f64) {
        let label = |l: Label| decoded.label(l).map(str::to_owned);
        let (Some(route), Some(destination), Some(method)) =
            (label(Label::Route), label(Label::Destination), label(Label::Method))
        else {
            return;
        };
        let endpoint = self.endpoints.entry((route, destination, method)).or_default();
        match (label(Label::Field), decoded.label(Label::Kind)) {
            (None, _) => endpoint.requests += value,
            (Some(field), Some(kind)) => {
                let counts = endpoint.fields.entry(field).or_default();
                if kind == FIELD_KINDS[0] {
                    counts.0 += value;
                } else {
                    counts.1 += value;
                }
            }
            (Some(_), None) => {}
        }
    }

    fn histogram(&mut self, histogram: &serde_json::Value) {
        let Some(decoded) = histogram.get("name").and_then(|n| n.as_str()).and_then(names::decode) else {
            return;
        };
        let primary = match decoded.metric.name {
            LATENCY_MS => false,
            PRIMARY_LATENCY_MS => true,
            _ => return,
        };
        let buckets: Vec<(f64, f64)> = histogram
            .get("buckets")
            .and_then(|b| b.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|b| Some((b.get("upper_bound")?.as_f64()?, b.get("cumulative")?.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(series) = self.entry(&decoded) {
            if primary {
                series.primary_buckets = buckets;
            } else {
                series.buckets = buckets;
            }
        }
    }

    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut delta = Snapshot {
            endpoints: self.endpoints.clone(),
            ..Snapshot::default()
        };
        for (key, now) in &self.series {
            let before = earlier.series.get(key).cloned().unwrap_or_default();
            let diff = |now: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
                now.iter()
                    .map(|(k, v)| (k.clone(), (v - before.get(k).copied().unwrap_or(0.0)).max(0.0)))
                    .collect()
            };
            let buckets = |now: &[(f64, f64)], before: &[(f64, f64)]| -> Vec<(f64, f64)> {
                now.iter()
                    .map(|(bound, count)| {
                        let was = before.iter().find(|(b, _)| b == bound).map_or(0.0, |(_, c)| *c);
                        (*bound, (count - was).max(0.0))
                    })
                    .collect()
            };
            delta.series.insert(
                key.clone(),
                Series {
                    sent: (now.sent - before.sent).max(0.0),
                    skipped: diff(&now.skipped, &before.skipped),
                    answers: diff(&now.answers, &before.answers),
                    buckets: buckets(&now.buckets, &before.buckets),
                    compare: diff(&now.compare, &before.compare),
                    primary_buckets: buckets(&now.primary_buckets, &before.primary_buckets),
                },
            );
        }
        delta
    }
}

fn class_is_error(label: &str) -> bool {
    ResponseClass::all().any(|c| c.label() == label && is_error(c))
}

fn result_is(label: &str, keep: fn(CompareResult) -> bool) -> bool {
    CompareResult::ALL.iter().any(|r| r.label() == label && keep(*r))
}

/// Mismatches over compared answers (match + status_mismatch +
/// body_mismatch), as the dashboard and the mismatch alert define it.
fn mismatch_share(compare: &BTreeMap<String, f64>) -> String {
    let sum = |keep: fn(CompareResult) -> bool| {
        compare
            .iter()
            .filter(|(result, _)| result_is(result, keep))
            .fold(0.0, |a, (_, v)| a + v)
    };
    let compared = sum(is_compared);
    if compared > 0.0 {
        format!("{:.1}%", 100.0 * sum(is_mismatch) / compared)
    } else {
        "-".to_owned()
    }
}

/// The `q` quantile (0..1) of a cumulative histogram, as Prometheus'
/// `histogram_quantile` computes it: linear within the bucket the rank
/// falls in. `None` without samples.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            let in_bucket = count - lower.1;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower.0 + (bound - lower.0) * (rank - lower.1) / in_bucket);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

fn number(value: f64, per: Option<f64>) -> String {
    match per {
        Some(seconds) => format!("{:.1}/s", value / seconds),
        None => format!("{value:.0}"),
    }
}

fn counts(map: &BTreeMap<String, f64>, per: Option<f64>) -> String {
    let shown: Vec<String> = map
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| format!("{k} {}", number(*v, per)))
        .collect();
    if shown.is_empty() {
        "-".to_owned()
    } else {
        shown.join(", ")
    }
}

fn millis(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms < 10.0 => format!("{ms:.2}"),
        Some(ms) => format!("{ms:.1}"),
        None => "-".to_owned(),
    }
}

/// The table: one row per route and destination. `per`: the interval in
/// seconds, to print rates instead of totals.
/// With comparison metrics (any mirror with `compare`), four more
/// columns: the primary's p50/p99 on the compared requests next to the
/// shadow's, the comparison results by kind and the mismatch share.
pub fn table(snapshot: &Snapshot, per: Option<f64>) -> String {
    let compares = snapshot.series.values().any(Series::compares);
    let mut header = vec![
        "ROUTE",
        "DESTINATION",
        if per.is_some() { "SENT/S" } else { "SENT" },
        "SKIPPED (BY REASON)",
        "SHADOW ANSWERS (BY CLASS)",
        "ERRORS",
    ];
    if compares {
        header.extend([
            "SHADOW P50 MS",
            "SHADOW P99 MS",
            "PRIMARY P50 MS",
            "PRIMARY P99 MS",
            "COMPARED (BY RESULT)",
            "MISMATCH",
        ]);
    } else {
        header.extend(["P50 MS", "P99 MS"]);
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for ((route, destination), series) in &snapshot.series {
        let answered = series.answers.values().fold(0.0, |a, v| a + v);
        let errors = series
            .answers
            .iter()
            .filter(|(class, _)| class_is_error(class))
            .fold(0.0, |a, (_, v)| a + v);
        let share = if answered > 0.0 {
            format!("{:.1}%", 100.0 * errors / answered)
        } else {
            "-".to_owned()
        };
        let mut row = vec![
            route.clone(),
            destination.clone(),
            number(series.sent, per),
            counts(&series.skipped, per),
            counts(&series.answers, per),
            share,
            millis(quantile(&series.buckets, 0.5)),
            millis(quantile(&series.buckets, 0.99)),
        ];
        if compares {
            row.extend([
                millis(quantile(&series.primary_buckets, 0.5)),
                millis(quantile(&series.primary_buckets, 0.99)),
                counts(&series.compare, per),
                mismatch_share(&series.compare),
            ]);
        }
        rows.push(row);
    }
    if rows.len() == 1 {
        return "no vrata_mirror metrics yet: nothing was mirrored (or the filter is not loaded)\n".to_owned();
    }
    aligned(&rows)
}

/// Rows of cells as left-aligned columns two spaces apart, one line each.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The admin interface's base URL (`http://` added when missing).
pub fn admin_base(admin: &str) -> Result<String, Failure> {
    let base = admin.trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(Failure::new(format!(
            "--admin {admin}: https is not supported (Envoy's admin interface is plain HTTP)"
        )));
    }
    if base.starts_with("http://") {
        Ok(base.to_owned())
    } else if base.contains("://") {
        Err(Failure::new(format!("--admin {admin}: expected http://HOST:PORT")))
    } else {
        Ok(format!("http://{base}"))
    }
}

/// One reading of `admin`.
pub fn read(admin: &str) -> Result<Snapshot, Failure> {
    let base = admin_base(admin)?;
    let url = format!("{base}/stats?format=json&filter=vrata_mirror&histogram_buckets=cumulative");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let text = agent
        .get(&url)
        .call()
        .and_then(|mut response| response.body_mut().read_to_string())
        .map_err(|e| Failure::new(format!("cannot read {base}/stats: {e}")))?;
    Snapshot::from_json(&text).map_err(Failure::new)
}

/// The thresholds a field of `destination`'s mirror is judged by: its
/// `compare.noise` in `config`, else Diffy's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub relative_ppm: u32,
    pub absolute_ppm: u32,
    pub min_requests: u64,
}

impl Thresholds {
    pub const DIFFY: Thresholds = Thresholds {
        relative_ppm: config::DEFAULT_NOISE_RELATIVE_PPM,
        absolute_ppm: config::DEFAULT_NOISE_ABSOLUTE_PPM,
        min_requests: config::DEFAULT_NOISE_MIN_REQUESTS,
    };

    fn of(policy: &NoisePolicy) -> Thresholds {
        Thresholds {
            relative_ppm: policy.relative_ppm,
            absolute_ppm: policy.absolute_ppm,
            min_requests: policy.min_requests,
        }
    }

    /// The thresholds of the first mirror to `destination` with a secondary.
    pub fn for_destination(config: Option<&PluginConfig>, destination: &str) -> Thresholds {
        let Some(config) = config else {
            return Thresholds::DIFFY;
        };
        std::iter::once(&config.default_policy)
            .chain(config.routes.iter().map(|(_, policy)| policy))
            .flat_map(|policy| policy.mirrors.iter())
            .filter(|mirror| mirror.destination == destination)
            .find_map(|mirror| mirror.compare.as_ref()?.noise.as_ref())
            .map_or(Thresholds::DIFFY, Thresholds::of)
    }
}

/// `--fields`: per endpoint (route, destination, method) its requests and
/// each differing field with its raw and noise counts and the verdict by
/// Diffy's rule (`real`, `noise`; `learning` before `minRequests`), the
/// real ones first. Counts are whole numbers: totals since Envoy started.
pub fn fields_table(snapshot: &Snapshot, config: Option<&PluginConfig>) -> String {
    let header = [
        "ROUTE",
        "DESTINATION",
        "METHOD",
        "REQUESTS",
        "FIELD",
        "RAW",
        "NOISE",
        "VERDICT",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for ((route, destination, method), endpoint) in &snapshot.endpoints {
        let t = Thresholds::for_destination(config, destination);
        let requests = endpoint.requests.max(0.0) as u64;
        let mut fields: Vec<(&String, u64, u64, &str)> = endpoint
            .fields
            .iter()
            .map(|(field, (raw, noise))| {
                let counts = vrata_mirror_core::compare::noise::Counts {
                    raw: raw.max(0.0) as u64,
                    noise: noise.max(0.0) as u64,
                };
                let verdict = if requests < t.min_requests {
                    "learning"
                } else if is_real(counts, requests, t.relative_ppm, t.absolute_ppm) {
                    "real"
                } else {
                    "noise"
                };
                (field, counts.raw, counts.noise, verdict)
            })
            .collect();
        fields.sort_by_key(|(field, .., verdict)| (*verdict != "real", (*field).clone()));
        for (field, raw, noise, verdict) in fields {
            rows.push(vec![
                route.clone(),
                destination.clone(),
                method.clone(),
                requests.to_string(),
                field.clone(),
                raw.to_string(),
                noise.to_string(),
                verdict.to_owned(),
            ]);
        }
    }
    if rows.len() == 1 {
        return "no noise counts yet: no mirror with compare.secondary has compared a request\n".to_owned();
    }
    aligned(&rows)
}

/// A one-off report: totals since Envoy started.
pub fn once(args: &ReportArgs) -> Result<String, Failure> {
    let snapshot = read(&args.admin)?;
    if args.fields {
        let config = match &args.config {
            Some(path) => Some(crate::check::check(&crate::read_config(path)?).map_err(Failure::new)?),
            None => None,
        };
        let judged = match &args.config {
            Some(path) => format!("thresholds from {}", path.display()),
            None => "Diffy's thresholds (20 %, 0.03 %, after 3334 requests; --config for a plugin's own)".to_owned(),
        };
        return Ok(format!(
            "{} — noise counts since Envoy started; {judged}\n\n{}",
            admin_base(&args.admin)?,
            fields_table(&snapshot, config.as_ref())
        ));
    }
    Ok(format!(
        "{} — totals since Envoy started; latency as of its last stats flush\n\n{}",
        admin_base(&args.admin)?,
        table(&snapshot, None)
    ))
}

/// `--watch`: a table of rates after each interval, written to `out`.
pub fn watch(args: &ReportArgs, seconds: u64, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let mut before = read(&args.admin)?;
    let mut printed = 0;
    loop {
        std::thread::sleep(Duration::from_secs(seconds));
        let now = read(&args.admin)?;
        let text = format!(
            "{} — the last {seconds} s: rates per second; latency from Envoy's stats flushes in it\n\n{}\n",
            admin_base(&args.admin)?,
            table(&now.since(&before), Some(seconds as f64))
        );
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::new(format!("cannot write the report: {e}")))?;
        before = now;
        printed += 1;
        if args.intervals.is_some_and(|n| printed >= n) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_like_prometheus() {
        let buckets = [(1.0, 0.0), (5.0, 50.0), (10.0, 100.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(5.0));
        assert_eq!(quantile(&buckets, 0.25), Some(3.0));
        assert_eq!(quantile(&buckets, 0.99), Some(9.9));
        assert_eq!(quantile(&[(1.0, 0.0)], 0.5), None);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn errors_are_undelivered_copies_5xx_and_grpc_errors() {
        for (label, error) in [
            ("2xx", false),
            ("4xx", false),
            ("5xx", true),
            ("grpc_ok", false),
            ("grpc_unavailable", true),
            ("grpc_missing_status", true),
            ("timeout", true),
            ("reset", true),
            ("connect_failure", true),
            ("too_large_or_reset", true),
            ("body_too_large", false),
            ("incomplete", false),
        ] {
            assert_eq!(class_is_error(label), error, "{label}");
        }
    }

    #[test]
    fn a_snapshot_reads_envoys_stats_json_and_rates_are_differences() {
        let text = r#"{"stats":[
          {"name":"wasmcustom.route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total","value":10},
          {"name":"wasmcustom.route=.=api;.;destination=.=shadow;.;reason=.=backoff;.;vrata_mirror_skipped_total","value":3},
          {"name":"wasmcustom.route=.=api;.;destination=.=shadow;.;class=.=2xx;.;vrata_mirror_responses_total","value":8},
          {"name":"wasmcustom.route=.=api;.;destination=.=shadow;.;class=.=timeout;.;vrata_mirror_responses_total","value":2},
          {"name":"cluster.shadow.upstream_rq_total","value":99},
          {"histograms":[{"name":"wasmcustom.route=.=api;.;destination=.=shadow;.;vrata_mirror_response_time_ms",
            "buckets":[{"upper_bound":1,"interval":0,"cumulative":4},{"upper_bound":5,"interval":0,"cumulative":8}]}]}
        ]}"#;
        let snapshot = Snapshot::from_json(text).unwrap();
        let series = &snapshot.series[&("api".to_owned(), "shadow".to_owned())];
        assert_eq!(series.sent, 10.0);
        assert_eq!(series.skipped["backoff"], 3.0);
        assert_eq!(series.answers["timeout"], 2.0);
        let shown = table(&snapshot, None);
        assert!(shown.contains("api    shadow       10    backoff 3"), "{shown}");
        assert!(shown.contains("2xx 8, timeout 2"), "{shown}");
        assert!(shown.contains("20.0%"), "{shown}");
        assert!(shown.contains("  1.00  "), "{shown}");
        let delta = snapshot.since(&Snapshot::default());
        assert_eq!(
            table(&delta, Some(2.0)).lines().nth(1).map(|l| l.contains("5.0/s")),
            Some(true)
        );
        assert_eq!(
            snapshot.since(&snapshot).series[&("api".to_owned(), "shadow".to_owned())].sent,
            0.0
        );
        assert!(!shown.contains("MISMATCH") && !shown.contains("PRIMARY"), "{shown}");
    }

    #[test]
    fn comparison_columns_appear_only_with_the_comparison_metrics() {
        let text = r#"{"stats":[
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;vrata_mirror_requests_total","value":10},
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;class=.=2xx;.;vrata_mirror_responses_total","value":10},
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;result=.=match;.;vrata_mirror_compare_total","value":6},
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;result=.=status_mismatch;.;vrata_mirror_compare_total","value":1},
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;result=.=body_mismatch;.;vrata_mirror_compare_total","value":1},
          {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;result=.=shadow_failed;.;vrata_mirror_compare_total","value":2},
          {"name":"wasmcustom.route=.=home;.;destination=.=shadow;.;vrata_mirror_requests_total","value":3},
          {"histograms":[
            {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;vrata_mirror_response_time_ms",
             "buckets":[{"upper_bound":1,"interval":0,"cumulative":0},{"upper_bound":5,"interval":0,"cumulative":10}]},
            {"name":"wasmcustom.route=.=api;.;destination=.=canary;.;vrata_mirror_primary_response_time_ms",
             "buckets":[{"upper_bound":10,"interval":0,"cumulative":0},{"upper_bound":50,"interval":0,"cumulative":10}]}]}
        ]}"#;
        let snapshot = Snapshot::from_json(text).unwrap();
        let shown = table(&snapshot, None);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[0].ends_with("SHADOW P50 MS  SHADOW P99 MS  PRIMARY P50 MS  PRIMARY P99 MS  COMPARED (BY RESULT)                                          MISMATCH"),
            "{shown}"
        );
        // Shadow 1..5 ms, primary 10..50 ms; 2 of 8 compared differ
        // (shadow_failed is not compared).
        let api: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(api[7..11], ["3.00", "4.96", "30.0", "49.6"], "{shown}");
        assert!(
            lines[1].contains("body_mismatch 1, match 6, shadow_failed 2, status_mismatch 1  25.0%"),
            "{shown}"
        );
        // A mirror without compare: dashes.
        let home: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(home[..3], ["home", "shadow", "3"], "{shown}");
        assert_eq!(home[3..], ["-"; 9], "{shown}");
        let delta = snapshot.since(&Snapshot::default());
        assert!(
            table(&delta, Some(2.0)).contains("match 3.0/s"),
            "{}",
            table(&delta, Some(2.0))
        );
    }
}
