//! Responses to mirror calls as Envoy delivers them: the shadow's own answers
//! (which carry `x-envoy-upstream-service-time`, set by Envoy's router on
//! anything that came from an upstream), Envoy's local replies for delivery
//! failures (which do not), and a call cut off after its answer began (no
//! headers at all).

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
/// Envoy's body for a shadow that closed the connection before answering
/// (measured with Envoy 1.40).
pub const RESET_BEFORE_HEADERS_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
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

    /// The shadow reset or closed the stream before answering: Envoy's local 503.
    pub fn envoy_reset() -> Response {
        Response::envoy_local(503, RESET_BEFORE_HEADERS_BODY)
    }

    /// A gRPC answer from the shadow: HTTP 200, `content-type`, one message
    /// (`message` framed by gRPC's 5-byte prefix), and `trailers`.
    pub fn grpc(content_type: &str, message: &[u8], trailers: &[(&str, &str)]) -> Response {
        let mut body = vec![0u8];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
        Response {
            headers: vec![
                (":status".to_owned(), "200".to_owned()),
                ("content-type".to_owned(), content_type.to_owned()),
                ("x-envoy-upstream-service-time".to_owned(), "2".to_owned()),
            ],
            body,
            trailers: trailers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A trailers-only gRPC answer: the status in the headers, no body.
    pub fn grpc_trailers_only(status: &str) -> Response {
        Response {
            headers: vec![
                (":status".to_owned(), "200".to_owned()),
                ("content-type".to_owned(), "application/grpc".to_owned()),
                ("grpc-status".to_owned(), status.to_owned()),
                ("grpc-message".to_owned(), "from the shadow".to_owned()),
                ("x-envoy-upstream-service-time".to_owned(), "2".to_owned()),
            ],
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// Envoy's own failure reply to a gRPC call: trailers-only, its text in
    /// `grpc-message`, and no `x-envoy-upstream-service-time`.
    pub fn envoy_grpc_local(grpc_status: &str, message: &str) -> Response {
        Response {
            headers: vec![
                (":status".to_owned(), "200".to_owned()),
                ("content-type".to_owned(), "application/grpc".to_owned()),
                ("grpc-status".to_owned(), grpc_status.to_owned()),
                ("grpc-message".to_owned(), message.to_owned()),
            ],
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// The call ends with no headers at all, as Envoy 1.40 reports a call
    /// whose answer had begun and was cut off: the shadow reset mid-answer,
    /// the answer went over `http.async_response_buffer_limit`, or the
    /// timeout passed mid-answer.
    pub fn headerless() -> Response {
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
