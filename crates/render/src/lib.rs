//! The one renderer of the project's Envoy and Istio configs.
//!
//! - [`yaml`]: a YAML tree and its printer (comments, flow leaves, literal
//!   blocks).
//! - [`envoy`]: an Envoy bootstrap with the filter, from a plain model
//!   ([`envoy::Bootstrap`]): what the tests and the benchmark build directly.
//! - [`from_config`]: that model from a plugin configuration, parsed by the
//!   filter's own parser: what `vrata-mirror envoy` prints.
//! - [`istio`]: a `WasmPlugin` and a `VirtualService` from a plugin
//!   configuration: what `vrata-mirror istio` prints.
//! - [`gateway`]: Envoy Gateway's `HTTPRoute`, `EnvoyExtensionPolicy` and
//!   `EnvoyProxy` from a plugin configuration: what `vrata-mirror gateway` prints.
//! - [`observability`]: the Grafana dashboard and the Prometheus alert
//!   rules (envoy/observability/), from the metric catalogue.
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod envoy;
pub mod from_config;
pub mod gateway;
pub mod istio;
pub mod observability;
pub mod yaml;
