//! Classifying how a mirror call ended.
//!
//! Envoy reports several delivery failures as responses it made up itself:
//! a timeout as a 504 `upstream request timeout`, a refused connection or a
//! reset before headers as a 503 `upstream connect error or disconnect/reset
//! before headers. reset reason: ...`, a cluster without healthy hosts as a
//! 503 `no healthy upstream`; a reset after headers arrives with no headers at
//! all. Taking the class from `:status` alone would count a dead shadow as a
//! shadow answering 5xx, so Envoy's own replies are told apart by their text.
//!
//! A gRPC answer is HTTP 200 whatever happened: its class comes from its
//! `grpc-status` instead.
//!
//! A call that ends with no headers at all is one whose answer had begun:
//! once Envoy's router has passed the answer's headers on, it can no longer
//! reply itself and resets the call instead. Envoy 1.40's wasm host reports
//! every such ending the same way (zero headers, status "reset"): the
//! shadow reset mid-answer, the answer's body went over
//! `http.async_response_buffer_limit`, or `timeoutMs` passed mid-answer.
//! Only the time since the send tells the last apart: see
//! [`classify_headerless`].

use crate::http::grpc::{is_grpc_content_type, GrpcCode};
use crate::http::parse_status;
use crate::telemetry::ResponseClass;

/// Set by Envoy's router on responses that came from an upstream; absent on
/// the replies Envoy makes up itself (timeouts, connection failures).
pub const UPSTREAM_SERVICE_TIME: &[u8] = b"x-envoy-upstream-service-time";
/// Bytes of an Envoy-made reply's body read to classify it.
pub const ENVOY_REPLY_PREFIX: usize = 160;

/// What an answer's head says: a copy's call response, or the primary's
/// response when a mirror compares. Read from the host in one pass (see
/// [`AnswerHead::from_headers`]), then only what that leaves open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerHead {
    /// `:status`; `None` when the call ended without (valid) response
    /// headers: a reset.
    pub status: Option<u16>,
    /// The answer came from an upstream (it carries `x-envoy-upstream-service-time`).
    pub from_upstream: bool,
    /// The answer's `content-type` is gRPC's.
    pub grpc: bool,
    /// `grpc-status`: from the headers of a trailers-only answer, else from
    /// the trailers (see [`AnswerHead::needs_trailers`]).
    pub grpc_status: Option<Vec<u8>>,
    /// The text of a reply Envoy may have made itself: the start of its
    /// body, or its `grpc-message` (see [`AnswerHead::needs_reply_text`]).
    pub envoy_reply: Option<Vec<u8>>,
}

impl AnswerHead {
    /// Reads the response headers. `grpc-message` goes into `envoy_reply`
    /// for a reply that did not come from an upstream: a gRPC request's
    /// local replies carry their text there.
    pub fn from_headers<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> AnswerHead {
        let mut report = AnswerHead::default();
        let mut grpc_message = None;
        for (name, value) in pairs {
            match name {
                b":status" => report.status = parse_status(value),
                b"content-type" => report.grpc = is_grpc_content_type(value),
                b"grpc-status" => report.grpc_status = Some(value.to_vec()),
                b"grpc-message" => grpc_message = Some(value),
                _ if name == UPSTREAM_SERVICE_TIME => report.from_upstream = true,
                _ => {}
            }
        }
        if !report.from_upstream {
            report.envoy_reply = grpc_message.map(<[u8]>::to_vec);
        }
        report
    }

    /// Whether the status must be looked up in the call's trailers: a gRPC
    /// answer that is not trailers-only.
    pub fn needs_trailers(&self, num_trailers: usize) -> bool {
        self.grpc && self.grpc_status.is_none() && num_trailers > 0
    }

    /// Reads `grpc-status` from the trailers (`read`) when the head leaves
    /// it there: the one rule for the primary's answer and a copy's.
    pub fn read_trailer_status(&mut self, num_trailers: usize, read: impl FnOnce(&str) -> Option<Vec<u8>>) {
        if self.needs_trailers(num_trailers) {
            self.grpc_status = read("grpc-status");
        }
    }

    /// A copy's call answer, whole: its head, then the trailers' status and
    /// the start of its body as far as the head leaves them open (`trailer`
    /// reads a trailer by name, `body_prefix` at most so many bytes of the
    /// body).
    pub fn read_call_answer<'a>(
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        num_trailers: usize,
        trailer: impl FnOnce(&str) -> Option<Vec<u8>>,
        body_prefix: impl FnOnce(usize) -> Option<Vec<u8>>,
    ) -> AnswerHead {
        let mut head = AnswerHead::from_headers(headers);
        head.read_trailer_status(num_trailers, trailer);
        if head.needs_reply_text() {
            head.envoy_reply = body_prefix(ENVOY_REPLY_PREFIX);
        }
        head
    }

    /// Whether the start of the body must be read: only a 503/504 that did
    /// not come from an upstream can be one of Envoy's failure replies.
    pub fn needs_reply_text(&self) -> bool {
        !self.from_upstream && self.envoy_reply.is_none() && self.status.is_some_and(may_be_envoy_failure)
    }

    /// The class of the call.
    pub fn classify(&self) -> ResponseClass {
        let Some(status) = self.status else {
            return ResponseClass::Reset;
        };
        if let Some(failure) = self
            .envoy_reply
            .as_deref()
            .filter(|_| !self.from_upstream)
            .and_then(envoy_failure)
        {
            return failure;
        }
        if self.grpc {
            return match &self.grpc_status {
                Some(value) => ResponseClass::Grpc(GrpcCode::from_status_value(value)),
                None => ResponseClass::GrpcMissingStatus,
            };
        }
        match status {
            100..=199 => ResponseClass::Informational,
            200..=299 => ResponseClass::Success,
            300..=399 => ResponseClass::Redirection,
            400..=499 => ResponseClass::ClientError,
            // Anything else a shadow could send is an error of the shadow's.
            _ => ResponseClass::ServerError,
        }
    }
}

/// The least of [`timeout_slack_ms`].
pub const TIMEOUT_SLACK_MIN_MS: u64 = 50;

/// How long before `timeout_ms` (by the filter's clock) a call that ended
/// without headers may end and still count as timed out: the larger of
/// [`TIMEOUT_SLACK_MIN_MS`] and a tenth of the timeout. Envoy arms a call's
/// timer from its event loop's cached time, so on a busy worker the timer
/// fires early by the filter's clock: measured on a loaded 2-core machine
/// (timeoutMs 1000), such calls ended from 948 ms on, most at 999-1002 ms.
pub fn timeout_slack_ms(timeout_ms: u32) -> u64 {
    (u64::from(timeout_ms) / 10).max(TIMEOUT_SLACK_MIN_MS)
}

/// The class of a call the host reports with no response headers at all
/// (see the module documentation), from the time between the send and the
/// report and the call's `timeoutMs`:
/// - at or past the timeout, less [`timeout_slack_ms`]: `Timeout`, a
///   delivery failure: the shadow began answering and did not finish in
///   time;
/// - earlier: `TooLargeOrReset`: the answer was cut short, by Envoy because
///   it was over `http.async_response_buffer_limit` (measured with a 1 MiB
///   limit: a 20 MiB answer ended 8-11 ms after the send), or by the shadow
///   resetting mid-answer (0-1 ms). Not a delivery failure: the shadow is
///   reachable and answering, and a healthy shadow with big answers must not
///   be backed off.
///
/// A shadow that resets streams before answering is not affected by this:
/// Envoy replies 503 "... reset before headers" for it, which stays `Reset`.
pub fn classify_headerless(elapsed_ms: u64, timeout_ms: u32) -> ResponseClass {
    if elapsed_ms.saturating_add(timeout_slack_ms(timeout_ms)) >= u64::from(timeout_ms) {
        ResponseClass::Timeout
    } else {
        ResponseClass::TooLargeOrReset
    }
}

/// How a copy's call ended, as its host reports it. A host that can tell
/// these apart directly reports them directly; the wasm host tells the last
/// two apart by the time the call took ([`headerless_end`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// The answer's head arrived: classified from it.
    Answered(AnswerHead),
    /// The shadow reset or closed the stream with no answer.
    Reset,
    /// No (whole) answer within `timeoutMs`.
    Timeout,
    /// The answer began and was cut short before `timeoutMs`: over Envoy's
    /// buffer for the call, or reset mid-answer.
    CutShort,
    /// A streamed copy the worker reset: its body went over the budget.
    BodyTooLarge,
    /// A streamed copy the worker reset: it could not be finished.
    Incomplete,
}

impl CallEnd {
    /// The class counted for the call.
    pub fn class(&self) -> ResponseClass {
        match self {
            CallEnd::Answered(head) => head.classify(),
            CallEnd::Reset => ResponseClass::Reset,
            CallEnd::Timeout => ResponseClass::Timeout,
            CallEnd::CutShort => ResponseClass::TooLargeOrReset,
            CallEnd::BodyTooLarge => ResponseClass::BodyTooLarge,
            CallEnd::Incomplete => ResponseClass::Incomplete,
        }
    }

    /// The answer's `:status`, if it had one.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallEnd::Answered(head) => head.status,
            _ => None,
        }
    }
}

/// How a call the wasm host reports with no response headers ended, by
/// [`classify_headerless`].
pub fn headerless_end(elapsed_ms: u64, timeout_ms: u32) -> CallEnd {
    match classify_headerless(elapsed_ms, timeout_ms) {
        ResponseClass::Timeout => CallEnd::Timeout,
        _ => CallEnd::CutShort,
    }
}

/// Statuses whose body is worth reading: only Envoy's failure replies use them.
pub fn may_be_envoy_failure(status: u16) -> bool {
    status == 503 || status == 504
}

/// The delivery failure an Envoy-made reply's text names, if any.
fn envoy_failure(text: &[u8]) -> Option<ResponseClass> {
    if text.starts_with(b"upstream request timeout") {
        Some(ResponseClass::Timeout)
    } else if text.starts_with(b"no healthy upstream") || contains(text, b"connection failure") {
        Some(ResponseClass::ConnectFailure)
    } else if text.starts_with(b"upstream connect error or disconnect/reset before headers") {
        Some(ResponseClass::Reset)
    } else {
        None
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(headers: &[(&str, &str)]) -> AnswerHead {
        AnswerHead::from_headers(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn shadow(status: &str) -> AnswerHead {
        report(&[(":status", status), ("x-envoy-upstream-service-time", "3")])
    }

    fn envoy_reply(status: &str, body: &str) -> AnswerHead {
        let mut r = report(&[(":status", status), ("content-type", "text/plain")]);
        assert!(r.needs_reply_text());
        r.envoy_reply = Some(body.as_bytes().to_vec());
        r
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(shadow("200").classify(), ResponseClass::Success);
        assert_eq!(shadow("302").classify(), ResponseClass::Redirection);
        assert_eq!(shadow("404").classify(), ResponseClass::ClientError);
        assert_eq!(shadow("500").classify(), ResponseClass::ServerError);
        assert_eq!(shadow("503").classify(), ResponseClass::ServerError);
        assert_eq!(shadow("101").classify(), ResponseClass::Informational);
        assert_eq!(shadow("999").classify(), ResponseClass::ServerError);
        assert_eq!(report(&[]).classify(), ResponseClass::Reset);
        assert_eq!(shadow("2x0").classify(), ResponseClass::Reset);
    }

    #[test]
    fn envoy_failure_replies_are_delivery_failures() {
        assert_eq!(
            envoy_reply("504", "upstream request timeout").classify(),
            ResponseClass::Timeout
        );
        assert_eq!(
            envoy_reply("503", "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: delayed connect error: Connection refused").classify(),
            ResponseClass::ConnectFailure
        );
        assert_eq!(
            envoy_reply(
                "503",
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
            )
            .classify(),
            ResponseClass::Reset
        );
        assert_eq!(
            envoy_reply("503", "no healthy upstream").classify(),
            ResponseClass::ConnectFailure
        );
        assert_eq!(
            envoy_reply("503", "the shadow says no").classify(),
            ResponseClass::ServerError
        );
    }

    #[test]
    fn only_replies_envoy_may_have_made_are_read() {
        assert!(!shadow("503").needs_reply_text(), "from an upstream");
        assert!(
            !report(&[(":status", "500")]).needs_reply_text(),
            "not a status Envoy fails with"
        );
        assert!(!report(&[]).needs_reply_text(), "a reset");
        // The shadow's own 503 is its answer, whatever its body says.
        let mut own = shadow("503");
        own.envoy_reply = Some(b"upstream request timeout".to_vec());
        assert_eq!(own.classify(), ResponseClass::ServerError);
    }

    #[test]
    fn grpc_answers_are_classed_by_grpc_status() {
        let trailers_only = report(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "13"),
            ("grpc-message", "boom"),
            ("x-envoy-upstream-service-time", "1"),
        ]);
        assert!(!trailers_only.needs_trailers(0));
        assert_eq!(trailers_only.classify(), ResponseClass::Grpc(GrpcCode::Internal));

        let mut with_body = report(&[
            (":status", "200"),
            ("content-type", "application/grpc+proto"),
            ("x-envoy-upstream-service-time", "1"),
        ]);
        assert!(with_body.needs_trailers(1));
        assert!(!with_body.needs_trailers(0));
        assert_eq!(with_body.classify(), ResponseClass::GrpcMissingStatus);
        with_body.grpc_status = Some(b"0".to_vec());
        assert_eq!(with_body.classify(), ResponseClass::Grpc(GrpcCode::Ok));
        with_body.grpc_status = Some(b"not a number".to_vec());
        assert_eq!(with_body.classify(), ResponseClass::Grpc(GrpcCode::Unknown));

        let not_grpc = report(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("grpc-status", "13"),
        ]);
        assert!(!not_grpc.needs_trailers(1));
        assert_eq!(not_grpc.classify(), ResponseClass::Success);
    }

    #[test]
    fn envoy_replies_to_grpc_calls_stay_delivery_failures() {
        // Envoy answers a gRPC request's failure trailers-only, its text in grpc-message.
        let local = report(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "14"),
            (
                "grpc-message",
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
        ]);
        assert!(!local.needs_reply_text(), "the text is already there");
        assert_eq!(local.classify(), ResponseClass::ConnectFailure);
        let timeout = report(&[
            (":status", "504"),
            ("content-type", "application/grpc"),
            ("grpc-status", "4"),
            ("grpc-message", "upstream request timeout"),
        ]);
        assert_eq!(timeout.classify(), ResponseClass::Timeout);
        // The same text from the shadow itself is the shadow's answer.
        let from_shadow = report(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "14"),
            ("grpc-message", "upstream request timeout"),
            ("x-envoy-upstream-service-time", "9"),
        ]);
        assert_eq!(from_shadow.classify(), ResponseClass::Grpc(GrpcCode::Unavailable));
    }

    #[test]
    fn a_call_without_headers_is_cut_short_unless_its_timeout_had_passed() {
        // Measured in Envoy 1.40 (1 MiB limit, timeoutMs 1000): 20 MiB
        // answers ended after 8-11 ms, mid-answer resets after 0-1 ms,
        // shadows that stalled after their headers at 948-1023 ms.
        for elapsed in [0, 1, 11, 500, 899] {
            assert_eq!(
                classify_headerless(elapsed, 1000),
                ResponseClass::TooLargeOrReset,
                "{elapsed} ms"
            );
        }
        for elapsed in [900, 948, 1000, 1002, 5000] {
            assert_eq!(
                classify_headerless(elapsed, 1000),
                ResponseClass::Timeout,
                "{elapsed} ms"
            );
        }
        // The slack is a tenth of the timeout, and at least 50 ms.
        assert_eq!(timeout_slack_ms(1000), 100);
        assert_eq!(timeout_slack_ms(300_000), 30_000);
        assert_eq!(timeout_slack_ms(200), TIMEOUT_SLACK_MIN_MS);
        assert_eq!(classify_headerless(149, 200), ResponseClass::TooLargeOrReset);
        assert_eq!(classify_headerless(150, 200), ResponseClass::Timeout);
        // A timeout within the slack: every headerless ending is a timeout.
        assert_eq!(classify_headerless(0, 50), ResponseClass::Timeout);
        assert_eq!(classify_headerless(u64::MAX, 1000), ResponseClass::Timeout);
        assert!(!classify_headerless(3, 1000).is_delivery_failure());
        assert!(classify_headerless(1000, 1000).is_delivery_failure());
    }

    #[test]
    fn a_call_answer_reads_only_what_its_head_leaves_open() {
        let pairs = |h: &[(&'static str, &'static str)]| -> Vec<(&'static [u8], &'static [u8])> {
            h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect()
        };
        let never = |what: &str| -> Option<Vec<u8>> { panic!("read {what}") };
        let ok = AnswerHead::read_call_answer(
            pairs(&[(":status", "200"), ("x-envoy-upstream-service-time", "1")]),
            0,
            never,
            |_| panic!("read the body"),
        );
        assert_eq!(CallEnd::Answered(ok).class(), ResponseClass::Success);
        let grpc = AnswerHead::read_call_answer(
            pairs(&[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("x-envoy-upstream-service-time", "1"),
            ]),
            1,
            |name| (name == "grpc-status").then(|| b"5".to_vec()),
            |_| panic!("read the body"),
        );
        assert_eq!(grpc.classify(), ResponseClass::Grpc(GrpcCode::NotFound));
        let timeout = AnswerHead::read_call_answer(pairs(&[(":status", "504")]), 0, never, |max| {
            (max == ENVOY_REPLY_PREFIX).then(|| b"upstream request timeout".to_vec())
        });
        assert_eq!(timeout.classify(), ResponseClass::Timeout);
        assert_eq!(headerless_end(1000, 1000), CallEnd::Timeout);
        assert_eq!(headerless_end(10, 1000).class(), ResponseClass::TooLargeOrReset);
        assert_eq!(CallEnd::Reset.status(), None);
    }

    #[test]
    fn envoy_failure_statuses() {
        assert!(may_be_envoy_failure(503) && may_be_envoy_failure(504) && !may_be_envoy_failure(500));
    }
}
