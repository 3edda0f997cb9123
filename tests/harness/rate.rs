//! `maxRequestsPerSecond` (a token bucket in shared data, shared by the
//! VMs of one Envoy) and `copies`: what binds, what each mirrored request
//! costs in host calls, and shared data that fails or keeps conflicting.

use crate::wasmhost::{mirror_config, Host, Status};
use std::collections::BTreeMap;

const SHARED_GET: &str = "proxy_get_shared_data";
const SHARED_SET: &str = "proxy_set_shared_data";

/// Every import call the module made, by name.
fn import_calls(host: &Host) -> BTreeMap<&'static str, u64> {
    let mut calls = BTreeMap::new();
    for name in [
        "proxy_log",
        "proxy_get_log_level",
        "proxy_get_current_time_nanoseconds",
        "proxy_get_buffer_bytes",
        "proxy_get_header_map_pairs",
        "proxy_get_header_map_value",
        "proxy_get_property",
        SHARED_GET,
        SHARED_SET,
        "proxy_register_shared_queue",
        "proxy_enqueue_shared_queue",
        "proxy_dequeue_shared_queue",
        "proxy_set_tick_period_milliseconds",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
        "proxy_http_call",
        "proxy_set_effective_context",
    ] {
        let n = host.import_calls(name);
        if n > 0 {
            calls.insert(name, n);
        }
    }
    calls
}

/// The host calls one GET costs, from its headers to its copy's answer
/// (metrics already defined by an earlier request), by import.
fn calls_of_one_request(host: &mut Host) -> BTreeMap<&'static str, u64> {
    let before = import_calls(host);
    host.request().get("/").send().assert_never_paused();
    host.run_pending();
    host.respond_all(200);
    let after = import_calls(host);
    after
        .into_iter()
        .map(|(name, n)| (name, n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn total(calls: &BTreeMap<&'static str, u64>) -> u64 {
    calls.values().sum()
}

#[test]
fn the_cap_lets_burst_through_then_refills_with_the_clock() {
    let mut host = Host::load(&mirror_config(r#""maxRequestsPerSecond": 2, "burst": 3"#));
    for _ in 0..10 {
        host.request().get("/").send().assert_never_paused();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 3, "the burst");
    assert_eq!(host.skipped("unnamed", "shadow", "rate_limited"), 7);
    host.respond_all(200);

    // 2 a second: one token per 500 ms.
    host.advance_clock_ms(499);
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.new_calls().len(), 0);
    host.advance_clock_ms(1);
    host.request().get("/").send();
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.new_calls().len(), 1);
    // A long idle refills to the burst, not beyond.
    host.advance_clock_ms(3_600_000);
    for _ in 0..10 {
        host.request().get("/").send();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 3);
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 23);
}

#[test]
fn host_calls_per_mirrored_request_without_and_with_a_cap() {
    let mut plain = Host::load(&mirror_config(""));
    let mut capped = Host::load(&mirror_config(r#""maxRequestsPerSecond": 1000, "burst": 1000"#));
    // Warm up: the first request defines the metrics.
    calls_of_one_request(&mut plain);
    calls_of_one_request(&mut capped);
    let without = calls_of_one_request(&mut plain);
    let with = calls_of_one_request(&mut capped);
    eprintln!(
        "host calls per mirrored GET: without a cap {} {without:?}; with a cap {} {with:?}",
        total(&without),
        total(&with)
    );
    assert_eq!(without.get(SHARED_GET), None, "no cap, no shared data");
    assert_eq!(without.get(SHARED_SET), None);
    assert_eq!(with.get(SHARED_GET), Some(&1));
    assert_eq!(with.get(SHARED_SET), Some(&1));
    assert_eq!(
        total(&with),
        total(&without) + 3,
        "the cap costs one read and one write of the bucket, and one clock read"
    );

    // Over the cap: the bucket is read, not written, and the request's
    // headers are not read at all.
    let mut limited = Host::load(&mirror_config(r#""maxRequestsPerSecond": 1"#));
    calls_of_one_request(&mut limited);
    calls_of_one_request(&mut limited); // the first over the cap defines the counter
    let over = calls_of_one_request(&mut limited);
    eprintln!("host calls per GET over the cap: {} {over:?}", total(&over));
    assert_eq!(over.get(SHARED_GET), Some(&1));
    assert_eq!(over.get(SHARED_SET), None);
    assert_eq!(over.get("proxy_get_header_map_pairs"), None);
    assert_eq!(over.get("proxy_http_call"), None);
    assert_eq!(
        total(&over),
        5,
        "the route name (it labels the skip), the loop marker, the bucket, the clock, and the skip counter"
    );
    assert_eq!(limited.skipped("unnamed", "shadow", "rate_limited"), 2);
}

#[test]
fn requests_out_of_the_sample_never_touch_shared_data() {
    let mut none = Host::load(&mirror_config(r#""percentage": 0, "maxRequestsPerSecond": 5"#));
    let mut half = Host::builder()
        .seed(7)
        .load(&mirror_config(r#""percentage": 50, "maxRequestsPerSecond": 1000"#));
    for _ in 0..200 {
        none.request().get("/").send();
        half.request().get("/").send();
        half.run_pending();
        half.respond_all(200);
    }
    assert_eq!(none.import_calls(SHARED_GET) + none.import_calls(SHARED_SET), 0);
    let sampled = half.accounted("unnamed", "shadow") as u64;
    assert!(sampled > 50 && sampled < 150, "{sampled} of 200 at 50 %");
    assert_eq!(half.import_calls(SHARED_GET), sampled, "one read per sampled request");
    assert_eq!(half.import_calls(SHARED_SET), sampled, "one write per token taken");
}

#[test]
fn two_vms_of_one_envoy_share_one_bucket() {
    let config = mirror_config(r#""maxRequestsPerSecond": 5, "burst": 5"#);
    let mut first = Host::load(&config);
    let mut second = Host::builder().shared_data(first.shared_data()).load(&config);
    for _ in 0..10 {
        first.request().get("/").send();
        second.request().get("/").send();
    }
    first.run_pending();
    second.run_pending();
    assert_eq!(
        first.calls().len() + second.calls().len(),
        5,
        "the burst, once for both workers"
    );
    first.respond_all(200);
    second.respond_all(200);
    // One second later: 5 more tokens, for both together.
    first.advance_clock_ms(1_000);
    second.advance_clock_ms(1_000);
    for _ in 0..10 {
        second.request().get("/").send();
        first.request().get("/").send();
    }
    first.run_pending();
    second.run_pending();
    assert_eq!(first.calls().len() + second.calls().len(), 10);
    let limited =
        first.skipped("unnamed", "shadow", "rate_limited") + second.skipped("unnamed", "shadow", "rate_limited");
    assert_eq!(limited, 30);
    // Without a shared store each VM would have let its own burst through.
    let mut apart = Host::load(&config);
    for _ in 0..10 {
        apart.request().get("/").send();
    }
    apart.run_pending();
    assert_eq!(apart.calls().len(), 5);
}

#[test]
fn failing_shared_data_skips_as_rate_unavailable_after_one_call() {
    for (get, set, gets, sets) in [
        (Some(Status::InternalFailure), None, 1, 0),
        (None, Some(Status::InternalFailure), 1, 1),
        (None, Some(Status::BadArgument), 1, 1),
    ] {
        let mut host = Host::builder().clusters(&["shadow", "other"]).load(
            r#"{"forward": {"mirrors": [{"destinationId": "shadow", "maxRequestsPerSecond": 100, "copies": 2},
                                        {"destinationId": "other"}]}}"#,
        );
        host.faults().get_shared_data = get;
        host.faults().set_shared_data = set;
        for _ in 0..5 {
            host.request().post("/").body(b"x").send().assert_never_paused();
        }
        host.run_pending();
        assert_eq!(
            host.skipped("unnamed", "shadow", "rate_unavailable"),
            10,
            "two copies each"
        );
        assert_eq!(host.requests_total("unnamed", "shadow"), 0);
        assert_eq!(
            host.requests_total("unnamed", "other"),
            5,
            "the other mirror is unaffected"
        );
        assert_eq!(host.import_calls(SHARED_GET), 5 * gets, "{get:?} {set:?}");
        assert_eq!(host.import_calls(SHARED_SET), 5 * sets, "{get:?} {set:?}");
        host.assert_accounted("unnamed", "shadow", 10);
        assert!(host.logs().is_empty(), "counted, not logged: {:?}", host.logs());
    }
}

#[test]
fn endless_cas_conflicts_give_up_after_four_tries_then_recover() {
    let mut host = Host::load(&mirror_config(r#""maxRequestsPerSecond": 100"#));
    host.faults().set_shared_data = Some(Status::CasMismatch);
    for _ in 0..3 {
        host.request().get("/").send().assert_never_paused();
    }
    host.run_pending();
    assert!(host.calls().is_empty());
    assert_eq!(host.skipped("unnamed", "shadow", "rate_unavailable"), 3);
    assert_eq!(host.import_calls(SHARED_GET), 3 * 4, "four tries per request, no more");
    assert_eq!(host.import_calls(SHARED_SET), 3 * 4);
    assert_eq!(
        host.import_calls("proxy_get_current_time_nanoseconds"),
        3,
        "one clock read per request, whatever the retries"
    );
    assert_eq!(host.import_calls("proxy_get_header_map_pairs"), 0, "no head read");

    host.faults().set_shared_data = None;
    host.request().get("/").send();
    host.run_pending();
    host.single_dispatched_call();
    host.assert_accounted("unnamed", "shadow", 4);
}

#[test]
fn a_few_conflicts_are_retried_and_the_copy_goes_out() {
    let mut host = Host::load(&mirror_config(r#""maxRequestsPerSecond": 100"#));
    // Another worker wins the race three times in a row.
    host.faults().set_shared_data_conflicts = 3;
    host.request().get("/").send().assert_never_paused();
    assert_eq!(host.import_calls(SHARED_GET), 4);
    assert_eq!(host.import_calls(SHARED_SET), 4);
    assert_eq!(
        host.import_calls("proxy_get_current_time_nanoseconds"),
        1,
        "the request read the clock once"
    );
    host.run_pending();
    host.single_dispatched_call();
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn copies_each_count_take_a_slot_and_share_the_body() {
    let mut host = Host::load(&mirror_config(r#""copies": 3"#));
    host.request()
        .post("/upload")
        .body_chunks(&[b"ab", b"cd"])
        .send()
        .assert_never_paused();
    host.run_pending();
    let calls = host.new_calls();
    assert_eq!(calls.len(), 3);
    assert!(calls
        .iter()
        .all(|c| c.body == b"abcd" && c.header(":path") == Some("/upload")));
    assert_eq!(host.requests_total("unnamed", "shadow"), 3, "each copy counts once");
    host.respond_all(200);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 3);

    // Each copy takes its own in-flight slot.
    let mut tight = Host::load(&mirror_config(r#""copies": 3, "maxInFlight": 2"#));
    tight.request().get("/").send();
    tight.run_pending();
    assert_eq!(tight.calls().len(), 2);
    assert_eq!(tight.skipped("unnamed", "shadow", "in_flight_limit"), 1);
    tight.assert_accounted("unnamed", "shadow", 3);
}

#[test]
fn copies_each_take_their_own_token() {
    let mut host = Host::load(&mirror_config(r#""copies": 3, "maxRequestsPerSecond": 2, "burst": 4"#));
    host.request().get("/").send();
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.calls().len(), 4);
    assert_eq!(host.skipped("unnamed", "shadow", "rate_limited"), 2);
    // One read and one write per request, for all its copies.
    assert_eq!(host.import_calls(SHARED_GET), 2);
    assert_eq!(host.import_calls(SHARED_SET), 2);
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 6);
}

#[test]
fn ten_copies_of_a_large_body_hold_one_buffer() {
    let mut host = Host::load(&mirror_config(r#""copies": 10, "maxInFlight": 10"#));
    let before = host.memory_bytes();
    host.request().post("/").generated_body(1 << 20, 64 * 1024).send();
    host.run_pending();
    let calls = host.new_calls();
    assert_eq!(calls.len(), 10);
    assert!(calls.iter().all(|c| c.body.len() == 1 << 20));
    let grown = host.memory_bytes() - before;
    assert!(
        grown <= 3 << 20,
        "10 copies of 1 MiB grew memory by {grown} bytes: the body must be shared, not copied 10 times"
    );
    host.respond_all(200);
}

#[test]
fn a_new_rate_takes_effect_on_reconfiguration_and_keeps_the_bucket() {
    let mut host = Host::load(&mirror_config(r#""maxRequestsPerSecond": 1, "burst": 1"#));
    for _ in 0..3 {
        host.request().get("/").send();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 1);
    assert!(host.configure(&mirror_config(r#""maxRequestsPerSecond": 1000, "burst": 10"#)));
    // The bucket carries over (empty), and refills at the new rate.
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.new_calls().len(), 0);
    host.advance_clock_ms(10);
    for _ in 0..20 {
        host.request().get("/").send();
    }
    host.run_pending();
    assert_eq!(host.new_calls().len(), 10, "10 ms at 1000/s, up to the new burst");
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 24);
}

#[test]
fn a_failing_clock_with_a_cap_still_never_breaks_a_request() {
    let mut host = Host::load(&mirror_config(r#""maxRequestsPerSecond": 10"#));
    host.faults().clock = Some(Status::InternalFailure);
    for _ in 0..20 {
        host.request().get("/").send().assert_never_paused();
    }
    host.run_pending();
    // The clock reads as 0: the bucket starts full and never refills.
    assert_eq!(host.calls().len(), 10);
    host.respond_all(200);
    host.assert_accounted("unnamed", "shadow", 20);
}
