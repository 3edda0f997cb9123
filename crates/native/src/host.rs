//! Typed wrappers over the callbacks of `abi.rs`: the only place that calls them. Each
//! wrapper states why its call is sound; the rest of the crate has no `unsafe` for Envoy.

use crate::abi::{self, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr, ModuleBuffer, ModuleHttpHeader};
use std::marker::PhantomData;

/// A log line under Envoy's `dynamic_modules` logger.
pub fn log(level: u32, message: &str) {
    // SAFETY: `message` is a live buffer for the duration of the call, which Envoy only reads;
    // abi.h allows logging from any thread.
    unsafe { abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes())) }
}

/// Whether `level` would be printed (so a caller can skip formatting).
pub fn log_enabled(level: u32) -> bool {
    // SAFETY: no pointers; any thread.
    unsafe { abi::envoy_dynamic_module_callback_log_enabled(level) }
}

/// The server's worker count. Main thread only (abi.h): call it from
/// `on_http_filter_config_new`.
pub fn concurrency_on_main_thread() -> u32 {
    // SAFETY: no pointers; the caller is on the main thread, as abi.h requires.
    unsafe { abi::envoy_dynamic_module_callback_get_concurrency() }
}

/// Bytes Envoy owns, as a slice for `'a`. Null or empty gives `&[]`.
///
/// # Safety
/// `ptr` must point to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(ptr: *const std::os::raw::c_char, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null, and the caller promises `len` valid bytes for `'a`.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
    }
}

/// Envoy's filter during one hook: what it hands out lives as long as the hook (`'h`).
/// abi.h: header and body buffers are "valid until the end of the current event hook".
pub struct Hook<'h> {
    filter: FilterEnvoyPtr,
    _hook: PhantomData<&'h ()>,
}

impl<'h> Hook<'h> {
    /// # Safety
    /// `filter` is the `filter_envoy_ptr` Envoy passed to the running hook, and the value does
    /// not outlive that hook.
    pub unsafe fn new(filter: FilterEnvoyPtr) -> Hook<'h> {
        Hook {
            filter,
            _hook: PhantomData,
        }
    }

    /// The worker this request runs on.
    pub fn worker_index(&self) -> u32 {
        // SAFETY: `self.filter` is the live filter of the running hook (`Hook::new`).
        unsafe { abi::envoy_dynamic_module_callback_http_filter_get_worker_index(self.filter) }
    }

    /// Every header of a map (`abi::header_type`), as bytes, in Envoy's order.
    pub fn headers(&self, header_type: u32) -> Vec<(&'h [u8], &'h [u8])> {
        // SAFETY: live filter of the running hook.
        let n = unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(self.filter, header_type) };
        if n == 0 {
            return Vec::new();
        }
        let mut raw = vec![EnvoyHttpHeader::EMPTY; n];
        // SAFETY: `raw` has room for the `n` entries Envoy just counted (abi.h's precondition),
        // on the same thread within the same hook, so the map has not changed.
        let ok =
            unsafe { abi::envoy_dynamic_module_callback_http_get_headers(self.filter, header_type, raw.as_mut_ptr()) };
        if !ok {
            return Vec::new();
        }
        raw.iter()
            // SAFETY: Envoy wrote (pointer, length) pairs into its header map, valid until the
            // hook returns, which `'h` does not outlive.
            .map(|h| unsafe { (bytes(h.key_ptr, h.key_length), bytes(h.value_ptr, h.value_length)) })
            .collect()
    }

    /// The slices of a body (`abi::body_type`); for `RECEIVED_REQUEST_BODY`, this hook's chunk.
    pub fn body_chunks(&self, body_type: u32) -> Vec<&'h [u8]> {
        // SAFETY: live filter of the running hook.
        let n = unsafe { abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.filter, body_type) };
        if n == 0 {
            return Vec::new();
        }
        let mut raw = vec![EnvoyBuffer::EMPTY; n];
        // SAFETY: room for the `n` slices Envoy just counted, same hook.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks(self.filter, body_type, raw.as_mut_ptr())
        };
        if !ok {
            return Vec::new();
        }
        raw.iter()
            // SAFETY: Envoy's buffer slices, valid until the hook returns (`'h`).
            .map(|b| unsafe { bytes(b.ptr, b.length) })
            .filter(|b| !b.is_empty())
            .collect()
    }

    /// A string attribute (`abi::attribute_id`), `None` when Envoy has none (e.g. an unnamed route).
    pub fn attribute_string(&self, attribute_id: u32) -> Option<&'h [u8]> {
        let mut out = EnvoyBuffer::EMPTY;
        // SAFETY: live filter; `out` is a valid place for Envoy to write one buffer.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(self.filter, attribute_id, &mut out)
        };
        // SAFETY: Envoy's string, valid until the hook returns (`'h`).
        found.then(|| unsafe { bytes(out.ptr, out.length) })
    }

    /// Adds `value` to a counter from a filter hook.
    pub fn increment_counter(&self, id: usize, label_values: &[&[u8]], value: u64) -> u32 {
        let mut values: Vec<ModuleBuffer> = label_values.iter().map(|v| ModuleBuffer::of(v)).collect();
        // SAFETY: live filter; `values` points to `values.len()` buffers that outlive the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.filter,
                id,
                values.as_mut_ptr(),
                values.len(),
                value,
            )
        }
    }
}

/// Envoy's filter config (`DynamicModuleHttpFilterConfig`): valid from `on_http_filter_config_new`
/// until `on_http_filter_config_destroy` returns (abi.h, filter_config.cc). The holder (our
/// config) is freed in that hook, so a `ConfigHandle` never outlives it.
#[derive(Clone, Copy, Debug)]
pub struct ConfigHandle(ConfigEnvoyPtr);

/// Why a stream could not start: an `abi::callout_init` ordinal other than success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartRefused(pub u32);

impl ConfigHandle {
    /// # Safety
    /// `ptr` is the `filter_config_envoy_ptr` of a config that is not destroyed yet, and the
    /// handle is dropped before that config's `on_http_filter_config_destroy` returns.
    pub unsafe fn new(ptr: ConfigEnvoyPtr) -> ConfigHandle {
        ConfigHandle(ptr)
    }

    /// Defines a counter (only inside `on_http_filter_config_new`). `None` if Envoy refused.
    pub fn define_counter(&self, name: &str, label_names: &[&str]) -> Option<usize> {
        self.define(
            abi::envoy_dynamic_module_callback_http_filter_config_define_counter,
            name,
            label_names,
        )
    }

    /// Defines a histogram (only inside `on_http_filter_config_new`).
    pub fn define_histogram(&self, name: &str, label_names: &[&str]) -> Option<usize> {
        self.define(
            abi::envoy_dynamic_module_callback_http_filter_config_define_histogram,
            name,
            label_names,
        )
    }

    /// Defines a metric with `define`, one of the ABI's two definers (they
    /// take the same arguments).
    fn define(&self, define: MetricDefiner, name: &str, label_names: &[&str]) -> Option<usize> {
        let mut labels: Vec<ModuleBuffer> = label_names.iter().map(|l| ModuleBuffer::of(l.as_bytes())).collect();
        let mut id = 0usize;
        // SAFETY: live config (`ConfigHandle::new`); `name`, `labels` and `id`
        // outlive the call; `define` is one of abi.rs's declared definers.
        let result = unsafe {
            define(
                self.0,
                ModuleBuffer::of(name.as_bytes()),
                labels.as_mut_ptr(),
                labels.len(),
                &mut id,
            )
        };
        (result == abi::metrics_result::SUCCESS).then_some(id)
    }

    /// Adds `value` to a counter, from any hook (also after the request is gone).
    pub fn increment_counter(&self, id: usize, label_values: &[&[u8]], value: u64) -> u32 {
        let mut values: Vec<ModuleBuffer> = label_values.iter().map(|v| ModuleBuffer::of(v)).collect();
        // SAFETY: live config; `values` outlives the call. Called only from this config's own
        // hooks (series.rs): the config's label-value pool is not shared with another thread.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                self.0,
                id,
                values.as_mut_ptr(),
                values.len(),
                value,
            )
        }
    }

    /// Records `value` in a histogram, from any hook (also after the request is gone).
    pub fn record_histogram(&self, id: usize, label_values: &[&[u8]], value: u64) -> u32 {
        let mut values: Vec<ModuleBuffer> = label_values.iter().map(|v| ModuleBuffer::of(v)).collect();
        // SAFETY: live config; `values` outlives the call. Called only from this config's own
        // hooks (series.rs): the config's label-value pool is not shared with another thread.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
                self.0,
                id,
                values.as_mut_ptr(),
                values.len(),
                value,
            )
        }
    }

    /// Starts a config-level stream to `cluster`: its headers leave now; `end_stream` ends it.
    /// Must run on the worker that will own the stream: its hooks arrive on this thread, and
    /// Envoy's stream map in the config is not synchronised (crates/native/NOTES.md).
    pub fn start_stream(
        &self,
        cluster: &str,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
        end_stream: bool,
        timeout_ms: u64,
    ) -> Result<u64, StartRefused> {
        let mut raw: Vec<ModuleHttpHeader> = headers.iter().map(|(k, v)| ModuleHttpHeader::of(k, v)).collect();
        let mut id = 0u64;
        // SAFETY: live config; every buffer (`cluster`, the header slices behind `raw`, `body`)
        // outlives the call and Envoy copies what it keeps (a RequestMessage built in the call).
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_start_http_stream(
                self.0,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                ModuleBuffer::of(body),
                end_stream,
                timeout_ms,
            )
        };
        if result == abi::callout_init::SUCCESS {
            Ok(id)
        } else {
            Err(StartRefused(result))
        }
    }

    /// Sends a body chunk on a stream; false if the stream is gone or ended.
    pub fn send_data(&self, stream: u64, data: &[u8], end_stream: bool) -> bool {
        // SAFETY: live config; `data` outlives the call (Envoy copies it into its own buffer).
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_stream_send_data(
                self.0,
                stream,
                ModuleBuffer::of(data),
                end_stream,
            )
        }
    }

    /// Sends trailers, ending the stream; false if the stream is gone or ended.
    pub fn send_trailers(&self, stream: u64, trailers: &[(&[u8], &[u8])]) -> bool {
        let mut raw: Vec<ModuleHttpHeader> = trailers.iter().map(|(k, v)| ModuleHttpHeader::of(k, v)).collect();
        // SAFETY: live config; the trailer slices outlive the call (Envoy copies them into a map).
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_stream_send_trailers(
                self.0,
                stream,
                raw.as_mut_ptr(),
                raw.len(),
            )
        }
    }

    /// Resets a stream; its reset hook follows.
    pub fn reset_stream(&self, stream: u64) {
        // SAFETY: live config; an unknown id is a no-op (filter_config.cc `resetHttpStream`).
        unsafe { abi::envoy_dynamic_module_callback_http_filter_config_reset_http_stream(self.0, stream) }
    }
}

/// Headers Envoy handed a stream hook, as bytes valid for that hook.
///
/// # Safety
/// `headers` points to `n` headers (or is null with `n == 0`) valid until the running hook
/// returns, which `'h` does not outlive.
pub unsafe fn hook_headers<'h>(headers: *const EnvoyHttpHeader, n: usize) -> Vec<(&'h [u8], &'h [u8])> {
    if headers.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `n` valid entries.
    let raw = unsafe { std::slice::from_raw_parts(headers, n) };
    raw.iter()
        // SAFETY: each entry's buffers are valid for the hook (caller).
        .map(|h| unsafe { (bytes(h.key_ptr, h.key_length), bytes(h.value_ptr, h.value_length)) })
        .collect()
}

/// The body slices Envoy handed a stream's data hook, as bytes valid for that hook.
///
/// # Safety
/// `data` points to `n` buffers (or is null with `n == 0`), valid until the running hook
/// returns, which `'h` does not outlive.
pub unsafe fn hook_data<'h>(data: *const EnvoyBuffer, n: usize) -> Vec<&'h [u8]> {
    if data.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `n` valid entries.
    let raw = unsafe { std::slice::from_raw_parts(data, n) };
    raw.iter()
        // SAFETY: each buffer is valid for the hook (caller).
        .map(|b| unsafe { bytes(b.ptr, b.length) })
        .collect()
}

/// The shape of `http_filter_config_define_counter` and `_histogram`.
type MetricDefiner =
    unsafe extern "C" fn(abi::ConfigEnvoyPtr, ModuleBuffer, *mut ModuleBuffer, usize, *mut usize) -> u32;
