//! The calls a worker has in flight, by the host's token.

use super::copy::MirrorCopy;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A copy the host accepted, until its call ends.
pub struct InFlight<I> {
    pub copy: MirrorCopy<I>,
    /// When it was sent, or for a streamed copy when its request part
    /// ended (its open, until then): what its latency and timeout run from.
    pub started_ms: u64,
}

/// Calls in flight, by token.
pub type Calls<T, I> = HashMap<T, InFlight<I>, BuildHasherDefault<TokenHasher>>;

/// A streamed copy's body bytes, while it is in flight. Beside the calls,
/// not in [`InFlight`]: a buffering host never makes one, and a larger
/// `InFlight` showed in the wasm filter's instruction count.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamBytes {
    /// Sent so far.
    pub sent: usize,
    /// Held of its destination's budget: what it sent, or its declared
    /// length from the open; given back at its end.
    pub held: usize,
}

/// Streamed copies in flight, by token.
pub type Streamed<T> = HashMap<T, StreamBytes, BuildHasherDefault<TokenHasher>>;

/// Tokens (and pair ids) are small integers handed out in sequence;
/// Fibonacci hashing spreads them well. (std's SipHash would add its code
/// to the wasm module for no benefit: nobody can choose these keys.)
#[derive(Default)]
pub struct TokenHasher(u64);

const FIBONACCI: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, token: u32) {
        self.0 = u64::from(token).wrapping_mul(FIBONACCI);
    }

    fn write_u64(&mut self, token: u64) {
        self.0 = token.wrapping_mul(FIBONACCI);
    }
}
