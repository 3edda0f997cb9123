//! Responses to mirror calls as Envoy delivers them: the shadow's own answers
//! (which carry `x-envoy-upstream-service-time`, set by Envoy's router on
//! anything that came from an upstream), Envoy's local replies for delivery
//! failures (which do not), and a reset (no headers at all).

/// What `proxy_on_http_call_response` delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

/// Envoy's body for a refused connection (measured with Envoy 1.40).
pub const CONNECT_FAILURE_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
/// Envoy's body when a call outlives its timeout.
pub const TIMEOUT_BODY: &str = "upstream request timeout";

impl Response {
    /// The shadow answered with `status` and an empty body.
    pub fn from_shadow(status: u16) -> Response {
        Response {
            headers: vec![
                (":status".to_owned(), status.to_string()),
                ("content-length".to_owned(), "0".to_owned()),
                ("x-envoy-upstream-service-time".to_owned(), "3".to_owned()),
            ],
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// The shadow answered with `status` and this body.
    pub fn from_shadow_with_body(status: u16, body: &str) -> Response {
        let mut response = Response::from_shadow(status);
        set(&mut response.headers, "content-length", &body.len().to_string());
        response.body = body.as_bytes().to_vec();
        response
    }

    /// A reply Envoy made up itself, as its router sends them: no
    /// `x-envoy-upstream-service-time`.
    pub fn envoy_local(status: u16, body: &str) -> Response {
        Response {
            headers: vec![
                (":status".to_owned(), status.to_string()),
                ("content-length".to_owned(), body.len().to_string()),
                ("content-type".to_owned(), "text/plain".to_owned()),
            ],
            body: body.as_bytes().to_vec(),
            trailers: Vec::new(),
        }
    }

    /// The call outlived its timeout: Envoy's local 504.
    pub fn envoy_timeout() -> Response {
        Response::envoy_local(504, TIMEOUT_BODY)
    }

    /// The shadow refused the connection: Envoy's local 503.
    pub fn envoy_connect_failure() -> Response {
        Response::envoy_local(503, CONNECT_FAILURE_BODY)
    }

    /// The stream was reset: the call ends with no headers at all.
    pub fn reset() -> Response {
        Response {
            headers: Vec::new(),
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }
}

impl From<u16> for Response {
    fn from(status: u16) -> Response {
        Response::from_shadow(status)
    }
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (n, v) in headers.iter_mut() {
        if n == name {
            *v = value.to_owned();
        }
    }
}
