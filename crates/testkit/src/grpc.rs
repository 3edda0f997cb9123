//! gRPC over a real stack for the end-to-end tests: tonic (h2) servers and a
//! tonic client with a raw-bytes codec (no protoc, no generated code), a
//! grpc-core server (Python grpcio, crates/testkit/grpcio_server.py), and the
//! Envoy config that talks HTTP/2 to both clusters.
//!
//! Three methods of a service `test.Echo`, told apart by path as generated
//! code would: `Unary`, `ClientStream` (many messages in, one out) and
//! `ServerStream` (one in, three out). Every server records each call it
//! handles: its path, request headers (as h2 delivered them, before tonic)
//! and every request message.

use super::config::{Route, Setup};
use super::envoy::{prometheus_value, Envoy};
use super::rig::start_envoy;
use bytes::{Buf, BufMut, Bytes};
use http::HeaderMap;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::future::Future;
use std::io::BufRead;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::server::{ClientStreamingService, ServerStreamingService, StreamingService, UnaryService};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

pub const UNARY: &str = "/test.Echo/Unary";
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";

/// The Envoy route the gRPC service is on, and the shadow cluster's name:
/// the labels of the mirror metrics in these tests.
pub const ROUTE: &str = "grpc";
pub const SHADOW: &str = "shadow";

// ---------------------------------------------------------------- codec

/// Messages are opaque bytes: what the client encodes is exactly what a
/// server decodes, so copies can be compared byte for byte.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

// ---------------------------------------------------------------- servers

/// How a tonic server answers a call (decided from the path and the
/// request's headers, before any message is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The method's normal answer, status OK in the trailers.
    Ok,
    /// A trailers-only answer with this status (HEADERS with
    /// `grpc-status`, end of stream), after reading every request message.
    Fail(Code),
    /// One response message, then this status in the trailers.
    FailAfterMessage(Code),
    /// The normal answer without trailers: a gRPC answer with no grpc-status.
    NoStatus,
    /// Reads the request and never answers.
    Stall,
}

/// Picks the answer for a call from its path and request headers.
pub type Policy = fn(&str, &HeaderMap) -> Answer;

/// One call as a server received it.
#[derive(Clone, Debug)]
pub struct Call {
    pub path: String,
    /// Request headers as h2 handed them over (pseudo-headers excluded).
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Shared {
    name: String,
    policy: Policy,
    calls: Mutex<Vec<Call>>,
    new_call: Notify,
}

impl Shared {
    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
        self.new_call.notify_waiters();
    }
}

/// The replies of a healthy server: they name the server and the input, so
/// a client that got the shadow's answer would notice.
pub fn replies(server: &str, path: &str, messages: &[Bytes]) -> Vec<Bytes> {
    let first = messages.first().cloned().unwrap_or_default();
    let prefixed = |prefix: String| {
        let mut out = prefix.into_bytes();
        out.extend_from_slice(&first);
        Bytes::from(out)
    };
    match path {
        CLIENT_STREAM => {
            let total: usize = messages.iter().map(Bytes::len).sum();
            vec![Bytes::from(format!(
                "{server}: {} messages, {total} bytes",
                messages.len()
            ))]
        }
        SERVER_STREAM => (0..3).map(|i| prefixed(format!("{server} #{i}: "))).collect(),
        _ => vec![prefixed(format!("{server}: "))],
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;
type ReplyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// One call's handler: implements each tonic method kind.
struct Handler {
    shared: Arc<Shared>,
    path: String,
    headers: HeaderMap,
    answer: Answer,
}

impl Handler {
    /// Records the call, then answers with the replies or a status.
    async fn finish(self, messages: Vec<Bytes>) -> Result<Vec<Bytes>, Status> {
        let replies = replies(&self.shared.name, &self.path, &messages);
        self.shared.record(Call {
            path: self.path,
            headers: self.headers,
            messages,
        });
        match self.answer {
            Answer::Fail(code) => Err(Status::new(code, "the test server fails this call")),
            Answer::Stall => std::future::pending().await,
            Answer::Ok | Answer::FailAfterMessage(_) | Answer::NoStatus => Ok(replies),
        }
    }
}

async fn read_all(mut stream: Streaming<Bytes>) -> Result<Vec<Bytes>, Status> {
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    Ok(messages)
}

impl UnaryService<Bytes> for Handler {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = self.take();
        Box::pin(async move {
            let replies = handler.finish(vec![request.into_inner()]).await?;
            Ok(Response::new(replies.into_iter().next().unwrap_or_default()))
        })
    }
}

impl ClientStreamingService<Bytes> for Handler {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let handler = self.take();
        Box::pin(async move {
            let messages = read_all(request.into_inner()).await?;
            let replies = handler.finish(messages).await?;
            Ok(Response::new(replies.into_iter().next().unwrap_or_default()))
        })
    }
}

impl ServerStreamingService<Bytes> for Handler {
    type Response = Bytes;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<Response<ReplyStream>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = self.take();
        Box::pin(async move {
            let replies = handler.finish(vec![request.into_inner()]).await?;
            let stream: ReplyStream = Box::pin(tokio_stream::iter(replies.into_iter().map(Ok)));
            Ok(Response::new(stream))
        })
    }
}

/// For `FailAfterMessage` on any method: reads every request message, sends
/// one reply, then the status in the trailers.
impl StreamingService<Bytes> for Handler {
    type Response = Bytes;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<Response<ReplyStream>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let handler = self.take();
        let code = match handler.answer {
            Answer::FailAfterMessage(code) => code,
            _ => Code::Internal,
        };
        Box::pin(async move {
            let messages = read_all(request.into_inner()).await?;
            let replies = handler.finish(messages).await?;
            let first = replies.into_iter().next().unwrap_or_default();
            let items = vec![
                Ok(first),
                Err(Status::new(code, "the test server fails after one message")),
            ];
            let stream: ReplyStream = Box::pin(tokio_stream::iter(items));
            Ok(Response::new(stream))
        })
    }
}

impl Handler {
    /// tonic calls a method service once per call; hand the state over.
    fn take(&mut self) -> Handler {
        Handler {
            shared: self.shared.clone(),
            path: std::mem::take(&mut self.path),
            headers: std::mem::take(&mut self.headers),
            answer: self.answer,
        }
    }
}

/// The hand-written tower service tonic's server runs: routes by path as
/// generated code does.
#[derive(Clone)]
struct EchoService {
    shared: Arc<Shared>,
}

impl tower_service::Service<http::Request<tonic::body::Body>> for EchoService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let answer = (self.shared.policy)(&path, request.headers());
        let handler = Handler {
            shared: self.shared.clone(),
            path: path.clone(),
            headers: request.headers().clone(),
            answer,
        };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            let response = match (path.as_str(), answer) {
                (UNARY | CLIENT_STREAM | SERVER_STREAM, Answer::FailAfterMessage(_)) => {
                    grpc.streaming(handler, request).await
                }
                (UNARY, _) => grpc.unary(handler, request).await,
                (CLIENT_STREAM, _) => grpc.client_streaming(handler, request).await,
                (SERVER_STREAM, _) => grpc.server_streaming(handler, request).await,
                _ => Status::unimplemented(format!("no method {path}")).into_http(),
            };
            Ok(if answer == Answer::NoStatus {
                without_trailers(response)
            } else {
                response
            })
        })
    }
}

/// The same answer with its trailers turned into an empty data frame.
fn without_trailers(response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    response.map(|body| {
        tonic::body::Body::new(body.map_frame(|frame| {
            if frame.is_trailers() {
                hyper::body::Frame::data(Bytes::new())
            } else {
                frame
            }
        }))
    })
}

/// A tonic server on 127.0.0.1 (h2c only). Dropping it stops it.
pub struct GrpcServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GrpcServer {
    /// `name` appears in its replies; `policy` decides how it answers.
    pub async fn start(name: &str, policy: Policy) -> GrpcServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            policy,
            calls: Mutex::new(Vec::new()),
            new_call: Notify::new(),
        });
        let service = EchoService { shared: shared.clone() };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming_shutdown(service, incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        GrpcServer {
            addr,
            shared,
            stop: Some(stop),
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Waits until at least `n` calls were handled (or `timeout` passed).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.new_call.notified();
            if self.calls().len() >= n || tokio::time::Instant::now() >= deadline {
                return self.calls();
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits `quiet` and returns every call: to assert nothing (more) came.
    pub async fn settle(&self, quiet: Duration) -> Vec<Call> {
        tokio::time::sleep(quiet).await;
        self.calls()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Every call answered normally.
pub fn always_ok(_path: &str, _headers: &HeaderMap) -> Answer {
    Answer::Ok
}

// ---------------------------------------------------------------- client

/// A call to make: path, request messages (one for Unary and ServerStream),
/// metadata (keys ending in `-bin` are binary and take raw bytes) and the
/// deadline (sent as `grpc-timeout`).
#[derive(Clone, Debug)]
pub struct Rpc {
    pub path: &'static str,
    pub messages: Vec<Bytes>,
    pub metadata: Vec<(&'static str, Vec<u8>)>,
    pub timeout: Option<Duration>,
}

/// What the client got: the status (code and message) and every response
/// message received before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub code: Code,
    pub status_message: String,
    pub replies: Vec<Bytes>,
}

impl Outcome {
    fn ok(replies: Vec<Bytes>) -> Outcome {
        Outcome {
            code: Code::Ok,
            status_message: String::new(),
            replies,
        }
    }

    fn failed(status: &Status, replies: Vec<Bytes>) -> Outcome {
        Outcome {
            code: status.code(),
            status_message: status.message().to_owned(),
            replies,
        }
    }
}

/// A tonic client over one h2c connection to `url`.
pub struct GrpcClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl GrpcClient {
    pub async fn connect(url: &str) -> GrpcClient {
        let channel = Channel::from_shared(url.to_owned())
            .expect("url")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        GrpcClient {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    fn request<T>(rpc: &Rpc, message: T) -> Request<T> {
        let mut request = Request::new(message);
        for (key, value) in &rpc.metadata {
            if key.ends_with("-bin") {
                let key = MetadataKey::from_bytes(key.as_bytes()).expect("binary metadata key");
                request.metadata_mut().insert_bin(key, MetadataValue::from_bytes(value));
            } else {
                let key: MetadataKey<_> = MetadataKey::from_bytes(key.as_bytes()).expect("metadata key");
                let value = MetadataValue::try_from(value.as_slice()).expect("ascii metadata value");
                request.metadata_mut().insert(key, value);
            }
        }
        if let Some(timeout) = rpc.timeout {
            request.set_timeout(timeout);
        }
        request
    }

    pub async fn call(&mut self, rpc: &Rpc) -> Outcome {
        self.grpc.ready().await.expect("channel ready");
        let path = http::uri::PathAndQuery::from_static(rpc.path);
        let first = rpc.messages.first().cloned().unwrap_or_default();
        match rpc.path {
            UNARY => match self.grpc.unary(Self::request(rpc, first), path, RawCodec).await {
                Ok(response) => Outcome::ok(vec![response.into_inner()]),
                Err(status) => Outcome::failed(&status, Vec::new()),
            },
            CLIENT_STREAM => {
                let stream = tokio_stream::iter(rpc.messages.clone());
                match self
                    .grpc
                    .client_streaming(Self::request(rpc, stream), path, RawCodec)
                    .await
                {
                    Ok(response) => Outcome::ok(vec![response.into_inner()]),
                    Err(status) => Outcome::failed(&status, Vec::new()),
                }
            }
            _ => match self
                .grpc
                .server_streaming(Self::request(rpc, first), path, RawCodec)
                .await
            {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    let mut replies = Vec::new();
                    loop {
                        match stream.next().await {
                            Some(Ok(reply)) => replies.push(reply),
                            Some(Err(status)) => return Outcome::failed(&status, replies),
                            None => return Outcome::ok(replies),
                        }
                    }
                }
                Err(status) => Outcome::failed(&status, Vec::new()),
            },
        }
    }

    /// Each call in turn, over this one connection.
    pub async fn run(&mut self, rpcs: &[Rpc]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(rpcs.len());
        for rpc in rpcs {
            outcomes.push(self.call(rpc).await);
        }
        outcomes
    }
}

// ---------------------------------------------------------------- Envoy

/// Envoy with the filter, HTTP/2 (h2c) to the primary and to the shadow
/// cluster `shadow`; the gRPC service on the route named `grpc`.
pub async fn start_envoy_for_grpc(plugin_json: &str, primary_port: u16, shadow_port: u16) -> Envoy {
    start_envoy_for_grpc_with(plugin_json, primary_port, shadow_port, |_| {}).await
}

/// As [`start_envoy_for_grpc`], with any change to the setup (e.g. the
/// comparison module).
pub async fn start_envoy_for_grpc_with(
    plugin_json: &str,
    primary_port: u16,
    shadow_port: u16,
    customize: impl FnOnce(&mut Setup),
) -> Envoy {
    let mut setup = Setup::new(plugin_json, primary_port, shadow_port);
    setup.http2_upstreams = true;
    setup.routes = vec![
        Route {
            name: Some(ROUTE),
            prefix: "/test.Echo/",
        },
        Route {
            name: Some("default"),
            prefix: "/",
        },
    ];
    customize(&mut setup);
    start_envoy(setup.render(), 1).await
}

/// `vrata_mirror_requests_total` for the gRPC route.
pub fn mirrored(envoy: &Envoy) -> f64 {
    envoy.metric(
        "vrata_mirror_requests_total",
        &[("route", ROUTE), ("destination", SHADOW)],
    )
}

/// `vrata_mirror_skipped_total{reason}` for the gRPC route.
pub fn skipped(envoy: &Envoy, reason: &str) -> f64 {
    envoy.metric(
        "vrata_mirror_skipped_total",
        &[("route", ROUTE), ("destination", SHADOW), ("reason", reason)],
    )
}

/// `vrata_mirror_responses_total{class}` for the gRPC route.
pub fn responses(envoy: &Envoy, class: &str) -> f64 {
    envoy.metric(
        "vrata_mirror_responses_total",
        &[("route", ROUTE), ("destination", SHADOW), ("class", class)],
    )
}

/// Every non-zero `vrata_mirror_responses_total` class of the gRPC route.
pub fn response_classes(envoy: &Envoy) -> Vec<(String, f64)> {
    let text = envoy.prometheus();
    let mut classes: Vec<(String, f64)> = text
        .lines()
        .filter(|line| line.starts_with("vrata_mirror_responses_total{"))
        .filter_map(|line| {
            let class = line.split("class=\"").nth(1)?.split('"').next()?.to_owned();
            let value = prometheus_value(
                &text,
                "vrata_mirror_responses_total",
                &[("route", ROUTE), ("destination", SHADOW), ("class", &class)],
            )?;
            (value > 0.0).then_some((class, value))
        })
        .collect();
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    classes.dedup();
    classes
}

/// `vrata_mirror_response_time_ms_count` for the gRPC route.
pub fn timed_responses(envoy: &Envoy) -> f64 {
    envoy.metric(
        "vrata_mirror_response_time_ms_count",
        &[("route", ROUTE), ("destination", SHADOW)],
    )
}

// ---------------------------------------------------------------- grpcio

/// One call as the grpc-core (Python grpcio) server handled it.
#[derive(Clone, Debug)]
pub struct GrpcioCall {
    pub path: String,
    /// Invocation metadata as grpc-core hands it to the application
    /// (grpc-core consumes te, content-type, grpc-timeout and the like).
    pub metadata: Vec<(String, String)>,
    pub messages: Vec<Vec<u8>>,
    /// `context.time_remaining()` when the call arrived: the deadline
    /// grpc-core read from `grpc-timeout`, if any.
    pub time_remaining: Option<f64>,
}

impl GrpcioCall {
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The python of the project's .venv with grpcio, from scripts/ensure-grpcio.sh
/// (which installs the pinned grpcio if missing). Fails loudly.
pub fn grpcio_python() -> std::path::PathBuf {
    let root = crate::repo_root();
    let script = root.join("scripts/ensure-grpcio.sh");
    let output = Command::new(&script)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the grpc-core shadow needs grpcio in .venv: run ./scripts/ensure-grpcio.sh\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// crates/testkit/grpcio_server.py in a child process on 127.0.0.1: it prints
/// its port, then one JSON line per call. Dropping it kills it.
pub struct GrpcioServer {
    pub port: u16,
    child: Child,
    calls: Arc<Mutex<Vec<GrpcioCall>>>,
    output: Arc<Mutex<Vec<String>>>,
}

impl GrpcioServer {
    pub fn start() -> GrpcioServer {
        let python = grpcio_python();
        let script = crate::repo_root().join("crates/testkit/grpcio_server.py");
        let mut child = Command::new(python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn grpcio server");
        let stdout = child.stdout.take().expect("stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (reader_calls, reader_output) = (calls.clone(), output.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                reader_output.lock().unwrap().push(line.clone());
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(port) = json["port"].as_u64() {
                    let _ = port_tx.send(port as u16);
                } else if let Some(call) = parse_grpcio_call(&json) {
                    reader_calls.lock().unwrap().push(call);
                }
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!(
                "the grpcio server did not print its port; it printed {:?}",
                output.lock().unwrap()
            )
        });
        GrpcioServer {
            port,
            child,
            calls,
            output,
        }
    }

    pub fn calls(&self) -> Vec<GrpcioCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Everything the server printed (for failure messages).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<GrpcioCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.calls().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.calls()
    }
}

impl Drop for GrpcioServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_grpcio_call(json: &serde_json::Value) -> Option<GrpcioCall> {
    let path = json["path"].as_str()?.to_owned();
    let metadata = json["metadata"]
        .as_array()?
        .iter()
        .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
        .collect();
    let messages = json["messages"]
        .as_array()?
        .iter()
        .filter_map(|hex| decode_hex(hex.as_str()?))
        .collect();
    Some(GrpcioCall {
        path,
        metadata,
        messages,
        time_remaining: json["time_remaining"].as_f64(),
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
