//! The mismatch log line, logfmt-style so that it reads and greps well:
//!
//! ```text
//! vrata-mirror: compare mismatch route=api destination=canary method=GET path=/v1/items request_id=5f1e primary=200 shadow=500 differs=status
//! vrata-mirror: compare mismatch route=api destination=canary method=POST path=/v1/cart request_id=- primary=200 shadow=200 differs=body json_path=items[3].price what=value
//! vrata-mirror: compare mismatch route=api destination=canary method=GET path=/v1/logo request_id=a1 primary=200 shadow=200 differs=body byte=17 primary_bytes=120 shadow_bytes=118 not_logged=4
//! ```
//!
//! Every value comes from the request or the configuration, so none may
//! break the line: a value of plain printable ASCII (no space, `"`, `\` or
//! `=`) is written bare; any other is written in double quotes, with `"`,
//! `\`, control characters (C0, DEL, C1: CR, LF, NEL...), the Unicode line
//! and paragraph separators and the bidirectional controls escaped as
//! `\"`, `\\`, `\n`, `\r`, `\t` or `\uXXXX`. Values are cut to a length
//! (`...` marks the cut), so a 60 KB path cannot flood the log.
//! `path` is the request's `:path` without its query (which often carries
//! personal data); `request_id` is `-` when the request has no `x-request-id`.
//! `not_logged` (only when not 0) counts the mismatch lines the limiter held
//! back since the previous line.

use super::{BodyDifference, Outcome, Status};
use std::fmt::Write;

/// Longest route, destination, method or request id written, in characters.
const MAX_NAME_CHARS: usize = 128;
/// Longest path or JSON path written, in characters.
const MAX_PATH_CHARS: usize = 256;

/// What the mismatch line says about one compared pair.
#[derive(Debug, Clone, Copy)]
pub struct MismatchLine<'a> {
    /// The route's label (`telemetry::names::route_label`).
    pub route: &'a str,
    pub destination: &'a str,
    pub method: &'a str,
    /// The request's `:path`; the query is cut here.
    pub path: &'a str,
    /// `x-request-id`, if the request has one.
    pub request_id: Option<&'a str>,
    pub primary: Status,
    pub shadow: Status,
    pub outcome: &'a Outcome,
    /// Lines the limiter held back since the previous one (`LogLimiter::admit`).
    pub not_logged: u64,
}

impl MismatchLine<'_> {
    /// The line, without a trailing newline.
    pub fn render(&self) -> String {
        let mut line = String::with_capacity(160 + self.path.len().min(MAX_PATH_CHARS));
        line.push_str("vrata-mirror: compare mismatch");
        field(&mut line, "route", self.route, MAX_NAME_CHARS);
        field(&mut line, "destination", self.destination, MAX_NAME_CHARS);
        field(&mut line, "method", self.method, MAX_NAME_CHARS);
        let path = self.path.split('?').next().unwrap_or_default();
        field(&mut line, "path", path, MAX_PATH_CHARS);
        let request_id = self.request_id.filter(|id| !id.is_empty()).unwrap_or("-");
        field(&mut line, "request_id", request_id, MAX_NAME_CHARS);
        let _ = write!(line, " primary={} shadow={}", self.primary, self.shadow);
        match self.outcome {
            Outcome::StatusMismatch => line.push_str(" differs=status"),
            Outcome::BodyMismatch(BodyDifference::Json(difference)) => {
                line.push_str(" differs=body");
                field(&mut line, "json_path", &difference.path, MAX_PATH_CHARS);
                line.push_str(" what=");
                line.push_str(difference.kind.label());
            }
            Outcome::BodyMismatch(BodyDifference::Bytes {
                offset,
                primary_len,
                shadow_len,
            }) => {
                let _ = write!(
                    line,
                    " differs=body byte={offset} primary_bytes={primary_len} shadow_bytes={shadow_len}"
                );
            }
            Outcome::Match | Outcome::NotCompared(_) => {
                line.push_str(" differs=nothing result=");
                line.push_str(self.outcome.label());
            }
        }
        if self.not_logged > 0 {
            let _ = write!(line, " not_logged={}", self.not_logged);
        }
        line
    }
}

/// ` key=value`, the value bare or quoted (see the module documentation).
fn field(line: &mut String, key: &str, value: &str, max_chars: usize) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    let (shown, cut) = match value.char_indices().nth(max_chars) {
        Some((end, _)) => (value.get(..end).unwrap_or_default(), true),
        None => (value, false),
    };
    let bare = !shown.is_empty()
        && shown
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='));
    if bare {
        line.push_str(shown);
    } else {
        line.push('"');
        for c in shown.chars() {
            match c {
                '"' => line.push_str("\\\""),
                '\\' => line.push_str("\\\\"),
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                '\t' => line.push_str("\\t"),
                c if needs_escape(c) => {
                    let _ = write!(line, "\\u{:04x}", u32::from(c));
                }
                c => line.push(c),
            }
        }
        if cut {
            line.push_str("...");
        }
        line.push('"');
        return;
    }
    if cut {
        line.push_str("...");
    }
}

/// Characters that could end, split or visually reorder a log line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{JsonDifference, JsonDifferenceKind, NotCompared, Side};
    use crate::http::grpc::GrpcCode;

    fn line<'a>(outcome: &'a Outcome) -> MismatchLine<'a> {
        MismatchLine {
            route: "api",
            destination: "canary",
            method: "GET",
            path: "/v1/items?user=alice&token=secret",
            request_id: Some("5f1e-77"),
            primary: Status::Http(200),
            shadow: Status::Http(500),
            outcome,
            not_logged: 0,
        }
    }

    #[test]
    fn a_status_mismatch() {
        assert_eq!(
            line(&Outcome::StatusMismatch).render(),
            "vrata-mirror: compare mismatch route=api destination=canary method=GET path=/v1/items \
             request_id=5f1e-77 primary=200 shadow=500 differs=status"
        );
    }

    #[test]
    fn a_grpc_status_mismatch() {
        let outcome = Outcome::StatusMismatch;
        let mut grpc = line(&outcome);
        grpc.method = "POST";
        grpc.path = "/shop.Cart/Get";
        grpc.primary = Status::Grpc(Some(GrpcCode::Ok));
        grpc.shadow = Status::Grpc(None);
        assert!(grpc.render().ends_with(
            "path=/shop.Cart/Get request_id=5f1e-77 primary=grpc_ok shadow=grpc_missing_status differs=status"
        ));
    }

    #[test]
    fn body_mismatches_say_where() {
        let json = Outcome::BodyMismatch(BodyDifference::Json(JsonDifference {
            path: "items[3].price".to_owned(),
            kind: JsonDifferenceKind::Value,
        }));
        let mut same_status = line(&json);
        same_status.shadow = Status::Http(200);
        same_status.not_logged = 4;
        assert!(
            same_status
                .render()
                .ends_with("primary=200 shadow=200 differs=body json_path=items[3].price what=value not_logged=4"),
            "{}",
            same_status.render()
        );

        let quoted = Outcome::BodyMismatch(BodyDifference::Json(JsonDifference {
            path: r#"meta["a.b"]"#.to_owned(),
            kind: JsonDifferenceKind::OnlyInShadow,
        }));
        assert!(line(&quoted)
            .render()
            .ends_with(r#"json_path="meta[\"a.b\"]" what=only_in_shadow"#));

        let bytes = Outcome::BodyMismatch(BodyDifference::Bytes {
            offset: 17,
            primary_len: 120,
            shadow_len: 118,
        });
        assert!(line(&bytes)
            .render()
            .ends_with("differs=body byte=17 primary_bytes=120 shadow_bytes=118"));
    }

    #[test]
    fn not_mismatches_still_render_honestly() {
        let outcome = Outcome::NotCompared(NotCompared::BodyTooLarge(Side::Shadow));
        assert!(line(&outcome).render().ends_with("differs=nothing result=not_compared"));
    }

    #[test]
    fn missing_or_empty_request_ids_are_a_dash() {
        let outcome = Outcome::StatusMismatch;
        for id in [None, Some("")] {
            let mut l = line(&outcome);
            l.request_id = id;
            assert!(l.render().contains(" request_id=- "), "{}", l.render());
        }
    }

    #[test]
    fn values_cannot_break_or_forge_the_line() {
        let outcome = Outcome::StatusMismatch;
        let mut evil = line(&outcome);
        evil.route = "api\n[critical] forged route=x";
        evil.destination = "a b";
        evil.method = "G\"ET\\";
        evil.path = "/a\r\nb\u{2028}c\u{202e}d\u{85}e\u{7f}?q=\n";
        evil.request_id = Some("id=1\tx\u{0}");
        let rendered = evil.render();
        assert_eq!(rendered.lines().count(), 1, "{rendered}");
        assert!(!rendered.chars().any(needs_escape), "{rendered:?}");
        assert!(
            rendered.contains(r#" route="api\n[critical] forged route=x" "#),
            "{rendered}"
        );
        assert!(rendered.contains(r#" destination="a b" "#), "{rendered}");
        assert!(rendered.contains(r#" method="G\"ET\\" "#), "{rendered}");
        assert!(
            rendered.contains(r#" path="/a\r\nb\u2028c\u202ed\u0085e\u007f" "#),
            "{rendered}"
        );
        assert!(rendered.contains(r#" request_id="id=1\tx\u0000" "#), "{rendered}");
    }

    #[test]
    fn long_values_are_cut() {
        let outcome = Outcome::StatusMismatch;
        let long_path = format!("/{}", "a".repeat(10_000));
        let long_id = "é".repeat(1_000);
        let mut long = line(&outcome);
        long.path = &long_path;
        long.request_id = Some(&long_id);
        let rendered = long.render();
        assert!(
            rendered.contains(&format!(" path=/{}... ", "a".repeat(MAX_PATH_CHARS - 1))),
            "{rendered}"
        );
        assert!(
            rendered.contains(&format!(" request_id=\"{}...\" ", "é".repeat(MAX_NAME_CHARS))),
            "{rendered}"
        );
        assert!(rendered.len() < 1_000);
    }

    #[test]
    fn only_the_query_is_cut_from_the_path() {
        let outcome = Outcome::StatusMismatch;
        let mut l = line(&outcome);
        for (path, shown) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a?", "/a"),
            ("?x", "\"\""),
            ("/a;b=c?d", "\"/a;b=c\""),
        ] {
            l.path = path;
            assert!(
                l.render().contains(&format!(" path={shown} ")),
                "{path}: {}",
                l.render()
            );
        }
    }
}
