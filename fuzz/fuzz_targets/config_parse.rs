//! The plugin configuration parser on arbitrary bytes: it must never panic
//! (a panic in on_configure poisons the VM), and every refusal must be one
//! line that names where the problem is, since that line is all an operator
//! sees in Envoy's log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrata_mirror_core::config::parse;

/// Refusals about the document as a whole: the only ones without a field path.
const WHOLE_DOCUMENT: [&str; 3] = ["is empty", "is not valid JSON", "nothing to mirror"];

fuzz_target!(|data: &[u8]| {
    let Err(err) = parse(data) else {
        return;
    };
    let message = err.to_string();
    assert!(!message.contains(['\n', '\r']), "multi-line error: {message:?}");
    if err.path.is_empty() {
        assert!(
            WHOLE_DOCUMENT.iter().any(|m| message.contains(m)),
            "error without a path: {message:?}"
        );
    } else {
        assert!(
            message.starts_with(&format!("{}: ", err.path)),
            "path not leading: {message:?}"
        );
    }
});
