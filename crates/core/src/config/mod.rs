//! The plugin configuration: Vrata's `forward` block as JSON, read once at
//! `on_configure` into validated policies. Nothing here touches the host.
//!
//! ```json
//! {"forward": {"destinations": [{"destinationId": "primary", "weight": 100}],
//!              "mirror": {"destinationId": "shadow", "percentage": 10}}}
//! ```
//! Every field, default and rule is documented in the README; `parse` is the
//! only way in, and it refuses anything it does not understand.

mod error;
mod json;
mod parse;

pub use error::ConfigError;
pub(crate) use json::quote;
pub use parse::parse;

use crate::rate::RateCap;
use crate::sampling::SampleRate;
use std::rc::Rc;

/// Default `percentage`: Vrata's default, every request.
pub const DEFAULT_PERCENTAGE: f64 = 100.0;
/// Default `timeoutMs`. A shadow gets this long before its copy counts as a
/// timeout; short, so a stuck shadow cannot pile up calls in Envoy (see the
/// benchmark in the README for the measurement behind it).
pub const DEFAULT_TIMEOUT_MS: u32 = 1_000;
/// Default `maxBodyBytes`: 1 MiB, Envoy's own default buffer limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default `maxInFlight`: copies outstanding per destination per worker VM.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 128;

/// Largest accepted `timeoutMs` (5 minutes).
pub const MAX_TIMEOUT_MS: u32 = 300_000;
/// Largest accepted `maxBodyBytes` (64 MiB): wasm memory never shrinks.
pub const MAX_BODY_BYTES_LIMIT: usize = 64 * 1024 * 1024;
/// Largest accepted `maxInFlight`.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 100_000;
/// Largest accepted `maxRequestsPerSecond` (per Envoy, all workers).
pub const MAX_REQUESTS_PER_SECOND: f64 = 1_000_000.0;
/// Largest accepted `burst`.
pub const MAX_BURST: u32 = 1_000_000;
/// Default `copies`: each sampled request is sent once.
pub const DEFAULT_COPIES: u32 = 1;
/// Largest accepted `copies`.
pub const MAX_COPIES: u32 = 10;
/// The loop marker's default name (top-level `loopMarker`): every copy
/// carries `x-vrata-mirror: 1`, and a request that arrives with a header of
/// that name is never mirrored (skip reason `loop`).
pub const DEFAULT_LOOP_MARKER: &str = "x-vrata-mirror";
/// The loop marker's value on every copy. A request is recognised by the
/// name alone, whatever the value.
pub const LOOP_MARKER_VALUE: &str = "1";
/// Prefix of the shared-data key of a mirror's rate cap (see `crate::rate`).
pub const RATE_KEY_PREFIX: &str = "vrata_mirror.rate.v1";

/// Default `compare.maxBodyBytes` (256 KiB): larger answers are not compared.
pub const DEFAULT_COMPARE_MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest accepted `compare.maxBodyBytes` (16 MiB): both answers are held,
/// and for `"json"` parsed, in the worker's VM, whose memory never shrinks.
pub const MAX_COMPARE_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;
/// Default `compare.logMismatches`: lines per minute per worker.
pub const DEFAULT_LOG_MISMATCHES: u32 = 10;
/// Largest accepted `compare.logMismatches`.
pub const MAX_LOG_MISMATCHES: u32 = 10_000;

/// Default `compare.noise.relativePercent`, in millionths: 20 %, opendiffy's
/// default (`threshold.relative`, 20.0, in `ai.diffy.Settings`).
pub const DEFAULT_NOISE_RELATIVE_PPM: u32 = 200_000;
/// Default `compare.noise.absolutePercent`, in millionths: 0.03 %,
/// opendiffy's default (`threshold.absolute`, 0.03, in `ai.diffy.Settings`).
pub const DEFAULT_NOISE_ABSOLUTE_PPM: u32 = 300;
/// Default `compare.noise.minRequests`: 100 / 0.03 rounded up. Below it, a
/// field that differed once more against the candidate than against the
/// secondary is already above the default absolute threshold (1/n > 0.03 %),
/// so the rule could not yet tell a one-off from a real difference.
pub const DEFAULT_NOISE_MIN_REQUESTS: u64 = 3_334;
/// Largest accepted `compare.noise.minRequests`.
pub const MAX_NOISE_MIN_REQUESTS: u64 = 1_000_000_000;
/// Default `compare.noise.maxFields`: field paths counted per endpoint.
pub const DEFAULT_NOISE_MAX_FIELDS: usize = 64;
/// Largest accepted `compare.noise.maxFields` (a table is then at most
/// 70 KB, copied in and out of shared data on every compared request).
pub const MAX_NOISE_MAX_FIELDS: usize = 256;
/// Default `compare.noise.maxEndpoints`: endpoints (route and method)
/// counted apart per mirror; the rest share one overflow endpoint.
pub const DEFAULT_NOISE_MAX_ENDPOINTS: usize = 64;
/// Largest accepted `compare.noise.maxEndpoints`.
pub const MAX_NOISE_MAX_ENDPOINTS: usize = 256;
/// Prefix of a mirror's noise tables in shared data (see `crate::compare::noise`).
pub const NOISE_KEY_PREFIX: &str = "vrata_mirror.noise.v1";

/// The whole validated configuration of one plugin instance.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The top-level `forward` block: applies to routes without an entry in `routes`.
    pub default_policy: ForwardPolicy,
    /// `routes`: Envoy route name and its own `forward` block, in the
    /// order written (a list: a plugin names a handful of routes).
    pub routes: Vec<(String, ForwardPolicy)>,
    /// Every distinct mirror destination; `MirrorPolicy::destination_index` points here.
    pub destinations: Vec<String>,
    /// `loopMarker`: the lower-case name of the header every copy carries
    /// (with [`LOOP_MARKER_VALUE`]) and that stops a request from being
    /// mirrored; `None` (`false`): no marker, no check.
    pub loop_marker: Option<Rc<str>>,
}

impl PluginConfig {
    /// The policy for a route. `route_name` is only needed when `routes` is
    /// non-empty, which is why callers ask `needs_route_name` first.
    pub fn policy_for(&self, route_name: Option<&str>) -> &ForwardPolicy {
        route_name
            .and_then(|name| self.routes.iter().find(|(route, _)| route == name))
            .map(|(_, policy)| policy)
            .unwrap_or(&self.default_policy)
    }

    /// The first mirror with `compare`, as a field path for a message
    /// (`forward (mirror to "canary").compare`), or `None`.
    pub fn first_compare_field(&self) -> Option<String> {
        self.first_mirror_field(|m| m.compare.is_some(), "compare")
    }

    /// The path of `field` in the first mirror that `has` it.
    fn first_mirror_field(&self, has: impl Fn(&MirrorPolicy) -> bool, field: &str) -> Option<String> {
        let forward = std::iter::once(("forward".to_owned(), &self.default_policy)).chain(
            self.routes
                .iter()
                .map(|(name, policy)| (format!("routes[\"{name}\"].forward"), policy)),
        );
        for (path, policy) in forward {
            if let Some(mirror) = policy.mirrors.iter().find(|m| has(m)) {
                return Some(format!("{path} (mirror to \"{}\").{field}", mirror.destination));
            }
        }
        None
    }

    /// Whether choosing a policy requires the route's name.
    pub fn needs_route_name(&self) -> bool {
        !self.routes.is_empty()
    }
}

/// One `forward` block: the mirrors it sends copies to (empty: mirroring off).
#[derive(Debug, Clone, Default)]
pub struct ForwardPolicy {
    pub mirrors: Vec<Rc<MirrorPolicy>>,
    /// `destinations`, as written (empty when absent). The filter does not
    /// route by them (Envoy's route does); the tools render that route from them.
    pub destinations: Vec<Destination>,
}

/// One entry of `forward.destinations`: where the primary is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `destinationId`: the Envoy cluster.
    pub id: String,
    /// `weight`; `None` when not written.
    pub weight: Option<u64>,
}

/// One mirror object: where copies go, which requests, and how the copy is shaped.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorPolicy {
    /// `destinationId`: the Envoy cluster that receives the copy.
    pub destination: String,
    /// Index of `destination` in `PluginConfig::destinations`.
    pub destination_index: usize,
    /// `percentage`, as a sampling threshold.
    pub rate: SampleRate,
    /// `timeoutMs`, never 0 (0 would mean "no timeout" to Envoy).
    pub timeout_ms: u32,
    /// `maxBodyBytes`: a body of exactly this size is mirrored, one byte more is not.
    pub max_body_bytes: usize,
    /// `maxInFlight`: copies outstanding to this destination per worker VM.
    pub max_in_flight: u32,
    /// `sampleBy`: lower-case header name whose value decides the sample.
    pub sample_by: Option<String>,
    /// `methods`: only these methods are mirrored; `None` means all.
    pub methods: Option<Vec<String>>,
    /// `authority` / `hostSuffix`.
    pub authority: AuthorityRewrite,
    /// `addHeaders`: lower-case name and value, set on the copy (replacing).
    pub add_headers: Vec<(String, String)>,
    /// `removeHeaders`: lower-case names dropped from the copy.
    pub remove_headers: Vec<String>,
    /// `compare`: how the shadow's answer is compared with the primary's;
    /// `None` (absent or `null`): not compared.
    pub compare: Option<ComparePolicy>,
    /// `maxRequestsPerSecond` and `burst`, and the shared-data key of this
    /// mirror's bucket; `None`: no cap.
    pub rate_cap: Option<RateCap>,
    /// `copies`: how many times each sampled request is sent (1-10).
    pub copies: u32,
    /// `traceContext`: whether the copy carries the primary's trace headers.
    pub trace_context: TraceContext,
    /// The top-level `loopMarker` ([`PluginConfig::loop_marker`], the same
    /// value), which this mirror's copies carry.
    pub loop_marker: Option<Rc<str>>,
    /// With `compare.secondary`: the mirror its secondary's copies go
    /// through, derived from this one (the same sampling draw, request
    /// shape, `timeoutMs`, `maxBodyBytes` and `maxInFlight`; a bucket of its
    /// own at this mirror's rate; one copy per sampled request; no
    /// `compare` of its own: its answer is the noise side of this mirror's
    /// pairs). `None` without a secondary.
    pub secondary: Option<Rc<MirrorPolicy>>,
}

/// A mirror's `traceContext`: what the copy does with the primary's trace
/// headers (`http::headers::TRACE_CONTEXT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceContext {
    /// `"drop"` (the default): the copy carries none, so the shadow's spans
    /// start a trace of their own.
    Drop,
    /// `"keep"`: the copy carries them unchanged, so the shadow's spans join
    /// the primary's trace, as children of the span that called this proxy.
    Keep,
}

impl TraceContext {
    pub const ALL: [TraceContext; 2] = [TraceContext::Drop, TraceContext::Keep];

    /// The value as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            TraceContext::Drop => "drop",
            TraceContext::Keep => "keep",
        }
    }
}

/// A mirror's `compare` object (see `crate::compare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComparePolicy {
    /// `body`: what is compared besides the status.
    pub body: BodyComparison,
    /// `ignoreFields`: object keys left out of a `"json"` comparison at any
    /// depth. Non-empty, each once; empty unless `body` is `Json`.
    pub ignore_fields: Vec<String>,
    /// `maxBodyBytes`: the largest answer compared, on either side; a
    /// larger one makes the comparison `not_compared`.
    pub max_body_bytes: usize,
    /// `logMismatches`: mismatch lines logged per minute per worker (0: none).
    pub log_mismatches: u32,
    /// `secondary` and `noise`: noise cancellation against a second
    /// known-good cluster; `None` without `secondary`.
    pub noise: Option<NoisePolicy>,
}

/// A mirror's `compare.secondary` and `compare.noise` (see
/// `crate::compare::noise`). Thresholds are in millionths (ppm), so the
/// policy stays `Eq` and the rule is computed from integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisePolicy {
    /// `secondary`: the Envoy cluster running the same known-good version
    /// as the primary; never the mirror's own destination.
    pub secondary: String,
    /// Index of `secondary` in `PluginConfig::destinations`.
    pub secondary_index: usize,
    /// `relativePercent`, in millionths: `|raw - noise| / (raw + noise)` must be above it.
    pub relative_ppm: u32,
    /// `absolutePercent`, in millionths: `|raw - noise| / requests` must be above it.
    pub absolute_ppm: u32,
    /// `minRequests`: an endpoint's differing requests are `learning` until it has had this many.
    pub min_requests: u64,
    /// `maxFields`: field paths counted per endpoint; others share the overflow bucket.
    pub max_fields: usize,
    /// `maxEndpoints`: endpoints counted apart; others share one overflow endpoint.
    pub max_endpoints: usize,
    /// The shared-data key prefix of this mirror's tables: the mirror's
    /// place in the configuration and its destination, as for the rate cap.
    pub key_prefix: String,
}

/// `compare.body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyComparison {
    /// `"none"` (the default): the status only.
    None,
    /// `"exact"`: the status, and the bodies byte for byte.
    Exact,
    /// `"json"`: the status, and the bodies as JSON values (object key
    /// order and `ignoreFields` do not matter); a body that is not JSON is
    /// compared byte for byte.
    Json,
}

impl BodyComparison {
    pub const ALL: [BodyComparison; 3] = [BodyComparison::None, BodyComparison::Exact, BodyComparison::Json];

    /// The value as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            BodyComparison::None => "none",
            BodyComparison::Exact => "exact",
            BodyComparison::Json => "json",
        }
    }
}

/// What happens to the copy's `:authority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityRewrite {
    /// Unchanged, as Vrata does.
    Keep,
    /// `authority`: replaced by this value.
    Replace(String),
    /// `hostSuffix`: appended to the host, before any port (`api:8080` -> `api-shadow:8080`).
    Suffix(String),
}
