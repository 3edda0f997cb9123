//! Noise cancellation through the worker (`compare.secondary`): the copy to
//! the secondary, the pairs waiting for it, the verdicts from the shared
//! table, the field counters, and a table that cannot be used.

use super::*;
use crate::telemetry::catalogue::{FIELD_DIFFERENCES, NOISE_REQUESTS};

/// The candidate `shadow`, the secondary `stable`; learning over after `min` requests.
fn noisy(min: u64, extra: &str) -> String {
    one_mirror(&format!(
        r#", "compare": {{"body": "json", "secondary": "stable", "noise": {{"minRequests": {min}}}}}{extra}"#
    ))
}

fn primary_answers(worker: &Worker<FakeHost>, host: &mut FakeHost, request: &mut MirroredRequest<(), u32>, body: &str) {
    worker.response_headers(
        host,
        request,
        || AnswerHead::from_headers([(b":status".as_slice(), b"200".as_slice())]),
        false,
    );
    let body = body.as_bytes().to_vec();
    worker.response_body(host, request, body.len(), || Some(body), true);
}

fn answer(worker: &Worker<FakeHost>, host: &mut FakeHost, token: u32, body: &str) {
    let body = body.as_bytes().to_vec();
    worker.call_ended(host, token, |_| answered("200"), body.len(), || Some(body));
}

fn field(host: &FakeHost, path: &str, kind: &str) -> u64 {
    let point = LabelledPoint {
        metric: &FIELD_DIFFERENCES,
        values: &["GET", path, kind],
    };
    host.counted
        .get(&labelled_name("api", "shadow", &point))
        .copied()
        .unwrap_or(0)
}

fn counted_requests(host: &FakeHost) -> u64 {
    let point = LabelledPoint {
        metric: &NOISE_REQUESTS,
        values: &["GET"],
    };
    host.counted
        .get(&labelled_name("api", "shadow", &point))
        .copied()
        .unwrap_or(0)
}

/// One GET: the primary answers `primary`, the candidate `candidate`, the
/// secondary `secondary` (the secondary's copy is the second sent).
fn one(worker: &Worker<FakeHost>, host: &mut FakeHost, primary: &str, candidate: &str, secondary: &str) {
    let sent = host.next_token;
    let mut request = get(worker, host);
    worker.dispatch_pending(host);
    assert_eq!(host.next_token, sent + 2, "a copy to each");
    primary_answers(worker, host, &mut request, primary);
    answer(worker, host, sent + 1, candidate);
    answer(worker, host, sent + 2, secondary);
    worker.request_gone(host, &mut request);
}

#[test]
fn a_compared_request_is_also_copied_to_the_secondary_under_its_own_destination() {
    let worker = worker(&noisy(1, ""));
    let mut host = FakeHost::default();
    one(&worker, &mut host, r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":1}"#);
    assert_eq!(host.sent, ["shadow /get ", "stable /get "], "the same request to each");
    assert_eq!((host.sent_count("shadow"), host.sent_count("stable")), (1, 1));
    assert_eq!(host.answered("stable", ResponseClass::Success), 1);
    assert_eq!(host.compared("shadow", CompareResult::Match), 1);
    assert!(
        host.counted
            .keys()
            .all(|n| !(n.contains("stable") && n.contains("compare_total"))),
        "the secondary's answer is no comparison of its own"
    );
    assert_eq!(counted_requests(&host), 1, "a match is counted too: the denominator");
    assert_eq!((outstanding(&worker, 0), outstanding(&worker, 1)), (0, 0));
    assert_eq!(worker.pairs_pending(), 0);
    assert_no_leak();
}

#[test]
fn verdicts_learning_then_noise_or_body_mismatch_and_the_fields_counted() {
    let worker = worker(&noisy(3, ""));
    let mut host = FakeHost::default();
    // Learning: two requests whose timestamp differs on both sides.
    for ts in 0..2 {
        let (p, c, s) = (
            format!(r#"{{"ts":{ts},"price":1}}"#),
            format!(r#"{{"ts":{},"price":1}}"#, ts + 100),
            format!(r#"{{"ts":{},"price":1}}"#, ts + 200),
        );
        one(&worker, &mut host, &p, &c, &s);
    }
    assert_eq!(host.compared("shadow", CompareResult::Learning), 2);
    // Learned: the timestamp alone is noise; the price, which only the
    // candidate changes, is real (raw 1 against noise 0 of 3 requests).
    one(
        &worker,
        &mut host,
        r#"{"ts":3,"price":1}"#,
        r#"{"ts":4,"price":1}"#,
        r#"{"ts":5,"price":1}"#,
    );
    assert_eq!(host.compared("shadow", CompareResult::Noise), 1);
    one(
        &worker,
        &mut host,
        r#"{"ts":6,"price":1}"#,
        r#"{"ts":7,"price":2}"#,
        r#"{"ts":8,"price":1}"#,
    );
    assert_eq!(host.compared("shadow", CompareResult::BodyMismatch), 1);
    assert_eq!(host.mismatch_lines.len(), 1, "only the real difference is logged");
    assert!(host.mismatch_lines[0].contains("price"), "{}", host.mismatch_lines[0]);
    one(
        &worker,
        &mut host,
        r#"{"ts":9,"price":1}"#,
        r#"{"ts":9,"price":1}"#,
        r#"{"ts":10,"price":1}"#,
    );
    assert_eq!(host.compared("shadow", CompareResult::Match), 1);
    assert_eq!(counted_requests(&host), 5);
    assert_eq!((field(&host, "ts", "raw"), field(&host, "ts", "noise")), (4, 5));
    assert_eq!((field(&host, "price", "raw"), field(&host, "price", "noise")), (1, 0));
    assert_no_leak();
}

#[test]
fn copies_share_one_secondary_copy_and_wait_for_it() {
    let worker = worker(&noisy(1, r#", "copies": 3"#));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    assert_eq!(
        host.sent,
        ["shadow /get ", "shadow /get ", "shadow /get ", "stable /get "],
        "one copy to the secondary per sampled request"
    );
    primary_answers(&worker, &mut host, &mut request, r#"{"a":1}"#);
    for token in 1..=3 {
        answer(&worker, &mut host, token, r#"{"a":2}"#);
    }
    assert_eq!(worker.pairs_pending(), 3, "waiting for the secondary");
    assert!(host.counted.keys().all(|n| !n.contains("compare_total")));
    answer(&worker, &mut host, 4, r#"{"a":1}"#);
    assert_eq!(worker.pairs_pending(), 0);
    assert_eq!(host.compared("shadow", CompareResult::BodyMismatch), 3);
    assert_eq!(counted_requests(&host), 3, "each pair is counted");
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}

#[test]
fn a_secondary_without_an_answer_leaves_the_pair_compared_and_uncounted() {
    let worker = worker(&noisy(1, ""));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    primary_answers(&worker, &mut host, &mut request, r#"{"a":1}"#);
    answer(&worker, &mut host, 1, r#"{"a":2}"#);
    worker.call_ended(&mut host, 2, |_| CallEnd::Timeout, 0, || None);
    assert_eq!(host.answered("stable", ResponseClass::Timeout), 1);
    assert_eq!(
        host.compared("shadow", CompareResult::Learning),
        1,
        "read from a table that has seen nothing"
    );
    assert_eq!(counted_requests(&host), 0, "nothing counted without the noise side");
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}

#[test]
fn the_secondary_obeys_its_own_destinations_limits() {
    let worker = worker(&one_mirror(
        r#", "maxInFlight": 1, "compare": {"body": "json", "secondary": "stable"}"#,
    ));
    let mut host = FakeHost::default();
    // The secondary's one slot is held by a request still in flight.
    let mut first = get(&worker, &mut host);
    assert_eq!((outstanding(&worker, 0), outstanding(&worker, 1)), (1, 1));
    // A second request: the candidate is at its cap too, so neither is sent.
    let mut second = get(&worker, &mut host);
    assert_eq!(host.skipped("shadow", SkipReason::InFlightLimit), 1);
    assert_eq!(
        host.skipped("stable", SkipReason::InFlightLimit),
        0,
        "no secondary without a candidate copy"
    );
    worker.dispatch_pending(&mut host);
    answer(&worker, &mut host, 1, "{}");
    // The candidate's slot is free, the secondary's is not.
    let mut third = get(&worker, &mut host);
    assert_eq!(host.skipped("stable", SkipReason::InFlightLimit), 1);
    worker.dispatch_pending(&mut host);
    assert_eq!((host.sent_count("shadow"), host.sent_count("stable")), (2, 1));
    answer(&worker, &mut host, 2, "{}");
    answer(&worker, &mut host, 3, "{}");
    for request in [&mut first, &mut second, &mut third] {
        worker.request_gone(&mut host, request);
    }
    assert_eq!((outstanding(&worker, 0), outstanding(&worker, 1)), (0, 0));
    assert_eq!(worker.pairs_pending(), 0);
    assert_no_leak();
}

#[test]
fn shared_data_that_fails_leaves_the_plain_verdict_and_is_counted() {
    let worker = worker(&noisy(1, ""));
    for (fail_load, fail_store, conflicts) in [(true, false, 0), (false, true, 0), (false, false, u32::MAX)] {
        let mut host = FakeHost::default();
        host.shared.fail_load = fail_load;
        host.shared.fail_store = fail_store;
        host.shared.conflicts = conflicts;
        one(&worker, &mut host, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#);
        assert_eq!(
            host.compared("shadow", CompareResult::BodyMismatch),
            1,
            "still compared: {fail_load} {fail_store} {conflicts}"
        );
        assert_eq!(host.count("shadow", "vrata_mirror_noise_unavailable_total", None), 1);
        assert_eq!(counted_requests(&host), 0);
        assert!(
            host.shared.calls.len() <= 2 * crate::rate::MAX_ATTEMPTS as usize,
            "bounded"
        );
    }
    assert_no_leak();
}

#[test]
fn a_secondary_refused_by_the_host_ends_its_side() {
    let worker = worker(&noisy(1, ""));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    host.refuse = true;
    worker.dispatch_pending(&mut host);
    assert_eq!(host.skipped("stable", SkipReason::DispatchFailed), 1);
    assert_eq!(worker.pairs_pending(), 0, "the candidate's pair went with its copy");
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}
