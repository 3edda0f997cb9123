//! The copy of the request body, taken chunk by chunk as the primary streams
//! past (the filter never pauses the body, so Envoy buffers nothing for us).

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
    fn zero_limit_accepts_only_empty_bodies() {
        let mut copy = BodyCopy::start(0, Some(0)).unwrap();
        copy.push(b"").unwrap();
        assert_eq!(copy.push(b"x"), Err(TooLarge));
    }
}
