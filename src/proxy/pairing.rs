//! Canary comparison (issue 10): pairs the primary's answer, seen by the
//! HTTP context, with the shadow's, seen by the root, whichever ends first.
//!
//! One table per worker VM, bounded by [`MAX_PENDING_PAIRS`]: a copy sent
//! while it is full is still sent, and ends as `overflow`. An entry holds
//! at most one side's answer (the first to end); it is freed when the second
//! side ends, which always happens: the shadow's side ends at the latest at
//! the copy's `timeoutMs` (Envoy always reports a dispatched call's end),
//! and the primary's when its HTTP context is deleted (`primary_incomplete`
//! if the response had not ended). A copy that is never sent frees its
//! entry uncounted. So the table holds at most `MAX_PENDING_PAIRS` entries
//! of at most one body of at most `maxBodyBytes` each.

use super::host;
use super::metrics::Series;
use super::vm_state::TokenHasher;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use vrata_mirror_core::compare::{self, Body, CompareResult, LogLimiter, MismatchLine, Observed, Status};
use vrata_mirror_core::config::ComparePolicy;

/// Pairs waiting for their second side, per worker VM.
pub const MAX_PENDING_PAIRS: usize = 1024;

pub type PairId = u32;

/// An answer's body as the filter kept it.
#[derive(Debug, Clone)]
pub enum KeptBody {
    Bytes(Vec<u8>),
    TooLarge,
    Unavailable,
}

impl KeptBody {
    fn view(&self) -> Body<'_> {
        match self {
            KeptBody::Bytes(bytes) => Body::Bytes(bytes),
            KeptBody::TooLarge => Body::TooLarge,
            KeptBody::Unavailable => Body::Unavailable,
        }
    }
}

/// One side's whole answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Status,
    pub body: KeptBody,
}

impl Answer {
    fn observed(&self) -> Observed<'_> {
        Observed {
            status: self.status,
            body: self.body.view(),
        }
    }
}

/// How the primary ended: its answer and latency, or incomplete.
#[derive(Debug, Clone)]
pub enum PrimaryEnd {
    Complete { answer: Rc<Answer>, latency_ms: u64 },
    Incomplete,
}

/// What the mismatch line says about the request.
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    pub request_id: Option<String>,
}

/// What a pair needs to report itself.
pub struct PairReport {
    pub series: Rc<Series>,
    pub policy: ComparePolicy,
    pub request: Rc<RequestInfo>,
    pub limiter: Rc<RefCell<LogLimiter>>,
}

struct Pair {
    report: PairReport,
    primary: Option<PrimaryEnd>,
    shadow: Option<Answer>,
}

/// How a copy takes part in the comparison.
pub enum CompareSlot {
    /// Its mirror has no `compare`.
    Off,
    Paired(PairId),
    /// The table was full: counted as `overflow` if the copy is sent.
    Overflow(Rc<Series>),
}

#[derive(Default)]
pub struct Pairs {
    next: PairId,
    pending: HashMap<PairId, Pair, BuildHasherDefault<TokenHasher>>,
}

impl Pairs {
    /// Opens a pair, with the primary's end if it is already known.
    pub fn open(&mut self, report: PairReport, primary: Option<PrimaryEnd>) -> CompareSlot {
        if !ENABLED {
            return CompareSlot::Off;
        }
        if self.pending.len() >= MAX_PENDING_PAIRS {
            return CompareSlot::Overflow(report.series);
        }
        let mut id = self.next;
        // Ids wrap; skip any still in use (at most MAX_PENDING_PAIRS are).
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next = id.wrapping_add(1);
        self.pending.insert(
            id,
            Pair {
                report,
                primary,
                shadow: None,
            },
        );
        CompareSlot::Paired(id)
    }

    /// The copy was never sent: forget its pair, uncounted.
    pub fn cancel(&mut self, id: PairId) {
        if !ENABLED {
            return;
        }
        self.pending.remove(&id);
    }

    /// The primary's side ended. Returns the settled pair, if the shadow's had.
    fn primary_done(&mut self, id: PairId, end: PrimaryEnd) -> Option<Settled> {
        let pair = self.pending.get_mut(&id)?;
        if pair.shadow.is_none() {
            pair.primary = Some(end);
            return None;
        }
        let pair = self.pending.remove(&id)?;
        Some(Settled {
            report: pair.report,
            primary: end,
            shadow: pair.shadow?,
        })
    }

    /// The shadow's side ended. Returns the settled pair, if the primary's had.
    fn shadow_done(&mut self, id: PairId, answer: Answer) -> Option<Settled> {
        let pair = self.pending.get_mut(&id)?;
        if pair.primary.is_none() {
            pair.shadow = Some(answer);
            return None;
        }
        let pair = self.pending.remove(&id)?;
        Some(Settled {
            report: pair.report,
            primary: pair.primary?,
            shadow: answer,
        })
    }

    /// What the shadow's side needs to keep of its answer: the policy.
    pub fn policy(&self, id: PairId) -> Option<&ComparePolicy> {
        self.pending.get(&id).map(|pair| &pair.report.policy)
    }
}

/// Both sides ended.
struct Settled {
    report: PairReport,
    primary: PrimaryEnd,
    shadow: Answer,
}

impl Settled {
    /// Counts the result, records the primary's latency, logs a mismatch
    /// line if the limiter allows.
    fn report(self) {
        if !ENABLED {
            return;
        }
        let Settled {
            report,
            primary,
            shadow,
        } = self;
        let primary_answer = match &primary {
            PrimaryEnd::Complete { answer, latency_ms } => {
                report.series.record_primary_latency(*latency_ms);
                Some(answer.clone())
            }
            PrimaryEnd::Incomplete => None,
        };
        let (result, outcome) = compare::judge(
            primary_answer.as_deref().map(Answer::observed),
            shadow.observed(),
            &report.policy,
        );
        report.series.count_compare(result);
        let (Some(outcome), Some(primary)) = (outcome, primary_answer) else {
            return;
        };
        if !outcome.is_mismatch() || !log::log_enabled!(log::Level::Info) {
            return;
        }
        let now = host::now_ms().unwrap_or(0);
        let Some(not_logged) = report.limiter.borrow_mut().admit(now) else {
            return;
        };
        let line = MismatchLine {
            route: report.series.route(),
            destination: report.series.destination(),
            method: &report.request.method,
            path: &report.request.path,
            request_id: report.request.request_id.as_deref(),
            primary: primary.status,
            shadow: shadow.status,
            outcome: &outcome,
            not_logged,
        };
        log::info!("{}", line.render());
    }
}

/// The primary's side of pair `id` ended.
pub fn primary_done(pairs: &RefCell<Pairs>, id: PairId, end: PrimaryEnd) {
    if !ENABLED {
        return;
    }
    let settled = pairs.borrow_mut().primary_done(id, end);
    if let Some(settled) = settled {
        settled.report();
    }
}

/// The shadow's side of pair `id` ended.
pub fn shadow_done(pairs: &RefCell<Pairs>, id: PairId, answer: Answer) {
    if !ENABLED {
        return;
    }
    let settled = pairs.borrow_mut().shadow_done(id, answer);
    if let Some(settled) = settled {
        settled.report();
    }
}

/// Whether this module compares: without the `compare` feature no pair is
/// ever opened (the configuration is refused), and the comparison code is
/// left out of the module.
pub const ENABLED: bool = cfg!(feature = "compare");

/// A copy was sent: an overflowing one is counted now.
pub fn sent(slot: &CompareSlot) {
    if !ENABLED {
        return;
    }
    if let CompareSlot::Overflow(series) = slot {
        series.count_compare(CompareResult::Overflow);
    }
}
