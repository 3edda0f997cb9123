//! End to end through the real Envoy: the shadow receives the same method,
//! path with query, headers (minus hop-by-hop) and body as the primary, for
//! every way a request can arrive; the client sees only the primary.

use bytes::Bytes;
use std::time::Duration;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, Rig, ARRIVAL, QUIET};
use vrata_mirror_testkit::upstream::{Behaviour, Recorded};

const MIRROR_ALL: &str = r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 100}}}"#;

/// Headers Envoy itself adds or rewrites on one side only, and the loop
/// marker the filter adds to the copy.
const HOP_OR_ENVOY: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "expect",
    "x-envoy-internal",
    "x-envoy-expected-rq-timeout-ms",
    "x-forwarded-for",
    "x-vrata-mirror",
];

fn comparable_headers(request: &Recorded) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<_> = request
        .headers
        .iter()
        .filter(|(name, _)| !HOP_OR_ENVOY.contains(&name.as_str()))
        .cloned()
        .collect();
    headers.sort();
    headers
}

/// The one request the primary got and the one copy the shadow got.
async fn primary_and_copy(rig: &Rig) -> (Recorded, Recorded) {
    let copies = rig.shadow.wait_for(1, ARRIVAL).await;
    let primaries = rig.primary.received();
    assert_eq!(primaries.len(), 1, "primary requests: {primaries:?}");
    assert_eq!(copies.len(), 1, "shadow requests: {copies:?}");
    (primaries[0].clone(), copies[0].clone())
}

fn assert_same_request(host: Host, primary: &Recorded, copy: &Recorded) {
    assert_eq!(copy.method, primary.method);
    assert_eq!(copy.uri, primary.uri);
    assert_eq!(copy.body.len(), primary.body.len(), "body length");
    assert!(copy.body == primary.body, "bodies differ");
    assert_eq!(comparable_headers(copy), comparable_headers(primary));
    assert_eq!(
        (primary.header("x-vrata-mirror"), copy.header("x-vrata-mirror")),
        (None, Some("1"))
    );
    for hop in ["connection", "expect", "te", "keep-alive"] {
        assert!(copy.header(hop).is_none(), "copy carries {hop}");
    }
    // Framing. The wasm host sends the copy whole (Envoy frames it with a
    // content-length); the native host streams it, and Envoy frames it as it
    // frames the primary: chunked exactly when the primary's is (README,
    // "What the copy is", and the hosts' table, row "copy's body").
    let chunked = match host {
        Host::Wasm => None,
        Host::Native => primary.header("transfer-encoding"),
    };
    assert_eq!(copy.header("transfer-encoding"), chunked, "the copy's framing");
}

async fn get_with_query_string(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let reply = client::http1(
        "GET",
        &rig.url("/api/items?id=7&q=a%20b"),
        &[("x-user-id", "42"), ("x-utf8", "café")],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().starts_with("primary saw GET /api/items?id=7&q=a%20b"),
        "{}",
        reply.text()
    );
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_same_request(host, &primary, &copy);
    assert_eq!(copy.header("x-user-id"), Some("42"));
    assert_eq!(
        copy.header("x-utf8"),
        Some("café"),
        "a UTF-8 value arrives byte for byte"
    );
}

async fn post_and_put_with_a_body(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    for (i, method) in ["POST", "PUT"].iter().enumerate() {
        let body = format!("{{\"order\": {i}, \"items\": [1, 2, 3]}}");
        let reply = client::http1(
            method,
            &rig.url("/orders"),
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 200);
        let copies = rig.shadow.wait_for(i + 1, ARRIVAL).await;
        let copy = &copies[i];
        assert_eq!(copy.method, *method);
        assert_eq!(copy.body, body.as_bytes());
        assert_eq!(copy.header("content-type"), Some("application/json"));
        assert_same_request(host, &rig.primary.received()[i], copy);
    }
}

async fn a_one_mebibyte_body_arrives_whole(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let reply = client::http1("POST", &rig.url("/upload"), &[], body.clone()).await;
    assert_eq!(reply.status, 200);
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_eq!(primary.body, body);
    assert_same_request(host, &primary, &copy);
}

async fn a_slow_chunked_upload_is_copied_piece_by_piece(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let pieces: Vec<Bytes> = (0..6)
        .map(|i| Bytes::from(vec![b'a' + i as u8; 3000 + i * 7]))
        .collect();
    let expected: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
    let reply = client::http1_slow_chunked(&rig.url("/stream"), pieces, Duration::from_millis(150)).await;
    assert_eq!(reply.status, 200);
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_eq!(primary.body, expected);
    assert_same_request(host, &primary, &copy);
}

async fn an_http2_request(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let reply = client::h2c(
        "POST",
        &rig.url("/h2?x=1"),
        &[("x-h2", "yes")],
        vec![Bytes::from_static(b"over h2")],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_eq!(copy.body, b"over h2");
    assert_same_request(host, &primary, &copy);
}

/// The copy's trailers, by the README's table, row "request trailers": the
/// wasm host never sends them (Envoy's `dispatch_http_call` has no support
/// for them), the native host sends the request's.
fn assert_trailers_as_the_host_sends_them(host: Host, primary_trailers: &[(String, Vec<u8>)], copy: &Recorded) {
    match host {
        Host::Wasm => assert!(
            copy.trailers.is_empty(),
            "the wasm host sent trailers: {:?}",
            copy.trailers
        ),
        Host::Native => assert_eq!(copy.trailers, primary_trailers, "the copy's trailers"),
    }
}

/// HTTP/2 can end a request with trailers and no end-of-stream data frame:
/// the copy must still be sent, with the whole body, and the trailers as
/// its host sends them.
async fn an_http2_request_that_ends_with_trailers(host: Host) {
    // HTTP/1 upstreams drop request trailers, so both clusters speak h2c here.
    let rig = Rig::build_on(host, MIRROR_ALL, Behaviour::Answer, |setup| {
        setup.http2_upstreams = true
    })
    .await;
    let chunks = vec![Bytes::from_static(b"part one, "), Bytes::from_static(b"part two")];
    let reply = client::h2c(
        "POST",
        &rig.url("/grpcish"),
        &[],
        chunks,
        Some(&[("x-checksum", "abc123")]),
    )
    .await;
    assert_eq!(reply.status, 200);
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_eq!(
        primary.trailers,
        [("x-checksum".to_owned(), b"abc123".to_vec())],
        "the primary ended with trailers"
    );
    assert_eq!(copy.body, b"part one, part two");
    assert_same_request(host, &primary, &copy);
    assert_trailers_as_the_host_sends_them(host, &primary.trailers, &copy);
}

/// The same over HTTP/1.1 to the shadow (h2c from the client): the renderer
/// enables trailers on the clusters, so the native host's copy goes chunked
/// with its trailers.
async fn trailers_of_an_http2_request_reach_an_http1_shadow_as_the_host_sends_them(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let reply = client::h2c(
        "POST",
        &rig.url("/api/upload?q=1"),
        &[("x-case", "trailers")],
        vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")],
        Some(&[("x-checksum", "abc")]),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let copies = rig.shadow.wait_for(1, ARRIVAL).await;
    assert_eq!(copies.len(), 1, "the shadow got {copies:?}");
    let copy = &copies[0];
    assert_eq!((copy.method.as_str(), copy.uri.as_str()), ("POST", "/api/upload?q=1"));
    assert_eq!(copy.body, b"hello world");
    assert_eq!(copy.header("x-case"), Some("trailers"));
    let sent = [("x-checksum".to_owned(), b"abc".to_vec())];
    assert_trailers_as_the_host_sends_them(host, &sent, copy);
    assert!(
        eventually(ARRIVAL, || rig.mirrored("api", "shadow") == 1.0
            && rig.responses("api", "shadow", "2xx") == 1.0)
        .await,
        "the copy was not counted:\n{}",
        rig.envoy.prometheus()
    );
}

async fn header_policy_acts_on_the_copy_only(host: Host) {
    let rig = Rig::start_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow",
            "removeHeaders": ["authorization", "cookie"],
            "addHeaders": {"x-mirror": "1", "x-env": "shadow"},
            "hostSuffix": "-shadow"}}}"#,
    )
    .await;
    let headers = [
        ("authorization", "Bearer secret"),
        ("cookie", "sid=1"),
        ("x-env", "prod"),
        ("host", "api.example:8080"),
    ];
    let reply = client::http1("GET", &rig.url("/me"), &headers, "").await;
    assert_eq!(reply.status, 200);
    let (primary, copy) = primary_and_copy(&rig).await;
    assert_eq!(primary.header("authorization"), Some("Bearer secret"));
    assert_eq!(primary.header("cookie"), Some("sid=1"));
    assert_eq!(primary.header("x-env"), Some("prod"));
    assert_eq!(primary.header("host"), Some("api.example:8080"));
    assert_eq!(primary.header("x-mirror"), None);
    assert_eq!(copy.header("authorization"), None);
    assert_eq!(copy.header("cookie"), None);
    assert_eq!(copy.header("x-env"), Some("shadow"));
    assert_eq!(copy.header("x-mirror"), Some("1"));
    assert_eq!(copy.header("host"), Some("api.example-shadow:8080"));
}

async fn authority_rewrite_and_methods_filter(host: Host) {
    let rig = Rig::start_on(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "authority": "canary.internal", "methods": ["POST"]}}}"#,
    )
    .await;
    assert_eq!(
        client::http1("GET", &rig.url("/read"), &[("host", "api")], "")
            .await
            .status,
        200
    );
    assert_eq!(
        client::http1("POST", &rig.url("/write"), &[("host", "api")], "w")
            .await
            .status,
        200
    );
    let copies = rig.shadow.wait_for(1, ARRIVAL).await;
    let copies_after = rig.shadow.settle(QUIET).await;
    assert_eq!(copies_after.len(), 1, "only the POST is mirrored: {copies:?}");
    assert_eq!(copies[0].method, "POST");
    assert_eq!(copies[0].header("host"), Some("canary.internal"));
    assert!(rig.primary.received().iter().all(|r| r.header("host") == Some("api")));
}

async fn a_websocket_upgrade_passes_through_and_is_not_mirrored(host: Host) {
    let rig = Rig::start_on(host, MIRROR_ALL).await;
    let (status, echoed) = client::websocket_echo(rig.envoy.listener, "/ws", b"hello over ws").await;
    assert!(status.contains("101"), "{status}");
    assert_eq!(echoed, b"hello over ws");
    assert_eq!(rig.shadow.settle(QUIET).await.len(), 0);
    assert!(eventually(ARRIVAL, || rig.skipped("default", "shadow", "upgrade") == 1.0).await);
    assert_eq!(rig.mirrored("default", "shadow"), 0.0);
}

vrata_mirror_testkit::on_each_host!(
    async get_with_query_string,
    async post_and_put_with_a_body,
    async a_one_mebibyte_body_arrives_whole,
    async a_slow_chunked_upload_is_copied_piece_by_piece,
    async an_http2_request,
    async an_http2_request_that_ends_with_trailers,
    async trailers_of_an_http2_request_reach_an_http1_shadow_as_the_host_sends_them,
    async header_policy_acts_on_the_copy_only,
    async authority_rewrite_and_methods_filter,
    async a_websocket_upgrade_passes_through_and_is_not_mirrored,
);
