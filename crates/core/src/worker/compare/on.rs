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
//! most one body of at most `maxBodyBytes` each, plus with a secondary one
//! secondary answer per request, shared by its pairs.
//!
//! **Secondary** (`compare.secondary`). The request's copy to the secondary
//! joins the pairs of its candidate's copies (one per `copies`) as their
//! third side: a pair waits for it too, and it too ends at the latest at
//! `timeoutMs`. A secondary that was not admitted, not sent, or gave no
//! whole answer leaves its pairs without a noise side: they are compared,
//! and their noise counts are not added (see [`compare::noise::record`]).
//! Once both answers of a pair have the same status and bodies at hand,
//! the primary's body is compared field by field with the candidate's and
//! the secondary's, counted in the endpoint's table in shared data, and the
//! verdict is the table's: `match`, `noise`, `body_mismatch` or
//! `learning`. A table that cannot be used (shared data failed, or stayed
//! contended) leaves the plain verdict, and is counted as
//! `noise_unavailable`.

use crate::compare::fields::{field_differences, FieldDiffs};
use crate::compare::noise::{self, DirectoryCache, Scratch, Slot};
use crate::compare::{self, Body, CompareResult, LogLimiter, MismatchLine, Observed, Outcome, Status};
use crate::config::{BodyComparison, ComparePolicy, MirrorPolicy, PluginConfig};
use crate::dispatch::outcome::{AnswerHead, CallEnd};
use crate::http::grpc::GrpcCode;
use crate::mirror::request::RequestHead;
use crate::telemetry::catalogue::{Event, LabelledPoint, FIELD_DIFFERENCES, FIELD_KINDS, NOISE_REQUESTS};
use crate::telemetry::series::{report, Series};
use crate::telemetry::ResponseClass;
use crate::worker::calls::TokenHasher;
use crate::worker::host::{Reporting, Telemetry};
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

/// A comparing mirror's per-worker state: its `logMismatches` limiter and,
/// with a secondary, its noise state.
#[derive(Debug)]
pub struct MirrorCompare {
    limiter: RefCell<LogLimiter>,
    noise: Option<RefCell<NoiseState>>,
}

/// What a worker keeps for a mirror's noise tables: the directory's
/// endpoints it has seen, and buffers reused for every pair.
#[derive(Debug, Default)]
struct NoiseState {
    directory: DirectoryCache,
    scratch: Scratch,
    raw: FieldDiffs,
    noise: FieldDiffs,
}

/// Each comparing mirror's [`MirrorCompare`], per worker and active
/// configuration, made on first use.
#[derive(Debug, Default)]
pub struct Limiters {
    by_mirror: RefCell<Vec<(Rc<MirrorPolicy>, Rc<MirrorCompare>)>>,
}

impl Limiters {
    fn of(&self, mirror: &Rc<MirrorPolicy>) -> Option<Rc<MirrorCompare>> {
        let compare = mirror.compare.as_ref()?;
        let mut by_mirror = self.by_mirror.borrow_mut();
        if let Some((_, state)) = by_mirror.iter().find(|(m, _)| Rc::ptr_eq(m, mirror)) {
            return Some(state.clone());
        }
        let state = Rc::new(MirrorCompare {
            limiter: RefCell::new(LogLimiter::new(compare.log_mismatches)),
            noise: compare.noise.as_ref().map(|_| RefCell::new(NoiseState::default())),
        });
        by_mirror.push((mirror.clone(), state.clone()));
        Some(state)
    }
}

/// How one copy takes part in the comparison.
#[derive(Debug)]
pub enum CopyCompare {
    /// Its mirror has no `compare`.
    Off,
    /// Admitted; paired when its request hands it over.
    Admitted(Rc<MirrorCompare>),
    Paired(PairId),
    /// The table was full: counted as `overflow` if the copy is sent.
    Overflow,
    /// A copy to the secondary of this (candidate) mirror; it joins the
    /// candidate's pairs when its request hands it over.
    Secondary(Rc<MirrorPolicy>),
    /// The secondary side of these pairs.
    SecondaryOf(Vec<PairId>),
}

impl CopyCompare {
    /// A copy of `mirror` was admitted, right after a copy of `previous`.
    pub fn admitted(
        limiters: &Limiters,
        mirror: &Rc<MirrorPolicy>,
        previous: Option<&Rc<MirrorPolicy>>,
    ) -> CopyCompare {
        let secondary_of = previous.filter(|p| p.secondary.as_ref().is_some_and(|s| Rc::ptr_eq(s, mirror)));
        if let Some(candidate) = secondary_of {
            return CopyCompare::Secondary(candidate.clone());
        }
        limiters.of(mirror).map_or(CopyCompare::Off, CopyCompare::Admitted)
    }

    fn compares(&self) -> bool {
        matches!(
            self,
            CopyCompare::Admitted(_) | CopyCompare::Paired(_) | CopyCompare::Overflow
        )
    }
}

/// What a pair needs to report itself.
struct PairReport<I> {
    series: Rc<Series<I>>,
    policy: ComparePolicy,
    request: Rc<RequestInfo>,
    state: Rc<MirrorCompare>,
}

/// A pair's secondary side.
#[derive(Debug, Clone)]
enum SecondarySide {
    /// None: the mirror has no secondary, or its copy was not admitted.
    Absent,
    Waiting,
    /// Ended: its whole answer, or `None` (not sent, no answer).
    Ended(Option<Rc<Answer>>),
}

struct Pair<I> {
    report: PairReport<I>,
    primary: Option<PrimaryEnd>,
    shadow: Option<Answer>,
    secondary: SecondarySide,
}

/// Every side ended.
struct Settled<I> {
    report: PairReport<I>,
    primary: PrimaryEnd,
    shadow: Answer,
    secondary: Option<Rc<Answer>>,
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
        mirror: &Rc<MirrorPolicy>,
        watch: &mut Watch,
    ) {
        if let (CopyCompare::Secondary(candidate), Some(watching)) = (&*compare, watch.0.as_deref_mut()) {
            let ids: Vec<PairId> = watching
                .opened
                .iter()
                .filter(|(m, _)| Rc::ptr_eq(m, candidate))
                .map(|(_, id)| *id)
                .collect();
            for id in &ids {
                if let Some(pair) = self.pending.get_mut(id) {
                    pair.secondary = SecondarySide::Waiting;
                }
            }
            *compare = CopyCompare::SecondaryOf(ids);
            return;
        }
        let (CopyCompare::Admitted(state), Some(policy), Some(watching)) =
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
            state: state.clone(),
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
        if mirror.secondary.is_some() {
            watching.opened.push((mirror.clone(), id));
        }
        self.pending.insert(
            id,
            Pair {
                report,
                primary,
                shadow: None,
                secondary: SecondarySide::Absent,
            },
        );
        *compare = CopyCompare::Paired(id);
    }

    /// The copy will not be sent: its pair is forgotten, uncounted; a
    /// secondary's pairs go on without a noise side.
    pub fn cancel<H: Reporting<Ids = I>>(pairs: &RefCell<Self>, compare: &CopyCompare, host: &mut H) {
        match compare {
            CopyCompare::Paired(id) => {
                pairs.borrow_mut().pending.remove(id);
            }
            CopyCompare::SecondaryOf(ids) => Self::secondary_ended(pairs, ids, host, None),
            _ => {}
        }
    }

    /// The secondary of pairs `ids` ended with `answer`: each pair that has
    /// its other sides is reported.
    fn secondary_ended<H: Reporting<Ids = I>>(
        pairs: &RefCell<Self>,
        ids: &[PairId],
        host: &mut H,
        answer: Option<Rc<Answer>>,
    ) {
        for id in ids {
            let settled = {
                let mut pairs = pairs.borrow_mut();
                match pairs.pending.get_mut(id) {
                    Some(pair) => pair.secondary = SecondarySide::Ended(answer.clone()),
                    None => continue,
                }
                pairs.settle(*id)
            };
            if let Some(settled) = settled {
                settled.report(host);
            }
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
    pub fn shadow_done<H: Reporting<Ids = I>>(
        pairs: &RefCell<Self>,
        compare: &CopyCompare,
        host: &mut H,
        end: &CallEnd,
        class: ResponseClass,
        body_size: usize,
        read_body: impl FnOnce() -> Option<Vec<u8>>,
    ) {
        let (id, secondary_of) = match compare {
            CopyCompare::Paired(id) => (*id, None),
            CopyCompare::SecondaryOf(ids) => match ids.first() {
                Some(first) => (*first, Some(ids)),
                None => return,
            },
            _ => return,
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
        if let Some(ids) = secondary_of {
            let answer = status.is_answer().then(|| Rc::new(answer));
            Self::secondary_ended(pairs, ids, host, answer);
            return;
        }
        let settled = pairs.borrow_mut().shadow_side(id, answer);
        if let Some(settled) = settled {
            settled.report(host);
        }
    }

    fn shadow_side(&mut self, id: PairId, answer: Answer) -> Option<Settled<I>> {
        self.pending.get_mut(&id)?.shadow = Some(answer);
        self.settle(id)
    }

    fn primary_side(&mut self, id: PairId, end: PrimaryEnd) -> Option<Settled<I>> {
        self.pending.get_mut(&id)?.primary = Some(end);
        self.settle(id)
    }

    /// The pair, removed, once every side it waits for has ended.
    fn settle(&mut self, id: PairId) -> Option<Settled<I>> {
        let pair = self.pending.get(&id)?;
        let waiting = matches!(pair.secondary, SecondarySide::Waiting);
        if pair.primary.is_none() || pair.shadow.is_none() || waiting {
            return None;
        }
        let pair = self.pending.remove(&id)?;
        Some(Settled {
            report: pair.report,
            primary: pair.primary?,
            shadow: pair.shadow?,
            secondary: match pair.secondary {
                SecondarySide::Ended(answer) => answer,
                SecondarySide::Absent | SecondarySide::Waiting => None,
            },
        })
    }
}

impl<I> Settled<I> {
    /// Counts the result, records the primary's latency, logs a mismatch
    /// line if the limiter allows.
    fn report<H: Reporting<Ids = I>>(self, host: &mut H) {
        let Settled {
            report: pair,
            primary,
            shadow,
            secondary,
        } = self;
        let primary_answer = match &primary {
            PrimaryEnd::Complete { answer, latency_ms } => {
                report(host, &pair.series, Event::PrimaryLatency(*latency_ms));
                Some(answer.clone())
            }
            PrimaryEnd::Incomplete => None,
        };
        let (mut result, outcome) = compare::judge(
            primary_answer.as_deref().map(Answer::observed),
            shadow.observed(),
            &pair.policy,
        );
        if let (Some(Outcome::Match | Outcome::BodyMismatch(_)), Some(primary)) = (&outcome, &primary_answer) {
            if let Some(verdict) = pair.judge_noise(host, primary, &shadow, secondary.as_deref()) {
                result = verdict;
            }
        }
        report(host, &pair.series, Event::Compared(result));
        let (Some(outcome), Some(primary)) = (outcome, primary_answer) else {
            return;
        };
        let real = matches!(result, CompareResult::StatusMismatch | CompareResult::BodyMismatch);
        if !real || !outcome.is_mismatch() || !host.mismatch_log_enabled() {
            return;
        }
        let now = host.now_ms();
        let Some(not_logged) = pair.state.limiter.borrow_mut().admit(now) else {
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

/// The field label of the table's overflow bucket, and the method label of
/// the endpoints beyond `maxEndpoints`.
pub const OVERFLOW_LABEL: &str = "(overflow)";

impl<I> PairReport<I> {
    /// With a secondary, the verdict of a pair whose statuses are equal and
    /// bodies at hand: both differences counted in the endpoint's table and
    /// the metrics, the table's verdict. `None`: no secondary, or the table
    /// could not be used (counted as `noise_unavailable`).
    fn judge_noise<H: Reporting<Ids = I>>(
        &self,
        host: &mut H,
        primary: &Answer,
        candidate: &Answer,
        secondary: Option<&Answer>,
    ) -> Option<CompareResult> {
        let policy = self.policy.noise.as_ref()?;
        let mut state = self.state.noise.as_ref()?.borrow_mut();
        let NoiseState {
            directory,
            scratch,
            raw,
            noise: noise_diffs,
        } = &mut *state;
        let (KeptBody::Bytes(p), KeptBody::Bytes(c)) = (&primary.body, &candidate.body) else {
            return None;
        };
        let diff = |out: &mut FieldDiffs, other: &[u8]| {
            field_differences(
                out,
                p,
                other,
                self.policy.body,
                &self.policy.ignore_fields,
                policy.max_fields,
            )
        };
        diff(raw, c);
        let noise = match secondary {
            Some(Answer {
                status,
                body: KeptBody::Bytes(s),
            }) if *status == primary.status && s.len() <= self.policy.max_body_bytes => {
                diff(noise_diffs, s);
                Some(&*noise_diffs)
            }
            _ => None,
        };
        let grpc = matches!(primary.status, Status::Grpc(_));
        let method = noise::endpoint_method(&self.request.method, &self.request.path, grpc);
        let counted = noise::resolve(host, policy, directory, self.series.route(), method).and_then(|(slot, key)| {
            let recorded = noise::record(host, key, raw, noise, policy, scratch)?;
            Ok((slot, recorded))
        });
        let (slot, recorded) = match counted {
            Ok(counted) => counted,
            Err(_) => {
                report(host, &self.series, Event::NoiseUnavailable);
                return None;
            }
        };
        if let Some(noise) = noise {
            let method = match slot {
                Slot::Endpoint(_) => method,
                Slot::Overflow => OVERFLOW_LABEL,
            };
            count_fields(host, &self.series, method, scratch, raw, noise);
        }
        Some(recorded.verdict.into())
    }
}

/// The metrics of one counted request: the endpoint's request, and each
/// differing field as the table counted it (a field the table has no room
/// for counts once per request and side under [`OVERFLOW_LABEL`]).
fn count_fields<H: Reporting<Ids = I>, I>(
    host: &mut H,
    series: &Series<I>,
    method: &str,
    scratch: &Scratch,
    raw: &FieldDiffs,
    noise: &FieldDiffs,
) {
    host.count_labelled(
        series,
        LabelledPoint {
            metric: &NOISE_REQUESTS,
            values: &[method],
        },
    );
    let mut label = String::new();
    for (diffs, kind) in [(raw, FIELD_KINDS[0]), (noise, FIELD_KINDS[1])] {
        let mut overflowed = diffs.overflowed();
        for field in diffs.fields() {
            if scratch.table.counts(field).is_none() {
                overflowed = true;
                continue;
            }
            field_label(&mut label, field);
            host.count_labelled(
                series,
                LabelledPoint {
                    metric: &FIELD_DIFFERENCES,
                    values: &[method, &label, kind],
                },
            );
        }
        if overflowed {
            host.count_labelled(
                series,
                LabelledPoint {
                    metric: &FIELD_DIFFERENCES,
                    values: &[method, OVERFLOW_LABEL, kind],
                },
            );
        }
    }
}

/// A field as its label spells it: the path, and `#kind` unless the kind is
/// `value` (`items[].price`, `tags[]#order`; not `:`, which Envoy turns
/// into `_` in stat names).
pub fn field_label(out: &mut String, field: compare::Field<'_>) {
    out.clear();
    out.push_str(field.path);
    if field.kind != compare::JsonDifferenceKind::Value {
        out.push('#');
        out.push_str(field.kind.label());
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
    /// Pairs opened for mirrors with a secondary, which joins them.
    opened: Vec<(Rc<MirrorPolicy>, PairId)>,
    /// The request, once its copies were handed over (buffered) or opened
    /// (streamed).
    request: Option<Rc<RequestInfo>>,
    /// When the request ended, once it did.
    request_end_ms: Option<u64>,
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
                opened: Vec::new(),
                request: None,
                request_end_ms: None,
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

    /// The request's copies are handed over or opened: what their pairs'
    /// mismatch lines say about it.
    pub fn describe(&mut self, head: &RequestHead) {
        if let Some(watching) = self.0.as_deref_mut() {
            watching.request = Some(Rc::new(RequestInfo::of(head)));
        }
    }

    /// Whether a compared copy waits for the request's end (the start of the primary's
    /// latency) and has not seen it yet.
    pub fn awaits_request_end(&self) -> bool {
        self.0
            .as_deref()
            .is_some_and(|watching| watching.request_end_ms.is_none())
    }

    /// The request ended at `now_ms`: the primary's latency runs from here.
    pub fn request_ended(&mut self, now_ms: u64) {
        if let Some(watching) = self.0.as_deref_mut() {
            watching.request_end_ms = Some(now_ms);
        }
    }

    /// The primary's response headers.
    pub fn response_headers<H: Reporting>(
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
    pub fn response_body<H: Reporting>(
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
    pub fn response_trailers<H: Reporting>(
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
    pub fn gone<H: Reporting>(&mut self, pairs: &RefCell<Pairs<H::Ids>>, host: &mut H) {
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
    fn ended<H: Reporting>(&mut self, pairs: &RefCell<Pairs<H::Ids>>, host: &mut H) {
        let Some(watching) = self.watching() else {
            return;
        };
        let now = host.now_ms();
        let latency_ms = watching.request_end_ms.map_or(0, |end| now.saturating_sub(end));
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
