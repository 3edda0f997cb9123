//! The worker on a fake host: every exit of a copy's life, the hand-over,
//! the comparison's pairs in either order, and a reconfiguration with
//! copies in flight. Each test ends by checking that no copy was dropped
//! without an exit.

use super::host::{Clock, Dispatch, Opening, Outgoing, Refused, Stream, Telemetry};
use super::*;
#[cfg(feature = "compare")]
use crate::compare::CompareResult;
use crate::dispatch::outcome::AnswerHead;
use crate::http::HeaderList;
use crate::mirror::decide::RequestView;
use crate::mirror::request::RequestHead;
use crate::mirror::select::HeaderLookup;
use crate::rate::memory_store::Store;
use crate::rate::{SharedStore, StoreError};
use crate::telemetry::catalogue::{LabelledPoint, Measure, Point};
use crate::telemetry::names::{labelled_name, point_name};
use crate::telemetry::series::Series;
use crate::telemetry::{ResponseClass, SkipReason};
use std::collections::BTreeMap;

/// A host that records what the worker asks of it.
#[derive(Default)]
struct FakeHost {
    now_ms: u64,
    /// Counters and histogram samples, by metric name with labels.
    counted: BTreeMap<String, u64>,
    recorded: BTreeMap<String, Vec<u64>>,
    sent: Vec<String>,
    refuse: bool,
    next_token: u32,
    wakes: u32,
    wake_fails: bool,
    mismatch_lines: Vec<String>,
    /// Shared data (the noise tables).
    shared: Store,
    /// Stream copies (`Stream`) instead of taking them whole.
    streams: bool,
    /// Streamed copies by token, as the host carried them.
    streamed: BTreeMap<u32, Carried>,
    /// Tokens whose stream the host lost: their sends fail.
    lost: Vec<u32>,
}

/// One streamed copy as the fake host carried it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Carried {
    /// `destination path`.
    head: String,
    content_length: Option<String>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    /// Its request part ended (end of stream, or trailers).
    ended: bool,
    reset: bool,
}

impl SharedStore for FakeHost {
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.shared.load(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.shared.store(key, value, cas)
    }
}

impl Clock for FakeHost {
    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }
}

impl Telemetry for FakeHost {
    type Ids = ();

    fn measure(&mut self, series: &Series<()>, point: Point, measure: Measure) {
        let name = point_name(series.route(), series.destination(), &point);
        match measure {
            Measure::Increment => *self.counted.entry(name).or_default() += 1,
            Measure::Record(value) => self.recorded.entry(name).or_default().push(value),
        }
    }

    fn count_labelled(&mut self, series: &Series<()>, point: LabelledPoint<'_>) {
        let name = labelled_name(series.route(), series.destination(), &point);
        *self.counted.entry(name).or_default() += 1;
    }

    fn mismatch_log_enabled(&mut self) -> bool {
        true
    }

    fn log_mismatch(&mut self, line: &str) {
        self.mismatch_lines.push(line.to_owned());
    }
}

impl Dispatch for FakeHost {
    type Token = u32;

    fn send(&mut self, copy: Outgoing<'_>) -> Result<u32, Refused> {
        if self.refuse {
            return Err(Refused);
        }
        self.sent.push(format!(
            "{} {} {}",
            copy.destination,
            String::from_utf8_lossy(copy.headers.get(":path").unwrap_or_default()),
            String::from_utf8_lossy(copy.body)
        ));
        self.next_token += 1;
        Ok(self.next_token)
    }

    fn wake(&mut self) -> bool {
        self.wakes += 1;
        !self.wake_fails
    }
}

impl Stream for FakeHost {
    const STREAMS: bool = true;

    fn streams(&self) -> bool {
        self.streams
    }

    fn open(&mut self, copy: Opening<'_>) -> Result<u32, Refused> {
        if self.refuse {
            return Err(Refused);
        }
        self.next_token += 1;
        let carried = Carried {
            head: format!(
                "{} {}",
                copy.destination,
                String::from_utf8_lossy(copy.headers.get(":path").unwrap_or_default())
            ),
            content_length: copy.content_length.map(|n| n.to_string()),
            ended: copy.end_stream,
            ..Carried::default()
        };
        self.streamed.insert(self.next_token, carried);
        Ok(self.next_token)
    }

    fn send_data(&mut self, token: u32, chunk: &[u8], end_stream: bool) -> bool {
        match self.streamed.get_mut(&token) {
            Some(carried) if !self.lost.contains(&token) => {
                assert!(!carried.ended && !carried.reset, "data after the copy's end");
                carried.body.extend_from_slice(chunk);
                carried.ended = end_stream;
                true
            }
            _ => false,
        }
    }

    fn send_trailers(&mut self, token: u32, trailers: &HeaderList) -> bool {
        match self.streamed.get_mut(&token) {
            Some(carried) if !self.lost.contains(&token) => {
                assert!(!carried.ended && !carried.reset, "trailers after the copy's end");
                carried.trailers = trailers
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect();
                carried.ended = true;
                true
            }
            _ => false,
        }
    }

    fn reset(&mut self, token: u32) {
        if let Some(carried) = self.streamed.get_mut(&token) {
            carried.reset = true;
        }
    }
}

impl FakeHost {
    /// The counter `metric` with labels route `r`, the destination and its value.
    fn count(&self, destination: &str, metric: &str, value: Option<&str>) -> u64 {
        let suffix = match value {
            Some(v) => format!("destination=.={destination};.;{}=.={v};.;{metric}", label_of(metric)),
            None => format!("destination=.={destination};.;{metric}"),
        };
        self.counted
            .iter()
            .filter(|(name, _)| name.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum()
    }

    fn skipped(&self, destination: &str, reason: SkipReason) -> u64 {
        self.count(destination, "vrata_mirror_skipped_total", Some(reason.label()))
    }

    fn sent_count(&self, destination: &str) -> u64 {
        self.count(destination, "vrata_mirror_requests_total", None)
    }

    fn answered(&self, destination: &str, class: ResponseClass) -> u64 {
        self.count(destination, "vrata_mirror_responses_total", Some(class.label()))
    }

    #[cfg(feature = "compare")]
    fn compared(&self, destination: &str, result: CompareResult) -> u64 {
        self.count(destination, "vrata_mirror_compare_total", Some(result.label()))
    }

    /// The primary latencies recorded (`vrata_mirror_primary_response_time_ms`), if any.
    #[cfg(feature = "compare")]
    fn primary_latencies(&self) -> Option<Vec<u64>> {
        self.recorded
            .iter()
            .find(|(name, _)| name.ends_with("vrata_mirror_primary_response_time_ms"))
            .map(|(_, v)| v.clone())
    }
}

fn label_of(metric: &str) -> &'static str {
    match metric {
        "vrata_mirror_skipped_total" => "reason",
        "vrata_mirror_responses_total" => "class",
        _ => "result",
    }
}

/// A request as the decision reads it.
struct FakeRequest {
    head: Option<RequestHead>,
    draw: u32,
}

impl FakeRequest {
    fn new(method: &str, path: &str, content_length: Option<usize>) -> FakeRequest {
        let mut pairs = vec![
            (":method".to_owned(), method.to_owned()),
            (":path".to_owned(), path.to_owned()),
            (":authority".to_owned(), "api".to_owned()),
        ];
        if let Some(n) = content_length {
            pairs.push(("content-length".to_owned(), n.to_string()));
        }
        FakeRequest {
            head: Some(RequestHead::from_pairs(
                pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            )),
            draw: 0,
        }
    }
}

impl HeaderLookup for FakeRequest {
    fn header(&mut self, _name: &str) -> Option<Vec<u8>> {
        None
    }
}

impl SharedStore for FakeRequest {
    fn load(&mut self, _key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(None)
    }

    fn store(&mut self, _key: &str, _value: &[u8], _cas: u32) -> Result<(), StoreError> {
        Ok(())
    }
}

impl RequestView for FakeRequest {
    fn route_name(&mut self) -> Option<Vec<u8>> {
        Some(b"api".to_vec())
    }

    fn head(&mut self) -> Option<RequestHead> {
        self.head.clone()
    }

    fn now_ms(&mut self) -> u64 {
        0
    }

    fn draw_u32(&mut self) -> u32 {
        self.draw
    }
}

fn worker(json: &str) -> Worker<FakeHost> {
    let worker = Worker::new();
    worker.configure(json.as_bytes()).unwrap();
    worker
}

fn one_mirror(extra: &str) -> String {
    format!(r#"{{"forward": {{"mirror": {{"destinationId": "shadow"{extra}}}}}}}"#)
}

fn outstanding(worker: &Worker<FakeHost>, destination: usize) -> u32 {
    worker.active().unwrap().destinations[destination]
        .borrow()
        .outstanding()
}

fn get(worker: &Worker<FakeHost>, host: &mut FakeHost) -> MirroredRequest<(), u32> {
    worker.request_headers(host, &mut FakeRequest::new("GET", "/get", None), true)
}

fn answered(status: &str) -> CallEnd {
    CallEnd::Answered(AnswerHead::from_headers([
        (b":status".as_slice(), status.as_bytes()),
        (b"x-envoy-upstream-service-time".as_slice(), b"1".as_slice()),
    ]))
}

fn end_call(worker: &Worker<FakeHost>, host: &mut FakeHost, token: u32, end: CallEnd, body: &'static [u8]) {
    worker.call_ended(host, token, |_| end, body.len(), || Some(body.to_vec()));
}

fn assert_no_leak() {
    assert_eq!(leaked_copies(), 0, "a copy was dropped without an exit");
}

#[test]
fn a_get_is_handed_over_at_its_headers_sent_and_finished() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost::default();
    let mut request = get(&worker, &mut host);
    assert!(!request.is_capturing());
    assert_eq!((worker.copies_pending(), host.wakes), (1, 1));
    assert_eq!(outstanding(&worker, 0), 1, "the slot is held while queued");
    worker.dispatch_pending(&mut host);
    assert_eq!(host.sent, ["shadow /get "]);
    assert_eq!((worker.copies_pending(), worker.calls_in_flight()), (0, 1));
    assert_eq!(host.sent_count("shadow"), 1);
    host.now_ms = 7;
    end_call(&worker, &mut host, 1, answered("200"), b"");
    assert_eq!(host.answered("shadow", ResponseClass::Success), 1);
    assert_eq!(
        host.recorded.values().flatten().copied().collect::<Vec<_>>(),
        [7],
        "the latency"
    );
    assert_eq!((worker.calls_in_flight(), outstanding(&worker, 0)), (0, 0));
    worker.request_gone(&mut host, &mut request);
    assert_no_leak();
}

#[test]
fn a_body_is_copied_chunk_by_chunk_and_handed_over_at_its_end() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost::default();
    let mut request = worker.request_headers(&mut host, &mut FakeRequest::new("POST", "/p", None), false);
    assert!(request.is_capturing());
    worker.request_body(&mut host, &mut request, 3, || Some(b"abc".to_vec()), false);
    worker.request_body(&mut host, &mut request, 2, || Some(b"de".to_vec()), true);
    worker.dispatch_pending(&mut host);
    assert_eq!(host.sent, ["shadow /p abcde"]);
    end_call(&worker, &mut host, 1, answered("500"), b"");
    assert_eq!(host.answered("shadow", ResponseClass::ServerError), 1);
    assert_eq!(outstanding(&worker, 0), 0);
    assert_no_leak();
}

#[test]
fn trailers_end_a_copy_too() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost::default();
    let mut request = worker.request_headers(&mut host, &mut FakeRequest::new("POST", "/t", None), false);
    worker.request_body(&mut host, &mut request, 1, || Some(b"x".to_vec()), false);
    worker.request_trailers(&mut host, &mut request, || {
        HeaderList::from_iter([("grpc-status", "0")])
    });
    assert!(!request.is_capturing());
    assert_eq!(worker.copies_pending(), 1);
    worker.request_trailers(&mut host, &mut request, || panic!("not read once handed over"));
    worker.dispatch_pending(&mut host);
    end_call(&worker, &mut host, 1, answered("200"), b"");
    assert_no_leak();
}

#[test]
fn exit_skip_a_body_over_the_cap_is_never_read_and_frees_its_slot() {
    let worker = worker(&one_mirror(r#", "maxBodyBytes": 4"#));
    let mut host = FakeHost::default();
    let mut request = worker.request_headers(&mut host, &mut FakeRequest::new("POST", "/p", None), false);
    worker.request_body(&mut host, &mut request, 3, || Some(b"abc".to_vec()), false);
    worker.request_body(
        &mut host,
        &mut request,
        2,
        || panic!("a chunk that cannot fit is not read"),
        false,
    );
    assert!(!request.is_capturing());
    assert_eq!(host.skipped("shadow", SkipReason::BodyTooLarge), 1);
    assert_eq!((outstanding(&worker, 0), worker.copies_pending()), (0, 0));
    worker.request_gone(&mut host, &mut request);
    assert_eq!(host.skipped("shadow", SkipReason::Incomplete), 0, "one exit only");
    assert_no_leak();
}

#[test]
fn exit_skip_a_body_the_host_refuses_is_a_host_error() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost::default();
    let mut request = worker.request_headers(&mut host, &mut FakeRequest::new("POST", "/p", None), false);
    worker.request_body(&mut host, &mut request, 3, || None, false);
    assert_eq!(host.skipped("shadow", SkipReason::HostError), 1);
    assert_eq!(outstanding(&worker, 0), 0);
    assert_no_leak();
}

#[test]
fn exit_skip_a_request_gone_before_its_end_is_incomplete() {
    let worker = worker(&one_mirror(r#", "copies": 2"#));
    let mut host = FakeHost::default();
    let mut request = worker.request_headers(&mut host, &mut FakeRequest::new("POST", "/p", None), false);
    assert_eq!(outstanding(&worker, 0), 2);
    worker.request_gone(&mut host, &mut request);
    assert_eq!(host.skipped("shadow", SkipReason::Incomplete), 2);
    assert_eq!(outstanding(&worker, 0), 0);
    assert_no_leak();
}

#[test]
fn exit_skip_copies_nothing_can_send_are_counted_at_once() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost {
        wake_fails: true,
        ..FakeHost::default()
    };
    get(&worker, &mut host);
    assert_eq!(host.skipped("shadow", SkipReason::DispatchFailed), 1);
    assert_eq!((worker.copies_pending(), outstanding(&worker, 0)), (0, 0));
    assert_no_leak();
}

#[test]
fn exit_refused_feeds_the_backoff() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost {
        refuse: true,
        ..FakeHost::default()
    };
    for _ in 0..crate::dispatch::destination::TRIP_AFTER_FAILURES {
        get(&worker, &mut host);
        worker.dispatch_pending(&mut host);
    }
    assert_eq!(host.skipped("shadow", SkipReason::DispatchFailed), 5);
    assert_eq!(host.sent_count("shadow"), 0);
    assert!(worker.active().unwrap().destinations[0].borrow().in_backoff());
    get(&worker, &mut host);
    assert_eq!(host.skipped("shadow", SkipReason::Backoff), 1);
    assert_eq!(outstanding(&worker, 0), 0);
    assert_no_leak();
}

#[test]
fn exit_finish_every_way_a_call_ends_frees_its_slot() {
    let ends = [
        (answered("200"), ResponseClass::Success),
        (CallEnd::Reset, ResponseClass::Reset),
        (CallEnd::Timeout, ResponseClass::Timeout),
        (CallEnd::CutShort, ResponseClass::TooLargeOrReset),
    ];
    for (end, class) in ends {
        let worker = worker(&one_mirror(""));
        let mut host = FakeHost::default();
        get(&worker, &mut host);
        worker.dispatch_pending(&mut host);
        let mut timing = None;
        worker.call_ended(
            &mut host,
            1,
            |t| {
                timing = Some(t);
                end
            },
            0,
            || panic!("no comparison: the body is not read"),
        );
        assert_eq!(timing.map(|t| t.timeout_ms), Some(1000), "{class:?}");
        assert_eq!(host.answered("shadow", class), 1, "{class:?}");
        assert_eq!(
            host.recorded.is_empty(),
            !class.is_answer(),
            "latency only for an answer"
        );
        assert_eq!(outstanding(&worker, 0), 0);
        // An unknown token (reported twice) is ignored.
        end_call(&worker, &mut host, 1, CallEnd::Reset, b"");
        assert_eq!(
            host.answered("shadow", ResponseClass::Reset),
            u64::from(class == ResponseClass::Reset)
        );
    }
    assert_no_leak();
}

#[test]
fn one_wake_per_batch() {
    let worker = worker(&one_mirror(""));
    let mut host = FakeHost::default();
    for _ in 0..3 {
        get(&worker, &mut host);
    }
    assert_eq!((host.wakes, worker.copies_pending()), (1, 3));
    worker.dispatch_pending(&mut host);
    get(&worker, &mut host);
    assert_eq!(host.wakes, 2);
    worker.dispatch_pending(&mut host);
    for token in 1..=4 {
        end_call(&worker, &mut host, token, answered("204"), b"");
    }
    assert_eq!(host.answered("shadow", ResponseClass::Success), 4);
    assert_no_leak();
}

#[test]
fn a_reconfiguration_keeps_copies_in_flight_accounted() {
    let worker = worker(r#"{"forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "b"}]}}"#);
    let mut host = FakeHost::default();
    get(&worker, &mut host);
    worker.dispatch_pending(&mut host);
    assert_eq!(worker.calls_in_flight(), 2);
    worker
        .configure(br#"{"forward": {"mirrors": [{"destinationId": "b"}, {"destinationId": "c"}]}}"#)
        .unwrap();
    assert_eq!(outstanding(&worker, 0), 1, "b's copy in flight, carried over");
    assert_eq!(outstanding(&worker, 1), 0);
    end_call(&worker, &mut host, 1, answered("200"), b"");
    end_call(&worker, &mut host, 2, answered("200"), b"");
    assert_eq!(outstanding(&worker, 0), 0, "b's slot ended in the state in force");
    assert_eq!(
        host.answered("a", ResponseClass::Success),
        1,
        "a dropped copy still counted"
    );
    assert!(worker.configure(br#"{"forward": {"mirror": {}}}"#).is_err());
    assert_eq!(
        worker.active().unwrap().config.destinations,
        ["b", "c"],
        "a refused one changes nothing"
    );
    assert_no_leak();
}

#[test]
fn a_refused_configuration_names_the_field() {
    let worker: Worker<FakeHost> = Worker::new();
    let message = worker
        .configure(br#"{"forward": {"mirror": {"destinationId": "s", "percentage": 101}}}"#)
        .unwrap_err();
    assert!(message.contains("percentage"), "{message}");
    assert!(refusal_line(&message).starts_with("vrata-mirror: invalid plugin configuration: "));
    assert!(worker.active().is_none());
    let mut host = FakeHost::default();
    let request = get(&worker, &mut host);
    assert!(!request.is_capturing(), "no configuration: nothing mirrored");
}

#[cfg(not(feature = "compare"))]
#[test]
fn without_the_feature_compare_is_refused() {
    let worker: Worker<FakeHost> = Worker::new();
    let message = worker
        .configure(one_mirror(r#", "compare": {}"#).as_bytes())
        .unwrap_err();
    assert!(message.contains("vrata_mirror_compare.wasm"), "{message}");
}

#[cfg(feature = "compare")]
mod compare;

#[cfg(feature = "compare")]
mod noise;

mod stream;
