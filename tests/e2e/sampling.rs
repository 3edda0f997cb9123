//! End to end: how many requests are mirrored. 0 % sends nothing, 100 %
//! sends every request also under load, 10 % lands within binomial bounds,
//! and `sampleBy` sends the same key the same way every time.

use bytes::Bytes;
use std::collections::BTreeSet;
use vrata_mirror_core::telemetry::catalogue::SKIPPED;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, mirrored, responses, Rig, ARRIVAL, QUIET};
use vrata_mirror_testkit::sampling::binomial_bounds;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

async fn zero_percent_sends_nothing(host: Host) {
    let rig = Rig::start_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 0}}}"#,
    )
    .await;
    let replies = client::load(&rig.url("/api/x"), 200, 8, "POST", Bytes::from_static(b"body")).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(rig.primary.count(), 200);
    assert_eq!(rig.shadow.settle(QUIET).await.len(), 0);
    assert_eq!(rig.mirrored("api", "shadow"), 0.0);
}

/// Every request is mirrored at 100 %, also at concurrency 32 over two
/// Envoy workers (two VMs), and the counter agrees with the shadow exactly.
async fn hundred_percent_mirrors_every_request_under_load(host: Host) {
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let mut setup = Setup::new(
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}"#,
        primary.port(),
        shadow.port(),
    )
    .on(host);
    setup.workers = 2;
    let envoy = setup.start().await;
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
    let counted = || mirrored(&envoy, "api", "shadow");
    assert!(
        eventually(ARRIVAL, || counted() == 2000.0).await,
        "counter says {}",
        counted()
    );
    assert_eq!(shadow.settle(QUIET).await.len(), 2000, "and nothing more");
    assert!(copies.iter().all(|c| c.body.len() == 2048));
    assert!(
        eventually(ARRIVAL, || responses(&envoy, "api", "shadow", "2xx") == 2000.0).await,
        "every copy answered 2xx:\n{}",
        envoy.prometheus()
    );
    assert_eq!(envoy.mirror_lines(&SKIPPED), Vec::<String>::new(), "nothing skipped");
    let per_worker = envoy.connections_per_worker(2);
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "the load must reach both workers: connections per worker {per_worker:?}"
    );
}

async fn ten_percent_lands_within_binomial_bounds(host: Host) {
    let rig = Rig::start_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 10}}}"#,
    )
    .await;
    let replies = client::load(&rig.url("/sample"), 2000, 16, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let mirrored = rig.shadow.settle(QUIET * 2).await.len() as u64;
    let bounds = binomial_bounds(2000, 0.10);
    assert!(bounds.contains(&mirrored), "{mirrored} mirrored, expected {bounds:?}");
    assert!(eventually(ARRIVAL, || rig.mirrored("default", "shadow") == mirrored as f64).await);
}

async fn sample_by_sends_the_same_key_the_same_way_every_time(host: Host) {
    let rig = Rig::start_on(
        host,
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

vrata_mirror_testkit::on_each_host!(
    async zero_percent_sends_nothing,
    async hundred_percent_mirrors_every_request_under_load(4),
    async ten_percent_lands_within_binomial_bounds,
    async sample_by_sends_the_same_key_the_same_way_every_time,
);
