//! End to end, canary comparison (`compare`: the shadow's answer checked
//! against the primary's) through the real Envoy with the comparison module
//! (`vrata_mirror_compare.wasm`): a primary and a shadow that answer alike
//! or differently on known paths (`upstream::compare_answer`), the exact
//! count per result and route, the mismatch log lines (rate limited,
//! naming the differing path), and the client's answers unchanged.

use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tonic::Code;
use vrata_mirror_core::telemetry::catalogue::{COMPARED, PRIMARY_LATENCY};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::compare::{self, nonzero_results};
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::grpc::{always_ok, start_envoy_for_grpc_with, Answer, GrpcClient, GrpcServer, Rpc, UNARY};
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, Rig, ARRIVAL};
use vrata_mirror_testkit::upstream::{closed_port, compare_answer, Behaviour};

fn compare_total(envoy: &Envoy, route: &str, result: &str) -> f64 {
    envoy.mirror_metric(
        &COMPARED,
        &[("route", route), ("destination", "shadow"), ("result", result)],
    )
}

/// Every result with a non-zero count, for `route`.
fn results(envoy: &Envoy, route: &str) -> Vec<(&'static str, f64)> {
    nonzero_results(|result| compare_total(envoy, route, result))
}

fn compared(envoy: &Envoy, route: &str) -> f64 {
    results(envoy, route).iter().map(|(_, n)| n).sum()
}

fn mismatch_lines(envoy: &Envoy) -> Vec<String> {
    compare::mismatch_lines(envoy.log().lines())
}

/// The comparison module on the wasm host; the native host's one `.so`
/// compares (the README's table, row "comparison").
async fn compare_rig(
    host: Host,
    plugin: &str,
    shadow: Behaviour,
    customize: impl FnOnce(&mut vrata_mirror_testkit::config::Setup),
) -> Rig {
    let rig = Rig::build_on(host, plugin, shadow, |setup| {
        setup.compare_module = true;
        customize(setup);
    })
    .await;
    rig.primary.set_behaviour(Behaviour::Compare);
    rig
}

/// A request the client gives up on before the primary answers.
async fn aborted_request(rig: &Rig, path: &str) {
    let url = rig.url(path);
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: api.example.com\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
}

async fn each_known_difference_ends_in_its_result_and_the_client_sees_only_the_primary(host: Host) {
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow",
        "compare": {"body": "json", "ignoreFields": ["ts"], "maxBodyBytes": 1024, "logMismatches": 3}}}}"#;
    let rig = compare_rig(host, plugin, Behaviour::Compare, |_| {}).await;
    // Mismatches first, so that the three lines the limiter lets through
    // are the two JSON ones and the first status one.
    let cases = [
        ("json", 2),
        ("status", 2),
        ("text", 2),
        ("same", 3),
        ("ignored", 2),
        ("large", 2),
    ];
    let mut sent = 0;
    for (case, n) in cases {
        for i in 0..n {
            let path = format!("/api/{case}/{i}?secret=s{i}");
            let reply = client::http1(
                "GET",
                &rig.url(&path),
                &[("x-request-id", &format!("rid-{case}-{i}"))],
                "",
            )
            .await;
            let (_, status, _, body) = compare_answer("primary", &path);
            assert_eq!(
                (reply.status, reply.text()),
                (status, body),
                "{path}: the client gets the primary's answer"
            );
            sent += 1;
        }
    }
    aborted_request(&rig, "/api/slow/0").await;
    sent += 1;
    // Another route: counted under its own label.
    for i in 0..2 {
        client::http1("GET", &rig.url(&format!("/other/status/{i}")), &[], "").await;
    }
    assert!(
        eventually(ARRIVAL, || compared(&rig.envoy, "api") >= f64::from(sent)
            && compared(&rig.envoy, "default") >= 2.0)
        .await,
        "{:?}\n{}",
        results(&rig.envoy, "api"),
        rig.envoy.prometheus()
    );
    assert_eq!(
        results(&rig.envoy, "api"),
        [
            ("match", 5.0),
            ("status_mismatch", 2.0),
            ("body_mismatch", 4.0),
            ("primary_incomplete", 1.0),
            ("not_compared", 2.0),
        ],
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(results(&rig.envoy, "default"), [("status_mismatch", 2.0)]);
    assert_eq!(rig.mirrored("api", "shadow"), f64::from(sent));
    // One primary latency per compared copy whose primary completed.
    let primary_latencies = rig.envoy.mirror_histogram(
        &PRIMARY_LATENCY,
        "count",
        &[("route", "api"), ("destination", "shadow")],
    );
    assert_eq!(primary_latencies, f64::from(sent - 1));
    let lines = mismatch_lines(&rig.envoy);
    assert_eq!(lines.len(), 3, "logMismatches 3 per minute: {lines:#?}");
    assert!(lines[0].contains("json_path=items[1].price"), "{}", lines[0]);
    assert!(
        lines[0].contains("path=/api/json/0 "),
        "the query is left out: {}",
        lines[0]
    );
    assert!(lines[0].contains("request_id=rid-json-0"), "{}", lines[0]);
    assert!(
        lines[2].contains("primary=200 shadow=503 differs=status"),
        "{}",
        lines[2]
    );
    assert!(lines.iter().all(|l| !l.contains("secret")), "{lines:#?}");
}

async fn a_dead_shadow_is_shadow_failed_for_every_copy_sent(host: Host) {
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow", "compare": {}}}}"#;
    let rig = compare_rig(host, plugin, Behaviour::Answer, |setup| {
        setup.shadows[0].port = closed_port()
    })
    .await;
    for i in 0..6 {
        let reply = client::http1("GET", &rig.url(&format!("/api/same/{i}")), &[], "").await;
        assert_eq!(reply.status, 200);
    }
    let sent = || rig.mirrored("api", "shadow");
    assert!(
        eventually(ARRIVAL, || sent() >= 1.0
            && compared(&rig.envoy, "api") == sent()
            && rig.responses("api", "shadow", "connect_failure") == sent())
        .await,
        "{}",
        rig.envoy.prometheus()
    );
    assert_eq!(results(&rig.envoy, "api"), [("shadow_failed", sent())]);
    assert!(mismatch_lines(&rig.envoy).is_empty());
}

/// The README's table, row "comparison": the wasm host's default module
/// refuses `compare` at load and names the module that has it; the native
/// host has one `.so`, which takes it.
fn the_default_module_refuses_compare(host: Host) {
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow", "compare": {}}}}"#;
    let mut setup = vrata_mirror_testkit::config::Setup::new(plugin, closed_port(), closed_port()).on(host);
    setup.compare_module = false;
    let (accepted, output) = setup.validate();
    match host {
        Host::Wasm => {
            assert!(!accepted, "{output}");
            assert!(
                output.contains(r#"forward (mirror to "shadow").compare"#)
                    && output.contains("vrata_mirror_compare.wasm"),
                "{output}"
            );
        }
        Host::Native => assert!(accepted, "the native host refused compare:\n{output}"),
    }
}

fn shadow_not_found_on_unary(path: &str, _headers: &http::HeaderMap) -> Answer {
    if path == UNARY {
        Answer::Fail(Code::NotFound)
    } else {
        Answer::Ok
    }
}

async fn grpc_calls_are_compared_by_grpc_status(host: Host) {
    let primary = GrpcServer::start("primary", always_ok).await;
    let shadow = GrpcServer::start("shadow", shadow_not_found_on_unary).await;
    let plugin = r#"{"forward": {"mirror": {"destinationId": "shadow", "compare": {"logMismatches": 10}}}}"#;
    let envoy = start_envoy_for_grpc_with(plugin, primary.addr.port(), shadow.addr.port(), |setup| {
        setup.compare_module = true;
        setup.host = host;
    })
    .await;
    let mut client = GrpcClient::connect(&envoy.url("")).await;
    let rpc = |path: &'static str| Rpc {
        path,
        messages: vec![bytes::Bytes::from_static(b"hello")],
        metadata: Vec::new(),
        timeout: Some(Duration::from_secs(5)),
    };
    for _ in 0..3 {
        assert_eq!(client.call(&rpc(UNARY)).await.code, Code::Ok);
        assert_eq!(
            client.call(&rpc(vrata_mirror_testkit::grpc::SERVER_STREAM)).await.code,
            Code::Ok
        );
    }
    assert!(
        eventually(ARRIVAL, || compared(&envoy, "grpc") >= 6.0).await,
        "{}",
        envoy.prometheus()
    );
    assert_eq!(
        results(&envoy, "grpc"),
        [("match", 3.0), ("status_mismatch", 3.0)],
        "{}",
        envoy.prometheus()
    );
    let lines = mismatch_lines(&envoy);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("primary=grpc_ok shadow=grpc_not_found differs=status")),
        "{lines:#?}"
    );
}

vrata_mirror_testkit::on_each_host!(
    async each_known_difference_ends_in_its_result_and_the_client_sees_only_the_primary,
    async a_dead_shadow_is_shadow_failed_for_every_copy_sent,
    fn the_default_module_refuses_compare,
    async grpc_calls_are_compared_by_grpc_status,
);
