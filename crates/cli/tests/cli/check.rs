//! `vrata-mirror check` is the filter's parser: it never disagrees with
//! `config::parse`, on the outcome or on the message; and the effective
//! configuration it prints loads to the same policies.

use crate::strategies::{config_document, valid_config};
use crate::{texts, vrata_mirror, TempFile};
use proptest::prelude::*;
use vrata_mirror_cli::check::{check, effective_json, effective_text};
use vrata_mirror_core::config::{parse, ForwardPolicy, PluginConfig};
use vrata_mirror_core::worker::refusal_line;

fn same_forward(a: &ForwardPolicy, b: &ForwardPolicy) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.destinations, &b.destinations);
    prop_assert_eq!(a.mirrors.len(), b.mirrors.len());
    for (x, y) in a.mirrors.iter().zip(&b.mirrors) {
        prop_assert_eq!(x, y);
    }
    Ok(())
}

fn same_config(a: &PluginConfig, b: &PluginConfig) -> Result<(), TestCaseError> {
    same_forward(&a.default_policy, &b.default_policy)?;
    prop_assert_eq!(&a.destinations, &b.destinations);
    prop_assert_eq!(&a.loop_marker, &b.loop_marker);
    prop_assert_eq!(a.routes.len(), b.routes.len());
    for ((name_a, a), (name_b, b)) in a.routes.iter().zip(&b.routes) {
        prop_assert_eq!(name_a, name_b);
        same_forward(a, b)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn check_never_disagrees_with_the_filters_parser(doc in config_document()) {
        let text = doc.to_string();
        match (check(text.as_bytes()), parse(text.as_bytes())) {
            (Ok(checked), Ok(parsed)) => same_config(&checked, &parsed)?,
            (Err(line), Err(err)) => prop_assert_eq!(line, refusal_line(&err.to_string())),
            (checked, parsed) => prop_assert!(
                false,
                "check: {:?}\nparse: {:?}\n{}",
                checked.map(|_| "accepted"),
                parsed.map(|_| "accepted"),
                text
            ),
        }
    }

    #[test]
    fn the_effective_configuration_loads_to_the_same_policies(doc in valid_config()) {
        let text = doc.to_string();
        let config = parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let effective = effective_json(&config).to_string();
        let again = parse(effective.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{effective}")))?;
        same_config(&config, &again)?;
        // And the text names every route and every mirror.
        let shown = effective_text(&config);
        for (name, policy) in &config.routes {
            prop_assert!(shown.contains(&format!("route {name:?}")), "{}", shown);
            for mirror in &policy.mirrors {
                prop_assert!(shown.contains(&format!("mirror to {:?}", mirror.destination)), "{}", shown);
            }
        }
    }
}

proptest! {
    // Each case runs the binary: fewer cases, the same claim end to end.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_binary_exits_and_prints_as_the_parser_decides(doc in config_document()) {
        let text = doc.to_string();
        let file = TempFile::new("plugin.json", text.as_bytes());
        let output = vrata_mirror(&["check", file.path()]);
        let (stdout, stderr) = texts(&output);
        match parse(text.as_bytes()) {
            Ok(config) => {
                prop_assert!(output.status.success(), "refused: {}\n{}", stderr, text);
                prop_assert_eq!(stdout, effective_text(&config));
            }
            Err(err) => {
                prop_assert_eq!(output.status.code(), Some(1), "{}", text);
                prop_assert_eq!(stderr, format!("{}\n", refusal_line(&err.to_string())));
                prop_assert!(stdout.is_empty());
            }
        }
    }
}

#[test]
fn an_invalid_config_exits_1_with_the_filters_line() {
    let file = TempFile::new(
        "plugin.json",
        br#"{"forward": {"mirror": {"destinationId": "shadow", "percentge": 5}}}"#,
    );
    let output = vrata_mirror(&["check", file.path()]);
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with(
            "vrata-mirror: invalid plugin configuration: forward.mirror.percentge: unknown key; did you mean \"percentage\"?"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_valid_config_prints_every_routes_effective_policy_with_defaults() {
    let file = TempFile::new(
        "plugin.json",
        br#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 10}},
             "routes": {"checkout": {"forward": {"mirror": null}},
                        "api": {"forward": {"mirror": {"destinationId": "shadow", "sampleBy": "X-User-Id"}}}}}"#,
    );
    let output = vrata_mirror(&["check", file.path()]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    for expected in [
        "every route not listed below (\"forward\"):\n  mirror to \"shadow\":\n    percentage           10\n    timeoutMs            1000\n    maxBodyBytes         1048576\n    maxInFlight          128 (per Envoy worker)\n    sampleBy             (random)",
        "route \"checkout\" (routes[\"checkout\"]: replaces \"forward\" on this route):\n  no mirror: mirroring is off here",
        "route \"api\" (routes[\"api\"]: replaces \"forward\" on this route):\n  mirror to \"shadow\":\n    percentage           100\n",
        "    sampleBy             \"x-user-id\"\n",
        "    maxRequestsPerSecond (no cap)\n    burst                (no cap)\n    copies               1\n",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let json = vrata_mirror(&["check", "--format", "json", file.path()]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["routes"]["api"]["forward"]["mirrors"][0]["timeoutMs"], 1000);
    assert_eq!(value["routes"]["checkout"]["forward"], serde_json::json!({}));
}

#[test]
fn a_missing_file_is_one_line_and_exit_1() {
    let output = vrata_mirror(&["check", "/nonexistent/plugin.json"]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("vrata-mirror: error: cannot read /nonexistent/plugin.json"),
        "{stderr}"
    );
}
