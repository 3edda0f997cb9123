//! What the copy of a request looks like, and that the primary is never held
//! up for it: every request callback returns Continue.

use crate::wasmhost::{mirror_config, Host};

/// Every request shape the filter meets, each returning Continue everywhere.
#[test]
fn every_callback_continues_whatever_the_request() {
    let mut host = Host::load(&mirror_config(r#""maxBodyBytes": 8"#));
    let sent = [
        host.request().get("/").send(),
        host.request().post("/upload").body_chunks(&[b"ab", b"cd", b""]).send(),
        host.request()
            .post("/grpc")
            .body(b"xy")
            .trailers(&[("grpc-status", "0")])
            .send(),
        host.request()
            .post("/aborted")
            .body_chunks(&[b"ab", b"cd"])
            .abort_after_chunks(1)
            .send(),
        host.request().post("/too-large").body_chunks(&[b"0123456789"]).send(),
        host.request().get("/ws").headers(&[("upgrade", "websocket")]).send(),
        host.request().headers(&[(":method", "GET")]).send(),
    ];
    host.run_pending();
    for request in &sent {
        request.assert_never_paused();
        assert_eq!(
            request.done,
            Some(true),
            "proxy_on_done lets the host delete the context at once"
        );
    }
    // Each shape above ended one way or another, and was accounted for.
    assert_eq!(
        host.calls().len(),
        3,
        "the GET, the chunked POST and the POST with trailers"
    );
    let skips: Vec<(&str, i64)> = host.skips("unnamed", "shadow").into_iter().collect();
    assert_eq!(
        skips,
        [
            ("body_too_large", 1),
            ("dispatch_failed", 1),
            ("incomplete", 1),
            ("upgrade", 1)
        ],
        "too large, refused by Envoy for lack of :path, aborted, upgrade"
    );
}

#[test]
fn a_get_with_a_query_is_copied_with_its_path_and_headers() {
    let mut host = Host::load(&mirror_config(""));
    host.request()
        .get("/search?q=shoes&page=2")
        .headers(&[("x-request-id", "r-1"), ("cookie", "a=1")])
        .send()
        .assert_never_paused();
    assert!(
        host.calls().is_empty(),
        "the root dispatches on the next event-loop turn, not inside the request"
    );
    host.turn();
    let call = host.single_dispatched_call();
    assert_eq!(call.cluster, "shadow");
    assert_eq!(
        call.headers,
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "api.example.com"),
            (":path", "/search?q=shoes&page=2"),
            ("user-agent", "harness/1"),
            ("accept", "*/*"),
            ("x-request-id", "r-1"),
            ("cookie", "a=1"),
            // the loop marker, on every copy
            ("x-vrata-mirror", "1"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    assert!(call.body.is_empty());
    assert!(call.trailers.is_empty());
    assert_eq!(call.timeout_ms, 1_000, "the documented default timeoutMs");
    assert_eq!(host.requests_total("unnamed", "shadow"), 1);
}

#[test]
fn a_body_in_several_chunks_is_copied_whole_without_its_framing_headers() {
    let mut host = Host::load(&mirror_config(""));
    host.request()
        .post("/upload")
        .headers(&[("content-length", "11"), ("content-type", "text/plain")])
        .body_chunks(&[b"hello", b" ", b"worl", b"d", b""])
        .send()
        .assert_never_paused();
    host.turn();
    let call = host.single_dispatched_call();
    assert_eq!(call.body, b"hello world");
    assert_eq!(call.header(":method"), Some("POST"));
    assert_eq!(call.header("content-type"), Some("text/plain"));
    assert_eq!(
        call.header("content-length"),
        None,
        "Envoy frames the copy's body itself"
    );
}

#[test]
fn a_request_ending_in_trailers_is_sent_only_when_the_trailers_arrive() {
    let mut host = Host::load(&mirror_config(""));
    let id = host
        .request()
        .post("/grpc.Service/Call")
        .headers(&[("content-type", "application/grpc")])
        .start()
        .context_id;
    host.request_body(id, b"\0\0\0\0\x02", false);
    host.request_body(id, b"hi", false);
    host.run_pending();
    assert!(host.calls().is_empty(), "no end of stream yet: nothing may be sent");
    host.request_trailers(id, &[("grpc-timeout", "1S"), ("x-checksum", "abc")]);
    host.end_stream(id);
    host.assert_never_paused();
    host.turn();
    let call = host.single_dispatched_call();
    assert_eq!(call.body, b"\0\0\0\0\x02hi");
    assert_eq!(
        call.trailers,
        [
            ("grpc-timeout".to_owned(), "1S".to_owned()),
            ("x-checksum".to_owned(), "abc".to_owned())
        ]
    );
}

#[test]
fn hop_by_hop_and_framing_headers_never_reach_the_copy() {
    let mut host = Host::load(&mirror_config(""));
    let hop_by_hop = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "gzip"),
        ("transfer-encoding", "chunked"),
        ("content-length", "3"),
        ("expect", "100-continue"),
    ];
    host.request()
        .post("/")
        .headers(&hop_by_hop)
        .headers(&[("x-kept", "1")])
        .body(b"abc")
        .send();
    host.turn();
    let call = host.single_dispatched_call();
    for (name, _) in hop_by_hop {
        assert_eq!(call.count_of(name), 0, "{name} was copied: {:?}", call.headers);
    }
    assert_eq!(call.header("x-kept"), Some("1"));
    assert_eq!(call.body, b"abc");
}

#[test]
fn a_grpc_call_keeps_te_trailers_and_its_metadata_but_not_the_trace() {
    let mut host = Host::load(&mirror_config(""));
    let grpc = [
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", "2S"),
        ("grpc-encoding", "gzip"),
        ("grpc-accept-encoding", "gzip,identity"),
        ("x-request-id", "r-42"),
    ];
    let not_the_primarys = [
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", "vendor=1"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "1"),
        ("grpc-trace-bin", "AAA"),
        ("x-envoy-peer-metadata", "ChwKDkFQUF9DT05UQUlORVJT"),
        ("x-envoy-peer-metadata-id", "sidecar~10.0.0.1~client"),
    ];
    host.request()
        .post("/pkg.Echo/Unary")
        .headers(&grpc)
        .headers(&not_the_primarys)
        .body(b"\0\0\0\0\x02hi")
        .send();
    host.turn();
    let call = host.single_dispatched_call();
    for (name, value) in grpc {
        assert_eq!(call.header(name), Some(value), "{name}: {:?}", call.headers);
    }
    for (name, _) in not_the_primarys {
        assert_eq!(call.count_of(name), 0, "{name} was copied: {:?}", call.headers);
    }
}

#[test]
fn trace_context_kept_on_request_reaches_the_copy_unchanged() {
    let trace = [
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", "vendor=1"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "1"),
    ];
    let peer = ("x-envoy-peer-metadata", "ChwKDkFQUF9DT05UQUlORVJT");
    for (choice, kept) in [
        ("", false),
        (r#""traceContext": "drop""#, false),
        (r#""traceContext": "keep""#, true),
    ] {
        let mut host = Host::load(&mirror_config(choice));
        host.request().get("/").headers(&trace).headers(&[peer]).send();
        host.turn();
        let call = host.single_dispatched_call();
        for (name, value) in trace {
            let expected = kept.then_some(value);
            assert_eq!(call.header(name), expected, "{choice:?}: {name}: {:?}", call.headers);
            assert!(call.count_of(name) <= 1, "{name} once at most");
        }
        assert_eq!(call.count_of(peer.0), 0, "peer metadata is never the copy's");
    }
}

#[test]
fn upgrades_and_connect_are_never_mirrored_and_are_counted() {
    let mut host = Host::load(&mirror_config(""));
    host.request()
        .get("/ws")
        .headers(&[("upgrade", "websocket"), ("connection", "upgrade")])
        .send();
    host.request().method("CONNECT", "/").send();
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "upgrade"), 2);
}

#[test]
fn the_copy_has_an_authority_even_when_the_request_had_none() {
    let mut host = Host::load(&mirror_config(""));
    // HTTP/1.0 without Host: Envoy hands the filter no :authority.
    host.request()
        .headers(&[(":method", "GET"), (":path", "/old"), (":scheme", "http")])
        .send();
    host.turn();
    let call = host.single_dispatched_call();
    assert_eq!(
        call.header(":authority"),
        Some("shadow"),
        "the destination's name stands in"
    );
    assert_eq!(call.count_of(":authority"), 1);
}

#[test]
fn remove_add_and_authority_shape_only_the_copy() {
    let mut host = Host::load(&mirror_config(
        r#""removeHeaders": ["Authorization", "cookie"], "addHeaders": {"X-Mirrored": "true", "x-env": "shadow"},
           "authority": "api-shadow.internal:9090""#,
    ));
    host.request()
        .get("/account")
        .headers(&[
            ("authorization", "Bearer secret"),
            ("cookie", "s=1"),
            ("x-env", "prod"),
            ("x-trace", "t"),
        ])
        .send();
    host.turn();
    let call = host.single_dispatched_call();
    assert_eq!(call.header("authorization"), None);
    assert_eq!(call.header("cookie"), None);
    assert_eq!(call.header("x-mirrored"), Some("true"));
    assert_eq!(call.count_of("x-env"), 1, "an added header replaces the request's own");
    assert_eq!(call.header("x-env"), Some("shadow"));
    assert_eq!(call.header("x-trace"), Some("t"));
    assert_eq!(call.header(":authority"), Some("api-shadow.internal:9090"));
}

#[test]
fn host_suffix_goes_before_the_port() {
    let mut host = Host::load(&mirror_config(r#""hostSuffix": "-shadow""#));
    host.request()
        .headers(&[
            (":method", "GET"),
            (":path", "/"),
            (":authority", "api.example.com:8443"),
        ])
        .send();
    host.turn();
    assert_eq!(
        host.single_dispatched_call().header(":authority"),
        Some("api.example.com-shadow:8443")
    );
}

#[test]
fn the_configured_timeout_is_the_calls_timeout() {
    let mut host = Host::load(&mirror_config(r#""timeoutMs": 250"#));
    host.request().get("/").send();
    host.turn();
    assert_eq!(host.single_dispatched_call().timeout_ms, 250);
}

#[test]
fn each_mirror_gets_its_own_copy_and_its_own_counters() {
    let mut host = Host::builder().clusters(&["shadow-a", "shadow-b"]).load(
        r#"{"forward": {"mirrors": [
            {"destinationId": "shadow-a"},
            {"destinationId": "shadow-b", "addHeaders": {"x-which": "b"}, "timeoutMs": 300}]}}"#,
    );
    host.request().post("/").body(b"payload").send();
    host.turn();
    let calls = host.new_calls();
    assert_eq!(calls.len(), 2);
    let a = calls.iter().find(|c| c.cluster == "shadow-a").unwrap();
    let b = calls.iter().find(|c| c.cluster == "shadow-b").unwrap();
    assert_eq!(
        (a.body.as_slice(), b.body.as_slice()),
        (&b"payload"[..], &b"payload"[..])
    );
    assert_eq!((a.header("x-which"), b.header("x-which")), (None, Some("b")));
    assert_eq!((a.timeout_ms, b.timeout_ms), (1_000, 300));
    assert_eq!(host.requests_total("unnamed", "shadow-a"), 1);
    assert_eq!(host.requests_total("unnamed", "shadow-b"), 1);
}

#[test]
fn one_wake_up_carries_a_whole_batch() {
    let mut host = Host::load(&mirror_config(""));
    for i in 0..5 {
        host.request().get(&format!("/{i}")).send();
    }
    // Only the empty -> non-empty transition wakes the root.
    assert_eq!(host.pending_events(), 1);
    assert_eq!(host.turn(), 1);
    let paths: Vec<String> = host
        .new_calls()
        .iter()
        .map(|c| c.header(":path").unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["/0", "/1", "/2", "/3", "/4"], "sent in arrival order");
    assert_eq!(host.turn(), 0, "nothing left: no tick armed, no queue event");
    assert_eq!(host.tick_period_ms(), 0);
}

#[test]
fn a_request_carrying_the_loop_marker_is_never_mirrored_and_counts_as_loop() {
    let mut host = Host::load(&mirror_config(r#""copies": 2"#));
    host.request().get("/a").send();
    host.turn();
    let copy = host.new_calls();
    assert_eq!(copy.len(), 2);
    assert!(copy.iter().all(|call| call.header("x-vrata-mirror") == Some("1")));
    // The copy coming back (the canary's sidecar runs the same plugin): not copied again.
    for value in ["1", "anything"] {
        host.request().get("/a").headers(&[("x-vrata-mirror", value)]).send();
    }
    host.turn();
    assert!(host.new_calls().is_empty(), "a copy is never copied");
    assert_eq!(
        host.skips("unnamed", "shadow").into_iter().collect::<Vec<_>>(),
        [("loop", 4)],
        "each of the 2 copies of the 2 requests"
    );
    assert_eq!(host.requests_total("unnamed", "shadow"), 2);
}

#[test]
fn a_renamed_marker_is_the_one_carried_and_checked_and_none_when_off() {
    let mut host = Host::load(r#"{"loopMarker": "x-shadow-copy", "forward": {"mirror": {"destinationId": "shadow"}}}"#);
    host.request().get("/").headers(&[("x-vrata-mirror", "1")]).send();
    host.request().get("/").headers(&[("x-shadow-copy", "1")]).send();
    host.turn();
    let calls = host.new_calls();
    assert_eq!(calls.len(), 1, "the old name marks nothing once renamed");
    assert_eq!(calls[0].header("x-shadow-copy"), Some("1"));
    assert_eq!(
        calls[0].header("x-vrata-mirror"),
        Some("1"),
        "the client's own header, carried"
    );
    assert_eq!(
        host.skips("unnamed", "shadow").into_iter().collect::<Vec<_>>(),
        [("loop", 1)]
    );

    let mut off = Host::load(r#"{"loopMarker": false, "forward": {"mirror": {"destinationId": "shadow"}}}"#);
    off.request().get("/").send();
    off.request().get("/").headers(&[("x-vrata-mirror", "1")]).send();
    off.turn();
    let calls = off.new_calls();
    assert_eq!(calls.len(), 2, "no marker, no loop check");
    assert_eq!(calls[0].count_of("x-vrata-mirror"), 0);
    assert!(off.skips("unnamed", "shadow").is_empty());
}
