//! The header-map wire format: encoding round-trips, and decoding never
//! panics on bytes a host (or an attacker) could hand over.

use proptest::prelude::*;
use vrata_mirror_core::abi::{decode_map, encode_map, encode_property_path};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_inverts_encode(
        pairs in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..24), prop::collection::vec(any::<u8>(), 0..48)),
            0..12,
        ),
    ) {
        let encoded = encode_map(&pairs);
        let decoded = decode_map(&encoded).expect("an encoded map decodes");
        let expected: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Some(pairs) = decode_map(&bytes) {
            // Whatever it returns lies inside the input.
            let total: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
            prop_assert!(total <= bytes.len());
        }
    }

    #[test]
    fn decode_never_panics_on_corrupted_maps(
        pairs in prop::collection::vec(("[a-z:-]{0,10}", "[ -~]{0,20}"), 1..6),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut encoded = encode_map(&pairs);
        let i = at.index(encoded.len());
        encoded[i] = value;
        encoded.truncate(cut.index(encoded.len() + 1));
        let _ = decode_map(&encoded);
    }

    #[test]
    fn property_paths_join_segments_with_nul(segments in prop::collection::vec("[a-z_.]{1,12}", 1..5)) {
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let encoded = encode_property_path(&refs);
        let split: Vec<&[u8]> = encoded.split(|b| *b == 0).collect();
        prop_assert_eq!(split, refs.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
    }
}
