//! The body accumulator: keeps exactly the bytes pushed, up to the limit,
//! and refuses the byte past it.

use proptest::prelude::*;
use vrata_mirror_core::mirror::body::{BodyCopy, TooLarge};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keeps_exactly_what_was_pushed_until_the_limit(
        limit in 0usize..2048,
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
    ) {
        let mut copy = BodyCopy::start(limit, None).unwrap();
        let mut kept: Vec<u8> = Vec::new();
        for chunk in &chunks {
            let fits = kept.len() + chunk.len() <= limit;
            prop_assert_eq!(copy.room(), limit - kept.len());
            match copy.push(chunk) {
                Ok(()) => {
                    prop_assert!(fits, "accepted a chunk past the limit");
                    kept.extend_from_slice(chunk);
                    prop_assert_eq!(copy.len(), kept.len());
                }
                Err(TooLarge) => {
                    prop_assert!(!fits, "refused a chunk that fit");
                    prop_assert!(copy.is_empty(), "an overflowing copy frees its bytes");
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(copy.into_bytes(), kept);
    }

    #[test]
    fn exactly_the_limit_fits_and_one_more_byte_does_not(
        limit in 0usize..4096,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        declared in any::<bool>(),
    ) {
        let body: Vec<u8> = (0..limit).map(|i| (i % 253) as u8).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(limit + 1)).collect();
        points.push(0);
        points.push(limit);
        points.sort_unstable();
        let mut copy = BodyCopy::start(limit, declared.then_some(limit as u64)).unwrap();
        for pair in points.windows(2) {
            copy.push(&body[pair[0]..pair[1]]).unwrap();
        }
        prop_assert_eq!(copy.room(), 0);
        prop_assert_eq!(copy.push(b"x"), Err(TooLarge));
        prop_assert!(copy.is_empty());
    }

    #[test]
    fn a_declared_length_is_refused_exactly_when_too_large(limit in 0usize..1_000_000, declared in 0u64..2_000_000) {
        let started = BodyCopy::start(limit, Some(declared));
        prop_assert_eq!(started.is_err(), declared > limit as u64);
    }
}
