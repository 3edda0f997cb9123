//! A list of header pairs kept in one buffer, as bytes.
//!
//! A mirrored request's headers are read once, shaped by the mirror's
//! policy and handed to the host's call. Kept as a `Vec<(String, String)>`
//! that cost two allocations per header, and as many frees when the copy was
//! sent: about a third of the wasm instructions of a mirrored GET (counted
//! with wasmtime's fuel). Here every name and value lives in one byte buffer
//! and each header is four offsets into it, so a request's headers are two
//! allocations whatever their number.
//!
//! Bytes, not text: HTTP allows any octet but controls in a value (obs-text,
//! latin-1), Envoy accepts them, and the copy carries them unchanged. Names
//! are tokens (ASCII) in practice; they are bytes here too, so that nothing
//! on the way from the host's map to the host's call checks UTF-8.

use std::fmt;

/// Where one header's name and value are in [`HeaderList::bytes`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl Entry {
    /// This entry's name and value in `bytes` (empty if outside it, which
    /// the list never lets happen).
    fn pair<'t>(&self, bytes: &'t [u8]) -> (&'t [u8], &'t [u8]) {
        let slice = |start: u32, end: u32| bytes.get(start as usize..end as usize).unwrap_or_default();
        (
            slice(self.name_start, self.name_end),
            slice(self.value_start, self.value_end),
        )
    }
}

/// Header pairs, in order, names and values as bytes. Two lists are equal
/// when their pairs are.
#[derive(Clone, Default)]
pub struct HeaderList {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

/// Bytes reserved up front: a typical request's headers fit, larger ones
/// grow the buffer as usual.
const TYPICAL_BYTES: usize = 256;

impl HeaderList {
    /// An empty list with room for `headers` pairs.
    pub fn with_capacity(headers: usize) -> HeaderList {
        HeaderList {
            bytes: Vec::with_capacity(TYPICAL_BYTES),
            entries: Vec::with_capacity(headers),
        }
    }

    /// Appends `name: value`. Silently dropped past 4 GiB of bytes, which
    /// no host hands over (Envoy caps a request's headers far below).
    pub fn push(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let Some(name_start) = self.offset() else {
            return;
        };
        self.bytes.extend_from_slice(name.as_ref());
        let Some(name_end) = self.offset() else {
            return;
        };
        self.bytes.extend_from_slice(value.as_ref());
        let Some(value_end) = self.offset() else {
            return;
        };
        self.entries.push(Entry {
            name_start,
            name_end,
            value_start: name_end,
            value_end,
        });
    }

    fn offset(&self) -> Option<u32> {
        u32::try_from(self.bytes.len()).ok()
    }

    fn pair(&self, entry: &Entry) -> (&[u8], &[u8]) {
        entry.pair(&self.bytes)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.entries.iter().map(|entry| self.pair(entry))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    /// Keeps the headers `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        let bytes = &self.bytes;
        self.entries.retain(|entry| {
            let (name, value) = entry.pair(bytes);
            keep(name, value)
        });
    }

    /// Replaces the value of the first header called `name`; `false` when
    /// there is none. The old value's bytes stay unused in the buffer.
    pub fn set_first(&mut self, name: &str, value: &[u8]) -> bool {
        let bytes = &self.bytes;
        let found = self
            .entries
            .iter()
            .position(|entry| entry.pair(bytes).0 == name.as_bytes());
        let (Some(index), Some(value_start)) = (found, self.offset()) else {
            return false;
        };
        self.bytes.extend_from_slice(value);
        let (Some(value_end), Some(entry)) = (self.offset(), self.entries.get_mut(index)) else {
            return false;
        };
        entry.value_start = value_start;
        entry.value_end = value_end;
        true
    }
}

impl PartialEq for HeaderList {
    fn eq(&self, other: &HeaderList) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for HeaderList {}

/// Bytes shown as text, anything not printable ASCII escaped (`\xe9`).
struct Escaped<'a>(&'a [u8]);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(name, value)| (Escaped(name), Escaped(value))))
            .finish()
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> HeaderList {
        let pairs = pairs.into_iter();
        let mut list = HeaderList::with_capacity(pairs.size_hint().0);
        for (name, value) in pairs {
            list.push(name, value);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&'static str, &'static str)]) -> HeaderList {
        pairs.iter().copied().collect()
    }

    /// The pairs as text, for comparing with literals (every test value is UTF-8).
    fn text(headers: &HeaderList) -> Vec<(&str, &str)> {
        headers
            .iter()
            .map(|(n, v)| (std::str::from_utf8(n).unwrap(), std::str::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn pairs_come_back_in_order() {
        let headers = list(&[
            (":method", "GET"),
            ("accept", "*/*"),
            ("x-empty", ""),
            ("accept", "text/plain"),
        ]);
        assert_eq!(
            text(&headers),
            [
                (":method", "GET"),
                ("accept", "*/*"),
                ("x-empty", ""),
                ("accept", "text/plain")
            ]
        );
        assert_eq!(headers.len(), 4);
        assert_eq!(headers.get("accept"), Some(&b"*/*"[..]));
        assert_eq!(headers.get("x-empty"), Some(&b""[..]));
        assert_eq!(headers.get("missing"), None);
        assert_eq!(
            format!("{headers:?}"),
            r#"[(":method", "GET"), ("accept", "*/*"), ("x-empty", ""), ("accept", "text/plain")]"#
        );
    }

    #[test]
    fn values_that_are_not_utf8_come_back_byte_equal() {
        let latin1: &[u8] = b"caf\xe9 \xff\xfe\x80";
        let mut headers: HeaderList = [(&b"x-latin1"[..], latin1), (b"x-ok", b"yes")].into_iter().collect();
        assert_eq!(headers.get("x-latin1"), Some(latin1));
        assert!(headers.set_first("x-ok", b"\xe9t\xe9"));
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [(&b"x-latin1"[..], latin1), (b"x-ok", b"\xe9t\xe9")]
        );
        assert_eq!(
            format!("{headers:?}"),
            r#"[("x-latin1", "caf\xe9 \xff\xfe\x80"), ("x-ok", "\xe9t\xe9")]"#
        );
    }

    #[test]
    fn retain_and_set_first_keep_the_others_intact() {
        let mut headers = list(&[
            (":authority", "api"),
            ("cookie", "a=1"),
            ("x-b", "2"),
            ("cookie", "b=2"),
        ]);
        headers.retain(|name, _| name != b"cookie");
        assert_eq!(text(&headers), [(":authority", "api"), ("x-b", "2")]);
        assert!(headers.set_first(":authority", b"api-shadow:8080"));
        assert!(!headers.set_first("missing", b"x"));
        headers.push("x-added", "yes");
        assert_eq!(
            text(&headers),
            [(":authority", "api-shadow:8080"), ("x-b", "2"), ("x-added", "yes")]
        );
        assert!(!headers.is_empty());
        headers.retain(|_, _| false);
        assert!(headers.is_empty());
    }

    #[test]
    fn lists_with_the_same_pairs_are_equal() {
        let mut rewritten = list(&[("a", "old")]);
        rewritten.set_first("a", b"new");
        // The rewritten list still holds "old" in its buffer: equality is over the pairs.
        assert_eq!(rewritten, list(&[("a", "new")]));
        assert_ne!(rewritten, list(&[("a", "old")]));
        assert_ne!(list(&[("a", "1")]), list(&[("a", "1"), ("b", "2")]));
    }
}
