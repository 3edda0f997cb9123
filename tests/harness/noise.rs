//! Noise cancellation (`compare.secondary`) in the comparison module: the
//! copy to the secondary, the fields counted in shared data through the
//! real proxy-wasm calls, and shared data that fails (the copy is still
//! compared; the counts are skipped, and counted).

use crate::wasmhost::{level, mirror_config, names, Host, Response, Status};
use vrata_mirror_testkit::compare::nonzero_results;

const NOISY: &str = r#""compare": {"body": "json", "secondary": "stable", "noise": {"minRequests": 2}}"#;

fn noisy_host() -> Host {
    Host::builder()
        .compare_module()
        .clusters(&["shadow", "stable"])
        .load(&mirror_config(NOISY))
}

fn results(host: &Host) -> Vec<(&'static str, i64)> {
    nonzero_results(|result| host.counter(&names::compared("unnamed", "shadow", result)))
}

/// One GET: the primary answers `primary`, then the candidate and the
/// secondary answer theirs.
fn one(host: &mut Host, primary: &str, candidate: &str, secondary: &str) {
    let id = host.request().get("/items?page=1").keep_open().send().context_id;
    host.run_pending();
    let calls = host.new_calls();
    let clusters: Vec<&str> = calls.iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(clusters, ["shadow", "stable"], "a copy to each");
    assert_eq!(calls[0].headers, calls[1].headers, "the same request");
    host.primary_responds(id, 200, primary.as_bytes());
    host.end_stream(id);
    host.respond(calls[0].token, Response::from_shadow_with_body(200, candidate));
    host.respond(calls[1].token, Response::from_shadow_with_body(200, secondary));
}

#[test]
fn fields_are_counted_in_shared_data_and_the_verdicts_follow_the_rule() {
    let mut host = noisy_host();
    one(&mut host, r#"{"ts":1,"p":1}"#, r#"{"ts":2,"p":1}"#, r#"{"ts":3,"p":1}"#);
    one(&mut host, r#"{"ts":4,"p":1}"#, r#"{"ts":5,"p":1}"#, r#"{"ts":6,"p":1}"#);
    one(&mut host, r#"{"ts":7,"p":1}"#, r#"{"ts":8,"p":2}"#, r#"{"ts":9,"p":1}"#);
    assert_eq!(results(&host), [("body_mismatch", 1), ("noise", 1), ("learning", 1)]);
    assert_eq!(host.counter(&names::noise_requests("unnamed", "shadow", "GET")), 3);
    let field = |f: &str, kind: &str| host.counter(&names::field_differences("unnamed", "shadow", "GET", f, kind));
    assert_eq!((field("ts", "raw"), field("ts", "noise")), (3, 3));
    assert_eq!((field("p", "raw"), field("p", "noise")), (1, 0));
    assert_eq!(
        host.requests_total("unnamed", "stable"),
        3,
        "counted under its own destination"
    );
    assert_eq!(host.responses("unnamed", "stable", "2xx"), 3);
    // The tables are in shared data, where another worker's VM reads them.
    let other = Host::builder()
        .compare_module()
        .clusters(&["shadow", "stable"])
        .shared_data(host.shared_data())
        .load(&mirror_config(NOISY));
    let mut other = other;
    one(
        &mut other,
        r#"{"ts":1,"p":1}"#,
        r#"{"ts":2,"p":1}"#,
        r#"{"ts":3,"p":1}"#,
    );
    assert_eq!(results(&other), [("noise", 1)], "past learning: the counts are shared");
    host.assert_never_paused();
}

#[test]
fn shared_data_that_fails_leaves_the_copy_compared_and_the_counts_skipped_and_counted() {
    for (get, set) in [
        (Some(Status::InternalFailure), None),
        (None, Some(Status::InternalFailure)),
        (None, Some(Status::CasMismatch)),
    ] {
        let mut host = noisy_host();
        host.faults().get_shared_data = get;
        host.faults().set_shared_data = set;
        one(&mut host, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":1}"#);
        assert_eq!(
            results(&host),
            [("body_mismatch", 1)],
            "{get:?} {set:?}: still compared"
        );
        assert_eq!(host.counter(&names::noise_unavailable("unnamed", "shadow")), 1);
        assert_eq!(host.counter(&names::noise_requests("unnamed", "shadow", "GET")), 0);
        assert!(
            host.import_calls("proxy_get_shared_data") <= 4,
            "bounded: {:?}",
            host.import_call_counts()
        );
        // Shared data back: the next request is counted.
        host.faults().get_shared_data = None;
        host.faults().set_shared_data = None;
        one(&mut host, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":1}"#);
        assert_eq!(host.counter(&names::noise_requests("unnamed", "shadow", "GET")), 1);
        assert_eq!(host.counter(&names::noise_unavailable("unnamed", "shadow")), 1);
        assert!(host.logs_at_least(level::WARN).is_empty(), "counted, not logged");
    }
}
