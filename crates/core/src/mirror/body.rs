//! The copy of the request body, taken chunk by chunk as the primary streams
//! past (the filter never pauses the body, so Envoy buffers nothing for us),
//! and what `maxBodyBytes` bounds, by how the host carries a copy.

use crate::config::MirrorPolicy;

/// How a host carries a copy's body, which decides what `maxBodyBytes`
/// bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carriage {
    /// The worker buffers the body and the host sends the copy whole at the
    /// request's end (proxy-wasm's `dispatch_http_call`): `maxBodyBytes` is
    /// the largest body copied.
    Buffered,
    /// The host streams the copy as the request passes (the native
    /// module's config-level streams): the worker holds nothing, but Envoy
    /// gives no backpressure on such streams and keeps what the shadow has
    /// not read yet, until the copy ends. So `maxBodyBytes` bounds bytes in
    /// flight instead: a worker's streamed copies to one destination hold
    /// at most `maxInFlight × maxBodyBytes` body bytes sent and not yet
    /// ended (the most the buffered host can hold for them), and one copy
    /// may use all of it. A declared body that cannot fit is skipped before
    /// its copy opens; a body that outgrows it while it streams resets its
    /// copy, counted as the class `body_too_large`.
    Streamed,
}

impl Carriage {
    /// The most body bytes one copy of `mirror` may carry: the cap of a
    /// buffered copy, or the budget streamed copies share.
    pub fn limit(self, mirror: &MirrorPolicy) -> usize {
        match self {
            Carriage::Buffered => mirror.max_body_bytes,
            Carriage::Streamed => usize::try_from(mirror.max_in_flight)
                .unwrap_or(usize::MAX)
                .saturating_mul(mirror.max_body_bytes),
        }
    }

    /// Starts the copy of a body of up to `limit` bytes (declared with
    /// `content_length`, if it is): a buffer for a buffered copy, an empty
    /// one that is never filled for a streamed one. A declared length over
    /// `limit` is refused.
    pub fn start(self, limit: usize, content_length: Option<u64>) -> Result<BodyCopy, TooLarge> {
        match self {
            Carriage::Buffered => BodyCopy::start(limit, content_length),
            Carriage::Streamed if content_length.is_some_and(|n| n > limit as u64) => Err(TooLarge),
            Carriage::Streamed => Ok(BodyCopy {
                bytes: Vec::new(),
                limit: 0,
            }),
        }
    }
}

/// Why a copy was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// A bounded copy of a request body.
#[derive(Debug)]
pub struct BodyCopy {
    bytes: Vec<u8>,
    limit: usize,
}

impl BodyCopy {
    /// Starts a copy of at most `limit` bytes. When the request declares its
    /// length, a body known to be too large is refused before any byte is
    /// copied, and otherwise the whole copy is reserved at once.
    pub fn start(limit: usize, content_length: Option<u64>) -> Result<BodyCopy, TooLarge> {
        let expected = match content_length {
            Some(n) if n > limit as u64 => return Err(TooLarge),
            Some(n) => n as usize,
            None => 0,
        };
        Ok(BodyCopy {
            bytes: Vec::with_capacity(expected),
            limit,
        })
    }

    /// Appends one chunk. Past the limit the copy is dropped (its memory
    /// freed at once) and the caller skips the mirror.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        if chunk.len() > self.limit - self.bytes.len() {
            self.bytes = Vec::new();
            return Err(TooLarge);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Bytes that may still be appended. A caller that knows a chunk's size
    /// before reading it compares the two and does not read a chunk that
    /// cannot fit.
    pub fn room(&self) -> usize {
        self.limit - self.bytes.len()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The finished body.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_exactly_the_limit_is_kept_one_more_byte_is_not() {
        let mut exact = BodyCopy::start(10, None).unwrap();
        exact.push(b"12345").unwrap();
        exact.push(b"67890").unwrap();
        assert_eq!(exact.into_bytes(), b"1234567890");

        let mut over = BodyCopy::start(10, None).unwrap();
        over.push(b"12345").unwrap();
        assert_eq!(over.push(b"678901"), Err(TooLarge));
        assert!(over.is_empty(), "memory is released on overflow");
    }

    #[test]
    fn declared_length_is_checked_before_copying() {
        assert_eq!(BodyCopy::start(10, Some(11)).unwrap_err(), TooLarge);
        let copy = BodyCopy::start(10, Some(10)).unwrap();
        assert!(copy.bytes.capacity() >= 10);
        assert_eq!(copy.room(), 10);
    }

    #[test]
    fn a_streamed_copy_is_bounded_by_the_shared_budget_and_buffers_nothing() {
        let config = crate::config::parse(
            br#"{"forward": {"mirror": {"destinationId": "s", "maxBodyBytes": 10, "maxInFlight": 3}}}"#,
        )
        .unwrap();
        let mirror = &config.default_policy.mirrors[0];
        assert_eq!(Carriage::Buffered.limit(mirror), 10);
        assert_eq!(Carriage::Streamed.limit(mirror), 30);
        let streamed = Carriage::Streamed.start(30, Some(30)).unwrap();
        assert_eq!((streamed.room(), streamed.bytes.capacity()), (0, 0), "nothing reserved");
        assert!(Carriage::Streamed.start(30, None).is_ok());
        assert_eq!(Carriage::Streamed.start(30, Some(31)).unwrap_err(), TooLarge);
        assert_eq!(Carriage::Buffered.start(10, Some(4)).unwrap().room(), 10);
    }

    #[test]
    fn zero_limit_accepts_only_empty_bodies() {
        let mut copy = BodyCopy::start(0, Some(0)).unwrap();
        copy.push(b"").unwrap();
        assert_eq!(copy.push(b"x"), Err(TooLarge));
    }
}
