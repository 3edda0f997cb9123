//! One copy of one request, from its admission to its last event.
//!
//! [`MirrorCopy`] is the only owner of what a copy holds at its
//! destination (its in-flight slot, and with it the back-off's probe) and
//! of its place in the comparison. Its exits are the only ways to end it,
//! and each updates the metrics, the slot and the pair together:
//! - [`MirrorCopy::skip`]: not sent, with a reason;
//! - [`MirrorCopy::refused`]: the host would not take it;
//! - [`MirrorCopy::finish`]: its call ended, however it ended.
//!
//! A copy dropped without an exit is a bug: its slot is still freed (so
//! the in-flight count stays exact) and [`leaked_copies`] counts it, which
//! the tests check.

use super::compare::{CopyCompare, Pairs};
use super::host::{Reporting, Telemetry};
use crate::config::MirrorPolicy;
use crate::dispatch::destination::Slot;
use crate::dispatch::outcome::CallEnd;
use crate::mirror::body::Carriage;
use crate::telemetry::catalogue::Event;
use crate::telemetry::series::{report, Series};
use crate::telemetry::SkipReason;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub struct MirrorCopy<I> {
    mirror: Rc<MirrorPolicy>,
    series: Rc<Series<I>>,
    /// `None` once the copy has taken an exit.
    slot: Option<Slot>,
    compare: CopyCompare,
}

thread_local! {
    /// Copies dropped without an exit on this thread (each worker is one).
    static LEAKED: Cell<u64> = const { Cell::new(0) };
}

/// Copies dropped on this thread without taking an exit: always 0 unless
/// the worker has a bug.
pub fn leaked_copies() -> u64 {
    LEAKED.with(Cell::get)
}

impl<I> MirrorCopy<I> {
    pub fn new(mirror: Rc<MirrorPolicy>, series: Rc<Series<I>>, slot: Slot, compare: CopyCompare) -> Self {
        MirrorCopy {
            mirror,
            series,
            slot: Some(slot),
            compare,
        }
    }

    pub fn mirror(&self) -> &Rc<MirrorPolicy> {
        &self.mirror
    }

    pub fn series(&self) -> &Rc<Series<I>> {
        &self.series
    }

    pub fn compare(&self) -> &CopyCompare {
        &self.compare
    }

    /// Makes this streamed copy hold `extra` more body bytes of its
    /// destination's budget ([`Carriage::Streamed`](crate::mirror::body::Carriage)).
    /// `false`: over the budget (or the copy already took its exit).
    pub fn hold_body(&self, extra: usize) -> bool {
        let budget = Carriage::Streamed.limit(&self.mirror);
        self.slot.as_ref().is_some_and(|slot| slot.hold_body(extra, budget))
    }

    /// Gives back what it held ([`MirrorCopy::hold_body`]), before its exit.
    pub fn release_body(&self, held: usize) {
        if let Some(slot) = &self.slot {
            slot.release_body(held);
        }
    }

    /// Opens this copy's pair, if its mirror compares.
    pub fn pair(&mut self, pairs: &RefCell<Pairs<I>>, watch: &mut super::compare::Watch) {
        pairs
            .borrow_mut()
            .open(&mut self.compare, &self.series, &self.mirror, watch);
    }

    /// The host accepted the copy.
    pub fn sent<T: Telemetry<Ids = I>>(&self, host: &mut T) {
        report(host, &self.series, Event::Sent);
        Pairs::sent(&self.compare, host, &self.series);
    }

    /// Exit: not sent, for `reason`.
    pub fn skip<T: Reporting<Ids = I>>(mut self, host: &mut T, pairs: &RefCell<Pairs<I>>, reason: SkipReason) {
        Pairs::cancel(pairs, &self.compare, host);
        report(host, &self.series, Event::Skipped(reason));
        if let Some(slot) = self.slot.take() {
            slot.abandon();
        }
    }

    /// Exit: the host refused the copy at `now_ms`. Counted as
    /// `dispatch_failed`, and a delivery failure for the back-off.
    pub fn refused<T: Reporting<Ids = I>>(mut self, host: &mut T, pairs: &RefCell<Pairs<I>>, now_ms: u64) {
        Pairs::cancel(pairs, &self.compare, host);
        report(host, &self.series, Event::Skipped(SkipReason::DispatchFailed));
        if let Some(slot) = self.slot.take() {
            slot.complete(false, now_ms);
        }
    }

    /// Exit: the copy's call ended at `now_ms`, `elapsed_ms` after it was
    /// sent. The shadow's body (`body_size` bytes, read by `read_body`) is
    /// read only if the comparison needs it.
    #[allow(clippy::too_many_arguments)]
    pub fn finish<H: Reporting<Ids = I>>(
        mut self,
        host: &mut H,
        pairs: &RefCell<Pairs<I>>,
        end: &CallEnd,
        elapsed_ms: u64,
        now_ms: u64,
        body_size: usize,
        read_body: impl FnOnce() -> Option<Vec<u8>>,
    ) {
        let class = end.class();
        Pairs::shadow_done(pairs, &self.compare, host, end, class, body_size, read_body);
        let latency_ms = class.is_answer().then_some(elapsed_ms);
        report(host, &self.series, Event::Answered { class, latency_ms });
        if let Some(slot) = self.slot.take() {
            slot.complete(!class.is_delivery_failure(), now_ms);
        }
    }
}

impl<I> Drop for MirrorCopy<I> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.abandon();
            LEAKED.with(|leaked| leaked.set(leaked.get() + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::dispatch::destination::DestinationState;
    use crate::worker::compare::Limiters;

    #[test]
    fn a_copy_dropped_without_an_exit_is_counted_and_its_slot_freed() {
        let config = parse(br#"{"forward": {"mirror": {"destinationId": "s"}}}"#).unwrap();
        let mirror = config.default_policy.mirrors[0].clone();
        let destination = Rc::new(RefCell::new(DestinationState::default()));
        let slot = Slot::take(&destination, 10, || 0).unwrap();
        let compare = CopyCompare::admitted(&Limiters::default(), &mirror, None);
        let copy = MirrorCopy::new(
            mirror,
            Rc::new(Series::<()>::new("r".into(), "s".into())),
            slot,
            compare,
        );
        let before = leaked_copies();
        drop(copy);
        assert_eq!(leaked_copies(), before + 1);
        assert_eq!(destination.borrow().outstanding(), 0);
    }
}
