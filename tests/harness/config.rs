//! Configuration through `proxy_on_configure`: a bad one is refused with one
//! error line naming the field; a second configuration replaces the first
//! without losing track of copies in flight.

use crate::wasmhost::{level, mirror_config, Host, Response};

/// Each bad configuration and the field path its error line must name.
const BAD: &[(&str, &str)] = &[
    ("", "empty"),
    ("{\"forward\": ", "not valid JSON"),
    ("[1, 2]", "(top level)"),
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": 101}}}"#,
        "forward.mirror.percentage",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentge": 5}}}"#,
        "forward.mirror.percentge",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "maxBodyBytes": 1e12}}}"#,
        "forward.mirror.maxBodyBytes",
    ),
    (
        r#"{"forward": {"mirror": {"destinationId": "shadow", "addHeaders": {"content-length": "1"}}}}"#,
        "forward.mirror.addHeaders[\"content-length\"]",
    ),
    (
        r#"{"forward": {"mirrors": [{"destinationId": "a"}, {"destinationId": "a"}]}}"#,
        "forward.mirrors[1].destinationId",
    ),
    (
        r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "timeoutMs": 0}}}}}"#,
        "routes[\"api\"].forward.mirror.timeoutMs",
    ),
];

#[test]
fn a_bad_configuration_is_refused_with_one_error_line_naming_the_field() {
    for (config, must_name) in BAD {
        // Trace level: nothing the module logs is filtered away.
        let mut host = Host::builder().log_level(level::TRACE).start();
        assert!(!host.configure(config), "accepted {config}");
        let errors = host.logs_at_least(level::ERROR);
        assert_eq!(errors.len(), 1, "config {config}: error lines {errors:?}");
        let line = &errors[0];
        assert_eq!(line.level, level::ERROR);
        assert!(
            line.message.contains(must_name),
            "config {config}: {line:?} should name {must_name:?}"
        );
        assert!(!line.message.contains('\n'), "one line: {line:?}");
        assert_eq!(
            host.logs_at_least(level::WARN).len(),
            1,
            "and no warnings beside it: {:?}",
            host.logs()
        );
    }
}

#[test]
fn the_error_line_stays_one_line_whatever_the_key() {
    // JSON keys may hold escaped line breaks; the module must not let one
    // split (or forge) a line of Envoy's log.
    for config in [
        r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage\n[critical] forged": 5}}}"#,
        r#"{"forward": {"mirror": {"destinationId": "shadow"}}, "x\r\ny": 1}"#,
        r#"{"forward": {"mirror": {"destinationId": "shadow", "a\nb": 1, "a\nb": 2}}}"#,
    ] {
        let mut host = Host::builder().log_level(level::TRACE).start();
        assert!(!host.configure(config));
        let errors = host.logs_at_least(level::ERROR);
        assert_eq!(errors.len(), 1, "{config}: {errors:?}");
        assert!(
            !errors[0].message.contains(['\n', '\r']),
            "config {config}\nlogged a line break: {:?}",
            errors[0].message
        );
    }
}

#[test]
fn the_error_line_survives_an_error_only_log_level() {
    let mut host = Host::builder().log_level(level::ERROR).start();
    assert!(!host.configure(r#"{"forward": {"mirror": {"destinationId": "shadow", "percentage": -1}}}"#));
    assert_eq!(host.logs().len(), 1);
    assert!(host.logs()[0].message.contains("forward.mirror.percentage"));
}

#[test]
fn a_good_configuration_logs_no_warning() {
    let mut host = Host::builder().log_level(level::TRACE).start();
    assert!(host.configure(&mirror_config(r#""percentage": 10"#)));
    assert!(host.logs_at_least(level::WARN).is_empty(), "{:?}", host.logs());
}

#[test]
fn a_second_configuration_replaces_the_first() {
    let mut host = Host::load(&mirror_config(r#""addHeaders": {"x-config": "one"}"#));
    host.request().get("/").send();
    host.run_pending();
    let old = host.single_dispatched_call();
    assert_eq!(old.header("x-config"), Some("one"));

    assert!(host.configure(&mirror_config(r#""addHeaders": {"x-config": "two"}, "timeoutMs": 50"#)));
    host.request().get("/").send();
    host.run_pending();
    let new = host.single_dispatched_call();
    assert_eq!((new.header("x-config"), new.timeout_ms), (Some("two"), 50));

    // The copy sent under the first configuration still reports back.
    host.respond(old.token, 200);
    host.respond(new.token, 200);
    assert_eq!(host.responses("unnamed", "shadow", "2xx"), 2);
    assert_eq!(
        host.queue_names().len(),
        1,
        "the dispatch queue is registered once per VM"
    );
    host.assert_accounted("unnamed", "shadow", 2);
}

#[test]
fn copies_in_flight_stay_counted_across_a_reconfiguration() {
    let mut host = Host::load(&mirror_config(r#""maxInFlight": 1"#));
    host.request().get("/").send();
    host.run_pending();
    let held = host.single_dispatched_call();

    assert!(host.configure(&mirror_config(r#""maxInFlight": 1, "addHeaders": {"x-v": "2"}"#)));
    host.request().get("/").send();
    host.run_pending();
    assert!(
        host.new_calls().is_empty(),
        "the slot taken under the old configuration is still taken"
    );
    assert_eq!(host.skipped("unnamed", "shadow", "in_flight_limit"), 1);

    host.respond(held.token, Response::from_shadow(200));
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.single_dispatched_call().header("x-v"), Some("2"));
    host.assert_accounted("unnamed", "shadow", 3);
}

#[test]
fn a_refused_reconfiguration_keeps_the_previous_one() {
    let mut host = Host::load(&mirror_config(r#""addHeaders": {"x-config": "good"}"#));
    assert!(!host.configure(r#"{"forward": {"mirror": {"destinationId": ""}}}"#));
    assert_eq!(host.logs_at_least(level::ERROR).len(), 1);
    host.request().get("/").send();
    host.run_pending();
    assert_eq!(host.single_dispatched_call().header("x-config"), Some("good"));
    host.assert_accounted("unnamed", "shadow", 1);
}

#[test]
fn a_configuration_that_mirrors_nowhere_costs_no_host_calls_per_request() {
    let mut host = Host::load(&mirror_config(r#""percentage": 0"#));
    let before: u64 = [
        "proxy_get_header_map_pairs",
        "proxy_get_header_map_value",
        "proxy_get_property",
    ]
    .iter()
    .map(|name| host.import_calls(name))
    .sum();
    for _ in 0..10 {
        host.request().post("/").body(b"abc").send().assert_never_paused();
    }
    let after: u64 = [
        "proxy_get_header_map_pairs",
        "proxy_get_header_map_value",
        "proxy_get_property",
    ]
    .iter()
    .map(|name| host.import_calls(name))
    .sum();
    assert_eq!(after, before);
    assert_eq!(host.pending_events(), 0);
}
