//! What the filter reports: the metric names, their labels, and the label
//! values for skip reasons and response classes; the series of one (route,
//! destination) pair and the [`series::Telemetry`] trait a host implements
//! to count them. Pure: a host only defines and increments what is named here.

pub mod catalogue;
pub mod names;
pub mod series;

use crate::http::grpc::GrpcCode;

/// Why a request that was in the sample was not mirrored. Every sampled
/// request that is not sent lands in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The body is larger than `maxBodyBytes` (declared or as it streamed).
    BodyTooLarge,
    /// `maxInFlight` copies to this destination were already outstanding.
    InFlightLimit,
    /// Envoy refused the call: unknown cluster, missing header, or the
    /// shadow cluster's circuit breaker is full.
    DispatchFailed,
    /// A WebSocket/HTTP upgrade or CONNECT stream.
    Upgrade,
    /// The destination failed repeatedly and is being left alone for a while.
    Backoff,
    /// The primary request ended (reset, aborted) before its body was complete.
    Incomplete,
    /// The host refused a call the copy needed (its headers or body).
    HostError,
    /// `maxRequestsPerSecond`: the mirror's token bucket was empty.
    RateLimited,
    /// `maxRequestsPerSecond`: the bucket in shared data could not be read
    /// or updated (the host refused, or every bounded CAS retry lost a race
    /// with another worker). Skipped rather than sent unchecked.
    RateUnavailable,
    /// The request carries the loop marker (`loopMarker`): it is a copy
    /// itself, and a copy is never copied again.
    Loop,
}

impl SkipReason {
    pub const ALL: [SkipReason; 10] = [
        SkipReason::BodyTooLarge,
        SkipReason::InFlightLimit,
        SkipReason::DispatchFailed,
        SkipReason::Upgrade,
        SkipReason::Backoff,
        SkipReason::Incomplete,
        SkipReason::HostError,
        SkipReason::RateLimited,
        SkipReason::RateUnavailable,
        SkipReason::Loop,
    ];

    /// A dense index in `0..ALL.len()`, in the order of [`SkipReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::BodyTooLarge => "body_too_large",
            SkipReason::InFlightLimit => "in_flight_limit",
            SkipReason::DispatchFailed => "dispatch_failed",
            SkipReason::Upgrade => "upgrade",
            SkipReason::Backoff => "backoff",
            SkipReason::Incomplete => "incomplete",
            SkipReason::HostError => "host_error",
            SkipReason::RateLimited => "rate_limited",
            SkipReason::RateUnavailable => "rate_unavailable",
            SkipReason::Loop => "loop",
        }
    }
}

/// How a mirror call ended. The shadow's own answers are `1xx`..`5xx`, or
/// for a gRPC answer its `grpc-status`; the rest are Envoy's verdicts about
/// delivery, kept apart so a shadow's 503 is not confused with "could not
/// reach the shadow".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
    /// A gRPC answer (`content-type: application/grpc…`), by its `grpc-status`.
    Grpc(GrpcCode),
    /// A gRPC answer without any `grpc-status`.
    GrpcMissingStatus,
    /// The shadow reset or closed the stream before answering (Envoy's 503
    /// "upstream connect error or disconnect/reset before headers").
    Reset,
    /// No answer within `timeoutMs`.
    Timeout,
    /// No connection: refused, unreachable, or no healthy host.
    ConnectFailure,
    /// The shadow's answer began (Envoy had its headers) and ended early,
    /// before `timeoutMs`: its body went over Envoy's buffer for dispatched
    /// calls (`http.async_response_buffer_limit`), or the shadow reset the
    /// stream mid-answer. Envoy reports both alike; see
    /// `dispatch::outcome::classify_headerless`. Not a delivery failure.
    TooLargeOrReset,
    /// A streamed copy (the native host), already sent, whose body went
    /// over its worker's budget for bytes in flight (`maxBodyBytes`, see
    /// [`crate::mirror::body::Carriage`]): the filter reset it. The wasm
    /// host buffers copies and skips such a body before sending it
    /// ([`SkipReason::BodyTooLarge`]). Not a delivery failure.
    BodyTooLarge,
    /// A streamed copy, already sent, that could not be finished: its
    /// request ended before its body did (a client abort or reset), or the
    /// host refused its body. The filter reset it. The wasm host skips
    /// such a copy ([`SkipReason::Incomplete`]). Not a delivery failure.
    Incomplete,
}

impl ResponseClass {
    /// How many classes there are.
    pub const COUNT: usize = 5 + GrpcCode::ALL.len() + 7;

    /// A dense index in `0..COUNT`, in the order of [`ResponseClass::all`],
    /// for per-class tables.
    pub fn index(self) -> usize {
        const GRPC: usize = 5;
        const AFTER_GRPC: usize = GRPC + GrpcCode::ALL.len();
        match self {
            ResponseClass::Informational => 0,
            ResponseClass::Success => 1,
            ResponseClass::Redirection => 2,
            ResponseClass::ClientError => 3,
            ResponseClass::ServerError => 4,
            ResponseClass::Grpc(code) => GRPC + code as usize,
            ResponseClass::GrpcMissingStatus => AFTER_GRPC,
            ResponseClass::Reset => AFTER_GRPC + 1,
            ResponseClass::Timeout => AFTER_GRPC + 2,
            ResponseClass::ConnectFailure => AFTER_GRPC + 3,
            ResponseClass::TooLargeOrReset => AFTER_GRPC + 4,
            ResponseClass::BodyTooLarge => AFTER_GRPC + 5,
            ResponseClass::Incomplete => AFTER_GRPC + 6,
        }
    }

    /// Every class, in the order the README lists them.
    pub fn all() -> impl Iterator<Item = ResponseClass> {
        const HTTP: [ResponseClass; 5] = [
            ResponseClass::Informational,
            ResponseClass::Success,
            ResponseClass::Redirection,
            ResponseClass::ClientError,
            ResponseClass::ServerError,
        ];
        const REST: [ResponseClass; 7] = [
            ResponseClass::GrpcMissingStatus,
            ResponseClass::Reset,
            ResponseClass::Timeout,
            ResponseClass::ConnectFailure,
            ResponseClass::TooLargeOrReset,
            ResponseClass::BodyTooLarge,
            ResponseClass::Incomplete,
        ];
        HTTP.into_iter()
            .chain(GrpcCode::ALL.into_iter().map(ResponseClass::Grpc))
            .chain(REST)
    }

    pub fn label(self) -> &'static str {
        match self {
            ResponseClass::Informational => "1xx",
            ResponseClass::Success => "2xx",
            ResponseClass::Redirection => "3xx",
            ResponseClass::ClientError => "4xx",
            ResponseClass::ServerError => "5xx",
            ResponseClass::Grpc(code) => grpc_label(code),
            ResponseClass::GrpcMissingStatus => "grpc_missing_status",
            ResponseClass::Reset => "reset",
            ResponseClass::Timeout => "timeout",
            ResponseClass::ConnectFailure => "connect_failure",
            ResponseClass::TooLargeOrReset => "too_large_or_reset",
            ResponseClass::BodyTooLarge => "body_too_large",
            ResponseClass::Incomplete => "incomplete",
        }
    }

    /// The shadow answered (whatever it said): its latency is meaningful.
    /// An answer cut short, or a copy the filter cut, is neither a whole
    /// answer nor a delivery failure.
    pub fn is_answer(self) -> bool {
        !self.is_delivery_failure()
            && !matches!(
                self,
                ResponseClass::TooLargeOrReset | ResponseClass::BodyTooLarge | ResponseClass::Incomplete
            )
    }

    /// The copy did not get an answer from the shadow: feeds the back-off.
    /// A gRPC error is an answer, like an HTTP 5xx.
    pub fn is_delivery_failure(self) -> bool {
        matches!(
            self,
            ResponseClass::Reset | ResponseClass::Timeout | ResponseClass::ConnectFailure
        )
    }
}

/// `grpc_` and the code's name: static strings, so that a label costs no
/// allocation on the response path.
fn grpc_label(code: GrpcCode) -> &'static str {
    match code {
        GrpcCode::Ok => "grpc_ok",
        GrpcCode::Cancelled => "grpc_cancelled",
        GrpcCode::Unknown => "grpc_unknown",
        GrpcCode::InvalidArgument => "grpc_invalid_argument",
        GrpcCode::DeadlineExceeded => "grpc_deadline_exceeded",
        GrpcCode::NotFound => "grpc_not_found",
        GrpcCode::AlreadyExists => "grpc_already_exists",
        GrpcCode::PermissionDenied => "grpc_permission_denied",
        GrpcCode::ResourceExhausted => "grpc_resource_exhausted",
        GrpcCode::FailedPrecondition => "grpc_failed_precondition",
        GrpcCode::Aborted => "grpc_aborted",
        GrpcCode::OutOfRange => "grpc_out_of_range",
        GrpcCode::Unimplemented => "grpc_unimplemented",
        GrpcCode::Internal => "grpc_internal",
        GrpcCode::Unavailable => "grpc_unavailable",
        GrpcCode::DataLoss => "grpc_data_loss",
        GrpcCode::Unauthenticated => "grpc_unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct() {
        let mut skip: Vec<_> = SkipReason::ALL.iter().map(|r| r.label()).collect();
        skip.sort_unstable();
        skip.dedup();
        assert_eq!(skip.len(), SkipReason::ALL.len());
        for (i, reason) in SkipReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
        }
        let mut classes: Vec<_> = ResponseClass::all().map(|c| c.label()).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), ResponseClass::COUNT);
        for (i, class) in ResponseClass::all().enumerate() {
            assert_eq!(class.index(), i, "{class:?}");
        }
    }

    #[test]
    fn only_delivery_failures_feed_the_backoff() {
        assert!(ResponseClass::Timeout.is_delivery_failure());
        assert!(ResponseClass::Reset.is_delivery_failure());
        assert!(ResponseClass::ConnectFailure.is_delivery_failure());
        assert!(!ResponseClass::ServerError.is_delivery_failure());
        assert!(ResponseClass::ServerError.is_answer());
        assert!(ResponseClass::Grpc(GrpcCode::Unavailable).is_answer());
        assert!(ResponseClass::GrpcMissingStatus.is_answer());
        // The shadow answered, but not all of it reached the filter: no
        // back-off, and no latency.
        assert!(!ResponseClass::TooLargeOrReset.is_delivery_failure());
        assert!(!ResponseClass::TooLargeOrReset.is_answer());
    }

    #[test]
    fn grpc_labels_are_the_code_names() {
        for code in GrpcCode::ALL {
            assert_eq!(ResponseClass::Grpc(code).label(), format!("grpc_{}", code.name()));
        }
    }
}
