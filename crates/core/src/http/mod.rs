//! HTTP and gRPC wire vocabulary shared by the layers above: header names
//! and the copy's header rules, value parsers, gRPC status codes. Pure, and
//! the bottom layer: it imports nothing else of the crate.

pub mod grpc;
pub mod header_list;
pub mod headers;

pub use header_list::HeaderList;

/// Parses a `:status` value: exactly three digits.
pub fn parse_status(value: &[u8]) -> Option<u16> {
    if value.len() != 3 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses a `content-length` value; anything unparsable is treated as absent
/// (Envoy has already rejected malformed framing before filters run).
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        assert_eq!(parse_status(b"200"), Some(200));
        assert_eq!(parse_status(b"20"), None);
        assert_eq!(parse_status(b"2000"), None);
        assert_eq!(parse_status(b"2x0"), None);
    }

    #[test]
    fn content_length_parsing() {
        assert_eq!(parse_content_length(b"123"), Some(123));
        assert_eq!(parse_content_length(b" 7 "), Some(7));
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b"1e3"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"99999999999999999999999"), None);
    }
}
