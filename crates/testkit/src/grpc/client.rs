//! The tonic test client: one h2c connection, any of the three methods,
//! metadata and a deadline per call.

use super::codec::RawCodec;
use super::server::replies;
use super::{CLIENT_STREAM, UNARY};
use bytes::Bytes;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

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
    /// What a client gets from a healthy server named `server` for `rpc`:
    /// status OK and that server's [`replies`].
    pub fn healthy(server: &str, rpc: &Rpc) -> Outcome {
        Outcome::ok(replies(server, rpc.path, &rpc.messages))
    }

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
