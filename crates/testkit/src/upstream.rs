//! Upstream HTTP servers for the end-to-end tests and for `make run`: a
//! primary that answers, and a shadow that records (and optionally logs)
//! every request it receives and can be told to misbehave.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// How an upstream answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a body naming what it received.
    Answer,
    /// This status, same body.
    Status(u16),
    /// Reads the request, then closes the connection without answering.
    Reset,
    /// Reads the request and never answers.
    Stuck,
    /// Answers 200 after this many milliseconds.
    SlowMs(u64),
    /// Answers 200 with a body of this many bytes.
    LargeAnswer(usize),
    /// Answers 200 (announcing 20 MiB), sends the first 64 KiB of the body,
    /// then breaks the connection: a reset mid-answer.
    ResetMidAnswer,
    /// Answers 200 (announcing 20 MiB), sends the first 64 KiB of the body,
    /// then nothing more: an answer that stalls.
    StallMidAnswer,
    /// For the comparison tests: answers by path, the primary and the
    /// shadow alike or differently (see [`compare_answer`]), so that every
    /// compare result can be provoked on purpose.
    Compare,
    /// gRPC requests (`content-type: application/grpc…`) get a
    /// trailers-only gRPC answer with this `grpc-status` (0: OK); any other
    /// request is answered as [`Behaviour::Answer`]. For a shadow that
    /// receives HTTP and gRPC copies alike (the soak, crates/soak).
    GrpcStatus(u8),
    /// For noise cancellation (`compare.secondary`): 200 with
    /// [`noisy_answer`], whose `price` is off by one on this many requests
    /// in a thousand, drawn at random (0: never).
    Noisy(u16),
}

/// A JSON answer that differs between two calls of the same code, as real
/// answers do: a timestamp (nanoseconds), a random id, and a list of six
/// items in random order; `price` is 100, or 101 when `price_off`.
pub fn noisy_answer(price_off: bool) -> String {
    let mut items: Vec<u64> = (1..=6).collect();
    for i in (1..items.len()).rev() {
        items.swap(i, (random_u64() % (i as u64 + 1)) as usize);
    }
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let items: Vec<String> = items.iter().map(u64::to_string).collect();
    format!(
        r#"{{"id": "{:016x}", "ts": {ts}, "items": [{}], "price": {}, "name": "widget"}}"#,
        random_u64(),
        items.join(", "),
        if price_off { 101 } else { 100 }
    )
}

/// A uniform 64-bit draw (std's per-process random hasher keys, over a counter).
pub fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    KEYS.get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// What an upstream named `name` answers to `path` under
/// [`Behaviour::Compare`]: (delay ms, status, content type, body), by the
/// path's second segment (`/api/<case>/...`):
/// - `same`: 200 `{"a": 1, "list": [1, 2]}` on both;
/// - `status`: 200 from the primary, 503 from the shadow;
/// - `json`: `items[1].price` is 2 on the primary, 3 on the shadow;
/// - `ignored`: only `ts` differs (and key order);
/// - `text`: plain text bodies that differ;
/// - `large`: 4096-byte bodies (over a small `maxBodyBytes`), which differ;
/// - `slow`: the primary answers after 2 s (for a client that aborts), the shadow at once.
pub fn compare_answer(name: &str, path: &str) -> (u64, u16, &'static str, String) {
    let primary = name == "primary";
    let case = path.split('/').nth(2).unwrap_or_default();
    let json = "application/json";
    match case {
        "status" => (0, if primary { 200 } else { 503 }, json, r#"{"a": 1}"#.to_owned()),
        "json" => (
            0,
            200,
            json,
            format!(
                r#"{{"items": [1, {{"price": {}}}], "n": 2}}"#,
                if primary { 2 } else { 3 }
            ),
        ),
        "ignored" => (
            0,
            200,
            json,
            if primary {
                r#"{"a": 1, "ts": 1000}"#.to_owned()
            } else {
                r#"{"ts": 2000, "a": 1.0}"#.to_owned()
            },
        ),
        "text" => (0, 200, "text/plain", format!("hello from the {name}\n")),
        "large" => (0, 200, "text/plain", format!("{name}:{}", "x".repeat(4096))),
        "slow" => (if primary { 2000 } else { 0 }, 200, json, r#"{"a": 1}"#.to_owned()),
        _ => (0, 200, json, r#"{"a": 1, "list": [1, 2]}"#.to_owned()),
    }
}

/// What an upstream named `name` answers under [`Behaviour::Answer`] to
/// `method uri` with a body of `body_len` bytes: it names the upstream and
/// the request, so a client that got the shadow's answer, or another
/// request's, would notice.
pub fn answer_text(name: &str, method: &str, uri: &str, body_len: usize) -> String {
    format!("{name} saw {method} {uri} with {body_len} body bytes\n")
}

/// What an upstream answers with: a whole body, or the start of one and
/// then, after a moment (so that the start is on the wire), an error (hyper
/// breaks the connection) or nothing more.
pub enum AnswerBody {
    Whole(Full<Bytes>),
    Partial {
        first: Option<Bytes>,
        pause: Pin<Box<tokio::time::Sleep>>,
        then_fail: bool,
    },
}

impl AnswerBody {
    fn whole(bytes: impl Into<Bytes>) -> AnswerBody {
        AnswerBody::Whole(Full::new(bytes.into()))
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            AnswerBody::Whole(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
            AnswerBody::Partial {
                first,
                pause,
                then_fail,
            } => match first.take() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None if *then_fail => pause
                    .as_mut()
                    .poll(cx)
                    .map(|()| Some(Err(std::io::Error::other("cut mid-answer on purpose")))),
                // Never woken: the answer stalls until the peer gives up.
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::Whole(full) => full.is_end_stream(),
            AnswerBody::Partial { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Whole(full) => full.size_hint(),
            AnswerBody::Partial { .. } => SizeHint::default(),
        }
    }
}

/// `n` bytes of filler, shared between answers (a clone of `Bytes` copies nothing).
fn filler(n: usize) -> Bytes {
    static FILLER: Mutex<Option<Bytes>> = Mutex::new(None);
    let mut cached = FILLER.lock().unwrap();
    match cached.as_ref() {
        Some(bytes) if bytes.len() >= n => bytes.slice(..n),
        _ => {
            let bytes = Bytes::from(vec![b'x'; n]);
            *cached = Some(bytes.clone());
            bytes
        }
    }
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    /// When the request's head arrived.
    pub arrived: std::time::Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

struct Shared {
    name: String,
    behaviour: Mutex<Behaviour>,
    log_to_stdout: bool,
    /// Keep every request ([`Upstream::received`]); otherwise only count
    /// them (for hours of traffic with 200 KiB bodies: the soak).
    keep: bool,
    received: Mutex<Vec<Recorded>>,
    /// Requests read whole (head and body), kept or not.
    received_total: AtomicU64,
    /// Requests answered with a status (the answer's head handed to hyper).
    answered_total: AtomicU64,
    new_request: Notify,
    /// Bumped to close every open connection gracefully (h1: after the
    /// answer in progress; h2: GOAWAY, streams in progress finish).
    close_connections: watch::Sender<u64>,
}

/// A running upstream on 127.0.0.1. Dropping it stops accepting.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop; `None` while [`Upstream::stop_listening`] holds.
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Upstream {
    pub async fn start(name: &str, behaviour: Behaviour) -> Upstream {
        Self::start_on(name, behaviour, 0, false).await
    }

    /// `port` 0 picks a free one; `log_to_stdout` prints a line per request.
    pub async fn start_on(name: &str, behaviour: Behaviour, port: u16, log_to_stdout: bool) -> Upstream {
        Self::start_with(name, behaviour, port, log_to_stdout, true).await
    }

    /// An upstream that counts what it receives and answers ([`Upstream::count`],
    /// [`Upstream::answered`]) and keeps none of it: `received()` stays empty.
    pub async fn start_counting(name: &str, behaviour: Behaviour) -> Upstream {
        Self::start_with(name, behaviour, 0, false, false).await
    }

    async fn start_with(name: &str, behaviour: Behaviour, port: u16, log_to_stdout: bool, keep: bool) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("{name}: cannot listen on 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            behaviour: Mutex::new(behaviour),
            log_to_stdout,
            keep,
            received: Mutex::new(Vec::new()),
            received_total: AtomicU64::new(0),
            answered_total: AtomicU64::new(0),
            new_request: Notify::new(),
            close_connections: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Upstream {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Refuses connections from now on: the listening socket is closed
    /// (connecting gets RST, "connection refused"), and every open
    /// connection is closed gracefully, so that a pooling client (Envoy)
    /// has to connect anew. [`Upstream::listen_again`] undoes it.
    pub fn stop_listening(&self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        self.shared.close_connections.send_modify(|generation| *generation += 1);
    }

    /// Listens again on the same port after [`Upstream::stop_listening`].
    /// Fails loudly if the port cannot be bound again within 5 s.
    pub async fn listen_again(&self) {
        if self.accept.lock().unwrap().is_some() {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    panic!("{}: cannot listen on {} again: {e}", self.shared.name, self.addr)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        *self.accept.lock().unwrap() = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }

    /// Everything received so far (empty for [`Upstream::start_counting`]).
    pub fn received(&self) -> Vec<Recorded> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Requests received whole so far.
    pub fn count(&self) -> usize {
        self.shared.received_total.load(Ordering::SeqCst) as usize
    }

    /// Requests answered with a status so far: every behaviour but
    /// `Reset` and `Stuck` answers (`ResetMidAnswer`, `StallMidAnswer` and
    /// `LargeAnswer` count: their head was sent).
    pub fn answered(&self) -> u64 {
        self.shared.answered_total.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived (or `timeout` passed) and
    /// returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.new_request.notified();
            if self.count() >= n || tokio::time::Instant::now() >= deadline {
                return self.received();
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits `quiet` and returns everything: for asserting that nothing (more) arrives.
    pub async fn settle(&self, quiet: Duration) -> Vec<Recorded> {
        tokio::time::sleep(quiet).await;
        self.received()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Without it an answer written in two pieces (h2: HEADERS, then
        // DATA) waits for the peer's delayed ACK: 40 ms on Linux.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut close = shared.close_connections.subscribe();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            // HTTP/1.1, or h2c with prior knowledge (for HTTP/2 clusters).
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                Ok(()) = close.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<AnswerBody>, std::io::Error> {
    let answer = answer(shared.clone(), req).await;
    if answer.is_ok() {
        shared.answered_total.fetch_add(1, Ordering::SeqCst);
    }
    answer
}

async fn answer(shared: Arc<Shared>, mut req: Request<Incoming>) -> Result<Response<AnswerBody>, std::io::Error> {
    let behaviour = *shared.behaviour.lock().unwrap();
    let arrived = std::time::Instant::now();
    let method = req.method().to_string();
    let uri = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();

    if req.headers().contains_key(hyper::header::UPGRADE) {
        // A WebSocket-style upgrade: answer 101 and echo the raw stream.
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        record(
            &shared,
            Recorded {
                method,
                uri,
                headers,
                body: Vec::new(),
                trailers: Vec::new(),
                arrived,
            },
        );
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(AnswerBody::whole(Bytes::new()))
            .expect("101"));
    }

    let collected = req.into_body().collect().await.map_err(std::io::Error::other)?;
    let trailers: Vec<(String, Vec<u8>)> = collected
        .trailers()
        .map(|t| {
            t.iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    let body = collected.to_bytes().to_vec();
    let grpc = headers
        .iter()
        .any(|(n, v)| n == "content-type" && v.starts_with(b"application/grpc"));
    let text = answer_text(&shared.name, &method, &uri, body.len());
    let summary = text.trim_end();
    if shared.log_to_stdout {
        let header_list: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect();
        println!("{summary}\n    {}", header_list.join("\n    "));
    }
    let path = uri.clone();
    record(
        &shared,
        Recorded {
            method,
            uri,
            headers,
            body,
            trailers,
            arrived,
        },
    );

    let cut = |then_fail: bool| {
        Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .header("content-length", (20usize << 20).to_string())
            .body(AnswerBody::Partial {
                first: Some(filler(64 * 1024)),
                pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
                then_fail,
            })
            .expect("response")
    };
    let status = match behaviour {
        Behaviour::LargeAnswer(size) => {
            return Ok(Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .body(AnswerBody::whole(filler(size)))
                .expect("response"))
        }
        Behaviour::Compare => {
            let (delay_ms, status, content_type, body) = compare_answer(&shared.name, &path);
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            return Ok(Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(AnswerBody::whole(body))
                .expect("response"));
        }
        Behaviour::Noisy(per_mille) => {
            let off = random_u64() % 1000 < u64::from(per_mille);
            return Ok(Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(AnswerBody::whole(noisy_answer(off)))
                .expect("response"));
        }
        Behaviour::GrpcStatus(code) if grpc => {
            return Ok(Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", code.to_string())
                .body(AnswerBody::whole(Bytes::new()))
                .expect("response"))
        }
        Behaviour::GrpcStatus(_) => 200,
        Behaviour::ResetMidAnswer => return Ok(cut(true)),
        Behaviour::StallMidAnswer => return Ok(cut(false)),
        Behaviour::Answer => 200,
        Behaviour::Status(code) => code,
        Behaviour::SlowMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            200
        }
        Behaviour::Stuck => {
            std::future::pending::<()>().await;
            200
        }
        // An error from the service makes hyper drop the connection unanswered.
        Behaviour::Reset => return Err(std::io::Error::other("reset on purpose")),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(AnswerBody::whole(text))
        .expect("response"))
}

fn record(shared: &Shared, recorded: Recorded) {
    if shared.keep {
        shared.received.lock().unwrap().push(recorded);
    }
    shared.received_total.fetch_add(1, Ordering::SeqCst);
    shared.new_request.notify_waiters();
}

/// A port on 127.0.0.1 with nothing listening (connections are refused).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
