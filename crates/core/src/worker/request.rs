//! One request on a worker: the decision at its headers, its body copied as
//! it streams past, its copies handed over at its end (or, on a host that
//! streams, opened at its headers and fed each chunk as it passes), and the
//! primary's answer watched when a copy compares.

use super::calls::{InFlight, StreamBytes};
use super::compare::{CopyCompare, Watch};
use super::copy::MirrorCopy;
use super::host::{Host, Opening, Refused};
use super::Worker;
use crate::config::MirrorPolicy;
use crate::dispatch::outcome::{AnswerHead, CallEnd};
use crate::http::HeaderList;
use crate::mirror::body::{BodyCopy, TooLarge};
use crate::mirror::decide::{self, decide, Admitted, Plan, RequestView, Skipped};
use crate::mirror::request::{shape_headers, RequestHead};
use crate::telemetry::catalogue::Event;
use crate::telemetry::series::report;
use crate::telemetry::SkipReason;
use std::rc::Rc;

/// One request's copies. Made by [`Worker::request_headers`]; its host
/// hands it back with each later callback, and to
/// [`Worker::request_gone`] when the request is gone. `T` is the host's
/// token (a streamed copy's).
pub struct MirroredRequest<I, T> {
    copying: Copying<I, T>,
    /// The primary's answer, when a copy compares.
    watch: Watch,
}

/// Its copies while the request's body passes. One field, not two: the
/// wasm filter moves this struct by value, and its size shows in the
/// instruction count of every request (measured: +120 for a Vec more).
enum Copying<I, T> {
    None,
    /// Buffered copies, while the body is being copied.
    Buffered(Capture<I>),
    /// Streamed copies open and not yet ended by their request: each chunk
    /// goes to them. Their state is the worker's, in its calls.
    Streamed(Vec<T>),
}

struct Capture<I> {
    head: RequestHead,
    body: BodyCopy,
    copies: Vec<MirrorCopy<I>>,
}

impl<I, T> Default for MirroredRequest<I, T> {
    fn default() -> Self {
        MirroredRequest {
            copying: Copying::None,
            watch: Watch::default(),
        }
    }
}

impl<I, T> MirroredRequest<I, T> {
    /// Whether its body is still being copied (buffered or streamed).
    /// Whether the host must still report the request's body and trailers to the worker:
    /// while a copy is being made, and until a compared request's end is stamped (a streamed
    /// copy answered before its request ended still times the primary from that end).
    pub fn wants_request_stream(&self) -> bool {
        self.is_capturing() || self.watch.awaits_request_end()
    }

    pub fn is_capturing(&self) -> bool {
        match &self.copying {
            Copying::None => false,
            Copying::Buffered(_) => true,
            Copying::Streamed(streams) => !streams.is_empty(),
        }
    }

    /// Whether the host should pass on the primary's answer.
    pub fn watches_response(&self) -> bool {
        self.watch.is_watching()
    }

    fn has_streams(&self) -> bool {
        matches!(&self.copying, Copying::Streamed(streams) if !streams.is_empty())
    }

    fn take_capture(&mut self) -> Option<Capture<I>> {
        // Looked at in place first: moving the whole state out and back
        // costs the wasm filter a copy of it on every request.
        if !matches!(self.copying, Copying::Buffered(_)) {
            return None;
        }
        match std::mem::replace(&mut self.copying, Copying::None) {
            Copying::Buffered(capture) => Some(capture),
            Copying::None | Copying::Streamed(_) => None,
        }
    }

    fn take_streams(&mut self) -> Vec<T> {
        match &mut self.copying {
            Copying::Streamed(streams) => std::mem::take(streams),
            _ => Vec::new(),
        }
    }

    fn push_stream(&mut self, token: T) {
        match &mut self.copying {
            Copying::Streamed(streams) => streams.push(token),
            _ => self.copying = Copying::Streamed(vec![token]),
        }
    }
}

/// A copy handed over, waiting to be sent: all of it. The body is shared
/// by every copy of the request, the headers by a mirror's `copies`.
pub(super) struct ReadyCopy<I> {
    pub copy: MirrorCopy<I>,
    pub headers: Rc<HeaderList>,
    pub body: Rc<Vec<u8>>,
    pub trailers: Rc<HeaderList>,
}

/// The headers of each mirror's copies, shaped once per mirror: a mirror's
/// `copies` share them. One mirror (the usual case, also with `copies`)
/// shapes the captured headers themselves: moved, not copied (a copy of
/// every header was about an eighth of the work of a mirrored GET).
struct Shaper<'a> {
    head: &'a mut RequestHead,
    one_mirror: bool,
    shaped: Option<(Rc<MirrorPolicy>, Rc<HeaderList>)>,
}

impl<'a> Shaper<'a> {
    fn new<I>(head: &'a mut RequestHead, copies: &[MirrorCopy<I>]) -> Shaper<'a> {
        let one_mirror = copies
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if Rc::ptr_eq(a.mirror(), b.mirror())));
        Shaper {
            head,
            one_mirror,
            shaped: None,
        }
    }

    fn headers(&mut self, mirror: &Rc<MirrorPolicy>) -> Rc<HeaderList> {
        match &self.shaped {
            Some((shaped_for, headers)) if Rc::ptr_eq(shaped_for, mirror) => headers.clone(),
            _ => {
                let captured = if self.one_mirror {
                    std::mem::take(&mut self.head.headers)
                } else {
                    self.head.headers.clone()
                };
                let headers = Rc::new(shape_headers(captured, mirror));
                self.shaped = Some((mirror.clone(), headers.clone()));
                headers
            }
        }
    }
}

impl<H: Host> Worker<H> {
    /// The request's headers: decides which mirrors get a copy (reading the
    /// request through `view`), counts the skips, and starts the copies, or
    /// hands them over at once when the request has no body.
    pub fn request_headers(
        &self,
        host: &mut H,
        view: &mut impl RequestView,
        end_of_stream: bool,
    ) -> MirroredRequest<H::Ids, H::Token> {
        let Some(active) = self.active() else {
            return MirroredRequest::default();
        };
        let streams = H::STREAMS && host.streams();
        let Plan {
            route,
            skipped,
            capture,
        } = if streams {
            decide::decide_streamed(&active.config, &active.destinations, view, end_of_stream)
        } else {
            decide(&active.config, &active.destinations, view, end_of_stream)
        };
        let route = route.as_deref();
        for Skipped { mirror, reason } in &skipped {
            report(host, &active.series.series(route, mirror), Event::Skipped(*reason));
        }
        let Some(decide::Capture {
            head,
            body,
            admitted,
            complete,
        }) = capture
        else {
            return MirroredRequest::default();
        };
        let mut copies: Vec<MirrorCopy<H::Ids>> = Vec::with_capacity(admitted.len());
        for Admitted { mirror, slot } in admitted {
            let series = active.series.series(route, &mirror);
            // A secondary's copy comes right after its candidate's.
            let previous = copies.last().map(MirrorCopy::mirror);
            let compare = CopyCompare::admitted(&active.limiters, &mirror, previous);
            copies.push(MirrorCopy::new(mirror, series, slot, compare));
        }
        let watch = Watch::for_mirrors(copies.iter().map(|c| (&**c.mirror(), c.compare())));
        if streams {
            let mut request = MirroredRequest {
                copying: Copying::None,
                watch,
            };
            self.open_streams(host, &mut request, head, copies, complete);
            return request;
        }
        let mut request = MirroredRequest {
            copying: Copying::Buffered(Capture { head, body, copies }),
            watch,
        };
        if complete {
            self.hand_over(host, &mut request, HeaderList::default());
        }
        request
    }

    /// A chunk of the request's body, `size` bytes (only this chunk: the
    /// primary is never paused, so the host buffers nothing), read by
    /// `read` (`None`: the host refused) only if it fits.
    pub fn request_body(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        size: usize,
        read: impl FnOnce() -> Option<Vec<u8>>,
        end_of_stream: bool,
    ) {
        if H::STREAMS && host.streams() && request.has_streams() {
            let chunk = match (size, read) {
                (0, _) => Vec::new(),
                (_, read) => match read() {
                    Some(chunk) => chunk,
                    None => return self.cut_streams(host, request, CallEnd::Incomplete),
                },
            };
            return self.stream_chunk(host, request, &chunk, end_of_stream);
        }
        let Copying::Buffered(capture) = &mut request.copying else {
            if end_of_stream {
                request.watch.request_ended(host.now_ms());
            }
            return;
        };
        if size > 0 {
            let copied = if size > capture.body.room() {
                Err(SkipReason::BodyTooLarge)
            } else {
                match read() {
                    Some(chunk) => capture.body.push(&chunk).map_err(|TooLarge| SkipReason::BodyTooLarge),
                    None => Err(SkipReason::HostError),
                }
            };
            if let Err(reason) = copied {
                self.abandon(host, request, reason);
                return;
            }
        }
        if end_of_stream {
            self.hand_over(host, request, HeaderList::default());
        }
    }

    /// The request's trailers (HTTP/2 requests may end with them and no
    /// end-of-stream body chunk), read by `read` only if a copy wants them.
    pub fn request_trailers(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        read: impl FnOnce() -> HeaderList,
    ) {
        if H::STREAMS && host.streams() && request.has_streams() {
            let trailers = read();
            if trailers.is_empty() {
                // None the copy may carry: its body ends here instead.
                return self.stream_chunk(host, request, &[], true);
            }
            let now = host.now_ms();
            for token in request.take_streams() {
                if self.calls.borrow().contains_key(&token) {
                    let sent = host_sent(host.send_trailers(token, &trailers));
                    self.stream_sent(host, token, sent, Some(now));
                }
            }
            request.watch.request_ended(now);
        } else if request.is_capturing() {
            let trailers = read();
            self.hand_over(host, request, trailers);
        } else {
            request.watch.request_ended(host.now_ms());
        }
    }

    /// The primary's response headers, read by `read` only if watched.
    pub fn response_headers(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        read: impl FnOnce() -> AnswerHead,
        end_of_stream: bool,
    ) {
        if request.watch.is_watching() {
            let head = read();
            request.watch.response_headers(&self.pairs, host, head, end_of_stream);
        }
    }

    /// A chunk of the primary's response body, read by `read` only if kept.
    pub fn response_body(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        size: usize,
        read: impl FnOnce() -> Option<Vec<u8>>,
        end_of_stream: bool,
    ) {
        request
            .watch
            .response_body(&self.pairs, host, size, read, end_of_stream);
    }

    /// The primary's response trailers (`read` reads one by name).
    pub fn response_trailers(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        num_trailers: usize,
        read: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) {
        request.watch.response_trailers(&self.pairs, host, num_trailers, read);
    }

    /// The request is gone. A copy still being captured belongs to a
    /// request that ended early (`incomplete`); a primary whose answer had
    /// not ended leaves its pairs `primary_incomplete`.
    pub fn request_gone(&self, host: &mut H, request: &mut MirroredRequest<H::Ids, H::Token>) {
        self.abandon(host, request, SkipReason::Incomplete);
        if H::STREAMS && host.streams() {
            self.cut_streams(host, request, CallEnd::Incomplete);
        }
        request.watch.gone(&self.pairs, host);
    }

    /// Ends every copy still being captured, for `reason`.
    fn abandon(&self, host: &mut H, request: &mut MirroredRequest<H::Ids, H::Token>, reason: SkipReason) {
        if let Some(capture) = request.take_capture() {
            for copy in capture.copies {
                copy.skip(host, &self.pairs, reason);
            }
        }
    }

    /// Builds each copy and queues it. Every copy shares the one body; a
    /// mirror's `copies` share their headers too.
    fn hand_over(&self, host: &mut H, request: &mut MirroredRequest<H::Ids, H::Token>, trailers: HeaderList) {
        let Some(Capture { mut head, body, copies }) = request.take_capture() else {
            return;
        };
        if request.watch.is_watching() {
            let now = host.now_ms();
            request.watch.describe(&head);
            request.watch.request_ended(now);
        }
        let body = Rc::new(body.into_bytes());
        let trailers = Rc::new(trailers);
        let mut ready = Vec::with_capacity(copies.len());
        let mut shaper = Shaper::new(&mut head, &copies);
        for mut copy in copies {
            if body.len() > copy.mirror().max_body_bytes {
                copy.skip(host, &self.pairs, SkipReason::BodyTooLarge);
                continue;
            }
            let headers = shaper.headers(copy.mirror());
            copy.pair(&self.pairs, &mut request.watch);
            ready.push(ReadyCopy {
                copy,
                headers,
                body: body.clone(),
                trailers: trailers.clone(),
            });
        }
        self.submit(host, ready);
    }

    /// Opens each streamed copy with the request's head (host that streams):
    /// it is sent now, in flight from here, and fed the request's chunks
    /// unless the request ended with its headers. A declared body holds its
    /// length of the destination's budget from the start, so it is never
    /// cut for size; a copy whose declared body does not fit what its
    /// destination's copies hold now is skipped as `body_too_large`.
    fn open_streams(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        mut head: RequestHead,
        copies: Vec<MirrorCopy<H::Ids>>,
        complete: bool,
    ) {
        let now = host.now_ms();
        request.watch.describe(&head);
        if complete {
            request.watch.request_ended(now);
        }
        let declared = head.content_length.filter(|n| *n > 0 && !complete);
        let held = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut shaper = Shaper::new(&mut head, &copies);
        for mut copy in copies {
            if held > 0 && !copy.hold_body(held) {
                copy.skip(host, &self.pairs, SkipReason::BodyTooLarge);
                continue;
            }
            let headers = shaper.headers(copy.mirror());
            copy.pair(&self.pairs, &mut request.watch);
            let opening = Opening {
                destination: &copy.mirror().destination,
                headers: &headers,
                content_length: declared,
                end_stream: complete,
                timeout_ms: copy.mirror().timeout_ms,
            };
            match host.open(opening) {
                Ok(token) => {
                    copy.sent(host);
                    self.calls
                        .borrow_mut()
                        .insert(token, InFlight { copy, started_ms: now });
                    self.streamed.borrow_mut().insert(token, StreamBytes { sent: 0, held });
                    if !complete {
                        request.push_stream(token);
                    }
                }
                Err(Refused) => {
                    copy.release_body(held);
                    copy.refused(host, &self.pairs, now);
                }
            }
        }
    }

    /// One chunk for every streamed copy of the request: each that still
    /// fits its budget gets it, each that no longer does is reset and ends
    /// `body_too_large`. A copy whose call already ended (its answer came
    /// first) is left out.
    fn stream_chunk(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids, H::Token>,
        chunk: &[u8],
        end_stream: bool,
    ) {
        let now = end_stream.then(|| host.now_ms());
        for token in request.take_streams() {
            let fits = {
                let calls = self.calls.borrow();
                let mut streamed = self.streamed.borrow_mut();
                let (Some(call), Some(bytes)) = (calls.get(&token), streamed.get_mut(&token)) else {
                    continue;
                };
                let total = bytes.sent.saturating_add(chunk.len());
                let extra = total.saturating_sub(bytes.held);
                let fits = extra == 0 || call.copy.hold_body(extra);
                if fits {
                    bytes.sent = total;
                    bytes.held += extra;
                }
                fits
            };
            if !fits {
                self.cut(host, token, CallEnd::BodyTooLarge);
                continue;
            }
            let sent = match (chunk.is_empty(), end_stream) {
                (true, false) => Ok(()),
                _ => host_sent(host.send_data(token, chunk, end_stream)),
            };
            if self.stream_sent(host, token, sent, now) && !end_stream {
                request.push_stream(token);
            }
        }
        if let Some(now) = now {
            request.watch.request_ended(now);
        }
    }

    /// After a send to a streamed copy: one the host no longer has ends
    /// `incomplete`; one whose request part ended (`ended_at`) times its
    /// answer from there. Whether the copy is still being fed.
    fn stream_sent(&self, host: &mut H, token: H::Token, sent: Result<(), Refused>, ended_at: Option<u64>) -> bool {
        if sent.is_err() {
            self.cut(host, token, CallEnd::Incomplete);
            return false;
        }
        if let (Some(now), Some(call)) = (ended_at, self.calls.borrow_mut().get_mut(&token)) {
            call.started_ms = now;
        }
        true
    }

    /// Resets every streamed copy the request still feeds: each ends `end`.
    fn cut_streams(&self, host: &mut H, request: &mut MirroredRequest<H::Ids, H::Token>, end: CallEnd) {
        for token in request.take_streams() {
            self.cut(host, token, end.clone());
        }
    }

    /// The worker ends a streamed copy in flight: the host resets it (and
    /// reports nothing more for it), and the copy ends `end`.
    fn cut(&self, host: &mut H, token: H::Token, end: CallEnd) {
        let Some(InFlight { copy, started_ms }) = self.calls.borrow_mut().remove(&token) else {
            return;
        };
        if let Some(bytes) = self.streamed.borrow_mut().remove(&token) {
            copy.release_body(bytes.held);
        }
        host.reset(token);
        let now = host.now_ms();
        copy.finish(host, &self.pairs, &end, now.saturating_sub(started_ms), now, 0, || None);
    }

    /// Queues finished copies. Only the transition from empty to non-empty
    /// wakes the host: one wake-up per batch, none per request under load
    /// (waking per copy was measured to cost more than the copy's dispatch).
    fn submit(&self, host: &mut H, copies: Vec<ReadyCopy<H::Ids>>) {
        if copies.is_empty() {
            return;
        }
        let was_empty = {
            let mut pending = self.pending.borrow_mut();
            let was_empty = pending.is_empty();
            pending.extend(copies);
            was_empty
        };
        if was_empty && !host.wake() {
            // Nothing will ever send them: account for them now.
            let stranded = std::mem::take(&mut *self.pending.borrow_mut());
            for ready in stranded {
                ready.copy.skip(host, &self.pairs, SkipReason::DispatchFailed);
            }
        }
    }
}

/// A host's `send_*` answer as a result.
fn host_sent(sent: bool) -> Result<(), Refused> {
    if sent {
        Ok(())
    } else {
        Err(Refused)
    }
}
