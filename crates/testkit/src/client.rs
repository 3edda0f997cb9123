//! Clients that talk to Envoy's listener the ways real clients do: HTTP/1.1
//! (fixed-length and slow chunked uploads), h2c with and without trailers,
//! a raw WebSocket upgrade, and concurrent load.

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the client got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn http1_client<B>() -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

fn h2c_client<B>() -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

fn build<B>(method: &str, url: &str, headers: &[(&str, &str)], body: B) -> Request<B> {
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).expect("request")
}

async fn read_reply(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes()
        .to_vec();
    Reply { status, body }
}

/// One HTTP/1.1 request with a fixed-length body.
pub async fn http1(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let client = http1_client::<Full<Bytes>>();
    let response = client
        .request(build(method, url, headers, Full::new(body.into())))
        .await
        .expect("HTTP/1.1 request");
    read_reply(response).await
}

/// One h2c (HTTP/2 without TLS, prior knowledge) request, optionally ending
/// with trailers instead of an end-of-stream data frame.
pub async fn h2c(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    chunks: Vec<Bytes>,
    trailers: Option<&[(&str, &str)]>,
) -> Reply {
    let (mut sender, body) = Channel::<Bytes, Infallible>::new(4);
    let trailer_map = trailers.map(|list| {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    });
    tokio::spawn(async move {
        for chunk in chunks {
            if sender.send_data(chunk).await.is_err() {
                return;
            }
        }
        if let Some(map) = trailer_map {
            let _ = sender.send_trailers(map).await;
        }
    });
    let client = h2c_client::<Channel<Bytes, Infallible>>();
    let response = client
        .request(build(method, url, headers, body))
        .await
        .expect("h2c request");
    read_reply(response).await
}

/// An HTTP/1.1 upload with no content-length (chunked), sent in pieces with
/// a pause between them, as a slow client would.
pub async fn http1_slow_chunked(url: &str, pieces: Vec<Bytes>, pause: Duration) -> Reply {
    let (mut sender, body) = Channel::<Bytes, Infallible>::new(1);
    tokio::spawn(async move {
        for piece in pieces {
            if sender.send(Frame::data(piece)).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    });
    let client = http1_client::<Channel<Bytes, Infallible>>();
    let response = client
        .request(build("POST", url, &[], body))
        .await
        .expect("chunked upload");
    read_reply(response).await
}

/// `total` requests at `concurrency`, over pooled HTTP/1.1 connections.
/// Returns every reply (statuses and bodies) in completion order.
pub async fn load(url: &str, total: usize, concurrency: usize, method: &str, body: Bytes) -> Vec<Reply> {
    let client = Arc::new(http1_client::<Full<Bytes>>());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url, method, body) = (
            client.clone(),
            next.clone(),
            url.to_owned(),
            method.to_owned(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut replies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let response = client.request(build(&method, &url, &[], Full::new(body.clone()))).await;
                match response {
                    Ok(response) => replies.push(read_reply(response).await),
                    Err(err) => replies.push(Reply {
                        status: 0,
                        body: err.to_string().into_bytes(),
                    }),
                }
            }
            replies
        }));
    }
    let mut all = Vec::with_capacity(total);
    for worker in workers {
        all.extend(worker.await.expect("load worker"));
    }
    all
}

/// A WebSocket upgrade over a raw connection: returns the status line and
/// whether bytes sent after the handshake came back (the test upstream echoes).
pub async fn websocket_echo(addr: std::net::SocketAddr, path: &str, payload: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let handshake = format!(
        "GET {path} HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("handshake reply in time")
            .expect("read");
        if n == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    stream.write_all(payload).await.expect("payload");
    let mut echoed = vec![0u8; payload.len()];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed)).await;
    (status_line, echoed)
}
