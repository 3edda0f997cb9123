//! The mirrored request: the primary's head as captured, and the headers each
//! mirror's copy carries after its policy (remove, add, authority) is applied.

use crate::config::{AuthorityRewrite, MirrorPolicy};
use crate::http::headers::{carried_on_copy, is_upgrade};
use crate::http::{parse_content_length, HeaderList};

/// What the copy needs of the primary's request headers, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// Headers any copy may carry (see [`carried_on_copy`]), UTF-8, in order.
    pub headers: HeaderList,
    /// The declared body length, if any.
    pub content_length: Option<u64>,
    /// A WebSocket/HTTP upgrade or CONNECT: never mirrored.
    pub upgrade: bool,
}

impl RequestHead {
    /// Reads the primary's headers as the host hands them over (bytes).
    /// A name or value that is not UTF-8 cannot be sent with the SDK's
    /// `dispatch_http_call`, so that header is left out of the copy.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> RequestHead {
        let pairs = pairs.into_iter();
        let mut head = RequestHead {
            headers: HeaderList::with_capacity(pairs.size_hint().0),
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
            if let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
                if carried_on_copy(name, value) {
                    head.headers.push(name, value);
                }
            }
        }
        head.upgrade = is_upgrade(method_is_connect, has_upgrade);
        head
    }
}

/// Request trailers for the copy (HTTP/2 requests may end with them).
pub fn copyable_trailers<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                std::str::from_utf8(name).ok()?.to_owned(),
                std::str::from_utf8(value).ok()?.to_owned(),
            ))
        })
        .collect()
}

/// Applies one mirror's header policy to a copy of the captured headers.
/// The copy always has an `:authority`: Envoy refuses a call without one, so
/// a request that had none (HTTP/1.0) is sent with the destination's name.
pub fn shape_headers(mut headers: HeaderList, policy: &MirrorPolicy) -> HeaderList {
    if !policy.remove_headers.is_empty() {
        headers.retain(|name, _| !policy.remove_headers.iter().any(|r| r == name));
    }
    if !policy.add_headers.is_empty() {
        headers.retain(|name, _| !policy.add_headers.iter().any(|(added, _)| added == name));
        for (name, value) in &policy.add_headers {
            headers.push(name, value);
        }
    }
    let rewritten = match (&policy.authority, headers.get(":authority")) {
        (AuthorityRewrite::Keep, Some(_)) => None,
        (AuthorityRewrite::Replace(new), Some(_)) => Some(new.clone()),
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
pub fn append_host_suffix(authority: &str, suffix: &str) -> String {
    let host_end = if authority.starts_with('[') {
        // IPv6 literal: the host ends at the closing bracket.
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        match authority.rfind(':') {
            Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => i,
            _ => authority.len(),
        }
    };
    let (host, port) = authority.split_at(host_end);
    format!("{host}{suffix}{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::rc::Rc;

    fn policy(mirror_json: &str) -> Rc<MirrorPolicy> {
        let cfg = parse(format!(r#"{{"forward": {{"mirror": {mirror_json}}}}}"#).as_bytes()).unwrap();
        cfg.default_policy.mirrors[0].clone()
    }

    fn pairs(list: &[(&'static str, &'static [u8])]) -> Vec<(&'static [u8], &'static [u8])> {
        list.iter().map(|(n, v)| (n.as_bytes(), *v)).collect()
    }

    #[test]
    fn head_drops_hop_by_hop_and_non_utf8_and_records_framing() {
        let head = RequestHead::from_pairs(pairs(&[
            (":method", b"POST"),
            (":path", b"/a?b=1"),
            (":authority", b"api"),
            ("content-length", b"5"),
            ("transfer-encoding", b"chunked"),
            ("connection", b"keep-alive"),
            ("expect", b"100-continue"),
            ("x-bin", b"\xff\xfe"),
            ("x-ok", b"yes"),
        ]));
        assert_eq!(head.content_length, Some(5));
        assert!(!head.upgrade);
        let names: Vec<&str> = head.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [":method", ":path", ":authority", "x-ok"]);
    }

    #[test]
    fn a_grpc_head_keeps_what_grpc_needs_and_drops_the_trace() {
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
        let names: Vec<&str> = head.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [":method", ":path", "content-type", "te", "grpc-timeout", "x-request-id"]
        );
        let dropped = RequestHead::from_pairs(pairs(&[("te", b"gzip, trailers")]));
        assert!(dropped.headers.is_empty(), "{dropped:?}");
    }

    #[test]
    fn upgrades_and_connect_are_flagged() {
        assert!(RequestHead::from_pairs(pairs(&[(":method", b"GET"), ("upgrade", b"websocket")])).upgrade);
        assert!(RequestHead::from_pairs(pairs(&[(":method", b"CONNECT")])).upgrade);
        assert!(!RequestHead::from_pairs(pairs(&[(":method", b"GET")])).upgrade);
    }

    #[test]
    fn policy_removes_adds_and_rewrites_on_the_copy() {
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
            shaped.iter().collect::<Vec<_>>(),
            [
                (":authority", "api-shadow:9090"),
                ("accept", "*/*"),
                ("x-mirror", "1"),
                ("x-env", "shadow"),
            ]
        );
    }

    #[test]
    fn missing_authority_is_filled_with_the_destination() {
        let p = policy(r#"{"destinationId": "shadow"}"#);
        let shaped = shape_headers(HeaderList::from_iter([(":path", "/")]), &p);
        assert_eq!(shaped.get(":authority"), Some("shadow"));
    }

    #[test]
    fn host_suffix_goes_before_the_port() {
        assert_eq!(append_host_suffix("api", "-shadow"), "api-shadow");
        assert_eq!(append_host_suffix("api:8080", "-shadow"), "api-shadow:8080");
        assert_eq!(append_host_suffix("[::1]:8080", "-shadow"), "[::1]-shadow:8080");
        assert_eq!(append_host_suffix("[::1]", "-shadow"), "[::1]-shadow");
        assert_eq!(append_host_suffix("a:b", "-s"), "a:b-s");
        let p = policy(r#"{"destinationId": "shadow", "hostSuffix": "-shadow"}"#);
        let shaped = shape_headers(HeaderList::from_iter([(":authority", "api:8080")]), &p);
        assert_eq!(shaped.iter().collect::<Vec<_>>(), [(":authority", "api-shadow:8080")]);
    }
}
