//! Header policy: what of the primary's headers the copy carries.
//!
//! The copy is the same request sent again, by this proxy, later, over a
//! connection of its own. So it keeps everything that says what the request
//! is (method, path, content type, gRPC metadata such as `grpc-timeout` and
//! `grpc-encoding`, `x-request-id`) and drops what describes one hop, the
//! body's framing, or who is calling: a header copied from the primary that
//! is no longer true of the copy would make the shadow misread it.

/// Defines a list of header names and the function that tells whether a
/// name is on it, from one list. The function is a `match`, which the
/// compiler turns into a branch on the length and one comparison, where
/// `list.contains(&name)` compared with every entry: with the three lists
/// below that was about 600 wasm instructions per header of every mirrored
/// request (counted with wasmtime's fuel). Names are bytes: the copy's
/// headers are (see `HeaderList`).
macro_rules! header_names {
    ($(#[$doc:meta])* $list:ident, $is:ident, [$($name:literal),+ $(,)?]) => {
        $(#[$doc])*
        pub const $list: &[&[u8]] = &[$($name),+];

        #[doc = concat!("Whether `name` (lower case) is on [`", stringify!($list), "`].")]
        pub fn $is(name: &[u8]) -> bool {
            matches!(name, $($name)|+)
        }
    };
}

header_names!(
    /// Headers that describe one hop or the body's framing. Envoy frames the
    /// copy's body itself (and a stale `content-length` would corrupt it), so the
    /// copy never carries these, and a configuration never adds them. `te` is
    /// the one exception, see [`carried_on_copy`].
    HOP_BY_HOP_AND_FRAMING,
    is_framing_or_hop_by_hop,
    [
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"upgrade",
        b"te",
        b"expect",
    ]
);

header_names!(
    /// Trace context. Dropped from the copy by default (a mirror's
    /// `traceContext`, `"drop"`): the copy is not part of the primary's trace.
    /// Carried over, the shadow's spans would join the primary's trace as if
    /// they were the primary's own calls (a shadow's errors showing up in
    /// production traces). Without them the shadow starts a trace of its own;
    /// `x-request-id`, which the copy keeps, links the two in the logs.
    /// `"keep"` carries them unchanged (see `mirror::request::shape_headers`).
    TRACE_CONTEXT,
    is_trace_context,
    [
        b"traceparent",
        b"tracestate",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-b3-flags",
        b"x-ot-span-context",
        b"uber-trace-id",
        b"grpc-trace-bin",
        b"x-cloud-trace-context",
        b"x-datadog-trace-id",
        b"x-datadog-parent-id",
    ]
);

header_names!(
    /// Istio's metadata exchange: who the downstream peer is. The copy is sent
    /// by this proxy, not by that peer; carried over, the shadow's sidecar would
    /// attribute the copy to the original caller in its telemetry.
    PEER_METADATA,
    is_peer_metadata,
    [b"x-envoy-peer-metadata", b"x-envoy-peer-metadata-id"]
);

/// Whether any copy may carry the primary's header `name: value` (trace
/// context aside, which each mirror's `traceContext` decides).
///
/// Pseudo-headers (`:method`, `:path`, ...) always: they are the request.
/// `te` is hop-by-hop, but `te: trailers` is the one value HTTP/2 allows and
/// gRPC requires: grpc-core servers cancel a call without it ("Missing :te
/// header"). Envoy's codecs keep exactly that value and drop any other, and
/// so does the copy.
pub fn carried_on_copy(name: &[u8], value: &[u8]) -> bool {
    if name.first() == Some(&b':') {
        return true;
    }
    if name == b"te" {
        return value.trim_ascii().eq_ignore_ascii_case(b"trailers");
    }
    !is_framing_or_hop_by_hop(name) && !is_peer_metadata(name)
}

/// RFC 9110 token characters, used by method names and header field names.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
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
pub fn is_upgrade(method_is_connect: bool, has_upgrade_header: bool) -> bool {
    method_is_connect || has_upgrade_header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &[u8]) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(name)
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_recognised() {
        for name in HOP_BY_HOP_AND_FRAMING {
            assert!(is_framing_or_hop_by_hop(name), "{}", text(name));
        }
        assert!(!is_framing_or_hop_by_hop(b"content-type"));
        assert!(!is_framing_or_hop_by_hop(b"x-request-id"));
    }

    #[test]
    fn each_list_and_its_function_agree() {
        let near_misses: [&[u8]; 8] = [
            b"x-b3-flagz",
            b"tracestatf",
            b"content-lengt",
            b"expects",
            b"x-envoy-peer",
            b"b4",
            b"caf\xe9",
            b"",
        ];
        let all = || HOP_BY_HOP_AND_FRAMING.iter().chain(TRACE_CONTEXT).chain(PEER_METADATA);
        for name in all().copied().chain(near_misses) {
            let shown = text(name);
            assert_eq!(
                is_framing_or_hop_by_hop(name),
                HOP_BY_HOP_AND_FRAMING.contains(&name),
                "{shown}"
            );
            assert_eq!(is_trace_context(name), TRACE_CONTEXT.contains(&name), "{shown}");
            assert_eq!(is_peer_metadata(name), PEER_METADATA.contains(&name), "{shown}");
        }
        for name in near_misses.into_iter().filter(|n| !n.is_empty()) {
            assert!(carried_on_copy(name, b"x"), "{} is on no list", text(name));
        }
    }

    #[test]
    fn pseudo_headers_are_always_carried() {
        for name in [":method", ":path", ":authority", ":scheme", ":protocol"] {
            assert!(carried_on_copy(name.as_bytes(), b"x"), "{name}");
        }
    }

    #[test]
    fn te_trailers_is_carried_and_nothing_else_of_te() {
        assert!(carried_on_copy(b"te", b"trailers"));
        assert!(carried_on_copy(b"te", b" Trailers "));
        assert!(!carried_on_copy(b"te", b"gzip"));
        assert!(!carried_on_copy(b"te", b"trailers, deflate"));
        assert!(!carried_on_copy(b"te", b""));
        assert!(!carried_on_copy(b"te", b"\xfftrailers"));
    }

    #[test]
    fn what_the_copy_keeps_and_drops() {
        for (name, value) in [
            ("content-type", &b"application/grpc"[..]),
            ("grpc-timeout", b"5S"),
            ("grpc-encoding", b"gzip"),
            ("grpc-accept-encoding", b"gzip"),
            ("x-grpc-web", b"1"),
            ("x-request-id", b"abc"),
            ("user-agent", b"grpc-rust/0.12"),
            ("baggage", b"k=v"),
            ("x-latin1", b"caf\xe9"),
            (":path", b"/pkg.Svc/Call"),
        ] {
            assert!(carried_on_copy(name.as_bytes(), value), "{name} must be kept");
        }
        // Trace context is each mirror's choice (`traceContext`), not this rule's.
        for name in TRACE_CONTEXT {
            assert!(carried_on_copy(name, b"x"), "{} is left to the mirror", text(name));
        }
        for name in PEER_METADATA
            .iter()
            .chain(HOP_BY_HOP_AND_FRAMING.iter().filter(|n| **n != b"te"))
        {
            assert!(!carried_on_copy(name, b"x"), "{} must be dropped", text(name));
        }
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
        assert!(is_upgrade(false, true));
        assert!(is_upgrade(true, false));
        assert!(is_upgrade(true, true));
        assert!(!is_upgrade(false, false));
    }
}
