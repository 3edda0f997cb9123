//! The subset of Envoy's dynamic-module C ABI this host uses, written by hand.
//!
//! Written from `source/extensions/dynamic_modules/abi/abi.h` in envoyproxy/envoy at commit
//! `0199da4a13cb999df12ad32db7d03942cfbf9abb` (the version the search tool stores; its
//! `ENVOY_DYNAMIC_MODULES_ABI_VERSION` still reads `v0.1.0`), for Envoy **1.40.0**
//! (`9e5580933739775e8bce696a57a2e1bc99368f23`), whose binary prints `v0.2.0`. Every
//! `extern "C"` function below is checked against the symbols the real 1.40.0 binary exports
//! (`tests/abi_symbols.rs`); names are not signatures, so the end-to-end tests exercise the
//! calls. One build per Envoy minor: abi.h only promises v0.x compatible with the next minor.
//!
//! Conventions (x86_64 / aarch64 SysV): a C enum is an `int`, passed here as `u32` with one
//! constant per ordinal; C `bool` is Rust `bool`; `size_t` is `usize`. The hooks the module
//! exports (`envoy_dynamic_module_on_*`) are defined in `hooks.rs` with these types.

use std::os::raw::{c_char, c_void};

/// The ABI version `envoy_dynamic_module_on_program_init` returns. Envoy 1.40.0 logs
/// `Dynamic module ABI version v0.2.0 matched.` for it; any other string loads with a
/// deprecation warning, and NULL makes Envoy exit.
pub const ABI_VERSION: &std::ffi::CStr = c"v0.2.0";

// ---------------------------------------------------------------------------------------------
// Pointers. `*_envoy_ptr`: owned by Envoy. `*_module_ptr`: owned by the module.

/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr`: Envoy's
/// `DynamicModuleHttpFilterConfig`, valid until `on_http_filter_config_destroy` returns.
pub type ConfigEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_module_ptr`: our config, freed in
/// `on_http_filter_config_destroy`.
pub type ConfigModulePtr = *const c_void;
/// `envoy_dynamic_module_type_http_filter_envoy_ptr`: Envoy's `DynamicModuleHttpFilter`, valid
/// until `on_http_filter_destroy`.
pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_module_ptr`: our per-request filter.
pub type FilterModulePtr = *const c_void;
/// `envoy_dynamic_module_type_http_filter_scheduler_module_ptr` (and the config scheduler's).
pub type SchedulerModulePtr = *mut c_void;

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy, valid as the hook or
/// callback that produced it says (at most until the current hook returns).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module, read by Envoy during
/// the call only (Envoy copies what it keeps).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleBuffer {
    pub ptr: *const c_char,
    pub length: usize,
}

impl ModuleBuffer {
    /// A view of `bytes` for the duration of one call.
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr().cast(),
            length: bytes.len(),
        }
    }
}

/// `envoy_dynamic_module_type_envoy_http_header`: a header in one of Envoy's header maps.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

impl EnvoyHttpHeader {
    pub const EMPTY: EnvoyHttpHeader = EnvoyHttpHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_module_http_header`: a header the module hands Envoy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const c_char,
    pub key_length: usize,
    pub value_ptr: *const c_char,
    pub value_length: usize,
}

impl ModuleHttpHeader {
    /// A view of `(key, value)` for the duration of one call.
    pub fn of(key: &[u8], value: &[u8]) -> ModuleHttpHeader {
        ModuleHttpHeader {
            key_ptr: key.as_ptr().cast(),
            key_length: key.len(),
            value_ptr: value.as_ptr().cast(),
            value_length: value.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Enums, one constant per ordinal used.

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    /// 0: `RequestHeader`.
    pub const REQUEST_HEADER: u32 = 0;
    /// 1: `RequestTrailer`.
    pub const REQUEST_TRAILER: u32 = 1;
    /// 2: `ResponseHeader`.
    pub const RESPONSE_HEADER: u32 = 2;
    /// 3: `ResponseTrailer`.
    pub const RESPONSE_TRAILER: u32 = 3;
}

/// `envoy_dynamic_module_type_http_body_type`.
pub mod body_type {
    /// 0: `ReceivedRequestBody`: the chunk of the current `request_body` hook.
    pub const RECEIVED_REQUEST_BODY: u32 = 0;
    /// 1: `BufferedRequestBody`: what earlier filters buffered (we never buffer).
    pub const BUFFERED_REQUEST_BODY: u32 = 1;
    /// 2: `ReceivedResponseBody`.
    pub const RECEIVED_RESPONSE_BODY: u32 = 2;
    /// 3: `BufferedResponseBody`.
    pub const BUFFERED_RESPONSE_BODY: u32 = 3;
}

/// `envoy_dynamic_module_type_log_level` (Envoy's `spdlog` levels).
pub mod log_level {
    /// 0: `Trace`.
    pub const TRACE: u32 = 0;
    /// 1: `Debug`.
    pub const DEBUG: u32 = 1;
    /// 2: `Info`.
    pub const INFO: u32 = 2;
    /// 3: `Warn`.
    pub const WARN: u32 = 3;
    /// 4: `Error`.
    pub const ERROR: u32 = 4;
    /// 5: `Critical`.
    pub const CRITICAL: u32 = 5;
}

/// The `on_http_filter_request_{headers,body,trailers}` and `response_*` statuses: ordinal 0 is
/// `Continue` in each of the six enums (`..._request_headers_status_Continue`, ...). The host
/// never returns anything else: the primary is never paused nor buffered.
pub const STATUS_CONTINUE: u32 = 0;

/// `envoy_dynamic_module_type_on_http_filter_local_reply_status`: 0 = `Continue`.
pub const LOCAL_REPLY_CONTINUE: u32 = 0;

/// `envoy_dynamic_module_type_http_callout_init_result`: what starting a stream returned.
pub mod callout_init {
    /// 0: `Success`: the stream exists and its id was written.
    pub const SUCCESS: u32 = 0;
    /// 1: `MissingRequiredHeaders`: `:path`, `:method` or `host` (`:authority`) is missing.
    pub const MISSING_REQUIRED_HEADERS: u32 = 1;
    /// 2: `ClusterNotFound`.
    pub const CLUSTER_NOT_FOUND: u32 = 2;
    /// 3: `DuplicateCalloutId`.
    pub const DUPLICATE_CALLOUT_ID: u32 = 3;
    /// 4: `CannotCreateRequest`: e.g. the cluster's circuit breaker is full, or the stream
    /// failed while its headers were being sent.
    pub const CANNOT_CREATE_REQUEST: u32 = 4;
}

/// `envoy_dynamic_module_type_http_stream_reset_reason`, passed to `..._http_stream_reset`.
/// NOTE: Envoy 1.40's config-level streams always pass `LOCAL_RESET`
/// (`filter_config.cc` `HttpStreamCalloutCallback::onReset`): the reason tells nothing.
pub mod stream_reset_reason {
    /// 0: `ConnectionFailure`.
    pub const CONNECTION_FAILURE: u32 = 0;
    /// 1: `ConnectionTermination`.
    pub const CONNECTION_TERMINATION: u32 = 1;
    /// 2: `LocalReset`.
    pub const LOCAL_RESET: u32 = 2;
    /// 3: `LocalRefusedStreamReset`.
    pub const LOCAL_REFUSED_STREAM_RESET: u32 = 3;
    /// 4: `Overflow`.
    pub const OVERFLOW: u32 = 4;
    /// 5: `RemoteReset`.
    pub const REMOTE_RESET: u32 = 5;
    /// 6: `RemoteRefusedStreamReset`.
    pub const REMOTE_REFUSED_STREAM_RESET: u32 = 6;
    /// 7: `ProtocolError`.
    pub const PROTOCOL_ERROR: u32 = 7;
}

/// `envoy_dynamic_module_type_metrics_result`.
pub mod metrics_result {
    /// 0: `Success`.
    pub const SUCCESS: u32 = 0;
    /// 1: `MetricNotFound`: a bad id.
    pub const METRIC_NOT_FOUND: u32 = 1;
    /// 2: `InvalidLabels`: not as many values as the definition has label names.
    pub const INVALID_LABELS: u32 = 2;
    /// 3: `Frozen`: a definition after `on_http_filter_config_new` returned.
    pub const FROZEN: u32 = 3;
}

/// `envoy_dynamic_module_type_attribute_id`, for `http_filter_get_attribute_string`. Ordinals
/// counted in abi.h's enum (0 = `RequestPath`); 61 was also measured on 1.40.0 (the facts note).
pub mod attribute_id {
    /// 57: `XdsClusterName` (`xds.cluster_name`).
    pub const XDS_CLUSTER_NAME: u32 = 57;
    /// 61: `XdsRouteName` (`xds.route_name`): what the plugin's `routes` map keys on and the
    /// metrics' `route` label shows.
    pub const XDS_ROUTE_NAME: u32 = 61;
    /// 63: `XdsVirtualHostName` (`xds.virtual_host_name`).
    pub const XDS_VIRTUAL_HOST_NAME: u32 = 63;
}

// ---------------------------------------------------------------------------------------------
// Callbacks: functions Envoy exports and the module calls. The test parses every
// `pub fn envoy_dynamic_module_callback_*` of this block.

extern "C" {
    // ----- logging (any thread)

    /// `[dynamic_modules]` log line at `level` (`log_level`).
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    /// Whether `level` is enabled for the `dynamic_modules` logger (cheap).
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    // ----- process (main thread only)

    /// The server's worker count. abi.h: "must be called on the main thread".
    pub fn envoy_dynamic_module_callback_get_concurrency() -> u32;
    /// `--mode validate`. Main thread only.
    pub fn envoy_dynamic_module_callback_is_validation_mode() -> bool;

    // ----- the request (worker thread, during a filter hook)

    /// Number of headers in `header_type`'s map.
    pub fn envoy_dynamic_module_callback_http_get_headers_size(filter: FilterEnvoyPtr, header_type: u32) -> usize;
    /// Writes every header of `header_type`'s map into `result` (room for `..._headers_size`).
    /// Buffers stay valid until the current hook returns.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        result: *mut EnvoyHttpHeader,
    ) -> bool;
    /// Number of slices of `body_type`'s body.
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(filter: FilterEnvoyPtr, body_type: u32) -> usize;
    /// Writes the slices of `body_type`'s body into `result` (room for `..._chunks_size`).
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// A string attribute (`attribute_id`), e.g. the route's name; false when unset.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    /// The index of the worker this filter runs on (0-based). A config has none.
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(filter: FilterEnvoyPtr) -> u32;

    // ----- config-level streams (the copy): outlive the request; hooks on the starting worker

    /// Starts a stream to `cluster` with `headers` (`:method`, `:path`, `:authority` required)
    /// and `body`, ending it at once when `end_stream`. `timeout_milliseconds` 0 = none. Returns
    /// a `callout_init` ordinal; on success writes the stream's id.
    pub fn envoy_dynamic_module_callback_http_filter_config_start_http_stream(
        config: ConfigEnvoyPtr,
        stream_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        end_stream: bool,
        timeout_milliseconds: u64,
    ) -> u32;
    /// Sends a body chunk (Envoy copies it). False when the stream is unknown or ended.
    pub fn envoy_dynamic_module_callback_http_filter_config_stream_send_data(
        config: ConfigEnvoyPtr,
        stream_id: u64,
        data: ModuleBuffer,
        end_stream: bool,
    ) -> bool;
    /// Sends trailers, which end the stream. False when the stream is unknown or ended.
    pub fn envoy_dynamic_module_callback_http_filter_config_stream_send_trailers(
        config: ConfigEnvoyPtr,
        stream_id: u64,
        trailers: *mut ModuleHttpHeader,
        trailers_size: usize,
    ) -> bool;
    /// Resets a stream; its `..._http_stream_reset` hook follows. No-op for an unknown id.
    pub fn envoy_dynamic_module_callback_http_filter_config_reset_http_stream(config: ConfigEnvoyPtr, stream_id: u64);

    // ----- metrics: defined in on_http_filter_config_new only (frozen after it)

    /// Defines a counter `name` with `label_names`; writes its id.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> u32;
    /// Defines a histogram `name` with `label_names`; writes its id.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        histogram_id_ptr: *mut usize,
    ) -> u32;
    /// Adds `value` to a counter, from a filter hook.
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Adds `value` to a counter through the config: from a stream's hooks, after the request.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Records `value` in a histogram, from a filter hook.
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Records `value` in a histogram through the config (from a stream's hooks).
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    // ----- schedulers. There is no timer in the HTTP-filter ABI.

    /// A scheduler that runs `on_http_filter_scheduled` on this filter's worker; commit is
    /// thread-safe and a no-op once the filter is gone. Delete it with `..._scheduler_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: FilterEnvoyPtr) -> SchedulerModulePtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(scheduler: SchedulerModulePtr, event_id: u64);
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: SchedulerModulePtr);
    /// A scheduler that runs `on_http_filter_config_scheduled` on the **main** thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: ConfigEnvoyPtr)
        -> SchedulerModulePtr;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: SchedulerModulePtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: SchedulerModulePtr);
}
