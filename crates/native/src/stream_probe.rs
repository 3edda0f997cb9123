//! TEMPORARY: a hard-coded streamed copy, to prove the streaming path end to end before the
//! worker core (issue 20) exists. It is NOT the mirror: no sampling, no header rules, no
//! rate cap, no back-off, no maxInFlight, no answer classes. It acts only when Envoy runs
//! with `VRATA_NATIVE_STREAM_PROBE` set, and then copies every request to the first mirror
//! destination of its route's policy: the request's headers as they are, each body chunk as
//! it passes, the trailers; the answer is read chunk by chunk and dropped. Each finished copy
//! counts `requests_total{route,destination}` through the config (the request is gone by
//! then). Delete this file when the host sits on the worker core.

use crate::abi::{attribute_id, body_type, header_type};
use crate::host::{ConfigHandle, Hook};
use std::collections::HashMap;
use std::sync::OnceLock;
use vrata_mirror_core::config::PluginConfig;

/// The environment variable that turns the probe on.
pub const PROBE_ENV: &str = "VRATA_NATIVE_STREAM_PROBE";

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(PROBE_ENV).is_some())
}

/// A copy in flight, as the config's stream hooks need it.
#[derive(Debug)]
pub struct InFlight {
    route: Vec<u8>,
    destination: String,
    status: Option<Vec<u8>>,
    /// The answer's header names (for the debug line: how Envoy's own local replies look).
    header_names: Vec<u8>,
    answer_bytes: usize,
}

/// The owner worker's copies in flight, by stream id.
#[derive(Debug, Default)]
pub struct Probe {
    streams: HashMap<u64, InFlight>,
}

impl Probe {
    pub fn in_flight(&self) -> usize {
        self.streams.len()
    }
}

/// The request's side of a copy: which stream to feed.
#[derive(Debug, Clone, Copy)]
pub struct Copy {
    stream: u64,
    ended: bool,
}

/// Request headers: start the copy (its headers leave now).
pub fn start(
    hook: &Hook<'_>,
    config: &ConfigHandle,
    plugin: &PluginConfig,
    probe: &mut Probe,
    end_of_stream: bool,
) -> Option<Copy> {
    if !enabled() {
        return None;
    }
    let route = hook.attribute_string(attribute_id::XDS_ROUTE_NAME).unwrap_or_default();
    let policy = plugin.policy_for(std::str::from_utf8(route).ok());
    let mirror = policy.mirrors.first()?;
    let headers = hook.headers(header_type::REQUEST_HEADER);
    match config.start_stream(
        &mirror.destination,
        &headers,
        &[],
        end_of_stream,
        u64::from(mirror.timeout_ms),
    ) {
        Ok(stream) => {
            probe.streams.insert(
                stream,
                InFlight {
                    route: route.to_vec(),
                    destination: mirror.destination.clone(),
                    status: None,
                    header_names: Vec::new(),
                    answer_bytes: 0,
                },
            );
            Some(Copy {
                stream,
                ended: end_of_stream,
            })
        }
        Err(refused) => {
            crate::host::log(
                crate::abi::log_level::WARN,
                &format!("vrata-mirror: stream probe: start refused ({})", refused.0),
            );
            None
        }
    }
}

/// A request body chunk: send it on as it passes.
pub fn body(hook: &Hook<'_>, config: &ConfigHandle, copy: &mut Copy, end_of_stream: bool) {
    if copy.ended {
        return;
    }
    let chunks = hook.body_chunks(body_type::RECEIVED_REQUEST_BODY);
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        config.send_data(copy.stream, chunk, end_of_stream && i == last);
    }
    if end_of_stream && chunks.is_empty() {
        config.send_data(copy.stream, &[], true);
    }
    copy.ended = end_of_stream;
}

/// Request trailers: send them, which ends the copy.
pub fn trailers(hook: &Hook<'_>, config: &ConfigHandle, copy: &mut Copy) {
    if copy.ended {
        return;
    }
    let trailers = hook.headers(header_type::REQUEST_TRAILER);
    config.send_trailers(copy.stream, &trailers);
    copy.ended = true;
}

/// The answer's headers.
pub fn answer_headers(probe: &mut Probe, stream: u64, headers: &[(&[u8], &[u8])]) {
    if let Some(copy) = probe.streams.get_mut(&stream) {
        copy.status = headers.iter().find(|(k, _)| *k == b":status").map(|(_, v)| v.to_vec());
        copy.header_names = headers.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(&b' ');
    }
}

/// An answer chunk: counted, then dropped (Envoy keeps nothing either).
pub fn answer_data(probe: &mut Probe, stream: u64, bytes: usize) {
    if let Some(copy) = probe.streams.get_mut(&stream) {
        copy.answer_bytes = copy.answer_bytes.saturating_add(bytes);
    }
}

/// The copy's end (complete or reset): count it.
pub fn finish(probe: &mut Probe, config: &ConfigHandle, requests_counter: Option<usize>, stream: u64, how: &str) {
    let Some(copy) = probe.streams.remove(&stream) else {
        return;
    };
    if let Some(id) = requests_counter {
        config.increment_counter(id, &[&copy.route, copy.destination.as_bytes()], 1);
    }
    if crate::host::log_enabled(crate::abi::log_level::DEBUG) {
        let status = copy.status.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        crate::host::log(
            crate::abi::log_level::DEBUG,
            &format!(
                "vrata-mirror: stream probe: copy {stream} {how}, status {status}, {} answer bytes dropped, headers [{}]",
                copy.answer_bytes,
                String::from_utf8_lossy(&copy.header_names)
            ),
        );
    }
}
