//! gRPC on the wire, as far as telling how a call ended: a gRPC answer is
//! HTTP 200 whatever happened, and its outcome is the `grpc-status` in the
//! trailers (or in the headers of a trailers-only answer).

/// The 17 gRPC status codes, in code order (grpc/doc/statuscodes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl GrpcCode {
    /// Every code, indexed by its number.
    pub const ALL: [GrpcCode; 17] = [
        GrpcCode::Ok,
        GrpcCode::Cancelled,
        GrpcCode::Unknown,
        GrpcCode::InvalidArgument,
        GrpcCode::DeadlineExceeded,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unavailable,
        GrpcCode::DataLoss,
        GrpcCode::Unauthenticated,
    ];

    /// The code's name in snake case, as gRPC spells it in lower case.
    pub fn name(self) -> &'static str {
        match self {
            GrpcCode::Ok => "ok",
            GrpcCode::Cancelled => "cancelled",
            GrpcCode::Unknown => "unknown",
            GrpcCode::InvalidArgument => "invalid_argument",
            GrpcCode::DeadlineExceeded => "deadline_exceeded",
            GrpcCode::NotFound => "not_found",
            GrpcCode::AlreadyExists => "already_exists",
            GrpcCode::PermissionDenied => "permission_denied",
            GrpcCode::ResourceExhausted => "resource_exhausted",
            GrpcCode::FailedPrecondition => "failed_precondition",
            GrpcCode::Aborted => "aborted",
            GrpcCode::OutOfRange => "out_of_range",
            GrpcCode::Unimplemented => "unimplemented",
            GrpcCode::Internal => "internal",
            GrpcCode::Unavailable => "unavailable",
            GrpcCode::DataLoss => "data_loss",
            GrpcCode::Unauthenticated => "unauthenticated",
        }
    }

    /// A `grpc-status` value. A value that is not one of the 17 codes (out
    /// of range, or not a number at all) is `Unknown`: the status of a call
    /// whose outcome cannot be told, which is what gRPC libraries report
    /// for codes they do not know.
    pub fn from_status_value(value: &[u8]) -> GrpcCode {
        let digits = value.trim_ascii();
        if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
            return GrpcCode::Unknown;
        }
        let code = digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        GrpcCode::ALL.get(code).copied().unwrap_or(GrpcCode::Unknown)
    }
}

/// Whether a `content-type` is gRPC's: `application/grpc`, optionally with a
/// message format (`application/grpc+proto`) or parameters. gRPC-Web
/// (`application/grpc-web…`) is not: its trailers travel inside the body.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let value = value.trim_ascii();
    if !value
        .get(..GRPC.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(GRPC))
    {
        return false;
    }
    matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_to_itself() {
        for (number, code) in GrpcCode::ALL.iter().enumerate() {
            assert_eq!(GrpcCode::from_status_value(number.to_string().as_bytes()), *code);
        }
        assert_eq!(GrpcCode::from_status_value(b" 13 "), GrpcCode::Internal);
        assert_eq!(GrpcCode::Unauthenticated.name(), "unauthenticated");
        assert_eq!(GrpcCode::InvalidArgument.name(), "invalid_argument");
    }

    #[test]
    fn unknowable_statuses_are_unknown() {
        for value in [&b"17"[..], b"99", b"100", b"-1", b"", b"ok", b"1x", b"\xff", b"013"] {
            assert_eq!(GrpcCode::from_status_value(value), GrpcCode::Unknown, "{value:?}");
        }
    }

    #[test]
    fn grpc_content_types() {
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"application/grpc+proto"));
        assert!(is_grpc_content_type(b"application/grpc+json"));
        assert!(is_grpc_content_type(b"Application/GRPC; charset=utf-8"));
        assert!(!is_grpc_content_type(b"application/grpc-web"));
        assert!(!is_grpc_content_type(b"application/grpc-web+proto"));
        assert!(!is_grpc_content_type(b"application/grpcx"));
        assert!(!is_grpc_content_type(b"application/json"));
        assert!(!is_grpc_content_type(b""));
    }
}
