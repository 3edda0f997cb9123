use super::*;
use crate::config::AuthorityRewrite;

fn ok(json: &str) -> PluginConfig {
    match parse(json.as_bytes()) {
        Ok(cfg) => cfg,
        Err(err) => panic!("expected {json} to load, got: {err}"),
    }
}

fn err(json: &str) -> ConfigError {
    match parse(json.as_bytes()) {
        Ok(cfg) => panic!("expected {json} to be refused, got {cfg:?}"),
        Err(err) => err,
    }
}

#[test]
fn the_seed_example_loads_with_vrata_defaults() {
    let cfg = ok(r#"{"forward": {"destinations": [{"destinationId": "primary", "weight": 100}],
                     "mirror": {"destinationId": "shadow", "percentage": 10}}}"#);
    let mirror = &cfg.default_policy.mirrors[0];
    assert_eq!(mirror.destination, "shadow");
    assert!((mirror.rate.fraction() - 0.10).abs() < 1e-9);
    assert_eq!(mirror.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert_eq!(mirror.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert_eq!(mirror.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(mirror.authority, AuthorityRewrite::Keep);
    assert!(mirror.methods.is_none() && mirror.sample_by.is_none());
    assert_eq!(cfg.destinations, ["shadow"]);
    assert!(!cfg.needs_route_name());
}

#[test]
fn percentage_defaults_to_100_and_0_means_nothing() {
    let all = ok(r#"{"forward": {"mirror": {"destinationId": "s"}}}"#);
    assert!(all.default_policy.mirrors[0].rate.is_always());
    let none = ok(r#"{"forward": {"mirror": {"destinationId": "s", "percentage": 0}}}"#);
    assert!(none.default_policy.mirrors[0].rate.is_never());
    let fine = ok(r#"{"forward": {"mirror": {"destinationId": "s", "percentage": 0.0001}}}"#);
    assert!(!fine.default_policy.mirrors[0].rate.is_never());
}

#[test]
fn every_optional_field_is_read() {
    let cfg = ok(r#"{"forward": {"mirror": {
        "destinationId": "shadow", "percentage": 12.5, "timeoutMs": 250, "maxBodyBytes": 4096,
        "maxInFlight": 7, "sampleBy": "X-User-Id", "methods": ["GET", "POST", "GET"],
        "hostSuffix": "-shadow", "addHeaders": {"X-Mirror": "yes"}, "removeHeaders": ["Cookie"]}}}"#);
    let m = &cfg.default_policy.mirrors[0];
    assert_eq!(m.timeout_ms, 250);
    assert_eq!(m.max_body_bytes, 4096);
    assert_eq!(m.max_in_flight, 7);
    assert_eq!(m.sample_by.as_deref(), Some("x-user-id"));
    assert_eq!(m.methods.as_deref(), Some(&["GET".to_owned(), "POST".to_owned()][..]));
    assert_eq!(m.authority, AuthorityRewrite::Suffix("-shadow".to_owned()));
    assert_eq!(m.add_headers, [("x-mirror".to_owned(), "yes".to_owned())]);
    assert_eq!(m.remove_headers, ["cookie"]);
}

#[test]
fn several_mirrors_and_routes_share_destination_indexes() {
    let cfg = ok(r#"{
        "forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "b", "percentage": 5}]},
        "routes": {
            "api": {"forward": {"mirror": {"destinationId": "b"}}},
            "admin": {"forward": {"mirror": null}},
            "static": {}
        }}"#);
    assert_eq!(cfg.destinations, ["a", "b"]);
    assert_eq!(cfg.default_policy.mirrors.len(), 2);
    assert!(cfg.needs_route_name());
    let api = cfg.policy_for(Some("api"));
    assert_eq!(api.mirrors[0].destination_index, 1);
    assert!(cfg.policy_for(Some("admin")).mirrors.is_empty());
    assert!(cfg.policy_for(Some("static")).mirrors.is_empty());
    assert_eq!(cfg.policy_for(Some("other")).mirrors.len(), 2);
    assert_eq!(cfg.policy_for(None).mirrors.len(), 2);
}

#[test]
fn vrata_keys_owned_by_envoy_are_accepted_and_ignored() {
    let cfg = ok(r#"{"forward": {"destinationBalancing": {"type": "WEIGHTED_RANDOM"},
        "timeouts": {"request": "5s"}, "retry": {"attempts": 2}, "rewrite": {"path": "/"},
        "maxGrpcTimeout": "10s", "mirror": {"destinationId": "s"}}}"#);
    assert_eq!(cfg.default_policy.mirrors.len(), 1);
}

#[test]
fn routes_alone_are_enough() {
    let cfg = ok(r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s"}}}}}"#);
    assert!(cfg.default_policy.mirrors.is_empty());
    assert_eq!(cfg.policy_for(Some("api")).mirrors.len(), 1);
}

/// Each bad config, and the field path its message must name.
const BAD: &[(&str, &str)] = &[
    ("", "empty"),
    ("   \n", "empty"),
    ("{not json", "not valid JSON"),
    ("[]", "(top level)"),
    ("{}", "nothing to mirror"),
    (r#"{"forward": {"mirror": {"destinationId": "s"}}, "mirrror": {}}"#, "mirrror"),
    (r#"{"forward": {"mirrror": {"destinationId": "s"}}}"#, "forward.mirrror"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "percentge": 5}}}"#, "forward.mirror.percentge"),
    (r#"{"forward": {"mirror": {}}}"#, "forward.mirror.destinationId"),
    (r#"{"forward": {"mirror": {"destinationId": ""}}}"#, "forward.mirror.destinationId"),
    (r#"{"forward": {"mirror": {"destinationId": 7}}}"#, "forward.mirror.destinationId"),
    (r#"{"forward": {"mirror": {"destinationId": " s"}}}"#, "forward.mirror.destinationId"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "percentage": 101}}}"#, "forward.mirror.percentage"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "percentage": -1}}}"#, "forward.mirror.percentage"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "percentage": "10"}}}"#, "forward.mirror.percentage"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": 0}}}"#, "forward.mirror.timeoutMs"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": -5}}}"#, "forward.mirror.timeoutMs"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": 1.5}}}"#, "forward.mirror.timeoutMs"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "maxInFlight": 0}}}"#, "forward.mirror.maxInFlight"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "maxBodyBytes": 1e12}}}"#, "forward.mirror.maxBodyBytes"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "sampleBy": "x user"}}}"#, "forward.mirror.sampleBy"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "methods": []}}}"#, "forward.mirror.methods"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "methods": ["get"]}}}"#, "forward.mirror.methods[0]"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "authority": "a", "hostSuffix": "-s"}}}"#, "forward.mirror"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "hostSuffix": "-s:1"}}}"#, "forward.mirror.hostSuffix"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"content-length": "1"}}}}"#, "forward.mirror.addHeaders[\"content-length\"]"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"x-a": 1}}}}"#, "forward.mirror.addHeaders[\"x-a\"]"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"x-a": "1\r\nx-b: 2"}}}}"#, "forward.mirror.addHeaders[\"x-a\"]"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "removeHeaders": [":path"]}}}"#, "forward.mirror.removeHeaders[0]"),
    (r#"{"forward": {"mirror": {"destinationId": "s", "removeHeaders": "cookie"}}}"#, "forward.mirror.removeHeaders"),
    (r#"{"forward": {"mirror": {"destinationId": "s"}, "mirrors": []}}"#, "forward"),
    (r#"{"forward": {"mirrors": [{"destinationId": "s"}, {"destinationId": "s"}]}}"#, "forward.mirrors[1].destinationId"),
    (r#"{"forward": {"mirrors": {"destinationId": "s"}}}"#, "forward.mirrors"),
    (r#"{"forward": {"mirror": "shadow"}}"#, "forward.mirror"),
    (r#"{"forward": {"destinations": [{"destinationId": "p", "weight": -1}], "mirror": {"destinationId": "s"}}}"#, "forward.destinations[0].weight"),
    (r#"{"forward": {"destinations": [{"weight": 1}], "mirror": {"destinationId": "s"}}}"#, "forward.destinations[0].destinationId"),
    (r#"{"routes": {"api": {"forwrd": {}}}}"#, "routes[\"api\"].forwrd"),
    (r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "percentage": 200}}}}}"#, "routes[\"api\"].forward.mirror.percentage"),
    (r#"{"routes": []}"#, "routes"),
    (r#"{"forward": {"mirror": {"destinationId": "a"}, "mirror": {"destinationId": "b"}}}"#, "duplicate key \"mirror\""),
    // Keys that are not plain names are quoted: an error line is one line and names something.
    (r#"{"forward": {"mirror": {"destinationId": "s", "percentage\n[critical] forged": 5}}}"#, r#"forward.mirror["percentage\n[critical] forged"]"#),
    (r#"{"": null, "forward": {}}"#, r#"[""]: unknown key"#),
];

#[test]
fn bad_configs_are_refused_with_a_message_naming_the_field() {
    assert!(BAD.len() >= 15);
    for (json, must_name) in BAD {
        let message = err(json).to_string();
        assert!(message.contains(must_name), "config {json}\nmessage {message:?}\nshould name {must_name:?}");
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

#[test]
fn messages_show_the_value_and_what_is_allowed() {
    let message = err(r#"{"forward": {"mirror": {"destinationId": "s", "percentage": "10"}}}"#).to_string();
    assert_eq!(
        message,
        "forward.mirror.percentage: got \"10\" (a string), expected a number from 0 to 100"
    );
    let typo = err(r#"{"forward": {"mirror": {"destinationId": "s", "percentge": 5}}}"#).to_string();
    assert!(typo.contains("did you mean \"percentage\"?"), "{typo}");
    let zero = err(r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": 0}}}"#).to_string();
    assert!(zero.contains("no timeout"), "{zero}");
    let lower = err(r#"{"forward": {"mirror": {"destinationId": "s", "methods": ["get"]}}}"#).to_string();
    assert!(lower.contains("\"GET\""), "{lower}");
}
