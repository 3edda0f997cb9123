//! The native host's streamed copies in the real Envoy 1.40 (issue 21, items 3 and 4): a copy
//! opens when its request's headers arrive and each chunk and the trailers go as they pass;
//! `maxBodyBytes` bounds the bytes a worker's copies have in flight, not what can be mirrored;
//! the shadow's answer is dropped chunk by chunk; copies outlive their requests and stay
//! accounted at four workers while LDS pushes replace the config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::native::skipped_any;
use vrata_mirror_testkit::rig::{eventually, mirrored, responses, start_envoy_on};
use vrata_mirror_testkit::stream_shadow::{Answer, BodyHash, StreamShadow};
use vrata_mirror_testkit::upstream::{answer_text, Behaviour, Upstream};

const MIB: usize = 1 << 20;

fn plugin(extra: &str) -> String {
    format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow", "percentage": 100{extra}}}}}}}"#)
}

/// Piece `i` of an upload: `len` bytes of a pattern that differs per piece and offset.
fn piece(i: usize, len: usize) -> Bytes {
    (0..len).map(|j| ((i * 7 + j) % 251) as u8).collect::<Vec<u8>>().into()
}

/// Envoy with the native host and `plugin`, one worker, in front of `primary` and `shadow`.
async fn start_native(plugin: &str, primary: &Upstream, shadow: &StreamShadow) -> Envoy {
    Setup::new(plugin, primary.port(), shadow.port())
        .on(Host::Native)
        .start()
        .await
}

fn hash_of(pieces: &[Bytes]) -> BodyHash {
    BodyHash::of(pieces.iter().map(|p| p.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_chunked_upload_is_mirrored_byte_equal_with_the_default_cap() {
    // The default maxBodyBytes (1 MiB) and maxInFlight (128): a worker's streamed copies may
    // hold 128 MiB in flight, so one of 64 MiB goes whole.
    let plugin = plugin(r#", "timeoutMs": 10000"#);
    let primary = Upstream::start_counting("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Small).await;
    let envoy = start_native(&plugin, &primary, &shadow).await;
    let pieces: Vec<Bytes> = (0..64).map(|i| piece(i, MIB)).collect();
    let want = hash_of(&pieces);
    let started = Instant::now();
    let reply = client::http1_slow_chunked(&envoy.url("/api/big"), pieces, Duration::ZERO).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), answer_text("primary", "POST", "/api/big", 64 * MIB));
    let seen = shadow
        .wait(Duration::from_secs(20), |seen| {
            seen.iter().any(|s| s.ended_at.is_some())
        })
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let copy = &seen[0];
    assert_eq!((copy.method.as_str(), copy.uri.as_str()), ("POST", "/api/big"));
    assert_eq!(copy.body, want, "the copy's body differs from the upload");
    assert_eq!(copy.header("transfer-encoding"), Some("chunked"));
    let counted = eventually(Duration::from_secs(10), || {
        mirrored(&envoy, "api", "shadow") == 1.0 && responses(&envoy, "api", "shadow", "2xx") == 1.0
    })
    .await;
    assert!(counted, "{}", envoy.prometheus());
    eprintln!(
        "64 MiB chunked upload: client done in {} ms, copy's body {} bytes, hash equal; Envoy VmHWM {} MiB",
        took.as_millis(),
        copy.body.len,
        envoy.peak_rss_bytes() / MIB as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_uploads_copy_has_its_headers_at_the_shadow_before_the_upload_ends() {
    let plugin = plugin("");
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Small).await;
    let envoy = start_native(&plugin, &primary, &shadow).await;
    let pieces: Vec<Bytes> = (0..10).map(|i| piece(i, 1000)).collect();
    let want = hash_of(&pieces);
    let started = Instant::now();
    let reply = client::http1_slow_chunked(&envoy.url("/api/slow"), pieces, Duration::from_millis(200)).await;
    let done = Instant::now();
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = shadow
        .wait(Duration::from_secs(5), |seen| seen.iter().any(|s| s.ended_at.is_some()))
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let copy = &seen[0];
    let head_after = copy.head_at.duration_since(started);
    let ended_after = copy.ended_at.unwrap().duration_since(started);
    eprintln!(
        "slow upload (10 pieces, 200 ms apart, {} ms in all): the copy's head reached the shadow after {} ms, \
         its body ended after {} ms",
        done.duration_since(started).as_millis(),
        head_after.as_millis(),
        ended_after.as_millis()
    );
    assert!(
        head_after < Duration::from_millis(1000),
        "the head must go with the request's headers, not at its end: {head_after:?}"
    );
    assert!(
        ended_after >= Duration::from_millis(1800),
        "the body streamed with the upload: {ended_after:?}"
    );
    assert_eq!(copy.body, want);
}

/// One HTTP/1.1 request with a chunked body and trailers, written by hand (the test clients
/// send no HTTP/1.1 trailers): the status line Envoy answers with.
async fn http1_with_trailers(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: h1.test\r\ntransfer-encoding: chunked\r\nx-case: h1-trailers\r\n\r\n\
         6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn has_checksum(trailers: &[(String, Vec<u8>)]) -> bool {
    trailers.iter().any(|(k, v)| k == "x-checksum" && v == b"abc")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_chunked_trailers_and_http2_trailers_reach_the_copy() {
    let plugin = plugin("");
    let want = BodyHash::of([b"hello world".as_slice()]);

    // HTTP/1.1 client, HTTP/1.1 shadow (chunked, trailers enabled on both sides).
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Small).await;
    let envoy = start_native(&plugin, &primary, &shadow).await;
    let status = http1_with_trailers(envoy.listener, "/api/h1").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let seen = shadow
        .wait(Duration::from_secs(5), |seen| seen.iter().any(|s| s.ended_at.is_some()))
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body, want);
    assert_eq!(seen[0].header("x-case"), Some("h1-trailers"));
    assert!(has_checksum(&seen[0].trailers), "HTTP/1.1: {:?}", seen[0].trailers);
    let primary_trailers = primary.received()[0].trailers.clone();
    assert!(
        has_checksum(&primary_trailers),
        "the primary got them too: {primary_trailers:?}"
    );
    drop(envoy);

    // h2c client, HTTP/2 shadow.
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Small).await;
    let mut setup = Setup::new(&plugin, primary.port(), shadow.port()).on(Host::Native);
    setup.http2_upstreams = true;
    let envoy = setup.start().await;
    let reply = client::h2c(
        "POST",
        &envoy.url("/api/h2"),
        &[("x-case", "h2-trailers")],
        vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")],
        Some(&[("x-checksum", "abc")]),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let seen = shadow
        .wait(Duration::from_secs(5), |seen| seen.iter().any(|s| s.ended_at.is_some()))
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body, want);
    assert!(has_checksum(&seen[0].trailers), "HTTP/2: {:?}", seen[0].trailers);
    let counted = eventually(Duration::from_secs(5), || {
        responses(&envoy, "api", "shadow", "2xx") == 1.0
    })
    .await;
    assert!(counted, "{}", envoy.prometheus());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_of_20_mib_are_dropped_chunk_by_chunk_and_envoys_memory_stays_bounded() {
    // No runtime buffer limit: the native host's bootstrap has none, and none applies to a
    // stream; Envoy hands the module each chunk and the module keeps nothing.
    let plugin = plugin(r#", "timeoutMs": 20000"#);
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Large(20 * MIB)).await;
    let mut setup = Setup::new(&plugin, primary.port(), shadow.port()).on(Host::Native);
    setup.async_response_buffer_limit = None;
    let yaml = setup.render();
    assert!(!yaml.contains("async_response_buffer_limit"), "{yaml}");
    let envoy = setup.start().await;
    let warm = client::http1("GET", &envoy.url("/api/warm"), &[], Bytes::new()).await;
    assert_eq!(warm.status, 200);
    assert!(
        eventually(Duration::from_secs(10), || responses(&envoy, "api", "shadow", "2xx")
            == 1.0)
        .await
    );
    let before = envoy.peak_rss_bytes();
    let replies = client::load(&envoy.url("/api/large"), 8, 8, "GET", Bytes::new()).await;
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    let all = eventually(Duration::from_secs(30), || {
        responses(&envoy, "api", "shadow", "2xx") == 9.0
    })
    .await;
    assert!(all, "{}", envoy.prometheus());
    let after = envoy.peak_rss_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "8 answers of 20 MiB: Envoy VmHWM {} -> {} MiB (+{:.1} MiB); buffered whole they would be 160 MiB",
        before / MIB as u64,
        after / MIB as u64,
        growth as f64 / MIB as f64
    );
    assert!(
        growth < 32 * MIB as u64,
        "Envoy's peak RSS grew by {growth} bytes: the answers were held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_to_a_shadow_that_does_not_read_is_reset_at_the_budget_and_the_primary_gets_it_all() {
    // The shadow takes the copy's head and never reads: Envoy would hold every byte sent. The
    // budget is maxInFlight × maxBodyBytes = 2 × 1 MiB (the default cap): the copy carries 2 MiB
    // of the 8 MiB upload and is reset at the next chunk; the primary gets all 8 MiB.
    let plugin = plugin(r#", "maxInFlight": 2, "timeoutMs": 20000"#);
    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::Stall).await;
    let envoy = start_native(&plugin, &primary, &shadow).await;
    let pieces: Vec<Bytes> = (0..16).map(|i| piece(i, MIB / 2)).collect();
    let started = Instant::now();
    let reply = client::http1_slow_chunked(&envoy.url("/api/cap"), pieces, Duration::from_millis(20)).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), answer_text("primary", "POST", "/api/cap", 8 * MIB));
    let cut = eventually(Duration::from_secs(5), || {
        responses(&envoy, "api", "shadow", "body_too_large") == 1.0 && mirrored(&envoy, "api", "shadow") == 1.0
    })
    .await;
    assert!(cut, "{}", envoy.prometheus());
    eprintln!(
        "a shadow that does not read, 8 MiB upload: primary answered in {} ms; shadow saw {} head(s), {} whole; \
         the copy was reset as body_too_large; Envoy VmHWM {} MiB",
        took.as_millis(),
        shadow.heads(),
        shadow.whole(),
        envoy.peak_rss_bytes() / MIB as u64
    );
    assert!(took < Duration::from_secs(10), "the primary was held up: {took:?}");
    assert_eq!(shadow.heads(), 1, "the copy opened");
    assert_eq!(shadow.whole(), 0, "and never ended whole");
    assert_eq!(skipped_any(&envoy, "api"), 0.0, "sent, then cut: not a skip");
    // The budget is free again: the next copy is admitted and opens (it stalls too).
    let small = client::http1("POST", &envoy.url("/api/after"), &[], Bytes::from_static(b"small")).await;
    assert_eq!(small.status, 200);
    assert!(eventually(Duration::from_secs(5), || mirrored(&envoy, "api", "shadow") == 2.0).await);
    assert_eq!(shadow.heads(), 2);
    assert_eq!(skipped_any(&envoy, "api"), 0.0);
}

/// Four workers, uploads streaming in all the time, and three LDS pushes that replace the
/// config (each a new filter chain, so new per-worker configs; the old ones are destroyed
/// after the 1 s drain while their last copies still wait 1.5 s for the shadow's answer, so
/// each destroy waits for them): Envoy stays up, every primary answer is 200, and every copy
/// is accounted for: the counter equals what the shadow got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_under_load_with_pushes_account_for_every_streamed_copy() {
    let primary = Upstream::start_counting("primary", Behaviour::Answer).await;
    let shadow = StreamShadow::start(Answer::After(1500)).await;
    let config_for = |timeout_ms: u32| {
        // maxInFlight well above the ~1.5 s × the upload rate of copies waiting per worker.
        let plugin = plugin(&format!(r#", "timeoutMs": {timeout_ms}, "maxInFlight": 1024"#));
        Setup::new(&plugin, primary.port(), shadow.port())
            .on(Host::Native)
            .with_workers(4)
            .bootstrap()
    };
    let lds = LdsConfig::new(&config_for(5000), "native-stream-push");
    lds.publish(&config_for(5000));
    let envoy = start_envoy_on(Host::Native, lds.bootstrap.clone(), 4, &["--drain-time-s", "1"]).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    let url = envoy.url("/up");
    let mut tasks = Vec::new();
    for t in 0..12 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                // A new connection each time (the chunked client's own): uploads land on the
                // config in force, old connections drain with the old one.
                let pieces = (0..4).map(|p| piece(t * 1000 + i + p, 4096)).collect();
                statuses.push(
                    client::http1_slow_chunked(&url, pieces, Duration::from_millis(10))
                        .await
                        .status,
                );
                i += 1;
            }
            statuses
        }));
    }
    for timeout_ms in [5001, 5002, 5003] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        lds.publish(&config_for(timeout_ms));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("load task"));
    }
    let sent = statuses.len();
    assert!(statuses.iter().all(|s| *s == 200), "a primary answer was not 200");
    // Every copy is accounted for: sent, and answered, across the pushes (the series of a
    // replaced config go on, series.rs).
    let settled = eventually(Duration::from_secs(15), || {
        shadow.whole() == sent
            && mirrored(&envoy, "default", "shadow") == sent as f64
            && responses(&envoy, "default", "shadow", "2xx") == sent as f64
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_worker = envoy.connections_per_worker(4);
    let log = envoy.log();
    // Each old config's destroy line: "waited W ms for N copies in flight; L left, ...".
    let destroys: Vec<&str> = log.lines().filter(|l| l.contains("config destroyed: waited")).collect();
    let field = |after: &str| -> u64 {
        destroys
            .iter()
            .filter_map(|l| l.split(after).nth(1))
            .filter_map(|rest| rest.split([' ', ',']).next()?.parse::<u64>().ok())
            .sum()
    };
    let (waited_for, left) = (field(" ms for "), field("; "));
    eprintln!(
        "4 workers, 3 pushes: {sent} uploads; shadow saw {} heads, {} whole; requests_total {}, 2xx {}, skipped {}; \
         lds updates {}; connections per worker {per_worker:?}; {} destroys waited for {waited_for} copies, {left} \
         left:\n{}",
        shadow.heads(),
        shadow.whole(),
        mirrored(&envoy, "default", "shadow"),
        responses(&envoy, "default", "shadow", "2xx"),
        skipped_any(&envoy, "default"),
        envoy.stat("listener_manager.lds.update_success"),
        destroys.len(),
        destroys.join("\n")
    );
    assert!(envoy.live(), "Envoy died:\n{log}");
    assert!(
        envoy.stat("listener_manager.lds.update_success") >= 4,
        "every push taken"
    );
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "every worker took uploads: {per_worker:?}"
    );
    assert!(settled, "copies lost or miscounted:\n{}", envoy.prometheus());
    assert_eq!(shadow.heads(), sent, "a copy opened that never ended whole");
    assert_eq!(
        mirrored(&envoy, "default", "shadow"),
        sent as f64,
        "the counter equals what the shadow got"
    );
    assert_eq!(skipped_any(&envoy, "default"), 0.0);
    assert!(waited_for > 0, "no destroy had copies in flight to wait for:\n{log}");
    assert_eq!(left, 0, "a destroy left copies in flight:\n{log}");
    assert!(
        shadow.seen().iter().all(|s| s.body.len == 4 * 4096),
        "every copy carried its whole body"
    );
}
