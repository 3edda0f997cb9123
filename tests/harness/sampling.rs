//! Which requests are copied, and under which route's policy: percentage,
//! `sampleBy`, `methods`, and the per-route `routes` map keyed by the
//! route name Envoy reports as the `xds.route_name` property.

use crate::wasmhost::{mirror_config, Host};
use vrata_mirror_core::sampling::{key_draw, SampleRate};
use vrata_mirror_testkit::sampling::binomial_bounds;

#[test]
fn percentage_0_copies_nothing_and_100_copies_everything() {
    let mut none = Host::load(&mirror_config(r#""percentage": 0"#));
    let mut all = Host::load(&mirror_config(r#""percentage": 100"#));
    for i in 0..50 {
        none.request().get(&format!("/{i}")).send().assert_never_paused();
        all.request().get(&format!("/{i}")).send().assert_never_paused();
    }
    none.run_pending();
    all.run_pending();
    assert!(none.calls().is_empty());
    assert!(
        none.metric_names().is_empty(),
        "a request out of the sample is not a skip: {:?}",
        none.metric_names()
    );
    assert_eq!(all.calls().len(), 50);
    assert_eq!(all.requests_total("unnamed", "shadow"), 50);
    // 0 % and 100 % need no random draw and no header to sample: at 0 % no
    // host call at all, at 100 % one header per request, the loop marker.
    assert_eq!(none.import_calls("proxy_get_header_map_value"), 0);
    assert_eq!(all.import_calls("proxy_get_header_map_value"), 50);
}

#[test]
fn random_sampling_lands_within_binomial_bounds() {
    let n = 2_000;
    for seed in [1, 2, 3] {
        let mut host = Host::builder().seed(seed).load(&mirror_config(r#""percentage": 30"#));
        for i in 0..n {
            host.request().get(&format!("/{i}")).send();
            host.run_pending();
            // Answered at once, so the in-flight cap (128) never interferes.
            host.respond_all(200);
        }
        let copied = host.calls().len() as u64;
        assert!(
            binomial_bounds(n, 0.3).contains(&copied),
            "seed {seed}: {copied} of {n} at 30 %"
        );
        assert_eq!(
            host.accounted("unnamed", "shadow"),
            copied as i64,
            "every sampled request accounted once"
        );
    }
}

#[test]
fn the_same_key_gets_the_same_decision_every_time() {
    let mut host = Host::load(&mirror_config(r#""percentage": 50, "sampleBy": "x-user-id""#));
    let rate = SampleRate::from_percentage(50.0);
    for user in 0..40 {
        let key = format!("user-{user}");
        let expected = rate.admits(key_draw(key.as_bytes()));
        for _ in 0..5 {
            host.request().get("/").headers(&[("x-user-id", &key)]).send();
            host.run_pending();
            host.respond_all(200);
            let copied = host.new_calls().len();
            assert_eq!(
                copied == 1,
                expected,
                "{key}: the decision must follow the key, every time"
            );
        }
    }
}

#[test]
fn two_thousand_keys_at_50_percent_split_about_evenly() {
    let n = 2_000;
    let mut host = Host::load(&mirror_config(r#""percentage": 50, "sampleBy": "x-user-id""#));
    for user in 0..n {
        host.request()
            .get("/")
            .headers(&[("x-user-id", &format!("customer-{user:05}"))])
            .send();
        host.run_pending();
        host.respond_all(200);
    }
    let copied = host.calls().len() as u64;
    assert!(
        binomial_bounds(n, 0.5).contains(&copied),
        "{copied} of {n} keys sampled at 50 %"
    );
}

#[test]
fn a_missing_key_falls_back_to_a_random_draw() {
    let n = 1_000;
    let mut host = Host::load(&mirror_config(r#""percentage": 50, "sampleBy": "x-user-id""#));
    for i in 0..n {
        host.request().get(&format!("/{i}")).send();
        host.run_pending();
        host.respond_all(200);
    }
    let copied = host.calls().len() as u64;
    assert!(
        binomial_bounds(n, 0.5).contains(&copied),
        "{copied} of {n} keyless requests at 50 %"
    );
}

#[test]
fn only_the_configured_methods_are_copied() {
    let mut host = Host::load(&mirror_config(r#""methods": ["POST", "PUT"]"#));
    for method in ["GET", "POST", "HEAD", "PUT", "DELETE"] {
        host.request().method(method, "/").send().assert_never_paused();
    }
    host.run_pending();
    let methods: Vec<String> = host
        .calls()
        .iter()
        .map(|c| c.header(":method").unwrap().to_owned())
        .collect();
    assert_eq!(methods, ["POST", "PUT"]);
    assert!(
        host.skips("unnamed", "shadow").is_empty(),
        "other methods are out of scope, not skipped"
    );
}

const ROUTES: &str = r#"{
    "forward": {"mirror": {"destinationId": "default-shadow"}},
    "routes": {
        "api": {"forward": {"mirror": {"destinationId": "api-shadow", "addHeaders": {"x-route": "api"}}}},
        "admin": {"forward": {"mirror": null}},
        "static": {}
    }}"#;

#[test]
fn each_route_gets_its_own_policy_and_label() {
    let mut host = Host::builder().clusters(&["default-shadow", "api-shadow"]).load(ROUTES);
    host.request().get("/v1/users").route("api").send();
    host.request().get("/admin").route("admin").send();
    host.request().get("/logo.png").route("static").send();
    host.request().get("/other").route("web").send();
    host.request().get("/nameless").send();
    host.run_pending();

    let calls = host.new_calls();
    let summary: Vec<(&str, &str, Option<&str>)> = calls
        .iter()
        .map(|c| (c.cluster.as_str(), c.header(":path").unwrap(), c.header("x-route")))
        .collect();
    assert_eq!(
        summary,
        [
            ("api-shadow", "/v1/users", Some("api")),
            ("default-shadow", "/other", None),
            ("default-shadow", "/nameless", None),
        ],
        "admin and static mirror nothing; unknown or missing routes use the top-level forward"
    );
    assert_eq!(host.requests_total("api", "api-shadow"), 1);
    assert_eq!(host.requests_total("web", "default-shadow"), 1);
    assert_eq!(host.requests_total("unnamed", "default-shadow"), 1);
}

#[test]
fn a_route_label_cannot_break_the_metric_name() {
    let mut host = Host::load(&mirror_config(""));
    host.request().get("/").route("evil;.;destination=.=x").send();
    host.run_pending();
    assert_eq!(
        host.requests_total("evil_._destination_._x", "shadow"),
        1,
        "{:?}",
        host.metric_names()
    );
}
