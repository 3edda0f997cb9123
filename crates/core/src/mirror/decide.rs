//! The decision at request headers: which mirrors a request is copied to, and
//! what its copy starts from. Pure: the request is read through a
//! [`RequestView`] (the proxy implements it over the host), and only as far
//! as the decision needs, in this order:
//!
//! 1. the route name, when the configuration has per-route policies;
//! 2. `:method` and `sampleBy` headers, and random draws ([`sampled_mirrors`](super::select::sampled_mirrors));
//! 3. the route name, once a mirror is sampled (it labels every outcome);
//!    then the loop marker (`loopMarker`), one header: a request that
//!    carries it is a copy, and is skipped as `loop` with nothing more read;
//! 4. the clock, only while a destination's back-off is open (admission);
//! 5. for a mirror with `maxRequestsPerSecond`, once at least one of its
//!    `copies` is admitted: its token bucket in shared data (one read, and
//!    one write when a token is taken; see [`crate::rate::acquire`]) and the
//!    clock;
//! 6. the request head, once a copy has its slot and its token: while the
//!    shadow is backed off, at its cap or over its rate, a sampled request
//!    costs no read of its headers.
//!
//! Nothing is read twice (the clock at most once), and nothing at all when
//! no mirror is sampled.
//!
//! `copies`: each copy of a request is admitted on its own (its own
//! in-flight slot) and takes its own token; one skipped copy is one skip.
//!
//! `compare.secondary`: once at least one of a mirror's copies is admitted
//! (slot and token), one copy to its secondary is admitted the same way
//! (`MirrorPolicy::secondary`: the secondary's slot and back-off, a bucket
//! of its own), right after them in `admitted`; `copies` do not multiply it.
//! It shares the candidate's sampling draw: the point is the same request.

use super::body::{BodyCopy, Carriage};
use super::request::RequestHead;
use super::select::{sample, HeaderLookup, Memo};
use crate::config::{MirrorPolicy, PluginConfig};
use crate::dispatch::destination::{DestinationState, Refusal, Slot};
use crate::rate::{self, SharedStore, Unavailable};
use crate::telemetry::SkipReason;
use std::cell::RefCell;
use std::rc::Rc;

/// The request as the decision sees it. Each method is one read of the
/// host; [`SharedStore`] is the host's shared data, for the rate caps.
pub trait RequestView: HeaderLookup + SharedStore {
    /// The name of the route the request matched; `None` when it has none or
    /// the host could not say.
    fn route_name(&mut self) -> Option<Vec<u8>>;
    /// The request's headers, whole; `None` when the host could not hand
    /// them over.
    fn head(&mut self) -> Option<RequestHead>;
    /// Host time, in milliseconds since the epoch.
    fn now_ms(&mut self) -> u64;
    /// A uniform 32-bit draw, for mirrors sampled without a `sampleBy` key.
    fn draw_u32(&mut self) -> u32;
}

/// One copy of the request that was admitted: its destination holds a
/// [`Slot`] for it until its call ends or it is dropped. A mirror with
/// `copies` > 1 has one of these per copy.
pub struct Admitted {
    pub mirror: Rc<MirrorPolicy>,
    pub slot: Slot,
}

/// A copy not sent (one per copy of a mirror with `copies` > 1). Any
/// admission it had is already ended.
pub struct Skipped {
    pub mirror: Rc<MirrorPolicy>,
    pub reason: SkipReason,
}

/// What to copy, and for whom.
pub struct Capture {
    pub head: RequestHead,
    /// Sized for the largest `maxBodyBytes` of `admitted`; empty and never
    /// filled for a streamed copy, whose body the worker does not keep.
    pub body: BodyCopy,
    /// Never empty; in configuration order, a mirror's copies together.
    pub admitted: Vec<Admitted>,
    /// The request ended with its headers: the copy is complete now.
    pub complete: bool,
}

/// The decision for one request.
#[derive(Default)]
pub struct Plan {
    /// The route name as the host reported it, read once a mirror is
    /// sampled: the label of every skip and copy below.
    pub route: Option<Vec<u8>>,
    /// In the order they were decided.
    pub skipped: Vec<Skipped>,
    /// `None`: nothing to copy.
    pub capture: Option<Capture>,
}

/// Admits `count` copies of `mirror`: a slot each, then a token each from
/// its rate cap; appends those admitted and the skips. How many got through.
fn admit(
    mirror: &Rc<MirrorPolicy>,
    count: u32,
    destinations: &[Rc<RefCell<DestinationState>>],
    view: &mut impl RequestView,
    clock: &mut Option<u64>,
    admitted: &mut Vec<Admitted>,
    skipped: &mut Vec<Skipped>,
) -> usize {
    // Never missing: the configuration's indexes point into it (the
    // fallback, a detached state, is harmless).
    let destination = destinations.get(mirror.destination_index).cloned().unwrap_or_default();
    let first = admitted.len();
    for _ in 0..count {
        let slot = Slot::take(&destination, mirror.max_in_flight, || {
            *clock.get_or_insert_with(|| view.now_ms())
        });
        match slot {
            Ok(slot) => admitted.push(Admitted {
                mirror: mirror.clone(),
                slot,
            }),
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Backoff => SkipReason::Backoff,
                    Refusal::InFlightLimit => SkipReason::InFlightLimit,
                };
                skipped.push(Skipped {
                    mirror: mirror.clone(),
                    reason,
                });
            }
        }
    }
    // Tokens only for copies that hold a slot: a copy refused by the
    // back-off or the in-flight cap takes none, and one token each.
    let wanted = admitted.len().saturating_sub(first);
    if let (Some(cap), true) = (&mirror.rate_cap, wanted > 0) {
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        let now = |v: &mut _| *clock.get_or_insert_with(|| RequestView::now_ms(v));
        let (granted, reason) = match rate::acquire(view, cap, wanted, now) {
            Ok(granted) => (granted, SkipReason::RateLimited),
            Err(Unavailable) => (0, SkipReason::RateUnavailable),
        };
        let keep = first.saturating_add(usize::try_from(granted).unwrap_or(usize::MAX));
        if keep < admitted.len() {
            for over in admitted.drain(keep..) {
                over.slot.abandon();
                skipped.push(Skipped {
                    mirror: over.mirror,
                    reason,
                });
            }
        }
    }
    admitted.len().saturating_sub(first)
}

/// Decides which of the request's mirrors get a copy, for a host that
/// buffers copies. `destinations` is aligned with `config.destinations` (a
/// mirror's `destination_index`).
pub fn decide(
    config: &PluginConfig,
    destinations: &[Rc<RefCell<DestinationState>>],
    view: &mut impl RequestView,
    end_of_stream: bool,
) -> Plan {
    plan(config, destinations, view, end_of_stream, Carriage::Buffered)
}

/// [`decide`] for a host that streams copies: a declared body length is
/// checked against the streamed budget ([`Carriage::limit`]) and no body
/// buffer is made.
pub fn decide_streamed(
    config: &PluginConfig,
    destinations: &[Rc<RefCell<DestinationState>>],
    view: &mut impl RequestView,
    end_of_stream: bool,
) -> Plan {
    plan(config, destinations, view, end_of_stream, Carriage::Streamed)
}

/// Both, by `carriage`: inlined into each, so that a buffering host's
/// `decide` carries no streaming branch (the wasm filter is built for size,
/// and a runtime `carriage` showed in its instruction count).
#[inline(always)]
fn plan(
    config: &PluginConfig,
    destinations: &[Rc<RefCell<DestinationState>>],
    view: &mut impl RequestView,
    end_of_stream: bool,
    carriage: Carriage,
) -> Plan {
    let mut route = Memo::new();
    let policy = if config.needs_route_name() {
        let name = route.get(|| view.route_name());
        config.policy_for(name.as_deref().and_then(|n| std::str::from_utf8(n).ok()))
    } else {
        &config.default_policy
    };
    let sampled = sample(&policy.mirrors, view, |v| v.draw_u32());
    if sampled.is_empty() {
        return Plan::default();
    }
    let mut plan = Plan {
        route: route.into_value(|| view.route_name()),
        skipped: Vec::new(),
        capture: None,
    };
    // A copy (this proxy's, or one a proxy in front sent here, such as a
    // canary's sidecar that runs the same plugin) is never copied again:
    // before admission, so it takes no slot and no token.
    if let Some(marker) = &config.loop_marker {
        if view.header(marker).is_some() {
            for mirror in sampled {
                for _ in 0..mirror.copies {
                    plan.skipped.push(Skipped {
                        mirror: mirror.clone(),
                        reason: SkipReason::Loop,
                    });
                }
            }
            return plan;
        }
    }

    // Read on first need, at most once: by an open back-off or a rate cap.
    let mut clock: Option<u64> = None;
    let mut admitted: Vec<Admitted> = Vec::with_capacity(sampled.len());
    for mirror in sampled {
        let got = admit(
            &mirror,
            mirror.copies,
            destinations,
            view,
            &mut clock,
            &mut admitted,
            &mut plan.skipped,
        );
        // With `compare.secondary`: one copy to the secondary when at least
        // one copy to the candidate got through, admitted as a mirror to
        // that cluster is (its slot, back-off and bucket), right after them.
        if let (Some(secondary), true) = (&mirror.secondary, got > 0) {
            admit(
                secondary,
                1,
                destinations,
                view,
                &mut clock,
                &mut admitted,
                &mut plan.skipped,
            );
        }
    }
    if admitted.is_empty() {
        return plan;
    }

    // One copy of the body serves every mirror, sized for the largest cap:
    // when any mirror has room for a declared length, that one does.
    let limit = admitted.iter().map(|a| carriage.limit(&a.mirror)).max().unwrap_or(0);
    let head = view.head();
    let body = match &head {
        Some(head) if !head.upgrade => carriage.start(limit, head.content_length).ok(),
        _ => None,
    };
    // A mirror keeps its copy when the head was read, is no upgrade, and
    // declares no more than this mirror's cap. Usually every mirror does.
    let fits = |one: &Admitted| match (&head, &body) {
        (Some(head), Some(_)) => head
            .content_length
            .is_none_or(|n| n <= carriage.limit(&one.mirror) as u64),
        _ => false,
    };
    if !admitted.iter().all(fits) {
        let mut kept = Vec::new();
        for one in admitted {
            if fits(&one) {
                kept.push(one);
                continue;
            }
            let reason = match &head {
                None => SkipReason::HostError,
                Some(head) if head.upgrade => SkipReason::Upgrade,
                Some(_) => SkipReason::BodyTooLarge,
            };
            // Ended here: this copy will not be sent.
            let Admitted { mirror, slot } = one;
            slot.abandon();
            plan.skipped.push(Skipped { mirror, reason });
        }
        admitted = kept;
    }
    if let (Some(head), Some(body), false) = (head, body, admitted.is_empty()) {
        plan.capture = Some(Capture {
            head,
            body,
            admitted,
            complete: end_of_stream,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::dispatch::destination::TRIP_AFTER_FAILURES;
    use crate::rate::{Bucket, StoreError, MAX_ATTEMPTS};
    use std::collections::HashMap;

    /// The loop marker's read, after the route's in every sampled request.
    const MARKER: &str = "header x-vrata-mirror";

    /// A request whose reads are recorded, in order.
    #[derive(Default)]
    struct FakeRequest {
        route: Option<&'static str>,
        headers: Vec<(&'static str, &'static str)>,
        /// `None`: the host fails to hand the head over.
        head: Option<RequestHead>,
        now_ms: u64,
        draw: u32,
        /// Shared data: value and CAS by key.
        shared: HashMap<String, (Vec<u8>, u32)>,
        /// Every shared-data call answers this (`Conflict`: every write).
        shared_fault: Option<StoreError>,
        reads: Vec<String>,
    }

    impl SharedStore for FakeRequest {
        fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.reads.push("shared load".to_owned());
            match self.shared_fault {
                // A read has no version to conflict with.
                Some(StoreError::Failed) => Err(StoreError::Failed),
                _ => Ok(self.shared.get(key).cloned()),
            }
        }

        fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.reads.push("shared store".to_owned());
            if let Some(fault) = self.shared_fault {
                return Err(fault);
            }
            let next = self.shared.get(key).map_or(1, |(_, c)| c + 1);
            if cas != 0 && next != cas + 1 {
                return Err(StoreError::Conflict);
            }
            self.shared.insert(key.to_owned(), (value.to_vec(), next));
            Ok(())
        }
    }

    impl HeaderLookup for FakeRequest {
        fn header(&mut self, name: &str) -> Option<Vec<u8>> {
            self.reads.push(format!("header {name}"));
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        }
    }

    impl RequestView for FakeRequest {
        fn route_name(&mut self) -> Option<Vec<u8>> {
            self.reads.push("route".to_owned());
            self.route.map(|r| r.as_bytes().to_vec())
        }

        fn head(&mut self) -> Option<RequestHead> {
            self.reads.push("head".to_owned());
            self.head.clone()
        }

        fn now_ms(&mut self) -> u64 {
            self.reads.push("clock".to_owned());
            self.now_ms
        }

        fn draw_u32(&mut self) -> u32 {
            self.reads.push("draw".to_owned());
            self.draw
        }
    }

    impl FakeRequest {
        fn reads(&self, what: &str) -> usize {
            self.reads.iter().filter(|r| *r == what).count()
        }
    }

    /// A GET with a readable head (and no body).
    fn get() -> FakeRequest {
        FakeRequest {
            head: Some(head(&[(":method", "GET"), (":path", "/")])),
            ..FakeRequest::default()
        }
    }

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn config(json: &str) -> PluginConfig {
        parse(json.as_bytes()).unwrap()
    }

    fn mirrors(json: &str) -> PluginConfig {
        config(&format!(r#"{{"forward": {{"mirrors": {json}}}}}"#))
    }

    fn states(config: &PluginConfig) -> Vec<Rc<RefCell<DestinationState>>> {
        config.destinations.iter().map(|_| Rc::default()).collect()
    }

    fn admitted(plan: &Plan) -> Vec<&str> {
        let capture = plan.capture.as_ref();
        capture
            .map(|c| c.admitted.iter().map(|a| a.mirror.destination.as_str()).collect())
            .unwrap_or_default()
    }

    fn skipped(plan: &Plan) -> Vec<(&str, SkipReason)> {
        plan.skipped
            .iter()
            .map(|s| (s.mirror.destination.as_str(), s.reason))
            .collect()
    }

    fn outstanding(states: &[Rc<RefCell<DestinationState>>]) -> Vec<u32> {
        states.iter().map(|s| s.borrow().outstanding()).collect()
    }

    /// Opens the back-off of a destination at time 0.
    fn back_off(state: &RefCell<DestinationState>) {
        let mut state = state.borrow_mut();
        for _ in 0..TRIP_AFTER_FAILURES {
            let admission = state.admit(u32::MAX, || 0).unwrap();
            state.complete(admission, false, 0);
        }
        assert!(state.in_backoff());
    }

    #[test]
    fn a_route_without_mirrors_reads_only_its_name() {
        let cfg = config(r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s"}}}}}"#);
        let mut request = FakeRequest {
            route: Some("other"),
            ..get()
        };
        let plan = decide(&cfg, &states(&cfg), &mut request, false);
        assert!(plan.capture.is_none() && plan.skipped.is_empty());
        assert_eq!(request.reads, ["route"]);
    }

    #[test]
    fn no_mirrors_and_no_routes_read_nothing() {
        let cfg = config(r#"{"forward": {}}"#);
        let mut request = get();
        let plan = decide(&cfg, &states(&cfg), &mut request, false);
        assert!(plan.capture.is_none() && plan.route.is_none());
        assert!(request.reads.is_empty(), "{:?}", request.reads);
    }

    #[test]
    fn sampled_out_reads_no_route_no_head() {
        let cfg = mirrors(r#"[{"destinationId": "a", "percentage": 50}]"#);
        let states = states(&cfg);
        let mut request = FakeRequest {
            draw: u32::MAX,
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none() && plan.skipped.is_empty() && plan.route.is_none());
        assert_eq!(request.reads, ["draw"]);
        assert_eq!(outstanding(&states), [0]);
    }

    #[test]
    fn sampled_in_admits_and_captures_in_read_order() {
        let cfg = mirrors(
            r#"[{"destinationId": "a", "percentage": 50, "sampleBy": "x-user", "methods": ["GET"]},
                {"destinationId": "b", "maxBodyBytes": 64}]"#,
        );
        let states = states(&cfg);
        let mut request = FakeRequest {
            route: Some("r1"),
            headers: vec![(":method", "GET")],
            draw: 0,
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(admitted(&plan), ["a", "b"]);
        assert!(plan.skipped.is_empty());
        assert_eq!(plan.route.as_deref(), Some(b"r1".as_slice()));
        assert_eq!(
            request.reads,
            [
                "header :method",
                "header x-user",
                "draw",
                "route",
                "header x-vrata-mirror",
                "head"
            ]
        );
        let capture = plan.capture.unwrap();
        assert!(!capture.complete);
        assert_eq!(capture.head, request.head.unwrap());
        let default_cap = cfg.default_policy.mirrors[0].max_body_bytes;
        assert_eq!(capture.body.room(), default_cap.max(64));
        assert_eq!(outstanding(&states), [1, 1], "each admitted copy holds a slot");
    }

    #[test]
    fn the_route_name_is_read_at_most_once() {
        let cfg = config(
            r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s"}}}},
                "forward": {"mirror": {"destinationId": "d"}}}"#,
        );
        for route in [Some("api"), Some("other"), None] {
            let mut request = FakeRequest { route, ..get() };
            let plan = decide(&cfg, &states(&cfg), &mut request, false);
            let expected = if route == Some("api") { "s" } else { "d" };
            assert_eq!(admitted(&plan), [expected]);
            assert_eq!(request.reads, ["route", MARKER, "head"], "{route:?}");
            assert_eq!(plan.route.as_deref(), route.map(str::as_bytes));
        }
    }

    #[test]
    fn a_backed_off_or_full_destination_refuses_without_a_head_read() {
        let cfg = mirrors(r#"[{"destinationId": "a"}, {"destinationId": "b", "maxInFlight": 1}]"#);
        let states = states(&cfg);
        back_off(&states[0]);
        let held = states[1].borrow_mut().admit(1, || 0).unwrap();
        let mut request = FakeRequest { now_ms: 1, ..get() };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none());
        assert_eq!(
            skipped(&plan),
            [("a", SkipReason::Backoff), ("b", SkipReason::InFlightLimit)]
        );
        assert_eq!(
            request.reads,
            ["route", MARKER, "clock"],
            "no head read when every mirror is refused"
        );
        assert_eq!(outstanding(&states), [0, 1]);
        states[1].borrow_mut().abandon(held);
    }

    #[test]
    fn a_request_carrying_the_loop_marker_is_skipped_as_loop_with_nothing_taken() {
        let cfg =
            mirrors(r#"[{"destinationId": "a", "copies": 2, "maxRequestsPerSecond": 5}, {"destinationId": "b"}]"#);
        let states = states(&cfg);
        back_off(&states[1]);
        let mut request = FakeRequest {
            headers: vec![("x-vrata-mirror", "1")],
            now_ms: 1,
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none());
        assert_eq!(
            skipped(&plan),
            [
                ("a", SkipReason::Loop),
                ("a", SkipReason::Loop),
                ("b", SkipReason::Loop)
            ],
            "each copy once, and loop before the back-off"
        );
        assert_eq!(request.reads, ["route", MARKER], "no slot, no token, no head");
        assert_eq!(outstanding(&states), [0, 0]);

        // Any value marks a copy; without the header the request is mirrored.
        let mut request = FakeRequest {
            headers: vec![("x-vrata-mirror", "")],
            ..get()
        };
        assert_eq!(skipped(&decide(&cfg, &states, &mut request, false)).len(), 3);
        let mut request = get();
        assert_eq!(admitted(&decide(&cfg, &states, &mut request, false)), ["a", "a"]);
    }

    #[test]
    fn the_marker_is_read_by_its_configured_name_or_not_at_all() {
        let mirror = r#""forward": {"mirror": {"destinationId": "a"}}"#;
        let renamed = config(&format!(r#"{{"loopMarker": "x-shadow-copy", {mirror}}}"#));
        let mut request = FakeRequest {
            headers: vec![("x-vrata-mirror", "1")],
            ..get()
        };
        let plan = decide(&renamed, &states(&renamed), &mut request, false);
        assert_eq!(admitted(&plan), ["a"], "the default name is no marker once renamed");
        assert_eq!(request.reads, ["route", "header x-shadow-copy", "head"]);
        let mut request = FakeRequest {
            headers: vec![("x-shadow-copy", "1")],
            ..get()
        };
        let plan = decide(&renamed, &states(&renamed), &mut request, false);
        assert_eq!(skipped(&plan), [("a", SkipReason::Loop)]);

        let off = config(&format!(r#"{{"loopMarker": false, {mirror}}}"#));
        let mut request = FakeRequest {
            headers: vec![("x-vrata-mirror", "1")],
            ..get()
        };
        let plan = decide(&off, &states(&off), &mut request, false);
        assert_eq!(admitted(&plan), ["a"]);
        assert_eq!(request.reads, ["route", "head"], "no marker, no read");
    }

    #[test]
    fn a_refused_mirror_does_not_stop_the_others() {
        let cfg = mirrors(r#"[{"destinationId": "a"}, {"destinationId": "b"}]"#);
        let states = states(&cfg);
        back_off(&states[0]);
        let mut request = FakeRequest { now_ms: 1, ..get() };
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(skipped(&plan), [("a", SkipReason::Backoff)]);
        assert_eq!(admitted(&plan), ["b"]);
        assert_eq!(request.reads, ["route", MARKER, "clock", "head"]);
    }

    #[test]
    fn upgrades_end_every_admission() {
        let cfg = mirrors(r#"[{"destinationId": "a"}, {"destinationId": "b"}]"#);
        let states = states(&cfg);
        let mut request = FakeRequest {
            head: Some(head(&[(":method", "GET"), ("upgrade", "websocket")])),
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none());
        assert_eq!(skipped(&plan), [("a", SkipReason::Upgrade), ("b", SkipReason::Upgrade)]);
        assert_eq!(outstanding(&states), [0, 0]);
    }

    #[test]
    fn a_declared_length_is_held_against_each_mirrors_cap() {
        let cfg = mirrors(
            r#"[{"destinationId": "small", "maxBodyBytes": 10},
                {"destinationId": "large", "maxBodyBytes": 100},
                {"destinationId": "tiny", "maxBodyBytes": 5},
                {"destinationId": "medium", "maxBodyBytes": 50}]"#,
        );
        let states = states(&cfg);
        let mut request = FakeRequest {
            head: Some(head(&[(":method", "POST"), ("content-length", "20")])),
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(
            skipped(&plan),
            [("small", SkipReason::BodyTooLarge), ("tiny", SkipReason::BodyTooLarge)]
        );
        assert_eq!(admitted(&plan), ["large", "medium"]);
        assert_eq!(plan.capture.unwrap().body.room(), 100, "the largest cap of those kept");
        assert_eq!(outstanding(&states), [0, 1, 0, 1]);

        let mut request = FakeRequest {
            head: Some(head(&[(":method", "POST"), ("content-length", "101")])),
            ..get()
        };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none());
        assert_eq!(plan.skipped.len(), 4);
        assert!(plan.skipped.iter().all(|s| s.reason == SkipReason::BodyTooLarge));
        assert_eq!(
            outstanding(&states),
            [0, 1, 0, 1],
            "unchanged: every new admission ended"
        );
    }

    #[test]
    fn a_streamed_copy_holds_a_declared_length_against_its_budget_and_buffers_nothing() {
        // The budget of a streamed copy: maxInFlight × maxBodyBytes (here 2 × 10 and 2 × 5).
        let cfg = mirrors(
            r#"[{"destinationId": "wide", "maxBodyBytes": 10, "maxInFlight": 2},
                {"destinationId": "narrow", "maxBodyBytes": 5, "maxInFlight": 2}]"#,
        );
        let states = states(&cfg);
        let mut request = FakeRequest {
            head: Some(head(&[(":method", "POST"), ("content-length", "15")])),
            ..get()
        };
        let plan = decide_streamed(&cfg, &states, &mut request, false);
        assert_eq!(skipped(&plan), [("narrow", SkipReason::BodyTooLarge)]);
        assert_eq!(
            admitted(&plan),
            ["wide"],
            "15 is over wide's cap of 10, within its budget of 20"
        );
        assert_eq!(plan.capture.unwrap().body.room(), 0, "nothing buffered");
        let mut over = FakeRequest {
            head: Some(head(&[(":method", "POST"), ("content-length", "21")])),
            ..get()
        };
        let plan = decide_streamed(&cfg, &states, &mut over, false);
        assert!(plan.capture.is_none());
        assert_eq!(plan.skipped.len(), 2);
        assert_eq!(outstanding(&states), [1, 0]);
    }

    #[test]
    fn a_request_ending_at_its_headers_is_complete() {
        let cfg = mirrors(r#"[{"destinationId": "a"}]"#);
        let plan = decide(&cfg, &states(&cfg), &mut get(), true);
        let capture = plan.capture.unwrap();
        assert!(capture.complete);
        assert!(capture.body.is_empty());
    }

    #[test]
    fn an_unreadable_head_ends_every_admission_as_a_host_error() {
        let cfg = mirrors(r#"[{"destinationId": "a"}, {"destinationId": "b"}]"#);
        let states = states(&cfg);
        let mut request = FakeRequest { head: None, ..get() };
        let plan = decide(&cfg, &states, &mut request, false);
        assert!(plan.capture.is_none());
        assert_eq!(
            skipped(&plan),
            [("a", SkipReason::HostError), ("b", SkipReason::HostError)]
        );
        assert_eq!(outstanding(&states), [0, 0]);
        assert_eq!(request.reads("head"), 1);
    }

    #[test]
    fn routes_mirroring_to_one_destination_share_its_cap() {
        let cfg = config(
            r#"{"routes": {"api": {"forward": {"mirror": {"destinationId": "s", "maxInFlight": 1}}}},
                "forward": {"mirror": {"destinationId": "s", "maxInFlight": 1}}}"#,
        );
        let states = states(&cfg);
        assert_eq!(states.len(), 1);
        let first = decide(
            &cfg,
            &states,
            &mut FakeRequest {
                route: Some("api"),
                ..get()
            },
            false,
        );
        assert_eq!(admitted(&first), ["s"]);
        let second = decide(&cfg, &states, &mut get(), false);
        assert_eq!(skipped(&second), [("s", SkipReason::InFlightLimit)]);
    }

    #[test]
    fn each_copy_takes_its_own_slot() {
        let cfg = mirrors(r#"[{"destinationId": "a", "copies": 3, "maxInFlight": 2}]"#);
        let states = states(&cfg);
        let mut request = get();
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(admitted(&plan), ["a", "a"]);
        assert_eq!(skipped(&plan), [("a", SkipReason::InFlightLimit)]);
        assert_eq!(outstanding(&states), [2]);
        assert_eq!(request.reads("head"), 1, "one head for every copy");
    }

    #[test]
    fn each_copy_takes_its_own_token_in_one_read_and_one_write() {
        let cfg = mirrors(r#"[{"destinationId": "a", "copies": 3, "maxRequestsPerSecond": 1, "burst": 2}]"#);
        let states = states(&cfg);
        let mut request = FakeRequest { now_ms: 5_000, ..get() };
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(admitted(&plan), ["a", "a"]);
        assert_eq!(skipped(&plan), [("a", SkipReason::RateLimited)]);
        assert_eq!(outstanding(&states), [2], "the copy over the rate gave its slot back");
        assert_eq!(
            request.reads,
            ["route", MARKER, "shared load", "clock", "shared store", "head"]
        );
        let key = &cfg.default_policy.mirrors[0].rate_cap.as_ref().unwrap().key;
        let stored = Bucket::decode(&request.shared[key].0).unwrap();
        assert_eq!((stored.whole(), stored.stamp_ms), (0, 5_000));
    }

    #[test]
    fn over_the_rate_a_request_reads_the_bucket_and_nothing_else() {
        let cfg = mirrors(r#"[{"destinationId": "a", "maxRequestsPerSecond": 1}]"#);
        let states = states(&cfg);
        let mut first = get();
        assert_eq!(admitted(&decide(&cfg, &states, &mut first, false)), ["a"]);
        let mut second = FakeRequest {
            shared: first.shared.clone(),
            ..get()
        };
        let plan = decide(&cfg, &states, &mut second, false);
        assert!(plan.capture.is_none());
        assert_eq!(skipped(&plan), [("a", SkipReason::RateLimited)]);
        assert_eq!(
            second.reads,
            ["route", MARKER, "shared load", "clock"],
            "no write, no head"
        );
        // A second later the bucket has a token again.
        let mut later = FakeRequest {
            shared: second.shared.clone(),
            now_ms: 1_000,
            ..get()
        };
        assert_eq!(admitted(&decide(&cfg, &states, &mut later, false)), ["a"]);
    }

    #[test]
    fn requests_out_of_the_sample_or_refused_never_touch_the_bucket() {
        let cfg = mirrors(
            r#"[{"destinationId": "a", "percentage": 50, "maxRequestsPerSecond": 5},
                {"destinationId": "b", "maxRequestsPerSecond": 5}]"#,
        );
        let states = states(&cfg);
        back_off(&states[1]);
        let mut out = FakeRequest {
            draw: u32::MAX,
            ..get()
        };
        let plan = decide(&cfg, &states, &mut out, false);
        assert_eq!(skipped(&plan), [("b", SkipReason::Backoff)]);
        assert!(
            !out.reads.iter().any(|r| r.starts_with("shared")),
            "a mirror out of the sample and a backed-off one read no shared data: {:?}",
            out.reads
        );
    }

    #[test]
    fn a_secondary_gets_one_copy_after_its_candidates_with_its_own_slot_and_bucket() {
        let cfg = mirrors(
            r#"[{"destinationId": "canary", "copies": 2, "maxRequestsPerSecond": 1, "burst": 2,
                 "compare": {"body": "json", "secondary": "stable"}},
                {"destinationId": "other"}]"#,
        );
        let states = states(&cfg);
        assert_eq!(cfg.destinations, ["stable", "canary", "other"]);
        let mut request = FakeRequest { now_ms: 5_000, ..get() };
        let plan = decide(&cfg, &states, &mut request, false);
        assert_eq!(admitted(&plan), ["canary", "canary", "stable", "other"]);
        assert_eq!(outstanding(&states), [1, 2, 1]);
        let canary = &cfg.default_policy.mirrors[0];
        let secondary = canary.secondary.as_ref().unwrap();
        assert_ne!(
            secondary.rate_cap.as_ref().unwrap().key,
            canary.rate_cap.as_ref().unwrap().key,
            "a bucket of its own"
        );
        assert_eq!(
            request.reads("shared load"),
            2,
            "the candidate's bucket, then the secondary's"
        );
        // The candidate's bucket is empty now: no candidate copy, so no secondary.
        let mut again = FakeRequest {
            now_ms: 5_000,
            shared: request.shared.clone(),
            ..get()
        };
        let plan = decide(&cfg, &states, &mut again, false);
        assert_eq!(
            skipped(&plan),
            [("canary", SkipReason::RateLimited), ("canary", SkipReason::RateLimited)]
        );
        assert_eq!(admitted(&plan), ["other"]);
        // A backed-off secondary is skipped on its own; the candidate goes.
        let cfg = mirrors(r#"[{"destinationId": "canary", "compare": {"body": "json", "secondary": "stable"}}]"#);
        let fresh = super::tests::states(&cfg);
        back_off(&fresh[0]);
        let plan = decide(&cfg, &fresh, &mut FakeRequest { now_ms: 1, ..get() }, false);
        assert_eq!(admitted(&plan), ["canary"]);
        assert_eq!(skipped(&plan), [("stable", SkipReason::Backoff)]);
    }

    #[test]
    fn a_bucket_that_cannot_be_used_skips_every_copy_as_rate_unavailable() {
        let cfg =
            mirrors(r#"[{"destinationId": "a", "copies": 2, "maxRequestsPerSecond": 5}, {"destinationId": "b"}]"#);
        for fault in [StoreError::Failed, StoreError::Conflict] {
            let states = states(&cfg);
            let mut request = FakeRequest {
                shared_fault: Some(fault),
                ..get()
            };
            let plan = decide(&cfg, &states, &mut request, false);
            assert_eq!(
                skipped(&plan),
                [("a", SkipReason::RateUnavailable), ("a", SkipReason::RateUnavailable)],
                "{fault:?}"
            );
            assert_eq!(admitted(&plan), ["b"], "other mirrors go on");
            assert_eq!(outstanding(&states), [0, 1]);
            let (loads, clocks) = match fault {
                StoreError::Conflict => (MAX_ATTEMPTS as usize, 1),
                StoreError::Failed => (1, 0),
            };
            assert_eq!(request.reads("shared load"), loads, "{fault:?}: bounded");
            assert_eq!(
                request.reads("clock"),
                clocks,
                "{fault:?}: the clock is read at most once"
            );
            assert_eq!(request.reads("head"), 1, "for b");
        }
    }
}
