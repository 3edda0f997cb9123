//! Classifying how a mirror call ended.
//!
//! Envoy reports several delivery failures as responses it made up itself:
//! a timeout as a 504 `upstream request timeout`, a refused connection or a
//! reset before headers as a 503 `upstream connect error or disconnect/reset
//! before headers. reset reason: ...`, a cluster without healthy hosts as a
//! 503 `no healthy upstream`; a reset after headers arrives with no headers at
//! all. Taking the class from `:status` alone would count a dead shadow as a
//! shadow answering 5xx, so Envoy's own replies are told apart by their body.

use crate::telemetry::ResponseClass;

/// Statuses whose body is worth reading: only Envoy's failure replies use them.
pub fn may_be_envoy_failure(status: u16) -> bool {
    status == 503 || status == 504
}

/// The class of a finished call. `status` is `None` when the call failed
/// with no response headers (a reset). `envoy_reply_body` is the start of the
/// body of a 503/504 that did not come from the shadow (see the proxy layer),
/// or `None`.
pub fn classify(status: Option<u16>, envoy_reply_body: Option<&[u8]>) -> ResponseClass {
    let Some(status) = status else {
        return ResponseClass::Reset;
    };
    if let Some(body) = envoy_reply_body {
        if body.starts_with(b"upstream request timeout") {
            return ResponseClass::Timeout;
        }
        if body.starts_with(b"no healthy upstream") || contains(body, b"connection failure") {
            return ResponseClass::ConnectFailure;
        }
        if body.starts_with(b"upstream connect error or disconnect/reset before headers") {
            return ResponseClass::Reset;
        }
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

/// Parses a `:status` value.
pub fn parse_status(value: &[u8]) -> Option<u16> {
    if value.len() != 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(classify(Some(200), None), ResponseClass::Success);
        assert_eq!(classify(Some(302), None), ResponseClass::Redirection);
        assert_eq!(classify(Some(404), None), ResponseClass::ClientError);
        assert_eq!(classify(Some(500), None), ResponseClass::ServerError);
        assert_eq!(classify(Some(503), None), ResponseClass::ServerError);
        assert_eq!(classify(Some(101), None), ResponseClass::Informational);
        assert_eq!(classify(Some(999), None), ResponseClass::ServerError);
        assert_eq!(classify(None, None), ResponseClass::Reset);
    }

    #[test]
    fn envoy_failure_replies_are_delivery_failures() {
        assert_eq!(classify(Some(504), Some(b"upstream request timeout")), ResponseClass::Timeout);
        assert_eq!(
            classify(
                Some(503),
                Some(b"upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: delayed connect error: Connection refused")
            ),
            ResponseClass::ConnectFailure
        );
        assert_eq!(
            classify(
                Some(503),
                Some(b"upstream connect error or disconnect/reset before headers. reset reason: connection termination")
            ),
            ResponseClass::Reset
        );
        assert_eq!(classify(Some(503), Some(b"no healthy upstream")), ResponseClass::ConnectFailure);
        assert_eq!(classify(Some(503), Some(b"the shadow says no")), ResponseClass::ServerError);
    }

    #[test]
    fn status_parsing() {
        assert_eq!(parse_status(b"200"), Some(200));
        assert_eq!(parse_status(b"20"), None);
        assert_eq!(parse_status(b"2000"), None);
        assert_eq!(parse_status(b"2x0"), None);
        assert!(may_be_envoy_failure(503) && may_be_envoy_failure(504) && !may_be_envoy_failure(500));
    }
}
