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
/// request (counted with wasmtime's fuel).
macro_rules! header_names {
    ($(#[$doc:meta])* $list:ident, $is:ident, [$($name:literal),+ $(,)?]) => {
        $(#[$doc])*
        pub const $list: &[&str] = &[$($name),+];

        #[doc = concat!("Whether `name` (lower case) is on [`", stringify!($list), "`].")]
        pub fn $is(name: &str) -> bool {
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
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "expect",
    ]
);

header_names!(
    /// Trace context: the copy is not part of the primary's trace. Carried
    /// over, the shadow's spans would join the primary's trace as if they were
    /// the primary's own calls (a shadow's errors showing up in production
    /// traces). Without them the shadow starts a trace of its own;
    /// `x-request-id`, which the copy keeps, links the two in the logs.
    TRACE_CONTEXT,
    is_trace_context,
    [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
        "x-ot-span-context",
        "uber-trace-id",
        "grpc-trace-bin",
        "x-cloud-trace-context",
        "x-datadog-trace-id",
        "x-datadog-parent-id",
    ]
);

header_names!(
    /// Istio's metadata exchange: who the downstream peer is. The copy is sent
    /// by this proxy, not by that peer; carried over, the shadow's sidecar would
    /// attribute the copy to the original caller in its telemetry.
    PEER_METADATA,
    is_peer_metadata,
    ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"]
);

/// Whether the copy carries the primary's header `name: value`.
///
/// Pseudo-headers (`:method`, `:path`, ...) always: they are the request.
/// `te` is hop-by-hop, but `te: trailers` is the one value HTTP/2 allows and
/// gRPC requires: grpc-core servers cancel a call without it ("Missing :te
/// header"). Envoy's codecs keep exactly that value and drop any other, and
/// so does the copy.
pub fn carried_on_copy(name: &str, value: &str) -> bool {
    if name.starts_with(':') {
        return true;
    }
    if name == "te" {
        return value.trim().eq_ignore_ascii_case("trailers");
    }
    !is_framing_or_hop_by_hop(name) && !is_trace_context(name) && !is_peer_metadata(name)
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

    #[test]
    fn framing_and_hop_by_hop_headers_are_recognised() {
        for name in HOP_BY_HOP_AND_FRAMING {
            assert!(is_framing_or_hop_by_hop(name), "{name}");
        }
        assert!(!is_framing_or_hop_by_hop("content-type"));
        assert!(!is_framing_or_hop_by_hop("x-request-id"));
    }

    #[test]
    fn each_list_and_its_function_agree() {
        let near_misses = [
            "x-b3-flagz",
            "tracestatf",
            "content-lengt",
            "expects",
            "x-envoy-peer",
            "b4",
            "",
        ];
        let all = || HOP_BY_HOP_AND_FRAMING.iter().chain(TRACE_CONTEXT).chain(PEER_METADATA);
        for name in all().copied().chain(near_misses) {
            assert_eq!(
                is_framing_or_hop_by_hop(name),
                HOP_BY_HOP_AND_FRAMING.contains(&name),
                "{name}"
            );
            assert_eq!(is_trace_context(name), TRACE_CONTEXT.contains(&name), "{name}");
            assert_eq!(is_peer_metadata(name), PEER_METADATA.contains(&name), "{name}");
        }
        for name in near_misses.into_iter().filter(|n| !n.is_empty()) {
            assert!(carried_on_copy(name, "x"), "{name} is on no list");
        }
    }

    #[test]
    fn pseudo_headers_are_always_carried() {
        for name in [":method", ":path", ":authority", ":scheme", ":protocol"] {
            assert!(carried_on_copy(name, "x"), "{name}");
        }
    }

    #[test]
    fn te_trailers_is_carried_and_nothing_else_of_te() {
        assert!(carried_on_copy("te", "trailers"));
        assert!(carried_on_copy("te", " Trailers "));
        assert!(!carried_on_copy("te", "gzip"));
        assert!(!carried_on_copy("te", "trailers, deflate"));
        assert!(!carried_on_copy("te", ""));
    }

    #[test]
    fn what_the_copy_keeps_and_drops() {
        for (name, value) in [
            ("content-type", "application/grpc"),
            ("grpc-timeout", "5S"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "gzip"),
            ("x-grpc-web", "1"),
            ("x-request-id", "abc"),
            ("user-agent", "grpc-rust/0.12"),
            ("baggage", "k=v"),
            (":path", "/pkg.Svc/Call"),
        ] {
            assert!(carried_on_copy(name, value), "{name} must be kept");
        }
        for name in TRACE_CONTEXT
            .iter()
            .chain(PEER_METADATA)
            .chain(HOP_BY_HOP_AND_FRAMING.iter().filter(|n| **n != "te"))
        {
            assert!(!carried_on_copy(name, "x"), "{name} must be dropped");
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
