//! Canary comparison (`compare`) in the comparison module
//! (`vrata_mirror_compare.wasm`): the primary's answer, seen by the HTTP
//! context, paired with the shadow's, seen by the root, whichever ends
//! first, and whether the HTTP context is still there or not.

use crate::wasmhost::{level, mirror_config, names, wasm, Host, Response};
use vrata_mirror_testkit::compare::{self, nonzero_results};

const JSON: &str = r#""compare": {"body": "json", "ignoreFields": ["ts"], "maxBodyBytes": 64}"#;

fn compare_host(compare: &str) -> Host {
    Host::builder().compare_module().load(&mirror_config(compare))
}

/// One request whose HTTP context stays open; its copy dispatched.
fn open_request(host: &mut Host, path: &str) -> (u32, u32) {
    let sent = host.request().get(path).keep_open().send();
    host.run_pending();
    let call = host.single_dispatched_call();
    (sent.context_id, call.token)
}

fn results(host: &Host) -> Vec<(&'static str, i64)> {
    nonzero_results(|result| host.counter(&names::compared("unnamed", "shadow", result)))
}

/// The mismatch lines among the module's info-level log lines.
fn mismatch_lines(host: &Host) -> Vec<String> {
    compare::mismatch_lines(
        host.logs()
            .iter()
            .filter(|l| l.level == level::INFO)
            .map(|l| l.message.as_str()),
    )
}

#[test]
fn the_comparison_module_exports_the_response_callbacks_and_no_more() {
    let module = wasm::compiled_compare();
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    for kept in [
        "proxy_on_response_headers",
        "proxy_on_response_body",
        "proxy_on_response_trailers",
        "proxy_on_request_headers",
        "proxy_on_http_call_response",
    ] {
        assert!(exports.contains(&kept), "{kept} missing: {exports:?}");
    }
    for trimmed in ["proxy_on_log", "proxy_on_done"] {
        assert!(
            !exports.contains(&trimmed),
            "{trimmed} still exported: build with `make build`"
        );
    }
    // The same host calls as the default module: nothing new to implement.
    for import in module.imports() {
        let name = format!("{}::{}", import.module(), import.name());
        assert!(
            wasm::imports().contains(&name),
            "{name} is imported by the comparison module only"
        );
    }
}

#[test]
fn the_default_module_refuses_compare_and_names_the_module_to_load() {
    let mut host = Host::builder().start();
    assert!(!host.configure(&mirror_config(JSON)));
    let errors = host.logs_at_least(level::ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors[0].message;
    assert!(message.contains(r#"forward (mirror to "shadow").compare"#), "{message}");
    assert!(message.contains("vrata_mirror_compare.wasm"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn primary_first_then_shadow_is_a_match_with_both_latencies() {
    let mut host = compare_host(JSON);
    let (id, token) = open_request(&mut host, "/items");
    host.advance_clock_ms(7);
    host.primary_responds(id, 200, br#"{"a": 1, "ts": 5}"#);
    host.end_stream(id);
    host.respond(token, Response::from_shadow_with_body(200, r#"{"ts": 9, "a": 1.0}"#));
    assert_eq!(results(&host), [("match", 1)]);
    assert_eq!(host.histogram(&names::primary_latency("unnamed", "shadow")), [7]);
    assert!(mismatch_lines(&host).is_empty());
    host.assert_never_paused();
}

#[test]
fn shadow_first_then_primary_is_compared_too() {
    let mut host = compare_host(JSON);
    let (id, token) = open_request(&mut host, "/items?secret=1");
    host.respond(
        token,
        Response::from_shadow_with_body(200, r#"{"items": [1, {"price": 3}]}"#),
    );
    assert_eq!(results(&host), []);
    host.primary_responds(id, 200, br#"{"items": [1, {"price": 2}]}"#);
    assert_eq!(results(&host), [("body_mismatch", 1)]);
    let lines = mismatch_lines(&host);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("json_path=items[1].price"), "{}", lines[0]);
    assert!(lines[0].contains("path=/items "), "{}", lines[0]);
    host.end_stream(id);
    assert_eq!(results(&host), [("body_mismatch", 1)]);
    host.assert_never_paused();
}

#[test]
fn a_context_gone_before_the_shadow_answers_still_gets_its_result() {
    let mut host = compare_host(JSON);
    let (id, token) = open_request(&mut host, "/");
    host.primary_responds(id, 200, b"plain");
    host.end_stream(id);
    host.respond(token, Response::from_shadow_with_body(500, "plain"));
    assert_eq!(results(&host), [("status_mismatch", 1)]);
    let lines = mismatch_lines(&host);
    assert!(lines[0].contains("primary=200 shadow=500 differs=status"), "{lines:?}");
}

#[test]
fn a_primary_that_never_completes_is_primary_incomplete_in_either_order() {
    let mut host = compare_host(JSON);
    // The client goes away before the response: the context is deleted first.
    let (id, token) = open_request(&mut host, "/");
    host.end_stream(id);
    host.respond(token, Response::from_shadow(200));
    // The shadow first, then the client goes away mid-response.
    let (id, token) = open_request(&mut host, "/");
    host.respond(token, Response::from_shadow(200));
    host.response_headers(id, &[(":status", "200")], false);
    host.end_stream(id);
    assert_eq!(results(&host), [("primary_incomplete", 2)]);
    assert!(host.histogram(&names::primary_latency("unnamed", "shadow")).is_empty());
}

#[test]
fn a_failed_shadow_is_shadow_failed_and_a_large_body_not_compared() {
    let mut host = compare_host(JSON);
    let (id, token) = open_request(&mut host, "/");
    host.primary_responds(id, 200, b"{}");
    host.respond(token, Response::envoy_timeout());
    host.end_stream(id);
    let (id, token) = open_request(&mut host, "/");
    host.primary_responds(id, 200, &[b'x'; 65]);
    host.respond(token, Response::from_shadow_with_body(200, "x"));
    host.end_stream(id);
    assert_eq!(results(&host), [("shadow_failed", 1), ("not_compared", 1)]);
}

#[test]
fn grpc_status_comes_from_the_primary_trailers() {
    let mut host = compare_host(r#""compare": {}"#);
    let (id, token) = open_request(&mut host, "/pkg.Svc/Get");
    host.response_headers(id, &[(":status", "200"), ("content-type", "application/grpc")], false);
    host.response_body(id, b"\0\0\0\0\0", false);
    host.response_trailers(id, &[("grpc-status", "5")]);
    host.respond(token, Response::grpc_trailers_only("0"));
    host.end_stream(id);
    let (id, token) = open_request(&mut host, "/pkg.Svc/Get");
    host.response_headers(
        id,
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
        ],
        true,
    );
    host.respond(token, Response::grpc_trailers_only("5"));
    host.end_stream(id);
    assert_eq!(results(&host), [("match", 1), ("status_mismatch", 1)]);
    let lines = mismatch_lines(&host);
    assert!(lines[0].contains("primary=grpc_not_found shadow=grpc_ok"), "{lines:?}");
}

#[test]
fn mismatch_lines_are_rate_limited_per_minute() {
    let mut host = compare_host(r#""compare": {"logMismatches": 2}"#);
    for _ in 0..5 {
        let (id, token) = open_request(&mut host, "/");
        host.primary_responds(id, 200, b"");
        host.end_stream(id);
        host.respond(token, Response::from_shadow(404));
    }
    assert_eq!(results(&host), [("status_mismatch", 5)]);
    assert_eq!(mismatch_lines(&host).len(), 2);
    host.advance_clock_ms(60_000);
    let (id, token) = open_request(&mut host, "/");
    host.primary_responds(id, 200, b"");
    host.end_stream(id);
    host.respond(token, Response::from_shadow(404));
    let lines = mismatch_lines(&host);
    assert_eq!(lines.len(), 3);
    assert!(lines[2].contains("not_logged=3"), "{lines:?}");
}

#[test]
fn pairing_state_stays_bounded_under_a_stuck_shadow() {
    const CAP: usize = 1024;
    let mut host = compare_host(r#""maxInFlight": 100000, "timeoutMs": 60000, "compare": {}"#);
    let mut tokens = Vec::new();
    for _ in 0..CAP + 10 {
        let (id, token) = open_request(&mut host, "/");
        host.primary_responds(id, 200, b"");
        host.end_stream(id);
        tokens.push(token);
    }
    assert_eq!(results(&host), [("overflow", 10)]);
    host.assert_memory_bounded();
    for token in tokens {
        host.respond(token, Response::from_shadow(200));
    }
    assert_eq!(results(&host), [("match", CAP as i64), ("overflow", 10)]);
    // Every pair was freed: the next copy is paired again.
    let (id, token) = open_request(&mut host, "/");
    host.primary_responds(id, 200, b"");
    host.end_stream(id);
    host.respond(token, Response::from_shadow(200));
    assert_eq!(results(&host), [("match", CAP as i64 + 1), ("overflow", 10)]);
}
