//! The configuration pushes: publish a new listener over LDS, then probe
//! until the new plugin configuration is seen in force (valid) or the push
//! is seen rejected with the last good one still working (invalid).

use crate::admin::stat;
use crate::load::{http1_client, send, Shared};
use crate::plan;
use crate::topology::{bootstrap, witness_of, Upstreams};
use bytes::Bytes;
use std::time::{Duration, Instant};
use vrata_mirror_testkit::lds::LdsConfig;
use vrata_mirror_testkit::upstream::{answer_text, Upstream};

/// A valid push must be in force within this long.
pub const TAKE_EFFECT: Duration = Duration::from_secs(2);

/// What a push did.
pub struct PushResult {
    pub index: u32,
    pub valid: bool,
    /// How long until it was seen in force (valid) or rejected (invalid).
    pub took: Option<Duration>,
    pub problem: Option<String>,
    /// The byte range of Envoy's log written while an invalid push was
    /// being rejected: its refusal lines belong there and nowhere else.
    pub log_window: Option<(usize, usize)>,
}

/// Sends one request on a new connection (a probe must not ride a
/// connection still draining on the old listener's filter chain).
async fn probe(shared: &Shared, path: &str, key: &str) -> Result<(), String> {
    let client = http1_client();
    let url = format!("http://{}{path}", shared.envoy_addr);
    let (status, body) = send(&client, "GET", &url, &[("x-soak-key", key)], Bytes::new()).await?;
    if status == 200 && body == answer_text("primary", "GET", path, 0).as_bytes() {
        Ok(())
    } else {
        Err(format!("probe {path}: {status}"))
    }
}

/// The configuration tag the witness saw on the copy of `path`, waiting up to 300 ms.
async fn witness_tag(witness: &Upstream, path: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        if let Some(copy) = witness.received().iter().rev().find(|c| c.uri == path) {
            return copy.header("x-soak-config").map(str::to_owned);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Probes `route_prefix` until the witness sees a copy tagged `config`,
/// for up to 10 s; returns how long it took.
async fn until_tagged(
    shared: &Shared,
    witness: &Upstream,
    route_prefix: &str,
    config: u32,
    push: u32,
    since: Instant,
) -> Option<Duration> {
    let key = plan::never_sampled_key(u64::from(push) * 1000);
    for n in 0.. {
        let path = format!("{route_prefix}/p{push}-{n}");
        let sent = probe(shared, &path, &key).await;
        count_probe(shared, route_prefix, &sent);
        if sent.is_ok() && witness_tag(witness, &path).await.as_deref() == Some(config.to_string().as_str()) {
            return Some(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(10) {
            return None;
        }
    }
    None
}

fn count_probe(shared: &Shared, route_prefix: &str, sent: &Result<(), String>) {
    let mut stats = shared.stats.lock().unwrap();
    stats.h1 += 1;
    match sent {
        Ok(()) if route_prefix == "/probe" => stats.sent.probe += 1,
        Ok(()) => stats.sent.extra += 1,
        Err(e) => stats.problem(true, e.clone()),
    }
}

pub async fn push_config(shared: &Shared, up: &Upstreams, lds: &LdsConfig, index: u32) -> PushResult {
    let push = plan::push(index);
    let admin_addr = shared.admin;
    let rejected_before = stat(admin_addr, "listener_manager.lds.update_rejected").await;
    let log_before = shared.envoy.log().len();
    let started = Instant::now();
    lds.publish(&bootstrap(up, &push.json, shared.host));
    let mut result = PushResult {
        index,
        valid: push.valid,
        took: None,
        problem: None,
        log_window: None,
    };
    if push.valid {
        // Where route probe's copies go: the configuration's witness, tagged with its number.
        let mut took = until_tagged(
            shared,
            witness_of(up, push.config),
            "/probe",
            push.config,
            index,
            started,
        )
        .await;
        if plan::has_extra(push.config) {
            let extra = until_tagged(shared, &up.witnesses[0], "/extra", push.config, index, started).await;
            took = match (took, extra) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        } else {
            // Without the entry, route extra's requests (keys out of every
            // sample) are not copied at all.
            let before = up.witnesses[0]
                .received()
                .iter()
                .filter(|c| c.uri.starts_with("/extra"))
                .count();
            let key = plan::never_sampled_key(u64::from(index) * 1000);
            for n in 0..3 {
                let sent = probe(shared, &format!("/extra/q{index}-{n}"), &key).await;
                count_probe(shared, "/extra", &sent);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = up.witnesses[0]
                .received()
                .iter()
                .filter(|c| c.uri.starts_with("/extra"))
                .count();
            if after != before {
                result.problem = Some(format!("route extra copied {} times without its entry", after - before));
            }
        }
        result.took = took;
        if took.is_none_or(|t| t > TAKE_EFFECT) && result.problem.is_none() {
            result.problem = Some(format!("in force after {took:?}, over {TAKE_EFFECT:?}"));
        }
    } else {
        loop {
            if stat(admin_addr, "listener_manager.lds.update_rejected").await > rejected_before {
                result.took = Some(started.elapsed());
                // Every worker's refusal is logged by then, or very soon.
                tokio::time::sleep(Duration::from_millis(500)).await;
                result.log_window = Some((log_before, shared.envoy.log().len()));
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                result.problem = Some("not rejected within 10 s".to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last good configuration still works.
        let path = format!("/probe/r{index}");
        let key = plan::never_sampled_key(0);
        let sent = probe(shared, &path, &key).await;
        count_probe(shared, "/probe", &sent);
        let tag = witness_tag(witness_of(up, push.config), &path).await;
        if tag.as_deref() != Some(push.config.to_string().as_str()) {
            result.problem = Some(format!(
                "after the rejected push the probe's copy was tagged {tag:?}, expected {}",
                push.config
            ));
        }
    }
    result
}
