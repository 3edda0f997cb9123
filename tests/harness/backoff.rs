//! The back-off: after 5 consecutive delivery failures a destination is left
//! alone for 500 ms, then one probe goes out; its success closes the
//! back-off, its failure doubles the window. The host clock drives it.
//! A call that ends with no headers before its timeout (an answer over
//! Envoy's buffer limit, or cut off mid-answer) is not a delivery failure.

use crate::wasmhost::{mirror_config, names, Host, Response, Status};

/// Sends one request and lets the root dispatch it; returns the new call's
/// token, or None if the copy was not sent.
fn mirror_one(host: &mut Host) -> Option<u32> {
    host.request().get("/").send().assert_never_paused();
    host.run_pending();
    let calls = host.new_calls();
    assert!(calls.len() <= 1);
    calls.first().map(|c| c.token)
}

/// The three ways Envoy reports that a copy was not delivered.
fn failures() -> [Response; 3] {
    [
        Response::envoy_reset(),
        Response::envoy_timeout(),
        Response::envoy_connect_failure(),
    ]
}

/// Five consecutive delivery failures, one of each kind and then some.
fn trip(host: &mut Host) {
    for i in 0..5 {
        let token = mirror_one(host).expect("copies flow before the back-off");
        host.respond(token, failures()[i % 3].clone());
    }
}

#[test]
fn five_failures_open_the_backoff_until_one_probe_succeeds() {
    let mut host = Host::load(&mirror_config(""));
    trip(&mut host);
    assert_eq!(
        host.response_classes("unnamed", "shadow")
            .into_iter()
            .collect::<Vec<_>>(),
        [("connect_failure", 1), ("reset", 2), ("timeout", 2)]
    );

    assert_eq!(mirror_one(&mut host), None);
    host.advance_clock_ms(499);
    assert_eq!(mirror_one(&mut host), None, "the window is 500 ms");
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 2);

    host.advance_clock_ms(1);
    let probe = mirror_one(&mut host).expect("one probe once the window has passed");
    assert_eq!(mirror_one(&mut host), None, "only one probe at a time");
    assert_eq!(mirror_one(&mut host), None);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 4);

    host.respond(probe, 200);
    for _ in 0..3 {
        let token = mirror_one(&mut host).expect("a successful probe closes the back-off");
        host.respond(token, 200);
    }
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 4);
    // 5 that tripped it, 2 refused in the window, the probe and 2 refused
    // beside it, 3 after.
    host.assert_accounted("unnamed", "shadow", 5 + 2 + 3 + 3);
}

#[test]
fn a_failed_probe_doubles_the_window() {
    let mut host = Host::load(&mirror_config(""));
    trip(&mut host);
    host.advance_clock_ms(500);
    let probe = mirror_one(&mut host).unwrap();
    host.respond(probe, Response::envoy_timeout());

    host.advance_clock_ms(999);
    assert_eq!(mirror_one(&mut host), None, "the second window is 1000 ms");
    host.advance_clock_ms(1);
    let second = mirror_one(&mut host).expect("the next probe after 1000 ms");
    host.respond(second, Response::envoy_connect_failure());
    host.advance_clock_ms(1_999);
    assert_eq!(mirror_one(&mut host), None, "then 2000 ms");
    host.advance_clock_ms(1);
    assert!(mirror_one(&mut host).is_some());
}

#[test]
fn only_consecutive_failures_count() {
    let mut host = Host::load(&mirror_config(""));
    for _ in 0..3 {
        for _ in 0..4 {
            let token = mirror_one(&mut host).unwrap();
            host.respond(token, Response::envoy_reset());
        }
        let token = mirror_one(&mut host).unwrap();
        host.respond(token, 200);
    }
    assert_eq!(
        host.skipped("unnamed", "shadow", "backoff"),
        0,
        "12 failures, never 5 in a row"
    );
    assert!(mirror_one(&mut host).is_some());
}

#[test]
fn the_shadows_own_errors_do_not_open_the_backoff() {
    let mut host = Host::load(&mirror_config(""));
    for _ in 0..10 {
        let token = mirror_one(&mut host).unwrap();
        // 500s, and 503s that came from the shadow (it is reachable, just unhappy).
        host.respond(token, 500);
        let token = mirror_one(&mut host).unwrap();
        host.respond(token, Response::from_shadow_with_body(503, "no healthy upstream"));
    }
    assert_eq!(host.responses("unnamed", "shadow", "5xx"), 20);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 0);
}

#[test]
fn refused_dispatches_count_as_delivery_failures() {
    let mut host = Host::load(&mirror_config(""));
    host.faults().dispatch = Some(Status::InternalFailure); // the shadow's circuit breaker is full
    for _ in 0..5 {
        assert_eq!(mirror_one(&mut host), None);
    }
    host.faults().dispatch = None;
    assert_eq!(mirror_one(&mut host), None);
    assert_eq!(host.skipped("unnamed", "shadow", "dispatch_failed"), 5);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 1);
    host.advance_clock_ms(500);
    assert!(mirror_one(&mut host).is_some(), "the probe");
}

/// A shadow whose answers are all over Envoy's buffer limit: each call ends
/// with no headers, a few ms after the send (measured in Envoy 1.40: 8-11 ms
/// for 20 MiB answers against a 1 MiB limit). The shadow is up and answering;
/// however many in a row, it is never backed off, and no answer time is
/// recorded for an answer that never arrived whole.
#[test]
fn answers_cut_off_before_the_timeout_never_open_the_backoff() {
    let mut host = Host::load(&mirror_config(""));
    for i in 0..20 {
        let token = mirror_one(&mut host).expect("never backed off");
        host.advance_clock_ms(8 + i % 4);
        host.respond(token, Response::headerless());
    }
    assert_eq!(host.responses("unnamed", "shadow", "too_large_or_reset"), 20);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 0);
    assert!(host.histogram(&names::latency("unnamed", "shadow")).is_empty());
    host.assert_accounted("unnamed", "shadow", 20);
}

/// The same ending once the mirror's own `timeoutMs` has passed: the shadow
/// began answering and stalled. That is a timeout, and it backs off.
#[test]
fn answers_that_stall_until_the_timeout_are_timeouts_and_open_the_backoff() {
    let mut host = Host::load(&mirror_config(r#""timeoutMs": 200"#));
    let early = mirror_one(&mut host).unwrap();
    host.advance_clock_ms(140);
    host.respond(early, Response::headerless());
    for _ in 0..5 {
        let token = mirror_one(&mut host).unwrap();
        // Envoy's timer may fire a little early by the filter's clock.
        host.advance_clock_ms(190);
        host.respond(token, Response::headerless());
    }
    assert_eq!(host.responses("unnamed", "shadow", "too_large_or_reset"), 1);
    assert_eq!(host.responses("unnamed", "shadow", "timeout"), 5);
    assert_eq!(mirror_one(&mut host), None);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 1);
}

/// A shadow that resets every stream before answering: Envoy replies 503
/// "... reset before headers" for each, and the back-off opens after 5, also
/// when answers cut off by the buffer limit came before them.
#[test]
fn a_shadow_that_resets_every_stream_is_still_backed_off() {
    let mut host = Host::load(&mirror_config(""));
    for _ in 0..3 {
        let token = mirror_one(&mut host).unwrap();
        host.advance_clock_ms(9);
        host.respond(token, Response::headerless());
    }
    for _ in 0..5 {
        let token = mirror_one(&mut host).expect("not backed off yet");
        host.advance_clock_ms(1);
        host.respond(token, Response::envoy_reset());
    }
    assert_eq!(host.responses("unnamed", "shadow", "reset"), 5);
    assert_eq!(mirror_one(&mut host), None);
    assert_eq!(host.skipped("unnamed", "shadow", "backoff"), 1);
}
