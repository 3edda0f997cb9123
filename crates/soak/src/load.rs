//! The client load: tasks that send a fixed mix of HTTP/1.1, HTTP/2 and
//! gRPC requests through Envoy and compare each answer with what the
//! primary would have given without mirroring.

use crate::accounting::Sent;
use crate::plan::{self, Phase};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::grpc::{self, GrpcClient, Outcome, Rpc};
use vrata_mirror_testkit::upstream::answer_text;

/// Client tasks, and the requests per second they send together.
pub const CLIENTS: u64 = 8;
pub const RATE: u64 = 160;
/// The large upload.
const LARGE_BODY: usize = 200 * 1024;
/// A client request that takes longer is a socket error.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// What the clients saw.
#[derive(Default)]
pub struct ClientStats {
    pub sent: Sent,
    pub h1: u64,
    pub h2: u64,
    pub grpc: u64,
    pub differences: u64,
    pub socket_errors: u64,
    pub examples: Vec<String>,
    /// Latency samples (µs) by the phase the request was sent in.
    pub latency: [Vec<u32>; 8],
}

impl ClientStats {
    pub fn problem(&mut self, socket: bool, what: String) {
        if socket {
            self.socket_errors += 1;
        } else {
            self.differences += 1;
        }
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

pub struct Shared {
    /// The filter's host: what a push renders.
    pub host: crate::topology::Host,
    pub started: Instant,
    pub stop: AtomicBool,
    pub seq: AtomicU64,
    pub stats: Mutex<ClientStats>,
    pub envoy_addr: SocketAddr,
    pub admin: SocketAddr,
    pub envoy: Arc<Envoy>,
}

impl Shared {
    pub fn phase(&self) -> Phase {
        Phase::at(self.started.elapsed())
    }
}

fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    // Headers and body leave in separate writes: no Nagle wait between them.
    connector.set_nodelay(true);
    connector
}

pub fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(connector())
}

fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector())
}

/// One HTTP request: `Ok((status, body))` or a socket-level error.
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).expect("request");
    let exchange = async {
        let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CLIENT_TIMEOUT:?}")),
    }
}

/// One client task: requests in a fixed mix until told to stop, paced so
/// that all clients together send [`RATE`] a second.
pub async fn client_task(shared: Arc<Shared>) {
    let base = format!("http://{}", shared.envoy_addr);
    let h1 = http1_client();
    let h2 = h2_client();
    let mut grpc_client = GrpcClient::connect(&base).await;
    let small = Bytes::from_static(b"a small body of a request, mirrored or not");
    let large = Bytes::from(vec![b'L'; LARGE_BODY]);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * CLIENTS / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !shared.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let phase = shared.phase();
        let started = Instant::now();
        let key = format!("k{seq}");
        // (route, protocol, method, path, body, key)
        let (route, h2_used, method, path, body) = match seq % 10 {
            0 | 8 => ("api", false, "GET", format!("/api/get?n={seq}"), Bytes::new()),
            1 => ("api", true, "GET", format!("/api/get?n={seq}"), Bytes::new()),
            2 => ("api", false, "POST", format!("/api/post/{seq}"), small.clone()),
            3 => ("api", true, "POST", format!("/api/post/{seq}"), small.clone()),
            4 => ("default", false, "GET", format!("/web/{seq}"), Bytes::new()),
            6 => ("default", true, "POST", format!("/web/post/{seq}"), small.clone()),
            5 | 7 => ("grpc", true, "", String::new(), Bytes::new()),
            _ if (seq / 10).is_multiple_of(2) => ("api", false, "POST", format!("/api/upload/{seq}"), large.clone()),
            _ => ("default", true, "POST", format!("/web/upload/{seq}"), large.clone()),
        };
        let outcome: Result<(), (bool, String)> = if route == "grpc" {
            let message = Bytes::from(format!("call {seq}"));
            let rpc = Rpc {
                path: grpc::UNARY,
                messages: vec![message],
                metadata: vec![],
                timeout: Some(CLIENT_TIMEOUT),
            };
            let got = grpc_client.call(&rpc).await;
            let want = Outcome::healthy("primary", &rpc);
            if got.code == want.code && got.replies == want.replies {
                Ok(())
            } else {
                let socket = got.status_message.contains("transport") || got.code == tonic::Code::Unavailable;
                Err((socket, format!("gRPC call {seq}: {got:?}")))
            }
        } else {
            let url = format!("{base}{path}");
            let client = if h2_used { &h2 } else { &h1 };
            let headers: Vec<(&str, &str)> = if route == "default" {
                vec![("x-soak-key", key.as_str())]
            } else {
                vec![]
            };
            let len = body.len();
            match send(client, method, &url, &headers, body).await {
                Ok((status, got)) => {
                    let want = answer_text("primary", method, &path, len);
                    if status == 200 && got == want.as_bytes() {
                        Ok(())
                    } else {
                        Err((
                            false,
                            format!(
                                "{method} {path}: {status} {:?}, expected 200 {want:?}",
                                String::from_utf8_lossy(&got[..got.len().min(200)])
                            ),
                        ))
                    }
                }
                Err(e) => Err((true, format!("{method} {path} (h2 {h2_used}): {e}"))),
            }
        };
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let mut stats = shared.stats.lock().unwrap();
        stats.latency[phase.index()].push(micros);
        match route {
            "grpc" => stats.grpc += 1,
            _ if h2_used => stats.h2 += 1,
            _ => stats.h1 += 1,
        }
        match outcome {
            Ok(()) => match route {
                "api" => stats.sent.api += 1,
                "grpc" => stats.sent.grpc += 1,
                _ => {
                    stats.sent.default += 1;
                    if plan::sampled(&key, plan::DEFAULT_PERCENTAGES[0]) {
                        stats.sent.default_in_low += 1;
                    }
                    if plan::sampled(&key, plan::DEFAULT_PERCENTAGES[1]) {
                        stats.sent.default_in_high += 1;
                    }
                }
            },
            Err((socket, what)) => stats.problem(socket, what),
        }
    }
}
