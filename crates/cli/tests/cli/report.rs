//! `vrata-mirror report` against a real Envoy (configured by `vrata-mirror
//! envoy`): copies sent, answers by class with the error share, latency
//! quantiles, skips; `--watch` rates; one-line errors; with the comparison
//! module, the comparison columns. Each on both hosts: the wasm module and
//! the native host (the dynamic module), whose stat names differ
//! (`vrata_mirror.requests_total.route.api...`): the report reads both.

use crate::{envoy_from_command_with, texts, vrata_mirror, TempFile};
use std::time::Duration;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::envoy::{compare_module, native_module, wasm_module, Envoy};

/// Which host a report test runs: the module's flag and path.
#[derive(Clone, Copy)]
enum Host {
    Wasm,
    /// `vrata_mirror_compare.wasm`.
    WasmCompare,
    Native,
}

impl Host {
    fn module(self) -> (&'static str, std::path::PathBuf) {
        match self {
            Host::Wasm => ("--wasm", wasm_module()),
            Host::WasmCompare => ("--wasm", compare_module()),
            Host::Native => ("--dynamic-module", native_module()),
        }
    }
}
use vrata_mirror_testkit::upstream::{closed_port, Behaviour, Upstream};

/// An Envoy mirroring route `api` to `shadow` and the default route to
/// `dead` (a closed port), its stats flushed every 200 ms.
async fn start(primary: &Upstream, shadow: &Upstream, host: Host) -> (Envoy, TempFile) {
    let plugin = br#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirror": {"destinationId": "dead"}},
             "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow"}}}}}"#;
    start_with(primary, shadow, plugin, host).await
}

async fn start_with(primary: &Upstream, shadow: &Upstream, plugin: &[u8], host: Host) -> (Envoy, TempFile) {
    let (flag, module) = host.module();
    let plugin = TempFile::new("plugin.json", plugin);
    let clusters = [
        format!("primary=127.0.0.1:{}", primary.port()),
        format!("shadow=127.0.0.1:{}", shadow.port()),
        format!("dead=127.0.0.1:{}", closed_port()),
    ];
    let envoy = envoy_from_command_with(&plugin, flag, &module, &clusters, "0.2s").await;
    (envoy, plugin)
}

fn row<'a>(report: &'a str, route: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{route} ")))
        .unwrap_or_else(|| panic!("no row for {route}:\n{report}"))
}

/// The cell of `route`'s row under `column` (the columns are left-aligned).
fn cell<'a>(report: &'a str, route: &str, column: &str) -> &'a str {
    let header = report.lines().find(|l| l.starts_with("ROUTE")).unwrap();
    let start = header
        .find(column)
        .unwrap_or_else(|| panic!("no column {column}: {report}"));
    let after = start + column.len();
    let end = header[after..].find(|c: char| c != ' ').map(|i| after + i);
    let line = row(report, route);
    let end = end.map_or(line.len(), |e| e.min(line.len()));
    line.get(start..end).unwrap_or("").trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_what_envoy_mirrored_per_route_and_destination() {
    report_shows_what_envoy_mirrored(Host::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_what_the_native_host_mirrored_per_route_and_destination() {
    report_shows_what_envoy_mirrored(Host::Native).await;
}

async fn report_shows_what_envoy_mirrored(host: Host) {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let (envoy, _plugin) = start(&primary, &shadow, host).await;
    for _ in 0..20 {
        assert_eq!(client::http1("GET", &envoy.url("/api/x"), &[], "").await.status, 200);
    }
    for _ in 0..5 {
        assert_eq!(client::http1("GET", &envoy.url("/other"), &[], "").await.status, 200);
    }
    shadow.wait_for(20, Duration::from_secs(10)).await;
    // Counters are live; histograms are as of the last flush (every 200 ms).
    let admin = format!("http://{}", envoy.admin);
    let mut report = String::new();
    for _ in 0..50 {
        let output = vrata_mirror(&["report", "--admin", &admin]);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{stderr}");
        report = stdout;
        let api = row(&report, "api");
        if api.contains("2xx 20")
            && !api.trim_end().ends_with('-')
            && row(&report, "default").contains("connect_failure")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let api: Vec<&str> = row(&report, "api").split_whitespace().collect();
    assert_eq!(api[..4], ["api", "shadow", "20", "-"], "{report}");
    assert_eq!(api[4..6], ["2xx", "20"], "{report}");
    assert_eq!(api[6], "0.0%", "{report}");
    let p50: f64 = api[7].parse().unwrap_or_else(|_| panic!("p50: {report}"));
    let p99: f64 = api[8].parse().unwrap_or_else(|_| panic!("p99: {report}"));
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 1000.0, "{report}");
    // The dead shadow: every copy failed to connect (or, after 5 failures,
    // was skipped by the back-off), so its error share is 100 %.
    let default = row(&report, "default");
    assert!(default.starts_with("default  dead"), "{report}");
    assert!(default.contains("connect_failure"), "{report}");
    assert!(default.contains("100.0%"), "{report}");
    println!("{report}");

    // --watch: rates over each interval.
    let watcher = {
        let admin = admin.clone();
        std::thread::spawn(move || vrata_mirror(&["report", "--admin", &admin, "--watch", "2", "--intervals", "1"]))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        client::http1("GET", &envoy.url("/api/y"), &[], "").await;
    }
    let output = tokio::task::spawn_blocking(move || watcher.join().unwrap())
        .await
        .unwrap();
    let (watched, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(watched.contains("the last 2 s: rates per second"), "{watched}");
    assert!(
        row(&watched, "api").contains("api      shadow       5.0/s"),
        "{watched}"
    );
}

#[test]
fn an_unreachable_admin_is_one_line_and_exit_1() {
    let admin = format!("127.0.0.1:{}", closed_port());
    let output = vrata_mirror(&["report", "--admin", &admin]);
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("vrata-mirror: error: cannot read http://{admin}/stats:")),
        "{stderr}"
    );
    let output = vrata_mirror(&["report", "--admin", "https://example.invalid"]);
    assert!(texts(&output).1.contains("https is not supported"));
}

/// The comparison module, route api comparing, the default route (to the
/// dead shadow) not:
/// the primary's p50/p99 next to the shadow's, the results by kind and the
/// mismatch share on api's row, dashes on default's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_compare_the_report_shows_results_mismatch_share_and_the_primarys_latency() {
    report_shows_the_comparison(Host::WasmCompare).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_compare_the_report_reads_the_native_hosts_comparison_too() {
    report_shows_the_comparison(Host::Native).await;
}

async fn report_shows_the_comparison(host: Host) {
    let primary = Upstream::start("primary", Behaviour::Compare).await;
    let shadow = Upstream::start("shadow", Behaviour::Compare).await;
    let plugin =
        br#"{"forward": {"destinations": [{"destinationId": "primary"}], "mirror": {"destinationId": "dead"}},
             "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "compare": {"body": "json", "ignoreFields": ["ts"]}}}}}}"#;
    let (envoy, _plugin) = start_with(&primary, &shadow, plugin, host).await;
    // 6 alike, 1 status and 1 body mismatch: 25 %.
    for path in [
        "/api/same/0",
        "/api/same/1",
        "/api/same/2",
        "/api/same/3",
        "/api/ignored/0",
        "/api/same/4",
        "/api/status/0",
        "/api/json/0",
    ] {
        assert_eq!(client::http1("GET", &envoy.url(path), &[], "").await.status, 200);
    }
    client::http1("GET", &envoy.url("/other"), &[], "").await;
    let admin = format!("http://{}", envoy.admin);
    let mut report = String::new();
    for _ in 0..50 {
        let output = vrata_mirror(&["report", "--admin", &admin]);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{stderr}");
        report = stdout;
        if report.contains("MISMATCH")
            && row(&report, "api").contains("25.0%")
            && cell(&report, "api", "PRIMARY P99 MS") != "-"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{report}");
    let header = report.lines().find(|l| l.starts_with("ROUTE")).unwrap();
    assert!(
        header.contains("SHADOW P50 MS  SHADOW P99 MS  PRIMARY P50 MS  PRIMARY P99 MS  COMPARED (BY RESULT)"),
        "{report}"
    );
    let api = row(&report, "api");
    assert!(
        api.contains("body_mismatch 1, match 6, status_mismatch 1  25.0%"),
        "{report}"
    );
    assert_eq!(cell(&report, "api", "SENT"), "8", "{report}");
    assert_eq!(
        cell(&report, "api", "SHADOW ANSWERS (BY CLASS)"),
        "2xx 7, 5xx 1",
        "{report}"
    );
    let ms = |column: &str| -> f64 {
        cell(&report, "api", column)
            .parse()
            .unwrap_or_else(|_| panic!("{column}: {report}"))
    };
    for (p50, p99) in [("SHADOW P50 MS", "SHADOW P99 MS"), ("PRIMARY P50 MS", "PRIMARY P99 MS")] {
        assert!(ms(p50) > 0.0 && ms(p50) <= ms(p99) && ms(p99) < 1000.0, "{report}");
    }
    for column in ["PRIMARY P50 MS", "PRIMARY P99 MS", "COMPARED (BY RESULT)", "MISMATCH"] {
        assert_eq!(cell(&report, "default", column), "-", "{report}");
    }
}
