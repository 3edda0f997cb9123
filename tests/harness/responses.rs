//! How a mirror call ended, as the module counts it: the shadow's own
//! answers by status class, Envoy's local replies and resets as delivery
//! failures, and the latency of real answers in a histogram.

use crate::wasmhost::{mirror_config, names, Host, Response};

/// Mirrors one request, lets `latency_ms` pass, delivers `response`.
fn mirror_and_answer(host: &mut Host, latency_ms: u64, response: Response) {
    host.request().get("/").send();
    host.run_pending();
    let call = host.single_dispatched_call();
    host.advance_clock_ms(latency_ms);
    host.respond(call.token, response);
}

#[test]
fn each_ending_is_counted_in_its_class() {
    let cases: Vec<(Response, &str)> = vec![
        (Response::from_shadow(200), "2xx"),
        (Response::from_shadow(204), "2xx"),
        (Response::from_shadow(302), "3xx"),
        (Response::from_shadow(404), "4xx"),
        (Response::from_shadow(500), "5xx"),
        // The shadow's own 503 (it carries x-envoy-upstream-service-time),
        // even with a body that looks like Envoy's: the shadow may be an Envoy.
        (
            Response::from_shadow_with_body(
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            "5xx",
        ),
        (Response::from_shadow(504), "5xx"),
        (Response::envoy_timeout(), "timeout"),
        (Response::envoy_connect_failure(), "connect_failure"),
        (Response::envoy_local(503, "no healthy upstream"), "connect_failure"),
        (Response::envoy_reset(), "reset"),
        // No headers, long before the timeout: the answer began and was cut
        // off (over Envoy's buffer limit, or reset mid-answer).
        (Response::headerless(), "too_large_or_reset"),
    ];
    for (response, class) in cases {
        let mut host = Host::load(&mirror_config(""));
        let shown = format!("{response:?}");
        mirror_and_answer(&mut host, 5, response);
        let counted: Vec<(&str, i64)> = host.response_classes("unnamed", "shadow").into_iter().collect();
        assert_eq!(counted, [(class, 1)], "{shown}");
    }
}

#[test]
fn grpc_answers_are_counted_by_their_grpc_status() {
    let cases: Vec<(Response, &str)> = vec![
        // Trailers-only: the status is in the headers.
        (Response::grpc_trailers_only("0"), "grpc_ok"),
        (Response::grpc_trailers_only("13"), "grpc_internal"),
        (Response::grpc_trailers_only("16"), "grpc_unauthenticated"),
        // After a message: the status is in the trailers.
        (
            Response::grpc("application/grpc", b"hi", &[("grpc-status", "0")]),
            "grpc_ok",
        ),
        (
            Response::grpc(
                "application/grpc+proto",
                b"hi",
                &[("grpc-status", "5"), ("grpc-message", "gone")],
            ),
            "grpc_not_found",
        ),
        (
            Response::grpc("application/grpc", b"hi", &[("grpc-status", "14")]),
            "grpc_unavailable",
        ),
        // No status anywhere.
        (Response::grpc("application/grpc", b"hi", &[]), "grpc_missing_status"),
        (
            Response::grpc("application/grpc", b"hi", &[("x-other", "1")]),
            "grpc_missing_status",
        ),
        // A status that is not one of the 17 codes.
        (
            Response::grpc("application/grpc", b"hi", &[("grpc-status", "thirteen")]),
            "grpc_unknown",
        ),
        (
            Response::grpc("application/grpc", b"hi", &[("grpc-status", "42")]),
            "grpc_unknown",
        ),
        // Not gRPC's content type: the HTTP status decides, whatever the trailers say.
        (
            Response::grpc("application/json", b"hi", &[("grpc-status", "13")]),
            "2xx",
        ),
        (
            Response::grpc("application/grpc-web", b"hi", &[("grpc-status", "13")]),
            "2xx",
        ),
        // Envoy's own replies to a gRPC call stay delivery failures.
        (
            Response::envoy_grpc_local(
                "14",
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            "connect_failure",
        ),
        (Response::envoy_grpc_local("4", "upstream request timeout"), "timeout"),
    ];
    for (response, class) in cases {
        let mut host = Host::load(&mirror_config(""));
        let shown = format!("{response:?}");
        mirror_and_answer(&mut host, 5, response);
        let counted: Vec<(&str, i64)> = host.response_classes("unnamed", "shadow").into_iter().collect();
        assert_eq!(counted, [(class, 1)], "{shown}");
        host.assert_accounted("unnamed", "shadow", 1);
    }
}

#[test]
fn grpc_errors_record_their_latency_and_never_back_off() {
    let mut host = Host::load(&mirror_config(""));
    for _ in 0..20 {
        mirror_and_answer(&mut host, 11, Response::grpc_trailers_only("13"));
    }
    mirror_and_answer(
        &mut host,
        7,
        Response::grpc("application/grpc", b"x", &[("grpc-status", "2")]),
    );
    assert_eq!(host.responses("unnamed", "shadow", "grpc_internal"), 20);
    assert_eq!(host.responses("unnamed", "shadow", "grpc_unknown"), 1);
    assert!(
        host.skips("unnamed", "shadow").is_empty(),
        "{:?}",
        host.skips("unnamed", "shadow")
    );
    assert_eq!(
        host.histogram(&names::latency("unnamed", "shadow")),
        [[11; 20].as_slice(), &[7]].concat()
    );
}

#[test]
fn answers_record_their_latency_and_failures_do_not() {
    let mut host = Host::load(&mirror_config(""));
    mirror_and_answer(&mut host, 37, Response::from_shadow(200));
    mirror_and_answer(&mut host, 120, Response::from_shadow(500));
    mirror_and_answer(&mut host, 1_000, Response::envoy_timeout());
    mirror_and_answer(&mut host, 3, Response::envoy_reset());
    mirror_and_answer(&mut host, 9, Response::headerless());
    mirror_and_answer(&mut host, 0, Response::from_shadow(404));
    assert_eq!(host.histogram(&names::latency("unnamed", "shadow")), [37, 120, 0]);
    assert_eq!(host.import_calls("proxy_record_metric"), 3);
}

#[test]
fn a_response_after_the_request_is_gone_is_still_counted() {
    // The root owns every call: the HTTP context that made the copy is
    // deleted long before the shadow answers.
    let mut host = Host::load(&mirror_config(""));
    let sent = host.request().post("/").body(b"x").send();
    assert_eq!(sent.done, Some(true), "the context was deleted");
    host.run_pending();
    let call = host.single_dispatched_call();
    host.advance_clock_ms(250);
    host.respond(call.token, 200);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 1);
    assert_eq!(host.histogram(&names::latency("unnamed", "shadow")), [250]);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_response_while_the_request_is_still_open_is_counted_too() {
    let mut host = Host::load(&mirror_config(""));
    let id = host.request().get("/").keep_open().send().context_id;
    host.run_pending();
    let call = host.single_dispatched_call();
    host.respond(call.token, 201);
    assert!(host.end_stream(id));
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 1);
    assert!(
        host.skips("unnamed", "shadow").is_empty(),
        "a finished copy is not skipped at on_done"
    );
}

#[test]
fn each_metric_is_defined_once_however_many_requests() {
    let mut host = Host::load(&mirror_config(""));
    for i in 0..50 {
        mirror_and_answer(&mut host, 1, Response::from_shadow(if i % 2 == 0 { 200 } else { 500 }));
    }
    for name in [
        names::requests("unnamed", "shadow"),
        names::responses("unnamed", "shadow", "2xx"),
        names::responses("unnamed", "shadow", "5xx"),
        names::latency("unnamed", "shadow"),
    ] {
        assert_eq!(
            host.definitions_of(&name),
            1,
            "{name}: each define_metric creates a new id in Envoy"
        );
    }
    assert_eq!(host.requests_total("unnamed", "shadow"), 50);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 25);
    assert_eq!(host.responses("unnamed", "shadow", "5xx"), 25);
    assert!(
        host.refused_metric_ops().is_empty(),
        "no zero or negative increments: {:?}",
        host.refused_metric_ops()
    );
}

#[test]
fn metric_names_are_the_documented_ones() {
    let mut host = Host::load(&mirror_config(""));
    host.request().get("/").route("api").send();
    host.run_pending();
    host.respond_all(200);
    // Literal names: what Envoy's stats_tags rules and dashboards match.
    assert_eq!(
        host.metric_names(),
        [
            "route=.=api;.;destination=.=shadow;.;class=.=2xx;.;vrata_mirror_responses_total",
            "route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total",
            "route=.=api;.;destination=.=shadow;.;vrata_mirror_response_time_ms",
        ]
    );
    assert_eq!(
        host.counter("route=.=api;.;destination=.=shadow;.;vrata_mirror_requests_total"),
        1
    );
}
