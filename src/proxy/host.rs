//! Typed host calls. The SDK's `hostcalls` panic on any status they do not
//! expect and its string getters unwrap UTF-8; a panic poisons the VM and
//! fails every later request on the worker. So every host call the filter
//! makes itself goes through here and returns a `HostError` instead.
//! (The one exception is `dispatch_http_call`, which must go through the SDK
//! so that it routes the response back to us; see `root.rs`.)

use std::ptr::null_mut;
use vrata_mirror_core::telemetry::catalogue::MetricKind;

/// A host call that did not succeed, by its proxy-wasm status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotFound,
    BadArgument,
    /// `set_shared_data`: the value changed since its CAS was read.
    CasMismatch,
    /// Any other status the host returned.
    Status(u32),
}

pub type HostResult<T> = Result<T, HostError>;

/// proxy-wasm `WasmResult` codes the filter tells apart.
mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    /// A shared queue with nothing in it.
    pub const EMPTY: u32 = 7;
    /// Shared data changed since it was read (compare-and-swap lost).
    pub const CAS_MISMATCH: u32 = 8;
}

const NANOS_PER_MILLI: u64 = 1_000_000;

fn check(code: u32) -> HostResult<()> {
    match code {
        status::OK => Ok(()),
        status::NOT_FOUND => Err(HostError::NotFound),
        status::BAD_ARGUMENT => Err(HostError::BadArgument),
        status::CAS_MISMATCH => Err(HostError::CasMismatch),
        other => Err(HostError::Status(other)),
    }
}

/// proxy-wasm buffer types used here.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    RequestBody = 0,
    /// The chunk of the primary's response body being delivered (the
    /// filter never pauses, so only that chunk).
    ResponseBody = 1,
    CallResponseBody = 4,
    PluginConfiguration = 7,
}

/// proxy-wasm header map types used here.
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    CallResponseHeaders = 6,
    CallResponseTrailers = 7,
}

/// proxy-wasm's metric type for a kind of the catalogue's.
fn metric_type(kind: MetricKind) -> u32 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Histogram => 2,
    }
}

mod ffi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        pub fn proxy_get_log_level(return_level: *mut u32) -> u32;
        pub fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
        pub fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_shared_data(
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
            return_cas: *mut u32,
        ) -> u32;
        pub fn proxy_set_shared_data(
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
            cas: u32,
        ) -> u32;
        pub fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
        pub fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
        pub fn proxy_dequeue_shared_queue(queue_id: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    }
}

/// Takes ownership of bytes the host wrote into memory it allocated through
/// the SDK's `proxy_on_memory_allocate` (a boxed slice of exactly `size`).
fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: per the proxy-wasm ABI the host allocated `size` bytes at `data`
    // with proxy_on_memory_allocate, whose allocation has capacity `size`,
    // and hands their ownership to the module.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Calls a getter that returns host-allocated bytes; NotFound becomes `None`.
fn get_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> HostResult<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match check(call(&mut data, &mut size)) {
        Ok(()) => Ok(Some(owned(data, size))),
        Err(HostError::NotFound) => Ok(None),
        Err(err) => Err(err),
    }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: the pointer and length describe a live &str.
    let _ = unsafe { ffi::proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn log_level() -> HostResult<u32> {
    let mut level = 0;
    // SAFETY: `level` outlives the call.
    check(unsafe { ffi::proxy_get_log_level(&mut level) })?;
    Ok(level)
}

/// Host time in milliseconds since the epoch.
pub fn now_ms() -> HostResult<u64> {
    let mut nanos = 0;
    // SAFETY: `nanos` outlives the call.
    check(unsafe { ffi::proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos / NANOS_PER_MILLI)
}

pub fn buffer(kind: Buffer, start: usize, max_size: usize) -> HostResult<Option<Vec<u8>>> {
    // SAFETY: out-pointers are live locals inside get_bytes.
    get_bytes(|data, size| unsafe { ffi::proxy_get_buffer_bytes(kind as u32, start, max_size, data, size) })
}

/// A whole header map, serialized (decode with `crate::wire::decode_map`).
pub fn header_map(kind: Map) -> HostResult<Vec<u8>> {
    // SAFETY: out-pointers are live locals inside get_bytes.
    get_bytes(|data, size| unsafe { ffi::proxy_get_header_map_pairs(kind as u32, data, size) })
        .map(Option::unwrap_or_default)
}

pub fn header(kind: Map, name: &str) -> HostResult<Option<Vec<u8>>> {
    // SAFETY: `name` is live for the call; out-pointers are live locals.
    get_bytes(|data, size| unsafe {
        ffi::proxy_get_header_map_value(kind as u32, name.as_ptr(), name.len(), data, size)
    })
}

pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let encoded = crate::wire::encode_property_path(path);
    // SAFETY: `encoded` is live for the call; out-pointers are live locals.
    get_bytes(|data, size| unsafe { ffi::proxy_get_property(encoded.as_ptr(), encoded.len(), data, size) })
}

/// A shared-data value (one store per Envoy process and `vm_id`, seen by
/// every worker's VM) and its CAS version; `None` when the key has none.
pub fn shared_data(key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
    let mut cas: u32 = 0;
    // SAFETY: `key` is live for the call; out-pointers are live locals
    // (inside get_bytes, and `cas` here).
    let value =
        get_bytes(|data, size| unsafe { ffi::proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) })?;
    Ok(value.map(|value| (value, cas)))
}

/// Writes a shared-data value if its version is still `cas` (0: whatever
/// it is); `CasMismatch` when another VM wrote it in between.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    // SAFETY: `key` and `value` are live for the call.
    check(unsafe { ffi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

pub fn register_shared_queue(name: &str) -> HostResult<u32> {
    let mut id = 0;
    // SAFETY: `name` and `id` are live for the call.
    check(unsafe { ffi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn enqueue_shared_queue(queue_id: u32, value: &[u8]) -> HostResult<()> {
    // SAFETY: `value` is live for the call.
    check(unsafe { ffi::proxy_enqueue_shared_queue(queue_id, value.as_ptr(), value.len()) })
}

/// Takes one item off a queue; `None` when it is empty.
pub fn dequeue_shared_queue(queue_id: u32) -> HostResult<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers are live locals.
    match unsafe { ffi::proxy_dequeue_shared_queue(queue_id, &mut data, &mut size) } {
        status::OK => Ok(Some(owned(data, size))),
        status::EMPTY => Ok(None),
        other => check(other).map(|()| None),
    }
}

pub fn set_tick_period_ms(period_ms: u32) -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { ffi::proxy_set_tick_period_milliseconds(period_ms) })
}

pub fn define_metric(kind: MetricKind, name: &str) -> HostResult<u32> {
    let mut id = 0;
    // SAFETY: `name` and `id` are live for the call.
    check(unsafe { ffi::proxy_define_metric(metric_type(kind), name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, delta: i64) -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { ffi::proxy_increment_metric(id, delta) })
}

pub fn record_metric(id: u32, value: u64) -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { ffi::proxy_record_metric(id, value) })
}
