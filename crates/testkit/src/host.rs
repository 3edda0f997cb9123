//! Which host runs the filter in a test's Envoy: the proxy-wasm module
//! (`vrata_mirror.wasm`, every supported Envoy) or the native host, the
//! dynamic module (`libvrata_mirror_native.so`, Envoy 1.40 only). The one
//! place that knows how the hosts differ for a test: the module Envoy
//! loads, and the Prometheus name of each catalogue metric.
//!
//! tests/e2e runs each case on both hosts with [`on_each_host!`]: a case is
//! an `async fn name(host: Host)` (or a plain `fn`), and the macro makes the
//! tests `wasm::name` and `native::name` of its module.

use crate::envoy::envoy_version;
use vrata_mirror_core::telemetry::catalogue::Metric;

/// What Envoy prints before every dynamic module's metric in
/// `/stats/prometheus`, and never before a wasm module's (measured:
/// crates/native/NOTES.md, "Metric names").
const DYNAMIC_MODULE_PROMETHEUS_PREFIX: &str = "envoy_";

/// The filter's host in a test's Envoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Host {
    /// `vrata_mirror.wasm` (or `vrata_mirror_compare.wasm`) in Envoy's V8.
    #[default]
    Wasm,
    /// `libvrata_mirror_native.so`, once per worker in the chain.
    Native,
}

impl Host {
    pub const ALL: [Host; 2] = [Host::Wasm, Host::Native];

    /// `wasm` or `native`: the name of the tests' module for this host.
    pub fn name(self) -> &'static str {
        match self {
            Host::Wasm => "wasm",
            Host::Native => "native",
        }
    }

    /// The name Prometheus shows for a catalogue metric on this host:
    /// `vrata_mirror_requests_total` on wasm, `envoy_vrata_mirror_requests_total`
    /// on native (the README's table, row "metric names").
    pub fn metric_name(self, metric: &Metric) -> String {
        match self {
            Host::Wasm => metric.name.to_owned(),
            Host::Native => format!("{DYNAMIC_MODULE_PROMETHEUS_PREFIX}{}", metric.name),
        }
    }

    /// Fails loudly unless the Envoy under test can load this host: the
    /// `.so` is built against Envoy 1.40's ABI (README's table, row "Envoy").
    /// `make test-envoys` runs the older Envoys with the wasm host only.
    pub fn assert_supported(self) {
        if self == Host::Native {
            let version = envoy_version();
            assert!(
                (version.major, version.minor) == (1, 40),
                "the native host loads in Envoy 1.40 only, and the Envoy under test is {version}: run the \
                 native tests with Envoy 1.40 (`make e2e`), or leave them out (`cargo test --test e2e -- \
                 --skip ::native::`, as `make test-envoys` does)"
            );
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs each listed case of a test module on both hosts: for
/// `on_each_host!(async a, async b(4), fn c)` it defines the tests
/// `wasm::a`, `native::a`, ... which call the module's `async fn a(host: Host)`
/// (a tokio test on a multi-threaded runtime, 2 worker threads unless given
/// in parentheses) or `fn c(host: Host)` (a plain test) with their host.
#[macro_export]
macro_rules! on_each_host {
    ($($kind:tt $name:ident $(($threads:literal))?),* $(,)?) => {
        mod wasm {
            $($crate::on_each_host!(@test Wasm $kind $name $($threads)?);)*
        }
        mod native {
            $($crate::on_each_host!(@test Native $kind $name $($threads)?);)*
        }
    };
    (@test $host:ident async $name:ident) => {
        $crate::on_each_host!(@test $host async $name 2);
    };
    (@test $host:ident async $name:ident $threads:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
        async fn $name() {
            super::$name($crate::host::Host::$host).await
        }
    };
    (@test $host:ident fn $name:ident) => {
        #[test]
        fn $name() {
            super::$name($crate::host::Host::$host)
        }
    };
}
