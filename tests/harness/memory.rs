//! The module's own heap (issue 13, part 4): what one VM's linear memory
//! holds while it mirrors POSTs of 16 KiB, as in the benchmark's `wasm100`
//! POST case. Envoy runs one VM per worker (plus one on the main thread for
//! the configuration), so this is the filter's own memory per worker; the
//! rest of what the filter adds to Envoy's RSS is V8's.
//!
//! The worst case is `maxInFlight` (128) copies waiting for their answers at
//! once, each holding its 16 KiB body. Wasm memory never shrinks, so the
//! figure that matters is the high-water mark, and that it stops growing.

use crate::wasmhost::{mirror_config, Host};

const BODY: usize = 16 * 1024;
const IN_FLIGHT: usize = 128;
/// Windows before the heap is taken as settled, and in all.
const SETTLE: usize = 10;
const ROUNDS: usize = 50;

/// `IN_FLIGHT` POSTs whose copies are all in flight at once, then answered.
fn a_full_window(host: &mut Host) {
    for _ in 0..IN_FLIGHT {
        host.request()
            .post("/upload")
            .headers(&[("content-type", "application/octet-stream")])
            .generated_body(BODY, BODY)
            .send();
    }
    host.run_pending();
    let calls = host.new_calls();
    assert_eq!(calls.len(), IN_FLIGHT, "every request of the window is mirrored");
    assert!(calls.iter().all(|call| call.body.len() == BODY));
    host.respond_all(200);
}

#[test]
fn mirroring_16_kib_posts_holds_a_bounded_heap_that_stops_growing() {
    let mut host = Host::load(&mirror_config(""));
    let idle = host.memory_bytes();
    a_full_window(&mut host);
    let after_first = host.memory_bytes();
    for _ in 1..SETTLE {
        a_full_window(&mut host);
    }
    let settled = host.memory_bytes();
    for _ in SETTLE..ROUNDS {
        a_full_window(&mut host);
    }
    let after_all = host.memory_bytes();
    host.assert_accounted("unnamed", "shadow", (IN_FLIGHT * ROUNDS) as i64);
    let mib = |bytes: usize| bytes as f64 / f64::from(1 << 20);
    eprintln!(
        "module heap: idle {:.2} MiB, after {IN_FLIGHT} copies of 16 KiB in flight {:.2} MiB, \
         after {SETTLE} such windows {:.2} MiB, after {ROUNDS} {:.2} MiB",
        mib(idle),
        mib(after_first),
        mib(settled),
        mib(after_all)
    );
    // 128 bodies of 16 KiB are 2 MiB; headers, bookkeeping and the
    // allocator's slack stay well under another 2 MiB.
    assert!(
        after_first - idle <= 4 << 20,
        "a full window of {IN_FLIGHT} copies grew the heap by {} bytes",
        after_first - idle
    );
    // The allocator settles within a page or two (measured: one 64 KiB
    // page between the first and the tenth window), then nothing more.
    assert!(
        settled - after_first <= 2 << 16,
        "the heap grew by {} bytes between the first and the {SETTLE}th window",
        settled - after_first
    );
    assert_eq!(
        after_all, settled,
        "the heap kept growing after {SETTLE} full windows: {settled} -> {after_all} bytes"
    );
}
