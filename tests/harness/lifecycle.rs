//! Requests that end badly or overlap: a context deleted mid-body, deleted
//! without `on_done`, interleaved streams; and a long mixed run that must
//! leave memory where it was.

use crate::wasmhost::{mirror_config, Host, Response};

#[test]
fn a_request_deleted_mid_body_is_counted_incomplete() {
    let mut host = Host::load(&mirror_config(""));
    let sent = host
        .request()
        .post("/")
        .body_chunks(&[b"ab", b"cd", b"ef"])
        .abort_after_chunks(2)
        .send();
    sent.assert_never_paused();
    host.run_pending();
    assert!(host.calls().is_empty(), "a partial body is never sent");
    assert_eq!(
        host.skips("unnamed", "shadow").into_iter().collect::<Vec<_>>(),
        [("incomplete", 1)]
    );
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_request_deleted_after_its_headers_is_counted_incomplete() {
    let mut host = Host::load(&mirror_config(""));
    host.request()
        .post("/")
        .body(b"never sent")
        .abort_after_chunks(0)
        .send();
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "incomplete"), 1);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_context_deleted_without_on_done_is_counted_once() {
    let mut host = Host::load(&mirror_config(""));
    let id = host.request().post("/").start().context_id;
    host.request_body(id, b"partial", false);
    host.delete_context(id);
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(
        host.skips("unnamed", "shadow").into_iter().collect::<Vec<_>>(),
        [("incomplete", 1)]
    );
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn interleaved_requests_keep_their_own_bodies() {
    let mut host = Host::load(&mirror_config(""));
    let a = host.request().post("/a").start().context_id;
    let b = host.request().post("/b").start().context_id;
    host.request_body(a, b"a1", false);
    host.request_body(b, b"b1", false);
    host.request_body(a, b"a2", false);
    host.request_body(b, b"b2", true);
    host.end_stream(b);
    host.request_body(a, b"a3", true);
    host.end_stream(a);
    host.run_pending();
    let bodies: Vec<(String, Vec<u8>)> = host
        .calls()
        .iter()
        .map(|c| (c.header(":path").unwrap().to_owned(), c.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("/b".to_owned(), b"b1b2".to_vec()),
            ("/a".to_owned(), b"a1a2a3".to_vec())
        ]
    );
    host.assert_accounted("unnamed", "shadow", 2);
}

#[test]
fn a_long_mixed_run_leaves_memory_and_accounting_exact() {
    let mut host = Host::load(&mirror_config(r#""maxInFlight": 8, "maxBodyBytes": 65536"#));
    let run = |host: &mut Host, rounds: usize| {
        for i in 0..rounds {
            match i % 6 {
                0 => host.request().get(&format!("/{i}")).send(),
                1 => host
                    .request()
                    .post("/")
                    .body_chunks(&[&[1u8; 4000], &[2u8; 4000], b""])
                    .send(),
                2 => host
                    .request()
                    .post("/")
                    .body_chunks(&[b"x", b"y", b"z"])
                    .abort_after_chunks(1)
                    .send(),
                3 => host.request().post("/").generated_body(70_000, 16_384).send(),
                4 => host.request().post("/").body(b"t").trailers(&[("x-sum", "1")]).send(),
                _ => host.request().get("/").headers(&[("upgrade", "websocket")]).send(),
            };
            host.run_pending();
            // Answer half of what is outstanding, in rotating ways.
            let outstanding = host.outstanding();
            for (n, token) in outstanding.iter().enumerate().take(outstanding.len() / 2 + 1) {
                let response = match (i + n) % 4 {
                    0 => Response::from_shadow(200),
                    1 => Response::from_shadow(500),
                    2 => Response::envoy_timeout(),
                    _ => Response::from_shadow(201),
                };
                host.respond(*token, response);
            }
        }
    };
    run(&mut host, 300);
    let warmed = host.memory_bytes();
    run(&mut host, 1_200);
    assert_eq!(
        host.memory_bytes(),
        warmed,
        "linear memory grew over 1,200 more requests"
    );
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 1_500);
    let answered: i64 = host.response_classes("unnamed", "shadow").values().sum();
    assert_eq!(
        answered,
        host.requests_total("unnamed", "shadow"),
        "every copy sent reported back once"
    );
}
