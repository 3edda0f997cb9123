//! The request side of the filter on arbitrary header maps as a host could
//! serialize them: `wire::decode_map`, then `RequestHead::from_pairs` and
//! `shape_headers` under a few representative policies. Nothing may panic,
//! and the copy's headers must keep their guarantees: no hop-by-hop or
//! framing header, an `:authority`, the policy's additions present once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::rc::Rc;
use vrata_mirror::wire::{decode_map, encode_map};
use vrata_mirror_core::config::{parse, MirrorPolicy};
use vrata_mirror_core::mirror::request::{copyable_trailers, shape_headers, RequestHead};

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "content-length",
    "expect",
];

const POLICIES: &str = r#"{"forward": {"mirrors": [
    {"destinationId": "keep"},
    {"destinationId": "replace", "authority": "shadow.internal:9090",
     "removeHeaders": ["authorization", "cookie"], "addHeaders": {"x-mirrored": "1", "cookie": "none"}},
    {"destinationId": "suffix", "hostSuffix": "-shadow", "removeHeaders": ["host", "x-forwarded-for"]}
]}}"#;

thread_local! {
    static MIRRORS: Vec<Rc<MirrorPolicy>> = match parse(POLICIES.as_bytes()) {
        Ok(cfg) => cfg.default_policy.mirrors,
        Err(err) => panic!("the fuzz target's own policies are invalid: {err}"),
    };
}

fuzz_target!(|data: &[u8]| {
    let Some(pairs) = decode_map(data) else {
        return;
    };
    // What decodes must re-encode to something that decodes the same.
    let reencoded = encode_map(&pairs);
    assert_eq!(decode_map(&reencoded).as_ref(), Some(&pairs));

    let _ = copyable_trailers(pairs.iter().copied());
    let head = RequestHead::from_pairs(pairs.iter().copied());
    MIRRORS.with(|mirrors| {
        for mirror in mirrors {
            let shaped: Vec<(String, String)> = shape_headers(head.headers.clone(), mirror)
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            for (name, _) in &shaped {
                assert!(!HOP_BY_HOP.contains(&name.as_str()), "{name} reached the copy");
            }
            assert!(
                shaped.iter().any(|(n, _)| n == ":authority"),
                "no :authority: {shaped:?}"
            );
            for (name, value) in &mirror.add_headers {
                let found: Vec<&String> = shaped.iter().filter(|(n, _)| n == name).map(|(_, v)| v).collect();
                assert_eq!(found, [value], "{name}");
            }
        }
    });
});
