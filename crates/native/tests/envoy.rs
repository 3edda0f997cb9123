//! The native host in the real Envoy (1.40.0 by default, or $VRATA_ENVOY), loaded from
//! $VRATA_NATIVE (else target/native/, `make build`): it loads and matches the ABI version,
//! refuses a bad plugin JSON with the wasm host's one line, refuses a filter layout that does
//! not fit the worker count, survives panics in its hooks, and mirrors through the worker core
//! (crates/core/src/worker): copies byte-equal with body and trailers, counted in the
//! catalogue's labelled metrics, every copy accounted at two workers and across a push.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use std::time::Duration;
use vrata_mirror_render::envoy::Mirroring;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::{native_module, validate_with, Envoy};
use vrata_mirror_testkit::rig::eventually;
use vrata_mirror_testkit::upstream::{closed_port, compare_answer, Behaviour, Upstream};

const PLUGIN: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}},
 "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}}}"#;
const BAD_PLUGIN: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentge": 100}}}"#;
const ABI_MATCHED: &str = "Dynamic module ABI version v0.2.0 matched.";

/// The config the renderer prints for the native host at `workers` workers.
fn native_yaml(plugin: &str, primary: u16, shadow: u16, workers: u32) -> String {
    let mut bootstrap = Setup::new(plugin, primary, shadow).bootstrap();
    bootstrap.mirroring = Mirroring::DynamicModule {
        module: native_module().display().to_string(),
        plugin: plugin.to_owned(),
        workers,
    };
    bootstrap.render()
}

async fn start(yaml: String, workers: u32, env: &'static [(&'static str, &'static str)]) -> Envoy {
    tokio::task::spawn_blocking(move || match Envoy::try_start_env(&yaml, workers, &[], env) {
        Ok(envoy) => envoy,
        Err(failure) => panic!("Envoy did not start:\n{}", failure.log),
    })
    .await
    .expect("envoy start task")
}

fn alive(envoy: &Envoy) -> bool {
    vrata_mirror_testkit::envoy::admin_get(envoy.admin, "/ready").is_some_and(|r| r.contains("LIVE"))
}

#[test]
fn validate_loads_the_module_and_matches_the_abi_version() {
    let (ok, log) = validate_with(&native_yaml(PLUGIN, 1, 2, 2), &["--concurrency", "2"]);
    assert!(ok, "envoy --mode validate refused the native host's config:\n{log}");
    assert!(log.contains(ABI_MATCHED), "no {ABI_MATCHED:?} in:\n{log}");
}

#[test]
fn a_bad_plugin_json_is_refused_at_load_with_the_wasm_hosts_one_line() {
    // The very line the wasm host logs (src/proxy/root.rs), from the one parser.
    let problem = vrata_mirror_core::config::parse(BAD_PLUGIN.as_bytes()).unwrap_err();
    let expected = format!("vrata-mirror: invalid plugin configuration: {problem}");
    assert!(expected.contains("forward.mirror.percentge: unknown key"), "{expected}");

    let yaml = native_yaml(BAD_PLUGIN, 1, 2, 1);
    let (ok, log) = validate_with(&yaml, &["--concurrency", "1"]);
    assert!(!ok, "envoy --mode validate accepted a bad plugin configuration:\n{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("invalid plugin configuration"))
        .collect();
    assert_eq!(lines.len(), 1, "want one line, got:\n{log}");
    assert!(
        lines[0].ends_with(&expected),
        "{:?} does not end with {expected:?}",
        lines[0]
    );

    // A real Envoy refuses it the same way, and does not start.
    let failure = Envoy::try_start_env(&yaml, 1, &[], &[])
        .err()
        .expect("Envoy started with a bad plugin JSON");
    assert!(failure.log.contains(&expected), "no {expected:?} in:\n{}", failure.log);
}

#[test]
fn a_filter_layout_that_does_not_fit_the_worker_count_is_refused() {
    // Rendered for 2 workers, run with 1 (and the other way round): each config must act on
    // exactly one existing worker, and every worker needs one.
    let (ok, log) = validate_with(&native_yaml(PLUGIN, 1, 2, 2), &["--concurrency", "1"]);
    assert!(!ok, "accepted 2 per-worker filters at 1 worker:\n{log}");
    assert!(
        log.contains("vrata-mirror: filter_name \"vrata-mirror/worker-0-of-2\" does not fit this Envoy"),
        "{log}"
    );
    let (ok, log) = validate_with(&native_yaml(PLUGIN, 1, 2, 1), &["--concurrency", "2"]);
    assert!(!ok, "accepted one filter for 2 workers:\n{log}");
    assert!(
        log.contains("with 2 workers (--concurrency 2) the filter goes in the chain 2 times"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_answers_and_stays_up_after_panics_in_every_kind_of_hook() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let yaml = native_yaml(PLUGIN, primary.port(), shadow.port(), 1);
    let envoy = start(yaml, 1, &[("VRATA_NATIVE_TEST_PANIC", "1")]).await;
    assert!(
        envoy.log().contains(ABI_MATCHED),
        "no {ABI_MATCHED:?} in:\n{}",
        envoy.log()
    );

    let panic_in = |hook: &'static str| [("x-vrata-native-test-panic", hook)];
    let url = envoy.url("/api/p");
    let replies = [
        client::http1("GET", &url, &panic_in("request_headers"), Bytes::new()).await,
        client::http1("POST", &url, &panic_in("request_body"), Bytes::from_static(b"a body")).await,
        client::h2c(
            "POST",
            &url,
            &panic_in("request_trailers"),
            vec![Bytes::from_static(b"a body")],
            Some(&[("x-trailer", "1")]),
        )
        .await,
        client::http1("GET", &url, &panic_in("stream_complete"), Bytes::new()).await,
        client::http1("GET", &url, &[], Bytes::new()).await,
    ];
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200, "request {i} got {reply:?}");
    }
    assert_eq!(primary.count(), 5, "the primary did not get every request");
    assert!(alive(&envoy), "Envoy is not live after the panics:\n{}", envoy.log());
    let counted = eventually(Duration::from_secs(5), || {
        envoy.metric("envoy_vrata_mirror_panics_total", &[]) == 4.0
    })
    .await;
    assert!(
        counted,
        "envoy_vrata_mirror_panics_total is {}, want 4:\n{}",
        envoy.metric("envoy_vrata_mirror_panics_total", &[]),
        envoy.prometheus()
    );
    let log = envoy.log();
    for hook in ["request_headers", "request_body", "request_trailers", "stream_complete"] {
        assert!(
            log.contains(&format!(
                "vrata-mirror: panic caught in http_filter_{hook} (the request goes on)"
            )),
            "no caught panic in {hook} in:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_panic_header_does_nothing_unless_envoy_arms_it() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let envoy = start(native_yaml(PLUGIN, primary.port(), shadow.port(), 1), 1, &[]).await;
    let reply = client::http1(
        "GET",
        &envoy.url("/api/p"),
        &[("x-vrata-native-test-panic", "request_headers")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        envoy.metric("envoy_vrata_mirror_panics_total", &[]),
        0.0,
        "{}",
        envoy.prometheus()
    );
    assert!(!envoy.log().contains("panic caught"), "{}", envoy.log());
}

const REQUESTS: &str = "envoy_vrata_mirror_requests_total";
const RESPONSES: &str = "envoy_vrata_mirror_responses_total";

/// `envoy_vrata_mirror_requests_total{route,destination}`, the exact series.
fn requests(envoy: &Envoy, route: &str) -> f64 {
    envoy.metric(REQUESTS, &[("route", route), ("destination", "shadow")])
}

/// `envoy_vrata_mirror_responses_total{route,destination,class}`, the exact series.
fn responses(envoy: &Envoy, route: &str, class: &str) -> f64 {
    envoy.metric(
        RESPONSES,
        &[("route", route), ("destination", "shadow"), ("class", class)],
    )
}

/// The catalogue's series in `/stats/prometheus`, histogram buckets left out.
fn envoy_lines(envoy: &Envoy) -> Vec<String> {
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("envoy_vrata_mirror_") && !l.contains("_bucket"))
        .map(str::to_owned)
        .collect()
}

/// 16 KiB of every byte value, so that a byte out of place shows.
fn post_body() -> Vec<u8> {
    (0..16 * 1024).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_and_a_16_kib_post_are_mirrored_byte_equal_and_counted_as_the_shadow_got_them() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let envoy = start(native_yaml(PLUGIN, primary.port(), shadow.port(), 1), 1, &[]).await;

    let get = client::http1(
        "GET",
        &envoy.url("/api/get?q=1&r=%20"),
        &[("x-case", "get"), ("x-utf8", "café")],
        Bytes::new(),
    )
    .await;
    assert_eq!(get.status, 200, "{get:?}");
    let body = post_body();
    let post = client::http1(
        "POST",
        &envoy.url("/api/post"),
        &[("x-case", "post"), ("content-type", "application/octet-stream")],
        Bytes::from(body.clone()),
    )
    .await;
    assert_eq!(post.status, 200, "{post:?}");

    let copies = shadow.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(copies.len(), 2, "the shadow got {copies:?}");
    let originals = primary.received();
    for (case, method, uri, want_body) in [
        ("get", "GET", "/api/get?q=1&r=%20", Vec::new()),
        ("post", "POST", "/api/post", body),
    ] {
        let copy = copies
            .iter()
            .find(|c| c.header("x-case") == Some(case))
            .unwrap_or_else(|| panic!("no {case} copy in {copies:?}"));
        let original = originals.iter().find(|c| c.header("x-case") == Some(case)).unwrap();
        assert_eq!((copy.method.as_str(), copy.uri.as_str()), (method, uri), "{case}");
        assert_eq!(copy.body, want_body, "{case}: the copy's body differs");
        // Every header the client sent reaches the copy, byte for byte, as it reaches the primary.
        for name in ["x-case", "x-utf8", "content-type", "content-length", "host"] {
            let value = |r: &vrata_mirror_testkit::upstream::Recorded| {
                r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
            };
            assert_eq!(value(copy), value(original), "{case}: header {name}");
        }
    }
    assert_eq!(
        copies
            .iter()
            .find(|c| c.header("x-case") == Some("get"))
            .unwrap()
            .header("x-utf8"),
        Some("café")
    );

    let counted = eventually(Duration::from_secs(5), || {
        requests(&envoy, "api") == 2.0 && responses(&envoy, "api", "2xx") == 2.0
    })
    .await;
    assert!(
        counted,
        "requests/responses not counted as sent:\n{}",
        envoy.prometheus()
    );
    assert_eq!(requests(&envoy, "api"), shadow.count() as f64);
    // Histograms reach /stats/prometheus at the stats flush (0.2 s here).
    let latency = "envoy_vrata_mirror_response_time_ms_count{route=\"api\",destination=\"shadow\"} 2";
    let timed = eventually(Duration::from_secs(5), || envoy.prometheus().contains(latency)).await;
    assert!(timed, "no latency recorded for the 2 answers:\n{}", envoy.prometheus());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_that_refuses_connections_is_counted_as_connect_failure() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let envoy = start(native_yaml(PLUGIN, primary.port(), closed_port(), 1), 1, &[]).await;
    for i in 0..3 {
        let reply = client::http1("GET", &envoy.url(&format!("/api/{i}")), &[], Bytes::new()).await;
        assert_eq!(reply.status, 200, "the primary must not suffer: {reply:?}");
    }
    // The first failures open the back-off; every copy sent ends `connect_failure`, and every
    // copy not sent is a `backoff` skip.
    let settled = eventually(Duration::from_secs(5), || {
        let sent = requests(&envoy, "api");
        sent >= 1.0
            && responses(&envoy, "api", "connect_failure") == sent
            && sent
                + envoy.metric(
                    "envoy_vrata_mirror_skipped_total",
                    &[("route", "api"), ("destination", "shadow"), ("reason", "backoff")],
                )
                == 3.0
    })
    .await;
    assert!(settled, "not counted as connect failures:\n{}", envoy.prometheus());
    eprintln!(
        "refused shadow: {} sent, {} connect_failure",
        requests(&envoy, "api"),
        responses(&envoy, "api", "connect_failure")
    );
    assert!(alive(&envoy));
}

/// Canary comparison on this host: the response hooks feed the worker the primary's answer,
/// the stream hooks the shadow's (kept up to `compare.maxBodyBytes`); the same results as
/// the wasm comparison module's e2e test (tests/e2e/compare.rs) for the same cases, and the
/// mismatch lines, rate limited, in Envoy's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compared_answers_end_in_the_same_results_as_on_the_wasm_host() {
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow",
        "compare": {"body": "json", "ignoreFields": ["ts"], "maxBodyBytes": 1024, "logMismatches": 3}}}}"#;
    let primary = Upstream::start("primary", Behaviour::Compare).await;
    let shadow = Upstream::start("shadow", Behaviour::Compare).await;
    let envoy = start(native_yaml(plugin, primary.port(), shadow.port(), 1), 1, &[]).await;
    let cases = [
        ("json", 2),
        ("status", 2),
        ("text", 2),
        ("same", 3),
        ("ignored", 2),
        ("large", 2),
    ];
    for (case, n) in cases {
        for i in 0..n {
            let path = format!("/api/{case}/{i}");
            let reply = client::http1("GET", &envoy.url(&path), &[], "").await;
            let (_, status, _, body) = compare_answer("primary", &path);
            assert_eq!(
                (reply.status, reply.text()),
                (status, body),
                "{path}: the client gets the primary's answer"
            );
        }
    }
    let result = |r: &str| {
        envoy.metric(
            "envoy_vrata_mirror_compare_total",
            &[("route", "api"), ("destination", "shadow"), ("result", r)],
        )
    };
    let want = [
        ("match", 5.0),
        ("status_mismatch", 2.0),
        ("body_mismatch", 4.0),
        ("not_compared", 2.0),
    ];
    let all = eventually(Duration::from_secs(10), || want.iter().all(|(r, n)| result(r) == *n)).await;
    let got: Vec<(&str, f64)> = want.iter().map(|(r, _)| (*r, result(r))).collect();
    assert!(all, "compare results {got:?}, want {want:?}:\n{}", envoy.prometheus());
    let lines = envoy.log().lines().filter(|l| l.contains("compare mismatch")).count();
    assert_eq!(lines, 3, "logMismatches 3:\n{}", envoy.log());
}

/// A shadow that never answers: its copies end `timeout` (Envoy's 504 local reply, told
/// apart by its text). A rate-capped mirror (1 per second, burst 2) at two workers: of 12 quick
/// requests on 12 connections 2 are sent and 10 skipped `rate_limited`, the bucket shared by both workers'
/// configs (a process-wide store in the module, like proxy-wasm's shared data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_shadow_times_out_and_the_rate_cap_is_shared_by_the_workers() {
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow", "timeoutMs": 300}},
        "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "timeoutMs": 300,
            "maxRequestsPerSecond": 1, "burst": 2}}}}}"#;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Stuck).await;
    let envoy = start(native_yaml(plugin, primary.port(), shadow.port(), 2), 2, &[]).await;
    let reply = client::http1("GET", &envoy.url("/x/1"), &[], Bytes::new()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Separate connections, so that both workers take requests.
    let replies = client::load(&envoy.url("/api/capped"), 12, 12, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let skipped = |reason: &str| {
        envoy.metric(
            "envoy_vrata_mirror_skipped_total",
            &[("route", "api"), ("destination", "shadow"), ("reason", reason)],
        )
    };
    let counted = eventually(Duration::from_secs(5), || {
        requests(&envoy, "default") == 1.0
            && responses(&envoy, "default", "timeout") == 1.0
            && requests(&envoy, "api") + skipped("rate_limited") == 12.0
    })
    .await;
    let per_worker = envoy.connections_per_worker(2);
    eprintln!(
        "rate cap 1/s burst 2: {} sent, {} rate_limited, {} rate_unavailable; connections per worker {per_worker:?}",
        requests(&envoy, "api"),
        skipped("rate_limited"),
        skipped("rate_unavailable")
    );
    assert!(counted, "{}", envoy.prometheus());
    assert_eq!(requests(&envoy, "api"), 2.0, "{}", envoy.prometheus());
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers must take requests: {per_worker:?}"
    );
}

/// gRPC copies over HTTP/2: the class comes from `grpc-status`, in the answer's trailers
/// (the config stream's trailers hook) after a message, or in a trailers-only answer (tonic's
/// `Unimplemented` for an unknown method).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_copies_are_classed_by_their_grpc_status_from_trailers_or_headers() {
    use vrata_mirror_testkit::grpc::{always_ok, Answer, GrpcClient, GrpcServer, Rpc, UNARY};
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", |_, _| Answer::FailAfterMessage(tonic::Code::PermissionDenied)).await;
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#;
    let mut setup = Setup::new(plugin, primary.port(), shadow.port());
    setup.http2_upstreams = true;
    let mut bootstrap = setup.bootstrap();
    bootstrap.mirroring = Mirroring::DynamicModule {
        module: native_module().display().to_string(),
        plugin: plugin.to_owned(),
        workers: 1,
    };
    let envoy = start(bootstrap.render(), 1, &[]).await;
    let rpc = |path: &'static str| Rpc {
        path,
        messages: vec![Bytes::from_static(b"ping")],
        metadata: Vec::new(),
        timeout: Some(Duration::from_secs(5)),
    };
    let rpcs = [rpc(UNARY), rpc(UNARY), rpc("/test.Echo/Missing")];
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;
    assert_eq!(
        outcomes[0].code,
        tonic::Code::Ok,
        "the client gets the primary's answer: {outcomes:?}"
    );
    let classes = eventually(Duration::from_secs(5), || {
        responses(&envoy, "default", "grpc_permission_denied") == 2.0
            && responses(&envoy, "default", "grpc_unimplemented") == 1.0
    })
    .await;
    assert!(classes, "{}", envoy.prometheus());
    assert_eq!(requests(&envoy, "default"), 3.0);
}

/// The byte-equal streamed copy of the retired stream probe, through the worker: h2c to
/// Envoy, HTTP/1.1 (chunked, trailers enabled) from Envoy to the shadow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_carries_the_body_and_trailers_of_an_h2_request() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let envoy = start(native_yaml(PLUGIN, primary.port(), shadow.port(), 2), 2, &[]).await;
    let reply = client::h2c(
        "POST",
        &envoy.url("/api/upload?q=1"),
        &[("x-case", "trailers"), ("x-utf8", "café")],
        vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")],
        Some(&[("x-checksum", "abc")]),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let copies = shadow.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(copies.len(), 1, "the shadow got {copies:?}");
    let copy = &copies[0];
    assert_eq!((copy.method.as_str(), copy.uri.as_str()), ("POST", "/api/upload?q=1"));
    assert_eq!(copy.body, b"hello world");
    assert_eq!(copy.header("x-case"), Some("trailers"));
    assert_eq!(copy.header("x-utf8"), Some("café"));
    assert!(
        copy.trailers.iter().any(|(k, v)| k == "x-checksum" && v == b"abc"),
        "no trailer on the copy: {:?}",
        copy.trailers
    );
    let one = eventually(Duration::from_secs(5), || {
        requests(&envoy, "api") == 1.0 && responses(&envoy, "api", "2xx") == 1.0
    })
    .await;
    assert!(one, "the copy was not counted:\n{}", envoy.prometheus());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_is_accounted_for_at_two_workers_under_load() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start_counting("shadow", Behaviour::Answer).await;
    let envoy = start(native_yaml(PLUGIN, primary.port(), shadow.port(), 2), 2, &[]).await;
    let total = 400;
    let replies = client::load(&envoy.url("/load"), total, 16, "POST", Bytes::from(post_body())).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "not every primary answer was 200"
    );
    let all = eventually(Duration::from_secs(20), || {
        shadow.count() == total
            && requests(&envoy, "default") == total as f64
            && responses(&envoy, "default", "2xx") == total as f64
    })
    .await;
    eprintln!(
        "2 workers: {total} requests, shadow got {}, requests_total {}, responses 2xx {}; connections per worker {:?}",
        shadow.count(),
        requests(&envoy, "default"),
        responses(&envoy, "default", "2xx"),
        envoy.connections_per_worker(2)
    );
    assert!(
        envoy.connections_per_worker(2).iter().all(|n| *n > 0),
        "the load must reach both workers"
    );
    assert!(all, "copies lost or miscounted:\n{}", envoy.prometheus());
    assert!(alive(&envoy), "Envoy is not live:\n{}", envoy.log());
}

/// The teardown question of crates/native/NOTES.md: a config replaced by an LDS push while its copies
/// are in flight, at two workers. Envoy stays up, and each old config's destroy (on the main
/// thread, after the 1 s drain) waits for its copies (the shadow answers after 3 s, within
/// `timeoutMs`), so none is reset across threads and every copy gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_while_copies_are_in_flight_leaves_envoy_up_and_counts_every_copy() {
    use vrata_mirror_testkit::lds::LdsConfig;
    let slow = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100, "timeoutMs": 10000}}}"#;
    let pushed = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100, "timeoutMs": 9000}}}"#;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::SlowMs(3000)).await;
    let bootstrap_for = |plugin: &str| {
        let mut bootstrap = Setup::new(plugin, primary.port(), shadow.port()).bootstrap();
        bootstrap.mirroring = Mirroring::DynamicModule {
            module: native_module().display().to_string(),
            plugin: plugin.to_owned(),
            workers: 2,
        };
        bootstrap
    };
    let lds = LdsConfig::new(&bootstrap_for(slow), "native-push");
    lds.publish(&bootstrap_for(slow));
    let yaml = lds.bootstrap.clone();
    let envoy = tokio::task::spawn_blocking(move || {
        Envoy::try_start_env(&yaml, 2, &["--drain-time-s", "1"], &[])
            .unwrap_or_else(|f| panic!("Envoy did not start:\n{}", f.log))
    })
    .await
    .unwrap();
    let replies = client::load(&envoy.url("/x"), 40, 8, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        eventually(Duration::from_secs(5), || shadow.count() == 40).await,
        "copies started: {}",
        shadow.count()
    );
    let sent_before = eventually(Duration::from_secs(5), || requests(&envoy, "default") == 40.0).await;
    assert!(sent_before, "copies not counted as sent:\n{}", envoy.prometheus());
    let ended_before = responses(&envoy, "default", "2xx");
    // Every copy is now waiting for the shadow's answer (3 s): push a new configuration.
    lds.publish(&bootstrap_for(pushed));
    let destroyed = eventually(Duration::from_secs(8), || envoy.log().contains("config destroyed")).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = envoy.log();
    let teardown: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config destroyed") || l.contains("ABI version"))
        .collect();
    eprintln!("teardown lines: {}\n{}", teardown.len(), teardown.join("\n"));
    // Each old config's line: the copies it waited for, and those still in flight after.
    let field = |after: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("config destroyed: waited"))
            .filter_map(|l| l.split(after).nth(1))
            .filter_map(|rest| rest.split([' ', ',']).next()?.parse::<u64>().ok())
            .sum()
    };
    let (lost, waited_for) = (field("; "), field(" ms for "));
    eprintln!(
        "40 copies sent; {ended_before} ended before the push, the destroys waited for {waited_for}, {lost} still in \
         flight after; shadow answered {}; destroy lines: {teardown:?}; series after the push: {:?}",
        shadow.answered(),
        envoy_lines(&envoy)
    );
    // The first destroy waits for its copies; the second, after it, finds its own ended.
    assert!(waited_for > 0, "no destroy had copies to wait for:\n{log}");
    assert_eq!(lost, 0, "the destroy did not wait for its copies:\n{log}");
    assert_eq!(
        shadow.answered(),
        40,
        "every copy got its answer before its config went"
    );
    assert!(alive(&envoy), "Envoy died after the push:\n{log}");
    assert!(destroyed, "the old configs were not destroyed after the push:\n{log}");
    let after = client::http1("GET", &envoy.url("/after"), &[], Bytes::new()).await;
    assert_eq!(after.status, 200);
}

/// Series across a push (series.rs): each config has its own Envoy stats scope, and Envoy
/// frees a labelled counter when the last scope holding it goes, so a counter only the old
/// configs had counted restarted at 0 once they were destroyed. Here nothing is sent between
/// the push and the end of the old configs' drain: the counters must still be there after it,
/// and go on from their values, equal to what the shadow received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_keeps_every_counter_series_going_on_from_its_value() {
    use vrata_mirror_testkit::lds::LdsConfig;
    let before = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}},
 "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}}}"#;
    let pushed = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100, "timeoutMs": 4000}},
 "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "percentage": 100, "timeoutMs": 4000}}}}}"#;
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let bootstrap_for = |plugin: &str| {
        let mut bootstrap = Setup::new(plugin, primary.port(), shadow.port()).bootstrap();
        bootstrap.mirroring = Mirroring::DynamicModule {
            module: native_module().display().to_string(),
            plugin: plugin.to_owned(),
            workers: 2,
        };
        bootstrap
    };
    let lds = LdsConfig::new(&bootstrap_for(before), "native-series");
    lds.publish(&bootstrap_for(before));
    let yaml = lds.bootstrap.clone();
    let envoy = tokio::task::spawn_blocking(move || {
        Envoy::try_start_env(&yaml, 2, &["--drain-time-s", "1"], &[])
            .unwrap_or_else(|f| panic!("Envoy did not start:\n{}", f.log))
    })
    .await
    .unwrap();
    let counted = |api: f64, default: f64| {
        requests(&envoy, "api") == api
            && requests(&envoy, "default") == default
            && responses(&envoy, "api", "2xx") == api
            && responses(&envoy, "default", "2xx") == default
    };
    client::load(&envoy.url("/api/a"), 20, 4, "GET", Bytes::new()).await;
    client::load(&envoy.url("/d"), 10, 4, "GET", Bytes::new()).await;
    assert!(
        eventually(Duration::from_secs(10), || shadow.count() == 30 && counted(20.0, 10.0)).await,
        "before the push: shadow {}, series {:?}",
        shadow.count(),
        envoy_lines(&envoy)
    );
    // Envoy shows a histogram once its stats flush (5 s) merged it.
    let latencies = |route: &str| {
        envoy.metric(
            "envoy_vrata_mirror_response_time_ms_count",
            &[("route", route), ("destination", "shadow")],
        )
    };
    assert!(
        eventually(Duration::from_secs(12), || latencies("api") == 20.0).await,
        "the latency histogram of route api: {}",
        latencies("api")
    );
    let series_before = envoy_lines(&envoy);

    let updates = envoy.stat("listener_manager.lds.update_success");
    lds.publish(&bootstrap_for(pushed));
    assert!(
        eventually(Duration::from_secs(10), || envoy
            .stat("listener_manager.lds.update_success")
            > updates)
        .await
    );
    // The old filter chains drain (1 s) and their configs go; Envoy frees their scopes on the
    // main thread soon after.
    assert!(
        eventually(Duration::from_secs(10), || envoy
            .stat("listener_manager.total_filter_chains_draining")
            == 0)
        .await,
        "the old filter chains did not drain"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let series_after = envoy_lines(&envoy);
    eprintln!("series before the push: {series_before:?}\nafter it and the drain: {series_after:?}");
    assert!(
        counted(20.0, 10.0),
        "the counters did not survive the push:\nbefore {series_before:?}\nafter {series_after:?}"
    );

    client::load(&envoy.url("/api/b"), 10, 4, "GET", Bytes::new()).await;
    let went_on = eventually(Duration::from_secs(10), || shadow.count() == 40 && counted(30.0, 10.0)).await;
    let api_copies = shadow.received().iter().filter(|c| c.uri.starts_with("/api")).count();
    eprintln!(
        "after 10 more: shadow {} ({api_copies} on /api), series {:?}",
        shadow.count(),
        envoy_lines(&envoy)
    );
    assert!(went_on, "the counters did not go on from their values");
    // A histogram series is created in a scope only by a sample, and none came between the push
    // and the old configs' end: this one starts again (series.rs). Its samples after the push are
    // each counted once, wherever the host recorded them.
    // 10: restarted, 30: carried; anything else is a sample lost or counted twice.
    let once = eventually(Duration::from_secs(12), || [10.0, 30.0].contains(&latencies("api"))).await;
    eprintln!(
        "latency histogram of route api after the push: count {}",
        latencies("api")
    );
    assert!(once, "count {}", latencies("api"));
    assert_eq!(
        requests(&envoy, "api"),
        api_copies as f64,
        "requests_total{{route=api}} != what the shadow received"
    );
    assert!(alive(&envoy), "Envoy is not live:\n{}", envoy.log());
}
