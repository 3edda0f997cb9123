//! End to end, no mirror loops in a mesh (issue 23 part 2): a chain of two
//! real Envoys with the same plugin, as when a `WasmPlugin` selected by
//! labels lands on the canary's own sidecar too. The edge Envoy mirrors to
//! the canary's sidecar Envoy; the sidecar forwards to the canary and would
//! mirror again. Every copy carries the loop marker, so the sidecar never
//! mirrors a copy: the canary gets exactly one copy per sampled request, and
//! the sidecar counts each as skip reason `loop`. With the marker off, the
//! same chain mirrors the copies again (the control that shows the test
//! can fail).

use vrata_mirror_core::telemetry::catalogue::{REQUESTS as SENT, SKIPPED};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, ARRIVAL, QUIET};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

/// Sampled requests per case: a sample of 50 %, decided by `x-user-id`,
/// so the test knows which requests were sampled (the sampling draw is
/// the same one the filter makes, see sampling::keyed).
const REQUESTS: usize = 40;

/// The chain: client → edge Envoy → primary, and edge's copy → sidecar
/// Envoy → canary, and the sidecar's own mirror → `echo` (the copy of a
/// copy, which must never happen with the marker on).
struct Chain {
    primary: Upstream,
    canary: Upstream,
    echo: Upstream,
    edge: Envoy,
    sidecar: Envoy,
}

/// Both Envoys on `host`.
async fn chain(host: Host, plugin: &str) -> Chain {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let canary = Upstream::start("canary", Behaviour::Answer).await;
    let echo = Upstream::start("echo", Behaviour::Answer).await;
    // The canary's sidecar: the same plugin, its primary is the canary.
    let sidecar = Setup::new(plugin, canary.port(), echo.port()).on(host).start().await;
    // The edge mirrors to the sidecar's listener.
    let edge = Setup::new(plugin, primary.port(), sidecar.listener.port())
        .on(host)
        .start()
        .await;
    Chain {
        primary,
        canary,
        echo,
        edge,
        sidecar,
    }
}

fn sent(envoy: &Envoy) -> f64 {
    envoy.mirror_metric(&SENT, &[("route", "api"), ("destination", "shadow")])
}

fn looped(envoy: &Envoy) -> f64 {
    envoy.mirror_metric(
        &SKIPPED,
        &[("route", "api"), ("destination", "shadow"), ("reason", "loop")],
    )
}

/// Sends the requests through the edge; returns how many the sample took.
async fn drive(chain: &Chain) -> usize {
    for i in 0..REQUESTS {
        let user = format!("user-{i}");
        let reply = client::http1(
            "GET",
            &chain.edge.url(&format!("/api/item/{i}")),
            &[("x-user-id", &user)],
            "",
        )
        .await;
        assert_eq!(reply.status, 200, "the client is served by the primary");
    }
    assert!(
        eventually(ARRIVAL, || chain.primary.count() == REQUESTS).await,
        "the primary got every request: {}",
        chain.primary.count()
    );
    let sampled = sent(&chain.edge);
    assert!(
        sampled > 0.0 && sampled < REQUESTS as f64,
        "a 50 % sample of {REQUESTS} took {sampled}"
    );
    sampled as usize
}

fn plugin(loop_marker: &str) -> String {
    format!(
        r#"{{{loop_marker}"forward": {{"mirror": {{"destinationId": "shadow", "percentage": 50, "sampleBy": "x-user-id"}}}}}}"#
    )
}

/// One copy per sampled request reaches the canary, marked with `name: 1`;
/// the sidecar sends none on and counts every copy as `loop`.
async fn assert_one_copy_per_sampled_request(chain: &Chain, marker: &str, absent: &str) {
    let sampled = drive(chain).await;
    let copies = chain.canary.wait_for(sampled, ARRIVAL).await;
    let copies_then = chain.canary.settle(QUIET).await;
    assert_eq!(copies_then.len(), sampled, "exactly one copy per sampled request");
    for copy in &copies {
        assert_eq!(copy.header(marker), Some("1"), "the copy carries {marker}: {copy:?}");
        assert_eq!(copy.header(absent), None, "and not {absent}");
    }
    assert!(
        eventually(ARRIVAL, || looped(&chain.sidecar) == sampled as f64).await,
        "the sidecar counts each copy as loop: {}",
        chain.sidecar.prometheus()
    );
    assert_eq!(sent(&chain.sidecar), 0.0, "the sidecar mirrored nothing");
    assert_eq!(chain.echo.settle(QUIET).await.len(), 0, "no copy of a copy");
    assert_eq!(looped(&chain.edge), 0.0, "the edge's requests carry no marker");
}

async fn the_default_marker_stops_a_copy_from_being_mirrored_again(host: Host) {
    let chain = chain(host, &plugin("")).await;
    assert_one_copy_per_sampled_request(&chain, "x-vrata-mirror", "x-shadow-copy").await;
}

async fn a_renamed_marker_stops_it_the_same_way(host: Host) {
    let chain = chain(host, &plugin(r#""loopMarker": "x-shadow-copy", "#)).await;
    assert_one_copy_per_sampled_request(&chain, "x-shadow-copy", "x-vrata-mirror").await;
}

/// The control: with the marker off, the sidecar mirrors the copies it
/// receives (the loop the marker prevents), and counts no `loop`.
async fn with_the_marker_off_the_sidecar_mirrors_the_copies_again(host: Host) {
    let chain = chain(host, &plugin(r#""loopMarker": false, "#)).await;
    let sampled = drive(&chain).await;
    let copies = chain.canary.wait_for(sampled, ARRIVAL).await;
    assert!(copies.iter().all(|c| c.header("x-vrata-mirror").is_none()), "unmarked");
    // The same `x-user-id` is sampled the same way on the sidecar: every copy
    // is mirrored again.
    let echoed = chain.echo.wait_for(sampled, ARRIVAL).await;
    assert_eq!(echoed.len(), sampled, "the copies were mirrored again");
    assert_eq!(looped(&chain.sidecar), 0.0);
    assert_eq!(sent(&chain.sidecar), sampled as f64);
}

vrata_mirror_testkit::on_each_host!(
    async the_default_marker_stops_a_copy_from_being_mirrored_again,
    async a_renamed_marker_stops_it_the_same_way,
    async with_the_marker_off_the_sidecar_mirrors_the_copies_again,
);
