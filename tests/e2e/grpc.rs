//! End to end, gRPC through the real Envoy with a real gRPC stack: a tonic
//! client, tonic servers as primary and shadow (HTTP/2 to both clusters),
//! and a grpc-core (Python grpcio) shadow. Copies arrive whole and
//! accepted by the server, trace context stays behind, the shadow's gRPC
//! status is what the metrics count, and the client sees only the primary.

use bytes::Bytes;
use std::time::Duration;
use tonic::Code;
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::grpc::{
    always_ok, mirrored, response_classes, responses, skipped, start_envoy_for_grpc_on, timed_responses, Answer, Call,
    GrpcClient, GrpcServer, GrpcioServer, Outcome, Rpc, CLIENT_STREAM, SERVER_STREAM, UNARY,
};
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, ARRIVAL, MIRROR_OFF, QUIET};
use vrata_mirror_testkit::upstream::closed_port;

const MIRROR_ALL: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}"#;

/// Trace context and Istio peer metadata: the primary gets them, the copy
/// must not (a copy must not join the caller's trace, nor claim its peer).
const DROPPED: &[(&str, &[u8])] = &[
    (
        "traceparent",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    ("tracestate", b"congo=t61rcWkgMzE"),
    (
        "b3",
        b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    ),
    ("x-b3-traceid", b"80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", b"e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", b"05e3ac9a4f6e3b90"),
    ("x-b3-sampled", b"1"),
    ("x-b3-flags", b"1"),
    (
        "grpc-trace-bin",
        &[
            0, 0, 0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c, 1,
            0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31, 2, 1,
        ],
    ),
    ("x-ot-span-context", b"0af7651916cd43dd;b7ad6b7169203331;0;cs"),
    (
        "uber-trace-id",
        b"0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:0:1",
    ),
    ("x-cloud-trace-context", b"105445aa7843bc8bf206b12000100000/1;o=1"),
    ("x-envoy-peer-metadata", b"ChQKDkFQUF9DT05UQUlORVJTEgIaAA=="),
    (
        "x-envoy-peer-metadata-id",
        b"sidecar~10.1.2.3~app-7d4f.ns~ns.svc.cluster.local",
    ),
];

/// Application metadata the copy keeps unchanged.
const KEPT: &[(&str, &[u8])] = &[
    ("x-tenant", b"acme"),
    ("x-tenant-bin", &[0xde, 0xad, 0xbe, 0xef, 0, 0xff]),
];

/// Headers compared between the primary's request and the copy.
const SAME_ON_BOTH: &[&str] = &[
    "content-type",
    "grpc-timeout",
    "user-agent",
    "x-request-id",
    "x-tenant",
    "x-tenant-bin",
];

const DEADLINE: Duration = Duration::from_secs(5);

/// A message with every byte value, `len` long, varied by `seed`.
fn message(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn rpc(path: &'static str, messages: Vec<Bytes>, metadata: &[(&'static str, &[u8])]) -> Rpc {
    Rpc {
        path,
        messages,
        metadata: metadata.iter().map(|(k, v)| (*k, v.to_vec())).collect(),
        timeout: Some(DEADLINE),
    }
}

/// Unary and client-streaming calls with messages of many shapes (empty,
/// every byte value, larger than an HTTP/2 frame and than a stream window),
/// and server-streaming ones; every call carries trace context and
/// application metadata. Each call's messages are unique.
fn traffic() -> Vec<Rpc> {
    let metadata: Vec<(&'static str, &[u8])> = DROPPED.iter().chain(KEPT).copied().collect();
    vec![
        rpc(UNARY, vec![message(1, 256)], &metadata),
        rpc(UNARY, vec![Bytes::new()], &metadata),
        rpc(UNARY, vec![message(2, 100 * 1024)], &metadata),
        rpc(
            CLIENT_STREAM,
            vec![message(3, 10), message(4, 20), message(5, 30)],
            &metadata,
        ),
        rpc(
            CLIENT_STREAM,
            vec![
                message(6, 1),
                Bytes::new(),
                message(7, 17_000),
                message(8, 2),
                message(9, 70_000),
            ],
            &metadata,
        ),
        rpc(CLIENT_STREAM, vec![message(10, 40 * 1024); 2], &metadata),
        rpc(SERVER_STREAM, vec![message(11, 64)], &metadata),
        rpc(SERVER_STREAM, vec![message(12, 20_000)], &metadata),
    ]
}

/// What a healthy primary answers.
fn primary_outcomes(rpcs: &[Rpc]) -> Vec<Outcome> {
    rpcs.iter().map(|rpc| Outcome::healthy("primary", rpc)).collect()
}

/// The client's outcomes with mirroring off (percentage 0): what every
/// mirrored run must reproduce.
async fn baseline(host: Host, rpcs: &[Rpc]) -> Vec<Outcome> {
    let primary = GrpcServer::start("primary", always_ok).await;
    let envoy = start_envoy_for_grpc_on(host, MIRROR_OFF, primary.port(), closed_port()).await;
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(rpcs).await;
    assert_eq!(mirrored(&envoy), 0.0, "percentage 0 mirrors nothing");
    outcomes
}

async fn assert_clients_unaffected(host: Host, outcomes: &[Outcome], rpcs: &[Rpc]) {
    assert_eq!(
        outcomes,
        primary_outcomes(rpcs),
        "the client got something other than the primary's answers"
    );
    assert_eq!(
        outcomes,
        baseline(host, rpcs).await,
        "client results differ from the run without mirroring"
    );
}

/// The call in `calls` with this path and exactly these messages.
fn find<'a>(calls: &'a [Call], rpc: &Rpc) -> &'a Call {
    let matching: Vec<&Call> = calls
        .iter()
        .filter(|c| c.path == rpc.path && c.messages == rpc.messages)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{} with {} messages of {:?} bytes: expected exactly one call, got {} (calls: {:?})",
        rpc.path,
        rpc.messages.len(),
        rpc.messages.iter().map(Bytes::len).collect::<Vec<_>>(),
        matching.len(),
        calls
            .iter()
            .map(|c| (&c.path, c.messages.iter().map(Bytes::len).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    );
    matching[0]
}

fn prometheus(envoy: &Envoy) -> String {
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.contains("vrata_mirror"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tests 1 and 5: every unary, client-streaming and server-streaming call is
/// copied, every message byte for byte; the copy keeps what gRPC needs and
/// the application's metadata, loses the trace context; each copy's answer
/// counts as grpc_ok; the client gets exactly what it gets without mirroring.
async fn calls_are_mirrored_whole_with_grpc_headers_and_without_trace_context(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", always_ok).await;
    let envoy = start_envoy_for_grpc_on(host, MIRROR_ALL, primary.port(), shadow.port()).await;
    let rpcs = traffic();
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;

    let copies = shadow.wait_for(rpcs.len(), ARRIVAL).await;
    assert_eq!(copies.len(), rpcs.len(), "every call reaches the shadow's application");
    let originals = primary.calls();
    for rpc in &rpcs {
        let copy = find(&copies, rpc);
        let original = find(&originals, rpc);
        assert_eq!(copy.header("content-type"), Some("application/grpc"));
        assert_eq!(
            copy.header("te"),
            Some("trailers"),
            "{}: gRPC needs te: trailers; copy headers {:?}",
            rpc.path,
            copy.headers
        );
        assert!(
            copy.header("grpc-timeout").is_some(),
            "{}: the deadline travels as grpc-timeout",
            rpc.path
        );
        assert!(
            copy.header("x-request-id").is_some(),
            "{}: x-request-id is kept",
            rpc.path
        );
        for name in SAME_ON_BOTH {
            assert_eq!(
                copy.header(name),
                original.header(name),
                "{}: {name} differs between primary and copy",
                rpc.path
            );
        }
        for (name, _) in DROPPED {
            assert!(
                original.header(name).is_some(),
                "{}: the primary got {name} (so the filter saw it)",
                rpc.path
            );
            assert!(
                copy.header(name).is_none(),
                "{}: the copy carries {name}: {:?}",
                rpc.path,
                copy.header(name)
            );
        }
    }

    assert!(
        eventually(ARRIVAL, || responses(&envoy, "grpc_ok") == rpcs.len() as f64).await,
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(mirrored(&envoy), rpcs.len() as f64);
    assert_eq!(
        response_classes(&envoy),
        vec![("grpc_ok".to_owned(), rpcs.len() as f64)],
        "{}",
        prometheus(&envoy)
    );
    assert!(
        eventually(ARRIVAL, || timed_responses(&envoy) == rpcs.len() as f64).await,
        "{}",
        prometheus(&envoy)
    );
    assert_clients_unaffected(host, &outcomes, &rpcs).await;
}

/// The shadow's answer, chosen by the call's `x-answer` metadata (the copy
/// keeps it; the primary ignores it).
fn answer_by_metadata(_path: &str, headers: &http::HeaderMap) -> Answer {
    match headers.get("x-answer").and_then(|v| v.to_str().ok()) {
        Some("internal") => Answer::Fail(Code::Internal),
        Some("permission-denied") => Answer::Fail(Code::PermissionDenied),
        Some("unavailable") => Answer::Fail(Code::Unavailable),
        Some("not-found") => Answer::Fail(Code::NotFound),
        Some("resource-exhausted-after-message") => Answer::FailAfterMessage(Code::ResourceExhausted),
        Some("data-loss-after-message") => Answer::FailAfterMessage(Code::DataLoss),
        Some("no-status") => Answer::NoStatus,
        _ => Answer::Ok,
    }
}

fn answering(path: &'static str, seed: u8, answer: &'static str) -> Rpc {
    let messages = match path {
        CLIENT_STREAM => vec![message(seed, 100), message(seed.wrapping_add(100), 3000)],
        _ => vec![message(seed, 500)],
    };
    rpc(path, messages, &[("x-answer", answer.as_bytes())])
}

/// Test 2: a shadow answering gRPC errors, trailers-only (status in the
/// response headers) and after a message (status in the trailers), and one
/// gRPC answer with no status at all: each copy counted in its class, exact
/// counts; errors do not trigger the back-off; the client is unaffected.
async fn a_shadow_answering_grpc_errors_is_counted_by_grpc_status(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", answer_by_metadata).await;
    let envoy = start_envoy_for_grpc_on(host, MIRROR_ALL, primary.port(), shadow.port()).await;
    // Errors first and back to back: more than the back-off's 5 consecutive failures.
    let rpcs = vec![
        answering(UNARY, 1, "internal"),
        answering(UNARY, 2, "internal"),
        answering(CLIENT_STREAM, 3, "internal"),
        answering(CLIENT_STREAM, 4, "permission-denied"),
        answering(SERVER_STREAM, 5, "permission-denied"),
        answering(UNARY, 6, "unavailable"),
        answering(SERVER_STREAM, 7, "not-found"),
        answering(UNARY, 8, "resource-exhausted-after-message"),
        answering(CLIENT_STREAM, 9, "resource-exhausted-after-message"),
        answering(SERVER_STREAM, 10, "resource-exhausted-after-message"),
        answering(SERVER_STREAM, 11, "data-loss-after-message"),
        answering(UNARY, 12, "no-status"),
        answering(UNARY, 13, "ok"),
        answering(CLIENT_STREAM, 14, "ok"),
    ];
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;

    let copies = shadow.wait_for(rpcs.len(), ARRIVAL).await;
    assert_eq!(copies.len(), rpcs.len(), "every call reaches the shadow");
    for rpc in &rpcs {
        find(&copies, rpc);
    }
    let expected: Vec<(String, f64)> = [
        ("grpc_data_loss", 1.0),
        ("grpc_internal", 3.0),
        ("grpc_missing_status", 1.0),
        ("grpc_not_found", 1.0),
        ("grpc_ok", 2.0),
        ("grpc_permission_denied", 2.0),
        ("grpc_resource_exhausted", 3.0),
        ("grpc_unavailable", 1.0),
    ]
    .iter()
    .map(|(class, n)| ((*class).to_owned(), *n))
    .collect();
    let all_counted = || response_classes(&envoy).iter().map(|(_, n)| n).sum::<f64>() >= rpcs.len() as f64;
    assert!(eventually(ARRIVAL, all_counted).await, "{}", prometheus(&envoy));
    assert_eq!(response_classes(&envoy), expected, "{}", prometheus(&envoy));
    assert_eq!(mirrored(&envoy), rpcs.len() as f64);
    assert_eq!(
        skipped(&envoy, "backoff"),
        0.0,
        "a shadow answering gRPC errors is not backed off"
    );
    assert!(
        eventually(ARRIVAL, || timed_responses(&envoy) == rpcs.len() as f64).await,
        "{}",
        prometheus(&envoy)
    );
    assert_clients_unaffected(host, &outcomes, &rpcs).await;
}

/// Test 3: a shadow whose port is closed. Envoy answers such a gRPC copy
/// itself; it counts as connect_failure, never as a gRPC status of the
/// shadow, and the back-off then spares it the rest.
async fn a_grpc_shadow_that_is_down_counts_as_connect_failure(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let envoy = start_envoy_for_grpc_on(host, MIRROR_ALL, primary.port(), closed_port()).await;
    let rpcs = traffic();
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;

    let failures = || responses(&envoy, "connect_failure");
    assert!(
        eventually(ARRIVAL, || failures() >= 5.0).await,
        "{}",
        prometheus(&envoy)
    );
    assert!(
        eventually(ARRIVAL, || failures() == mirrored(&envoy)).await,
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(
        mirrored(&envoy) + skipped(&envoy, "backoff"),
        rpcs.len() as f64,
        "every call is either sent or skipped by the back-off, once: {}",
        prometheus(&envoy)
    );
    let classes = response_classes(&envoy);
    assert_eq!(
        classes,
        vec![("connect_failure".to_owned(), mirrored(&envoy))],
        "{}",
        prometheus(&envoy)
    );
    assert_clients_unaffected(host, &outcomes, &rpcs).await;
}

/// A shadow that never answers: Envoy's timeout counts as `timeout`, not as
/// the gRPC status Envoy's local reply would carry.
async fn a_stuck_grpc_shadow_counts_as_timeout(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", |_, _| Answer::Stall).await;
    let config = r#"{"forward": {"mirror": {"destinationId": "shadow", "timeoutMs": 300}}}"#;
    let envoy = start_envoy_for_grpc_on(host, config, primary.port(), shadow.port()).await;
    let rpcs = traffic();
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;
    assert_eq!(outcomes, primary_outcomes(&rpcs));

    assert!(
        eventually(ARRIVAL, || responses(&envoy, "timeout") >= 5.0).await,
        "{}",
        prometheus(&envoy)
    );
    assert!(
        eventually(ARRIVAL, || responses(&envoy, "timeout") == mirrored(&envoy)).await,
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(
        mirrored(&envoy) + skipped(&envoy, "backoff"),
        rpcs.len() as f64,
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(
        response_classes(&envoy),
        vec![("timeout".to_owned(), mirrored(&envoy))],
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(
        shadow.calls().len() as f64,
        mirrored(&envoy),
        "each copy sent reached the stuck shadow"
    );
}

/// Test 4: the request body (the gRPC frames: 5 bytes of prefix per message
/// plus the message) over `maxBodyBytes` is not mirrored, and counted; one
/// exactly at the cap is. The primary gets everything either way.
async fn calls_over_max_body_bytes_are_skipped_and_counted(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", always_ok).await;
    let config = r#"{"forward": {"mirror": {"destinationId": "shadow", "maxBodyBytes": 1024}}}"#;
    let envoy = start_envoy_for_grpc_on(host, config, primary.port(), shadow.port()).await;
    let at_cap = [
        rpc(UNARY, vec![message(1, 1024 - 5)], &[]),
        rpc(CLIENT_STREAM, vec![message(2, 512 - 5), message(3, 512 - 5)], &[]),
    ];
    let over_cap = vec![
        rpc(UNARY, vec![message(4, 1024 - 4)], &[]),
        rpc(CLIENT_STREAM, vec![message(5, 512 - 5), message(6, 512 - 4)], &[]),
        rpc(CLIENT_STREAM, vec![message(7, 300); 20], &[]),
        rpc(UNARY, vec![message(8, 256 * 1024)], &[]),
        rpc(SERVER_STREAM, vec![message(9, 2000)], &[]),
    ];
    let rpcs: Vec<Rpc> = at_cap.iter().chain(&over_cap).cloned().collect();
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;

    // The README's table, row "copy's body": the native host streams the
    // copy, and `maxBodyBytes` bounds what a worker's unfinished copies hold
    // (`maxInFlight` x `maxBodyBytes`: 128 x 1 KiB here), not a call's size:
    // every call is mirrored there but the 256 KiB one, which outgrows the
    // bound under way and is reset (counted as an end, `body_too_large`).
    // The wasm host buffers, and skips what is over the cap.
    let too_big = at_cap.len() + 3; // rpcs' index of the 256 KiB call
    let mirrored_rpcs: Vec<&Rpc> = match host {
        Host::Wasm => at_cap.iter().collect(),
        Host::Native => rpcs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != too_big)
            .map(|(_, rpc)| rpc)
            .collect(),
    };
    let (sent, reset) = match host {
        Host::Wasm => (at_cap.len(), 0.0),
        Host::Native => (rpcs.len(), 1.0),
    };
    let copies = shadow.wait_for(mirrored_rpcs.len(), ARRIVAL).await;
    for rpc in &mirrored_rpcs {
        find(&copies, rpc);
    }
    let copies = shadow.settle(QUIET).await;
    assert_eq!(copies.len(), mirrored_rpcs.len(), "what reaches the shadow");
    let originals = primary.calls();
    for rpc in &rpcs {
        find(&originals, rpc);
    }
    assert_eq!(
        skipped(&envoy, "body_too_large"),
        (rpcs.len() - sent) as f64,
        "{}",
        prometheus(&envoy)
    );
    assert_eq!(mirrored(&envoy), sent as f64, "{}", prometheus(&envoy));
    assert!(
        eventually(ARRIVAL, || responses(&envoy, "grpc_ok") == mirrored_rpcs.len() as f64
            && responses(&envoy, "body_too_large") == reset)
        .await,
        "{}",
        prometheus(&envoy)
    );
    assert_clients_unaffected(host, &outcomes, &rpcs).await;
}

/// Test 6: a grpc-core shadow (Python grpcio), the stack that cancels a
/// call without `te: trailers` ("Missing :te header") before its handler
/// runs. Every mirrored call must reach its handlers, whole.
async fn a_grpc_core_shadow_accepts_every_copy(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = tokio::task::spawn_blocking(GrpcioServer::start)
        .await
        .expect("grpcio start");
    let envoy = start_envoy_for_grpc_on(host, MIRROR_ALL, primary.port(), shadow.port).await;
    let rpcs = traffic();
    let outcomes = GrpcClient::connect(&envoy.url("")).await.run(&rpcs).await;
    assert_eq!(outcomes, primary_outcomes(&rpcs));

    let calls = shadow.wait_for(rpcs.len(), ARRIVAL).await;
    let summary = || {
        format!(
            "{}\ngrpcio printed: {:?}",
            prometheus(&envoy),
            shadow
                .output()
                .iter()
                .map(|l| l.chars().take(300).collect::<String>())
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(
        calls.len(),
        rpcs.len(),
        "every copy reaches the grpc-core handlers: {}",
        summary()
    );
    for rpc in &rpcs {
        let wanted: Vec<Vec<u8>> = rpc.messages.iter().map(|m| m.to_vec()).collect();
        let matching: Vec<_> = calls
            .iter()
            .filter(|c| c.path == rpc.path && c.messages == wanted)
            .collect();
        assert_eq!(matching.len(), 1, "{} with {} messages", rpc.path, rpc.messages.len());
        let call = matching[0];
        assert_eq!(call.metadata("x-tenant"), Some("acme"));
        assert_eq!(
            call.metadata("x-tenant-bin"),
            Some("deadbeef00ff"),
            "binary metadata arrives decoded, unchanged"
        );
        for name in ["traceparent", "x-b3-traceid", "grpc-trace-bin", "x-envoy-peer-metadata"] {
            assert!(
                call.metadata(name).is_none(),
                "the copy carries {name}: {:?}",
                call.metadata
            );
        }
        let remaining = call.time_remaining.unwrap_or(f64::INFINITY);
        assert!(
            remaining <= DEADLINE.as_secs_f64(),
            "grpc-core read the deadline from grpc-timeout: {remaining}"
        );
    }
    assert!(
        eventually(ARRIVAL, || responses(&envoy, "grpc_ok") == rpcs.len() as f64).await,
        "{}",
        summary()
    );
    assert_eq!(mirrored(&envoy), rpcs.len() as f64);
    assert_eq!(
        response_classes(&envoy),
        vec![("grpc_ok".to_owned(), rpcs.len() as f64)],
        "{}",
        summary()
    );
}

vrata_mirror_testkit::on_each_host!(
    async calls_are_mirrored_whole_with_grpc_headers_and_without_trace_context,
    async a_shadow_answering_grpc_errors_is_counted_by_grpc_status,
    async a_grpc_shadow_that_is_down_counts_as_connect_failure,
    async a_stuck_grpc_shadow_counts_as_timeout,
    async calls_over_max_body_bytes_are_skipped_and_counted,
    async a_grpc_core_shadow_accepts_every_copy,
);
