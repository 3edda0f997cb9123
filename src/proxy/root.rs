//! The root context: loads the configuration into this VM's worker, creates
//! the HTTP contexts, and sends every copy (the worker queues them; the
//! root's queue wake-up or tick sends them), so that every call's answer
//! comes back here.

use super::host::{self, Buffer, Map};
use super::logger;
use super::sdk_defaults::{inert_context_methods, inert_root_context_methods};
use super::stream::MirrorStream;
use super::wasm_host::{ProxyWasm, VmWorker};
use crate::wire::decode_map;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;
use vrata_mirror_core::dispatch::outcome::{headerless_end, AnswerHead, CallEnd};
use vrata_mirror_core::worker::{refusal_line, CallTiming};

pub struct MirrorRoot {
    worker: Rc<VmWorker>,
    host: ProxyWasm,
    /// A reconfiguration keeps the queue registered the first time.
    waker_registered: bool,
}

impl MirrorRoot {
    pub fn new() -> Self {
        logger::install();
        MirrorRoot {
            worker: Rc::new(VmWorker::new()),
            host: ProxyWasm::default(),
            waker_registered: false,
        }
    }

    fn load(&mut self, plugin_configuration_size: usize) -> Result<(), String> {
        let text = host::buffer(Buffer::PluginConfiguration, 0, plugin_configuration_size)
            .map_err(|err| format!("the plugin configuration could not be read from the host: {err:?}"))?
            .unwrap_or_default();
        self.worker.configure(&text)
    }
}

/// How a call ended, from what the host reports about it: the response
/// headers in one read, then only what they leave open (a gRPC status in
/// the trailers, the text of a reply Envoy made itself). Envoy's wasm host
/// reports a reset mid-answer, an answer over its buffer limit and a
/// timeout mid-answer alike, with no headers: told apart by the time the
/// call took (`headerless_end`).
fn call_end(num_headers: usize, body_size: usize, num_trailers: usize, timing: CallTiming) -> CallEnd {
    if num_headers == 0 {
        return headerless_end(timing.elapsed_ms, timing.timeout_ms);
    }
    let headers = host::header_map(Map::CallResponseHeaders).unwrap_or_default();
    CallEnd::Answered(AnswerHead::read_call_answer(
        decode_map(&headers).unwrap_or_default(),
        num_trailers,
        |name| host::header(Map::CallResponseTrailers, name).ok().flatten(),
        |max| {
            host::buffer(Buffer::CallResponseBody, 0, body_size.min(max))
                .ok()
                .flatten()
        },
    ))
}

impl Context for MirrorRoot {
    inert_context_methods!();

    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
        self.worker.call_ended(
            &mut self.host,
            token_id,
            |timing| call_end(num_headers, body_size, num_trailers, timing),
            body_size,
            || {
                host::buffer(Buffer::CallResponseBody, 0, body_size)
                    .ok()
                    .map(Option::unwrap_or_default)
            },
        );
    }
}

impl RootContext for MirrorRoot {
    inert_root_context_methods!();

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match self.load(plugin_configuration_size) {
            Ok(()) => {
                if !self.waker_registered {
                    self.waker_registered = true;
                    self.host.register_waker();
                }
                true
            }
            Err(message) => {
                // One line, naming the field; Envoy then refuses the config.
                log::error!("{}", refusal_line(&message));
                false
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        // One token per wake-up; taking it keeps the host queue empty.
        let _ = host::dequeue_shared_queue(queue_id);
        self.worker.dispatch_pending(&mut self.host);
    }

    fn on_tick(&mut self) {
        let _ = host::set_tick_period_ms(0);
        self.worker.dispatch_pending(&mut self.host);
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MirrorStream::new(self.worker.clone(), self.host.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
