//! What only the native host has, in the real Envoy (1.40.0 by default, or $VRATA_ENVOY),
//! loaded from $VRATA_NATIVE (else target/native/, `make build`): it loads and matches the ABI
//! version, refuses a filter layout that does not fit the worker count, survives panics in its
//! hooks, and a config replaced while its copies are in flight waits for them (teardown).
//! Everything both hosts do is in the end-to-end suite, which runs each case on both
//! (tests/e2e, `native::` tests), on the same testkit rig as these.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use std::time::Duration;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, mirrored, responses, start_envoy_on, Rig};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

const PLUGIN: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}},
 "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}}}"#;
const ABI_MATCHED: &str = "Dynamic module ABI version v0.2.0 matched.";

/// The native host's setup at `workers` workers (ports unused: for `envoy --mode validate`).
fn native(plugin: &str, workers: u32) -> Setup {
    let mut setup = Setup::new(plugin, 1, 2).on(Host::Native);
    setup.workers = workers;
    setup
}

/// `panics_total`, the native host's own counter (not in the catalogue).
fn panics(envoy: &Envoy) -> f64 {
    envoy.metric("envoy_vrata_mirror_panics_total", &[])
}

#[test]
fn validate_loads_the_module_and_matches_the_abi_version() {
    let (ok, log) = native(PLUGIN, 2).validate();
    assert!(ok, "envoy --mode validate refused the native host's config:\n{log}");
    assert!(log.contains(ABI_MATCHED), "no {ABI_MATCHED:?} in:\n{log}");
}

#[test]
fn a_filter_layout_that_does_not_fit_the_worker_count_is_refused() {
    // Rendered for 2 workers, run with 1 (and the other way round): each config must act on
    // exactly one existing worker, and every worker needs one.
    let (ok, log) = vrata_mirror_testkit::envoy::validate_with(&native(PLUGIN, 2).render(), &["--concurrency", "1"]);
    assert!(!ok, "accepted 2 per-worker filters at 1 worker:\n{log}");
    assert!(
        log.contains("vrata-mirror: filter_name \"vrata-mirror/worker-0-of-2\" does not fit this Envoy"),
        "{log}"
    );
    let (ok, log) = vrata_mirror_testkit::envoy::validate_with(&native(PLUGIN, 1).render(), &["--concurrency", "2"]);
    assert!(!ok, "accepted one filter for 2 workers:\n{log}");
    assert!(
        log.contains("with 2 workers (--concurrency 2) the filter goes in the chain 2 times"),
        "{log}"
    );
}

/// The rig on the native host, 1 worker, with `env` in Envoy's environment.
async fn armed_rig(env: &[(&str, &str)]) -> Rig {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let setup = Setup::new(PLUGIN, primary.port(), shadow.port()).on(Host::Native);
    let envoy = setup.start_with(&[], env).await;
    Rig { primary, shadow, envoy }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_answers_and_stays_up_after_panics_in_every_kind_of_hook() {
    let rig = armed_rig(&[("VRATA_NATIVE_TEST_PANIC", "1")]).await;
    let envoy = &rig.envoy;
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
    assert_eq!(rig.primary.count(), 5, "the primary did not get every request");
    assert!(envoy.live(), "Envoy is not live after the panics:\n{}", envoy.log());
    let counted = eventually(Duration::from_secs(5), || panics(envoy) == 4.0).await;
    assert!(
        counted,
        "envoy_vrata_mirror_panics_total is {}, want 4:\n{}",
        panics(envoy),
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
    let rig = armed_rig(&[]).await;
    let envoy = &rig.envoy;
    let reply = client::http1(
        "GET",
        &envoy.url("/api/p"),
        &[("x-vrata-native-test-panic", "request_headers")],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(panics(envoy), 0.0, "{}", envoy.prometheus());
    assert!(!envoy.log().contains("panic caught"), "{}", envoy.log());
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
        let mut setup = Setup::new(plugin, primary.port(), shadow.port()).on(Host::Native);
        setup.workers = 2;
        setup.bootstrap()
    };
    let lds = LdsConfig::new(&bootstrap_for(slow), "native-push");
    lds.publish(&bootstrap_for(slow));
    let envoy = start_envoy_on(Host::Native, lds.bootstrap.clone(), 2, &["--drain-time-s", "1"]).await;
    let replies = client::load(&envoy.url("/x"), 40, 8, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        eventually(Duration::from_secs(5), || shadow.count() == 40).await,
        "copies started: {}",
        shadow.count()
    );
    let sent_before = eventually(Duration::from_secs(5), || mirrored(&envoy, "default", "shadow") == 40.0).await;
    assert!(sent_before, "copies not counted as sent:\n{}", envoy.prometheus());
    let ended_before = responses(&envoy, "default", "shadow", "2xx");
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
    assert!(envoy.live(), "Envoy died after the push:\n{log}");
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
        let mut setup = Setup::new(plugin, primary.port(), shadow.port()).on(Host::Native);
        setup.workers = 2;
        setup.bootstrap()
    };
    let lds = LdsConfig::new(&bootstrap_for(before), "native-series");
    lds.publish(&bootstrap_for(before));
    let envoy = start_envoy_on(Host::Native, lds.bootstrap.clone(), 2, &["--drain-time-s", "1"]).await;
    let counted = |api: f64, default: f64| {
        mirrored(&envoy, "api", "shadow") == api
            && mirrored(&envoy, "default", "shadow") == default
            && responses(&envoy, "api", "shadow", "2xx") == api
            && responses(&envoy, "default", "shadow", "2xx") == default
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
        mirrored(&envoy, "api", "shadow"),
        api_copies as f64,
        "requests_total{{route=api}} != what the shadow received"
    );
    assert!(envoy.live(), "Envoy is not live:\n{}", envoy.log());
}
