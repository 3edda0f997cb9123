//! End to end: per-route configuration through the plugin's `routes` map,
//! and the metrics as Prometheus prints them.

use vrata_mirror_core::telemetry::catalogue::{LATENCY, REQUESTS};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::{Cluster, Route};
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, Rig, ARRIVAL, QUIET};
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

async fn each_route_follows_its_own_entry_and_a_route_turned_off_sends_nothing(host: Host) {
    let second = Upstream::start("canary", Behaviour::Answer).await;
    let second_port = second.port();
    let rig = Rig::build_on(
        host,
        r#"{
          "forward": {"mirror": {"destinationId": "shadow"}},
          "routes": {
            "api": {"forward": {"mirror": {"destinationId": "canary", "addHeaders": {"x-route": "api"}}}},
            "admin": {"forward": {"mirror": null}}
          }
        }"#,
        Behaviour::Answer,
        |setup| {
            setup.routes = vec![
                Route {
                    name: Some("api"),
                    prefix: "/api",
                },
                Route {
                    name: Some("admin"),
                    prefix: "/admin",
                },
                Route {
                    name: Some("default"),
                    prefix: "/",
                },
            ];
            setup.shadows.push(Cluster {
                name: "canary",
                port: second_port,
                max_requests: 1024,
            });
        },
    )
    .await;
    for path in ["/api/a", "/api/b", "/admin/x", "/other"] {
        assert_eq!(client::http1("GET", &rig.url(path), &[], "").await.status, 200);
    }
    second.wait_for(2, ARRIVAL).await;
    rig.shadow.wait_for(1, ARRIVAL).await;
    let to_canary = second.settle(QUIET).await;
    let to_shadow = rig.shadow.received();
    assert_eq!(to_canary.len(), 2, "the api route mirrors to its own destination");
    assert!(to_canary
        .iter()
        .all(|c| c.header("x-route") == Some("api") && c.uri.starts_with("/api")));
    assert_eq!(
        to_shadow.len(),
        1,
        "only /other uses the top-level block; /admin is off"
    );
    assert_eq!(to_shadow[0].uri, "/other");
    assert_eq!(rig.mirrored("api", "canary"), 2.0);
    assert_eq!(rig.mirrored("default", "shadow"), 1.0);
    assert_eq!(rig.mirrored("admin", "shadow"), 0.0);
    assert!(
        !rig.envoy.prometheus().contains("route=\"admin\""),
        "nothing at all is counted for a route turned off"
    );
}

async fn prometheus_prints_the_counter_with_route_and_destination_labels(host: Host) {
    let rig = Rig::start_on(host, r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#).await;
    for _ in 0..3 {
        assert_eq!(client::http1("GET", &rig.url("/api/x"), &[], "").await.status, 200);
    }
    let copies = rig.shadow.wait_for(3, ARRIVAL).await.len();
    // On each host under its own name (the README's table, row "metric names").
    let line = format!(
        "{}{{route=\"api\",destination=\"shadow\"}} 3",
        host.metric_name(&REQUESTS)
    );
    assert!(
        eventually(ARRIVAL, || rig.envoy.prometheus().lines().any(|l| l == line.as_str())).await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(copies, 3, "N equals what the shadow received");
    assert!(eventually(ARRIVAL, || rig.responses("api", "shadow", "2xx") == 3.0).await);
    let histogram_count = format!(
        "{}_count{{route=\"api\",destination=\"shadow\"}} 3",
        host.metric_name(&LATENCY)
    );
    assert!(
        eventually(ARRIVAL, || rig
            .envoy
            .prometheus()
            .lines()
            .any(|l| l == histogram_count.as_str()))
        .await,
        "{}",
        rig.envoy.prometheus()
    );
}

async fn an_unnamed_route_gets_a_stable_label(host: Host) {
    let rig = Rig::build_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#,
        Behaviour::Answer,
        |setup| {
            setup.routes = vec![Route {
                name: None,
                prefix: "/",
            }];
        },
    )
    .await;
    for _ in 0..2 {
        assert_eq!(client::http1("GET", &rig.url("/x"), &[], "").await.status, 200);
    }
    rig.shadow.wait_for(2, ARRIVAL).await;
    assert!(
        eventually(ARRIVAL, || rig.mirrored("unnamed", "shadow") == 2.0).await,
        "{}",
        rig.envoy.prometheus()
    );
}

async fn several_mirrors_each_get_a_copy(host: Host) {
    let second = Upstream::start("analytics", Behaviour::Answer).await;
    let port = second.port();
    let rig = Rig::build_on(
        host,
        r#"{"forward": {"mirrors": [
            {"destinationId": "shadow"},
            {"destinationId": "analytics", "removeHeaders": ["cookie"]}]}}"#,
        Behaviour::Answer,
        |setup| {
            setup.shadows.push(Cluster {
                name: "analytics",
                port,
                max_requests: 1024,
            })
        },
    )
    .await;
    let reply = client::http1("POST", &rig.url("/api/orders"), &[("cookie", "s=1")], "order").await;
    assert_eq!(reply.status, 200);
    let shadow = rig.shadow.wait_for(1, ARRIVAL).await;
    let analytics = second.wait_for(1, ARRIVAL).await;
    assert_eq!((shadow.len(), analytics.len()), (1, 1));
    assert_eq!(shadow[0].body, b"order");
    assert_eq!(analytics[0].body, b"order");
    assert_eq!(shadow[0].header("cookie"), Some("s=1"));
    assert_eq!(analytics[0].header("cookie"), None);
    assert!(
        eventually(ARRIVAL, || rig.mirrored("api", "analytics") == 1.0
            && rig.mirrored("api", "shadow") == 1.0)
        .await
    );
}

vrata_mirror_testkit::on_each_host!(
    async each_route_follows_its_own_entry_and_a_route_turned_off_sends_nothing,
    async prometheus_prints_the_counter_with_route_and_destination_labels,
    async an_unnamed_route_gets_a_stable_label,
    async several_mirrors_each_get_a_copy,
);
