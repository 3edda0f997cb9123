//! `maxRequestsPerSecond`: a token bucket shared by every worker of one
//! Envoy. Each worker runs its own VM, so a bucket in VM memory would let
//! `workers × rate` through; this one lives in proxy-wasm shared data (one
//! key per mirror, one store per Envoy process) and is updated with
//! compare-and-swap. Pure: the host is reached through [`SharedStore`].
//!
//! The bucket holds up to `burst` tokens and gains `maxRequestsPerSecond`
//! per second; each copy sent takes one. Tokens are counted in millionths,
//! so slow rates (`0.5` a second) refill smoothly, and the stored state is
//! only the count and when it was counted: refilling is a function of time,
//! so a request that gets no token writes nothing.

/// Tokens are counted in these units: a millionth of a token.
const UNIT: u64 = 1_000_000;

/// How many times one request reads, recomputes and writes the bucket
/// before giving up on a run of CAS conflicts (each conflict means another
/// worker just wrote it). Past this the copies are skipped as
/// `rate_unavailable`: never an unbounded loop on the request path.
pub const MAX_ATTEMPTS: u32 = 4;

/// A clock that went back by at most this much is taken as not having
/// moved (workers read the host clock at slightly different moments, so
/// the stored stamp may be a hair ahead of ours): no refill, stamp kept.
/// A clock that went back by more re-anchors the bucket at the new time,
/// so a stepped-back wall clock cannot freeze the bucket for as long.
pub const CLOCK_SKEW_MS: u64 = 1_000;

/// The version byte of the stored bucket. A value that is not this
/// version (or not this length) is replaced by a full bucket, under CAS.
const VERSION: u8 = 1;
/// Version, stamp (u64 LE), tokens in millionths (u64 LE).
pub const ENCODED_LEN: usize = 17;

/// A mirror's rate cap as configured: copies per second, over all workers
/// of one Envoy, and the bucket's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
}

impl RateLimit {
    /// `None` unless `per_second` is finite and positive and `burst` ≥ 1
    /// (the configuration refuses anything else first).
    pub fn new(per_second: f64, burst: u32) -> Option<RateLimit> {
        (per_second.is_finite() && per_second > 0.0 && burst >= 1).then_some(RateLimit { per_second, burst })
    }

    /// The default `burst`: one second's worth, at least one.
    pub fn default_burst(per_second: f64) -> u32 {
        let ceil = per_second.ceil();
        if ceil >= f64::from(u32::MAX) {
            u32::MAX
        } else if ceil >= 1.0 {
            ceil as u32
        } else {
            1
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn capacity(&self) -> u64 {
        u64::from(self.burst).saturating_mul(UNIT)
    }

    /// Millionths of a token gained per millisecond.
    fn per_ms(&self) -> f64 {
        self.per_second * (UNIT as f64 / 1_000.0)
    }
}

/// A mirror's cap and where its bucket is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RateCap {
    pub limit: RateLimit,
    /// The shared-data key: one bucket per mirror object (its place in the
    /// configuration and its destination), shared by every worker.
    pub key: String,
}

/// The bucket as stored: how many tokens (in millionths) there were at
/// `stamp_ms` (host time, milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub tokens: u64,
    pub stamp_ms: u64,
}

impl Bucket {
    /// A bucket seen for the first time: full.
    pub fn full(limit: RateLimit, now_ms: u64) -> Bucket {
        Bucket {
            tokens: limit.capacity(),
            stamp_ms: now_ms,
        }
    }

    /// The bucket at `now_ms`: refilled for the time since its stamp, never
    /// above `burst` (also when `burst` was lowered since it was written).
    pub fn refill(self, limit: RateLimit, now_ms: u64) -> Bucket {
        let capacity = limit.capacity();
        let tokens = self.tokens.min(capacity);
        if now_ms < self.stamp_ms {
            let stamp_ms = if self.stamp_ms - now_ms <= CLOCK_SKEW_MS {
                self.stamp_ms
            } else {
                now_ms
            };
            return Bucket { tokens, stamp_ms };
        }
        let elapsed = (now_ms - self.stamp_ms) as f64;
        let gained = elapsed * limit.per_ms();
        let room = capacity - tokens;
        // Compared as floats: a long idle (or a far-future clock) saturates
        // instead of overflowing.
        let tokens = if gained >= room as f64 {
            capacity
        } else {
            tokens + gained as u64
        };
        Bucket {
            tokens,
            stamp_ms: now_ms,
        }
    }

    /// Whole tokens available.
    pub fn whole(&self) -> u64 {
        self.tokens / UNIT
    }

    /// Refills, then takes up to `wanted` whole tokens: the bucket after,
    /// and how many were taken.
    pub fn take(self, limit: RateLimit, now_ms: u64, wanted: u32) -> (Bucket, u32) {
        let mut bucket = self.refill(limit, now_ms);
        let granted = bucket.whole().min(u64::from(wanted));
        bucket.tokens -= granted * UNIT;
        (bucket, granted as u32)
    }

    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        let bytes = [VERSION]
            .into_iter()
            .chain(self.stamp_ms.to_le_bytes())
            .chain(self.tokens.to_le_bytes());
        for (slot, byte) in out.iter_mut().zip(bytes) {
            *slot = byte;
        }
        out
    }

    /// `None` for anything [`encode`](Self::encode) did not write.
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        let (version, rest) = bytes.split_first()?;
        let (stamp, tokens) = rest.split_first_chunk::<8>()?;
        let tokens: [u8; 8] = tokens.try_into().ok()?;
        (*version == VERSION).then(|| Bucket {
            stamp_ms: u64::from_le_bytes(*stamp),
            tokens: u64::from_le_bytes(tokens),
        })
    }
}

/// Why the shared store did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since it was read (proxy-wasm `CasMismatch`).
    Conflict,
    /// The host refused the call.
    Failed,
}

/// proxy-wasm shared data: one store per Envoy process (per `vm_id`),
/// shared by every worker's VM. Each method is one host call.
pub trait SharedStore {
    /// The value under `key` and its CAS version; `None` when there is none.
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes `value` if the key's version is still `cas` (0: whatever it is).
    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// The bucket could not be read or updated: the host refused, or
/// [`MAX_ATTEMPTS`] tries in a row lost a CAS race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// Takes up to `wanted` tokens from the bucket under `cap.key`: how many it
/// got. `now_ms` is asked after the first read (so it is never older than
/// the stamp another worker wrote before it); the caller may memoize it.
///
/// Host calls: one load, and one store only when a token is taken (a
/// request over the cap writes nothing); a CAS conflict repeats both, at
/// most [`MAX_ATTEMPTS`] times in all.
///
/// A bucket not stored yet is written with CAS 0 (proxy-wasm has no
/// "create if absent"): two workers taking their very first tokens at the
/// same instant may both start from a full bucket, once per key.
pub fn acquire<S: SharedStore>(
    store: &mut S,
    cap: &RateCap,
    wanted: u32,
    mut now_ms: impl FnMut(&mut S) -> u64,
) -> Result<u32, Unavailable> {
    if wanted == 0 {
        return Ok(0);
    }
    for _ in 0..MAX_ATTEMPTS {
        let stored = store.load(&cap.key).map_err(|_| Unavailable)?;
        let now = now_ms(store);
        let (bucket, cas) = match &stored {
            Some((bytes, cas)) => (Bucket::decode(bytes), *cas),
            None => (None, 0),
        };
        let bucket = bucket.unwrap_or_else(|| Bucket::full(cap.limit, now));
        let (after, granted) = bucket.take(cap.limit, now, wanted);
        if granted == 0 {
            return Ok(0);
        }
        match store.store(&cap.key, &after.encode(), cas) {
            Ok(()) => return Ok(granted),
            Err(StoreError::Conflict) => continue,
            Err(StoreError::Failed) => return Err(Unavailable),
        }
    }
    Err(Unavailable)
}

/// Envoy's shared data in memory, for the tests of everything kept there
/// (this module's buckets, `compare::noise`'s tables).
#[cfg(test)]
pub(crate) mod memory_store {
    use super::{SharedStore, StoreError};
    use std::collections::HashMap;

    /// Envoy's shared data in memory: versions start at 1 and never repeat;
    /// CAS 0 writes whatever is there; `conflicts` answers CasMismatch to
    /// that many stores (after another "worker" wrote), `fail` fails calls.
    #[derive(Default)]
    pub struct Store {
        pub data: HashMap<String, (Vec<u8>, u32)>,
        pub next_cas: u32,
        pub conflicts: u32,
        pub fail_load: bool,
        pub fail_store: bool,
        pub calls: Vec<&'static str>,
    }

    impl SharedStore for Store {
        fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.calls.push("load");
            if self.fail_load {
                return Err(StoreError::Failed);
            }
            Ok(self.data.get(key).cloned())
        }

        fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.calls.push("store");
            if self.fail_store {
                return Err(StoreError::Failed);
            }
            if self.conflicts > 0 {
                self.conflicts -= 1;
                return Err(StoreError::Conflict);
            }
            if let Some((_, current)) = self.data.get(key) {
                if cas != 0 && cas != *current {
                    return Err(StoreError::Conflict);
                }
            }
            self.next_cas += 1;
            self.data.insert(key.to_owned(), (value.to_vec(), self.next_cas));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_735_689_600_000;

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit::new(per_second, burst).unwrap()
    }

    fn cap(per_second: f64, burst: u32) -> RateCap {
        RateCap {
            limit: limit(per_second, burst),
            key: "k".to_owned(),
        }
    }

    /// Takes one token at a time until none is left: how many.
    fn drain(mut bucket: Bucket, limit: RateLimit, now: u64) -> (Bucket, u32) {
        let mut taken = 0;
        loop {
            let (after, granted) = bucket.take(limit, now, 1);
            bucket = after;
            if granted == 0 {
                return (bucket, taken);
            }
            taken += granted;
        }
    }

    #[test]
    fn a_new_bucket_is_full_and_gives_exactly_burst() {
        let l = limit(10.0, 7);
        let (bucket, taken) = drain(Bucket::full(l, T0), l, T0);
        assert_eq!(taken, 7);
        assert_eq!(bucket.whole(), 0);
    }

    #[test]
    fn refill_follows_the_rate() {
        let l = limit(10.0, 10);
        let (empty, _) = drain(Bucket::full(l, T0), l, T0);
        // 10 a second: one per 100 ms.
        assert_eq!(empty.refill(l, T0 + 99).whole(), 0);
        assert_eq!(empty.refill(l, T0 + 100).whole(), 1);
        assert_eq!(empty.refill(l, T0 + 550).whole(), 5);
        // Over a minute of steady takes, exactly rate × time go out.
        let mut bucket = empty;
        let mut taken = 0;
        for ms in (1..=60_000).step_by(7) {
            let (after, granted) = bucket.take(l, T0 + ms, 1);
            bucket = after;
            taken += granted;
        }
        assert!((599..=600).contains(&taken), "{taken} in 60 s at 10/s");
    }

    #[test]
    fn slow_rates_refill_in_fractions() {
        let l = limit(0.5, 1);
        let (empty, _) = drain(Bucket::full(l, T0), l, T0);
        assert_eq!(empty.refill(l, T0 + 1_999).whole(), 0);
        assert_eq!(empty.refill(l, T0 + 2_000).whole(), 1);
        // Refilled in small steps (each one written back) it adds up the same.
        let mut bucket = empty;
        for ms in (0..=2_000).step_by(3) {
            bucket = bucket.refill(l, T0 + ms);
        }
        assert_eq!(bucket.refill(l, T0 + 2_000).whole(), 1);
    }

    #[test]
    fn burst_caps_the_refill() {
        let l = limit(100.0, 5);
        let (empty, _) = drain(Bucket::full(l, T0), l, T0);
        assert_eq!(empty.refill(l, T0 + 10_000).whole(), 5);
        let (_, granted) = empty.take(l, T0 + 10_000, 10);
        assert_eq!(granted, 5, "no more than burst at once");
    }

    #[test]
    fn a_long_idle_saturates_at_burst() {
        let l = limit(1_000_000.0, 1_000_000);
        let (empty, _) = Bucket::full(l, 0).take(l, 0, u32::MAX);
        for later in [365 * 24 * 3_600_000, u64::MAX / 2, u64::MAX] {
            let bucket = empty.refill(l, later);
            assert_eq!(bucket.whole(), 1_000_000);
            assert_eq!(bucket.stamp_ms, later);
        }
    }

    #[test]
    fn a_clock_that_goes_back_a_little_neither_refills_nor_moves_the_stamp() {
        let l = limit(10.0, 10);
        let (empty, _) = drain(Bucket::full(l, T0), l, T0);
        let back = empty.refill(l, T0 - 300);
        assert_eq!(back, empty, "no refill, stamp kept");
        // Time is counted from the kept stamp: no token is made twice.
        assert_eq!(back.refill(l, T0 + 100).whole(), 1);
    }

    #[test]
    fn a_clock_that_jumps_back_re_anchors_the_bucket() {
        let l = limit(10.0, 10);
        let (empty, _) = drain(Bucket::full(l, T0), l, T0);
        let back = empty.refill(l, T0 - 3_600_000);
        assert_eq!(back.whole(), 0, "no refill for going back");
        assert_eq!(back.stamp_ms, T0 - 3_600_000);
        // Refilling resumes from the new time instead of waiting an hour.
        assert_eq!(back.refill(l, T0 - 3_600_000 + 200).whole(), 2);
    }

    #[test]
    fn a_lowered_burst_clamps_what_was_stored() {
        let big = limit(10.0, 100);
        let small = limit(10.0, 3);
        let stored = Bucket::full(big, T0);
        assert_eq!(stored.refill(small, T0).whole(), 3);
        assert_eq!(
            stored.refill(small, T0 - 10).whole(),
            3,
            "also when the clock went back"
        );
    }

    #[test]
    fn the_bucket_round_trips_and_foreign_bytes_are_refused() {
        let bucket = Bucket {
            tokens: 1_234_567,
            stamp_ms: T0,
        };
        assert_eq!(Bucket::decode(&bucket.encode()), Some(bucket));
        let mut other_version = bucket.encode();
        other_version[0] = 2;
        assert_eq!(Bucket::decode(&other_version), None);
        assert_eq!(Bucket::decode(&bucket.encode()[..16]), None);
        assert_eq!(Bucket::decode(b""), None);
    }

    #[test]
    fn default_burst_is_one_seconds_worth_at_least_one() {
        assert_eq!(RateLimit::default_burst(0.2), 1);
        assert_eq!(RateLimit::default_burst(1.0), 1);
        assert_eq!(RateLimit::default_burst(2.5), 3);
        assert_eq!(RateLimit::default_burst(100.0), 100);
        assert!(RateLimit::new(0.0, 1).is_none());
        assert!(RateLimit::new(f64::NAN, 1).is_none());
        assert!(RateLimit::new(1.0, 0).is_none());
    }

    use super::memory_store::Store;

    #[test]
    fn acquire_reads_then_writes_once_and_over_the_cap_writes_nothing() {
        let cap = cap(1.0, 2);
        let mut store = Store::default();
        assert_eq!(acquire(&mut store, &cap, 1, |_| T0), Ok(1));
        assert_eq!(store.calls, ["load", "store"]);
        assert_eq!(acquire(&mut store, &cap, 3, |_| T0), Ok(1), "one left of the burst");
        store.calls.clear();
        assert_eq!(acquire(&mut store, &cap, 1, |_| T0 + 999), Ok(0));
        assert_eq!(store.calls, ["load"], "over the cap: a read, no write");
        assert_eq!(acquire(&mut store, &cap, 1, |_| T0 + 1_000), Ok(1));
    }

    #[test]
    fn acquire_retries_a_conflict_then_succeeds() {
        let cap = cap(10.0, 10);
        let mut store = Store {
            conflicts: MAX_ATTEMPTS - 1,
            ..Store::default()
        };
        assert_eq!(acquire(&mut store, &cap, 2, |_| T0), Ok(2));
        assert_eq!(store.calls.len(), 2 * MAX_ATTEMPTS as usize);
    }

    #[test]
    fn endless_conflicts_give_up_after_a_bounded_number_of_attempts() {
        let cap = cap(10.0, 10);
        let mut store = Store {
            conflicts: u32::MAX,
            ..Store::default()
        };
        let mut clock_reads = 0;
        let got = acquire(&mut store, &cap, 1, |_| {
            clock_reads += 1;
            T0
        });
        assert_eq!(got, Err(Unavailable));
        assert_eq!(store.calls.len(), 2 * MAX_ATTEMPTS as usize);
        assert_eq!(
            clock_reads, MAX_ATTEMPTS,
            "the caller memoizes it; asked once per attempt"
        );
    }

    #[test]
    fn a_failing_store_is_unavailable_at_once() {
        let cap = cap(10.0, 10);
        let mut load_fails = Store {
            fail_load: true,
            ..Store::default()
        };
        assert_eq!(acquire(&mut load_fails, &cap, 1, |_| T0), Err(Unavailable));
        assert_eq!(load_fails.calls, ["load"]);
        let mut store_fails = Store {
            fail_store: true,
            ..Store::default()
        };
        assert_eq!(acquire(&mut store_fails, &cap, 1, |_| T0), Err(Unavailable));
        assert_eq!(store_fails.calls, ["load", "store"]);
    }

    #[test]
    fn a_foreign_value_is_replaced_under_cas() {
        let cap = cap(10.0, 3);
        let mut store = Store::default();
        store.data.insert("k".to_owned(), (b"something else".to_vec(), 41));
        store.next_cas = 41;
        assert_eq!(acquire(&mut store, &cap, 1, |_| T0), Ok(1));
        let (bytes, cas) = store.data.get("k").cloned().unwrap();
        assert_eq!(cas, 42);
        assert_eq!(Bucket::decode(&bytes).map(|b| b.whole()), Some(2));
    }

    #[test]
    fn two_workers_share_one_bucket() {
        // Interleaved takes from two "workers" over 10 s at 50/s: the
        // bucket lets burst + rate × time through in all, not twice that.
        let cap = cap(50.0, 50);
        let mut store = Store::default();
        let mut taken = 0;
        for ms in 0..10_000u64 {
            for worker_skew in [0, 1] {
                taken += acquire(&mut store, &cap, 1, |_| T0 + ms + worker_skew).unwrap();
            }
        }
        assert!((549..=551).contains(&taken), "{taken}");
    }

    #[test]
    fn nothing_wanted_costs_nothing() {
        let mut store = Store::default();
        assert_eq!(acquire(&mut store, &cap(1.0, 1), 0, |_| T0), Ok(0));
        assert!(store.calls.is_empty());
    }
}
