//! The mirrored request: the primary's head as captured, and the headers each
//! mirror's copy carries after its policy (remove, add, authority) is applied.

use crate::config::{AuthorityRewrite, MirrorPolicy, TraceContext, LOOP_MARKER_VALUE};
use crate::http::headers::{carried_on_copy, is_trace_context, is_upgrade};
use crate::http::{parse_content_length, HeaderList};

/// Headers a copy's shaping adds in the common case: the loop marker, and
/// an `:authority` when the request had none.
const SHAPING_ROOM: usize = 2;

/// What the copy needs of the primary's request headers, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// Headers any copy may carry (see [`carried_on_copy`]), as bytes, in
    /// order; trace context included (each mirror's `traceContext` decides).
    pub headers: HeaderList,
    /// The declared body length, if any.
    pub content_length: Option<u64>,
    /// A WebSocket/HTTP upgrade or CONNECT: never mirrored.
    pub upgrade: bool,
}

impl RequestHead {
    /// Reads the primary's headers as the host hands them over: bytes,
    /// carried as they are (a latin-1 value reaches the shadow unchanged).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> RequestHead {
        let pairs = pairs.into_iter();
        let mut head = RequestHead {
            // Room for what shaping adds to a typical copy (the loop marker,
            // an `:authority`) without growing the list: a reallocation per
            // copy, between copies' 16 KiB bodies, fragmented the module's
            // heap by 0.9 MiB (tests/harness/memory.rs).
            headers: HeaderList::with_capacity(pairs.size_hint().0 + SHAPING_ROOM),
            ..RequestHead::default()
        };
        let mut method_is_connect = false;
        let mut has_upgrade = false;
        for (name, value) in pairs {
            match name {
                b"content-length" => head.content_length = parse_content_length(value),
                b"upgrade" => has_upgrade = true,
                b":method" => method_is_connect = value == b"CONNECT",
                _ => {}
            }
            if carried_on_copy(name, value) {
                head.headers.push(name, value);
            }
        }
        head.upgrade = is_upgrade(method_is_connect, has_upgrade);
        head
    }
}

/// Request trailers for the copy (HTTP/2 requests may end with them), as
/// bytes.
pub fn copyable_trailers<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> HeaderList {
    pairs.into_iter().collect()
}

/// Applies one mirror's header policy to a copy of the captured headers:
/// its trace context dropped unless the mirror keeps it, `removeHeaders`
/// and the names `addHeaders` replaces in one pass, then `addHeaders`, the
/// loop marker, and the authority. The copy always has an `:authority`:
/// Envoy refuses a call without one, so a request that had none (HTTP/1.0)
/// is sent with the destination's name.
pub fn shape_headers(mut headers: HeaderList, policy: &MirrorPolicy) -> HeaderList {
    let drop_trace = policy.trace_context == TraceContext::Drop;
    if drop_trace || !policy.remove_headers.is_empty() || !policy.add_headers.is_empty() {
        headers.retain(|name, _| {
            let dropped = (drop_trace && is_trace_context(name))
                || policy.remove_headers.iter().any(|r| r.as_bytes() == name)
                || policy.add_headers.iter().any(|(added, _)| added.as_bytes() == name);
            !dropped
        });
    }
    for (name, value) in &policy.add_headers {
        headers.push(name, value);
    }
    if let Some(marker) = &policy.loop_marker {
        headers.push(&**marker, LOOP_MARKER_VALUE);
    }
    let rewritten = match (&policy.authority, headers.get(":authority")) {
        (AuthorityRewrite::Keep, Some(_)) => None,
        (AuthorityRewrite::Replace(new), Some(_)) => Some(new.as_bytes().to_vec()),
        (AuthorityRewrite::Suffix(suffix), Some(authority)) => Some(append_host_suffix(authority, suffix)),
        (AuthorityRewrite::Replace(new), None) => {
            headers.push(":authority", new);
            None
        }
        (_, None) => {
            headers.push(":authority", &policy.destination);
            None
        }
    };
    if let Some(authority) = rewritten {
        headers.set_first(":authority", &authority);
    }
    headers
}

/// Appends `suffix` to the host part of an authority, before any port, as
/// Envoy's mirror does: `api:8080` -> `api-shadow:8080`, `[::1]:80` -> `[::1]-shadow:80`.
/// Bytes: whatever the primary's host was, only the suffix is added.
pub fn append_host_suffix(authority: &[u8], suffix: &str) -> Vec<u8> {
    let host_end = if authority.first() == Some(&b'[') {
        // IPv6 literal: the host ends at the closing bracket.
        authority
            .iter()
            .position(|b| *b == b']')
            .map_or(authority.len(), |i| i + 1)
    } else {
        match authority.iter().rposition(|b| *b == b':') {
            Some(i)
                if authority
                    .get(i + 1..)
                    .is_some_and(|port| port.iter().all(u8::is_ascii_digit)) =>
            {
                i
            }
            _ => authority.len(),
        }
    };
    let (host, port) = authority.split_at(host_end);
    [host, suffix.as_bytes(), port].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::rc::Rc;

    fn policy(mirror_json: &str) -> Rc<MirrorPolicy> {
        policy_in(&format!(r#"{{"forward": {{"mirror": {mirror_json}}}}}"#))
    }

    fn policy_in(plugin_json: &str) -> Rc<MirrorPolicy> {
        let cfg = parse(plugin_json.as_bytes()).unwrap();
        cfg.default_policy.mirrors[0].clone()
    }

    fn pairs(list: &[(&'static str, &'static [u8])]) -> Vec<(&'static [u8], &'static [u8])> {
        list.iter().map(|(n, v)| (n.as_bytes(), *v)).collect()
    }

    fn names(headers: &HeaderList) -> Vec<String> {
        headers
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// The pairs as text (every value in these tests but the latin-1 ones is UTF-8).
    fn text(headers: &HeaderList) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn head_drops_hop_by_hop_keeps_bytes_and_records_framing() {
        let head = RequestHead::from_pairs(pairs(&[
            (":method", b"POST"),
            (":path", b"/a?b=1"),
            (":authority", b"api"),
            ("content-length", b"5"),
            ("transfer-encoding", b"chunked"),
            ("connection", b"keep-alive"),
            ("expect", b"100-continue"),
            ("x-bin", b"\xff\xfe"),
            ("x-latin1", b"caf\xe9"),
            ("x-ok", b"yes"),
        ]));
        assert_eq!(head.content_length, Some(5));
        assert!(!head.upgrade);
        assert_eq!(
            names(&head.headers),
            [":method", ":path", ":authority", "x-bin", "x-latin1", "x-ok"]
        );
        assert_eq!(head.headers.get("x-bin"), Some(&b"\xff\xfe"[..]));
        assert_eq!(head.headers.get("x-latin1"), Some(&b"caf\xe9"[..]));
    }

    #[test]
    fn a_grpc_head_keeps_what_grpc_needs_and_drops_the_peer_and_by_default_the_trace() {
        let head = RequestHead::from_pairs(pairs(&[
            (":method", b"POST"),
            (":path", b"/pkg.Echo/Unary"),
            ("content-type", b"application/grpc"),
            ("te", b"trailers"),
            ("grpc-timeout", b"4S"),
            (
                "traceparent",
                b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("x-b3-traceid", b"80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-envoy-peer-metadata", b"ChwKDkFQUF9DT05UQUlORVJT"),
            ("x-request-id", b"r-1"),
        ]));
        let carried = [":method", ":path", "content-type", "te", "grpc-timeout"];
        assert_eq!(
            names(&head.headers),
            [&carried[..], &["traceparent", "x-b3-traceid", "x-request-id"]].concat()
        );
        let dropped = RequestHead::from_pairs(pairs(&[("te", b"gzip, trailers")]));
        assert!(dropped.headers.is_empty(), "{dropped:?}");

        let marker_off = r#"{"loopMarker": false, "forward": {"mirror": {"destinationId": "shadow"#;
        let by_default = shape_headers(head.headers.clone(), &policy_in(&format!(r#"{marker_off}"}}}}}}"#)));
        assert_eq!(
            names(&by_default),
            [&carried[..], &["x-request-id", ":authority"]].concat()
        );
        let kept = shape_headers(
            head.headers.clone(),
            &policy_in(&format!(r#"{marker_off}", "traceContext": "keep"}}}}}}"#)),
        );
        let mut expected = names(&head.headers);
        expected.push(":authority".to_owned());
        assert_eq!(names(&kept), expected);
        assert_eq!(kept.get("traceparent"), head.headers.get("traceparent"));
    }

    #[test]
    fn upgrades_and_connect_are_flagged() {
        assert!(RequestHead::from_pairs(pairs(&[(":method", b"GET"), ("upgrade", b"websocket")])).upgrade);
        assert!(RequestHead::from_pairs(pairs(&[(":method", b"CONNECT")])).upgrade);
        assert!(!RequestHead::from_pairs(pairs(&[(":method", b"GET")])).upgrade);
    }

    #[test]
    fn policy_removes_adds_marks_and_rewrites_on_the_copy() {
        let p = policy(
            r#"{"destinationId": "shadow", "removeHeaders": ["Authorization", "cookie"],
                "addHeaders": {"X-Mirror": "1", "x-env": "shadow"}, "authority": "api-shadow:9090"}"#,
        );
        let headers = HeaderList::from_iter([
            (":authority", "api:8080"),
            ("authorization", "secret"),
            ("cookie", "a=1"),
            ("x-env", "prod"),
            ("accept", "*/*"),
        ]);
        let shaped = shape_headers(headers, &p);
        assert_eq!(
            text(&shaped),
            owned(&[
                (":authority", "api-shadow:9090"),
                ("accept", "*/*"),
                ("x-mirror", "1"),
                ("x-env", "shadow"),
                ("x-vrata-mirror", "1"),
            ])
        );
    }

    #[test]
    fn the_loop_marker_is_renamed_or_left_out_as_configured() {
        let shaped = |plugin: &str| {
            text(&shape_headers(
                HeaderList::from_iter([(":authority", "api")]),
                &policy_in(plugin),
            ))
        };
        let mirror = r#""forward": {"mirror": {"destinationId": "shadow"}}"#;
        assert_eq!(
            shaped(&format!("{{{mirror}}}")),
            owned(&[(":authority", "api"), ("x-vrata-mirror", "1")])
        );
        assert_eq!(
            shaped(&format!(r#"{{"loopMarker": "X-Shadow-Copy", {mirror}}}"#)),
            owned(&[(":authority", "api"), ("x-shadow-copy", "1")])
        );
        assert_eq!(
            shaped(&format!(r#"{{"loopMarker": false, {mirror}}}"#)),
            owned(&[(":authority", "api")])
        );
    }

    #[test]
    fn missing_authority_is_filled_with_the_destination() {
        let p = policy(r#"{"destinationId": "shadow"}"#);
        let shaped = shape_headers(HeaderList::from_iter([(":path", "/")]), &p);
        assert_eq!(shaped.get(":authority"), Some(&b"shadow"[..]));
    }

    #[test]
    fn host_suffix_goes_before_the_port() {
        let suffixed = |authority: &[u8], suffix: &str| {
            String::from_utf8_lossy(&append_host_suffix(authority, suffix)).into_owned()
        };
        assert_eq!(suffixed(b"api", "-shadow"), "api-shadow");
        assert_eq!(suffixed(b"api:8080", "-shadow"), "api-shadow:8080");
        assert_eq!(suffixed(b"[::1]:8080", "-shadow"), "[::1]-shadow:8080");
        assert_eq!(suffixed(b"[::1]", "-shadow"), "[::1]-shadow");
        assert_eq!(suffixed(b"a:b", "-s"), "a:b-s");
        assert_eq!(append_host_suffix(b"caf\xe9:80", "-s"), b"caf\xe9-s:80");
        let p = policy(r#"{"destinationId": "shadow", "hostSuffix": "-shadow"}"#);
        let shaped = shape_headers(HeaderList::from_iter([(":authority", "api:8080")]), &p);
        assert_eq!(shaped.get(":authority"), Some(&b"api-shadow:8080"[..]));
    }
}
