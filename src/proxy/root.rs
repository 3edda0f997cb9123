//! The root context: loads the configuration, creates the HTTP contexts, and
//! owns every mirror call (dispatches them and receives their outcome).

use super::host::{self, Buffer, Map};
use super::logger;
use super::pairing::{self, Answer, CompareSlot, KeptBody};
use super::sdk_defaults::{inert_context_methods, inert_root_context_methods};
use super::stream::MirrorStream;
use super::vm_state::{draw_u64, Call, Calls, Loaded, PendingCopy, VmState, Waker};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;
use std::time::Duration;
use vrata_mirror_core::abi::decode_map;
use vrata_mirror_core::compare::Status;
use vrata_mirror_core::config::{self, BodyComparison};
use vrata_mirror_core::dispatch::outcome::{classify_headerless, CallReport, ENVOY_REPLY_PREFIX};
use vrata_mirror_core::telemetry::{ResponseClass, SkipReason};

pub struct MirrorRoot {
    shared: Rc<VmState>,
    calls: Calls,
    /// A reconfiguration keeps the queue registered the first time.
    waker_registered: bool,
}

impl MirrorRoot {
    pub fn new() -> Self {
        logger::install();
        MirrorRoot {
            shared: Rc::new(VmState::new()),
            calls: Calls::default(),
            waker_registered: false,
        }
    }

    fn load(&mut self, plugin_configuration_size: usize) -> Result<(), String> {
        let text = host::buffer(Buffer::PluginConfiguration, 0, plugin_configuration_size)
            .map_err(|err| format!("the plugin configuration could not be read from the host: {err:?}"))?
            .unwrap_or_default();
        let config = config::parse(&text).map_err(|err| err.to_string())?;
        #[cfg(not(feature = "compare"))]
        if let Some(field) = config.first_compare_field() {
            return Err(format!(
                "{field}: this module (vrata_mirror.wasm) does not compare answers; load vrata_mirror_compare.wasm, \
                 which `make build` writes beside it"
            ));
        }
        let previous = self.shared.active();
        self.shared.set_active(Loaded::new(config, previous.as_deref()));
        Ok(())
    }

    /// A shared queue, named at random: names are global to the host and a
    /// taken name would be silently stolen from another worker's VM.
    fn register_waker(&mut self) {
        if self.waker_registered {
            return;
        }
        self.waker_registered = true;
        let name = format!("vrata_mirror.dispatch.{:016x}", draw_u64());
        let waker = match host::register_shared_queue(&name) {
            Ok(id) => Waker::Queue(id),
            Err(err) => {
                log::warn!("vrata-mirror: shared queue unavailable ({err:?}); dispatching on the tick instead");
                Waker::Tick
            }
        };
        self.shared.set_waker(waker);
    }

    /// Sends every waiting copy.
    fn dispatch_pending(&mut self) {
        let batch = self.shared.take_pending();
        if batch.is_empty() {
            return;
        }
        let now = host::now_ms().unwrap_or(0);
        for copy in batch {
            self.dispatch(copy, now);
        }
    }

    fn dispatch(&mut self, copy: PendingCopy, now: u64) {
        let PendingCopy {
            target,
            headers,
            body,
            trailers,
            compare,
        } = copy;
        let header_refs: Vec<(&str, &str)> = headers.iter().collect();
        let trailer_refs: Vec<(&str, &str)> = trailers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let body = (!body.is_empty()).then_some(body.as_slice());
        let timeout = Duration::from_millis(u64::from(target.mirror.timeout_ms));
        // Through the SDK, which registers the token so that the response
        // comes back to this (root) context.
        let dispatched = proxy_wasm::hostcalls::dispatch_http_call(
            &target.mirror.destination,
            header_refs,
            body,
            trailer_refs,
            timeout,
        );
        match dispatched {
            Ok(token) => {
                target.series.count_request();
                pairing::sent(&compare);
                self.calls.insert(
                    token,
                    Call {
                        target,
                        started_ms: now,
                        compare,
                    },
                );
            }
            Err(status) => {
                // Unknown cluster, or the shadow's circuit breaker is full:
                // counted, not retried, and it feeds the back-off.
                log::debug!(
                    "vrata-mirror: dispatch to {} refused: {status:?}",
                    target.mirror.destination
                );
                if let CompareSlot::Paired(id) = compare {
                    self.shared.pairs.borrow_mut().cancel(id);
                }
                target.series.count_skip(SkipReason::DispatchFailed);
                target.destination.borrow_mut().complete(target.admission, false, now);
            }
        }
    }

    /// How a finished call ended, from what the host reports about it: the
    /// response headers in one read, then only what they leave open (a gRPC
    /// status in the trailers, or the text of a reply Envoy made itself). A
    /// call without headers is classed by how long it took against its
    /// timeout (`classify_headerless`). Also its `:status`, if any.
    fn classify_response(
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
        elapsed_ms: u64,
        timeout_ms: u32,
    ) -> (ResponseClass, Option<u16>) {
        if num_headers == 0 {
            return (classify_headerless(elapsed_ms, timeout_ms), None);
        }
        let headers = host::header_map(Map::CallResponseHeaders).unwrap_or_default();
        let mut report = CallReport::from_headers(decode_map(&headers).unwrap_or_default());
        if report.needs_trailers(num_trailers) {
            report.grpc_status = host::header(Map::CallResponseTrailers, "grpc-status").ok().flatten();
        }
        if report.needs_reply_text() {
            report.envoy_reply = host::buffer(Buffer::CallResponseBody, 0, body_size.min(ENVOY_REPLY_PREFIX))
                .ok()
                .flatten();
        }
        (report.classify(), report.status)
    }

    /// The shadow's side of a compared copy: its status, and its body as
    /// far as the policy compares bodies.
    fn shadow_answer(
        &self,
        id: pairing::PairId,
        class: ResponseClass,
        status: Option<u16>,
        body_size: usize,
    ) -> Answer {
        let status = Status::from_class(status, class);
        let policy = self
            .shared
            .pairs
            .borrow()
            .policy(id)
            .map(|policy| (policy.body, policy.max_body_bytes));
        let body = match policy {
            _ if matches!(status, Status::NoAnswer(_)) => KeptBody::Unavailable,
            None | Some((BodyComparison::None, _)) => KeptBody::Unavailable,
            Some((_, max)) if body_size > max => KeptBody::TooLarge,
            Some(_) => match host::buffer(Buffer::CallResponseBody, 0, body_size) {
                Ok(bytes) => KeptBody::Bytes(bytes.unwrap_or_default()),
                Err(_) => KeptBody::Unavailable,
            },
        };
        Answer { status, body }
    }
}

impl Context for MirrorRoot {
    inert_context_methods!();

    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        let Some(Call {
            target,
            started_ms,
            compare,
        }) = self.calls.remove(&token_id)
        else {
            return;
        };
        let now = host::now_ms().unwrap_or(started_ms);
        let elapsed = now.saturating_sub(started_ms);
        let (class, status) =
            Self::classify_response(num_headers, body_size, num_trailers, elapsed, target.mirror.timeout_ms);
        if let (true, CompareSlot::Paired(id)) = (pairing::ENABLED, compare) {
            let answer = self.shadow_answer(id, class, status, body_size);
            pairing::shadow_done(&self.shared.pairs, id, answer);
        }
        let latency = class.is_answer().then_some(elapsed);
        target.series.count_response(class, latency);
        target
            .destination
            .borrow_mut()
            .complete(target.admission, !class.is_delivery_failure(), now);
    }
}

impl RootContext for MirrorRoot {
    inert_root_context_methods!();

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match self.load(plugin_configuration_size) {
            Ok(()) => {
                self.register_waker();
                true
            }
            Err(message) => {
                // One line, naming the field; Envoy then refuses the config.
                log::error!("vrata-mirror: invalid plugin configuration: {message}");
                false
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        // One token per wake-up; taking it keeps the host queue empty.
        let _ = host::dequeue_shared_queue(queue_id);
        self.dispatch_pending();
    }

    fn on_tick(&mut self) {
        let _ = host::set_tick_period_ms(0);
        self.dispatch_pending();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MirrorStream::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
