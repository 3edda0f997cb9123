//! envoy/observability: the checked-in dashboard and rules are what the
//! generator prints; the rules pass their promtool unit tests; and a real
//! Prometheus scraping a real Envoy evaluates every dashboard query and
//! alert expression to series with the expected labels, fires the mismatch
//! alert when the shadow answers differently (the comparison module, a
//! mirror with `compare`) and the shadow-failing alert when it is dead. Prometheus and promtool
//! come from Debian's `prometheus` package (scripts/ensure-prometheus.sh,
//! run by `make test`); without them these tests fail, never skip.

use crate::{envoy_from_command, envoy_from_command_with, render_from_command, texts, TempFile};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vrata_mirror_cli::observability::files;
use vrata_mirror_render::observability::{evaluated, native_relabel_text, scrape_job};
use vrata_mirror_render::yaml::{print, Yaml};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::envoy::{compare_module, native_module, Envoy};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

fn repo(path: &str) -> PathBuf {
    vrata_mirror_testkit::repo_root().join(path)
}

/// A tool of the `prometheus` package, or a loud failure saying how to get it.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed: the observability tests need Debian's prometheus package.\n\
             Install it with ./scripts/ensure-prometheus.sh (`make test` does)."
        )
    })
}

#[test]
fn the_checked_in_dashboard_and_rules_are_what_the_generator_prints() {
    for (name, generated) in files() {
        let path = repo(&format!("envoy/observability/{name}"));
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} differs from what `vrata-mirror observability envoy/observability` prints; run `make generated`",
            path.display()
        );
    }
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let dir = repo("envoy/observability");
    for args in [
        &["check", "rules", "alerts.yaml"][..],
        &["test", "rules", "alerts.test.yaml"][..],
        &["check", "config", "prometheus-scrape.yaml"][..],
    ] {
        let output = Command::new(tool("promtool"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "promtool {args:?}:\n{stdout}{stderr}");
    }
}

/// The dashboard is a Grafana model whose queries are the generator's and
/// whose variables are all defined.
#[test]
fn the_dashboard_defines_every_variable_its_queries_use() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("envoy/observability/grafana-dashboard.json")).unwrap())
            .unwrap();
    let defined: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{panels:?}");
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{panel}");
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(target["refId"].is_string() && target["legendFormat"].is_string());
            for var in expr.split('$').skip(1) {
                let name: String = var.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                assert!(
                    name == "__rate_interval" || defined.contains(&name.as_str()),
                    "${name} is not defined: {expr}"
                );
            }
        }
    }
}

/// A Prometheus scraping `admin` every second, evaluating the checked-in
/// rules every second. Stopped on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: TempFile,
}

impl Prometheus {
    fn start(admin: std::net::SocketAddr) -> Prometheus {
        Prometheus::start_jobs(&[("envoy", admin)])
    }

    /// Scraping each admin address as its own job, each the generated scrape
    /// job (with the native host's relabel rule).
    fn start_jobs(jobs: &[(&str, std::net::SocketAddr)]) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rules = repo("envoy/observability/alerts.yaml");
        let config = print(
            &Yaml::map([
                (
                    "global",
                    Yaml::map([
                        ("scrape_interval", Yaml::str("1s")),
                        ("evaluation_interval", Yaml::str("1s")),
                    ]),
                ),
                ("rule_files", Yaml::Seq(vec![Yaml::str(rules.display().to_string())])),
                (
                    "scrape_configs",
                    Yaml::Seq(
                        jobs.iter()
                            .map(|(job, admin)| scrape_job(job, &[admin.to_string()]))
                            .collect(),
                    ),
                ),
            ]),
            &[],
        );
        let dir = TempFile::new("prometheus.yml", config.as_bytes());
        let data = dir.0.parent().unwrap().join("data");
        let log = std::fs::File::create(dir.0.parent().unwrap().join("prometheus.log")).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", dir.path()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/-/ready", prometheus.url)).call().is_ok() {
                return prometheus;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("Prometheus not ready after 30 s:\n{}", prometheus.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.parent().unwrap().join("prometheus.log")).unwrap_or_default()
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let mut request = ureq::get(&format!("{}{path}", self.url));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let text = request
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: {e}"));
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["status"], "success", "{path} {query:?}: {json}");
        json["data"].clone()
    }

    /// An instant query's series.
    fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.get("/api/v1/query", &[("query", expr)]);
        data["result"].as_array().cloned().unwrap_or_default()
    }

    fn firing(&self, alert: &str) -> Vec<Value> {
        let data = self.get("/api/v1/alerts", &[]);
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == alert && a["state"] == "firing")
            .cloned()
            .collect()
    }

    /// Whether the last scrape of Envoy succeeded.
    fn scraping(&self) -> bool {
        self.scraping_job("envoy")
    }

    fn scraping_job(&self, job: &str) -> bool {
        self.query(&format!("up{{job=\"{job}\"}} == 1")).len() == 1
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- Prometheus log ---\n{}", self.log());
        }
    }
}

/// Evaluates every dashboard query and alert expression: each must return
/// series, each carrying its labels. Returns what was evaluated.
fn evaluate_all(prometheus: &Prometheus, window: &str) -> Vec<String> {
    let mut report = Vec::new();
    for (what, expr, labels) in evaluated(window) {
        let series = prometheus.query(&expr);
        assert!(!series.is_empty(), "{what} returned no series:\n{expr}");
        for s in &series {
            for label in &labels {
                assert!(
                    s["metric"][*label].is_string(),
                    "{what}: a series without {label}: {s}\n{expr}"
                );
            }
        }
        report.push(format!("{what}: {} series", series.len()));
    }
    report
}

async fn traffic(envoy: &Envoy, seconds: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let big = "x".repeat(2048);
    let mut i = 0u64;
    while tokio::time::Instant::now() < deadline {
        client::http1("GET", &envoy.url("/api/items"), &[], "").await;
        client::http1("GET", &envoy.url("/orders"), &[], "").await;
        // Behaviour::Compare: on /api/status the shadow answers 503 (a
        // status_mismatch), on /api/json a different JSON field (a
        // body_mismatch); /api/items and /orders alike (match).
        client::http1("GET", &envoy.url(&format!("/api/status/{i}")), &[], "").await;
        client::http1("GET", &envoy.url(&format!("/api/json/{i}")), &[], "").await;
        if i.is_multiple_of(5) {
            // Over maxBodyBytes: skipped as body_too_large (the wasm host; the
            // native host streams it, see README "copy's body").
            client::http1("POST", &envoy.url("/api/upload"), &[], big.clone()).await;
            // A copy arriving (the loop marker): skipped as loop, on both hosts.
            client::http1("GET", &envoy.url("/api/items"), &[("x-vrata-mirror", "1")], "").await;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_evaluates_every_query_and_fires_the_mismatch_and_shadow_failing_alerts() {
    let primary = Upstream::start("primary", Behaviour::Compare).await;
    let shadow = Upstream::start("shadow", Behaviour::Compare).await;
    // The comparison module, comparing on both routes: route api's shadow
    // answers 2 of 3 compared requests differently, route default's none.
    // A secondary running the primary's code (it answers as the primary), so
    // that the noise panel has fields; `minRequests: 1`, so that verdicts are
    // given from the first request (the price that differs on /api/json is a
    // real difference: the secondary never differs there).
    let stable = Upstream::start("primary", Behaviour::Compare).await;
    let plugin = TempFile::new("plugin.json", compared_plugin("shadow", "stable").as_bytes());
    let clusters = [
        format!("primary=127.0.0.1:{}", primary.port()),
        format!("shadow=127.0.0.1:{}", shadow.port()),
        format!("stable=127.0.0.1:{}", stable.port()),
    ];
    let envoy = envoy_from_command(&plugin, &compare_module(), &clusters, "1s").await;
    let admin = envoy.admin;
    let prometheus = tokio::task::spawn_blocking(move || Prometheus::start(admin))
        .await
        .unwrap();

    // A healthy shadow.
    traffic(&envoy, 20).await;
    assert!(
        prometheus.scraping(),
        "Prometheus does not scrape Envoy:\n{}",
        prometheus.log()
    );
    assert!(
        prometheus.firing("VrataMirrorShadowFailing").is_empty(),
        "fired with a healthy shadow"
    );
    let healthy: Vec<(String, String, Vec<&str>)> = evaluated("30s")
        .into_iter()
        .filter(|(what, _, _)| what.starts_with("panel"))
        .collect();
    for (what, expr, labels) in &healthy {
        let series = prometheus.query(expr);
        assert!(!series.is_empty(), "healthy: {what} returned no series:\n{expr}");
        for s in &series {
            for label in labels {
                assert!(s["metric"][*label].is_string(), "{what}: no {label} in {s}");
            }
        }
    }

    // The mismatch share: 2 of 3 on route api, none on route default.
    let share = vrata_mirror_render::observability::mismatch_share(&vrata_mirror_render::observability::Scope {
        window: "30s",
        ..vrata_mirror_render::observability::RULES
    });
    let mut shares: Vec<(String, f64)> = prometheus
        .query(&share)
        .iter()
        .map(|s| {
            (
                s["metric"]["route"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    shares.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(shares.len(), 2, "{shares:?}");
    assert!(
        (shares[0].1 - 2.0 / 3.0).abs() < 0.1 && shares[1].1 == 0.0,
        "{shares:?}"
    );

    // A dead shadow: the alert fires for it, on each route, within about
    // a minute and a half (its `for` is 1m).
    // Dead: open connections are reset, new ones refused.
    shadow.set_behaviour(Behaviour::Reset);
    drop(shadow);
    // The mismatch alert (its `for` is 1m too) fires for route api, whose
    // mismatches of the healthy minutes stay in its 5-minute window, and
    // not for route default, whose shadow answered alike.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut fired = Vec::new();
    let mut mismatch = Vec::new();
    while Instant::now() < deadline {
        traffic(&envoy, 5).await;
        fired = prometheus.firing("VrataMirrorShadowFailing");
        mismatch = prometheus.firing("VrataMirrorMismatch");
        if fired.len() == 2 && !mismatch.is_empty() {
            break;
        }
    }
    if mismatch.is_empty() {
        let share = vrata_mirror_render::observability::mismatch_share(&vrata_mirror_render::observability::RULES);
        eprintln!("mismatch share: {:?}", prometheus.query(&share));
        eprintln!("compared: {:?}", prometheus.query("vrata_mirror_compare_total"));
    }
    let mismatched: Vec<&str> = mismatch
        .iter()
        .map(|a| a["labels"]["route"].as_str().unwrap())
        .collect();
    assert_eq!(mismatched, ["api"], "VrataMirrorMismatch firing: {mismatch:?}");
    assert_eq!(mismatch[0]["labels"]["destination"], "shadow");
    assert_eq!(mismatch[0]["labels"]["severity"], "warning");
    if fired.len() != 2 {
        let share = vrata_mirror_render::observability::failing_share(&vrata_mirror_render::observability::RULES);
        eprintln!("failing share: {:?}", prometheus.query(&share));
        eprintln!("responses: {:?}", prometheus.query("vrata_mirror_responses_total"));
        eprintln!("skipped: {:?}", prometheus.query("vrata_mirror_skipped_total"));
    }
    let mut routes: Vec<&str> = fired.iter().map(|a| a["labels"]["route"].as_str().unwrap()).collect();
    routes.sort_unstable();
    assert_eq!(routes, ["api", "default"], "firing: {fired:?}");
    for alert in &fired {
        assert_eq!(alert["labels"]["destination"], "shadow");
        assert_eq!(alert["labels"]["severity"], "warning");
    }

    // Every query and alert expression, now that there are answers, skips
    // (body_too_large, backoff), failures and comparison results (match,
    // status_mismatch, body_mismatch, shadow_failed).
    let evaluated = evaluate_all(&prometheus, "1m");
    println!("evaluated through Prometheus's HTTP API:\n  {}", evaluated.join("\n  "));
}

/// The README shows the native host's relabel rule as the generator prints it.
#[test]
fn the_readme_shows_the_generated_relabel_rule() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let rule = native_relabel_text();
    let indented: String = rule.lines().map(|l| format!("  {l}\n")).collect();
    assert!(
        readme.contains(&format!("```yaml\n{rule}```")) || readme.contains(&format!("  ```yaml\n{indented}  ```")),
        "README.md does not show the rule as `vrata-mirror observability` writes it:\n{rule}"
    );
}

/// The plugin of the Prometheus tests: `traffic`'s routes, mirrored (and
/// compared, with noise learned from `secondary`) to `shadow`, a cluster name per host so that the series of each
/// can be told apart in the queries' `sum by (route, destination)`.
fn compared_plugin(shadow: &str, secondary: &str) -> String {
    let compare = format!(r#"{{"body": "json", "secondary": "{secondary}", "noise": {{"minRequests": 1}}}}"#);
    format!(
        r#"{{"forward": {{"destinations": [{{"destinationId": "primary"}}],
                         "mirror": {{"destinationId": "{shadow}", "maxBodyBytes": 1024, "compare": {compare}}}}},
             "routes": {{"api": {{"forward": {{"mirror": {{"destinationId": "{shadow}", "maxBodyBytes": 1024,
                                                       "compare": {compare}}}}}}}}}}}"#
    )
}

/// Issue 21: the native host's series are `envoy_vrata_mirror_*` (and
/// `envoy_dynamicmodulescustom_*` without a `metrics_namespace`, as Envoy
/// Gateway configures it); one Prometheus with the generated scrape job (its
/// relabel rules) scrapes a real Envoy with the wasm module, one with the
/// native host, and one with the native host without a namespace, and
/// `rate(vrata_mirror_requests_total[5m])`, every dashboard query and every
/// alert's expression return each one's series under the wasm names; no
/// native name is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_prometheus_rule_gives_both_hosts_the_same_names_and_every_query_reads_both() {
    let primary = Upstream::start("primary", Behaviour::Compare).await;
    let shadow = Upstream::start("shadow", Behaviour::Compare).await;
    let stable = Upstream::start("primary", Behaviour::Compare).await;
    let clusters = |name: &str| {
        [
            format!("primary=127.0.0.1:{}", primary.port()),
            format!("{name}_shadow=127.0.0.1:{}", shadow.port()),
            format!("{name}_stable=127.0.0.1:{}", stable.port()),
        ]
    };
    let plugin = |name: &str| {
        TempFile::new(
            "plugin.json",
            compared_plugin(&format!("{name}_shadow"), &format!("{name}_stable")).as_bytes(),
        )
    };
    let (wasm_plugin, native_plugin, gateway_plugin) = (plugin("wasm"), plugin("native"), plugin("gateway"));
    let wasm = envoy_from_command(&wasm_plugin, &compare_module(), &clusters("wasm"), "1s").await;
    let native = envoy_from_command_with(
        &native_plugin,
        "--dynamic-module",
        &native_module(),
        &clusters("native"),
        "1s",
    )
    .await;
    // The native host as Envoy Gateway configures it: its dynamicModule
    // filters name no metrics_namespace, so Envoy's default applies.
    let yaml = render_from_command(
        &gateway_plugin,
        "--dynamic-module",
        &native_module(),
        &clusters("gateway"),
        "1s",
    );
    let without_namespace: String = yaml
        .lines()
        .filter(|l| !l.contains("metrics_namespace") && !l.contains("Prometheus: envoy_vrata_mirror"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without_namespace, yaml);
    let gateway = tokio::task::spawn_blocking(move || Envoy::start(&without_namespace, 1))
        .await
        .unwrap();
    let admins = [
        ("wasm", wasm.admin),
        ("native", native.admin),
        ("gateway", gateway.admin),
    ];
    let prometheus = tokio::task::spawn_blocking(move || Prometheus::start_jobs(&admins))
        .await
        .unwrap();
    let all = async {
        tokio::join!(traffic(&wasm, 15), traffic(&native, 15), traffic(&gateway, 15));
    };
    all.await;
    assert!(
        ["wasm", "native", "gateway"]
            .iter()
            .all(|job| prometheus.scraping_job(job)),
        "Prometheus does not scrape every Envoy:\n{}",
        prometheus.log()
    );
    let exposed = gateway.prometheus();
    assert!(
        exposed.contains("envoy_dynamicmodulescustom_requests_total{route=\"api\",destination=\"gateway_shadow\"}"),
        "the native host without a namespace:\n{exposed}"
    );
    // What the native host exposes: Envoy's prefixed names.
    let exposed = native.prometheus();
    assert!(
        exposed.contains("envoy_vrata_mirror_requests_total{route=\"api\",destination=\"native_shadow\"}"),
        "the native host's exposition:\n{exposed}"
    );

    // rate(vrata_mirror_requests_total[5m]) on both hosts, per route.
    let mut rates: Vec<(String, String, String, f64)> = prometheus
        .query("rate(vrata_mirror_requests_total[5m])")
        .iter()
        .map(|s| {
            let label = |name: &str| s["metric"][name].as_str().unwrap_or("").to_owned();
            (
                label("job"),
                label("route"),
                label("destination"),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    rates.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let keys: Vec<(&str, &str, &str)> = rates
        .iter()
        .map(|(j, r, d, _)| (j.as_str(), r.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            // Each host's candidate and its secondary (copies of their own).
            ("gateway", "api", "gateway_shadow"),
            ("gateway", "api", "gateway_stable"),
            ("gateway", "default", "gateway_shadow"),
            ("gateway", "default", "gateway_stable"),
            ("native", "api", "native_shadow"),
            ("native", "api", "native_stable"),
            ("native", "default", "native_shadow"),
            ("native", "default", "native_stable"),
            ("wasm", "api", "wasm_shadow"),
            ("wasm", "api", "wasm_stable"),
            ("wasm", "default", "wasm_shadow"),
            ("wasm", "default", "wasm_stable"),
        ],
        "{rates:?}"
    );
    assert!(rates.iter().all(|r| r.3 > 0.0), "{rates:?}");
    println!("rate(vrata_mirror_requests_total[5m]): {rates:?}");
    for left in ["envoy_vrata_mirror_.*", "envoy_dynamicmodulescustom_.*"] {
        let series = prometheus.query(&format!("count({{__name__=~\"{left}\"}})"));
        assert!(series.is_empty(), "native names left after the rule: {left} {series:?}");
    }

    // Every dashboard query and alert expression gives each host's series
    // (healthy shadows: the panels that need failures are covered above).
    let mut evaluated_on = Vec::new();
    for (what, expr, labels) in evaluated("30s") {
        let series = prometheus.query(&expr);
        if labels.contains(&"destination") {
            for destination in ["wasm_shadow", "native_shadow", "gateway_shadow"] {
                let of_host: Vec<&Value> = series
                    .iter()
                    .filter(|s| s["metric"]["destination"] == destination)
                    .collect();
                // Capacity skips (in_flight_limit, rate_limited, backoff):
                // none with healthy shadows.
                let needs_failures = what.contains("alert VrataMirrorCopiesSkipped");
                assert!(
                    needs_failures || !of_host.is_empty(),
                    "{what}: no series for {destination}:\n{expr}\n{series:?}"
                );
                for s in of_host {
                    for label in &labels {
                        assert!(s["metric"][*label].is_string(), "{what}: no {label} in {s}");
                    }
                }
            }
            evaluated_on.push(what);
        }
    }
    println!("evaluated on both hosts:\n  {}", evaluated_on.join("\n  "));
}
