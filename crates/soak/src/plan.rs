//! What the soak does when: the shadow's phases, the configuration pushes
//! and their plugin JSON, and which sampling keys land where. Pure, so that
//! `cargo test --workspace` checks it without Envoy.

use std::time::Duration;
use vrata_mirror_core::sampling::{key_draw, SampleRate};

/// How long the shadow stays in each phase.
pub const PHASE: Duration = Duration::from_secs(5);
/// A new plugin configuration this often.
pub const PUSH_EVERY: Duration = Duration::from_secs(15);
/// Every copy's `timeoutMs` (the filter's default, written out).
pub const TIMEOUT_MS: u64 = 1000;
/// The slow phase answers after this long: well within the timeout.
pub const SLOW_MS: u64 = 250;
/// The big-answer phase's body: over `http.async_response_buffer_limit`
/// (1 MiB in the reference config), so Envoy cuts the answer off.
pub const BIG_ANSWER_BYTES: usize = 1_310_720;
// The slow phase stays well within the timeout; the big answer is over
// the 1 MiB async_response_buffer_limit.
const _: () = assert!(SLOW_MS * 2 < TIMEOUT_MS);
const _: () = assert!(BIG_ANSWER_BYTES > 1 << 20);

/// The gRPC-error phase's `grpc-status` (UNAVAILABLE).
pub const GRPC_ERROR: u8 = 14;
/// The rate cap on route `api`'s mirror.
pub const API_RATE: u32 = 60;
pub const API_BURST: u32 = 30;
/// `copies` on route `grpc`'s mirror.
pub const GRPC_COPIES: u64 = 2;
/// The default route's `maxBodyBytes`: under the 200 KiB uploads, so that
/// `body_too_large` is exercised.
pub const DEFAULT_MAX_BODY: usize = 102_400;
/// The default route's two percentages, alternated by the pushes
/// (`sampleBy: x-soak-key`).
pub const DEFAULT_PERCENTAGES: [f64; 2] = [10.0, 30.0];
/// The two shadow clusters, which cycle through the phases: routes `api`
/// and the default route mirror to the first, `grpc` to the second, in
/// every configuration.
pub const SHADOWS: [&str; 2] = ["shadow_a", "shadow_b"];
/// Two always-healthy clusters: route `probe` mirrors to one or the other,
/// switching with each valid configuration, and `extra` (when its entry is
/// there) to the first; copies carry `x-soak-config` naming the configuration.
///
/// Why the destinations that switch are not the shadows: in the first
/// 30-minute soak, when api's and grpc's mirrors switched between the
/// shadows, the counters of the pairs that came and went ended far below
/// what happened (api: sent 51403 + skipped 59532 of 158397 sampled; route
/// extra's copies to the witness: 35 counted, 59 received), while the probe
/// pair, kept by all 119 configurations, stayed exact. The likely cause is
/// Envoy freeing a wasm counter once no live VM holds it, when a push
/// replaces the VM; not established (a second 30-minute run, shaped as
/// now, saw no counter go down on any pair). Exact accounting is asserted
/// on the pairs every configuration keeps, and the run fails if one of
/// their counters ever goes down.
pub const WITNESSES: [&str; 2] = ["witness_a", "witness_b"];
/// The pairs every configuration keeps: (route, destination).
pub const KEPT_PAIRS: [(&str, &str); 3] = [("api", SHADOWS[0]), ("grpc", SHADOWS[1]), ("default", SHADOWS[0])];

/// What the shadows do during a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Healthy,
    /// Not listening, and existing connections closed.
    Refusing,
    /// Reads the request and never answers (the copy times out).
    Stuck,
    Status500,
    /// Reads the request, then drops the connection unanswered.
    Reset,
    /// Answers after [`SLOW_MS`].
    Slow,
    /// gRPC copies get `grpc-status` [`GRPC_ERROR`] (HTTP copies a 200).
    GrpcError,
    /// Answers [`BIG_ANSWER_BYTES`].
    BigAnswer,
}

impl Phase {
    pub const CYCLE: [Phase; 8] = [
        Phase::Healthy,
        Phase::Refusing,
        Phase::Stuck,
        Phase::Status500,
        Phase::Reset,
        Phase::Slow,
        Phase::GrpcError,
        Phase::BigAnswer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Refusing => "refusing",
            Phase::Stuck => "stuck",
            Phase::Status500 => "500",
            Phase::Reset => "reset",
            Phase::Slow => "slow",
            Phase::GrpcError => "grpc_error",
            Phase::BigAnswer => "big_answer",
        }
    }

    pub fn index(self) -> usize {
        Phase::CYCLE.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The phase `elapsed` into the run.
    pub fn at(elapsed: Duration) -> Phase {
        let n = (elapsed.as_millis() / PHASE.as_millis()) as usize;
        Phase::CYCLE[n % Phase::CYCLE.len()]
    }
}

/// One configuration pushed over LDS.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// 1, 2, ... (0 is the configuration Envoy starts with).
    pub index: u32,
    /// The valid configuration in force after it: this push's own number
    /// when valid, the last valid one's when not.
    pub config: u32,
    pub valid: bool,
    pub json: String,
}

/// Push `index` is invalid when `index % 4 == 2`: one in four, the first at
/// 30 s so that a 60-second run has one.
pub fn is_invalid(index: u32) -> bool {
    index % 4 == 2
}

/// The valid configuration number in force after push `index`.
pub fn config_after(index: u32) -> u32 {
    (1..=index).filter(|i| !is_invalid(*i)).max().unwrap_or(0)
}

/// The push at `index` (≥ 1).
pub fn push(index: u32) -> Push {
    let valid = !is_invalid(index);
    let config = config_after(index);
    let json = if valid {
        plugin_json(index)
    } else {
        invalid_json(index, config)
    };
    Push {
        index,
        config,
        valid,
        json,
    }
}

/// Configuration `n`'s destination for route `probe`.
pub fn witness_of(config: u32) -> &'static str {
    WITNESSES[(config % 2) as usize]
}

/// Configuration `n`'s percentage on the default route.
pub fn default_percentage(config: u32) -> f64 {
    DEFAULT_PERCENTAGES[(config % 2) as usize]
}

/// Whether configuration `n` has the `extra` route entry (mirroring
/// route `extra` to the first witness); without it, route `extra` falls back to
/// the top-level block.
pub fn has_extra(config: u32) -> bool {
    config % 3 != 1
}

/// Whether route `grpc`'s mirror compares in configuration `n`.
pub fn grpc_compares(config: u32) -> bool {
    config.is_multiple_of(2)
}

/// Route `api`'s comparison of bodies in configuration `n` (it always compares).
pub fn api_compare_body(config: u32) -> &'static str {
    if config.is_multiple_of(2) {
        "none"
    } else {
        "exact"
    }
}

/// The plugin configuration `n` (valid).
pub fn plugin_json(config: u32) -> String {
    let [shadow, grpc_shadow] = SHADOWS;
    let [witness_extra, _] = WITNESSES;
    let witness = witness_of(config);
    let tag = format!(r#""addHeaders": {{"x-soak-config": "{config}"}}"#);
    let grpc_compare = if grpc_compares(config) {
        r#", "compare": {"body": "none"}"#
    } else {
        ""
    };
    let extra = if has_extra(config) {
        format!(r#", "extra": {{"forward": {{"mirror": {{"destinationId": "{witness_extra}", {tag}}}}}}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"forward": {{"mirror": {{"destinationId": "{shadow}", "percentage": {pct}, "sampleBy": "x-soak-key", "maxBodyBytes": {DEFAULT_MAX_BODY}, "timeoutMs": {TIMEOUT_MS}, {tag}}}}},
 "routes": {{
  "api": {{"forward": {{"mirror": {{"destinationId": "{shadow}", "percentage": 100, "timeoutMs": {TIMEOUT_MS}, "maxRequestsPerSecond": {API_RATE}, "burst": {API_BURST}, "compare": {{"body": "{body}"}}, {tag}}}}}}},
  "grpc": {{"forward": {{"mirror": {{"destinationId": "{grpc_shadow}", "percentage": 100, "copies": {GRPC_COPIES}, "timeoutMs": {TIMEOUT_MS}{grpc_compare}, {tag}}}}}}},
  "probe": {{"forward": {{"mirror": {{"destinationId": "{witness}", {tag}}}}}}}{extra}
 }}}}"#,
        pct = default_percentage(config),
        body = api_compare_body(config),
    )
}

/// An invalid configuration: configuration `last_good` with one mistake,
/// a different one each time.
pub fn invalid_json(index: u32, last_good: u32) -> String {
    let good = plugin_json(last_good);
    match (index / 4) % 4 {
        0 => good.replacen(r#""percentage": 100"#, r#""percentage": 150"#, 1),
        1 => good.replacen(r#""sampleBy""#, r#""sampleBye""#, 1),
        2 => good.replacen(&format!(r#""copies": {GRPC_COPIES}"#), r#""copies": 11"#, 1),
        _ => good.replacen(r#""compare": {"body": ""#, r#""compare": {"body": "xml", "was": ""#, 1),
    }
}

/// Whether a request with `x-soak-key: key` is in the default route's
/// sample at `percentage` (the filter's own draw, from crates/core).
pub fn sampled(key: &str, percentage: f64) -> bool {
    SampleRate::from_percentage(percentage).admits(key_draw(key.as_bytes()))
}

/// Keys outside every percentage the default route takes: requests to
/// route `extra` carry one, so that without the `extra` entry (the default
/// route's block) they are never sampled and only the entry mirrors them.
pub fn never_sampled_key(seed: u64) -> String {
    let max = DEFAULT_PERCENTAGES.iter().cloned().fold(0.0, f64::max);
    (seed..)
        .map(|n| format!("never-{n}"))
        .find(|key| !sampled(key, max))
        .unwrap_or_default()
}

/// How Envoy's memory is judged in a run of `seconds`: (warm-up, bound on
/// the growth of its anonymous RSS after it). Measured in a first 30-minute
/// run: RSS climbed by 15 MiB in the first minute, then in steps (+9 MiB at
/// minute 9, +5 MiB by minute 13) and stayed flat to the end, while the heap
/// in use (`server.memory_allocated`) stayed at 15 MB: the steps are
/// tcmalloc keeping freed memory in its thread caches (21 MiB of a 32 MiB
/// default maximum by then) and free page heap, not a leak. Hence 32 MiB,
/// after 2 minutes (a third of a run shorter than 10 minutes, such as CI's
/// 60 s); the leak check proper is the heap in use once idle.
pub fn memory_rule(seconds: u64) -> (Duration, u64) {
    let warm_up = if seconds >= 600 { 120 } else { seconds / 3 };
    (Duration::from_secs(warm_up), 32 << 20)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use vrata_mirror_core::config::parse;

    #[test]
    fn valid_pushes_parse_and_invalid_ones_are_refused() {
        for index in 1..=40 {
            let push = push(index);
            let parsed = parse(push.json.as_bytes());
            if push.valid {
                assert!(parsed.is_ok(), "push {index}: {:?}\n{}", parsed.err(), push.json);
            } else {
                let err = parsed
                    .err()
                    .unwrap_or_else(|| panic!("push {index} must be refused:\n{}", push.json));
                eprintln!("push {index}: {err:?}");
            }
        }
        assert!(parse(plugin_json(0).as_bytes()).is_ok());
    }

    #[test]
    fn every_invalid_variant_differs_from_the_good_one() {
        for index in (1..=40).filter(|i| is_invalid(*i)) {
            let push = push(index);
            assert_ne!(push.json, plugin_json(push.config), "push {index} changed nothing");
        }
    }

    #[test]
    fn one_push_in_four_is_invalid_and_a_minute_has_one() {
        let invalid: Vec<u32> = (1..=8).filter(|i| is_invalid(*i)).collect();
        assert_eq!(invalid, vec![2, 6]);
        // A 60-second run pushes at 15, 30, 45 s: push 2 is the invalid one.
        assert!(is_invalid(2));
        assert_eq!(config_after(1), 1);
        assert_eq!(config_after(2), 1);
        assert_eq!(config_after(3), 3);
        assert_eq!(push(2).config, 1);
    }

    #[test]
    fn consecutive_valid_configs_switch_destination_and_change_percentage_compare_and_routes() {
        let valid: Vec<u32> = (0..=12).filter(|i| *i == 0 || !is_invalid(*i)).collect();
        let mut extra_changes = 0;
        for pair in valid.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b - a == 1 {
                assert_ne!(witness_of(a), witness_of(b), "{a} -> {b}");
                assert_ne!(default_percentage(a), default_percentage(b));
                assert_ne!(grpc_compares(a), grpc_compares(b));
            }
            if has_extra(a) != has_extra(b) {
                extra_changes += 1;
            }
        }
        assert!(extra_changes >= 3, "the extra route entry comes and goes");
    }

    #[test]
    fn a_minute_sees_every_phase() {
        let seen: std::collections::BTreeSet<usize> =
            (0..60).map(|s| Phase::at(Duration::from_secs(s)).index()).collect();
        assert_eq!(seen.len(), Phase::CYCLE.len());
        assert_eq!(Phase::at(Duration::from_millis(4999)), Phase::Healthy);
        assert_eq!(Phase::at(Duration::from_secs(5)), Phase::Refusing);
        assert_eq!(Phase::at(Duration::from_secs(40)), Phase::Healthy);
    }

    #[test]
    fn never_sampled_keys_are_out_of_every_percentage() {
        for seed in [0, 17, 1000] {
            let key = never_sampled_key(seed);
            assert!(!key.is_empty());
            for pct in DEFAULT_PERCENTAGES {
                assert!(!sampled(&key, pct), "{key} at {pct}");
            }
        }
        // And sampling nests: in at 10 % means in at 30 %.
        for n in 0..2000 {
            let key = format!("k{n}");
            assert!(!sampled(&key, 10.0) || sampled(&key, 30.0), "{key}");
        }
    }

    #[test]
    fn warm_up_is_two_minutes_or_a_third_of_a_short_run() {
        assert_eq!(memory_rule(60), (Duration::from_secs(20), 32 << 20));
        assert_eq!(memory_rule(599).0, Duration::from_secs(199));
        assert_eq!(memory_rule(600), (Duration::from_secs(120), 32 << 20));
        assert_eq!(memory_rule(1800), (Duration::from_secs(120), 32 << 20));
    }
}
