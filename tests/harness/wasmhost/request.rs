//! A request as Envoy drives it through an HTTP filter: context creation,
//! headers, body chunks, trailers, then done/log/delete, with the
//! end-of-stream flag on whichever callback ends the request.

use super::host::Host;
use super::state::RawPair;

enum Body {
    Chunks(Vec<Vec<u8>>),
    /// `total` bytes of a fixed pattern in chunks of `chunk` bytes, cut one
    /// chunk at a time from `tape` (one chunk plus one period of the
    /// pattern), so a 50 MiB upload costs the test no 50 MiB.
    Generated {
        total: usize,
        chunk: usize,
        tape: Vec<u8>,
    },
}

impl Body {
    fn chunk_count(&self) -> usize {
        match self {
            Body::Chunks(chunks) => chunks.len(),
            Body::Generated { total, chunk, .. } => total.div_ceil(*chunk),
        }
    }

    fn chunk(&self, index: usize) -> Vec<u8> {
        match self {
            Body::Chunks(chunks) => chunks.get(index).cloned().unwrap_or_default(),
            Body::Generated { total, chunk, tape } => {
                let start = index * chunk;
                let len = (start + chunk).min(*total).saturating_sub(start);
                let from = start % PATTERN_PERIOD;
                tape.get(from..from + len).unwrap_or_default().to_vec()
            }
        }
    }
}

/// The period of generated bodies: a prime, so chunk boundaries never line
/// up with it and a misplaced chunk shows.
const PATTERN_PERIOD: usize = 251;

/// The byte at `offset` of a generated body.
pub fn pattern_byte(offset: usize) -> u8 {
    (offset % PATTERN_PERIOD) as u8
}

enum Ending {
    /// The request completes; then done, log, delete.
    Complete,
    /// The client goes away after this many body chunks: no end of stream,
    /// then done, log, delete.
    AbortAfterChunks(usize),
    /// The request completes but the context stays open (the response is
    /// still streaming); the test ends it with `Host::end_stream`.
    KeepOpen,
}

/// What the module answered while the request went through.
#[derive(Debug, Clone)]
pub struct Sent {
    pub context_id: u32,
    /// (callback, returned action) in call order.
    pub actions: Vec<(&'static str, i32)>,
    /// What `proxy_on_done` returned, if the stream ended.
    pub done: Option<bool>,
}

impl Sent {
    /// Callbacks that returned something other than Continue (0).
    pub fn not_continued(&self) -> Vec<(&'static str, i32)> {
        self.actions
            .iter()
            .copied()
            .filter(|(_, action)| *action != 0)
            .collect()
    }

    /// The primary request is never paused: every callback returned Continue.
    pub fn assert_never_paused(&self) {
        assert!(!self.actions.is_empty(), "no callback ran");
        let stopped = self.not_continued();
        if let Some((callback, action)) = stopped.first() {
            panic!(
                "every callback must return Continue (0): {} of {} did not, the first {callback} returning {action}",
                stopped.len(),
                self.actions.len()
            );
        }
    }
}

pub struct RequestBuilder<'h> {
    host: &'h mut Host,
    headers: Vec<RawPair>,
    body: Body,
    trailers: Option<Vec<RawPair>>,
    properties: Vec<(Vec<u8>, Vec<u8>)>,
    ending: Ending,
}

impl<'h> RequestBuilder<'h> {
    pub(super) fn new(host: &'h mut Host) -> Self {
        RequestBuilder {
            host,
            headers: Vec::new(),
            body: Body::Chunks(Vec::new()),
            trailers: None,
            properties: Vec::new(),
            ending: Ending::Complete,
        }
    }

    /// Appends headers (names as Envoy hands them to filters: lower case).
    pub fn headers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.headers.extend(
            pairs
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        self
    }

    /// Appends one header with a value given as raw bytes (e.g. not UTF-8).
    pub fn raw_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.as_bytes().to_vec(), value.to_vec()));
        self
    }

    /// A typical request line: method, scheme, authority `api.example.com`, path.
    pub fn method(self, method: &str, path: &str) -> Self {
        self.headers(&[
            (":method", method),
            (":scheme", "https"),
            (":authority", "api.example.com"),
            (":path", path),
            ("user-agent", "harness/1"),
            ("accept", "*/*"),
        ])
    }

    pub fn get(self, path: &str) -> Self {
        self.method("GET", path)
    }

    pub fn post(self, path: &str) -> Self {
        self.method("POST", path)
    }

    /// The route Envoy matched: the `xds.route_name` stream property.
    pub fn route(mut self, name: &str) -> Self {
        self.properties
            .push((b"xds\0route_name".to_vec(), name.as_bytes().to_vec()));
        self
    }

    /// The body, as the chunks Envoy delivers (an empty last chunk is how a
    /// chunked upload often ends).
    pub fn body_chunks(mut self, chunks: &[&[u8]]) -> Self {
        self.body = Body::Chunks(chunks.iter().map(|c| c.to_vec()).collect());
        self
    }

    pub fn body(self, bytes: &[u8]) -> Self {
        self.body_chunks(&[bytes])
    }

    /// A generated body of `total` bytes in chunks of `chunk` (see `pattern_byte`).
    pub fn generated_body(mut self, total: usize, chunk: usize) -> Self {
        assert!(chunk > 0);
        let tape = (0..chunk + PATTERN_PERIOD).map(pattern_byte).collect();
        self.body = Body::Generated { total, chunk, tape };
        self
    }

    /// The request ends with trailers (HTTP/2): no end-of-stream body chunk.
    pub fn trailers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.trailers = Some(
            pairs
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        );
        self
    }

    /// The client disappears after `chunks` body chunks.
    pub fn abort_after_chunks(mut self, chunks: usize) -> Self {
        self.ending = Ending::AbortAfterChunks(chunks);
        self
    }

    /// Leaves the HTTP context open after the request ends.
    pub fn keep_open(mut self) -> Self {
        self.ending = Ending::KeepOpen;
        self
    }

    /// Sends only the headers (no end of stream) and leaves the context
    /// open: the test goes on with `Host::request_body`,
    /// `Host::request_trailers` and `Host::end_stream`.
    pub fn start(self) -> Sent {
        let RequestBuilder {
            host,
            headers,
            properties,
            ..
        } = self;
        let id = host.open_stream(properties);
        let action = host.request_headers(id, headers, false);
        Sent {
            context_id: id,
            actions: vec![("proxy_on_request_headers", action)],
            done: None,
        }
    }

    /// Drives the request through the module.
    pub fn send(self) -> Sent {
        let RequestBuilder {
            host,
            headers,
            body,
            trailers,
            properties,
            ending,
        } = self;
        let id = host.open_stream(properties);
        let mut actions = Vec::new();
        let aborted_at = match ending {
            Ending::AbortAfterChunks(n) => Some(n.min(body.chunk_count())),
            _ => None,
        };
        let chunks = aborted_at.unwrap_or(body.chunk_count());
        let trailers = if aborted_at.is_some() { None } else { trailers };
        let ends_with_body = aborted_at.is_none() && trailers.is_none();

        let headers_end = ends_with_body && chunks == 0;
        actions.push((
            "proxy_on_request_headers",
            host.request_headers(id, headers, headers_end),
        ));
        for index in 0..chunks {
            let end = ends_with_body && index + 1 == chunks;
            let chunk = body.chunk(index);
            actions.push(("proxy_on_request_body", host.request_body(id, &chunk, end)));
        }
        if let Some(trailers) = trailers {
            actions.push(("proxy_on_request_trailers", host.raw_request_trailers(id, trailers)));
        }
        let done = match ending {
            Ending::KeepOpen => None,
            Ending::Complete | Ending::AbortAfterChunks(_) => Some(host.end_stream(id)),
        };
        Sent {
            context_id: id,
            actions,
            done,
        }
    }
}
