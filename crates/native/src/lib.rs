//! vrata-mirror as an Envoy 1.40 dynamic module (issue 21): the hooks Envoy calls.
//!
//! - `abi.rs`: the hand-written FFI subset (checked against Envoy's exports by a test);
//! - `host.rs`: typed wrappers, the only callers of `abi`'s functions;
//! - `guard.rs`: every hook's body runs under `catch_unwind`;
//! - `config.rs`: one config per worker (why: crates/native/NOTES.md), the plugin JSON through the
//!   one parser;
//! - `native_host.rs`: the worker core's host traits (clock, telemetry, dispatch) over Envoy's
//!   calls, and the request view the worker decides on;
//! - `series.rs`: every counter series known, put in each new config's stats scope, so that a
//!   push does not restart them.
//!
//! Lifetimes, from abi.h and filter_config.cc/filter.h: a config lives from
//! `on_http_filter_config_new` until `on_http_filter_config_destroy`, and every filter holds a
//! reference to Envoy's config, so a config outlives all its filters. A filter lives from
//! `on_http_filter_new` until `on_http_filter_destroy`; Envoy calls its hooks one at a time,
//! on its worker. After `on_http_filter_config_destroy` returns Envoy calls no hook naming that
//! config (it resets the config's streams without one).

// The ABI subset and its wrappers: one constant per ordinal and a few calls kept for what
// comes next (schedulers, stream reset) are not all used yet.
#[allow(dead_code)]
mod abi;
mod config;
mod guard;
#[allow(dead_code)]
mod host;
mod native_host;
mod series;

use abi::{
    body_type, header_type, ConfigEnvoyPtr, ConfigModulePtr, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr,
    FilterModulePtr, LOCAL_REPLY_CONTINUE, STATUS_CONTINUE,
};
use config::{owned_pairs, Missed, NativeConfig, WorkerCell, WorkerState};
use guard::{guard, TestPanic, TEST_PANIC_HEADER};
use host::{ConfigHandle, Hook};
use native_host::{NativeHost, NativeRequest};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use vrata_mirror_core::dispatch::outcome::AnswerHead;
use vrata_mirror_core::mirror::request::copyable_trailers;
use vrata_mirror_core::worker::{refusal_line, MirroredRequest, Worker};

/// One request's filter on the owner worker.
struct Filter {
    config: *const NativeConfig,
    worker: u32,
    /// Set when a hook of this filter panicked: it does nothing more.
    poisoned: bool,
    test_panic: Option<TestPanic>,
    /// This request's copies, as the worker hands them back.
    request: MirroredRequest<(), u64>,
}

/// What `on_http_filter_new` returns on a worker the config does not act on, and after a
/// panic in it: Envoy closes the stream on null (abi.h), so a do-nothing filter has an
/// address. Never dereferenced; its hooks return `Continue` at once.
static NOOP_FILTER: u8 = 0;

fn noop_filter() -> FilterModulePtr {
    std::ptr::addr_of!(NOOP_FILTER).cast()
}

/// Bytes of a buffer Envoy passes to a hook.
///
/// # Safety
/// `buffer` describes bytes valid for the running hook, which `'a` does not outlive.
unsafe fn envoy_bytes<'a>(buffer: EnvoyBuffer) -> &'a [u8] {
    if buffer.ptr.is_null() || buffer.length == 0 {
        &[]
    } else {
        // SAFETY: the caller promises `length` valid bytes for `'a`.
        unsafe { std::slice::from_raw_parts(buffer.ptr.cast::<u8>(), buffer.length) }
    }
}

/// Counts a caught panic in the config's `panics_total` (the process-wide count is in
/// `guard::PANICS`).
fn count_panic(config: &NativeConfig) {
    if let Some(id) = config.metrics.panics {
        config.envoy.increment_counter(id, &[], 1);
    }
}

/// Runs a filter hook's body, unless the filter is the do-nothing one or poisoned.
///
/// # Safety
/// `envoy` and `module` are what Envoy passed to the running hook; `module` came from our
/// `on_http_filter_new` and is not destroyed.
unsafe fn filter_hook(
    name: &'static str,
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
    body: impl FnOnce(&Hook<'_>, &mut Filter, &NativeConfig),
) {
    if module.is_null() || module == noop_filter() {
        return;
    }
    let filter = module.cast::<Filter>().cast_mut();
    // SAFETY: a live `Filter` we boxed in `on_http_filter_new`; Envoy runs one hook of a
    // filter at a time on its worker, so this is the only reference.
    if unsafe { (*filter).poisoned } {
        return;
    }
    let ok = guard(name, false, || {
        // SAFETY: as above; and the filter's config outlives it (every Envoy filter holds a
        // shared_ptr to Envoy's config, whose destroy hook frees ours).
        let (filter, config) = unsafe { (&mut *filter, &*(*filter).config) };
        // SAFETY: `envoy` is the running hook's filter pointer; `hook` does not escape.
        let hook = unsafe { Hook::new(envoy) };
        body(&hook, filter, config);
        true
    });
    if !ok {
        // SAFETY: as above; the guard's closure has returned, so no other reference is live.
        let filter = unsafe { &mut *filter };
        filter.poisoned = true;
        // SAFETY: the config outlives the filter (above).
        count_panic(unsafe { &*filter.config });
    }
}

/// Runs `f` on the owner worker's state for a filter hook (copies open and are fed inside it:
/// this host streams), then ends any copy whose end Envoy reported from inside it.
fn on_worker(
    config: &NativeConfig,
    filter: &mut Filter,
    f: impl FnOnce(&mut WorkerState, &mut MirroredRequest<(), u64>),
) {
    config.worker.on(filter.worker, |state| {
        f(state, &mut filter.request);
        config.settle_missed(state);
        config.publish_in_flight(state);
    });
}

/// Runs a config stream hook's body on the owner worker's state. If the hook arrives while the
/// worker is busy (Envoy calling it from inside one of the worker's own stream calls), `missed`
/// makes an owned copy of the event, replayed once the worker is done (`NativeConfig::missed`).
///
/// # Safety
/// `module` is a config from our `on_http_filter_config_new`, not destroyed.
unsafe fn config_hook(
    name: &'static str,
    module: ConfigModulePtr,
    missed: impl FnOnce() -> Missed,
    body: impl FnOnce(&NativeConfig, &mut WorkerState),
) {
    if module.is_null() {
        return;
    }
    // SAFETY: a live config (Envoy stops calling hooks for it before destroying it).
    let config = unsafe { &*module.cast::<NativeConfig>() };
    let ok = guard(name, false, || {
        // Stream hooks run on the worker that started the stream: the owner.
        let ran = config.worker.on_owner_thread(|state| {
            body(config, state);
            config.settle_missed(state);
            config.publish_in_flight(state);
        });
        if ran.is_none() && config.worker.on_owner_thread_now() {
            config.keep_missed(missed());
        }
        true
    });
    if !ok {
        count_panic(config);
    }
}

// ---------------------------------------------------------------------------------------------
// Program

/// Main thread, at load: the ABI version Envoy 1.40.0 matches.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    guard("program_init", (), guard::install_panic_hook);
    abi::ABI_VERSION.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Config (main thread; destroy on whichever thread drops Envoy's last reference)

/// Parses the plugin JSON with the one parser; null (Envoy refuses the config) with the wasm
/// host's one-line message when it is invalid.
/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> ConfigModulePtr {
    guard("http_filter_config_new", std::ptr::null(), || {
        // SAFETY: Envoy's name and config bytes, valid for this call.
        let (name, text) = unsafe { (envoy_bytes(name), envoy_bytes(config)) };
        // The one parser, through the worker (which also refuses what it cannot run).
        let worker = Worker::new();
        if let Err(message) = worker.configure(text) {
            host::log(abi::log_level::ERROR, &refusal_line(&message));
            return std::ptr::null();
        }
        let name = String::from_utf8_lossy(name);
        let owner = match config::owner_worker(&name, host::concurrency_on_main_thread()) {
            Ok(owner) => owner,
            Err(line) => {
                host::log(abi::log_level::ERROR, &line);
                return std::ptr::null();
            }
        };
        // SAFETY: Envoy's live config; the handle lives in our config, freed in its destroy hook.
        let envoy = unsafe { ConfigHandle::new(config_envoy) };
        let metrics = NativeConfig::define_metrics(&envoy);
        let (compare_keep, teardown_wait) = worker.active().map_or((0, Duration::ZERO), |active| {
            (
                native_host::compare_keep_bytes(&active.config),
                config::teardown_wait(&active.config),
            )
        });
        // Before any worker has this config: its scope takes every known counter (series.rs).
        let series = series::Series::register(envoy, metrics.catalogue);
        let state = WorkerState {
            host: NativeHost::new(envoy, series, compare_keep),
            worker,
            rng: native_host::worker_rng(),
        };
        let native = Box::new(NativeConfig {
            envoy,
            metrics,
            worker: WorkerCell::new(owner, state),
            in_flight: AtomicUsize::new(0),
            teardown_wait,
            missed: std::sync::Mutex::new(Vec::new()),
            has_missed: std::sync::atomic::AtomicBool::new(false),
        });
        Box::into_raw(native).cast_const().cast()
    })
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(module: ConfigModulePtr) {
    if module.is_null() {
        return;
    }
    guard("http_filter_config_destroy", (), || {
        // SAFETY: our config from `Box::into_raw`; Envoy calls this once, after the last filter
        // holding its config is gone, and calls no hook for it afterwards.
        let config = unsafe { Box::from_raw(module.cast::<NativeConfig>().cast_mut()) };
        // Copies still in flight would be reset by Envoy after this hook, from this thread,
        // with no hook: wait for them (bounded) when this is not their worker.
        let in_flight_before = config.in_flight.load(Ordering::Acquire);
        let (waited, timed_out) = config.wait_for_copies();
        let NativeConfig { worker, .. } = *config;
        let mut state = worker.into_inner();
        // What is still in flight is counted now, as a reset (crates/native/NOTES.md, "Teardown").
        let lost = NativeHost::teardown(&state.worker, &mut state.host);
        if in_flight_before > 0 || lost > 0 {
            let level = if lost > 0 {
                abi::log_level::WARN
            } else {
                abi::log_level::INFO
            };
            host::log(
                level,
                &format!(
                    "vrata-mirror: config destroyed: waited {} ms for {in_flight_before} copies in flight{}; {lost} \
                     left, counted as reset (Envoy resets them without a hook)",
                    waited.as_millis(),
                    if timed_out { " (the bound)" } else { "" }
                ),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Filter (worker thread)

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: ConfigModulePtr,
    envoy: FilterEnvoyPtr,
) -> FilterModulePtr {
    if config.is_null() {
        return noop_filter();
    }
    guard("http_filter_new", noop_filter(), || {
        // SAFETY: our live config (it outlives its filters).
        let native = unsafe { &*config.cast::<NativeConfig>() };
        // SAFETY: the running hook's filter pointer; `hook` does not escape.
        let hook = unsafe { Hook::new(envoy) };
        let worker = hook.worker_index();
        if worker != native.worker.owner() {
            return noop_filter();
        }
        let filter = Box::new(Filter {
            config: config.cast(),
            worker,
            poisoned: false,
            test_panic: None,
            request: MirroredRequest::default(),
        });
        Box::into_raw(filter).cast_const().cast()
    })
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook("http_filter_request_headers", envoy, module, |hook, filter, config| {
            let headers = hook.headers(header_type::REQUEST_HEADER);
            if guard::test_panics_armed() {
                filter.test_panic = headers
                    .iter()
                    .find(|(k, _)| *k == TEST_PANIC_HEADER)
                    .and_then(|(_, v)| TestPanic::from_header(v));
            }
            TestPanic::check(filter.test_panic, TestPanic::RequestHeaders);
            on_worker(config, filter, |state, request| {
                let mut view = NativeRequest::new(hook, &mut state.rng);
                *request = state.worker.request_headers(&mut state.host, &mut view, end_of_stream);
            });
        });
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook("http_filter_request_body", envoy, module, |hook, filter, config| {
            TestPanic::check(filter.test_panic, TestPanic::RequestBody);
            if !filter.request.wants_request_stream() {
                return;
            }
            let chunks = hook.body_chunks(body_type::RECEIVED_REQUEST_BODY);
            let size = chunks.iter().map(|c| c.len()).sum();
            on_worker(config, filter, |state, request| {
                state
                    .worker
                    .request_body(&mut state.host, request, size, || Some(chunks.concat()), end_of_stream);
            });
        });
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook("http_filter_request_trailers", envoy, module, |hook, filter, config| {
            TestPanic::check(filter.test_panic, TestPanic::RequestTrailers);
            if !filter.request.wants_request_stream() {
                return;
            }
            on_worker(config, filter, |state, request| {
                state.worker.request_trailers(&mut state.host, request, || {
                    copyable_trailers(hook.headers(header_type::REQUEST_TRAILER))
                });
            });
        });
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook("http_filter_response_headers", envoy, module, |hook, filter, config| {
            if !filter.request.watches_response() {
                return;
            }
            on_worker(config, filter, |state, request| {
                state.worker.response_headers(
                    &mut state.host,
                    request,
                    || AnswerHead::from_headers(hook.headers(header_type::RESPONSE_HEADER)),
                    end_of_stream,
                );
            });
        });
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook("http_filter_response_body", envoy, module, |hook, filter, config| {
            if !filter.request.watches_response() {
                return;
            }
            let chunks = hook.body_chunks(body_type::RECEIVED_RESPONSE_BODY);
            let size = chunks.iter().map(|c| c.len()).sum();
            on_worker(config, filter, |state, request| {
                state
                    .worker
                    .response_body(&mut state.host, request, size, || Some(chunks.concat()), end_of_stream);
            });
        });
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
) -> u32 {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook(
            "http_filter_response_trailers",
            envoy,
            module,
            |hook, filter, config| {
                if !filter.request.watches_response() {
                    return;
                }
                let trailers = hook.headers(header_type::RESPONSE_TRAILER);
                on_worker(config, filter, |state, request| {
                    state
                        .worker
                        .response_trailers(&mut state.host, request, trailers.len(), |name| {
                            trailers
                                .iter()
                                .find(|(k, _)| *k == name.as_bytes())
                                .map(|(_, v)| v.to_vec())
                        });
                });
            },
        );
    }
    STATUS_CONTINUE
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterEnvoyPtr,
    module: FilterModulePtr,
) {
    // SAFETY: Envoy's pointers for this hook.
    unsafe {
        filter_hook(
            "http_filter_stream_complete",
            envoy,
            module,
            |_hook, filter, _config| {
                TestPanic::check(filter.test_panic, TestPanic::StreamComplete);
            },
        );
    }
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: FilterModulePtr) {
    if module.is_null() || module == noop_filter() {
        return;
    }
    guard("http_filter_destroy", (), || {
        // SAFETY: our `Filter` from `Box::into_raw`; Envoy calls destroy once, last.
        let mut filter = unsafe { Box::from_raw(module.cast::<Filter>().cast_mut()) };
        // SAFETY: the config outlives its filters (every Envoy filter holds its config).
        let config = unsafe { &*filter.config };
        // The request is gone: copies still being captured end `incomplete` (also after a
        // panic poisoned the filter, so that no copy is left without an exit).
        on_worker(config, &mut filter, |state, request| {
            state.worker.request_gone(&mut state.host, request);
        });
    });
}

/// Required by Envoy; the host sends no local replies.
/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _response_code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    LOCAL_REPLY_CONTINUE
}

// Filter-level callouts, streams, schedules and watermarks: required by Envoy 1.40
// (filter_config.cc resolves them), unused here: copies are config-level streams, because a
// filter's streams are cancelled with its request (the facts note).

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _callout_id: u64,
    _result: u32,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _body_chunks: *mut EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _stream_id: u64,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
    _event_id: u64,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
) {
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterEnvoyPtr,
    _module: FilterModulePtr,
) {
}

// ---------------------------------------------------------------------------------------------
// Config-level streams: a copy's answer, on the worker that started it, after its request

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _config_envoy: ConfigEnvoyPtr,
    module: ConfigModulePtr,
    stream_id: u64,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    _end_stream: bool,
) {
    // SAFETY: our live config; Envoy's headers, valid for this hook.
    unsafe {
        config_hook(
            "http_filter_config_http_stream_headers",
            module,
            || Missed::Headers(stream_id, owned_pairs(&host::hook_headers(headers, headers_size))),
            |_config, state| {
                let headers = host::hook_headers(headers, headers_size);
                state.host.answer_headers(stream_id, &headers);
            },
        );
    }
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _config_envoy: ConfigEnvoyPtr,
    module: ConfigModulePtr,
    stream_id: u64,
    data: *const EnvoyBuffer,
    data_count: usize,
    _end_stream: bool,
) {
    // SAFETY: our live config; Envoy's slices, valid for this hook.
    unsafe {
        config_hook(
            "http_filter_config_http_stream_data",
            module,
            || Missed::Data(stream_id, host::hook_data(data, data_count).concat()),
            |_config, state| {
                state.host.answer_data(stream_id, &host::hook_data(data, data_count));
            },
        );
    }
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _config_envoy: ConfigEnvoyPtr,
    module: ConfigModulePtr,
    stream_id: u64,
    trailers: *mut EnvoyHttpHeader,
    trailers_size: usize,
) {
    // SAFETY: our live config; Envoy's trailers, valid for this hook.
    unsafe {
        config_hook(
            "http_filter_config_http_stream_trailers",
            module,
            || Missed::Trailers(stream_id, owned_pairs(&host::hook_headers(trailers, trailers_size))),
            |_config, state| {
                let trailers = host::hook_headers(trailers, trailers_size);
                state.host.answer_trailers(stream_id, &trailers);
            },
        );
    }
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _config_envoy: ConfigEnvoyPtr,
    module: ConfigModulePtr,
    stream_id: u64,
) {
    // SAFETY: our live config.
    unsafe {
        config_hook(
            "http_filter_config_http_stream_complete",
            module,
            || Missed::End(stream_id, false),
            |_config, state| {
                NativeHost::call_ended(&state.worker, &mut state.host, stream_id, false);
            },
        );
    }
}

/// # Safety
/// Called by Envoy only, with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _config_envoy: ConfigEnvoyPtr,
    module: ConfigModulePtr,
    stream_id: u64,
    _reason: u32,
) {
    // SAFETY: our live config. The reason is always `LocalReset` (abi.rs), so it is not read.
    unsafe {
        config_hook(
            "http_filter_config_http_stream_reset",
            module,
            || Missed::End(stream_id, true),
            |_config, state| {
                NativeHost::call_ended(&state.worker, &mut state.host, stream_id, true);
            },
        );
    }
}
