//! How far a sampled count may stray from its expectation before the
//! sampler is wrong rather than unlucky.

use std::ops::RangeInclusive;

/// Six standard deviations of Binomial(n, p) either side of n·p (the normal
/// approximation is fine at these sizes): a false alarm about once in 500
/// million runs, so never a flake, yet narrow enough to catch a sampler
/// that is off by a few percent.
pub fn binomial_bounds(n: u64, p: f64) -> RangeInclusive<u64> {
    let mean = n as f64 * p;
    let slack = 6.0 * (mean * (1.0 - p)).sqrt();
    ((mean - slack).floor().max(0.0) as u64)..=((mean + slack).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_standard_deviations_either_side() {
        // 2000 at 10 %: mean 200, sd √180 ≈ 13.4.
        assert_eq!(binomial_bounds(2000, 0.10), 119..=281);
        // 200 at 50 %: mean 100, sd √50 ≈ 7.1.
        assert_eq!(binomial_bounds(200, 0.5), 57..=143);
        assert_eq!(binomial_bounds(10, 0.5), 0..=15);
        assert_eq!(binomial_bounds(100, 0.0), 0..=0);
    }
}
