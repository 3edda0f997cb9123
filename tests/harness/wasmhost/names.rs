//! The filter's metric names, written out here independently of the crate's
//! `telemetry::names`: a test that used the crate's own function would pass
//! whatever the names became. These are what dashboards and Envoy's
//! `stats_tags` rules depend on (see the README).

pub const SKIP_REASONS: [&str; 10] = [
    "body_too_large",
    "in_flight_limit",
    "dispatch_failed",
    "upgrade",
    "backoff",
    "incomplete",
    "host_error",
    "rate_limited",
    "rate_unavailable",
    "loop",
];

pub const RESPONSE_CLASSES: [&str; 27] = [
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "grpc_ok",
    "grpc_cancelled",
    "grpc_unknown",
    "grpc_invalid_argument",
    "grpc_deadline_exceeded",
    "grpc_not_found",
    "grpc_already_exists",
    "grpc_permission_denied",
    "grpc_resource_exhausted",
    "grpc_failed_precondition",
    "grpc_aborted",
    "grpc_out_of_range",
    "grpc_unimplemented",
    "grpc_internal",
    "grpc_unavailable",
    "grpc_data_loss",
    "grpc_unauthenticated",
    "grpc_missing_status",
    "reset",
    "timeout",
    "connect_failure",
    "too_large_or_reset",
];

pub fn requests(route: &str, destination: &str) -> String {
    format!("route=.={route};.;destination=.={destination};.;vrata_mirror_requests_total")
}

pub fn skipped(route: &str, destination: &str, reason: &str) -> String {
    assert!(SKIP_REASONS.contains(&reason), "unknown skip reason {reason:?}");
    format!("route=.={route};.;destination=.={destination};.;reason=.={reason};.;vrata_mirror_skipped_total")
}

pub fn responses(route: &str, destination: &str, class: &str) -> String {
    assert!(RESPONSE_CLASSES.contains(&class), "unknown response class {class:?}");
    format!("route=.={route};.;destination=.={destination};.;class=.={class};.;vrata_mirror_responses_total")
}

pub fn latency(route: &str, destination: &str) -> String {
    format!("route=.={route};.;destination=.={destination};.;vrata_mirror_response_time_ms")
}

pub fn compared(route: &str, destination: &str, result: &str) -> String {
    assert!(
        vrata_mirror_testkit::compare::RESULTS.contains(&result),
        "unknown compare result {result:?}"
    );
    format!("route=.={route};.;destination=.={destination};.;result=.={result};.;vrata_mirror_compare_total")
}

pub fn primary_latency(route: &str, destination: &str) -> String {
    format!("route=.={route};.;destination=.={destination};.;vrata_mirror_primary_response_time_ms")
}

/// With `compare.secondary`: requests counted in an endpoint's noise table.
pub fn noise_requests(route: &str, destination: &str, method: &str) -> String {
    format!("route=.={route};.;destination=.={destination};.;method=.={method};.;vrata_mirror_noise_requests_total")
}

/// With `compare.secondary`: requests where `field` differed, `kind` raw or noise.
pub fn field_differences(route: &str, destination: &str, method: &str, field: &str, kind: &str) -> String {
    assert!(["raw", "noise"].contains(&kind), "unknown kind {kind:?}");
    format!(
        "route=.={route};.;destination=.={destination};.;method=.={method};.;field=.={field};.;kind=.={kind};.;vrata_mirror_field_differences_total"
    )
}

/// With `compare.secondary`: compared requests whose noise counts were skipped.
pub fn noise_unavailable(route: &str, destination: &str) -> String {
    format!("route=.={route};.;destination=.={destination};.;vrata_mirror_noise_unavailable_total")
}
