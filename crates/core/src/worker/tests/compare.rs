//! The comparison's pairs through the worker: completed in either order,
//! abandoned, cancelled with a copy never sent, and overflowing.

use super::*;
use crate::worker::compare::MAX_PENDING_PAIRS;

const COMPARED: &str = r#", "compare": {"body": "json"}"#;

fn primary_answers(
    worker: &Worker<FakeHost>,
    host: &mut FakeHost,
    request: &mut MirroredRequest<(), u32>,
    status: &str,
    body: &'static [u8],
) {
    worker.response_headers(
        host,
        request,
        || AnswerHead::from_headers([(b":status".as_slice(), status.as_bytes())]),
        false,
    );
    worker.response_body(host, request, body.len(), || Some(body.to_vec()), true);
}

#[test]
fn the_primary_first_then_the_shadow() {
    let worker = worker(&one_mirror(COMPARED));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    assert!(request.watches_response());
    worker.dispatch_pending(&mut host);
    host.now_ms = 5;
    primary_answers(&worker, &mut host, &mut request, "200", br#"{"a": 1}"#);
    assert!(!request.watches_response(), "ended");
    assert_eq!(worker.pairs_pending(), 1);
    end_call(&worker, &mut host, 1, answered("200"), br#"{ "a" : 1 }"#);
    assert_eq!(host.compared("shadow", CompareResult::Match), 1);
    assert_eq!(worker.pairs_pending(), 0);
    let primary_latency = host.primary_latencies();
    assert_eq!(primary_latency, Some(vec![5]));
    worker.request_gone(&mut host, &mut request);
    assert_eq!(
        host.compared("shadow", CompareResult::PrimaryIncomplete),
        0,
        "one result per pair"
    );
    assert_no_leak();
}

#[test]
fn the_shadow_first_then_the_primary_and_a_mismatch_line() {
    let worker = worker(&one_mirror(COMPARED));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    end_call(&worker, &mut host, 1, answered("200"), br#"{"price": 2}"#);
    assert_eq!(worker.pairs_pending(), 1);
    assert!(
        host.counted.keys().all(|name| !name.contains("compare_total")),
        "nothing yet"
    );
    primary_answers(&worker, &mut host, &mut request, "200", br#"{"price": 1}"#);
    assert_eq!(host.compared("shadow", CompareResult::BodyMismatch), 1);
    assert_eq!(host.mismatch_lines.len(), 1);
    assert!(host.mismatch_lines[0].contains("price"), "{}", host.mismatch_lines[0]);
    assert_eq!(worker.pairs_pending(), 0);
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}

#[test]
fn a_primary_gone_before_its_answer_ended_is_incomplete_in_either_order() {
    let worker = worker(&one_mirror(COMPARED));
    let mut host = FakeHost::default();
    // Gone first, then the shadow answers.
    let mut first = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    worker.request_gone(&mut host, &mut first);
    end_call(&worker, &mut host, 1, answered("200"), b"{}");
    // The shadow first, then gone.
    let mut second = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    end_call(&worker, &mut host, 2, answered("200"), b"{}");
    worker.request_gone(&mut host, &mut second);
    assert_eq!(host.compared("shadow", CompareResult::PrimaryIncomplete), 2);
    assert_eq!(worker.pairs_pending(), 0);
    assert_no_leak();
}

#[test]
fn a_shadow_that_failed_is_shadow_failed() {
    let worker = worker(&one_mirror(COMPARED));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    worker.call_ended(
        &mut host,
        1,
        |_| CallEnd::Timeout,
        0,
        || panic!("no answer: nothing read"),
    );
    primary_answers(&worker, &mut host, &mut request, "200", b"{}");
    assert_eq!(host.compared("shadow", CompareResult::ShadowFailed), 1);
    assert_no_leak();
}

#[test]
fn a_copy_never_sent_forgets_its_pair_uncounted() {
    let worker = worker(&one_mirror(COMPARED));
    let mut host = FakeHost {
        refuse: true,
        ..FakeHost::default()
    };
    let mut request = get(&worker, &mut host);
    assert_eq!(worker.pairs_pending(), 1);
    worker.dispatch_pending(&mut host);
    assert_eq!(worker.pairs_pending(), 0);
    primary_answers(&worker, &mut host, &mut request, "200", b"{}");
    worker.request_gone(&mut host, &mut request);
    assert!(
        host.counted.keys().all(|name| !name.contains("compare_total")),
        "{:?}",
        host.counted
    );
    assert_no_leak();
}

#[test]
fn a_full_table_sends_the_copy_and_counts_it_as_overflow() {
    let worker = worker(&one_mirror(&format!(
        r#"{COMPARED}, "maxInFlight": {}"#,
        MAX_PENDING_PAIRS + 1
    )));
    let mut host = FakeHost::default();
    let mut requests: Vec<_> = (0..MAX_PENDING_PAIRS).map(|_| get(&worker, &mut host)).collect();
    assert_eq!(worker.pairs_pending(), MAX_PENDING_PAIRS);
    requests.push(get(&worker, &mut host));
    assert_eq!(worker.pairs_pending(), MAX_PENDING_PAIRS, "bounded");
    worker.dispatch_pending(&mut host);
    assert_eq!(
        host.sent_count("shadow"),
        MAX_PENDING_PAIRS as u64 + 1,
        "every copy is sent"
    );
    assert_eq!(host.compared("shadow", CompareResult::Overflow), 1);
    for (token, mut request) in (1..).zip(requests) {
        end_call(&worker, &mut host, token, answered("200"), b"{}");
        worker.request_gone(&mut host, &mut request);
    }
    assert_eq!(
        host.compared("shadow", CompareResult::PrimaryIncomplete),
        MAX_PENDING_PAIRS as u64
    );
    assert_eq!((worker.pairs_pending(), worker.calls_in_flight()), (0, 0));
    assert_no_leak();
}
