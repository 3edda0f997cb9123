//! Header policy: what of the primary's headers the copy carries.

/// Headers that describe one hop or the body's framing. Envoy frames the
/// copy's body itself (and a stale `content-length` would corrupt it), so the
/// copy never carries these.
pub const HOP_BY_HOP_AND_FRAMING: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "expect",
];

/// Whether `name` (lower case, as Envoy hands headers to filters) is dropped from every copy.
pub fn is_framing_or_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP_AND_FRAMING.contains(&name)
}

/// RFC 9110 token characters, used by method names and header field names.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
                )
        })
}

/// A header field name, optionally a pseudo-header such as `:path`.
pub fn is_header_name(bytes: &[u8]) -> bool {
    match bytes.strip_prefix(b":") {
        Some(rest) => is_token(rest),
        None => is_token(bytes),
    }
}

/// Whether a request is a protocol upgrade (WebSocket, CONNECT): such a
/// stream is not a request/response exchange and is never mirrored.
pub fn is_upgrade(method: Option<&[u8]>, has_upgrade_header: bool) -> bool {
    has_upgrade_header || method == Some(b"CONNECT".as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_hop_by_hop_headers_are_recognised() {
        for name in HOP_BY_HOP_AND_FRAMING {
            assert!(is_framing_or_hop_by_hop(name), "{name}");
        }
        assert!(!is_framing_or_hop_by_hop("content-type"));
        assert!(!is_framing_or_hop_by_hop("x-request-id"));
    }

    #[test]
    fn tokens_and_header_names() {
        assert!(is_token(b"GET"));
        assert!(is_token(b"x-user-id"));
        assert!(!is_token(b""));
        assert!(!is_token(b"bad header"));
        assert!(!is_token(b"a:b"));
        assert!(is_header_name(b":path"));
        assert!(!is_header_name(b":"));
        assert!(!is_header_name(b"::path"));
    }

    #[test]
    fn upgrades_are_recognised() {
        assert!(is_upgrade(Some(b"GET"), true));
        assert!(is_upgrade(Some(b"CONNECT"), false));
        assert!(!is_upgrade(Some(b"GET"), false));
        assert!(!is_upgrade(None, false));
    }
}
