//! Canary comparison: the shadow's answer against the primary's, for a
//! mirror with `compare` (issue 10). Pure: the proxy layer gathers both
//! answers and reports what [`compare`] says.
//!
//! - [`compare`]: one verdict per compared pair, `match`, `status_mismatch`,
//!   `body_mismatch` or `not_compared`, with what differed;
//! - [`json`]: the structural JSON comparison behind `"body": "json"`;
//! - [`fields`]: every differing field path of a pair, indices dropped;
//! - [`noise`]: noise cancellation against a secondary (issue 23): per
//!   endpoint counts in shared data, Diffy's rule, `noise` and `learning`;
//! - [`limiter`]: at most `logMismatches` mismatch lines per minute per worker;
//! - [`line`](mod@line): the mismatch log line, one line whatever the request carried.
//!
//! What is compared, in this order:
//! 1. An answer on each side. A side that got none (reset, timeout, no
//!    connection) is `not_compared`: delivery failures are already counted
//!    by class, and a late shadow says nothing about its answer.
//! 2. The status: the HTTP `:status` code, or for a gRPC answer its
//!    `grpc-status` (so two HTTP 200s carrying `OK` and `NOT_FOUND` differ,
//!    and a gRPC answer never equals a plain HTTP one).
//!    Different statuses are a `status_mismatch`, whatever the bodies are.
//! 3. With `"body": "none"`, equal statuses are a `match`.
//! 4. Otherwise both bodies must be at hand and at most `maxBodyBytes`
//!    long, else `not_compared` (a differing status is still reported, by
//!    step 2).
//! 5. Bodies equal byte for byte are a `match`, without parsing.
//! 6. `"exact"`: else a `body_mismatch` at the first differing byte.
//!    `"json"`: both bodies parsed and compared as JSON values (see
//!    [`json`]); if either is not JSON (or nests deeper than 128, or
//!    repeats a key), they are compared byte for byte instead.
//! 7. With `secondary` (see [`noise`]), a `body_mismatch` is then judged
//!    field by field: the primary's body is compared with the candidate's
//!    and the secondary's ([`field_differences`]), both counted in the
//!    endpoint's shared table ([`noise::record`]), and the verdict becomes
//!    `body_mismatch`, `noise` or `learning`. Statuses are compared as
//!    before: a differing status is a `status_mismatch`, never noise.

pub mod fields;
pub mod json;
pub mod limiter;
pub mod line;
pub mod noise;

use crate::config::{BodyComparison, ComparePolicy};
use crate::http::grpc::GrpcCode;
use crate::telemetry::ResponseClass;
use std::fmt;

pub use fields::{field_differences, Field, FieldDiffs};
pub use json::{JsonComparison, JsonDifference, JsonDifferenceKind};
pub use limiter::LogLimiter;
pub use line::MismatchLine;

/// What is compared of an answer's head: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// An HTTP answer's `:status`.
    Http(u16),
    /// A gRPC answer's `grpc-status`; `None` when it carried none.
    Grpc(Option<GrpcCode>),
    /// No (whole) answer: the class is `Reset`, `Timeout`, `ConnectFailure`
    /// or `TooLargeOrReset` (an answer Envoy cut off at its buffer limit, or
    /// the shadow reset mid-answer: there is nothing whole to compare), or
    /// `BodyTooLarge` / `Incomplete` (a streamed copy the filter cut).
    NoAnswer(ResponseClass),
}

impl Status {
    /// The status of an answer from its `:status` (if any) and its class as
    /// `dispatch::outcome` tells it: gRPC classes give the gRPC status,
    /// delivery failures (and a missing `:status`) give no answer.
    pub fn from_class(http_status: Option<u16>, class: ResponseClass) -> Status {
        match class {
            ResponseClass::Grpc(code) => Status::Grpc(Some(code)),
            ResponseClass::GrpcMissingStatus => Status::Grpc(None),
            ResponseClass::Reset
            | ResponseClass::Timeout
            | ResponseClass::ConnectFailure
            | ResponseClass::TooLargeOrReset
            | ResponseClass::BodyTooLarge
            | ResponseClass::Incomplete => Status::NoAnswer(class),
            ResponseClass::Informational
            | ResponseClass::Success
            | ResponseClass::Redirection
            | ResponseClass::ClientError
            | ResponseClass::ServerError => match http_status {
                Some(status) => Status::Http(status),
                None => Status::NoAnswer(ResponseClass::Reset),
            },
        }
    }

    /// Whether this is an answer (not a delivery failure).
    pub fn is_answer(self) -> bool {
        !matches!(self, Status::NoAnswer(_))
    }
}

/// As the log line shows it: `200`, `grpc_not_found`, `grpc_missing_status`, `timeout`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Status::Http(code) => write!(f, "{code}"),
            Status::Grpc(Some(code)) => f.write_str(ResponseClass::Grpc(code).label()),
            Status::Grpc(None) => f.write_str(ResponseClass::GrpcMissingStatus.label()),
            Status::NoAnswer(class) => f.write_str(class.label()),
        }
    }
}

/// An answer's body as far as the proxy kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// The whole body. Longer than `maxBodyBytes` counts as [`Body::TooLarge`].
    Bytes(&'a [u8]),
    /// Longer than `maxBodyBytes` (declared, or as it streamed): not kept.
    TooLarge,
    /// Not kept for another reason (the host refused it, or it was not
    /// asked for because `body` is `"none"`).
    Unavailable,
}

/// One side's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed<'a> {
    pub status: Status,
    pub body: Body<'a>,
}

/// Which answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Primary,
    Shadow,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Shadow => "shadow",
        }
    }
}

/// The verdict alone, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Match,
    StatusMismatch,
    BodyMismatch,
    NotCompared,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Match,
        Verdict::StatusMismatch,
        Verdict::BodyMismatch,
        Verdict::NotCompared,
    ];

    /// A dense index in `0..ALL.len()`, in the order of [`Verdict::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Match => "match",
            Verdict::StatusMismatch => "status_mismatch",
            Verdict::BodyMismatch => "body_mismatch",
            Verdict::NotCompared => "not_compared",
        }
    }
}

/// How one copy sent with `compare` ended: the `result` label of
/// `vrata_mirror_compare_total`. Each such copy ends in exactly one.
/// [`Verdict`] is what [`compare`] decides once both sides answered; the
/// proxy decides the others ([`judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareResult {
    Match,
    StatusMismatch,
    BodyMismatch,
    /// The copy got no answer: timeout, connect failure or reset.
    ShadowFailed,
    /// The primary ended without a complete response (a client abort).
    PrimaryIncomplete,
    /// A body over `maxBodyBytes`, or not at hand (see [`NotCompared`]).
    NotCompared,
    /// The worker's pairing table was full when the copy was sent: the copy
    /// went out, its answer was not compared.
    Overflow,
    /// With a secondary: the bodies differ, but only in fields that differ
    /// as much between the primary and the secondary (see [`noise`]).
    Noise,
    /// With a secondary: the bodies differ, and the endpoint has not yet
    /// seen `minRequests` requests to tell noise from real differences.
    Learning,
}

impl CompareResult {
    pub const ALL: [CompareResult; 9] = [
        CompareResult::Match,
        CompareResult::StatusMismatch,
        CompareResult::BodyMismatch,
        CompareResult::ShadowFailed,
        CompareResult::PrimaryIncomplete,
        CompareResult::NotCompared,
        CompareResult::Overflow,
        CompareResult::Noise,
        CompareResult::Learning,
    ];

    /// A dense index in `0..ALL.len()`, in the order of [`CompareResult::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            CompareResult::Match => "match",
            CompareResult::StatusMismatch => "status_mismatch",
            CompareResult::BodyMismatch => "body_mismatch",
            CompareResult::ShadowFailed => "shadow_failed",
            CompareResult::PrimaryIncomplete => "primary_incomplete",
            CompareResult::NotCompared => "not_compared",
            CompareResult::Overflow => "overflow",
            CompareResult::Noise => "noise",
            CompareResult::Learning => "learning",
        }
    }
}

impl From<Verdict> for CompareResult {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Match => CompareResult::Match,
            Verdict::StatusMismatch => CompareResult::StatusMismatch,
            Verdict::BodyMismatch => CompareResult::BodyMismatch,
            Verdict::NotCompared => CompareResult::NotCompared,
        }
    }
}

/// The result of one copy once both sides ended: `primary` is `None` when
/// the primary ended without a complete response. In this order:
/// 1. the shadow got no answer (timeout, connect failure, reset):
///    `shadow_failed`, whatever the primary did;
/// 2. the primary is incomplete: `primary_incomplete`;
/// 3. else what [`compare`] says (an answer Envoy cut off at its buffer
///    limit, `too_large_or_reset`, is `not_compared`). The [`Outcome`] is
///    given when [`compare`] ran.
pub fn judge(
    primary: Option<Observed<'_>>,
    shadow: Observed<'_>,
    policy: &ComparePolicy,
) -> (CompareResult, Option<Outcome>) {
    if let Status::NoAnswer(class) = shadow.status {
        if class.is_delivery_failure() {
            return (CompareResult::ShadowFailed, None);
        }
    }
    let Some(primary) = primary else {
        return (CompareResult::PrimaryIncomplete, None);
    };
    let outcome = compare(primary, shadow, policy);
    (outcome.verdict().into(), Some(outcome))
}

/// The result of comparing one pair of answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Same status, and same body as far as the policy compares bodies.
    Match,
    /// Different statuses (both are in the log line).
    StatusMismatch,
    /// Same status, different bodies: where.
    BodyMismatch(BodyDifference),
    /// No verdict: why.
    NotCompared(NotCompared),
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Match => Verdict::Match,
            Outcome::StatusMismatch => Verdict::StatusMismatch,
            Outcome::BodyMismatch(_) => Verdict::BodyMismatch,
            Outcome::NotCompared(_) => Verdict::NotCompared,
        }
    }

    /// `match`, `status_mismatch`, `body_mismatch` or `not_compared`.
    pub fn label(&self) -> &'static str {
        self.verdict().label()
    }

    /// Whether this is a line for the mismatch log.
    pub fn is_mismatch(&self) -> bool {
        matches!(self, Outcome::StatusMismatch | Outcome::BodyMismatch(_))
    }
}

/// Where two bodies differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDifference {
    /// Both are JSON: the first differing path.
    Json(JsonDifference),
    /// Compared byte for byte (`"exact"`, or a body that is not JSON).
    Bytes {
        /// The first differing byte; the shorter length when one body is
        /// a prefix of the other.
        offset: usize,
        primary_len: usize,
        shadow_len: usize,
    },
}

/// Why a pair was not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCompared {
    /// This side got no answer.
    NoAnswer(Side),
    /// This side's body is over `maxBodyBytes`.
    BodyTooLarge(Side),
    /// This side's body was not kept.
    BodyUnavailable(Side),
}

/// Compares the shadow's answer with the primary's under `policy`; see the
/// module documentation for the order of the checks.
pub fn compare(primary: Observed<'_>, shadow: Observed<'_>, policy: &ComparePolicy) -> Outcome {
    if !primary.status.is_answer() {
        return Outcome::NotCompared(NotCompared::NoAnswer(Side::Primary));
    }
    if !shadow.status.is_answer() {
        return Outcome::NotCompared(NotCompared::NoAnswer(Side::Shadow));
    }
    if primary.status != shadow.status {
        return Outcome::StatusMismatch;
    }
    if policy.body == BodyComparison::None {
        return Outcome::Match;
    }
    let p = match body_bytes(primary.body, Side::Primary, policy.max_body_bytes) {
        Ok(bytes) => bytes,
        Err(why) => return Outcome::NotCompared(why),
    };
    let s = match body_bytes(shadow.body, Side::Shadow, policy.max_body_bytes) {
        Ok(bytes) => bytes,
        Err(why) => return Outcome::NotCompared(why),
    };
    if p == s {
        return Outcome::Match;
    }
    if policy.body == BodyComparison::Json {
        match json::compare(p, s, &policy.ignore_fields) {
            JsonComparison::Equal => return Outcome::Match,
            JsonComparison::Differ(difference) => return Outcome::BodyMismatch(BodyDifference::Json(difference)),
            JsonComparison::NotJson(_) => {}
        }
    }
    Outcome::BodyMismatch(BodyDifference::Bytes {
        offset: first_differing_byte(p, s),
        primary_len: p.len(),
        shadow_len: s.len(),
    })
}

fn body_bytes(body: Body<'_>, side: Side, max: usize) -> Result<&[u8], NotCompared> {
    match body {
        Body::Bytes(bytes) if bytes.len() <= max => Ok(bytes),
        Body::Bytes(_) | Body::TooLarge => Err(NotCompared::BodyTooLarge(side)),
        Body::Unavailable => Err(NotCompared::BodyUnavailable(side)),
    }
}

fn first_differing_byte(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[cfg(test)]
mod tests;
