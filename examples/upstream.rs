//! A small upstream for `make run`: the primary answers, the shadow also
//! prints every request it receives (method, path, headers, body size).
//!
//!     cargo run --example upstream -- <name> <port> [--log]
//!
//! It is the same server the end-to-end tests use.

// Test tooling, not filter code: unwrap and panics are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, port) = match (args.first(), args.get(1).and_then(|p| p.parse::<u16>().ok())) {
        (Some(name), Some(port)) => (name.clone(), port),
        _ => {
            eprintln!("usage: upstream <name> <port> [--log]");
            std::process::exit(2);
        }
    };
    let log = args.iter().any(|a| a == "--log");
    let server = Upstream::start_on(&name, Behaviour::Answer, port, log).await;
    println!("{name} listening on http://{}", server.addr);
    std::future::pending::<()>().await;
}
