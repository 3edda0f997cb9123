//! End to end: whatever the shadow does (refuse connections, never answer,
//! answer slowly, answer 500, reset), every client response is identical to
//! the run without mirroring, and the mirror metrics say what happened.

use bytes::Bytes;
use vrata_mirror_core::telemetry::catalogue::LATENCY;
use vrata_mirror_testkit::client::{self, Reply};
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, Rig, ARRIVAL, MIRROR_OFF, QUIET};
use vrata_mirror_testkit::upstream::{closed_port, Behaviour};

/// The same small mix of requests for every scenario.
async fn traffic(rig: &Rig) -> Vec<Reply> {
    let mut replies = Vec::new();
    for i in 0..12 {
        let reply = if i % 2 == 0 {
            client::http1("GET", &rig.url(&format!("/api/get/{i}?q={i}")), &[], "").await
        } else {
            client::http1("POST", &rig.url(&format!("/api/post/{i}")), &[], vec![b'p'; 100 * i]).await
        };
        replies.push(reply);
    }
    replies
}

/// The replies with mirroring off (on the same host): what every scenario
/// must reproduce.
async fn baseline(host: Host) -> Vec<Reply> {
    let rig = Rig::start_on(host, MIRROR_OFF).await;
    traffic(&rig).await
}

fn config(timeout_ms: u32) -> String {
    format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "timeoutMs": {timeout_ms}}}}}}}"#)
}

async fn assert_clients_unaffected(rig: &Rig) {
    let expected = baseline(rig.host()).await;
    let got = traffic(rig).await;
    assert!(got.iter().all(|r| r.status == 200), "{got:?}");
    assert_eq!(got, expected, "client responses differ from the run without mirroring");
}

async fn a_shadow_that_refuses_connections(host: Host) {
    let rig = Rig::build_on(host, &config(1000), Behaviour::Answer, |setup| {
        setup.shadows[0].port = closed_port()
    })
    .await;
    assert_clients_unaffected(&rig).await;
    // The first copies fail to connect; then the back-off stops sending.
    let failures = || rig.responses("api", "shadow", "connect_failure");
    assert!(
        eventually(ARRIVAL, || failures() >= 5.0).await,
        "{}",
        rig.envoy.prometheus()
    );
    assert!(
        rig.skipped("api", "shadow", "backoff") >= 1.0,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(
        rig.mirrored("api", "shadow") + rig.skipped("api", "shadow", "backoff"),
        12.0,
        "every request is either sent or skipped, once"
    );
}

async fn a_stuck_shadow_is_held_to_the_in_flight_cap(host: Host) {
    let rig = Rig::build_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "timeoutMs": 10000, "maxInFlight": 4}}}"#,
        Behaviour::Stuck,
        |_| {},
    )
    .await;
    assert_clients_unaffected(&rig).await;
    let copies = rig.shadow.settle(QUIET).await;
    assert_eq!(copies.len(), 4, "only maxInFlight copies were sent");
    assert_eq!(rig.mirrored("api", "shadow"), 4.0);
    assert_eq!(
        rig.skipped("api", "shadow", "in_flight_limit"),
        8.0,
        "{}",
        rig.envoy.prometheus()
    );
}

async fn a_slow_shadow_is_timed_out_and_counted(host: Host) {
    let rig = Rig::build_on(host, &config(200), Behaviour::SlowMs(1500), |_| {}).await;
    assert_clients_unaffected(&rig).await;
    assert!(
        eventually(ARRIVAL, || rig.responses("api", "shadow", "timeout") >= 5.0).await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(rig.responses("api", "shadow", "2xx"), 0.0);
}

async fn a_slow_shadow_within_its_timeout_shows_its_latency(host: Host) {
    let rig = Rig::build_on(host, &config(2000), Behaviour::SlowMs(300), |_| {}).await;
    assert_clients_unaffected(&rig).await;
    let labels = [("route", "api"), ("destination", "shadow")];
    let count = || rig.envoy.mirror_histogram(&LATENCY, "count", &labels);
    assert!(
        eventually(ARRIVAL, || count() == 12.0).await,
        "{}",
        rig.envoy.prometheus()
    );
    let sum = rig.envoy.mirror_histogram(&LATENCY, "sum", &labels);
    assert!(
        sum >= 12.0 * 300.0 * 0.95,
        "latency sum {sum} ms for 12 copies of a 300 ms shadow"
    );
    assert_eq!(rig.responses("api", "shadow", "2xx"), 12.0);
}

async fn a_shadow_answering_500_shows_up_as_5xx(host: Host) {
    let rig = Rig::build_on(host, &config(1000), Behaviour::Status(500), |_| {}).await;
    assert_clients_unaffected(&rig).await;
    assert!(
        eventually(ARRIVAL, || rig.responses("api", "shadow", "5xx") == 12.0).await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(rig.mirrored("api", "shadow"), 12.0);
    assert_eq!(
        rig.skipped("api", "shadow", "backoff"),
        0.0,
        "a shadow that answers is not backed off"
    );
}

async fn a_shadow_that_resets_is_counted_as_reset(host: Host) {
    let rig = Rig::build_on(host, &config(1000), Behaviour::Reset, |_| {}).await;
    assert_clients_unaffected(&rig).await;
    assert!(
        eventually(ARRIVAL, || rig.responses("api", "shadow", "reset") >= 5.0).await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(rig.responses("api", "shadow", "5xx"), 0.0);
}

/// A body larger than maxBodyBytes: the primary gets all of it and answers
/// 200, no 413 anywhere, the mirror is not sent whole and is counted.
/// `maxInFlight: 1`, so that on the native host, which streams the copy and
/// bounds a worker's unfinished copies by `maxInFlight` x `maxBodyBytes`
/// (README table, row "copy's body"), the bound is the cap itself.
async fn a_body_over_the_cap_reaches_the_primary_whole_and_is_not_mirrored(host: Host) {
    let rig = Rig::start_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "maxBodyBytes": 1048576, "maxInFlight": 1}}}"#,
    )
    .await;
    let body: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    // Declared length: refused before any byte is copied (on both hosts).
    let reply = client::http1("POST", &rig.url("/api/big"), &[], body.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // No declared length (chunked): wasm drops the copy once it would pass
    // the cap (a skip); native has opened it, and resets it there (an end).
    let pieces: Vec<Bytes> = body.chunks(256 * 1024).map(Bytes::copy_from_slice).collect();
    let reply = client::http1_slow_chunked(&rig.url("/api/big"), pieces, std::time::Duration::from_millis(1)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let primaries = rig.primary.received();
    assert_eq!(primaries.len(), 2);
    assert!(primaries.iter().all(|p| p.body == body), "the primary got every byte");
    assert_eq!(rig.shadow.settle(QUIET).await.len(), 0, "no copy arrived whole");
    let (skipped, reset) = match host {
        Host::Wasm => (2.0, 0.0),
        Host::Native => (1.0, 1.0),
    };
    assert!(
        eventually(ARRIVAL, || rig.skipped("api", "shadow", "body_too_large") == skipped
            && rig.responses("api", "shadow", "body_too_large") == reset)
        .await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(
        rig.mirrored("api", "shadow"),
        reset,
        "only native's opened copy was sent"
    );
    assert_eq!(rig.envoy.stat("http.ingress.downstream_rq_4xx"), 0, "no 413 anywhere");
}

/// A shadow cluster with no endpoint at all (every host gone, as when
/// service discovery empties it): Envoy fails the call that starts the copy
/// at once (`dispatch_http_call` and `start_http_stream` alike), so on both
/// hosts the copy is never sent: skipped as `dispatch_failed`, which backs
/// off like a failure.
async fn a_shadow_cluster_with_no_endpoint(host: Host) {
    let primary = vrata_mirror_testkit::upstream::Upstream::start("primary", Behaviour::Answer).await;
    let setup = vrata_mirror_testkit::config::Setup::new(&config(1000), primary.port(), closed_port()).on(host);
    let yaml = setup.render();
    let port = setup.shadows[0].port;
    let endpoint = format!(
        "      cluster_name: shadow\n      endpoints:\n      - lb_endpoints:\n        - endpoint:\n            address:\n              socket_address: {{ address: 127.0.0.1, port_value: {port} }}\n"
    );
    assert!(yaml.contains(&endpoint), "the rendered shadow cluster:\n{yaml}");
    let yaml = yaml.replace(&endpoint, "      cluster_name: shadow\n      endpoints: []\n");
    let envoy = vrata_mirror_testkit::rig::start_envoy_on(host, yaml, 1, &[]).await;
    for i in 0..12 {
        let reply = client::http1("GET", &envoy.url(&format!("/api/get/{i}")), &[], "").await;
        assert_eq!(reply.status, 200, "the client is served by the primary");
    }
    use vrata_mirror_testkit::rig::{mirrored, skipped};
    let failed = skipped(&envoy, "api", "shadow", "dispatch_failed");
    let backoff = skipped(&envoy, "api", "shadow", "backoff");
    assert_eq!(mirrored(&envoy, "api", "shadow"), 0.0, "{}", envoy.prometheus());
    assert!(failed >= 5.0 && backoff >= 1.0, "{}", envoy.prometheus());
    assert_eq!(
        failed + backoff,
        12.0,
        "each request skipped once: {}",
        envoy.prometheus()
    );
}

vrata_mirror_testkit::on_each_host!(
    async a_shadow_that_refuses_connections,
    async a_shadow_cluster_with_no_endpoint,
    async a_stuck_shadow_is_held_to_the_in_flight_cap,
    async a_slow_shadow_is_timed_out_and_counted,
    async a_slow_shadow_within_its_timeout_shows_its_latency,
    async a_shadow_answering_500_shows_up_as_5xx,
    async a_shadow_that_resets_is_counted_as_reset,
    async a_body_over_the_cap_reaches_the_primary_whole_and_is_not_mirrored,
);
