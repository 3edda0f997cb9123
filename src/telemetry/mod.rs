//! What the filter reports: the metric names, their labels, and the label
//! values for skip reasons and response classes. Pure: the proxy layer only
//! defines and increments what is named here.

pub mod names;

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
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::BodyTooLarge,
        SkipReason::InFlightLimit,
        SkipReason::DispatchFailed,
        SkipReason::Upgrade,
        SkipReason::Backoff,
        SkipReason::Incomplete,
        SkipReason::HostError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::BodyTooLarge => "body_too_large",
            SkipReason::InFlightLimit => "in_flight_limit",
            SkipReason::DispatchFailed => "dispatch_failed",
            SkipReason::Upgrade => "upgrade",
            SkipReason::Backoff => "backoff",
            SkipReason::Incomplete => "incomplete",
            SkipReason::HostError => "host_error",
        }
    }
}

/// How a mirror call ended. The shadow's own answers are `1xx`..`5xx`; the
/// rest are Envoy's verdicts about delivery, kept apart so a shadow's 503
/// is not confused with "could not reach the shadow".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
    /// The shadow reset or closed the stream (or Envoy did, mid-response).
    Reset,
    /// No answer within `timeoutMs`.
    Timeout,
    /// No connection: refused, unreachable, or no healthy host.
    ConnectFailure,
}

impl ResponseClass {
    pub const ALL: [ResponseClass; 8] = [
        ResponseClass::Informational,
        ResponseClass::Success,
        ResponseClass::Redirection,
        ResponseClass::ClientError,
        ResponseClass::ServerError,
        ResponseClass::Reset,
        ResponseClass::Timeout,
        ResponseClass::ConnectFailure,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ResponseClass::Informational => "1xx",
            ResponseClass::Success => "2xx",
            ResponseClass::Redirection => "3xx",
            ResponseClass::ClientError => "4xx",
            ResponseClass::ServerError => "5xx",
            ResponseClass::Reset => "reset",
            ResponseClass::Timeout => "timeout",
            ResponseClass::ConnectFailure => "connect_failure",
        }
    }

    /// The shadow answered (whatever it said): its latency is meaningful.
    pub fn is_answer(self) -> bool {
        !self.is_delivery_failure()
    }

    /// The copy did not get an answer from the shadow: feeds the back-off.
    pub fn is_delivery_failure(self) -> bool {
        matches!(
            self,
            ResponseClass::Reset | ResponseClass::Timeout | ResponseClass::ConnectFailure
        )
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
        let mut classes: Vec<_> = ResponseClass::ALL.iter().map(|c| c.label()).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), ResponseClass::ALL.len());
    }

    #[test]
    fn only_delivery_failures_feed_the_backoff() {
        assert!(ResponseClass::Timeout.is_delivery_failure());
        assert!(ResponseClass::Reset.is_delivery_failure());
        assert!(ResponseClass::ConnectFailure.is_delivery_failure());
        assert!(!ResponseClass::ServerError.is_delivery_failure());
        assert!(ResponseClass::ServerError.is_answer());
    }
}
