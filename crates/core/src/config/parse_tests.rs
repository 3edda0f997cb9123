use super::*;
use crate::config::{AuthorityRewrite, BodyComparison};

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
    let cfg = ok(
        r#"{"forward": {"destinations": [{"destinationId": "primary", "weight": 100}],
                     "mirror": {"destinationId": "shadow", "percentage": 10}}}"#,
    );
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

/// `destinations` do not route in the filter, but the tools render Envoy's
/// weighted_clusters from them: they are kept as written, per block.
#[test]
fn destinations_are_kept_as_written_per_forward_block() {
    let cfg = ok(
        r#"{"forward": {"destinations": [{"destinationId": "a", "weight": 90}, {"destinationId": "b"}]},
            "routes": {"r": {"forward": {"destinations": [{"destinationId": "c", "weight": 0}]}}, "s": {}}}"#,
    );
    let written = |policy: &crate::config::ForwardPolicy| -> Vec<(String, Option<u64>)> {
        policy.destinations.iter().map(|d| (d.id.clone(), d.weight)).collect()
    };
    assert_eq!(
        written(&cfg.default_policy),
        [("a".to_owned(), Some(90)), ("b".to_owned(), None)]
    );
    assert_eq!(written(cfg.policy_for(Some("r"))), [("c".to_owned(), Some(0))]);
    assert!(cfg.policy_for(Some("s")).destinations.is_empty());
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
    (
        r#"{"forward": {"mirror": {"destinationId": "s"}}, "mirrror": {}}"#,
        "mirrror",
    ),
    (r#"{"forward": {"mirrror": {"destinationId": "s"}}}"#, "forward.mirrror"),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "percentge": 5}}}"#,
        "forward.mirror.percentge",
    ),
    (r#"{"forward": {"mirror": {}}}"#, "forward.mirror.destinationId"),
    (
        r#"{"forward": {"mirror": {"destinationId": ""}}}"#,
        "forward.mirror.destinationId",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": 7}}}"#,
        "forward.mirror.destinationId",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": " s"}}}"#,
        "forward.mirror.destinationId",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "percentage": 101}}}"#,
        "forward.mirror.percentage",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "percentage": -1}}}"#,
        "forward.mirror.percentage",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "percentage": "10"}}}"#,
        "forward.mirror.percentage",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": 0}}}"#,
        "forward.mirror.timeoutMs",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": -5}}}"#,
        "forward.mirror.timeoutMs",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "timeoutMs": 1.5}}}"#,
        "forward.mirror.timeoutMs",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxInFlight": 0}}}"#,
        "forward.mirror.maxInFlight",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxBodyBytes": 1e12}}}"#,
        "forward.mirror.maxBodyBytes",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "sampleBy": "x user"}}}"#,
        "forward.mirror.sampleBy",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "methods": []}}}"#,
        "forward.mirror.methods",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "methods": ["get"]}}}"#,
        "forward.mirror.methods[0]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "authority": "a", "hostSuffix": "-s"}}}"#,
        "forward.mirror",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "hostSuffix": "-s:1"}}}"#,
        "forward.mirror.hostSuffix",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"content-length": "1"}}}}"#,
        "forward.mirror.addHeaders[\"content-length\"]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"x-a": 1}}}}"#,
        "forward.mirror.addHeaders[\"x-a\"]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"x-a": "1\r\nx-b: 2"}}}}"#,
        "forward.mirror.addHeaders[\"x-a\"]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "removeHeaders": [":path"]}}}"#,
        "forward.mirror.removeHeaders[0]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "removeHeaders": "cookie"}}}"#,
        "forward.mirror.removeHeaders",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s"}, "mirrors": []}}"#,
        "forward",
    ),
    (
        r#"{"forward": {"mirrors": [{"destinationId": "s"}, {"destinationId": "s"}]}}"#,
        "forward.mirrors[1].destinationId",
    ),
    (r#"{"forward": {"mirrors": {"destinationId": "s"}}}"#, "forward.mirrors"),
    (r#"{"forward": {"mirror": "shadow"}}"#, "forward.mirror"),
    (
        r#"{"forward": {"destinations": [{"destinationId": "p", "weight": -1}], "mirror": {"destinationId": "s"}}}"#,
        "forward.destinations[0].weight",
    ),
    (
        r#"{"forward": {"destinations": [{"weight": 1}], "mirror": {"destinationId": "s"}}}"#,
        "forward.destinations[0].destinationId",
    ),
    (r#"{"routes": {"api": {"forwrd": {}}}}"#, "routes[\"api\"].forwrd"),
    (
        r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "percentage": 200}}}}}"#,
        "routes[\"api\"].forward.mirror.percentage",
    ),
    (r#"{"routes": []}"#, "routes"),
    (
        r#"{"forward": {"mirror": {"destinationId": "a"}, "mirror": {"destinationId": "b"}}}"#,
        "duplicate key \"mirror\"",
    ),
    // Keys that are not plain names are quoted: an error line is one line and names something.
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "percentage\n[critical] forged": 5}}}"#,
        r#"forward.mirror["percentage\n[critical] forged"]"#,
    ),
    (r#"{"": null, "forward": {}}"#, r#"[""]: unknown key"#),
    // compare
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": true}}}"#,
        "forward.mirror.compare: got true (a boolean)",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": []}}}"#,
        "forward.mirror.compare: got [] (a list)",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"bodyy": "json"}}}}"#,
        "forward.mirror.compare.bodyy: unknown key; did you mean \"body\"?",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"ignorefields": ["a"]}}}}"#,
        "forward.mirror.compare.ignorefields: unknown key; did you mean \"ignoreFields\"?",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "xml"}}}}"#,
        "forward.mirror.compare.body: got \"xml\"",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": ""}}}}"#,
        "forward.mirror.compare.body: got \"\"",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": null}}}}"#,
        "forward.mirror.compare.body: got null",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": true}}}}"#,
        "forward.mirror.compare.body: got true",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "ignoreFields": "ts"}}}}"#,
        "forward.mirror.compare.ignoreFields: got \"ts\" (a string), expected a list",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "ignoreFields": ["ts", ""]}}}}"#,
        "forward.mirror.compare.ignoreFields[1]: got \"\"",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "ignoreFields": [1]}}}}"#,
        "forward.mirror.compare.ignoreFields[0]: got 1 (a number)",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "ignoreFields": ["ts", "id", "ts"]}}}}"#,
        "forward.mirror.compare.ignoreFields[2]: \"ts\" is already listed at forward.mirror.compare.ignoreFields[0]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exact", "ignoreFields": ["ts"]}}}}"#,
        "forward.mirror.compare.ignoreFields: only applies when \"body\" is \"json\" (here it is \"exact\")",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"ignoreFields": ["ts"]}}}}"#,
        "forward.mirror.compare.ignoreFields: only applies when \"body\" is \"json\" (here it is \"none\")",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"maxBodyBytes": 10}}}}"#,
        "forward.mirror.compare.maxBodyBytes: only applies when bodies are compared",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exact", "maxBodyBytes": -1}}}}"#,
        "forward.mirror.compare.maxBodyBytes: got -1 (a number), expected an integer from 0 to 16777216",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exact", "maxBodyBytes": 16777217}}}}"#,
        "forward.mirror.compare.maxBodyBytes: got 16777217",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exact", "maxBodyBytes": 1024.5}}}}"#,
        "forward.mirror.compare.maxBodyBytes: got 1024.5",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exact", "maxBodyBytes": "1MiB"}}}}"#,
        "forward.mirror.compare.maxBodyBytes: got \"1MiB\" (a string)",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"logMismatches": -1}}}}"#,
        "forward.mirror.compare.logMismatches: got -1 (a number), expected an integer from 0 to 10000",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"logMismatches": 10001}}}}"#,
        "forward.mirror.compare.logMismatches: got 10001",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"logMismatches": 1.5}}}}"#,
        "forward.mirror.compare.logMismatches: got 1.5",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "body": "exact"}}}}"#,
        "duplicate key \"body\"",
    ),
    (
        r#"{"forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "b", "compare": {"body": "xml"}}]}}"#,
        "forward.mirrors[1].compare.body",
    ),
    (
        r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "compare": {"body": "xml"}}}}}}"#,
        "routes[\"api\"].forward.mirror.compare.body: got \"xml\"",
    ),
    (
        r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "compare": {"logMismatches": -3}}}}}}"#,
        "routes[\"api\"].forward.mirror.compare.logMismatches",
    ),
    (
        r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "ignoreFields": ["a", "a"]}}}}}}"#,
        "routes[\"api\"].forward.mirror.compare.ignoreFields[1]",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": 0}}}"#,
        "forward.mirror.maxRequestsPerSecond: got 0 (a number), expected a number above 0 and at most 1000000",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": -2}}}"#,
        "forward.mirror.maxRequestsPerSecond: got -2",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": "10/s"}}}"#,
        "forward.mirror.maxRequestsPerSecond: got \"10/s\" (a string)",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": 1000001}}}"#,
        "forward.mirror.maxRequestsPerSecond: got 1000001",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": null}}}"#,
        "forward.mirror.maxRequestsPerSecond: got null",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": 10, "burst": 0}}}"#,
        "forward.mirror.burst: got 0 (a number), expected an integer from 1 to 1000000",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": 10, "burst": 2.5}}}"#,
        "forward.mirror.burst: got 2.5",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "burst": 5}}}"#,
        "forward.mirror.burst: only applies with \"maxRequestsPerSecond\"",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestPerSecond": 5}}}"#,
        "forward.mirror.maxRequestPerSecond: unknown key; did you mean \"maxRequestsPerSecond\"?",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "copies": 0}}}"#,
        "forward.mirror.copies: got 0 (a number), expected an integer from 1 to 10",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "copies": 11}}}"#,
        "forward.mirror.copies: got 11",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "s", "copies": 1.5}}}"#,
        "forward.mirror.copies: got 1.5",
    ),
    (
        r#"{"routes": {"api": {"forward": {"mirrors": [{"destinationId": "s", "copies": "3"}]}}}}"#,
        "routes[\"api\"].forward.mirrors[0].copies: got \"3\" (a string)",
    ),
];

#[test]
fn rate_cap_and_copies_are_read_with_their_defaults() {
    let plain = ok(r#"{"forward": {"mirror": {"destinationId": "s"}}}"#);
    let m = &plain.default_policy.mirrors[0];
    assert!(m.rate_cap.is_none(), "no cap by default");
    assert_eq!(m.copies, 1);

    let cfg = ok(r#"{"forward": {"mirrors": [
        {"destinationId": "a", "maxRequestsPerSecond": 2.5, "copies": 4},
        {"destinationId": "b", "maxRequestsPerSecond": 0.1},
        {"destinationId": "c", "maxRequestsPerSecond": 100, "burst": 7, "copies": 10}]}}"#);
    let caps: Vec<_> = cfg
        .default_policy
        .mirrors
        .iter()
        .map(|m| m.rate_cap.clone().unwrap())
        .collect();
    assert_eq!(caps[0].limit.per_second(), 2.5);
    assert_eq!(caps[0].limit.burst(), 3, "default burst: ceil(rate)");
    assert_eq!(caps[1].limit.burst(), 1, "at least 1");
    assert_eq!(caps[2].limit.burst(), 7);
    let copies: Vec<u32> = cfg.default_policy.mirrors.iter().map(|m| m.copies).collect();
    assert_eq!(copies, [4, 1, 10]);
}

#[test]
fn the_rate_limit_in_messages_is_the_one_enforced() {
    assert_eq!(MAX_REQUESTS_PER_SECOND_TEXT.parse::<f64>(), Ok(MAX_REQUESTS_PER_SECOND));
    assert!(
        ok(r#"{"forward": {"mirror": {"destinationId": "s", "maxRequestsPerSecond": 1000000}}}"#)
            .default_policy
            .mirrors[0]
            .rate_cap
            .is_some()
    );
}

#[test]
fn each_mirror_object_has_its_own_bucket_key() {
    let cfg = ok(
        r#"{"forward": {"mirrors": [{"destinationId": "a", "maxRequestsPerSecond": 1},
                                              {"destinationId": "b", "maxRequestsPerSecond": 1}]},
                    "routes": {"api": {"forward": {"mirror": {"destinationId": "a", "maxRequestsPerSecond": 1}}}}}"#,
    );
    let key = |m: &MirrorPolicy| m.rate_cap.as_ref().unwrap().key.clone();
    let keys = [
        key(&cfg.default_policy.mirrors[0]),
        key(&cfg.default_policy.mirrors[1]),
        key(&cfg.policy_for(Some("api")).mirrors[0]),
    ];
    assert_eq!(keys[0], "vrata_mirror.rate.v1:forward.mirrors[0]:a");
    assert_eq!(keys[1], "vrata_mirror.rate.v1:forward.mirrors[1]:b");
    assert_eq!(keys[2], "vrata_mirror.rate.v1:routes[\"api\"].forward.mirror:a");
    // The same configuration loaded again (another worker, a reload) finds
    // the same buckets.
    let again = ok(r#"{"forward": {"mirrors": [{"destinationId": "a", "maxRequestsPerSecond": 5}]}}"#);
    assert_eq!(key(&again.default_policy.mirrors[0]), keys[0]);
}

#[test]
fn bad_configs_are_refused_with_a_message_naming_the_field() {
    assert!(BAD.len() >= 15);
    for (json, must_name) in BAD {
        let message = err(json).to_string();
        assert!(
            message.contains(must_name),
            "config {json}\nmessage {message:?}\nshould name {must_name:?}"
        );
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

#[test]
fn compare_is_none_when_absent_or_null() {
    let absent = ok(r#"{"forward": {"mirror": {"destinationId": "s"}}}"#);
    assert_eq!(absent.default_policy.mirrors[0].compare, None);
    let null = ok(r#"{"forward": {"mirror": {"destinationId": "s", "compare": null}}}"#);
    assert_eq!(null.default_policy.mirrors[0].compare, None);
}

#[test]
fn an_empty_compare_compares_the_status_with_the_defaults() {
    let cfg = ok(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {}}}}"#);
    let compare = cfg.default_policy.mirrors[0].compare.clone().unwrap();
    assert_eq!(
        compare,
        ComparePolicy {
            body: BodyComparison::None,
            ignore_fields: vec![],
            max_body_bytes: 262_144,
            log_mismatches: 10,
            noise: None,
        }
    );
    assert_eq!(compare.max_body_bytes, DEFAULT_COMPARE_MAX_BODY_BYTES);
    assert_eq!(compare.log_mismatches, DEFAULT_LOG_MISMATCHES);
}

#[test]
fn every_compare_field_is_read() {
    let cfg = ok(r#"{"forward": {"mirror": {"destinationId": "canary", "percentage": 10,
        "compare": {"body": "json", "ignoreFields": ["timestamp", "requestId"],
                    "maxBodyBytes": 262144, "logMismatches": 0}}}}"#);
    let compare = cfg.default_policy.mirrors[0].compare.clone().unwrap();
    assert_eq!(compare.body, BodyComparison::Json);
    assert_eq!(compare.ignore_fields, ["timestamp", "requestId"]);
    assert_eq!(compare.max_body_bytes, 262_144);
    assert_eq!(compare.log_mismatches, 0);

    let exact = ok(r#"{"forward": {"mirror": {"destinationId": "s",
        "compare": {"body": "exact", "maxBodyBytes": 16777216, "logMismatches": 10000, "ignoreFields": []}}}}"#);
    let exact = exact.default_policy.mirrors[0].compare.clone().unwrap();
    assert_eq!(exact.body, BodyComparison::Exact);
    assert_eq!(exact.max_body_bytes, MAX_COMPARE_BODY_BYTES_LIMIT);
    assert_eq!(exact.log_mismatches, MAX_LOG_MISMATCHES);
    assert!(exact.ignore_fields.is_empty());

    let zero = ok(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json", "maxBodyBytes": 0}}}}"#);
    assert_eq!(
        zero.default_policy.mirrors[0].compare.as_ref().unwrap().max_body_bytes,
        0
    );
}

#[test]
fn compare_is_per_mirror_and_per_route() {
    let cfg = ok(r#"{
        "forward": {"mirrors": [{"destinationId": "a", "compare": {"body": "exact"}}, {"destinationId": "b"}]},
        "routes": {"api": {"forward": {"mirror": {"destinationId": "b", "compare": {"logMismatches": 3}}}}}}"#);
    let top = &cfg.default_policy.mirrors;
    assert_eq!(top[0].compare.as_ref().unwrap().body, BodyComparison::Exact);
    assert!(top[1].compare.is_none());
    let api = cfg.policy_for(Some("api")).mirrors[0].compare.clone().unwrap();
    assert_eq!((api.body, api.log_mismatches), (BodyComparison::None, 3));
}

#[test]
fn a_wrong_body_names_the_choices_and_the_nearest() {
    let choices: Vec<String> = BodyComparison::ALL
        .iter()
        .map(|b| format!("\"{}\"", b.name()))
        .collect();
    assert_eq!(super::BODY_CHOICES, choices.join(", "));
    assert_eq!(super::BODY_NAMES, BodyComparison::ALL.map(BodyComparison::name));
    let xml = err(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "xml"}}}}"#).to_string();
    assert_eq!(
        xml,
        r#"forward.mirror.compare.body: got "xml" (a string), expected one of "none", "exact", "json""#
    );
    let upper = err(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "JSON"}}}}"#).to_string();
    assert!(
        upper.ends_with(r#"expected one of "none", "exact", "json"; did you mean "json"?"#),
        "{upper}"
    );
    let typo = err(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "exat"}}}}"#).to_string();
    assert!(typo.ends_with(r#"did you mean "exact"?"#), "{typo}");
    let forged = err(r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json\n[critical] x"}}}}"#);
    assert!(!forged.to_string().contains('\n'), "{forged}");
}

#[test]
fn a_secondary_turns_noise_cancellation_on_with_diffys_defaults() {
    let cfg = ok(r#"{"forward": {"mirror": {"destinationId": "canary",
        "compare": {"body": "json", "secondary": "primary-b"}}}}"#);
    let noise = cfg.default_policy.mirrors[0].compare.clone().unwrap().noise.unwrap();
    assert_eq!(
        noise,
        crate::config::NoisePolicy {
            secondary: "primary-b".to_owned(),
            secondary_index: 0,
            relative_ppm: 200_000,
            absolute_ppm: 300,
            min_requests: 3_334,
            max_fields: 64,
            max_endpoints: 64,
            key_prefix: "vrata_mirror.noise.v1:forward.mirror:canary".to_owned(),
        }
    );
    // The secondary is a destination of its own, for its metrics and limits.
    assert_eq!(cfg.destinations, ["primary-b", "canary"]);
    assert_eq!(cfg.default_policy.mirrors[0].destination_index, 1);
    // No secondary: no noise cancellation.
    let plain = ok(r#"{"forward": {"mirror": {"destinationId": "canary", "compare": {"body": "json"}}}}"#);
    assert_eq!(plain.default_policy.mirrors[0].compare.clone().unwrap().noise, None);
}

#[test]
fn every_noise_field_is_read() {
    let cfg = ok(r#"{
        "forward": {"mirrors": [{"destinationId": "b"}, {"destinationId": "canary",
            "compare": {"body": "exact", "secondary": "b", "noise": {"relativePercent": 12.5,
                "absolutePercent": 0.0001, "minRequests": 1, "maxFields": 256, "maxEndpoints": 1}}}]},
        "routes": {"api": {"forward": {"mirror": {"destinationId": "canary",
            "compare": {"body": "json", "secondary": "c", "noise": null}}}}}}"#);
    let noise = cfg.default_policy.mirrors[1].compare.clone().unwrap().noise.unwrap();
    assert_eq!(noise.secondary_index, 0, "shares the index of the mirror to b");
    assert_eq!((noise.relative_ppm, noise.absolute_ppm), (125_000, 1));
    assert_eq!((noise.min_requests, noise.max_fields, noise.max_endpoints), (1, 256, 1));
    assert_eq!(noise.key_prefix, "vrata_mirror.noise.v1:forward.mirrors[1]:canary");
    let api = cfg.policy_for(Some("api")).mirrors[0]
        .compare
        .clone()
        .unwrap()
        .noise
        .unwrap();
    assert_eq!(
        api.key_prefix,
        r#"vrata_mirror.noise.v1:routes["api"].forward.mirror:canary"#
    );
    assert_eq!(api.min_requests, DEFAULT_NOISE_MIN_REQUESTS);
    assert_eq!(cfg.destinations, ["b", "canary", "c"]);
    let zero = ok(
        r#"{"forward": {"mirror": {"destinationId": "s", "compare": {"body": "json",
        "secondary": "t", "noise": {"relativePercent": 0, "absolutePercent": 99.9999}}}}}"#,
    );
    let zero = zero.default_policy.mirrors[0].compare.clone().unwrap().noise.unwrap();
    assert_eq!((zero.relative_ppm, zero.absolute_ppm), (0, 999_999));
}

#[test]
fn bad_noise_settings_name_the_field_and_value() {
    let at =
        |compare: &str| format!(r#"{{"forward": {{"mirror": {{"destinationId": "canary", "compare": {compare}}}}}}}"#);
    for (compare, expected) in [
        (
            r#"{"body": "json", "noise": {}}"#,
            "forward.mirror.compare.noise: only applies with \"secondary\"",
        ),
        (
            r#"{"body": "json", "secondary": "canary"}"#,
            "forward.mirror.compare.secondary: got \"canary\", the mirror's own destination",
        ),
        (
            r#"{"secondary": "b"}"#,
            "forward.mirror.compare.secondary: only applies when bodies are compared",
        ),
        (
            r#"{"body": "json", "secondary": ""}"#,
            "forward.mirror.compare.secondary: got \"\" (a string), expected the name of an Envoy cluster",
        ),
        (
            r#"{"body": "json", "secondary": " b"}"#,
            "forward.mirror.compare.secondary: got \" b\" (a string), expected a cluster name without surrounding spaces",
        ),
        (r#"{"body": "json", "secondary": 7}"#, "forward.mirror.compare.secondary: got 7 (a number)"),
        (
            r#"{"body": "json", "secondaryy": "b"}"#,
            "forward.mirror.compare.secondaryy: unknown key; did you mean \"secondary\"?",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": []}"#,
            "forward.mirror.compare.noise: got [] (a list), expected an object",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"relativeThreshold": 20}}"#,
            "forward.mirror.compare.noise.relativeThreshold: unknown key; allowed keys here: relativePercent",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"maxfields": 2}}"#,
            "forward.mirror.compare.noise.maxfields: unknown key; did you mean \"maxFields\"?",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"relativePercent": 100}}"#,
            "forward.mirror.compare.noise.relativePercent: got 100 (a number), expected a percentage from 0 up to (not including) 100",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"absolutePercent": -0.03}}"#,
            "forward.mirror.compare.noise.absolutePercent: got -0.03 (a number)",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"absolutePercent": "0.03%"}}"#,
            "forward.mirror.compare.noise.absolutePercent: got \"0.03%\" (a string)",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"minRequests": 0}}"#,
            "forward.mirror.compare.noise.minRequests: got 0 (a number), expected an integer from 1 to 1000000000",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"maxFields": 257}}"#,
            "forward.mirror.compare.noise.maxFields: got 257 (a number), expected an integer from 1 to 256",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"maxEndpoints": 0}}"#,
            "forward.mirror.compare.noise.maxEndpoints: got 0 (a number), expected an integer from 1 to 256",
        ),
        (
            r#"{"body": "json", "secondary": "b", "noise": {"minRequests": 1.5}}"#,
            "forward.mirror.compare.noise.minRequests: got 1.5",
        ),
    ] {
        let message = err(&at(compare)).to_string();
        assert!(message.starts_with(expected), "{compare}:\n  got      {message}\n  expected {expected}");
    }
}

#[test]
fn the_loop_marker_is_on_by_default_renamed_or_turned_off() {
    let mirror = r#""forward": {"mirror": {"destinationId": "s"}}"#;
    let marker = |json: &str| {
        let cfg = ok(json);
        let on_mirror = cfg.default_policy.mirrors[0].loop_marker.clone();
        assert_eq!(cfg.loop_marker, on_mirror, "the mirror carries the top-level marker");
        cfg.loop_marker.map(|m| m.to_string())
    };
    assert_eq!(marker(&format!("{{{mirror}}}")).as_deref(), Some(DEFAULT_LOOP_MARKER));
    assert_eq!(DEFAULT_LOOP_MARKER, "x-vrata-mirror");
    assert_eq!(LOOP_MARKER_VALUE, "1");
    assert_eq!(
        marker(&format!(r#"{{"loopMarker": true, {mirror}}}"#)).as_deref(),
        Some("x-vrata-mirror")
    );
    assert_eq!(
        marker(&format!(r#"{{"loopMarker": "X-Shadow-Copy", {mirror}}}"#)).as_deref(),
        Some("x-shadow-copy")
    );
    assert_eq!(marker(&format!(r#"{{"loopMarker": false, {mirror}}}"#)), None);
    let routes = ok(r#"{"loopMarker": "x-copy", "routes": {"api": {"forward": {"mirror": {"destinationId": "s"}}}}}"#);
    assert_eq!(
        routes.policy_for(Some("api")).mirrors[0].loop_marker.as_deref(),
        Some("x-copy")
    );
}

#[test]
fn a_bad_loop_marker_is_refused_naming_the_field_and_value() {
    let mirror = r#""forward": {"mirror": {"destinationId": "s"}}"#;
    let refused = |marker: &str| err(&format!(r#"{{"loopMarker": {marker}, {mirror}}}"#)).to_string();
    assert_eq!(
        refused("1"),
        "loopMarker: got 1 (a number), expected a header name such as \"x-vrata-mirror\" \
         (the header every copy carries), or false to turn the marker off"
    );
    assert!(
        refused(r#""""#).starts_with("loopMarker: got \"\""),
        "{}",
        refused(r#""""#)
    );
    assert!(
        refused(r#""bad name""#).contains("expected a header name"),
        "{}",
        refused(r#""bad name""#)
    );
    assert!(
        refused(r#"":path""#).contains("pseudo-headers"),
        "{}",
        refused(r#"":path""#)
    );
    for rewritten in ["connection", "content-length", "Host"] {
        let message = refused(&format!("\"{rewritten}\""));
        assert!(
            message.starts_with("loopMarker: got ") && message.contains("Envoy rewrites or drops"),
            "{message}"
        );
    }
}

#[test]
fn add_or_remove_headers_naming_the_marker_are_refused() {
    let message =
        err(r#"{"forward": {"mirror": {"destinationId": "s", "addHeaders": {"X-Vrata-Mirror": "true"}}}}"#).to_string();
    assert!(
        message.starts_with("forward.mirror.addHeaders[\"X-Vrata-Mirror\"]: is the loop marker, which every copy carries (x-vrata-mirror: 1)"),
        "{message}"
    );
    let message = err(
        r#"{"loopMarker": "x-copy", "routes": {"r": {"forward": {"mirrors": [{"destinationId": "s", "removeHeaders": ["a", "x-copy"]}]}}}}"#,
    )
    .to_string();
    assert!(
        message.starts_with("routes[\"r\"].forward.mirrors[0].removeHeaders[1]: is the loop marker"),
        "{message}"
    );
    // Renamed or off, the old name is an ordinary header.
    ok(
        r#"{"loopMarker": "x-copy", "forward": {"mirror": {"destinationId": "s", "addHeaders": {"x-vrata-mirror": "1"}}}}"#,
    );
    ok(r#"{"loopMarker": false, "forward": {"mirror": {"destinationId": "s", "removeHeaders": ["x-vrata-mirror"]}}}"#);
}

#[test]
fn trace_context_is_dropped_by_default_and_kept_on_request() {
    let trace = |extra: &str| {
        let cfg = ok(&format!(
            r#"{{"forward": {{"mirror": {{"destinationId": "s"{extra}}}}}}}"#
        ));
        cfg.default_policy.mirrors[0].trace_context
    };
    assert_eq!(trace(""), TraceContext::Drop);
    assert_eq!(trace(r#", "traceContext": "drop""#), TraceContext::Drop);
    assert_eq!(trace(r#", "traceContext": "keep""#), TraceContext::Keep);
    let message = err(r#"{"forward": {"mirror": {"destinationId": "s", "traceContext": "kept"}}}"#).to_string();
    assert!(
        message.starts_with("forward.mirror.traceContext: got \"kept\" (a string), expected \"drop\"")
            && message.ends_with("; did you mean \"keep\"?"),
        "{message}"
    );
    let message = err(r#"{"forward": {"mirror": {"destinationId": "s", "traceContext": true}}}"#).to_string();
    assert!(
        message.starts_with("forward.mirror.traceContext: got true"),
        "{message}"
    );
}
