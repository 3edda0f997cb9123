//! Streamed copies (a host that streams: the native module) through the worker: opened at
//! the request's headers, fed each chunk and the trailers as they pass, never buffered, and
//! every exit of such a copy: answered (also before its request ended), refused, cut over the
//! budget, cut when its request is gone, cut when the host loses it. Each test ends with no
//! copy dropped without an exit.

use super::*;

fn streaming() -> FakeHost {
    FakeHost {
        streams: true,
        ..FakeHost::default()
    }
}

fn post(worker: &Worker<FakeHost>, host: &mut FakeHost, content_length: Option<usize>) -> MirroredRequest<(), u32> {
    worker.request_headers(host, &mut FakeRequest::new("POST", "/up", content_length), false)
}

fn chunk(
    worker: &Worker<FakeHost>,
    host: &mut FakeHost,
    request: &mut MirroredRequest<(), u32>,
    bytes: &'static [u8],
    end: bool,
) {
    worker.request_body(host, request, bytes.len(), || Some(bytes.to_vec()), end);
}

fn carried(host: &FakeHost, token: u32) -> Carried {
    host.streamed.get(&token).cloned().unwrap_or_default()
}

/// The destination's body bytes in flight.
fn held(worker: &Worker<FakeHost>) -> usize {
    worker.active().unwrap().destinations[0].borrow().body_bytes()
}

#[test]
fn a_copy_opens_at_the_headers_and_each_chunk_goes_as_it_passes() {
    let worker = worker(&one_mirror(""));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    assert_eq!(carried(&host, 1).head, "shadow /up", "the head left at once");
    assert_eq!(host.sent_count("shadow"), 1, "counted as sent when it opens");
    assert_eq!(
        (worker.copies_pending(), host.wakes, worker.calls_in_flight()),
        (0, 0, 1)
    );
    assert!(request.is_capturing());
    chunk(&worker, &mut host, &mut request, b"abc", false);
    assert_eq!(
        carried(&host, 1).body,
        b"abc",
        "the chunk went before the request's end"
    );
    chunk(&worker, &mut host, &mut request, b"de", true);
    assert_eq!(
        (carried(&host, 1).body.as_slice(), carried(&host, 1).ended),
        (b"abcde".as_slice(), true)
    );
    assert!(!request.is_capturing());
    assert!(host.sent.is_empty(), "nothing handed over whole");
    end_call(&worker, &mut host, 1, answered("201"), b"");
    assert_eq!(host.answered("shadow", ResponseClass::Success), 1);
    assert_eq!(
        (worker.calls_in_flight(), outstanding(&worker, 0), held(&worker)),
        (0, 0, 0)
    );
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}

#[test]
fn a_get_opens_whole_and_its_latency_runs_from_the_requests_end() {
    let worker = worker(&one_mirror(""));
    let mut host = streaming();
    let mut request = get(&worker, &mut host);
    assert!(carried(&host, 1).ended, "no body: the copy ends with its head");
    assert!(!request.is_capturing());
    host.now_ms = 4;
    end_call(&worker, &mut host, 1, answered("200"), b"");
    assert_eq!(host.recorded.values().flatten().copied().collect::<Vec<_>>(), [4]);
    worker.request_gone(&mut host, &mut request);

    // A body: the latency runs from its last chunk, not from the open.
    let mut request = post(&worker, &mut host, None);
    host.now_ms = 10;
    chunk(&worker, &mut host, &mut request, b"x", true);
    host.now_ms = 13;
    end_call(&worker, &mut host, 2, answered("200"), b"");
    assert_eq!(host.recorded.values().flatten().copied().collect::<Vec<_>>(), [4, 3]);
    assert_no_leak();
}

#[test]
fn a_declared_length_is_carried_and_held_from_the_open() {
    // Budget: maxInFlight × maxBodyBytes = 2 × 4 = 8 bytes in flight to the destination.
    let worker = worker(&one_mirror(r#", "maxBodyBytes": 4, "maxInFlight": 2"#));
    let mut host = streaming();
    let mut first = post(&worker, &mut host, Some(6));
    assert_eq!(
        carried(&host, 1).content_length.as_deref(),
        Some("6"),
        "framed as declared"
    );
    assert_eq!(held(&worker), 6, "6 is over the cap of 4, within the budget of 8");
    let mut second = post(&worker, &mut host, Some(3));
    assert_eq!(
        host.skipped("shadow", SkipReason::BodyTooLarge),
        1,
        "6 + 3 held would be over 8: skipped before it opens"
    );
    assert_eq!(host.streamed.len(), 1);
    worker.request_gone(&mut host, &mut second);
    chunk(&worker, &mut host, &mut first, b"abcdef", true);
    assert_eq!(held(&worker), 6, "the chunks fill what was held");
    end_call(&worker, &mut host, 1, answered("200"), b"");
    assert_eq!(held(&worker), 0);
    worker.request_gone(&mut host, &mut first);
    assert_no_leak();
}

#[test]
fn exit_cut_a_body_outgrowing_the_budget_is_reset_and_counted_once() {
    let worker = worker(&one_mirror(r#", "maxBodyBytes": 2, "maxInFlight": 2"#));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"abc", false);
    assert_eq!(held(&worker), 3);
    chunk(&worker, &mut host, &mut request, b"de", false);
    let copy = carried(&host, 1);
    assert!(copy.reset && !copy.ended, "reset mid-body: {copy:?}");
    assert_eq!(copy.body, b"abc", "the chunk over the budget never went");
    assert_eq!(host.answered("shadow", ResponseClass::BodyTooLarge), 1);
    assert_eq!(host.sent_count("shadow"), 1);
    assert!(host.recorded.is_empty(), "no latency for a copy the filter cut");
    assert_eq!(
        (worker.calls_in_flight(), outstanding(&worker, 0), held(&worker)),
        (0, 0, 0)
    );
    assert!(!request.is_capturing());
    chunk(&worker, &mut host, &mut request, b"f", true);
    worker.request_gone(&mut host, &mut request);
    assert_eq!(host.answered("shadow", ResponseClass::Incomplete), 0, "one exit only");
    assert!(
        !worker.active().unwrap().destinations[0].borrow().in_backoff(),
        "not a delivery failure"
    );
    assert_no_leak();
}

#[test]
fn copies_of_one_request_share_the_budget_and_each_holds_its_bytes() {
    let worker = worker(&one_mirror(r#", "maxBodyBytes": 3, "maxInFlight": 2, "copies": 2"#));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"abc", false);
    assert_eq!(held(&worker), 6, "two copies in flight hold 3 each");
    chunk(&worker, &mut host, &mut request, b"d", true);
    // The first copy no longer fits and is cut, which frees its 3 bytes: the second fits.
    assert_eq!(host.answered("shadow", ResponseClass::BodyTooLarge), 1);
    assert!(carried(&host, 1).reset);
    assert_eq!(
        (carried(&host, 2).body.as_slice(), carried(&host, 2).ended),
        (b"abcd".as_slice(), true)
    );
    assert_eq!(held(&worker), 4);
    end_call(&worker, &mut host, 2, answered("200"), b"");
    assert_eq!((held(&worker), outstanding(&worker, 0)), (0, 0));
    assert_no_leak();
}

#[test]
fn exit_cut_a_request_gone_before_its_end_resets_its_copies_as_incomplete() {
    let worker = worker(&one_mirror(r#", "copies": 2"#));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"abc", false);
    worker.request_gone(&mut host, &mut request);
    assert!(carried(&host, 1).reset && carried(&host, 2).reset);
    assert_eq!(host.answered("shadow", ResponseClass::Incomplete), 2);
    assert_eq!(host.skipped("shadow", SkipReason::Incomplete), 0, "they were sent");
    assert_eq!(
        (worker.calls_in_flight(), outstanding(&worker, 0), held(&worker)),
        (0, 0, 0)
    );
    // Envoy reports nothing for a stream the worker reset; a late report is ignored.
    end_call(&worker, &mut host, 1, CallEnd::Reset, b"");
    assert_eq!(host.answered("shadow", ResponseClass::Reset), 0);
    assert_no_leak();
}

#[test]
fn exit_cut_a_body_the_host_refuses_or_a_stream_it_lost_is_incomplete() {
    let worker = worker(&one_mirror(""));
    let mut host = streaming();
    let mut refused = post(&worker, &mut host, None);
    worker.request_body(&mut host, &mut refused, 3, || None, false);
    assert_eq!(host.answered("shadow", ResponseClass::Incomplete), 1);
    let mut lost = post(&worker, &mut host, None);
    host.lost.push(2);
    chunk(&worker, &mut host, &mut lost, b"abc", false);
    assert_eq!(host.answered("shadow", ResponseClass::Incomplete), 2);
    assert!(!lost.is_capturing());
    assert_eq!(
        (worker.calls_in_flight(), outstanding(&worker, 0), held(&worker)),
        (0, 0, 0)
    );
    worker.request_gone(&mut host, &mut refused);
    worker.request_gone(&mut host, &mut lost);
    assert_no_leak();
}

#[test]
fn exit_finish_an_answer_before_the_requests_end_ends_the_copy_and_later_chunks_skip_it() {
    let worker = worker(&one_mirror(""));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"abc", false);
    // A shadow that answers (413, say) before reading the whole body.
    end_call(&worker, &mut host, 1, answered("413"), b"");
    assert_eq!(host.answered("shadow", ResponseClass::ClientError), 1);
    assert_eq!((outstanding(&worker, 0), held(&worker)), (0, 0));
    chunk(&worker, &mut host, &mut request, b"de", true);
    assert_eq!(carried(&host, 1).body, b"abc", "nothing sent after its end");
    assert!(!carried(&host, 1).reset);
    worker.request_gone(&mut host, &mut request);
    assert_eq!(host.answered("shadow", ResponseClass::Incomplete), 0);
    assert_no_leak();
}

#[test]
fn trailers_end_a_streamed_copy_and_none_to_carry_end_it_with_its_body() {
    let worker = worker(&one_mirror(""));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"x", false);
    worker.request_trailers(&mut host, &mut request, || HeaderList::from_iter([("x-checksum", "1")]));
    let copy = carried(&host, 1);
    assert_eq!(
        (copy.trailers, copy.ended),
        (vec![("x-checksum".to_owned(), "1".to_owned())], true)
    );
    worker.request_trailers(&mut host, &mut request, || panic!("not read once ended"));
    let mut empty = post(&worker, &mut host, None);
    worker.request_trailers(&mut host, &mut empty, HeaderList::default);
    assert!(carried(&host, 2).ended && carried(&host, 2).trailers.is_empty());
    for token in 1..=2 {
        end_call(&worker, &mut host, token, answered("200"), b"");
    }
    assert_eq!(host.answered("shadow", ResponseClass::Success), 2);
    assert_no_leak();
}

#[test]
fn exit_refused_a_copy_the_host_cannot_open_feeds_the_backoff() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost {
        refuse: true,
        ..streaming()
    };
    for _ in 0..crate::dispatch::destination::TRIP_AFTER_FAILURES {
        let mut request = post(&worker, &mut host, None);
        assert!(!request.is_capturing());
        worker.request_gone(&mut host, &mut request);
    }
    assert_eq!(host.skipped("shadow", SkipReason::DispatchFailed), 5);
    assert!(worker.active().unwrap().destinations[0].borrow().in_backoff());
    assert_eq!((outstanding(&worker, 0), host.sent_count("shadow")), (0, 0));
    assert_no_leak();
}

#[test]
fn a_reconfiguration_while_copies_stream_keeps_them_fed_and_accounted() {
    let worker = worker(&one_mirror(r#", "maxBodyBytes": 4, "maxInFlight": 1"#));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    chunk(&worker, &mut host, &mut request, b"ab", false);
    worker
        .configure(one_mirror(r#", "maxBodyBytes": 1, "maxInFlight": 1"#).as_bytes())
        .unwrap();
    assert_eq!(
        held(&worker),
        2,
        "the copy's bytes are still held in the state in force"
    );
    chunk(&worker, &mut host, &mut request, b"cd", true);
    assert_eq!(carried(&host, 1).body, b"abcd", "held to its own mirror's budget");
    end_call(&worker, &mut host, 1, answered("200"), b"");
    assert_eq!((held(&worker), outstanding(&worker, 0)), (0, 0));
    assert_eq!(host.answered("shadow", ResponseClass::Success), 1);
    assert_no_leak();
}

#[cfg(feature = "compare")]
#[test]
fn a_streamed_copy_is_compared_also_when_its_answer_comes_before_the_requests_end() {
    use crate::compare::CompareResult;
    let worker = worker(&one_mirror(r#", "compare": {"body": "json"}"#));
    let mut host = streaming();
    let mut request = post(&worker, &mut host, None);
    assert!(request.watches_response());
    end_call(&worker, &mut host, 1, answered("200"), br#"{"a": 1}"#);
    assert_eq!(worker.pairs_pending(), 1, "the shadow's side waits for the primary's");
    // The request ends after its copy's answer: the primary's latency still runs from
    // the request's end (5), as on a host that buffers.
    chunk(&worker, &mut host, &mut request, b"{", false);
    host.now_ms = 5;
    chunk(&worker, &mut host, &mut request, b"}", true);
    host.now_ms = 9;
    worker.response_headers(
        &mut host,
        &mut request,
        || AnswerHead::from_headers([(b":status".as_slice(), b"200".as_slice())]),
        false,
    );
    worker.response_body(&mut host, &mut request, 8, || Some(br#"{"a": 1}"#.to_vec()), true);
    assert_eq!(host.compared("shadow", CompareResult::Match), 1);
    assert_eq!(worker.pairs_pending(), 0);
    let primary_latency = host.primary_latencies();
    assert_eq!(
        primary_latency,
        Some(vec![4]),
        "from the request's end at 5 to the answer at 9"
    );
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}
