//! Canary comparison, on: pairs the primary's answer, seen by its request,
//! with the shadow's, seen when the copy's call ends, whichever ends first.
//!
//! One table per worker, bounded by [`MAX_PENDING_PAIRS`]: a copy sent
//! while it is full is still sent, and ends as `overflow`. An entry holds
//! at most one side's answer (the first to end); it is freed when the second
//! side ends, which always happens: the shadow's side ends at the latest at
//! the copy's `timeoutMs` (the host always reports a sent call's end), and
//! the primary's when its request is gone (`primary_incomplete` if the
//! response had not ended). A copy that is never sent frees its entry
//! uncounted. So the table holds at most `MAX_PENDING_PAIRS` entries of at
//! most one body of at most `maxBodyBytes` each.

use crate::compare::{self, Body, CompareResult, LogLimiter, MismatchLine, Observed, Status};
use crate::config::{BodyComparison, ComparePolicy, MirrorPolicy, PluginConfig};
use crate::dispatch::outcome::{AnswerHead, CallEnd};
use crate::http::grpc::GrpcCode;
use crate::mirror::request::RequestHead;
use crate::telemetry::catalogue::Event;
use crate::telemetry::series::{report, Series};
use crate::telemetry::ResponseClass;
use crate::worker::calls::TokenHasher;
use crate::worker::host::{Clock, Telemetry};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;

/// Whether this build compares answers.
pub const ENABLED: bool = true;

/// Why this build refuses `config`: never, it compares.
pub fn refusal(_config: &PluginConfig) -> Option<String> {
    None
}

/// Pairs waiting for their second side, per worker.
pub const MAX_PENDING_PAIRS: usize = 1024;

type PairId = u32;

/// An answer's body as the worker kept it.
#[derive(Debug, Clone)]
enum KeptBody {
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

    /// Appends a chunk of `size` bytes (read by `read`, `None` if the host
    /// refused it) while the whole stays within `max`.
    fn keep(&mut self, max: usize, size: usize, read: impl FnOnce() -> Option<Vec<u8>>) {
        let KeptBody::Bytes(kept) = self else {
            return;
        };
        if kept.len().saturating_add(size) > max {
            *self = KeptBody::TooLarge;
            return;
        }
        match read() {
            Some(chunk) => kept.extend_from_slice(&chunk),
            None => *self = KeptBody::Unavailable,
        }
    }
}

/// One side's whole answer.
#[derive(Debug, Clone)]
struct Answer {
    status: Status,
    body: KeptBody,
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
enum PrimaryEnd {
    Complete { answer: Rc<Answer>, latency_ms: u64 },
    Incomplete,
}

/// What the mismatch line says about the request.
#[derive(Debug)]
struct RequestInfo {
    method: String,
    path: String,
    request_id: Option<String>,
}

impl RequestInfo {
    fn of(head: &RequestHead) -> RequestInfo {
        let find = |name: &str| head.headers.get(name).map(|v| String::from_utf8_lossy(v).into_owned());
        RequestInfo {
            method: find(":method").unwrap_or_default(),
            path: find(":path").unwrap_or_default(),
            request_id: find("x-request-id"),
        }
    }
}

type Limiter = Rc<RefCell<LogLimiter>>;

/// Each comparing mirror's `logMismatches` limiter, per worker and active
/// configuration, made on first use.
#[derive(Debug, Default)]
pub struct Limiters {
    by_mirror: RefCell<Vec<(Rc<MirrorPolicy>, Limiter)>>,
}

impl Limiters {
    fn of(&self, mirror: &Rc<MirrorPolicy>) -> Option<Limiter> {
        let compare = mirror.compare.as_ref()?;
        let mut by_mirror = self.by_mirror.borrow_mut();
        if let Some((_, limiter)) = by_mirror.iter().find(|(m, _)| Rc::ptr_eq(m, mirror)) {
            return Some(limiter.clone());
        }
        let limiter = Rc::new(RefCell::new(LogLimiter::new(compare.log_mismatches)));
        by_mirror.push((mirror.clone(), limiter.clone()));
        Some(limiter)
    }
}

/// How one copy takes part in the comparison.
#[derive(Debug)]
pub enum CopyCompare {
    /// Its mirror has no `compare`.
    Off,
    /// Admitted; paired when its request hands it over.
    Admitted(Limiter),
    Paired(PairId),
    /// The table was full: counted as `overflow` if the copy is sent.
    Overflow,
}

impl CopyCompare {
    /// A copy of `mirror` was admitted.
    pub fn admitted(limiters: &Limiters, mirror: &Rc<MirrorPolicy>) -> CopyCompare {
        limiters.of(mirror).map_or(CopyCompare::Off, CopyCompare::Admitted)
    }

    fn compares(&self) -> bool {
        !matches!(self, CopyCompare::Off)
    }
}

/// What a pair needs to report itself.
struct PairReport<I> {
    series: Rc<Series<I>>,
    policy: ComparePolicy,
    request: Rc<RequestInfo>,
    limiter: Limiter,
}

struct Pair<I> {
    report: PairReport<I>,
    primary: Option<PrimaryEnd>,
    shadow: Option<Answer>,
}

/// Both sides ended.
struct Settled<I> {
    report: PairReport<I>,
    primary: PrimaryEnd,
    shadow: Answer,
}

/// Pairs waiting for their second side, per worker.
pub struct Pairs<I> {
    next: PairId,
    pending: HashMap<PairId, Pair<I>, BuildHasherDefault<TokenHasher>>,
}

impl<I> Default for Pairs<I> {
    fn default() -> Self {
        Pairs {
            next: 0,
            pending: HashMap::default(),
        }
    }
}

impl<I> Pairs<I> {
    /// Pairs waiting for their second side.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Opens the pair of an admitted copy as its request hands it over,
    /// with the primary's end if it is already known.
    pub fn open(
        &mut self,
        compare: &mut CopyCompare,
        series: &Rc<Series<I>>,
        mirror: &MirrorPolicy,
        watch: &mut Watch,
    ) {
        let (CopyCompare::Admitted(limiter), Some(policy), Some(watching)) =
            (&*compare, mirror.compare.as_ref(), watch.0.as_deref_mut())
        else {
            return;
        };
        let Some(request) = watching.request.clone() else {
            return;
        };
        if self.pending.len() >= MAX_PENDING_PAIRS {
            *compare = CopyCompare::Overflow;
            return;
        }
        let report = PairReport {
            series: series.clone(),
            policy: policy.clone(),
            request,
            limiter: limiter.clone(),
        };
        let mut id = self.next;
        // Ids wrap; skip any still in use (at most MAX_PENDING_PAIRS are).
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next = id.wrapping_add(1);
        let primary = watching.end.clone();
        if primary.is_none() {
            watching.pairs.push(id);
        }
        self.pending.insert(
            id,
            Pair {
                report,
                primary,
                shadow: None,
            },
        );
        *compare = CopyCompare::Paired(id);
    }

    /// The copy will not be sent: its pair is forgotten, uncounted.
    pub fn cancel(&mut self, compare: &CopyCompare) {
        if let CopyCompare::Paired(id) = compare {
            self.pending.remove(id);
        }
    }

    /// The copy was sent: an overflowing one is counted now.
    pub fn sent<T: Telemetry<Ids = I>>(compare: &CopyCompare, host: &mut T, series: &Series<I>) {
        if let CopyCompare::Overflow = compare {
            report(host, series, Event::Compared(CompareResult::Overflow));
        }
    }

    /// The copy's call ended (`class` as counted): the shadow's side of its
    /// pair. Its body (`body_size` bytes, read by `read_body`) is read only
    /// as far as the policy compares bodies.
    pub fn shadow_done<H: Telemetry<Ids = I> + Clock>(
        pairs: &RefCell<Self>,
        compare: &CopyCompare,
        host: &mut H,
        end: &CallEnd,
        class: ResponseClass,
        body_size: usize,
        read_body: impl FnOnce() -> Option<Vec<u8>>,
    ) {
        let CopyCompare::Paired(id) = *compare else {
            return;
        };
        let status = Status::from_class(end.status(), class);
        let policy = pairs
            .borrow()
            .pending
            .get(&id)
            .map(|pair| (pair.report.policy.body, pair.report.policy.max_body_bytes));
        let body = match policy {
            _ if matches!(status, Status::NoAnswer(_)) => KeptBody::Unavailable,
            None | Some((BodyComparison::None, _)) => KeptBody::Unavailable,
            Some((_, max)) if body_size > max => KeptBody::TooLarge,
            Some(_) => read_body().map_or(KeptBody::Unavailable, KeptBody::Bytes),
        };
        let answer = Answer { status, body };
        let settled = pairs.borrow_mut().shadow_side(id, answer);
        if let Some(settled) = settled {
            settled.report(host);
        }
    }

    fn shadow_side(&mut self, id: PairId, answer: Answer) -> Option<Settled<I>> {
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

    fn primary_side(&mut self, id: PairId, end: PrimaryEnd) -> Option<Settled<I>> {
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
}

impl<I> Settled<I> {
    /// Counts the result, records the primary's latency, logs a mismatch
    /// line if the limiter allows.
    fn report<H: Telemetry<Ids = I> + Clock>(self, host: &mut H) {
        let Settled {
            report: pair,
            primary,
            shadow,
        } = self;
        let primary_answer = match &primary {
            PrimaryEnd::Complete { answer, latency_ms } => {
                report(host, &pair.series, Event::PrimaryLatency(*latency_ms));
                Some(answer.clone())
            }
            PrimaryEnd::Incomplete => None,
        };
        let (result, outcome) = compare::judge(
            primary_answer.as_deref().map(Answer::observed),
            shadow.observed(),
            &pair.policy,
        );
        report(host, &pair.series, Event::Compared(result));
        let (Some(outcome), Some(primary)) = (outcome, primary_answer) else {
            return;
        };
        if !outcome.is_mismatch() || !host.mismatch_log_enabled() {
            return;
        }
        let now = host.now_ms();
        let Some(not_logged) = pair.limiter.borrow_mut().admit(now) else {
            return;
        };
        let line = MismatchLine {
            route: pair.series.route(),
            destination: pair.series.destination(),
            method: &pair.request.method,
            path: &pair.request.path,
            request_id: pair.request.request_id.as_deref(),
            primary: primary.status,
            shadow: shadow.status,
            outcome: &outcome,
            not_logged,
        };
        host.log_mismatch(&line.render());
    }
}

/// The primary's side of a request whose copies compare: its answer,
/// observed as it streams past (nothing is buffered by the host for it).
#[derive(Debug, Default)]
pub struct Watch(Option<Box<Watching>>);

#[derive(Debug)]
struct Watching {
    /// Pairs waiting for the primary's end.
    pairs: Vec<PairId>,
    /// The request, once it ended (its copies were handed over).
    request: Option<Rc<RequestInfo>>,
    request_end_ms: u64,
    /// The largest body any comparing mirror keeps; `None`: bodies are not compared.
    max_body: Option<usize>,
    head: Option<AnswerHead>,
    body: KeptBody,
    /// Set once the response has ended.
    end: Option<PrimaryEnd>,
}

impl Watch {
    /// A watch when any of `mirrors` compares.
    pub fn for_mirrors<'a>(mirrors: impl IntoIterator<Item = (&'a MirrorPolicy, &'a CopyCompare)>) -> Watch {
        let mut compares = false;
        let mut max_body: Option<usize> = None;
        for (mirror, copy) in mirrors {
            let Some(policy) = mirror.compare.as_ref().filter(|_| copy.compares()) else {
                continue;
            };
            compares = true;
            if policy.body != BodyComparison::None {
                max_body = Some(max_body.unwrap_or(0).max(policy.max_body_bytes));
            }
        }
        Watch(compares.then(|| {
            Box::new(Watching {
                pairs: Vec::new(),
                request: None,
                request_end_ms: 0,
                max_body,
                head: None,
                body: KeptBody::Bytes(Vec::new()),
                end: None,
            })
        }))
    }

    /// Whether the primary's answer is watched and has not ended: the host
    /// reads it only then.
    pub fn is_watching(&self) -> bool {
        self.0.as_ref().is_some_and(|w| w.end.is_none())
    }

    /// The request ended at `now_ms`: its copies are handed over.
    pub fn request_ended(&mut self, head: &RequestHead, now_ms: u64) {
        if let Some(watching) = self.0.as_deref_mut() {
            watching.request = Some(Rc::new(RequestInfo::of(head)));
            watching.request_end_ms = now_ms;
        }
    }

    /// The primary's response headers.
    pub fn response_headers<H: Telemetry + Clock>(
        &mut self,
        pairs: &RefCell<Pairs<H::Ids>>,
        host: &mut H,
        head: AnswerHead,
        end_of_stream: bool,
    ) {
        let Some(watching) = self.watching() else {
            return;
        };
        watching.head = Some(head);
        if end_of_stream {
            self.ended(pairs, host);
        }
    }

    /// A chunk of the primary's response body: `size` bytes, read by `read`
    /// (`None`: the host refused) only if it is kept.
    pub fn response_body<H: Telemetry + Clock>(
        &mut self,
        pairs: &RefCell<Pairs<H::Ids>>,
        host: &mut H,
        size: usize,
        read: impl FnOnce() -> Option<Vec<u8>>,
        end_of_stream: bool,
    ) {
        let Some(watching) = self.watching() else {
            return;
        };
        if let (Some(max), true) = (watching.max_body, size > 0) {
            watching.body.keep(max, size, read);
        }
        if end_of_stream {
            self.ended(pairs, host);
        }
    }

    /// The primary's response trailers (`read` reads one by name).
    pub fn response_trailers<H: Telemetry + Clock>(
        &mut self,
        pairs: &RefCell<Pairs<H::Ids>>,
        host: &mut H,
        num_trailers: usize,
        read: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) {
        let Some(watching) = self.watching() else {
            return;
        };
        if let Some(head) = watching.head.as_mut() {
            head.read_trailer_status(num_trailers, read);
        }
        self.ended(pairs, host);
    }

    /// The request is gone: a primary that never completed ends its pairs
    /// as `primary_incomplete`.
    pub fn gone<H: Telemetry + Clock>(&mut self, pairs: &RefCell<Pairs<H::Ids>>, host: &mut H) {
        let Some(watching) = self.0.take() else {
            return;
        };
        if watching.end.is_none() {
            for id in watching.pairs {
                let settled = pairs.borrow_mut().primary_side(id, PrimaryEnd::Incomplete);
                if let Some(settled) = settled {
                    settled.report(host);
                }
            }
        }
    }

    fn watching(&mut self) -> Option<&mut Watching> {
        self.0.as_deref_mut().filter(|w| w.end.is_none())
    }

    /// The response ended: every pair waiting gets it.
    fn ended<H: Telemetry + Clock>(&mut self, pairs: &RefCell<Pairs<H::Ids>>, host: &mut H) {
        let Some(watching) = self.watching() else {
            return;
        };
        let now = host.now_ms();
        let latency_ms = match watching.request {
            Some(_) => now.saturating_sub(watching.request_end_ms),
            None => 0,
        };
        let status = primary_status(watching.head.as_ref());
        let body = std::mem::replace(&mut watching.body, KeptBody::Unavailable);
        let end = PrimaryEnd::Complete {
            answer: Rc::new(Answer { status, body }),
            latency_ms,
        };
        watching.end = Some(end.clone());
        for id in std::mem::take(&mut watching.pairs) {
            let settled = pairs.borrow_mut().primary_side(id, end.clone());
            if let Some(settled) = settled {
                settled.report(host);
            }
        }
    }
}

/// What is compared of the primary's head: its `:status`, or for gRPC its
/// `grpc-status` (from the headers of a trailers-only answer, else the trailers).
fn primary_status(head: Option<&AnswerHead>) -> Status {
    match head.and_then(|h| h.status.map(|status| (h, status))) {
        None => Status::NoAnswer(ResponseClass::Reset),
        Some((head, _)) if head.grpc => Status::Grpc(head.grpc_status.as_deref().map(GrpcCode::from_status_value)),
        Some((_, status)) => Status::Http(status),
    }
}
