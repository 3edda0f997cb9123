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
        let forward = std::iter::once(("forward".to_owned(), &self.default_policy)).chain(
            self.routes
                .iter()
                .map(|(name, policy)| (format!("routes[\"{name}\"].forward"), policy)),
        );
        for (path, policy) in forward {
            if let Some(mirror) = policy.mirrors.iter().find(|m| m.compare.is_some()) {
                return Some(format!("{path} (mirror to \"{}\").compare", mirror.destination));
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
