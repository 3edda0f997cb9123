//! The module's limits: `maxBodyBytes` (and the memory it bounds) and
//! `maxInFlight` (outstanding copies per destination in one VM).

use crate::wasmhost::{mirror_config, pattern_byte, Host};

const MIB: usize = 1 << 20;

#[test]
fn a_50_mib_upload_with_a_1_mib_limit_is_skipped_and_memory_stays_bounded() {
    let mut host = Host::load(&mirror_config(r#""maxBodyBytes": 1048576"#));
    let before = host.memory_bytes();
    let reads_before = host.import_calls("proxy_get_buffer_bytes");
    // Chunked: no content-length, so the limit is only found while streaming.
    let sent = host
        .request()
        .post("/upload")
        .generated_body(50 * MIB, 64 * 1024)
        .send();
    sent.assert_never_paused();
    assert_eq!(sent.actions.len(), 1 + 800, "headers and 800 chunks of 64 KiB");
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(
        host.skips("unnamed", "shadow").into_iter().collect::<Vec<_>>(),
        [("body_too_large", 1)]
    );
    let after = host.memory_bytes();
    // The copy may hold 1 MiB plus the chunk being read, then frees it.
    assert!(
        after <= before + 3 * MIB,
        "memory grew from {before} to {after} bytes for a 50 MiB upload with a 1 MiB limit"
    );
    // 16 chunks fill the limit; the 17th is refused unread, and once past
    // the limit the module stops reading chunks altogether.
    assert_eq!(host.import_calls("proxy_get_buffer_bytes") - reads_before, 16);
}

#[test]
fn a_declared_length_over_the_limit_is_skipped_before_any_byte_is_read() {
    let mut host = Host::load(&mirror_config(r#""maxBodyBytes": 1048576"#));
    let before = host.memory_bytes();
    let reads_before = host.import_calls("proxy_get_buffer_bytes");
    let total = 50 * MIB;
    host.request()
        .post("/upload")
        .headers(&[("content-length", &total.to_string())])
        .generated_body(total, 64 * 1024)
        .send()
        .assert_never_paused();
    host.run_pending();
    assert_eq!(host.skipped("unnamed", "shadow", "body_too_large"), 1);
    assert_eq!(
        host.import_calls("proxy_get_buffer_bytes"),
        reads_before,
        "no chunk read"
    );
    assert!(
        host.memory_bytes() <= before + MIB,
        "{} -> {}",
        before,
        host.memory_bytes()
    );
}

#[test]
fn a_body_of_exactly_the_limit_is_copied_one_more_byte_is_not() {
    let limit = 100_000;
    let mut host = Host::load(&mirror_config(&format!(r#""maxBodyBytes": {limit}"#)));
    host.request().post("/exact").generated_body(limit, 7_000).send();
    host.request().post("/over").generated_body(limit + 1, 7_000).send();
    host.run_pending();
    let call = host.single_dispatched_call();
    assert_eq!(call.header(":path"), Some("/exact"));
    assert_eq!(call.body.len(), limit);
    assert!(
        call.body.iter().enumerate().all(|(i, b)| *b == pattern_byte(i)),
        "bytes copied in order"
    );
    assert_eq!(host.skipped("unnamed", "shadow", "body_too_large"), 1);
}

#[test]
fn memory_returns_to_a_plateau_after_many_large_copies() {
    let mut host = Host::load(&mirror_config(""));
    let round = |host: &mut Host| {
        for _ in 0..20 {
            host.request().post("/").generated_body(512 * 1024, 64 * 1024).send();
            host.run_pending();
            host.respond_all(200);
        }
    };
    round(&mut host);
    let warmed = host.memory_bytes();
    for _ in 0..5 {
        round(&mut host);
    }
    assert_eq!(
        host.memory_bytes(),
        warmed,
        "100 more copies of 512 KiB grew linear memory: a leak"
    );
    host.assert_never_paused();
}

#[test]
fn the_in_flight_cap_skips_and_frees_exactly() {
    let mut host = Host::load(&mirror_config(r#""maxInFlight": 3"#));
    for _ in 0..5 {
        host.request().get("/").send().assert_never_paused();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 3);
    assert_eq!(host.skipped("unnamed", "shadow", "in_flight_limit"), 2);

    // One answer frees exactly one slot.
    let first = host.outstanding()[0];
    host.respond(first, 200);
    host.request().get("/").send();
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.new_calls().len(), 1);
    assert_eq!(host.skipped("unnamed", "shadow", "in_flight_limit"), 3);

    // Every kind of ending frees its slot: an answer, a timeout, a reset.
    let outstanding = host.outstanding();
    assert_eq!(outstanding.len(), 3);
    host.respond(outstanding[0], 500);
    host.respond(outstanding[1], crate::wasmhost::Response::envoy_timeout());
    host.respond(outstanding[2], crate::wasmhost::Response::envoy_reset());
    for _ in 0..4 {
        host.request().get("/").send();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 3);
    assert_eq!(host.skipped("unnamed", "shadow", "in_flight_limit"), 4);
    host.assert_accounted("unnamed", "shadow", 11);
}

#[test]
fn the_cap_is_per_destination() {
    let mut host = Host::builder().clusters(&["a", "b"]).load(
        r#"{"forward": {"mirrors": [{"destinationId": "a", "maxInFlight": 1}, {"destinationId": "b", "maxInFlight": 2}]}}"#,
    );
    for _ in 0..3 {
        host.request().get("/").send();
    }
    host.run_pending();
    let clusters: Vec<String> = host.calls().iter().map(|c| c.cluster.clone()).collect();
    assert_eq!(clusters.iter().filter(|c| *c == "a").count(), 1);
    assert_eq!(clusters.iter().filter(|c| *c == "b").count(), 2);
    assert_eq!(host.skipped("unnamed", "a", "in_flight_limit"), 2);
    assert_eq!(host.skipped("unnamed", "b", "in_flight_limit"), 1);
}

#[test]
fn copies_that_never_come_back_hold_their_slots_and_nothing_else() {
    let mut host = Host::load(&mirror_config(r#""maxInFlight": 10"#));
    let before = host.memory_bytes();
    for _ in 0..1_000 {
        host.request().post("/").body(&[7u8; 1024]).send();
        host.run_pending();
    }
    assert_eq!(host.calls().len(), 10);
    assert_eq!(host.skipped("unnamed", "shadow", "in_flight_limit"), 990);
    assert!(
        host.memory_bytes() <= before + MIB,
        "{} -> {}",
        before,
        host.memory_bytes()
    );
    host.assert_accounted("unnamed", "shadow", 1_000);
}
