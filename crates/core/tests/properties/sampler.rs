//! Sampling: the observed fraction converges on the percentage, a `sampleBy`
//! key decides the same way every time, raising the percentage never drops
//! a request that was in, and mirrors keyed by the same header nest (a 5 %
//! mirror's keys are inside a 10 % mirror's).

use crate::strategies::{binomial_slack, SplitMix};
use proptest::prelude::*;
use std::rc::Rc;
use vrata_mirror_core::config::{parse, MirrorPolicy};
use vrata_mirror_core::mirror::select::{sampled_mirrors, HeaderLookup};
use vrata_mirror_core::sampling::{key_draw, SampleRate};

const DRAWS: u64 = 20_000;

struct Headers(Vec<(String, Vec<u8>)>);

impl HeaderLookup for Headers {
    fn header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
}

fn mirror(percentage: f64, sample_by: Option<&str>) -> Rc<MirrorPolicy> {
    let sample_by = sample_by.map(|h| format!(r#", "sampleBy": "{h}""#)).unwrap_or_default();
    let text =
        format!(r#"{{"forward": {{"mirror": {{"destinationId": "s", "percentage": {percentage}{sample_by}}}}}}}"#);
    parse(text.as_bytes()).unwrap().default_policy.mirrors[0].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn observed_fraction_converges_on_the_percentage(percentage in 0.0f64..=100.0, seed in any::<u64>()) {
        let rate = SampleRate::from_percentage(percentage);
        let p = percentage / 100.0;
        prop_assert!((rate.fraction() - p).abs() < 1e-9);
        let mut rng = SplitMix(seed);
        let admitted = (0..DRAWS).filter(|_| rate.admits(rng.next_u32())).count() as f64;
        let expected = DRAWS as f64 * p;
        prop_assert!(
            (admitted - expected).abs() <= binomial_slack(DRAWS, p),
            "{admitted} of {DRAWS} admitted at {percentage} %, expected {expected:.1} ± {:.1}",
            binomial_slack(DRAWS, p)
        );
    }

    #[test]
    fn the_same_path_through_sampled_mirrors_converges(percentage in 0.0f64..=100.0, seed in any::<u64>()) {
        let mirrors = vec![mirror(percentage, None)];
        let mut rng = SplitMix(seed);
        let mut draw = || rng.next_u32();
        let chosen = (0..DRAWS)
            .filter(|_| !sampled_mirrors(&mirrors, &mut Headers(Vec::new()), &mut draw).is_empty())
            .count() as f64;
        let p = percentage / 100.0;
        prop_assert!((chosen - DRAWS as f64 * p).abs() <= binomial_slack(DRAWS, p), "{chosen} at {percentage} %");
    }

    #[test]
    fn zero_is_never_and_hundred_is_always(draw in any::<u32>()) {
        prop_assert!(!SampleRate::from_percentage(0.0).admits(draw));
        prop_assert!(SampleRate::from_percentage(100.0).admits(draw));
    }

    #[test]
    fn raising_the_percentage_keeps_everyone_who_was_in(a in 0.0f64..=100.0, b in 0.0f64..=100.0, draw in any::<u32>()) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        if SampleRate::from_percentage(low).admits(draw) {
            prop_assert!(SampleRate::from_percentage(high).admits(draw));
        }
    }

    #[test]
    fn a_key_decides_the_same_way_every_time(key in prop::collection::vec(any::<u8>(), 0..40), percentage in 0.0f64..=100.0) {
        let mirrors = vec![mirror(percentage, Some("x-user-id"))];
        let headers = || Headers(vec![("x-user-id".to_owned(), key.clone())]);
        // The random draws differ wildly; a keyed decision must not depend on them.
        let first = sampled_mirrors(&mirrors, &mut headers(), &mut || 0).len();
        for draw in [u32::MAX, 1 << 31, 12345] {
            prop_assert_eq!(sampled_mirrors(&mirrors, &mut headers(), &mut || draw).len(), first);
        }
        prop_assert_eq!(key_draw(&key), key_draw(&key.clone()));
        prop_assert_eq!(first == 1, SampleRate::from_percentage(percentage).admits(key_draw(&key)));
    }

    #[test]
    fn distinct_keys_spread_like_the_percentage(percentage in 1.0f64..=99.0, prefix in "[a-z]{0,6}") {
        let n = 4_000u64;
        let rate = SampleRate::from_percentage(percentage);
        let admitted = (0..n).filter(|i| rate.admits(key_draw(format!("{prefix}{i}").as_bytes()))).count() as f64;
        let p = percentage / 100.0;
        prop_assert!(
            (admitted - n as f64 * p).abs() <= binomial_slack(n, p),
            "{admitted} of {n} keys at {percentage} %"
        );
    }

    /// Several mirrors of one request, keyed by the same `sampleBy` header:
    /// whichever is listed first, a key in a smaller mirror's sample is in
    /// every larger one's (the seed's example: a 5 % load-test mirror inside
    /// a 10 % canary mirror), and the random draws play no part.
    #[test]
    fn mirrors_keyed_by_one_header_nest(
        key in prop::collection::vec(any::<u8>(), 0..40),
        percentages in prop::collection::vec(0.0f64..=100.0, 2..5),
        draw in any::<u32>(),
    ) {
        let list = percentages
            .iter()
            .enumerate()
            .map(|(i, p)| format!(r#"{{"destinationId": "m{i}", "percentage": {p}, "sampleBy": "x-user-id"}}"#))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(r#"{{"forward": {{"mirrors": [{list}]}}}}"#);
        let mirrors = parse(text.as_bytes()).unwrap().default_policy.mirrors;
        let mut headers = Headers(vec![("x-user-id".to_owned(), key.clone())]);
        let chosen: Vec<String> = sampled_mirrors(&mirrors, &mut headers, &mut || draw)
            .iter()
            .map(|m| m.destination.clone())
            .collect();
        for (i, small) in percentages.iter().enumerate() {
            for (j, large) in percentages.iter().enumerate() {
                let in_small = chosen.contains(&format!("m{i}"));
                let in_large = chosen.contains(&format!("m{j}"));
                if small <= large && in_small {
                    prop_assert!(in_large, "key {key:?} in m{i} ({small} %) but not in m{j} ({large} %)");
                }
            }
        }
    }

    /// The same, counted: over many keys, the 5 % mirror's keys are a subset
    /// of the 10 % mirror's, and each is near its percentage.
    #[test]
    fn a_five_percent_mirror_is_inside_a_ten_percent_one(prefix in "[a-z]{0,6}") {
        let text = r#"{"forward": {"mirrors": [
            {"destinationId": "five", "percentage": 5, "sampleBy": "x-user-id"},
            {"destinationId": "ten", "percentage": 10, "sampleBy": "x-user-id"}]}}"#;
        let mirrors = parse(text.as_bytes()).unwrap().default_policy.mirrors;
        let n = 4_000u64;
        let (mut five, mut ten) = (0u64, 0u64);
        for i in 0..n {
            let mut headers = Headers(vec![("x-user-id".to_owned(), format!("{prefix}{i}").into_bytes())]);
            let chosen: Vec<String> = sampled_mirrors(&mirrors, &mut headers, &mut || 0)
                .iter()
                .map(|m| m.destination.clone())
                .collect();
            let (in_five, in_ten) = (chosen.iter().any(|d| d == "five"), chosen.iter().any(|d| d == "ten"));
            prop_assert!(!in_five || in_ten, "key {prefix}{i} is in the 5 % mirror only");
            five += u64::from(in_five);
            ten += u64::from(in_ten);
        }
        prop_assert!((five as f64 - n as f64 * 0.05).abs() <= binomial_slack(n, 0.05), "{five} of {n} at 5 %");
        prop_assert!((ten as f64 - n as f64 * 0.10).abs() <= binomial_slack(n, 0.10), "{ten} of {n} at 10 %");
    }
}
