//! A shadow for streamed copies (the native host): it reads each request's body frame by
//! frame as it arrives and keeps only a hash and a length of it (a 64 MiB copy is checked
//! byte-equal without holding it), notes when the head arrived and when the body ended, keeps
//! the trailers, and answers small, late, or with a large body it streams without holding.
//! HTTP/1.1 and h2c (prior knowledge), like [`crate::upstream::Upstream`].

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// FNV-1a, 64 bits, over a body fed in pieces: the same for any split of the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyHash {
    pub len: u64,
    pub hash: u64,
}

impl Default for BodyHash {
    fn default() -> Self {
        BodyHash {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl BodyHash {
    pub fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.len += bytes.len() as u64;
    }

    pub fn of<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> BodyHash {
        let mut hash = BodyHash::default();
        for piece in pieces {
            hash.update(piece);
        }
        hash
    }
}

/// One request as the shadow saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// When its head arrived.
    pub head_at: Instant,
    pub body: BodyHash,
    pub trailers: Vec<(String, Vec<u8>)>,
    /// When its body ended whole; `None`: not (yet), or the stream broke.
    pub ended_at: Option<Instant>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// How the shadow answers, once a request's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200, a short body.
    Small,
    /// 200 after this many milliseconds.
    After(u64),
    /// 200 with this many bytes of body, streamed in 64 KiB frames.
    Large(usize),
    /// Takes the head, then never reads the body nor answers: Envoy must hold (or drop)
    /// whatever is sent to it.
    Stall,
}

/// A running shadow on 127.0.0.1. Dropping it stops accepting.
pub struct StreamShadow {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: JoinHandle<()>,
}

impl StreamShadow {
    pub async fn start(answer: Answer) -> StreamShadow {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the stream shadow");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn(accept_loop(listener, seen.clone(), answer));
        StreamShadow { addr, seen, accept }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request seen so far, in the order their heads arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose head arrived.
    pub fn heads(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Requests whose body ended whole.
    pub fn whole(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.ended_at.is_some())
            .count()
    }

    /// Waits until `check` holds of what was seen (or `timeout` passed); what was seen.
    pub async fn wait(&self, timeout: Duration, check: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.seen();
            if check(&seen) || Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for StreamShadow {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, seen: Arc<Mutex<Vec<Seen>>>, answer: Answer) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(seen.clone(), answer, req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
    req: Request<Incoming>,
) -> Result<Response<Filler>, std::io::Error> {
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen {
            method: req.method().to_string(),
            uri: req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            head_at: Instant::now(),
            body: BodyHash::default(),
            trailers: Vec::new(),
            ended_at: None,
        });
        seen.len() - 1
    };
    if matches!(answer, Answer::Stall) {
        std::future::pending::<()>().await;
    }
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        let mut seen = seen.lock().unwrap();
        let entry = &mut seen[index];
        if let Some(data) = frame.data_ref() {
            entry.body.update(data);
        } else if let Some(trailers) = frame.trailers_ref() {
            entry.trailers = trailers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
        }
    }
    seen.lock().unwrap()[index].ended_at = Some(Instant::now());
    let left = match answer {
        Answer::Small => 0,
        Answer::After(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            0
        }
        Answer::Large(n) => n,
        Answer::Stall => 0,
    };
    let small = if left == 0 {
        Some(Bytes::from_static(b"stream shadow\n"))
    } else {
        None
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(Filler { left, small })
        .expect("response"))
}

/// 64 KiB of filler, shared by every frame of every large answer.
static FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A body of `left` filler bytes (or `small`), streamed without being held.
pub struct Filler {
    left: usize,
    small: Option<Bytes>,
}

impl Body for Filler {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(small) = this.small.take() {
            return Poll::Ready(Some(Ok(Frame::data(small))));
        }
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let n = this.left.min(FILL.len());
        this.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0 && self.small.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.left + self.small.as_ref().map_or(0, Bytes::len)) as u64)
    }
}
