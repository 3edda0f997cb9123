//! One request on a worker: the decision at its headers, its body copied as
//! it streams past, its copies handed over at its end, and the primary's
//! answer watched when a copy compares.

use super::compare::{CopyCompare, Watch};
use super::copy::MirrorCopy;
use super::host::Host;
use super::Worker;
use crate::config::MirrorPolicy;
use crate::dispatch::outcome::AnswerHead;
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
/// [`Worker::request_gone`] when the request is gone.
pub struct MirroredRequest<I> {
    /// The copies while the body is being copied.
    capture: Option<Capture<I>>,
    /// The primary's answer, when a copy compares.
    watch: Watch,
}

struct Capture<I> {
    head: RequestHead,
    body: BodyCopy,
    copies: Vec<MirrorCopy<I>>,
}

impl<I> Default for MirroredRequest<I> {
    fn default() -> Self {
        MirroredRequest {
            capture: None,
            watch: Watch::default(),
        }
    }
}

impl<I> MirroredRequest<I> {
    /// Whether its body is still being copied.
    pub fn is_capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Whether the host should pass on the primary's answer.
    pub fn watches_response(&self) -> bool {
        self.watch.is_watching()
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

impl<H: Host> Worker<H> {
    /// The request's headers: decides which mirrors get a copy (reading the
    /// request through `view`), counts the skips, and starts the copies, or
    /// hands them over at once when the request has no body.
    pub fn request_headers(
        &self,
        host: &mut H,
        view: &mut impl RequestView,
        end_of_stream: bool,
    ) -> MirroredRequest<H::Ids> {
        let Some(active) = self.active() else {
            return MirroredRequest::default();
        };
        let Plan {
            route,
            skipped,
            capture,
        } = decide(&active.config, &active.destinations, view, end_of_stream);
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
        let mut request = MirroredRequest {
            capture: Some(Capture { head, body, copies }),
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
        request: &mut MirroredRequest<H::Ids>,
        size: usize,
        read: impl FnOnce() -> Option<Vec<u8>>,
        end_of_stream: bool,
    ) {
        let Some(capture) = request.capture.as_mut() else {
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
        request: &mut MirroredRequest<H::Ids>,
        read: impl FnOnce() -> HeaderList,
    ) {
        if request.is_capturing() {
            let trailers = read();
            self.hand_over(host, request, trailers);
        }
    }

    /// The primary's response headers, read by `read` only if watched.
    pub fn response_headers(
        &self,
        host: &mut H,
        request: &mut MirroredRequest<H::Ids>,
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
        request: &mut MirroredRequest<H::Ids>,
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
        request: &mut MirroredRequest<H::Ids>,
        num_trailers: usize,
        read: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) {
        request.watch.response_trailers(&self.pairs, host, num_trailers, read);
    }

    /// The request is gone. A copy still being captured belongs to a
    /// request that ended early (`incomplete`); a primary whose answer had
    /// not ended leaves its pairs `primary_incomplete`.
    pub fn request_gone(&self, host: &mut H, request: &mut MirroredRequest<H::Ids>) {
        self.abandon(host, request, SkipReason::Incomplete);
        request.watch.gone(&self.pairs, host);
    }

    /// Ends every copy still being captured, for `reason`.
    fn abandon(&self, host: &mut H, request: &mut MirroredRequest<H::Ids>, reason: SkipReason) {
        if let Some(capture) = request.capture.take() {
            for copy in capture.copies {
                copy.skip(host, &self.pairs, reason);
            }
        }
    }

    /// Builds each copy and queues it. Every copy shares the one body; a
    /// mirror's `copies` share their headers too.
    fn hand_over(&self, host: &mut H, request: &mut MirroredRequest<H::Ids>, trailers: HeaderList) {
        let Some(Capture { mut head, body, copies }) = request.capture.take() else {
            return;
        };
        if request.watch.is_watching() {
            let now = host.now_ms();
            request.watch.request_ended(&head, now);
        }
        let body = Rc::new(body.into_bytes());
        let trailers = Rc::new(trailers);
        let mut ready = Vec::with_capacity(copies.len());
        let mut shaped: Option<(Rc<MirrorPolicy>, Rc<HeaderList>)> = None;
        // One mirror (the usual case, also with `copies`) shapes the captured
        // headers themselves: moved, not copied (a copy of every header was
        // about an eighth of the work of a mirrored GET).
        let one_mirror = copies
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if Rc::ptr_eq(a.mirror(), b.mirror())));
        for mut copy in copies {
            if body.len() > copy.mirror().max_body_bytes {
                copy.skip(host, &self.pairs, SkipReason::BodyTooLarge);
                continue;
            }
            let headers = match &shaped {
                Some((mirror, headers)) if Rc::ptr_eq(mirror, copy.mirror()) => headers.clone(),
                _ => {
                    let captured = if one_mirror {
                        std::mem::take(&mut head.headers)
                    } else {
                        head.headers.clone()
                    };
                    let headers = Rc::new(shape_headers(captured, copy.mirror()));
                    shaped = Some((copy.mirror().clone(), headers.clone()));
                    headers
                }
            };
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
