//! The panic guard: no unwinding crosses the ABI.
//!
//! Every exported hook runs its body in [`guard`]. A panic is caught, logged once with its
//! message and place, counted in [`PANICS`] (exposed as the `panics_total` counter), and the
//! hook returns its "go on" value: `Continue` for the request hooks, a do-nothing filter for
//! `on_http_filter_new`, nothing for the void hooks. Without it a Rust panic in an
//! `extern "C"` function aborts Envoy (`panic in a function that cannot unwind`, measured on
//! 1.40.0 by the prototype). The crate's profile (`native`) must keep `panic = "unwind"`.
//!
//! Test hook: when Envoy runs with `VRATA_NATIVE_TEST_PANIC` set (to anything), a request
//! carrying `x-vrata-native-test-panic: <hook>` panics in that hook (`request_headers`,
//! `request_body`, `request_trailers` or `stream_complete`). Without the variable the header
//! is ignored.

use crate::abi::log_level;
use crate::host;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

/// Panics caught since the module was loaded, in every config and worker.
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `body`; on a panic counts it, logs it and returns `fallback`.
pub fn guard<R>(hook: &'static str, fallback: R, body: impl FnOnce() -> R) -> R {
    // AssertUnwindSafe: after a panic the hook's state is not used again by this hook; a
    // filter that panicked is marked poisoned by its caller and does nothing more.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            PANICS.fetch_add(1, Ordering::Relaxed);
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            host::log(
                log_level::ERROR,
                &format!("vrata-mirror: panic caught in {hook} (the request goes on): {message}"),
            );
            fallback
        }
    }
}

/// Replaces std's panic hook, which prints to stderr, with one line in Envoy's log (the guard
/// adds which hook it was). Once per process.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            host::log(log_level::ERROR, &format!("vrata-mirror: panic at {place}"));
        }));
    });
}

/// The hooks a test can make panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestPanic {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    StreamComplete,
}

/// The request header that names the hook to panic in.
pub const TEST_PANIC_HEADER: &[u8] = b"x-vrata-native-test-panic";
/// The environment variable that arms it.
pub const TEST_PANIC_ENV: &str = "VRATA_NATIVE_TEST_PANIC";

/// Whether Envoy's environment arms the test hook (read once).
pub fn test_panics_armed() -> bool {
    static ARMED: OnceLock<bool> = OnceLock::new();
    *ARMED.get_or_init(|| std::env::var_os(TEST_PANIC_ENV).is_some())
}

impl TestPanic {
    /// The hook named by the header's value, if the test hook is armed.
    pub fn from_header(value: &[u8]) -> Option<TestPanic> {
        if !test_panics_armed() {
            return None;
        }
        match value {
            b"request_headers" => Some(TestPanic::RequestHeaders),
            b"request_body" => Some(TestPanic::RequestBody),
            b"request_trailers" => Some(TestPanic::RequestTrailers),
            b"stream_complete" => Some(TestPanic::StreamComplete),
            _ => None,
        }
    }

    /// Panics if `armed` names `here`.
    #[allow(clippy::panic)] // The one deliberate panic: the test of the guard.
    pub fn check(armed: Option<TestPanic>, here: TestPanic) {
        if armed == Some(here) {
            panic!("injected by {TEST_PANIC_ENV} in {here:?}");
        }
    }
}
