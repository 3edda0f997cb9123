//! Sampling: the observed fraction converges on the percentage, a `sampleBy`
//! key decides the same way every time, and raising the percentage never
//! drops a request that was in.

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
}
