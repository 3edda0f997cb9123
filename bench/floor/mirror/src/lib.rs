//! The floor of a proxy-wasm mirror: what every mirror must do and nothing
//! more, so that `floor100` measures what a mirrored request costs Envoy
//! before any filter's own work. Per request:
//! - read the request headers in one call and drop the framing headers
//!   (Envoy frames the copy itself);
//! - copy the body chunks as they pass (never pausing the primary);
//! - at end of stream, `dispatch_http_call` to the `shadow` cluster with a
//!   1 s timeout;
//! - ignore the response (the call is owned by the HTTP context, so the SDK
//!   drops most answers once the request is gone: no accounting at all).
//!
//! No sampling, no metrics, no back-off, no header policy: the real module
//! does all of that on top, and `wasm100 ÷ floor100` is what it costs.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::time::Duration;

const SHADOW_CLUSTER: &str = "shadow";
const TIMEOUT: Duration = Duration::from_secs(1);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(FloorRoot));
}}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorMirror::default()))
    }
}

#[derive(Default)]
struct FloorMirror {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl FloorMirror {
    fn send(&mut self) {
        let headers = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let body = (!self.body.is_empty()).then_some(self.body.as_slice());
        let _ = self.dispatch_http_call(SHADOW_CLUSTER, headers, body, vec![], TIMEOUT);
    }
}

impl Context for FloorMirror {}

impl HttpContext for FloorMirror {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers = self.get_http_request_headers();
        self.headers
            .retain(|(name, _)| name != "content-length" && name != "transfer-encoding");
        if end_of_stream {
            self.send();
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if body_size > 0 {
            if let Some(chunk) = self.get_http_request_body(0, body_size) {
                self.body.extend_from_slice(&chunk);
            }
        }
        if end_of_stream {
            self.send();
        }
        Action::Continue
    }
}
