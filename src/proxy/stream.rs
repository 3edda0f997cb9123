//! The HTTP context: acts on the decision at request headers
//! (`mirror::decide`, which reads the request through the host), copies the
//! body as it streams past, and hands the finished copy to the root at end
//! of stream.
//! Every callback returns `Continue`: the primary is never paused, so Envoy
//! never buffers its body for us (pausing is what turns a large upload into
//! a 413 for the client).

use super::host::{self, Buffer, HostError, Map};
use super::pairing::{self, Answer, CompareSlot, KeptBody, PairId, PairReport, PrimaryEnd, RequestInfo};
use super::sdk_defaults::{inert_context_methods, inert_http_context_methods};
use super::vm_state::{draw_u32, Loaded, PendingCopy, SharedHeaders, Target, VmState};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;
use vrata_mirror_core::abi::decode_map;
use vrata_mirror_core::compare::Status;
use vrata_mirror_core::config::{BodyComparison, MirrorPolicy};
use vrata_mirror_core::dispatch::outcome::CallReport;
use vrata_mirror_core::http::grpc::GrpcCode;
use vrata_mirror_core::mirror::body::{BodyCopy, TooLarge};
use vrata_mirror_core::mirror::decide::{self, decide, Admitted, Plan, RequestView, Skipped};
use vrata_mirror_core::mirror::request::{copyable_trailers, shape_headers, RequestHead};
use vrata_mirror_core::mirror::select::HeaderLookup;
use vrata_mirror_core::rate::{SharedStore, StoreError};
use vrata_mirror_core::telemetry::{ResponseClass, SkipReason};

const ROUTE_NAME: [&str; 2] = ["xds", "route_name"];

pub struct MirrorStream {
    shared: Rc<VmState>,
    state: State,
    /// The primary's answer, watched when a mirror of this request compares.
    watch: Option<Box<Watch>>,
}

/// The primary's side of the comparison: observed as it streams (every
/// callback returns Continue; nothing is buffered by Envoy for us).
struct Watch {
    /// Pairs waiting for the primary's end.
    pairs: Vec<PairId>,
    /// When the request ended (its copies were handed over).
    request_end_ms: Option<u64>,
    /// The largest body any comparing mirror keeps; `None`: bodies are not compared.
    max_body: Option<usize>,
    report: Option<CallReport>,
    body: KeptBody,
    /// Set once the response has ended.
    end: Option<PrimaryEnd>,
}

impl Watch {
    fn new(targets: &[Target]) -> Option<Box<Watch>> {
        if !pairing::ENABLED {
            return None;
        }
        let mut compares = false;
        let mut max_body: Option<usize> = None;
        for policy in targets.iter().filter_map(|t| t.mirror.compare.as_ref()) {
            compares = true;
            if policy.body != BodyComparison::None {
                max_body = Some(max_body.unwrap_or(0).max(policy.max_body_bytes));
            }
        }
        compares.then(|| {
            Box::new(Watch {
                pairs: Vec::new(),
                request_end_ms: None,
                max_body,
                report: None,
                body: KeptBody::Bytes(Vec::new()),
                end: None,
            })
        })
    }

    /// Keeps a chunk of the primary's body, up to the largest cap.
    #[cfg_attr(not(feature = "compare"), allow(dead_code))]
    fn keep(&mut self, body_size: usize) {
        let Some(max) = self.max_body else {
            return;
        };
        let KeptBody::Bytes(kept) = &mut self.body else {
            return;
        };
        if kept.len().saturating_add(body_size) > max {
            self.body = KeptBody::TooLarge;
            return;
        }
        match host::buffer(Buffer::ResponseBody, 0, body_size) {
            Ok(chunk) => kept.extend_from_slice(chunk.as_deref().unwrap_or_default()),
            Err(_) => self.body = KeptBody::Unavailable,
        }
    }

    /// The response ended: every pair waiting gets it.
    #[cfg_attr(not(feature = "compare"), allow(dead_code))]
    fn ended(&mut self, shared: &VmState) {
        if self.end.is_some() {
            return;
        }
        let now = host::now_ms().unwrap_or(0);
        let latency_ms = self.request_end_ms.map_or(0, |end| now.saturating_sub(end));
        let status = primary_status(self.report.as_ref());
        let body = std::mem::replace(&mut self.body, KeptBody::Unavailable);
        let end = PrimaryEnd::Complete {
            answer: Rc::new(Answer { status, body }),
            latency_ms,
        };
        self.end = Some(end.clone());
        for id in std::mem::take(&mut self.pairs) {
            pairing::primary_done(&shared.pairs, id, end.clone());
        }
    }
}

/// What is compared of the primary's head: its `:status`, or for gRPC its
/// `grpc-status` (from the headers of a trailers-only answer, else the trailers).
fn primary_status(report: Option<&CallReport>) -> Status {
    match report.and_then(|r| r.status.map(|status| (r, status))) {
        None => Status::NoAnswer(ResponseClass::Reset),
        Some((report, _)) if report.grpc => {
            Status::Grpc(report.grpc_status.as_deref().map(GrpcCode::from_status_value))
        }
        Some((_, status)) => Status::Http(status),
    }
}

/// The request as the mismatch line shows it.
fn request_info(head: &RequestHead) -> RequestInfo {
    let find = |name: &str| head.headers.get(name).map(str::to_owned);
    RequestInfo {
        method: find(":method").unwrap_or_default(),
        path: find(":path").unwrap_or_default(),
        request_id: find("x-request-id"),
    }
}

enum State {
    /// Nothing (more) to do for this request.
    Idle,
    /// Copying the body of a request with admitted mirrors.
    Capturing(Capture),
}

struct Capture {
    head: RequestHead,
    body: BodyCopy,
    targets: Vec<Target>,
}

/// The request being decided on, as the host reports it.
struct HostRequest;

impl HeaderLookup for HostRequest {
    fn header(&mut self, name: &str) -> Option<Vec<u8>> {
        host::header(Map::RequestHeaders, name).ok().flatten()
    }
}

impl SharedStore for HostRequest {
    fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        host::shared_data(key).map_err(|_| StoreError::Failed)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        host::set_shared_data(key, value, cas).map_err(|err| match err {
            HostError::CasMismatch => StoreError::Conflict,
            _ => StoreError::Failed,
        })
    }
}

impl RequestView for HostRequest {
    fn route_name(&mut self) -> Option<Vec<u8>> {
        host::property(&ROUTE_NAME).ok().flatten()
    }

    fn head(&mut self) -> Option<RequestHead> {
        let raw = host::header_map(Map::RequestHeaders).ok()?;
        decode_map(&raw).map(RequestHead::from_pairs)
    }

    fn now_ms(&mut self) -> u64 {
        host::now_ms().unwrap_or(0)
    }

    fn draw_u32(&mut self) -> u32 {
        draw_u32()
    }
}

impl MirrorStream {
    pub fn new(shared: Rc<VmState>) -> Self {
        MirrorStream {
            shared,
            state: State::Idle,
            watch: None,
        }
    }

    /// Acts on the decision (`mirror::decide`): counts the skips, and starts
    /// the copy for the mirrors admitted, or sends it at once when the
    /// request has no body.
    fn start(&mut self, active: &Loaded, end_of_stream: bool) -> State {
        let Plan {
            route,
            skipped,
            capture,
        } = decide(&active.config, &active.destinations, &mut HostRequest, end_of_stream);
        let route = route.as_deref();
        for Skipped { mirror, reason } in &skipped {
            active.metrics.series(route, mirror).count_skip(*reason);
        }
        let Some(decide::Capture {
            head,
            body,
            admitted,
            complete,
        }) = capture
        else {
            return State::Idle;
        };
        let mut targets = Vec::with_capacity(admitted.len());
        for Admitted {
            mirror,
            destination,
            admission,
        } in admitted
        {
            let series = active.metrics.series(route, &mirror);
            let limiter = active.limiter(&mirror);
            targets.push(Target {
                mirror,
                series,
                destination,
                admission,
                limiter,
            });
        }
        self.watch = Watch::new(&targets);
        let capture = Capture { head, body, targets };
        if complete {
            self.finish(capture, Vec::new());
            State::Idle
        } else {
            State::Capturing(capture)
        }
    }

    /// Builds each mirror's copy and hands them to the root. Every copy
    /// shares the one body; a mirror's `copies` share their headers too.
    fn finish(&mut self, capture: Capture, trailers: Vec<(String, String)>) {
        let Capture {
            mut head,
            body,
            targets,
        } = capture;
        let request = self.watch.as_deref_mut().map(|watch| {
            watch.request_end_ms = Some(host::now_ms().unwrap_or(0));
            Rc::new(request_info(&head))
        });
        let body = Rc::new(body.into_bytes());
        let trailers = Rc::new(trailers);
        let mut copies = Vec::with_capacity(targets.len());
        let mut shaped: Option<(Rc<MirrorPolicy>, SharedHeaders)> = None;
        // One mirror (the usual case, also with `copies`) shapes the captured
        // headers themselves: moved, not copied (a copy of every header was
        // about 12 % of the wasm instructions of a mirrored GET).
        let one_mirror = targets
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if Rc::ptr_eq(&a.mirror, &b.mirror)));
        for target in targets {
            if body.len() > target.mirror.max_body_bytes {
                target.skip(SkipReason::BodyTooLarge);
                continue;
            }
            let headers = match &shaped {
                Some((mirror, headers)) if Rc::ptr_eq(mirror, &target.mirror) => headers.clone(),
                _ => {
                    let captured = if one_mirror {
                        std::mem::take(&mut head.headers)
                    } else {
                        head.headers.clone()
                    };
                    let headers = Rc::new(shape_headers(captured, &target.mirror));
                    shaped = Some((target.mirror.clone(), headers.clone()));
                    headers
                }
            };
            let compare = self.pair(&target, request.as_ref());
            copies.push(PendingCopy {
                target,
                headers,
                body: body.clone(),
                trailers: trailers.clone(),
                compare,
            });
        }
        self.shared.submit(copies);
    }

    /// Opens the pair of a copy whose mirror compares.
    fn pair(&mut self, target: &Target, request: Option<&Rc<RequestInfo>>) -> CompareSlot {
        let (Some(policy), Some(limiter), Some(request), Some(watch)) = (
            target.mirror.compare.as_ref(),
            target.limiter.as_ref(),
            request,
            self.watch.as_deref_mut(),
        ) else {
            return CompareSlot::Off;
        };
        let report = PairReport {
            series: target.series.clone(),
            policy: policy.clone(),
            request: request.clone(),
            limiter: limiter.clone(),
        };
        let slot = self.shared.pairs.borrow_mut().open(report, watch.end.clone());
        if let (CompareSlot::Paired(id), None) = (&slot, &watch.end) {
            watch.pairs.push(*id);
        }
        slot
    }

    /// The request ended before its copy was complete.
    fn abandon(&mut self, reason: SkipReason) {
        if let State::Capturing(capture) = std::mem::replace(&mut self.state, State::Idle) {
            skip_all(capture.targets, reason);
        }
    }
}

fn skip_all(targets: Vec<Target>, reason: SkipReason) {
    for target in targets {
        target.skip(reason);
    }
}

impl Context for MirrorStream {
    inert_context_methods!();
}

impl Drop for MirrorStream {
    /// The context is deleted when its stream ends (`make build` does not
    /// export `proxy_on_done`, saving a VM call per request): a copy still
    /// being captured then belongs to a request that ended early.
    fn drop(&mut self) {
        self.abandon(SkipReason::Incomplete);
        // A primary that never completed: its pairs end as primary_incomplete.
        if let Some(watch) = self.watch.take() {
            if watch.end.is_none() {
                for id in watch.pairs {
                    pairing::primary_done(&self.shared.pairs, id, PrimaryEnd::Incomplete);
                }
            }
        }
    }
}

impl HttpContext for MirrorStream {
    inert_http_context_methods!();

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Some(active) = self.shared.active() {
            self.state = self.start(&active, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let State::Capturing(capture) = &mut self.state else {
            return Action::Continue;
        };
        if body_size > 0 {
            // The chunk is only this callback's bytes (the body is not
            // buffered); a chunk that cannot fit is not even read.
            let copied = if body_size > capture.body.room() {
                Err(SkipReason::BodyTooLarge)
            } else {
                match host::buffer(Buffer::RequestBody, 0, body_size) {
                    Ok(chunk) => capture
                        .body
                        .push(chunk.as_deref().unwrap_or_default())
                        .map_err(|TooLarge| SkipReason::BodyTooLarge),
                    Err(_) => Err(SkipReason::HostError),
                }
            };
            if let Err(reason) = copied {
                self.abandon(reason);
                return Action::Continue;
            }
        }
        if end_of_stream {
            if let State::Capturing(capture) = std::mem::replace(&mut self.state, State::Idle) {
                self.finish(capture, Vec::new());
            }
        }
        Action::Continue
    }

    #[cfg(feature = "compare")]
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Some(watch) = self.watch.as_deref_mut() {
            if watch.end.is_none() {
                let raw = host::header_map(Map::ResponseHeaders).unwrap_or_default();
                watch.report = Some(CallReport::from_headers(decode_map(&raw).unwrap_or_default()));
                if end_of_stream {
                    watch.ended(&self.shared);
                }
            }
        }
        Action::Continue
    }

    #[cfg(feature = "compare")]
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(watch) = self.watch.as_deref_mut() {
            if watch.end.is_none() {
                if body_size > 0 {
                    watch.keep(body_size);
                }
                if end_of_stream {
                    watch.ended(&self.shared);
                }
            }
        }
        Action::Continue
    }

    #[cfg(feature = "compare")]
    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        if let Some(watch) = self.watch.as_deref_mut() {
            if watch.end.is_none() {
                if let Some(report) = watch.report.as_mut() {
                    if report.needs_trailers(num_trailers) {
                        report.grpc_status = host::header(Map::ResponseTrailers, "grpc-status").ok().flatten();
                    }
                }
                watch.ended(&self.shared);
            }
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // HTTP/2 requests may end with trailers and no end-of-stream body chunk.
        if let State::Capturing(capture) = std::mem::replace(&mut self.state, State::Idle) {
            let trailers = host::header_map(Map::RequestTrailers)
                .ok()
                .and_then(|raw| decode_map(&raw).map(copyable_trailers))
                .unwrap_or_default();
            self.finish(capture, trailers);
        }
        Action::Continue
    }
}
