//! End to end, every header carried (issue 23 part 3), through the real
//! Envoy: a header value that is not UTF-8 (obs-text, latin-1), which Envoy
//! accepts from a client, reaches the shadow byte for byte; trace context is
//! dropped from the copy by default and kept unchanged with
//! `"traceContext": "keep"`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{Rig, ARRIVAL};

/// `café` in latin-1, and bytes no UTF-8 text has.
const LATIN1: &[u8] = b"caf\xe9 \xff\xfe \x80";

/// One HTTP/1.1 request written byte for byte on a raw connection (a client
/// library would refuse the value); returns the answer's status line.
async fn raw_request(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(ARRIVAL, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn a_latin1_header_value_reaches_the_shadow_byte_for_byte(host: Host) {
    let rig = Rig::start_on(host, r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#).await;
    let mut request = b"GET /api/latin1 HTTP/1.1\r\nhost: api.example.com\r\nconnection: close\r\nx-name: ".to_vec();
    request.extend_from_slice(LATIN1);
    request.extend_from_slice(b"\r\n\r\n");
    let status = raw_request(&rig.url("/"), &request).await;
    assert!(status.starts_with("HTTP/1.1 200"), "Envoy served it: {status}");

    let primary = rig.primary.wait_for(1, ARRIVAL).await;
    let copies = rig.shadow.wait_for(1, ARRIVAL).await;
    let value = |seen: &vrata_mirror_testkit::upstream::Recorded| {
        seen.headers
            .iter()
            .find(|(name, _)| name == "x-name")
            .map(|(_, value)| value.clone())
    };
    assert_eq!(value(&primary[0]).as_deref(), Some(LATIN1), "the primary's, as sent");
    assert_eq!(copies.len(), 1, "{}", rig.envoy.log());
    assert_eq!(value(&copies[0]).as_deref(), Some(LATIN1), "the copy's, byte-equal");
    assert_eq!(rig.skipped("api", "shadow", "dispatch_failed"), 0.0);
    assert_eq!(rig.mirrored("api", "shadow"), 1.0);
}

const TRACE: [(&str, &str); 3] = [
    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("tracestate", "vendor=opaque"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
];

async fn copy_with_trace(host: Host, plugin: &str) -> vrata_mirror_testkit::upstream::Recorded {
    let rig = Rig::start_on(host, plugin).await;
    let reply = client::http1("GET", &rig.url("/api/traced"), &TRACE, "").await;
    assert_eq!(reply.status, 200);
    let primary = rig.primary.wait_for(1, ARRIVAL).await;
    for (name, value) in TRACE {
        assert_eq!(primary[0].header(name), Some(value), "the primary keeps {name}");
    }
    let copies = rig.shadow.wait_for(1, ARRIVAL).await;
    assert_eq!(copies.len(), 1);
    copies[0].clone()
}

async fn trace_context_is_dropped_from_the_copy_by_default_and_kept_on_request(host: Host) {
    let dropped = copy_with_trace(host, r#"{"forward": {"mirror": {"destinationId": "shadow"}}}"#).await;
    for (name, _) in TRACE {
        assert_eq!(dropped.header(name), None, "default: {name} dropped: {dropped:?}");
    }
    let kept = copy_with_trace(
        host,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "traceContext": "keep"}}}"#,
    )
    .await;
    for (name, value) in TRACE {
        assert_eq!(kept.header(name), Some(value), "keep: {name} unchanged: {kept:?}");
    }
}

vrata_mirror_testkit::on_each_host!(
    async a_latin1_header_value_reaches_the_shadow_byte_for_byte,
    async trace_context_is_dropped_from_the_copy_by_default_and_kept_on_request,
);
