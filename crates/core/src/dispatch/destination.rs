//! Per-destination bookkeeping in one worker VM: how many copies are
//! outstanding (the `maxInFlight` cap), how many body bytes its streamed
//! copies have in flight (their budget, see `mirror::body::Carriage`), and
//! whether the destination is in back-off after repeated delivery failures.
//!
//! Every admitted copy holds a [`Slot`] that must end exactly once, in
//! [`Slot::abandon`] (skipped after admission) or [`Slot::complete`] (the
//! call ended): that pairing is what keeps the outstanding count exact, and
//! `Slot` is the one place it is kept (it is neither `Clone` nor droppable
//! without the compiler's `must_use` warning).

use std::cell::RefCell;
use std::rc::Rc;

/// Consecutive delivery failures that open the back-off.
pub const TRIP_AFTER_FAILURES: u32 = 5;
/// First back-off window; doubled after each failed probe.
pub const FIRST_WINDOW_MS: u64 = 500;
/// Longest back-off window: a recovered shadow is used again within this.
pub const MAX_WINDOW_MS: u64 = 30_000;

/// Why a copy was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Backoff,
    InFlightLimit,
}

/// One admitted copy. Deliberately not `Clone`: it ends exactly once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an admission must end in abandon() or complete()"]
pub struct Admission {
    probe: bool,
}

/// One admitted copy's place at its destination, from admission to the end
/// of its call. Ends exactly once: both exits consume it.
#[derive(Debug)]
#[must_use = "a slot must end in abandon() or complete()"]
pub struct Slot {
    destination: Rc<RefCell<DestinationState>>,
    admission: Admission,
}

impl Slot {
    /// Admits one copy at `destination` (see [`DestinationState::admit`]).
    pub fn take(
        destination: &Rc<RefCell<DestinationState>>,
        max_in_flight: u32,
        now_ms: impl FnOnce() -> u64,
    ) -> Result<Slot, Refusal> {
        let admission = destination.borrow_mut().admit(max_in_flight, now_ms)?;
        Ok(Slot {
            destination: destination.clone(),
            admission,
        })
    }

    /// Adds `extra` body bytes to what its destination's streamed copies
    /// hold, if they stay within `budget` together. `false`: they would
    /// not, and nothing changed. What a copy holds is its own count (the
    /// worker's, for a call in flight), given back with
    /// [`Slot::release_body`] before the slot ends: a buffering host never
    /// pays for it.
    pub fn hold_body(&self, extra: usize, budget: usize) -> bool {
        let mut destination = self.destination.borrow_mut();
        match destination.body_bytes.checked_add(extra) {
            Some(total) if total <= budget => {
                destination.body_bytes = total;
                true
            }
            _ => false,
        }
    }

    /// Gives back `held` bytes taken with [`Slot::hold_body`].
    pub fn release_body(&self, held: usize) {
        self.destination.borrow_mut().release_body(held);
    }

    /// The copy will not be sent.
    pub fn abandon(self) {
        self.destination.borrow_mut().abandon(self.admission);
    }

    /// The copy's call ended (see [`DestinationState::complete`]).
    pub fn complete(self, delivered: bool, now_ms: u64) {
        self.destination
            .borrow_mut()
            .complete(self.admission, delivered, now_ms);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    /// Copies flow.
    Closed,
    /// No copies until `until_ms`; then one probe.
    Open { until_ms: u64, window_ms: u64 },
    /// One probe is outstanding; its outcome closes or reopens.
    Probing { window_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct DestinationState {
    outstanding: u32,
    /// Body bytes held by streamed copies in flight ([`Slot::hold_body`]).
    body_bytes: usize,
    consecutive_failures: u32,
    breaker: Breaker,
}

impl Default for DestinationState {
    fn default() -> Self {
        DestinationState {
            outstanding: 0,
            body_bytes: 0,
            consecutive_failures: 0,
            breaker: Breaker::Closed,
        }
    }
}

impl DestinationState {
    /// Copies admitted and not yet ended.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// Body bytes held by streamed copies in flight.
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }

    fn release_body(&mut self, held: usize) {
        self.body_bytes = self.body_bytes.saturating_sub(held);
    }

    /// Whether the back-off is open or probing.
    pub fn in_backoff(&self) -> bool {
        self.breaker != Breaker::Closed
    }

    /// Admits one copy if the back-off and the cap allow. `now_ms` is only
    /// called while the back-off is open, so a healthy destination costs no
    /// clock read.
    pub fn admit(&mut self, max_in_flight: u32, now_ms: impl FnOnce() -> u64) -> Result<Admission, Refusal> {
        let probe = match self.breaker {
            Breaker::Closed => false,
            Breaker::Probing { .. } => return Err(Refusal::Backoff),
            Breaker::Open { until_ms, window_ms } => {
                if now_ms() < until_ms {
                    return Err(Refusal::Backoff);
                }
                self.breaker = Breaker::Probing { window_ms };
                true
            }
        };
        if self.outstanding >= max_in_flight {
            if probe {
                self.reopen_now();
            }
            return Err(Refusal::InFlightLimit);
        }
        self.outstanding += 1;
        Ok(Admission { probe })
    }

    /// The copy was skipped after admission (body too large, dispatch never
    /// attempted...): its slot frees, and a probe lets the next copy probe.
    pub fn abandon(&mut self, admission: Admission) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if admission.probe {
            self.reopen_now();
        }
    }

    /// The copy's call ended: `delivered` is false for a reset, a timeout, a
    /// failed connection or a refused dispatch.
    pub fn complete(&mut self, admission: Admission, delivered: bool, now_ms: u64) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if delivered {
            self.consecutive_failures = 0;
            // Copies sent before the back-off opened may still succeed; only a
            // probe's success (or any success while closed) closes it.
            if admission.probe || self.breaker == Breaker::Closed {
                self.breaker = Breaker::Closed;
            }
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.breaker {
            Breaker::Closed if self.consecutive_failures >= TRIP_AFTER_FAILURES => {
                self.breaker = Breaker::Open {
                    until_ms: now_ms.saturating_add(FIRST_WINDOW_MS),
                    window_ms: FIRST_WINDOW_MS,
                };
            }
            Breaker::Probing { window_ms } if admission.probe => {
                let window_ms = window_ms.saturating_mul(2).min(MAX_WINDOW_MS);
                self.breaker = Breaker::Open {
                    until_ms: now_ms.saturating_add(window_ms),
                    window_ms,
                };
            }
            _ => {}
        }
    }

    /// The probe never went out: let the very next copy probe instead.
    fn reopen_now(&mut self) {
        if let Breaker::Probing { window_ms } = self.breaker {
            self.breaker = Breaker::Open { until_ms: 0, window_ms };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_clock() -> u64 {
        panic!("a closed back-off must not read the clock")
    }

    fn fail(state: &mut DestinationState, times: u32, now: u64) {
        for _ in 0..times {
            let a = state.admit(100, || now).unwrap();
            state.complete(a, false, now);
        }
    }

    #[test]
    fn the_cap_counts_outstanding_copies_exactly() {
        let mut s = DestinationState::default();
        let a = s.admit(2, no_clock).unwrap();
        let b = s.admit(2, no_clock).unwrap();
        assert_eq!(s.admit(2, no_clock), Err(Refusal::InFlightLimit));
        s.abandon(a);
        let c = s.admit(2, no_clock).unwrap();
        s.complete(b, true, 0);
        s.complete(c, true, 0);
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn consecutive_failures_open_the_backoff_and_a_probe_closes_it() {
        let mut s = DestinationState::default();
        fail(&mut s, TRIP_AFTER_FAILURES - 1, 1_000);
        assert!(!s.in_backoff());
        fail(&mut s, 1, 1_000);
        assert!(s.in_backoff());
        assert_eq!(s.admit(100, || 1_000 + FIRST_WINDOW_MS - 1), Err(Refusal::Backoff));
        let probe = s.admit(100, || 1_000 + FIRST_WINDOW_MS).unwrap();
        // One probe per window: others wait for its outcome.
        assert_eq!(s.admit(100, || 1_000 + FIRST_WINDOW_MS), Err(Refusal::Backoff));
        s.complete(probe, true, 2_000);
        assert!(!s.in_backoff());
        assert!(s.admit(100, no_clock).is_ok());
    }

    #[test]
    fn failed_probes_grow_the_window_up_to_the_maximum() {
        let mut s = DestinationState::default();
        let mut now = 0;
        fail(&mut s, TRIP_AFTER_FAILURES, now);
        let mut expected = FIRST_WINDOW_MS;
        for _ in 0..12 {
            now += expected;
            let probe = s.admit(100, || now).unwrap();
            s.complete(probe, false, now);
            expected = (expected * 2).min(MAX_WINDOW_MS);
            assert_eq!(s.admit(100, || now + expected - 1), Err(Refusal::Backoff));
        }
        assert_eq!(expected, MAX_WINDOW_MS);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_copy_probe() {
        let mut s = DestinationState::default();
        fail(&mut s, TRIP_AFTER_FAILURES, 0);
        let probe = s.admit(100, || FIRST_WINDOW_MS).unwrap();
        s.abandon(probe);
        assert!(s.admit(100, || FIRST_WINDOW_MS).is_ok());
    }

    #[test]
    fn streamed_copies_share_one_body_budget() {
        let destination = Rc::new(RefCell::new(DestinationState::default()));
        let a = Slot::take(&destination, 10, no_clock).unwrap();
        let b = Slot::take(&destination, 10, no_clock).unwrap();
        assert!(a.hold_body(6, 10));
        assert!(!b.hold_body(5, 10), "6 + 5 is over 10");
        assert!(b.hold_body(4, 10));
        assert!(!a.hold_body(usize::MAX, usize::MAX), "no overflow");
        assert_eq!(destination.borrow().body_bytes(), 10);
        a.release_body(6);
        a.complete(true, 0);
        assert_eq!(destination.borrow().body_bytes(), 4);
        b.release_body(4);
        b.abandon();
        assert_eq!(destination.borrow().body_bytes(), 0);
        assert_eq!(destination.borrow().outstanding(), 0);
    }

    #[test]
    fn late_successes_of_old_copies_do_not_close_an_open_backoff() {
        let mut s = DestinationState::default();
        let old = s.admit(100, no_clock).unwrap();
        fail(&mut s, TRIP_AFTER_FAILURES, 0);
        s.complete(old, true, 10);
        assert!(s.in_backoff());
    }

    #[test]
    fn a_slot_frees_its_place_on_either_exit() {
        let destination = Rc::new(RefCell::new(DestinationState::default()));
        let a = Slot::take(&destination, 2, no_clock).unwrap();
        let b = Slot::take(&destination, 2, no_clock).unwrap();
        assert_eq!(
            Slot::take(&destination, 2, no_clock).unwrap_err(),
            Refusal::InFlightLimit
        );
        a.abandon();
        assert_eq!(destination.borrow().outstanding(), 1);
        b.complete(true, 0);
        assert_eq!(destination.borrow().outstanding(), 0);
    }

    #[test]
    fn a_probe_refused_by_the_cap_does_not_wedge_the_backoff() {
        let mut s = DestinationState::default();
        let held = s.admit(1, no_clock).unwrap();
        // Open the back-off with failures of other copies.
        for _ in 0..TRIP_AFTER_FAILURES {
            let a = s.admit(2, || 0).unwrap();
            s.complete(a, false, 0);
        }
        assert_eq!(s.admit(1, || FIRST_WINDOW_MS), Err(Refusal::InFlightLimit));
        s.complete(held, true, 0);
        assert!(s.admit(1, || FIRST_WINDOW_MS).is_ok(), "the next copy probes");
    }
}
