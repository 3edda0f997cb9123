//! Shared by the end-to-end tests: the real Envoy, upstreams, clients.
#![allow(dead_code)]

pub mod client;
pub mod config;
pub mod envoy;
pub mod grpc;
pub mod rig;
pub mod upstream;
