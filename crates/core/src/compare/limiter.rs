//! `logMismatches`: at most N mismatch lines in any rolling minute, per
//! worker (each worker VM keeps its own limiter, for each mirror).
//!
//! A sliding log, not a token bucket or a fixed window: it keeps the times
//! of the lines logged in the last minute (at most N of them, so at most
//! N × 8 bytes, 80 KB at the largest N), and a line is allowed when fewer
//! than N were logged in the 60 000 ms before it. So the bound holds for
//! *every* 60-second window: a token bucket or a fixed window would allow
//! up to 2N lines across a window edge. Each call costs O(1) amortised.
//!
//! The clock is the caller's, in milliseconds: the proxy's is wall-clock
//! time, which can step back. A line logged "in the future" of the clock is
//! forgotten at once, so a clock stepping back allows at most N more lines
//! at that moment and can never silence the log until it catches up.

use std::collections::VecDeque;

/// The rolling window.
pub const WINDOW_MS: u64 = 60_000;

/// At most `per_minute` lines in any [`WINDOW_MS`].
#[derive(Debug, Clone)]
pub struct LogLimiter {
    per_minute: usize,
    /// When the lines of the last window were logged, oldest first.
    logged: VecDeque<u64>,
    /// Lines refused since the last line allowed.
    held_back: u64,
}

impl LogLimiter {
    /// A limiter for `logMismatches`; 0 allows nothing.
    pub fn new(per_minute: u32) -> Self {
        LogLimiter {
            per_minute: usize::try_from(per_minute).unwrap_or(usize::MAX),
            logged: VecDeque::new(),
            held_back: 0,
        }
    }

    /// Whether a line may be logged at `now_ms`. When it may, how many
    /// lines were refused since the last one allowed (for the line to say
    /// so); when it may not, `None`, and the refusal is counted.
    pub fn admit(&mut self, now_ms: u64) -> Option<u64> {
        if self.per_minute == 0 {
            return None;
        }
        while let Some(&at) = self.logged.front() {
            match now_ms.checked_sub(at) {
                Some(age) if age < WINDOW_MS => break,
                // Older than the window, or after `now_ms` (the clock stepped back).
                _ => {
                    self.logged.pop_front();
                }
            }
        }
        // After a step back the newest entries may still be in the future
        // of the clock: forget them too.
        while self.logged.back().is_some_and(|&at| at > now_ms) {
            self.logged.pop_back();
        }
        if self.logged.len() >= self.per_minute {
            self.held_back = self.held_back.saturating_add(1);
            return None;
        }
        self.logged.push_back(now_ms);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_lines_per_rolling_minute() {
        let mut limiter = LogLimiter::new(3);
        assert_eq!(limiter.admit(1_000), Some(0));
        assert_eq!(limiter.admit(2_000), Some(0));
        assert_eq!(limiter.admit(30_000), Some(0));
        assert_eq!(limiter.admit(30_001), None);
        assert_eq!(limiter.admit(60_999), None, "the first line is 59 999 ms old");
        // 61 000: the first line is a minute old; two were refused meanwhile.
        assert_eq!(limiter.admit(61_000), Some(2));
        assert_eq!(limiter.admit(61_500), None);
        assert_eq!(limiter.admit(62_000), Some(1));
        assert_eq!(limiter.admit(62_001), None);
        assert_eq!(limiter.admit(90_000), Some(1));
    }

    #[test]
    fn never_more_than_n_in_any_window() {
        for per_minute in [1u32, 2, 10] {
            let mut limiter = LogLimiter::new(per_minute);
            let mut allowed = Vec::new();
            // One attempt every 700 ms for ten minutes.
            for now in (0..600_000u64).step_by(700) {
                if limiter.admit(now).is_some() {
                    allowed.push(now);
                }
            }
            for (i, &start) in allowed.iter().enumerate() {
                let in_window = allowed[i..].iter().take_while(|&&t| t < start + WINDOW_MS).count();
                assert!(
                    in_window <= per_minute as usize,
                    "{per_minute}/min: {in_window} lines from {start}"
                );
            }
            // And the budget is used: about N per minute over ten minutes.
            assert!(
                allowed.len() >= 10 * per_minute as usize,
                "{per_minute}/min: {}",
                allowed.len()
            );
        }
    }

    #[test]
    fn zero_allows_nothing() {
        let mut limiter = LogLimiter::new(0);
        for now in [0, 1, 60_000, 10_000_000] {
            assert_eq!(limiter.admit(now), None);
        }
    }

    #[test]
    fn a_clock_stepping_back_does_not_silence_the_log() {
        let mut limiter = LogLimiter::new(2);
        assert_eq!(limiter.admit(3_600_000), Some(0));
        assert_eq!(limiter.admit(3_600_001), Some(0));
        assert_eq!(limiter.admit(3_600_002), None);
        // The clock steps back an hour: the lines "from the future" are forgotten.
        assert_eq!(limiter.admit(1_000), Some(1));
        assert_eq!(limiter.admit(1_001), Some(0));
        assert_eq!(limiter.admit(1_002), None);
        // A clock at u64::MAX or 0 does not overflow anything.
        assert_eq!(limiter.admit(u64::MAX), Some(1));
        assert_eq!(limiter.admit(0), Some(0));
    }

    #[test]
    fn memory_is_bounded_by_n() {
        let mut limiter = LogLimiter::new(10_000);
        for now in 0..100_000u64 {
            limiter.admit(now / 10);
        }
        assert!(limiter.logged.len() <= 10_000);
    }
}
