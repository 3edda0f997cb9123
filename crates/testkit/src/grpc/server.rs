//! The tonic (h2) test server: a hand-written `test.Echo` service that
//! records every call and answers as its [`Policy`] says.

use super::codec::RawCodec;
use super::{CLIENT_STREAM, SERVER_STREAM, UNARY};
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::codec::Streaming;
use tonic::server::{ClientStreamingService, ServerStreamingService, StreamingService, UnaryService};
use tonic::{Code, Request, Response, Status};

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
