//! proxy-wasm wire formats, decoded without trusting the host: a malformed
//! buffer yields `None`, never a panic (the SDK's own decoders unwrap).
//! Compiled on every target (the glue in `proxy` only on wasm32), so that
//! it is tested natively and the fuzz targets reach it.

/// Decodes a serialized header map: a u32 count, then a (name length, value
/// length) u32 pair per entry, then each name and value followed by a NUL.
/// All integers are little-endian.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let name_len = read_u32(bytes, 4 + i * 8)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8)? as usize;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data + name_len + 1;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data + value_len + 1;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// Encodes pairs in the same format. The filter itself never sends a map;
/// this is the other half of the round-trip tests (here and in
/// `tests/properties`). The wasm harness's host encodes with a codec of its
/// own, so that a bug here cannot hide a bug in `decode_map`.
pub fn encode_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 10 + n.as_ref().len() + v.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.as_ref().len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

/// Encodes a property path (`["xds", "route_name"]`) as NUL-separated segments.
pub fn encode_property_path(segments: &[&str]) -> Vec<u8> {
    segments.join("\0").into_bytes()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/x"), (b"x-bin", b"\xff\x00z"), (b"", b"")];
        let encoded = encode_map(&pairs);
        assert_eq!(decode_map(&encoded).unwrap(), pairs);
        assert_eq!(decode_map(&[]).unwrap(), Vec::<(&[u8], &[u8])>::new());
    }

    #[test]
    fn malformed_maps_are_refused_not_panicked_on() {
        let good = encode_map(&[(b"a".as_slice(), b"b".as_slice())]);
        for cut in 1..good.len() - 1 {
            // Every truncation that loses payload bytes must be refused.
            let truncated = &good[..cut];
            if let Some(pairs) = decode_map(truncated) {
                panic!("decoded {pairs:?} from {cut} bytes");
            }
        }
        assert!(decode_map(&[0xff, 0xff, 0xff, 0xff]).is_none());
        let mut huge_len = good.clone();
        huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_map(&huge_len).is_none());
    }

    #[test]
    fn property_paths() {
        assert_eq!(encode_property_path(&["xds", "route_name"]), b"xds\0route_name");
    }

    mod properties {
        //! The header-map wire format: encoding round-trips, and decoding never
        //! panics on bytes a host (or an attacker) could hand over.

        use super::super::{decode_map, encode_map, encode_property_path};
        use proptest::prelude::*;

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
    }
}
