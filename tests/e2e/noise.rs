//! End to end, noise cancellation (`compare.secondary`) through the real
//! Envoy with the comparison module and three real upstreams: the primary
//! and the secondary (`stable`) run the same code, answering JSON with a
//! timestamp, a random id and a list in random order
//! (`upstream::noisy_answer`); the candidate (`shadow`) answers the same,
//! except that on 10 % of requests its `price` is off by one.
//!
//! `minRequests` is 100 here, not the default 3334: what it guards against
//! (a one-off difference taken for a real one, see compare::noise) needs
//! the absolute threshold to bite, but these fields differ on every request
//! or on 10 % of them, so 100 requests tell them apart with certainty
//! (the chance that the price never differed in 100 is 0.9^100 ≈ 3e-5),
//! and the test stays at 600 requests (about 1,800 upstream calls).

use vrata_mirror_core::telemetry::catalogue::{COMPARED, FIELD_DIFFERENCES, NOISE_REQUESTS, REQUESTS as SENT};
use vrata_mirror_testkit::client;
use vrata_mirror_testkit::compare::nonzero_results;
use vrata_mirror_testkit::config::{Cluster, Setup};
use vrata_mirror_testkit::envoy::Envoy;
use vrata_mirror_testkit::host::Host;
use vrata_mirror_testkit::rig::{eventually, ARRIVAL};
use vrata_mirror_testkit::sampling::binomial_bounds;
use vrata_mirror_testkit::upstream::{Behaviour, Upstream};

const REQUESTS: u64 = 600;
const MIN_REQUESTS: u64 = 100;
const PRICE_OFF: f64 = 0.1;

fn results(envoy: &Envoy) -> Vec<(&'static str, f64)> {
    nonzero_results(|result| {
        envoy.mirror_metric(
            &COMPARED,
            &[("route", "api"), ("destination", "shadow"), ("result", result)],
        )
    })
}

fn field(envoy: &Envoy, name: &str, kind: &str) -> f64 {
    envoy.mirror_metric(
        &FIELD_DIFFERENCES,
        &[
            ("route", "api"),
            ("destination", "shadow"),
            ("method", "GET"),
            ("field", name),
            ("kind", kind),
        ],
    )
}

async fn noise_is_learned_from_the_secondary_and_only_the_price_is_a_real_difference(host: Host) {
    let primary = Upstream::start("primary", Behaviour::Noisy(0)).await;
    let candidate = Upstream::start("shadow", Behaviour::Noisy(100)).await;
    let secondary = Upstream::start("stable", Behaviour::Noisy(0)).await;
    let plugin = format!(
        r#"{{"forward": {{"mirror": {{"destinationId": "shadow",
            "compare": {{"body": "json", "secondary": "stable", "noise": {{"minRequests": {MIN_REQUESTS}}}}}}}}}}}"#
    );
    let mut setup = Setup::new(&plugin, primary.port(), candidate.port()).on(host);
    setup.compare_module = true;
    setup.shadows.push(Cluster {
        name: "stable",
        port: secondary.port(),
        max_requests: 1024,
    });
    let envoy = setup.start().await;

    let replies = client::load(
        &envoy.url("/api/item"),
        REQUESTS as usize,
        4,
        "GET",
        bytes::Bytes::new(),
    )
    .await;
    assert!(replies.iter().all(|r| r.status == 200), "the client is served");
    let settled = || results(&envoy).iter().map(|(_, n)| n).sum::<f64>() >= REQUESTS as f64;
    assert!(eventually(ARRIVAL, settled).await, "{}", envoy.prometheus());

    // Each compared request also went to the secondary, under its own name.
    for destination in ["shadow", "stable"] {
        let sent = envoy.mirror_metric(&SENT, &[("route", "api"), ("destination", destination)]);
        assert_eq!(sent, REQUESTS as f64, "{destination}");
    }
    assert_eq!(candidate.count() as u64, REQUESTS);
    assert_eq!(secondary.count() as u64, REQUESTS);

    // Verdicts. Every answer differs from the primary's (timestamp, id), so
    // none is a match; the first 99 counted are learning; after that a
    // request is a body_mismatch exactly when the candidate's price was off
    // (10 %), else noise.
    let verdicts = results(&envoy);
    let count = |name: &str| verdicts.iter().find(|(r, _)| *r == name).map_or(0.0, |(_, n)| *n) as u64;
    let judged = REQUESTS - (MIN_REQUESTS - 1);
    let bounds = binomial_bounds(judged, PRICE_OFF);
    println!("verdicts {verdicts:?}; body_mismatch within {bounds:?} of {judged}");
    assert_eq!(count("learning"), MIN_REQUESTS - 1, "{verdicts:?}");
    assert_eq!(count("match"), 0, "{verdicts:?}");
    assert!(bounds.contains(&count("body_mismatch")), "{verdicts:?}");
    assert_eq!(count("noise") + count("body_mismatch"), judged, "{verdicts:?}");
    assert_eq!(
        verdicts.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        ["body_mismatch", "noise", "learning"],
        "nothing else"
    );

    // The fields, as Prometheus shows them.
    let requests = envoy.mirror_metric(
        &NOISE_REQUESTS,
        &[("route", "api"), ("destination", "shadow"), ("method", "GET")],
    );
    assert_eq!(requests, REQUESTS as f64);
    let price = (field(&envoy, "price", "raw"), field(&envoy, "price", "noise"));
    println!("price raw {} noise {}", price.0, price.1);
    assert!(
        binomial_bounds(REQUESTS, PRICE_OFF).contains(&(price.0 as u64)),
        "{price:?}"
    );
    assert!(price.0 >= count("body_mismatch") as f64, "{price:?}");
    assert_eq!(price.1, 0.0, "the secondary never changes the price");
    for noise in ["ts", "id"] {
        let counts = (field(&envoy, noise, "raw"), field(&envoy, noise, "noise"));
        assert_eq!(
            counts,
            (REQUESTS as f64, REQUESTS as f64),
            "{noise} differs on every request"
        );
    }
    // Six items in random order: the same order on both sides 1 time in 720.
    let order = (
        field(&envoy, "items[]#order", "raw"),
        field(&envoy, "items[]#order", "noise"),
    );
    let order_bounds = binomial_bounds(REQUESTS, 719.0 / 720.0);
    assert!(
        order_bounds.contains(&(order.0 as u64)) && order_bounds.contains(&(order.1 as u64)),
        "{order:?} {order_bounds:?}\n{}",
        envoy.prometheus()
    );

    // `vrata-mirror report --fields` shows the same counts and verdicts.
    let admin = format!("http://{}", envoy.admin);
    let config = std::env::temp_dir().join(format!("vrata-noise-{}.json", std::process::id()));
    std::fs::write(&config, &plugin).unwrap();
    let args = [
        "vrata-mirror",
        "report",
        "--admin",
        &admin,
        "--fields",
        "--config",
        config.to_str().unwrap(),
    ];
    let report = vrata_mirror_cli::run(&vrata_mirror_cli::parse_args(args).unwrap()).unwrap();
    let _ = std::fs::remove_file(&config);
    println!("{report}");
    let row = |name: &str| -> Vec<String> {
        report
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find(|cells| cells.get(4).map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{report}"))
    };
    let expect = |name: &str, raw: f64, noise: f64, verdict: &str| {
        let cells = row(name);
        assert_eq!(
            cells,
            [
                "api".to_owned(),
                "shadow".to_owned(),
                "GET".to_owned(),
                REQUESTS.to_string(),
                name.to_owned(),
                (raw as u64).to_string(),
                (noise as u64).to_string(),
                verdict.to_owned()
            ],
            "{report}"
        );
    };
    expect("price", price.0, price.1, "real");
    expect("ts", REQUESTS as f64, REQUESTS as f64, "noise");
    expect("id", REQUESTS as f64, REQUESTS as f64, "noise");
    expect("items[]#order", order.0, order.1, "noise");
    assert_eq!(
        report.lines().filter(|l| l.starts_with("api ")).count(),
        4,
        "no other field differs: {report}"
    );
}

vrata_mirror_testkit::on_each_host!(async noise_is_learned_from_the_secondary_and_only_the_price_is_a_real_difference);
