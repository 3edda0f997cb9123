//! End to end: a new plugin configuration pushed over LDS (the way Istio
//! pushes one) while Envoy runs. Found by the soak (issue 14): the mirror
//! counters of a (route, destination) must survive a push that keeps that
//! mirror, also when no request arrives between the push and the moment the
//! old configuration's filter chain is gone.

use std::time::Duration;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::rig::{eventually, mirrored, responses, start_envoy_on, ARRIVAL};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

async fn counters_survive_a_push_that_keeps_the_mirror(host: Host) {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let plugin = |tag: &str| {
        format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "addHeaders": {{"x-config": "{tag}"}}}}}}}}"#)
    };
    let setup = |json: &str| Setup::new(json, primary.port(), shadow.port()).on(host).bootstrap();
    let lds = LdsConfig::new(&setup(&plugin("one")), &format!("counters-{host}"));
    lds.publish(&setup(&plugin("one")));
    // Old connections drain in 1 s, so the old filter chain goes soon.
    let drain = ["--drain-time-s", "1", "--drain-strategy", "immediate"];
    let envoy = start_envoy_on(host, lds.bootstrap.clone(), 1, &drain).await;
    let sent = || mirrored(&envoy, "api", "shadow");
    let ok = || responses(&envoy, "api", "shadow", "2xx");
    for _ in 0..10 {
        assert_eq!(client::http1("GET", &envoy.url("/api/x"), &[], "").await.status, 200);
    }
    assert!(
        eventually(ARRIVAL, || sent() == 10.0 && ok() == 10.0).await,
        "{}",
        envoy.prometheus()
    );

    let updates = envoy.stat("listener_manager.lds.update_success");
    lds.publish(&setup(&plugin("two")));
    assert!(eventually(ARRIVAL, || envoy.stat("listener_manager.lds.update_success") > updates).await);
    // The old configuration's chain drains (1 s) and is destroyed, with no request in between.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Both hosts keep the counters: the wasm VM holds them; the native host
    // keeps every counter series in the scope of every live configuration
    // (crates/native/src/series.rs; README table, row "metric names").
    let kept = 10.0;
    assert_eq!(
        (sent(), ok()),
        (kept, kept),
        "the counters of a mirror the new configuration keeps, after the push:\n{}",
        envoy.prometheus()
    );
    assert_eq!(client::http1("GET", &envoy.url("/api/y"), &[], "").await.status, 200);
    assert!(
        eventually(ARRIVAL, || sent() == kept + 1.0 && ok() == kept + 1.0).await,
        "one more copy counts on top: {} sent, {} 2xx",
        sent(),
        ok()
    );
    let tagged = shadow.wait_for(11, ARRIVAL).await;
    assert_eq!(tagged.last().and_then(|c| c.header("x-config")), Some("two"));
}

vrata_mirror_testkit::on_each_host!(
    async counters_survive_a_push_that_keeps_the_mirror,
);
