//! End to end: how many requests are mirrored. 0 % sends nothing, 100 %
//! sends every request also under load, 10 % lands within binomial bounds,
//! and `sampleBy` sends the same key the same way every time.

use bytes::Bytes;
use std::collections::BTreeSet;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::rig::{eventually, start_envoy, Rig, ARRIVAL, QUIET};
use vrata_mirror_testkit::sampling::binomial_bounds;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_percent_sends_nothing() {
    let rig = Rig::start(r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 0}}}"#).await;
    let replies = client::load(&rig.url("/api/x"), 200, 8, "POST", Bytes::from_static(b"body")).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(rig.primary.count(), 200);
    assert_eq!(rig.shadow.settle(QUIET).await.len(), 0);
    assert_eq!(rig.mirrored("api", "shadow"), 0.0);
}

/// Every request is mirrored at 100 %, also at concurrency 32 over two
/// Envoy workers (two VMs), and the counter agrees with the shadow exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_percent_mirrors_every_request_under_load() {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let setup = Setup::new(
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}"#,
        primary.port(),
        shadow.port(),
    );
    let envoy = start_envoy(setup.render(), 2).await;
    let replies = client::load(&envoy.url("/api/load"), 2000, 32, "POST", Bytes::from(vec![b'x'; 2048])).await;
    let failures: Vec<_> = replies.iter().filter(|r| r.status != 200).collect();
    assert!(
        failures.is_empty(),
        "{} client failures, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let copies = shadow.wait_for(2000, ARRIVAL).await;
    assert_eq!(copies.len(), 2000, "the shadow received every request");
    let counted = || {
        envoy.metric(
            "vrata_mirror_requests_total",
            &[("route", "api"), ("destination", "shadow")],
        )
    };
    assert!(
        eventually(ARRIVAL, || counted() == 2000.0).await,
        "counter says {}",
        counted()
    );
    assert_eq!(shadow.settle(QUIET).await.len(), 2000, "and nothing more");
    assert!(copies.iter().all(|c| c.body.len() == 2048));
    let skipped = envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("vrata_mirror_skipped_total"))
        .count();
    assert_eq!(skipped, 0, "nothing skipped:\n{}", envoy.prometheus());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_lands_within_binomial_bounds() {
    let rig = Rig::start(r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 10}}}"#).await;
    let replies = client::load(&rig.url("/sample"), 2000, 16, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let mirrored = rig.shadow.settle(QUIET * 2).await.len() as u64;
    let bounds = binomial_bounds(2000, 0.10);
    assert!(bounds.contains(&mirrored), "{mirrored} mirrored, expected {bounds:?}");
    assert!(eventually(ARRIVAL, || rig.mirrored("default", "shadow") == mirrored as f64).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_by_sends_the_same_key_the_same_way_every_time() {
    let rig = Rig::start(
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 50, "sampleBy": "x-user-id"}}}"#,
    )
    .await;
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let before = rig.shadow.count();
        for user in &users {
            assert_eq!(
                client::http1("GET", &rig.url("/profile"), &[("x-user-id", user)], "")
                    .await
                    .status,
                200
            );
        }
        let copies = rig.shadow.settle(QUIET).await;
        let keys: BTreeSet<String> = copies[before..]
            .iter()
            .map(|c| c.header("x-user-id").unwrap().to_owned())
            .collect();
        assert_eq!(keys.len(), copies.len() - before, "no key mirrored twice in a round");
        rounds.push(keys);
    }
    assert_eq!(rounds[0], rounds[1]);
    assert_eq!(rounds[1], rounds[2]);
    let bounds = binomial_bounds(200, 0.5);
    let n = rounds[0].len() as u64;
    assert!(
        bounds.contains(&n),
        "{n} of 200 users in the sample, expected {bounds:?}"
    );
}
