//! A list of header pairs kept in one string.
//!
//! A mirrored request's headers are read once, shaped by the mirror's
//! policy and handed to `dispatch_http_call` as `(&str, &str)` pairs. Kept as
//! a `Vec<(String, String)>` that cost two allocations per header, and as
//! many frees when the copy was sent: about a third of the wasm
//! instructions of a mirrored GET (counted with wasmtime's fuel). Here every
//! name and value lives in one `String` and each header is four offsets into
//! it, so a request's headers are two allocations whatever their number.

use std::fmt;

/// Where one header's name and value are in [`HeaderList::text`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl Entry {
    /// This entry's name and value in `text` (empty if outside it, which
    /// the list never lets happen).
    fn pair<'t>(&self, text: &'t str) -> (&'t str, &'t str) {
        let slice = |start: u32, end: u32| text.get(start as usize..end as usize).unwrap_or_default();
        (
            slice(self.name_start, self.name_end),
            slice(self.value_start, self.value_end),
        )
    }
}

/// Header pairs, in order, names and values UTF-8. Two lists are equal
/// when their pairs are.
#[derive(Clone, Default)]
pub struct HeaderList {
    text: String,
    entries: Vec<Entry>,
}

/// Bytes reserved for the text up front: a typical request's headers fit,
/// larger ones grow the string as usual.
const TYPICAL_TEXT: usize = 256;

impl HeaderList {
    /// An empty list with room for `headers` pairs.
    pub fn with_capacity(headers: usize) -> HeaderList {
        HeaderList {
            text: String::with_capacity(TYPICAL_TEXT),
            entries: Vec::with_capacity(headers),
        }
    }

    /// Appends `name: value`. Silently dropped past 4 GiB of text, which
    /// no host hands over (Envoy caps a request's headers far below).
    pub fn push(&mut self, name: &str, value: &str) {
        let Some(name_start) = self.offset() else {
            return;
        };
        self.text.push_str(name);
        let Some(name_end) = self.offset() else {
            return;
        };
        self.text.push_str(value);
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
        u32::try_from(self.text.len()).ok()
    }

    fn pair(&self, entry: &Entry) -> (&str, &str) {
        entry.pair(&self.text)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|entry| self.pair(entry))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Keeps the headers `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let text = &self.text;
        self.entries.retain(|entry| {
            let (name, value) = entry.pair(text);
            keep(name, value)
        });
    }

    /// Replaces the value of the first header called `name`; `false` when
    /// there is none. The old value's bytes stay unused in the text.
    pub fn set_first(&mut self, name: &str, value: &str) -> bool {
        let text = &self.text;
        let found = self.entries.iter().position(|entry| entry.pair(text).0 == name);
        let (Some(index), Some(value_start)) = (found, self.offset()) else {
            return false;
        };
        self.text.push_str(value);
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

impl fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> HeaderList {
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

    #[test]
    fn pairs_come_back_in_order() {
        let headers = list(&[
            (":method", "GET"),
            ("accept", "*/*"),
            ("x-empty", ""),
            ("accept", "text/plain"),
        ]);
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [
                (":method", "GET"),
                ("accept", "*/*"),
                ("x-empty", ""),
                ("accept", "text/plain")
            ]
        );
        assert_eq!(headers.len(), 4);
        assert_eq!(headers.get("accept"), Some("*/*"));
        assert_eq!(headers.get("x-empty"), Some(""));
        assert_eq!(headers.get("missing"), None);
        assert_eq!(
            format!("{headers:?}"),
            r#"[(":method", "GET"), ("accept", "*/*"), ("x-empty", ""), ("accept", "text/plain")]"#
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
        headers.retain(|name, _| name != "cookie");
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [(":authority", "api"), ("x-b", "2")]
        );
        assert!(headers.set_first(":authority", "api-shadow:8080"));
        assert!(!headers.set_first("missing", "x"));
        headers.push("x-added", "yes");
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            [(":authority", "api-shadow:8080"), ("x-b", "2"), ("x-added", "yes")]
        );
        assert!(!headers.is_empty());
        headers.retain(|_, _| false);
        assert!(headers.is_empty());
    }

    #[test]
    fn lists_with_the_same_pairs_are_equal() {
        let mut rewritten = list(&[("a", "old")]);
        rewritten.set_first("a", "new");
        // The rewritten list still holds "old" in its text: equality is over the pairs.
        assert_eq!(rewritten, list(&[("a", "new")]));
        assert_ne!(rewritten, list(&[("a", "old")]));
        assert_ne!(list(&[("a", "1")]), list(&[("a", "1"), ("b", "2")]));
    }
}
