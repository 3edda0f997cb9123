//! Host calls failing under the module: it never traps (the harness fails
//! the test on any trap), never pauses the primary, counts what it could not
//! mirror, and keeps its memory bounded.

use crate::wasmhost::{mirror_config, Host, Status};

#[test]
fn a_refused_dispatch_is_counted_as_dispatch_failed() {
    for refusal in [Status::BadArgument, Status::InternalFailure] {
        let mut host = Host::load(&mirror_config(""));
        host.faults().dispatch = Some(refusal);
        for _ in 0..3 {
            host.request().post("/").body(b"x").send().assert_never_paused();
        }
        host.run_pending();
        assert!(host.calls().is_empty());
        assert_eq!(host.refused_calls().len(), 3);
        assert!(host
            .refused_calls()
            .iter()
            .all(|c| c.headers.iter().any(|(n, v)| n == ":method" && v == "POST")));
        assert_eq!(host.skipped("unnamed", "shadow", "dispatch_failed"), 3, "{refusal:?}");
        host.assert_accounted("unnamed", "shadow", 3);
    }
}

#[test]
fn an_unknown_cluster_is_refused_like_envoy_does_and_counted() {
    let mut host = Host::builder().clusters(&["other"]).load(&mirror_config(""));
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.refused_calls()[0].status, Status::BadArgument);
    assert_eq!(host.refused_calls()[0].cluster, "shadow");
    assert_eq!(host.skipped("unnamed", "shadow", "dispatch_failed"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn failing_metric_definitions_never_stop_mirroring() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().define_metric = Some((Status::InternalFailure, String::new()));
    for _ in 0..3 {
        host.request().get("/").send().assert_never_paused();
        host.run_pending();
    }
    assert_eq!(host.calls().len(), 3, "copies still go out");
    host.respond_all(200);
    assert!(host.metric_names().is_empty());
    assert!(
        host.refused_metric_ops().is_empty(),
        "no increment of an id that was never defined"
    );
    host.assert_memory_bounded();
    // A definition that failed is not retried on every request.
    assert_eq!(
        host.import_calls("proxy_define_metric"),
        3,
        "requests_total, the 2xx counter and the latency histogram: tried once each"
    );
}

#[test]
fn one_failing_definition_does_not_take_the_others_down() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().define_metric = Some((Status::InternalFailure, "vrata_mirror_requests_total".to_owned()));
    host.request().get("/").send();
    host.run_pending();
    host.respond_all(200);
    assert_eq!(host.requests_total("unnamed", "shadow"), 0);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 1);
    host.assert_memory_bounded();
}

#[test]
fn a_missing_route_property_is_labelled_unnamed() {
    let routes = r#"{"forward": {"mirror": {"destinationId": "shadow"}},
                     "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow", "percentage": 0}}}}}"#;
    let mut host = Host::load(routes);
    host.request().get("/").send(); // no xds.route_name property
    host.faults().property = Some(Status::InternalFailure);
    host.request().get("/").route("api").send(); // the property read fails
    host.run_pending();
    assert_eq!(host.calls().len(), 2, "both fall back to the top-level forward");
    assert_eq!(host.requests_total("unnamed", "shadow"), 2);
    host.assert_accounted("unnamed", "shadow", 2);
}

#[test]
fn a_header_value_that_is_not_utf8_reaches_the_copy_byte_equal() {
    let mut host = Host::load(&mirror_config(""));
    let latin1: &[u8] = b"caf\xe9 \xff\xfe\x80";
    host.request()
        .get("/")
        .raw_header("x-latin1", latin1)
        .raw_header("x-binary", b"\xff\xfe\x00ok")
        .headers(&[("x-text", "fine")])
        .send()
        .assert_never_paused();
    host.run_pending();
    let call = host.single_dispatched_call();
    assert_eq!(call.raw_header("x-latin1"), Some(latin1));
    assert_eq!(call.raw_header("x-binary"), Some(&b"\xff\xfe\x00ok"[..]));
    assert_eq!(call.header("x-text"), Some("fine"));
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_sample_key_that_is_not_utf8_still_decides() {
    let mut host = Host::load(&mirror_config(r#""percentage": 50, "sampleBy": "x-user-id""#));
    for i in 0..20u8 {
        host.request()
            .get("/")
            .raw_header("x-user-id", &[0xff, i])
            .send()
            .assert_never_paused();
    }
    host.run_pending();
    let copied = host.calls().len() as i64;
    assert!(
        copied > 0 && copied < 20,
        "{copied} of 20 keys at 50 %: keyed, not all-or-nothing"
    );
    host.assert_accounted("unnamed", "shadow", copied);
}

#[test]
fn an_unreadable_body_is_counted_as_host_error() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().request_body = Some(Status::InternalFailure);
    host.request()
        .post("/")
        .body_chunks(&[b"ab", b"cd"])
        .send()
        .assert_never_paused();
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "host_error"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn unreadable_request_headers_are_counted_as_host_error() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().request_headers = Some(Status::InternalFailure);
    host.request().get("/").send().assert_never_paused();
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "host_error"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn without_a_shared_queue_the_tick_dispatches() {
    let mut host = Host::builder().start();
    host.faults().register_queue = Some(Status::InternalFailure);
    assert!(host.configure(&mirror_config("")));
    assert!(host.queue_names().is_empty());
    host.request().get("/").send();
    assert_eq!(host.tick_period_ms(), 1, "the request armed the root's tick");
    host.turn();
    host.single_dispatched_call();
    assert_eq!(host.tick_period_ms(), 0, "the tick disarms itself once drained");
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_failing_enqueue_falls_back_to_the_tick() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().enqueue = Some(Status::InternalFailure);
    host.request().get("/").send();
    assert_eq!(host.pending_events(), 0);
    assert_eq!(host.tick_period_ms(), 1);
    host.turn();
    host.single_dispatched_call();
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn with_no_way_to_wake_the_root_copies_are_counted_not_stranded() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().enqueue = Some(Status::InternalFailure);
    host.faults().set_tick = Some(Status::InternalFailure);
    host.request().get("/").send().assert_never_paused();
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "dispatch_failed"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_failing_clock_does_not_break_mirroring() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().clock = Some(Status::InternalFailure);
    host.request().get("/").send();
    host.run_pending();
    let call = host.single_dispatched_call();
    host.respond(call.token, 200);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn delivery_failures_are_counted_not_logged() {
    // Logging per failure flooded Envoy's log with a stuck shadow (41,805
    // lines in 2 s): at the default info level nothing may be logged.
    let mut host = Host::load(&mirror_config(""));
    host.faults().dispatch = Some(Status::InternalFailure);
    for _ in 0..200 {
        host.request().get("/").send();
        host.run_pending();
    }
    host.faults().dispatch = None;
    for _ in 0..20 {
        host.request().get("/").send();
        host.run_pending();
        host.respond_all(crate::wasmhost::Response::envoy_timeout());
    }
    assert!(host.logs().is_empty(), "{:?}", &host.logs()[..host.logs().len().min(5)]);
    host.assert_accounted("unnamed", "shadow", 220);
}
