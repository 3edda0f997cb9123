//! Sampling: which requests are in the `percentage`.
//!
//! A percentage becomes a threshold out of 2^32; a request is in when its
//! 32-bit draw is below it. That gives a resolution of 2.3e-8 %, finer than
//! the 0.0001 % promised, and makes 0 mean never and 100 mean always with no
//! draw at all. With `sampleBy` the draw is a fixed hash of the header value,
//! so a key is in or out the same way on every worker, every restart, and
//! stays in when the percentage is raised.

/// 2^32: the draw space.
const SCALE: u64 = 1 << 32;

/// A sampling threshold derived from a percentage in [0, 100].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRate {
    threshold: u64,
}

impl SampleRate {
    /// `percentage` is clamped to [0, 100]; config validation refuses anything outside.
    pub fn from_percentage(percentage: f64) -> Self {
        let fraction = (percentage / 100.0).clamp(0.0, 1.0);
        // f64 holds 2^32 exactly, so the rounding is the only error: < 2^-33.
        let threshold = (fraction * SCALE as f64).round() as u64;
        SampleRate {
            threshold: threshold.min(SCALE),
        }
    }

    /// Nothing is ever sampled: the caller can skip all work.
    pub fn is_never(&self) -> bool {
        self.threshold == 0
    }

    /// Everything is sampled: no draw is needed.
    pub fn is_always(&self) -> bool {
        self.threshold >= SCALE
    }

    /// Whether a request whose draw is `draw` is in the sample.
    pub fn admits(&self, draw: u32) -> bool {
        u64::from(draw) < self.threshold
    }

    /// The exact fraction this rate samples, for tests and docs.
    pub fn fraction(&self) -> f64 {
        self.threshold as f64 / SCALE as f64
    }
}

/// The stable draw for a `sampleBy` key: FNV-1a 64 then a 64-bit finaliser
/// (so near-identical keys such as `user-1`, `user-2` spread evenly), high 32
/// bits. Fixed forever: changing it would reshuffle every user's sample.
pub fn key_draw(key: &[u8]) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's fmix64.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_hundred_are_exact() {
        let never = SampleRate::from_percentage(0.0);
        let always = SampleRate::from_percentage(100.0);
        assert!(never.is_never() && !never.is_always());
        assert!(always.is_always() && !always.is_never());
        for draw in [0, 1, u32::MAX / 2, u32::MAX] {
            assert!(!never.admits(draw));
            assert!(always.admits(draw));
        }
    }

    #[test]
    fn resolution_is_finer_than_a_millionth() {
        let tiny = SampleRate::from_percentage(0.0001);
        assert!(!tiny.is_never());
        assert!((tiny.fraction() - 1e-6).abs() < 1e-9, "{}", tiny.fraction());
        let ten = SampleRate::from_percentage(10.0);
        assert!((ten.fraction() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn threshold_boundary() {
        let half = SampleRate::from_percentage(50.0);
        assert!(half.admits((1u32 << 31) - 1));
        assert!(!half.admits(1u32 << 31));
    }

    #[test]
    fn key_draw_is_stable_and_spreads() {
        // Pinned values: a change here reshuffles every user's sample.
        assert_eq!(key_draw(b"user-1"), 1_101_200_549);
        assert_eq!(key_draw(b"user-2"), 2_851_384_588);
        assert_eq!(key_draw(b""), 4_023_394_144);
        let rate = SampleRate::from_percentage(10.0);
        let admitted = (0..10_000)
            .filter(|i| rate.admits(key_draw(format!("user-{i}").as_bytes())))
            .count();
        // Binomial(10000, 0.1): sd = 30; 6 sd either side.
        assert!((820..=1180).contains(&admitted), "{admitted}");
    }
}
