//! `Host`: one instance of the module under a host that behaves like Envoy,
//! driven through the real callback sequence, with everything the module
//! asked for recorded for assertions.

use super::abi::{action, level};
use super::imports;
use super::request::RequestBuilder;
use super::response::Response;
use super::state::{DispatchedCall, Event, HostState, RawPair, RefusedCall, SharedDataHandle, Stream};
use super::wasm;
use std::collections::BTreeSet;
use std::fmt::Debug;
use wasmtime::{Instance, Linker, Store, WasmParams, WasmResults};

/// The root context's id, as Envoy numbers the first context of a plugin.
pub const ROOT_ID: u32 = 1;
/// The cluster tests mirror to unless they say otherwise.
pub const SHADOW: &str = "shadow";

/// How a `Host` starts: which clusters exist, the log level, the WASI seed.
pub struct HostBuilder {
    clusters: Vec<String>,
    log_level: u32,
    random_seed: u64,
    shared_data: Option<SharedDataHandle>,
    compare: bool,
}

impl HostBuilder {
    /// Loads the comparison module (`vrata_mirror_compare.wasm`) instead.
    pub fn compare_module(mut self) -> Self {
        self.compare = true;
        self
    }

    /// The clusters Envoy knows; a call to any other is BAD_ARGUMENT.
    pub fn clusters(mut self, names: &[&str]) -> Self {
        self.clusters = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// The level `proxy_get_log_level` answers (read when the root is created).
    pub fn log_level(mut self, level: u32) -> Self {
        self.log_level = level;
        self
    }

    /// The seed of WASI `random_get` (the module seeds its sampler from it).
    pub fn seed(mut self, seed: u64) -> Self {
        self.random_seed = seed;
        self
    }

    /// Shares another host's shared data: the two are worker VMs of one
    /// Envoy (see `Host::shared_data`).
    pub fn shared_data(mut self, shared: SharedDataHandle) -> Self {
        self.shared_data = Some(shared);
        self
    }

    /// Instantiated and started (`_initialize`, root context, `on_vm_start`),
    /// not yet configured.
    pub fn start(self) -> Host {
        Host::start(self)
    }

    /// Started and configured with `config`; panics if the module refuses it.
    pub fn load(self, config: &str) -> Host {
        let mut host = self.start();
        if !host.configure(config) {
            panic!(
                "the module refused the configuration {config}\nlogs:\n{}",
                host.log_tail(10)
            );
        }
        host
    }
}

pub struct Host {
    pub(super) store: Store<HostState>,
    pub(super) instance: Instance,
    next_context: u32,
    /// How many of the recorded calls `new_calls` has already returned.
    calls_seen: usize,
    answered: BTreeSet<u32>,
    /// Request callbacks that returned something other than Continue, as
    /// (context, callback, action): the primary must never be held up.
    not_continued: Vec<(u32, &'static str, i32)>,
}

impl Host {
    pub fn builder() -> HostBuilder {
        HostBuilder {
            clusters: vec![SHADOW.to_owned()],
            log_level: level::INFO,
            random_seed: 0x5eed,
            shared_data: None,
            compare: false,
        }
    }

    /// A host with the default clusters, configured with `config`.
    pub fn load(config: &str) -> Host {
        Host::builder().load(config)
    }

    fn start(builder: HostBuilder) -> Host {
        let (engine, default_module) = wasm::compiled();
        let module = if builder.compare {
            wasm::compiled_compare()
        } else {
            default_module
        };
        let mut state = HostState::new(builder.clusters, builder.log_level, builder.random_seed);
        if let Some(shared) = builder.shared_data {
            state.shared_data = shared;
        }
        let mut store = Store::new(engine, state);
        if let Err(err) = store.set_fuel(u64::MAX) {
            panic!("harness: fuel: {err:?}");
        }
        let mut linker = Linker::new(engine);
        if let Err(err) = imports::link(&mut linker, &mut store, module) {
            panic!("harness: linking the module's imports failed: {err:?}");
        }
        let instance = match linker.instantiate(&mut store, module) {
            Ok(instance) => instance,
            Err(err) => panic!("harness: instantiating the module failed: {err:?}"),
        };
        let mut host = Host {
            store,
            instance,
            next_context: ROOT_ID + 1,
            calls_seen: 0,
            answered: BTreeSet::new(),
            not_continued: Vec::new(),
        };
        host.call::<(), ()>("_initialize", 0, ());
        host.store.data_mut().live_contexts.push(ROOT_ID);
        host.call::<(i32, i32), ()>("proxy_on_context_create", ROOT_ID, (ROOT_ID as i32, 0));
        let started: i32 = host.call("proxy_on_vm_start", ROOT_ID, (ROOT_ID as i32, 0));
        assert_ne!(started, 0, "proxy_on_vm_start returned false");
        host
    }

    /// Runs `proxy_on_configure` with `config` as the plugin configuration;
    /// returns what the module answered. Can be called again (reconfiguration).
    pub fn configure(&mut self, config: &str) -> bool {
        self.configure_bytes(config.as_bytes())
    }

    pub fn configure_bytes(&mut self, config: &[u8]) -> bool {
        self.store.data_mut().plugin_config = config.to_vec();
        let size = config.len() as i32;
        let accepted: i32 = self.call("proxy_on_configure", ROOT_ID, (ROOT_ID as i32, size));
        // Envoy only offers the configuration during on_configure.
        self.store.data_mut().plugin_config.clear();
        accepted != 0
    }

    /// This host's shared data, to build another VM of the same Envoy
    /// (`HostBuilder::shared_data`) or to look inside.
    pub fn shared_data(&self) -> SharedDataHandle {
        self.store.data().shared_data.clone()
    }

    /// Calls an export of the module as the host would, in `context`. A trap
    /// fails the test, with the trap and the module's last log lines.
    pub(super) fn call<P, R>(&mut self, export: &str, context: u32, params: P) -> R
    where
        P: WasmParams + Debug,
        R: WasmResults,
    {
        let func = match self.instance.get_typed_func::<P, R>(&mut self.store, export) {
            Ok(func) => func,
            Err(err) => panic!("harness: the module has no usable export {export}: {err:?}"),
        };
        let shown = format!("{params:?}");
        self.store.data_mut().count_vm_entry(export);
        self.store.data_mut().active_context = context;
        let result = func.call(&mut self.store, params);
        self.store.data_mut().active_context = 0;
        match result {
            Ok(value) => value,
            Err(trap) => panic!(
                "the module trapped in {export}{shown}: {trap:?}\nits last log lines:\n{}",
                self.log_tail(10)
            ),
        }
    }

    fn has_export(&mut self, export: &str) -> bool {
        self.instance.get_func(&mut self.store, export).is_some()
    }

    // ----- requests -------------------------------------------------------

    /// Starts describing a request; `send()` drives it through the module.
    pub fn request(&mut self) -> RequestBuilder<'_> {
        RequestBuilder::new(self)
    }

    /// Creates an HTTP context with the given stream properties.
    pub(super) fn open_stream(&mut self, properties: Vec<(Vec<u8>, Vec<u8>)>) -> u32 {
        let id = self.next_context;
        self.next_context += 1;
        let state = self.store.data_mut();
        state.live_contexts.push(id);
        state.streams.insert(
            id,
            Stream {
                properties: properties.into_iter().collect(),
                ..Stream::default()
            },
        );
        self.call::<(i32, i32), ()>("proxy_on_context_create", id, (id as i32, ROOT_ID as i32));
        id
    }

    fn stream_mut(&mut self, id: u32) -> &mut Stream {
        match self.store.data_mut().streams.get_mut(&id) {
            Some(stream) => stream,
            None => panic!("harness: HTTP context {id} is not open"),
        }
    }

    pub(super) fn request_headers(&mut self, id: u32, headers: Vec<RawPair>, end_of_stream: bool) -> i32 {
        let count = headers.len() as i32;
        self.stream_mut(id).headers = headers;
        let action = self.call(
            "proxy_on_request_headers",
            id,
            (id as i32, count, i32::from(end_of_stream)),
        );
        self.note_action(id, "proxy_on_request_headers", action)
    }

    fn note_action(&mut self, id: u32, callback: &'static str, action: i32) -> i32 {
        if action != action::CONTINUE {
            self.not_continued.push((id, callback, action));
        }
        action
    }

    /// No request callback of this host ever returned anything but Continue.
    pub fn assert_never_paused(&self) {
        if let Some((id, callback, action)) = self.not_continued.first() {
            panic!(
                "every request callback must return Continue (0): {} did not, the first {callback} of context {id} \
                 returning {action}",
                self.not_continued.len()
            );
        }
    }

    /// Delivers one body chunk: during the callback the request body buffer
    /// holds exactly this chunk, as in Envoy when the filter never pauses.
    pub fn request_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> i32 {
        self.stream_mut(id).body_chunk = Some(chunk.to_vec());
        let action = self.call(
            "proxy_on_request_body",
            id,
            (id as i32, chunk.len() as i32, i32::from(end_of_stream)),
        );
        self.stream_mut(id).body_chunk = None;
        self.note_action(id, "proxy_on_request_body", action)
    }

    /// Delivers request trailers (which end the request).
    pub fn request_trailers(&mut self, id: u32, trailers: &[(&str, &str)]) -> i32 {
        let raw = trailers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        self.raw_request_trailers(id, raw)
    }

    pub(super) fn raw_request_trailers(&mut self, id: u32, trailers: Vec<RawPair>) -> i32 {
        let count = trailers.len() as i32;
        self.stream_mut(id).trailers = Some(trailers);
        let action = self.call("proxy_on_request_trailers", id, (id as i32, count));
        self.note_action(id, "proxy_on_request_trailers", action)
    }

    /// Delivers the primary's response headers, if the module exports the
    /// callback (Envoy skips a callback the module does not export).
    pub fn response_headers(&mut self, id: u32, headers: &[(&str, &str)], end_of_stream: bool) -> i32 {
        let raw: Vec<RawPair> = headers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let count = raw.len() as i32;
        self.stream_mut(id).response_headers = Some(raw);
        if !self.has_export("proxy_on_response_headers") {
            return action::CONTINUE;
        }
        let action = self.call(
            "proxy_on_response_headers",
            id,
            (id as i32, count, i32::from(end_of_stream)),
        );
        self.note_action(id, "proxy_on_response_headers", action)
    }

    /// Delivers one chunk of the primary's response body.
    pub fn response_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> i32 {
        if !self.has_export("proxy_on_response_body") {
            return action::CONTINUE;
        }
        self.stream_mut(id).response_body_chunk = Some(chunk.to_vec());
        let action = self.call(
            "proxy_on_response_body",
            id,
            (id as i32, chunk.len() as i32, i32::from(end_of_stream)),
        );
        self.stream_mut(id).response_body_chunk = None;
        self.note_action(id, "proxy_on_response_body", action)
    }

    /// Delivers the primary's response trailers (which end the response).
    pub fn response_trailers(&mut self, id: u32, trailers: &[(&str, &str)]) -> i32 {
        let raw: Vec<RawPair> = trailers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let count = raw.len() as i32;
        self.stream_mut(id).response_trailers = Some(raw);
        if !self.has_export("proxy_on_response_trailers") {
            return action::CONTINUE;
        }
        let action = self.call("proxy_on_response_trailers", id, (id as i32, count));
        self.note_action(id, "proxy_on_response_trailers", action)
    }

    /// A whole primary response: headers, one body chunk (if any), end of stream.
    pub fn primary_responds(&mut self, id: u32, status: u16, body: &[u8]) {
        let status = status.to_string();
        let length = body.len().to_string();
        self.response_headers(
            id,
            &[(":status", &status), ("content-length", &length)],
            body.is_empty(),
        );
        if !body.is_empty() {
            self.response_body(id, body, true);
        }
    }

    /// The stream ends: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`,
    /// each only if exported (as Envoy does: a module that does not export
    /// `proxy_on_done` is done at once). Returns what `proxy_on_done` answered.
    pub fn end_stream(&mut self, id: u32) -> bool {
        let done: i32 = if self.has_export("proxy_on_done") {
            self.call("proxy_on_done", id, (id as i32,))
        } else {
            1
        };
        if self.has_export("proxy_on_log") {
            self.call::<(i32,), ()>("proxy_on_log", id, (id as i32,));
        }
        self.delete_context(id);
        done != 0
    }

    /// `proxy_on_delete` alone, as when a VM tears a context down without `on_done`.
    pub fn delete_context(&mut self, id: u32) {
        self.call::<(i32,), ()>("proxy_on_delete", id, (id as i32,));
        let state = self.store.data_mut();
        state.live_contexts.retain(|c| *c != id);
        state.streams.remove(&id);
    }

    // ----- the event loop -------------------------------------------------

    /// One event-loop turn: delivers the queue wake-ups posted so far, then
    /// the root's tick if it is armed. Returns how many callbacks ran.
    pub fn turn(&mut self) -> usize {
        let events: Vec<Event> = self.store.data_mut().events.drain(..).collect();
        let mut delivered = 0;
        for event in events {
            match event {
                Event::QueueReady { owner, queue_id } => {
                    if self.store.data().live_contexts.contains(&owner) {
                        self.call::<(i32, i32), ()>("proxy_on_queue_ready", owner, (owner as i32, queue_id as i32));
                        delivered += 1;
                    }
                }
            }
        }
        if self.store.data().tick_period_ms > 0 {
            self.call::<(i32,), ()>("proxy_on_tick", ROOT_ID, (ROOT_ID as i32,));
            delivered += 1;
        }
        delivered
    }

    /// Turns until nothing is pending; a module that keeps scheduling work
    /// forever fails the test.
    pub fn run_pending(&mut self) {
        for _ in 0..100 {
            if self.turn() == 0 {
                return;
            }
        }
        panic!("the module kept scheduling work for 100 event-loop turns");
    }

    /// Queue wake-ups posted and not yet delivered.
    pub fn pending_events(&self) -> usize {
        self.store.data().events.len()
    }

    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    // ----- mirror calls ---------------------------------------------------

    /// Every call dispatched so far, in order.
    pub fn calls(&self) -> &[DispatchedCall] {
        &self.store.data().records.calls
    }

    /// Calls dispatched since the last `new_calls` (or `single_dispatched_call`).
    pub fn new_calls(&mut self) -> Vec<DispatchedCall> {
        let calls = self.calls().get(self.calls_seen..).unwrap_or_default().to_vec();
        self.calls_seen += calls.len();
        calls
    }

    /// The one call dispatched since the last look; fails unless exactly one.
    pub fn single_dispatched_call(&mut self) -> DispatchedCall {
        let mut calls = self.new_calls();
        match calls.len() {
            1 => calls.remove(0),
            n => panic!(
                "expected exactly one new dispatched call, got {n}: {calls:#?}\nrefused: {:#?}",
                self.refused_calls()
            ),
        }
    }

    pub fn refused_calls(&self) -> &[RefusedCall] {
        &self.store.data().records.refused_calls
    }

    /// Tokens of calls dispatched and not yet answered.
    pub fn outstanding(&self) -> Vec<u32> {
        self.calls()
            .iter()
            .map(|c| c.token)
            .filter(|t| !self.answered.contains(t))
            .collect()
    }

    /// Delivers the end of a call: `proxy_on_http_call_response` on the root,
    /// with the response's headers, body and trailers readable meanwhile.
    pub fn respond(&mut self, token: u32, response: impl Into<Response>) {
        let response = response.into();
        if !self.calls().iter().any(|c| c.token == token) {
            panic!("harness: no call was dispatched with token {token}");
        }
        if !self.answered.insert(token) {
            panic!("harness: call {token} was already answered (Envoy delivers each call's end once)");
        }
        let (headers, body, trailers) = (response.headers.len(), response.body.len(), response.trailers.len());
        self.store.data_mut().call_response = Some(response);
        self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            ROOT_ID,
            (
                ROOT_ID as i32,
                token as i32,
                headers as i32,
                body as i32,
                trailers as i32,
            ),
        );
        self.store.data_mut().call_response = None;
    }

    /// Answers every outstanding call the same way.
    pub fn respond_all(&mut self, response: impl Into<Response>) {
        let response = response.into();
        for token in self.outstanding() {
            self.respond(token, response.clone());
        }
    }
}
