//! Envoy's memory over the run, sampled every 5 s.

use crate::admin::stat;
use std::time::Duration;
use vrata_mirror_testkit::envoy::Envoy;

/// Envoy's memory every 5 s: RSS, anonymous RSS (`/proc`), and the heap
/// in use (`server.memory_allocated`, from the allocator).
#[derive(Default)]
pub struct Memory {
    pub rss: Vec<(Duration, u64)>,
    pub anon: Vec<(Duration, u64)>,
    pub heap: Vec<(Duration, u64)>,
}

impl Memory {
    pub async fn sample(&mut self, t: Duration, envoy: &Envoy) {
        self.rss.push((t, envoy.rss_bytes()));
        self.anon.push((t, envoy.rss_anon_bytes()));
        self.heap.push((t, stat(envoy.admin, "server.memory_allocated").await));
    }
}
