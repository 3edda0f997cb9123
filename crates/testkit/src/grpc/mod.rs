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
//!
//! One file a job: the codec both sides share (codec.rs), the tonic server
//! (server.rs), the client (client.rs), the grpc-core server (grpcio.rs),
//! and Envoy's configuration and metrics for the gRPC route (config.rs).
//! Everything is re-exported here: tests name `testkit::grpc::…`.

mod client;
mod codec;
mod config;
mod grpcio;
mod server;

pub use client::{GrpcClient, Outcome, Rpc};
pub use codec::RawCodec;
pub use config::{
    mirrored, response_classes, responses, skipped, start_envoy_for_grpc, start_envoy_for_grpc_on,
    start_envoy_for_grpc_with, timed_responses,
};
pub use grpcio::{grpcio_python, GrpcioCall, GrpcioServer};
pub use server::{always_ok, replies, Answer, Call, GrpcServer, Policy};

pub const UNARY: &str = "/test.Echo/Unary";
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";

/// The Envoy route the gRPC service is on, and the shadow cluster's name:
/// the labels of the mirror metrics in these tests.
pub const ROUTE: &str = "grpc";
pub const SHADOW: &str = "shadow";
