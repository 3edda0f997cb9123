//! Figures: latency percentiles and the summary's tables. Pure.

use std::time::Duration;

/// The `q` quantile (0..=1) of `samples` (sorted in place), nearest rank.
pub fn quantile(samples: &mut [u32], q: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples.get(rank - 1).copied()
}

/// Microseconds as milliseconds with one decimal.
pub fn ms(micros: Option<u32>) -> String {
    micros.map_or_else(|| "-".to_owned(), |us| format!("{:.1}", f64::from(us) / 1000.0))
}

/// `2 min`, `20 s`.
pub fn duration(d: Duration) -> String {
    if d.as_secs() >= 60 && d.as_secs().is_multiple_of(60) {
        format!("{} min", d.as_secs() / 60)
    } else {
        format!("{} s", d.as_secs())
    }
}

pub fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

/// RSS samples `(elapsed, bytes)`: the value at warm-up's end and the
/// largest growth over it afterwards (0 if RSS only fell).
pub fn rss_growth(samples: &[(Duration, u64)], warm_up: Duration) -> Option<(u64, u64)> {
    let base = samples.iter().find(|(t, _)| *t >= warm_up)?.1;
    let max = samples.iter().filter(|(t, _)| *t >= warm_up).map(|(_, b)| *b).max()?;
    Some((base, max.saturating_sub(base)))
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", header.iter().map(|_| "---|").collect::<String>());
    for row in rows {
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

/// Words in an Envoy log line that mean code trapped or panicked: never excused, even while an
/// invalid push is being refused. The native host's guard logs `vrata-mirror: panic caught in
/// <hook>` and `vrata-mirror: panic at <place>` (crates/native/src/guard.rs), which `panick`
/// alone does not match.
const TRAP_WORDS: [&str; 6] = [
    "panick",
    "panic caught",
    "panic at ",
    "uncaught",
    "unreachable",
    "crash",
];

/// With [`TRAP_WORDS`], the words of a line that means a wasm VM, a plugin or the native module
/// failed; these are excused while an invalid push is refused.
const FAILURE_WORDS: [&str; 4] = [
    "vm failed",
    "failed to load",
    "failed to",
    "invalid plugin configuration",
];

/// Lowercase words of a line refusing a configuration: either host's own line (the one
/// parser's `invalid plugin configuration`), the wasm host's VM/plugin refusal, and Envoy
/// 1.40's for a dynamic module whose `on_http_filter_config_new` returned null (seen in the
/// native soak: `lds: listener 'ingress' config rejected: Failed to create filter config:
/// Failed to initialize dynamic module`, and the same after `Filesystem config update
/// rejected: Error adding/updating listener(s) ingress:`).
const REFUSALS: [&str; 4] = [
    "invalid plugin configuration",
    "failed to configure base wasm plugin",
    "failed to load",
    "failed to initialize dynamic module",
];

/// What the log says about wasm health.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogHealth {
    /// Failure lines outside the windows of rejected pushes (or not a
    /// configuration's refusal at all): each one fails the run.
    pub unexpected: Vec<String>,
    /// Lines refusing a configuration, inside those windows.
    pub refusals: usize,
}

/// Sorts the failure lines of `log`: a refused plugin configuration is
/// expected while an invalid push is being rejected (the byte ranges in
/// `windows`), and only then; anything else (a panic, a trap, a VM failure
/// while traffic runs) is not.
pub fn log_health(log: &str, windows: &[(usize, usize)]) -> LogHealth {
    let mut health = LogHealth::default();
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let lower = line.to_ascii_lowercase();
        if !TRAP_WORDS.iter().chain(&FAILURE_WORDS).any(|w| lower.contains(w)) {
            continue;
        }
        let refusal = REFUSALS.iter().any(|r| lower.contains(r));
        let in_window = windows.iter().any(|(a, b)| start >= *a && start < *b);
        let trap = TRAP_WORDS.iter().any(|w| lower.contains(w));
        if refusal && in_window && !trap {
            health.refusals += 1;
        } else {
            health.unexpected.push(line.trim_end().to_owned());
        }
    }
    health
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut s: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut s, 0.5), Some(50));
        assert_eq!(quantile(&mut s, 0.99), Some(99));
        assert_eq!(quantile(&mut s, 1.0), Some(100));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7], 0.99), Some(7));
        assert_eq!(ms(Some(1260)), "1.3");
        assert_eq!(duration(Duration::from_secs(120)), "2 min");
        assert_eq!(duration(Duration::from_secs(20)), "20 s");
    }

    #[test]
    fn rss_growth_is_measured_from_the_end_of_warm_up() {
        let s = |t: u64, mb: u64| (Duration::from_secs(t), mb << 20);
        let samples = [s(0, 50), s(30, 80), s(60, 90), s(90, 95), s(120, 93)];
        assert_eq!(rss_growth(&samples, Duration::from_secs(60)), Some((90 << 20, 5 << 20)));
        assert_eq!(rss_growth(&samples, Duration::from_secs(500)), None);
        let falling = [s(60, 90), s(90, 80)];
        assert_eq!(rss_growth(&falling, Duration::from_secs(60)), Some((90 << 20, 0)));
    }

    #[test]
    fn refusals_are_expected_only_while_an_invalid_push_is_rejected() {
        let refusal = "[t][1][error][wasm] wasm log vrata_mirror: invalid plugin configuration: x\n";
        let failed = "[t][1][error][wasm] Wasm VM failed Failed to configure base Wasm plugin\n";
        let quiet = "[t][1][warning][main] something else\n";
        let log = format!("{quiet}{refusal}{failed}{quiet}{refusal}");
        let window = (quiet.len(), quiet.len() + refusal.len() + failed.len());
        let health = log_health(&log, &[window]);
        assert_eq!(health.refusals, 2);
        assert_eq!(
            health.unexpected,
            vec![refusal.trim_end().to_owned()],
            "the one outside the window"
        );
        let panic =
            "[t][1][critical][wasm] Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable\n";
        let log = format!("{quiet}{panic}");
        assert_eq!(
            log_health(&log, &[(0, log.len())]).unexpected.len(),
            1,
            "a trap is never excused"
        );
        assert_eq!(log_health(quiet, &[]), LogHealth::default());
    }

    #[test]
    fn the_native_hosts_refusal_is_expected_only_while_an_invalid_push_is_rejected() {
        // Envoy 1.40's lines for a refused dynamic-module config, as the native soak logged them.
        let rejected = "[t][1][warning][upstream] [source/common/listener_manager/lds_api.cc:89] lds: listener \
                        'ingress' config rejected: Failed to create filter config: Failed to initialize dynamic module\n";
        let update = "[t][1][warning][config] [filesystem_subscription_impl.cc:81] Filesystem config update \
                      rejected: Error adding/updating listener(s) ingress: Failed to create filter config: Failed to \
                      initialize dynamic module\n";
        let log = format!("{rejected}{update}");
        let health = log_health(&log, &[(0, log.len())]);
        assert_eq!(
            health,
            LogHealth {
                unexpected: vec![],
                refusals: 2
            }
        );
        assert_eq!(
            log_health(&log, &[]).unexpected.len(),
            2,
            "outside a window they fail the run"
        );
        let panic = "[t][1][error][dynamic_modules] vrata-mirror: panic caught in http_filter_request_headers \
                     (the request goes on): Failed to initialize dynamic module\n";
        assert_eq!(
            log_health(panic, &[(0, panic.len())]).unexpected.len(),
            1,
            "a caught panic is never excused"
        );
    }

    #[test]
    fn tables_are_markdown() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
