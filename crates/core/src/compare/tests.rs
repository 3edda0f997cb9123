use super::*;
use proptest::prelude::*;

fn policy(body: BodyComparison) -> ComparePolicy {
    ComparePolicy {
        body,
        ignore_fields: Vec::new(),
        max_body_bytes: crate::config::DEFAULT_COMPARE_MAX_BODY_BYTES,
        log_mismatches: 10,
        noise: None,
    }
}

fn http(status: u16, body: &[u8]) -> Observed<'_> {
    Observed {
        status: Status::Http(status),
        body: Body::Bytes(body),
    }
}

#[test]
fn verdict_labels() {
    let labels: Vec<_> = Verdict::ALL.iter().map(|v| v.label()).collect();
    assert_eq!(labels, ["match", "status_mismatch", "body_mismatch", "not_compared"]);
    for (i, verdict) in Verdict::ALL.iter().enumerate() {
        assert_eq!(verdict.index(), i);
    }
    assert_eq!(Outcome::StatusMismatch.label(), "status_mismatch");
    assert!(Outcome::StatusMismatch.is_mismatch());
    assert!(!Outcome::Match.is_mismatch());
    assert!(!Outcome::NotCompared(NotCompared::NoAnswer(Side::Shadow)).is_mismatch());
}

#[test]
fn statuses_come_from_the_class() {
    assert_eq!(Status::from_class(Some(201), ResponseClass::Success), Status::Http(201));
    assert_eq!(
        Status::from_class(Some(503), ResponseClass::ServerError),
        Status::Http(503)
    );
    assert_eq!(
        Status::from_class(Some(200), ResponseClass::Grpc(GrpcCode::NotFound)),
        Status::Grpc(Some(GrpcCode::NotFound))
    );
    assert_eq!(
        Status::from_class(Some(200), ResponseClass::GrpcMissingStatus),
        Status::Grpc(None)
    );
    assert_eq!(
        Status::from_class(Some(504), ResponseClass::Timeout),
        Status::NoAnswer(ResponseClass::Timeout)
    );
    assert_eq!(
        Status::from_class(None, ResponseClass::Reset),
        Status::NoAnswer(ResponseClass::Reset)
    );
    // An answer Envoy cut off at http.async_response_buffer_limit: nothing
    // of it reached the filter, not even its status.
    assert_eq!(
        Status::from_class(None, ResponseClass::TooLargeOrReset),
        Status::NoAnswer(ResponseClass::TooLargeOrReset)
    );
    assert_eq!(
        Status::from_class(None, ResponseClass::Success),
        Status::NoAnswer(ResponseClass::Reset)
    );
    let shown: Vec<String> = [
        Status::Http(404),
        Status::Grpc(Some(GrpcCode::Unavailable)),
        Status::Grpc(None),
        Status::NoAnswer(ResponseClass::ConnectFailure),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        shown,
        ["404", "grpc_unavailable", "grpc_missing_status", "connect_failure"]
    );
}

#[test]
fn the_status_is_compared_first() {
    let json = policy(BodyComparison::Json);
    assert_eq!(compare(http(200, b"{}"), http(200, b"{}"), &json), Outcome::Match);
    assert_eq!(
        compare(http(200, b"{}"), http(201, b"{}"), &json),
        Outcome::StatusMismatch
    );
    // A status mismatch is reported even when the bodies could not be compared.
    let too_large = Observed {
        status: Status::Http(500),
        body: Body::TooLarge,
    };
    assert_eq!(compare(http(200, b"{}"), too_large, &json), Outcome::StatusMismatch);
}

#[test]
fn grpc_answers_compare_their_grpc_status() {
    let grpc = |code: Option<GrpcCode>| Observed {
        status: Status::Grpc(code),
        body: Body::Unavailable,
    };
    let none = policy(BodyComparison::None);
    assert_eq!(
        compare(grpc(Some(GrpcCode::Ok)), grpc(Some(GrpcCode::Ok)), &none),
        Outcome::Match
    );
    assert_eq!(
        compare(grpc(Some(GrpcCode::Ok)), grpc(Some(GrpcCode::NotFound)), &none),
        Outcome::StatusMismatch
    );
    assert_eq!(
        compare(grpc(Some(GrpcCode::Ok)), grpc(None), &none),
        Outcome::StatusMismatch
    );
    // A gRPC call the canary answers with a plain HTTP 200 (say, an HTML page) differs.
    assert_eq!(
        compare(grpc(Some(GrpcCode::Ok)), http(200, b""), &none),
        Outcome::StatusMismatch
    );
    // Same grpc-status, different messages: compared as bytes (protobuf is not JSON).
    let with_body = |body: &'static [u8]| Observed {
        status: Status::Grpc(Some(GrpcCode::Ok)),
        body: Body::Bytes(body),
    };
    assert!(matches!(
        compare(
            with_body(b"\0\0\0\0\x02\x08\x01"),
            with_body(b"\0\0\0\0\x02\x08\x02"),
            &policy(BodyComparison::Json)
        ),
        Outcome::BodyMismatch(BodyDifference::Bytes { offset: 6, .. })
    ));
}

#[test]
fn no_answer_is_not_compared() {
    let none = policy(BodyComparison::None);
    let timeout = Observed {
        status: Status::NoAnswer(ResponseClass::Timeout),
        body: Body::Unavailable,
    };
    assert_eq!(
        compare(http(200, b""), timeout, &none),
        Outcome::NotCompared(NotCompared::NoAnswer(Side::Shadow))
    );
    assert_eq!(
        compare(timeout, http(200, b""), &none),
        Outcome::NotCompared(NotCompared::NoAnswer(Side::Primary))
    );
}

#[test]
fn body_none_compares_the_status_only() {
    let none = policy(BodyComparison::None);
    assert_eq!(compare(http(200, b"a"), http(200, b"b"), &none), Outcome::Match);
    let unavailable = Observed {
        status: Status::Http(200),
        body: Body::Unavailable,
    };
    assert_eq!(compare(unavailable, unavailable, &none), Outcome::Match);
    let huge = vec![0u8; 1_000_000];
    assert_eq!(compare(http(200, &huge), http(200, b""), &none), Outcome::Match);
}

#[test]
fn bodies_over_the_cap_or_missing_are_not_compared() {
    let mut exact = policy(BodyComparison::Exact);
    exact.max_body_bytes = 4;
    assert_eq!(compare(http(200, b"abcd"), http(200, b"abcd"), &exact), Outcome::Match);
    assert_eq!(
        compare(http(200, b"abcde"), http(200, b"abcde"), &exact),
        Outcome::NotCompared(NotCompared::BodyTooLarge(Side::Primary))
    );
    assert_eq!(
        compare(http(200, b"abcd"), http(200, b"abcde"), &exact),
        Outcome::NotCompared(NotCompared::BodyTooLarge(Side::Shadow))
    );
    let too_large = Observed {
        status: Status::Http(200),
        body: Body::TooLarge,
    };
    assert_eq!(
        compare(too_large, http(200, b""), &exact),
        Outcome::NotCompared(NotCompared::BodyTooLarge(Side::Primary))
    );
    let unavailable = Observed {
        status: Status::Http(200),
        body: Body::Unavailable,
    };
    assert_eq!(
        compare(http(200, b""), unavailable, &exact),
        Outcome::NotCompared(NotCompared::BodyUnavailable(Side::Shadow))
    );
    exact.max_body_bytes = 0;
    assert_eq!(compare(http(204, b""), http(204, b""), &exact), Outcome::Match);
    assert_eq!(
        compare(http(200, b"x"), http(200, b""), &exact),
        Outcome::NotCompared(NotCompared::BodyTooLarge(Side::Primary))
    );
}

#[test]
fn exact_bodies_report_the_first_differing_byte() {
    let exact = policy(BodyComparison::Exact);
    assert_eq!(
        compare(http(200, b"hello"), http(200, b"hello"), &exact),
        Outcome::Match
    );
    let bytes = |offset, primary_len, shadow_len| {
        Outcome::BodyMismatch(BodyDifference::Bytes {
            offset,
            primary_len,
            shadow_len,
        })
    };
    assert_eq!(
        compare(http(200, b"hello"), http(200, b"help!"), &exact),
        bytes(3, 5, 5)
    );
    assert_eq!(
        compare(http(200, b"hello"), http(200, b"hello!"), &exact),
        bytes(5, 5, 6)
    );
    assert_eq!(compare(http(200, b""), http(200, b"x"), &exact), bytes(0, 0, 1));
    // "exact" means bytes: reordered JSON keys differ.
    assert_eq!(
        compare(http(200, br#"{"a":1,"b":2}"#), http(200, br#"{"b":2,"a":1}"#), &exact),
        bytes(2, 13, 13)
    );
}

#[test]
fn json_bodies_compare_structurally() {
    let mut json = policy(BodyComparison::Json);
    json.ignore_fields = vec!["timestamp".to_owned(), "requestId".to_owned()];
    let primary = br#"{"items":[{"id":1,"price":10,"timestamp":1},{"id":2,"price":20}],"requestId":"a"}"#;
    let same =
        br#"{ "requestId": "b", "items": [ {"price": 10, "id": 1, "timestamp": 2}, {"id": 2, "price": 20.0} ] }"#;
    assert_eq!(compare(http(200, primary), http(200, same), &json), Outcome::Match);
    let cheaper = br#"{"items":[{"id":1,"price":10},{"id":2,"price":19}]}"#;
    assert_eq!(
        compare(http(200, primary), http(200, cheaper), &json),
        Outcome::BodyMismatch(BodyDifference::Json(JsonDifference {
            path: "items[1].price".to_owned(),
            kind: JsonDifferenceKind::Value,
        }))
    );
}

#[test]
fn bodies_that_are_not_json_fall_back_to_bytes() {
    let json = policy(BodyComparison::Json);
    assert_eq!(
        compare(http(200, b"<html>"), http(200, b"<html>"), &json),
        Outcome::Match
    );
    assert_eq!(
        compare(http(200, b"<html>a"), http(200, b"<html>b"), &json),
        Outcome::BodyMismatch(BodyDifference::Bytes {
            offset: 6,
            primary_len: 7,
            shadow_len: 7
        })
    );
    // One side JSON, the other not.
    assert!(matches!(
        compare(http(200, b"{}"), http(200, b"oops"), &json),
        Outcome::BodyMismatch(BodyDifference::Bytes { offset: 0, .. })
    ));
    // Duplicate keys: which value counts is up to the reader, so bytes decide.
    assert!(matches!(
        compare(http(200, br#"{"a":1,"a":2}"#), http(200, br#"{"a":2}"#), &json),
        Outcome::BodyMismatch(BodyDifference::Bytes { .. })
    ));
    // Too deep for the parser: bytes, and no crash.
    let deep = |leaf: &str| format!("{}{leaf}{}", "[".repeat(5_000), "]".repeat(5_000));
    let (a, b) = (deep("1"), deep("2"));
    assert!(matches!(
        compare(http(200, a.as_bytes()), http(200, b.as_bytes()), &json),
        Outcome::BodyMismatch(BodyDifference::Bytes { offset: 5_000, .. })
    ));
    assert_eq!(
        compare(http(200, a.as_bytes()), http(200, a.as_bytes()), &json),
        Outcome::Match
    );
}

// ---- Properties over generated JSON documents ----

/// A generated JSON document: objects keep their members in a chosen
/// order so that they can be written in another.
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

const IGNORED: &str = "ts";

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        any::<i64>().prop_map(Doc::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Doc::Float),
        "[a-z \"\\\\\n\u{e9}\u{2028}]{0,6}".prop_map(Doc::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Doc::Arr),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Doc::Obj(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,3}",
        1 => prop::sample::select(vec!["a.b", "", "x y", "$", "k-1", "\u{e9}", "q\"", "n\n"]).prop_map(str::to_owned),
    ]
}

/// How a document is written: the same value either way.
#[derive(Debug, Clone, Copy)]
struct Style {
    reverse_keys: bool,
    spaced: bool,
}

const COMPACT: Style = Style {
    reverse_keys: false,
    spaced: false,
};
const SHUFFLED: Style = Style {
    reverse_keys: true,
    spaced: true,
};

fn write(doc: &Doc, style: Style, out: &mut String) {
    let sep = if style.spaced { " , " } else { "," };
    match doc {
        Doc::Null => out.push_str("null"),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(n) => out.push_str(&n.to_string()),
        Doc::Float(f) => out.push_str(&serde_json::to_string(f).unwrap()),
        Doc::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
        Doc::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                write(item, style, out);
            }
            out.push(']');
        }
        Doc::Obj(members) => {
            out.push('{');
            let mut order: Vec<&(String, Doc)> = members.iter().collect();
            if style.reverse_keys {
                order.reverse();
            }
            for (i, (k, v)) in order.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(if style.spaced { " : " } else { ":" });
                write(v, style, out);
            }
            out.push('}');
        }
    }
}

fn text(doc: &Doc, style: Style) -> String {
    let mut out = String::new();
    write(doc, style, &mut out);
    out
}

fn json_compare(primary: &str, shadow: &str, ignore: &[&str]) -> Outcome {
    let mut json = policy(BodyComparison::Json);
    json.max_body_bytes = usize::MAX;
    json.ignore_fields = ignore.iter().map(|f| (*f).to_owned()).collect();
    compare(http(200, primary.as_bytes()), http(200, shadow.as_bytes()), &json)
}

/// Every node's path, as steps (Ok: key, Err: index).
fn node_paths(doc: &Doc, at: &mut Vec<Result<String, usize>>, all: &mut Vec<Vec<Result<String, usize>>>) {
    all.push(at.clone());
    match doc {
        Doc::Arr(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Err(i));
                node_paths(item, at, all);
                at.pop();
            }
        }
        Doc::Obj(members) => {
            for (k, v) in members {
                at.push(Ok(k.clone()));
                node_paths(v, at, all);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Replaces the node at `path`; returns whether it was a string.
fn replace(doc: &mut Doc, path: &[Result<String, usize>], with: Doc) -> bool {
    let Some((step, rest)) = path.split_first() else {
        let was_string = matches!(doc, Doc::Str(_));
        *doc = with;
        return was_string;
    };
    match (doc, step) {
        (Doc::Arr(items), Err(i)) => replace(&mut items[*i], rest, with),
        (Doc::Obj(members), Ok(k)) => {
            let member = members.iter_mut().find(|(key, _)| key == k).unwrap();
            replace(&mut member.1, rest, with)
        }
        _ => unreachable!(),
    }
}

/// The path as `compare` should write it, written independently.
fn expected_path(path: &[Result<String, usize>]) -> String {
    if path.is_empty() {
        return "$".to_owned();
    }
    let mut out = String::new();
    for step in path {
        match step {
            Ok(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Ok(k) => out.push_str(&format!("[{}]", serde_json::to_string(k).unwrap())),
            Err(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Puts `value` under the ignored key in every object (replacing any), and
/// wraps the whole in an object that has it too.
fn with_ignored(doc: &Doc, value: &Doc) -> Doc {
    fn inject(doc: &Doc, value: &Doc) -> Doc {
        match doc {
            Doc::Arr(items) => Doc::Arr(items.iter().map(|item| inject(item, value)).collect()),
            Doc::Obj(members) => {
                let mut members: Vec<(String, Doc)> = members
                    .iter()
                    .filter(|(k, _)| k != IGNORED)
                    .map(|(k, v)| (k.clone(), inject(v, value)))
                    .collect();
                members.insert(members.len() / 2, (IGNORED.to_owned(), value.clone()));
                Doc::Obj(members)
            }
            other => other.clone(),
        }
    }
    Doc::Obj(vec![
        (IGNORED.to_owned(), value.clone()),
        ("v".to_owned(), inject(doc, value)),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_document_matches_itself_in_any_key_order_and_spacing(doc in doc()) {
        let compact = text(&doc, COMPACT);
        prop_assert_eq!(json_compare(&compact, &compact, &[]), Outcome::Match);
        let shuffled = text(&doc, SHUFFLED);
        prop_assert_eq!(json_compare(&compact, &shuffled, &[]), Outcome::Match, "{} vs {}", compact, shuffled);
        prop_assert_eq!(json_compare(&shuffled, &compact, &[]), Outcome::Match);
    }

    #[test]
    fn an_ignored_field_never_makes_a_mismatch(doc in doc(), a in doc(), b in doc()) {
        let primary = text(&with_ignored(&doc, &a), COMPACT);
        let shadow = text(&with_ignored(&doc, &b), SHUFFLED);
        prop_assert_eq!(json_compare(&primary, &shadow, &[IGNORED]), Outcome::Match, "{} vs {}", primary, shadow);
    }

    #[test]
    fn one_change_is_found_at_its_path(doc in doc(), pick in any::<prop::sample::Index>(), shuffle in any::<bool>()) {
        let mut paths = Vec::new();
        node_paths(&doc, &mut Vec::new(), &mut paths);
        let path = pick.get(&paths);
        let mut changed = doc.clone();
        let was_string = replace(&mut changed, path, Doc::Str("\u{1}changed".to_owned()));
        let primary = text(&doc, COMPACT);
        let shadow = text(&changed, if shuffle { SHUFFLED } else { COMPACT });
        let expected = Outcome::BodyMismatch(BodyDifference::Json(JsonDifference {
            path: expected_path(path),
            kind: if was_string { JsonDifferenceKind::Value } else { JsonDifferenceKind::Type },
        }));
        prop_assert_eq!(json_compare(&primary, &shadow, &[]), expected, "{} vs {}", primary, shadow);
    }

    #[test]
    fn integers_equal_their_float_spellings(n in -(1i64 << 49)..(1i64 << 49)) {
        let plain = n.to_string();
        for spelled in [format!("{n}.0"), format!("{n}e0"), format!("{n}0e-1")] {
            prop_assert_eq!(json_compare(&plain, &spelled, &[]), Outcome::Match, "{} vs {}", plain, spelled);
        }
        prop_assert_ne!(json_compare(&plain, &format!("{n}.5"), &[]), Outcome::Match);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(a in prop::collection::vec(any::<u8>(), 0..64), b in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut json = policy(BodyComparison::Json);
        json.ignore_fields = vec!["a".to_owned()];
        let outcome = compare(http(200, &a), http(200, &b), &json);
        prop_assert_eq!(outcome == Outcome::Match, a == b || matches!(json::compare(&a, &b, &json.ignore_fields), JsonComparison::Equal));
    }
}

mod judge_tests {
    use super::super::*;
    use crate::config::{BodyComparison, ComparePolicy};
    use crate::telemetry::ResponseClass;

    fn policy() -> ComparePolicy {
        ComparePolicy {
            body: BodyComparison::Exact,
            ignore_fields: Vec::new(),
            max_body_bytes: 8,
            log_mismatches: 10,
            noise: None,
        }
    }

    fn answer(status: u16, body: &[u8]) -> Observed<'_> {
        Observed {
            status: Status::Http(status),
            body: Body::Bytes(body),
        }
    }

    #[test]
    fn a_failed_shadow_wins_over_an_incomplete_primary() {
        let failed = Observed {
            status: Status::from_class(None, ResponseClass::Timeout),
            body: Body::Unavailable,
        };
        assert_eq!(judge(None, failed, &policy()).0, CompareResult::ShadowFailed);
        assert_eq!(
            judge(Some(answer(200, b"a")), failed, &policy()).0,
            CompareResult::ShadowFailed
        );
        assert_eq!(
            judge(None, answer(200, b"a"), &policy()).0,
            CompareResult::PrimaryIncomplete
        );
    }

    #[test]
    fn complete_pairs_get_the_verdict() {
        assert_eq!(
            judge(Some(answer(200, b"a")), answer(200, b"a"), &policy()).0,
            CompareResult::Match
        );
        assert_eq!(
            judge(Some(answer(200, b"a")), answer(500, b"a"), &policy()).0,
            CompareResult::StatusMismatch
        );
        assert_eq!(
            judge(Some(answer(200, b"a")), answer(200, b"b"), &policy()).0,
            CompareResult::BodyMismatch
        );
        assert_eq!(
            judge(Some(answer(200, b"123456789")), answer(200, b"a"), &policy()).0,
            CompareResult::NotCompared
        );
        let cut = Observed {
            status: Status::from_class(None, ResponseClass::TooLargeOrReset),
            body: Body::Unavailable,
        };
        assert_eq!(
            judge(Some(answer(200, b"a")), cut, &policy()).0,
            CompareResult::NotCompared
        );
    }

    #[test]
    fn labels_are_dense_and_distinct() {
        for (i, result) in CompareResult::ALL.iter().enumerate() {
            assert_eq!(result.index(), i);
        }
        let labels: std::collections::HashSet<_> = CompareResult::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), CompareResult::ALL.len());
    }
}
