//! The HTTP context: passes one request's callbacks to this VM's worker,
//! with the host reads each needs (made only when the worker asks).
//! Every callback returns `Continue`: the primary is never paused, so Envoy
//! never buffers its body for us (pausing is what turns a large upload into
//! a 413 for the client).

use super::host::{self, Buffer, Map};
use super::sdk_defaults::{inert_context_methods, inert_http_context_methods};
use super::wasm_host::{draw_u32, shared_load, shared_store, MetricIds, ProxyWasm, VmWorker};
use crate::wire::decode_map;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;
use vrata_mirror_core::dispatch::outcome::AnswerHead;
use vrata_mirror_core::mirror::decide::RequestView;
use vrata_mirror_core::mirror::request::{copyable_trailers, RequestHead};
use vrata_mirror_core::mirror::select::HeaderLookup;
use vrata_mirror_core::rate::{SharedStore, StoreError};
use vrata_mirror_core::worker::MirroredRequest;

const ROUTE_NAME: [&str; 2] = ["xds", "route_name"];

pub struct MirrorStream {
    worker: Rc<VmWorker>,
    /// Its root context's: a copy wakes the root that owns its worker.
    host: ProxyWasm,
    request: MirroredRequest<MetricIds, u32>,
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
        shared_load(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        shared_store(key, value, cas)
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

/// A chunk of a body the filter is passed (only this callback's bytes: it
/// never pauses); `None` when the host refused it.
fn chunk(buffer: Buffer, size: usize) -> Option<Vec<u8>> {
    host::buffer(buffer, 0, size).ok().map(Option::unwrap_or_default)
}

impl MirrorStream {
    pub fn new(worker: Rc<VmWorker>, host: ProxyWasm) -> Self {
        MirrorStream {
            worker,
            host,
            request: MirroredRequest::default(),
        }
    }
}

impl Context for MirrorStream {
    inert_context_methods!();
}

impl Drop for MirrorStream {
    /// The context is deleted when its stream ends (`make build` does not
    /// export `proxy_on_done`, saving a VM call per request).
    fn drop(&mut self) {
        self.worker.request_gone(&mut self.host, &mut self.request);
    }
}

impl HttpContext for MirrorStream {
    inert_http_context_methods!();

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request = self
            .worker
            .request_headers(&mut self.host, &mut HostRequest, end_of_stream);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.worker.request_body(
            &mut self.host,
            &mut self.request,
            body_size,
            || chunk(Buffer::RequestBody, body_size),
            end_of_stream,
        );
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.worker.request_trailers(&mut self.host, &mut self.request, || {
            host::header_map(Map::RequestTrailers)
                .ok()
                .and_then(|raw| decode_map(&raw).map(copyable_trailers))
                .unwrap_or_default()
        });
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.worker.response_headers(
            &mut self.host,
            &mut self.request,
            || {
                let raw = host::header_map(Map::ResponseHeaders).unwrap_or_default();
                AnswerHead::from_headers(decode_map(&raw).unwrap_or_default())
            },
            end_of_stream,
        );
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.worker.response_body(
            &mut self.host,
            &mut self.request,
            body_size,
            || chunk(Buffer::ResponseBody, body_size),
            end_of_stream,
        );
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        self.worker
            .response_trailers(&mut self.host, &mut self.request, num_trailers, |name| {
                host::header(Map::ResponseTrailers, name).ok().flatten()
            });
        Action::Continue
    }
}
