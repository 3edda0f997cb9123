//! Who takes part: the upstreams (a primary for HTTP and one for gRPC, the
//! two shadows that cycle, the two witnesses) and the Envoy configuration
//! that routes between them.

use crate::plan;
use vrata_mirror_render::envoy::{Bootstrap, Cluster as EnvoyCluster, Mirroring, Route as EnvoyRoute};
use vrata_mirror_testkit::config::{Cluster, Setup};
use vrata_mirror_testkit::grpc::GrpcServer;
use vrata_mirror_testkit::upstream::Upstream;

/// Envoy's workers.
pub const WORKERS: u32 = 2;

/// Which host of the filter the soak runs (`--host`, `make soak SOAK_HOST=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// `vrata_mirror_compare.wasm`.
    Wasm,
    /// The native host, the dynamic module (crates/native), once per worker.
    Native,
}

impl Host {
    pub fn parse(text: &str) -> Option<Host> {
        match text {
            "wasm" => Some(Host::Wasm),
            "native" => Some(Host::Native),
            _ => None,
        }
    }

    /// What the summary's first line calls it.
    pub fn module(self) -> &'static str {
        match self {
            Host::Wasm => "vrata_mirror_compare.wasm",
            Host::Native => "the native host (libvrata_mirror_native.so)",
        }
    }

    /// The admin `/stats` filter of the host's health counters: the wasm
    /// VMs' (`wasm.*`), or the native host's panics (`panics_total`).
    pub fn health_stats(self) -> &'static str {
        match self {
            Host::Wasm => "/stats?filter=wasm",
            Host::Native => "/stats?filter=panics_total",
        }
    }
}

/// The upstreams: a primary for HTTP and one for gRPC, two shadows that
/// cycle, and the witness.
pub struct Upstreams {
    pub primary: Upstream,
    pub primary_grpc: GrpcServer,
    pub shadows: [Upstream; 2],
    pub witnesses: [Upstream; 2],
}

/// The witness route `probe` mirrors to in configuration `config`.
pub fn witness_of(up: &Upstreams, config: u32) -> &Upstream {
    &up.witnesses[(config % 2) as usize]
}

/// The Envoy configuration with plugin configuration `json`: routes
/// `grpc`, `api`, `probe`, `extra` and the default, clusters for every
/// upstream, all HTTP/2; printed by the project's renderer, for `host`.
pub fn bootstrap(up: &Upstreams, json: &str, host: Host) -> Bootstrap {
    let mut setup = Setup::new(json, up.primary.port(), up.shadows[0].port());
    setup.http2_upstreams = true;
    setup.compare_module = true;
    setup.shadows = vec![
        Cluster {
            name: plan::SHADOWS[0],
            port: up.shadows[0].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::SHADOWS[1],
            port: up.shadows[1].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::WITNESSES[0],
            port: up.witnesses[0].port(),
            max_requests: 1024,
        },
        Cluster {
            name: plan::WITNESSES[1],
            port: up.witnesses[1].port(),
            max_requests: 1024,
        },
    ];
    let mut bootstrap = setup.bootstrap();
    bootstrap.routes = vec![
        EnvoyRoute::to_one(Some("grpc"), "/test.Echo/", "primary_grpc"),
        EnvoyRoute::to_one(Some("api"), "/api", "primary"),
        EnvoyRoute::to_one(Some("probe"), "/probe", "primary"),
        EnvoyRoute::to_one(Some("extra"), "/extra", "primary"),
        EnvoyRoute::to_one(Some("default"), "/", "primary"),
    ];
    let mut grpc_primary = EnvoyCluster::primary(
        "primary_grpc",
        vrata_mirror_render::envoy::Address::loopback(up.primary_grpc.port()),
    );
    grpc_primary.http2 = true;
    bootstrap.clusters.push(grpc_primary);
    if host == Host::Native {
        bootstrap.mirroring = Mirroring::DynamicModule {
            module: vrata_mirror_testkit::envoy::native_module().display().to_string(),
            plugin: json.to_owned(),
            workers: WORKERS,
        };
    }
    bootstrap
}
