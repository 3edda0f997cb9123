//! Inert bodies for the SDK's default trait methods that call the host.
//!
//! The SDK dispatches through `Box<dyn RootContext>` / `Box<dyn HttpContext>`,
//! so every default method of those traits sits in a vtable and is linked
//! into the module, whether or not anything calls it; each one wraps a host
//! call in `unwrap()` or `panic!`. The filter never calls them (its host
//! calls go through `host.rs`, its one dispatch through
//! `proxy_wasm::hostcalls::dispatch_http_call`), so these overrides replace
//! them with bodies that do nothing. Measured: the module shrank from
//! 220,465 to 207,433 bytes, and lost every one of those panicking paths.
//!
//! One stub per default of proxy-wasm 0.2.5 whose body calls `hostcalls`;
//! callbacks (`on_*`) keep the SDK's own no-op defaults.
//!
//! Cargo.toml pins proxy-wasm to exactly 0.2.5 for this reason: on any bump,
//! re-read the new version's `traits.rs` and add a stub for every new
//! default that calls the host, or a panicking path comes back silently.

/// For `impl Context for ...`.
macro_rules! inert_context_methods {
    () => {
        fn get_current_time(&self) -> std::time::SystemTime {
            std::time::SystemTime::UNIX_EPOCH
        }
        fn get_property(&self, _path: Vec<&str>) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_property(&self, _path: Vec<&str>, _value: Option<&[u8]>) {}
        fn get_shared_data(&self, _key: &str) -> (Option<proxy_wasm::types::Bytes>, Option<u32>) {
            (None, None)
        }
        fn set_shared_data(
            &self,
            _key: &str,
            _value: Option<&[u8]>,
            _cas: Option<u32>,
        ) -> Result<(), proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn remove_shared_data(&self, _key: &str, _cas: Option<u32>) -> Result<(), proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn register_shared_queue(&self, _name: &str) -> u32 {
            0
        }
        fn resolve_shared_queue(&self, _vm_id: &str, _name: &str) -> Option<u32> {
            None
        }
        fn dequeue_shared_queue(
            &self,
            _queue_id: u32,
        ) -> Result<Option<proxy_wasm::types::Bytes>, proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn enqueue_shared_queue(&self, _queue_id: u32, _value: Option<&[u8]>) -> Result<(), proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn dispatch_http_call(
            &self,
            _upstream: &str,
            _headers: Vec<(&str, &str)>,
            _body: Option<&[u8]>,
            _trailers: Vec<(&str, &str)>,
            _timeout: std::time::Duration,
        ) -> Result<u32, proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn get_http_call_response_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_call_response_headers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn get_http_call_response_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_call_response_header_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn get_http_call_response_body(&self, _start: usize, _max_size: usize) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn get_http_call_response_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_call_response_trailers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn get_http_call_response_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_call_response_trailer_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn dispatch_grpc_call(
            &self,
            _upstream_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
            _message: Option<&[u8]>,
            _timeout: std::time::Duration,
        ) -> Result<u32, proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn get_grpc_call_response_body(&self, _start: usize, _max_size: usize) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn cancel_grpc_call(&self, _token_id: u32) {}
        fn open_grpc_stream(
            &self,
            _cluster_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
        ) -> Result<u32, proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn get_grpc_stream_initial_metadata(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn get_grpc_stream_initial_metadata_value(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn send_grpc_stream_message(&self, _token_id: u32, _message: Option<&[u8]>, _end_stream: bool) {}
        fn get_grpc_stream_message(&mut self, _start: usize, _max_size: usize) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn get_grpc_stream_trailing_metadata(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn get_grpc_stream_trailing_metadata_value(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn cancel_grpc_stream(&self, _token_id: u32) {}
        fn close_grpc_stream(&self, _token_id: u32) {}
        fn get_grpc_status(&self) -> (u32, Option<String>) {
            (0, None)
        }
        fn call_foreign_function(
            &self,
            _function_name: &str,
            _arguments: Option<&[u8]>,
        ) -> Result<Option<proxy_wasm::types::Bytes>, proxy_wasm::types::Status> {
            Err(proxy_wasm::types::Status::InternalFailure)
        }
        fn done(&self) {}
    };
}

/// For `impl RootContext for ...`.
macro_rules! inert_root_context_methods {
    () => {
        fn get_vm_configuration(&self) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn get_plugin_configuration(&self) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_tick_period(&self, _period: std::time::Duration) {}
    };
}

/// For `impl HttpContext for ...`.
macro_rules! inert_http_context_methods {
    () => {
        fn get_http_request_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_request_headers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn set_http_request_headers(&self, _headers: Vec<(&str, &str)>) {}
        fn set_http_request_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {}
        fn get_http_request_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_request_header_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_request_header(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_request_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_request_header(&self, _name: &str, _value: &str) {}
        fn add_http_request_header_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_request_header(&self, _name: &str) {}
        fn get_http_request_body(&self, _start: usize, _max_size: usize) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_request_body(&self, _start: usize, _size: usize, _value: &[u8]) {}
        fn get_http_request_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_request_trailers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn set_http_request_trailers(&self, _trailers: Vec<(&str, &str)>) {}
        fn set_http_request_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {}
        fn get_http_request_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_request_trailer_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_request_trailer(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_request_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_request_trailer(&self, _name: &str, _value: &str) {}
        fn add_http_request_trailer_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_request_trailer(&self, _name: &str) {}
        fn resume_http_request(&self) {}
        fn reset_http_request(&self) {}
        fn get_http_response_headers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_response_headers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn set_http_response_headers(&self, _headers: Vec<(&str, &str)>) {}
        fn set_http_response_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {}
        fn get_http_response_header(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_response_header_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_response_header(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_response_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_response_header(&self, _name: &str, _value: &str) {}
        fn add_http_response_header_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_response_header(&self, _name: &str) {}
        fn get_http_response_body(&self, _start: usize, _max_size: usize) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_response_body(&self, _start: usize, _size: usize, _value: &[u8]) {}
        fn get_http_response_trailers(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn get_http_response_trailers_bytes(&self) -> Vec<(String, proxy_wasm::types::Bytes)> {
            Vec::new()
        }
        fn set_http_response_trailers(&self, _trailers: Vec<(&str, &str)>) {}
        fn set_http_response_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {}
        fn get_http_response_trailer(&self, _name: &str) -> Option<String> {
            None
        }
        fn get_http_response_trailer_bytes(&self, _name: &str) -> Option<proxy_wasm::types::Bytes> {
            None
        }
        fn set_http_response_trailer(&self, _name: &str, _value: Option<&str>) {}
        fn set_http_response_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {}
        fn add_http_response_trailer(&self, _name: &str, _value: &str) {}
        fn add_http_response_trailer_bytes(&self, _name: &str, _value: &[u8]) {}
        fn remove_http_response_trailer(&self, _name: &str) {}
        fn resume_http_response(&self) {}
        fn reset_http_response(&self) {}
        fn send_http_response(&self, _status_code: u32, _headers: Vec<(&str, &str)>, _body: Option<&[u8]>) {}
        fn send_grpc_response(
            &self,
            _grpc_status: proxy_wasm::types::GrpcStatusCode,
            _grpc_status_message: Option<&str>,
            _custom_metadata: Vec<(&str, &[u8])>,
        ) {
        }
    };
}

pub(crate) use {inert_context_methods, inert_http_context_methods, inert_root_context_methods};
