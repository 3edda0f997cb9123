//! Noise cancellation (issue 23): the field paths of a pair, Diffy's rule,
//! the per-endpoint table's bounds and its stored form.

use crate::strategies::{json_value, SplitMix};
use proptest::prelude::*;
use serde_json::{json, Value};
use vrata_mirror_core::compare::fields::MAX_PATH_BYTES;
use vrata_mirror_core::compare::noise::{
    decode_directory, encode_directory, is_real, max_table_len, Counts, EndpointTable, NoiseVerdict,
};
use vrata_mirror_core::compare::{field_differences, FieldDiffs, JsonDifferenceKind};
use vrata_mirror_core::config::{BodyComparison, NoisePolicy};

fn diffs(p: &Value, s: &Value, max: usize) -> FieldDiffs {
    let mut out = FieldDiffs::new();
    field_differences(
        &mut out,
        p.to_string().as_bytes(),
        s.to_string().as_bytes(),
        BodyComparison::Json,
        &[],
        max,
    );
    out
}

fn listed(d: &FieldDiffs) -> Vec<(String, JsonDifferenceKind)> {
    d.fields().map(|f| (f.path.to_owned(), f.kind)).collect()
}

fn policy(min_requests: u64, max_fields: usize) -> NoisePolicy {
    NoisePolicy {
        secondary: "secondary".to_owned(),
        secondary_index: 0,
        relative_ppm: 200_000,
        absolute_ppm: 300,
        min_requests,
        max_fields,
        max_endpoints: 64,
        key_prefix: "p".to_owned(),
    }
}

/// An object from `keys` (indexes into a small alphabet) where each key
/// differs in one of three ways, so that tables see value, type and
/// one-side differences on overlapping fields.
fn pair(keys: &[(u8, u8)]) -> (Value, Value) {
    let (mut p, mut s) = (serde_json::Map::new(), serde_json::Map::new());
    for (key, how) in keys {
        let key = format!("k{}", key % 12);
        match how % 3 {
            0 => {
                p.insert(key.clone(), json!(0));
                s.insert(key, json!(1));
            }
            1 => {
                p.insert(key, json!(0));
            }
            _ => {
                p.insert(key.clone(), json!(0));
                s.insert(key, json!("0"));
            }
        }
    }
    (Value::Object(p), Value::Object(s))
}

fn sample_keys() -> impl Strategy<Value = Vec<(u8, u8)>> {
    prop::collection::vec((any::<u8>(), any::<u8>()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_rule_is_monotonic(raw in 0u64..100_000, noise in 0u64..100_000, requests in 1u64..1_000_000,
                             rel in 0u32..1_000_000, abs in 0u32..1_000_000) {
        let real = |raw, noise, requests| is_real(Counts { raw, noise }, requests, rel, abs);
        if real(raw, noise, requests) {
            prop_assert!(raw > noise);
            prop_assert!(real(raw + 1, noise, requests), "more raw differences stay real");
            prop_assert!(!real(noise, raw, requests), "never both ways");
        }
        if real(raw, noise + 1, requests) {
            prop_assert!(real(raw, noise, requests), "less noise stays real");
        }
        if real(raw, noise, requests + 1) {
            prop_assert!(real(raw, noise, requests), "fewer requests stay real");
        }
    }

    #[test]
    fn field_paths_are_normalized_and_bounded(a in json_value(), b in json_value(), max in 1usize..20) {
        let d = diffs(&a, &b, max);
        prop_assert!(d.len() <= max);
        for field in d.fields() {
            prop_assert!(field.path.len() <= MAX_PATH_BYTES);
            // No index survives: every '[' outside a quoted key opens "[]" or "[\"".
            let mut rest = field.path;
            while let Some(at) = rest.find('[') {
                let next = rest.as_bytes().get(at + 1).copied();
                prop_assert!(matches!(next, Some(b']') | Some(b'"')), "{}", field.path);
                rest = match next {
                    // Skip the quoted key: to the closing `"]`, escapes included.
                    Some(b'"') => rest.get(at + 2..).and_then(|r| r.find("\"]").and_then(|e| r.get(e + 2..))).unwrap_or(""),
                    _ => rest.get(at + 2..).unwrap_or(""),
                };
            }
        }
        prop_assert!(diffs(&a, &a, max).is_empty());
    }

    #[test]
    fn field_differences_are_symmetric(a in json_value(), b in json_value()) {
        use JsonDifferenceKind::{OnlyInPrimary, OnlyInShadow};
        let mut there: Vec<_> = listed(&diffs(&a, &b, 10_000));
        let back: Vec<_> = listed(&diffs(&b, &a, 10_000));
        for (_, kind) in &mut there {
            *kind = match *kind {
                OnlyInPrimary => OnlyInShadow,
                OnlyInShadow => OnlyInPrimary,
                other => other,
            };
        }
        there.sort();
        prop_assert_eq!(there, back);
    }

    #[test]
    fn a_shuffled_list_is_one_order_difference(items in prop::collection::vec(json_value(), 0..12), seed in any::<u64>()) {
        let mut shuffled = items.clone();
        let mut rng = SplitMix(seed);
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let d = listed(&diffs(&json!({ "l": items }), &json!({ "l": shuffled }), 64));
        prop_assert!(d.is_empty() || d == [("l[]".to_owned(), JsonDifferenceKind::Order)], "{:?}", d);
    }

    #[test]
    fn tables_stay_within_bounds_and_round_trip(
        requests in prop::collection::vec((sample_keys(), sample_keys()), 1..40),
        max_fields in 1usize..8,
        cap in 1usize..10,
    ) {
        let mut table = EndpointTable::new();
        let mut bytes = Vec::new();
        for (n, (raw, noise)) in requests.iter().enumerate() {
            let (rp, rs) = pair(raw);
            let (np, ns) = pair(noise);
            table.record(&diffs(&rp, &rs, cap), &diffs(&np, &ns, cap), max_fields);
            prop_assert_eq!(table.requests(), n as u64 + 1);
            prop_assert!(table.fields().count() <= max_fields);
            let within = |c: Counts| c.raw <= table.requests() && c.noise <= table.requests();
            prop_assert!(table.fields().all(|(_, c)| within(c)) && within(table.overflow()));
            table.encode_into(&mut bytes);
            prop_assert!(bytes.len() <= max_table_len(max_fields));
            let mut back = EndpointTable::new();
            prop_assert_eq!(back.decode_into(&bytes), Ok(()));
            prop_assert_eq!(&back, &table);
        }
    }

    #[test]
    fn decoding_never_panics_and_accepts_only_canonical_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut table = EndpointTable::new();
        if table.decode_into(&bytes).is_ok() {
            let mut again = Vec::new();
            table.encode_into(&mut again);
            prop_assert_eq!(again, bytes.clone());
        }
        if let Ok(entries) = decode_directory(&bytes) {
            let mut again = Vec::new();
            encode_directory(&entries, &mut again);
            prop_assert_eq!(again, bytes);
        }
    }

    #[test]
    fn a_corrupted_table_is_refused_or_read_exactly(keys in sample_keys(), at in any::<usize>(), byte in any::<u8>()) {
        let mut table = EndpointTable::new();
        let (p, s) = pair(&keys);
        let d = diffs(&p, &s, 64);
        for _ in 0..3 {
            table.record(&d, &d, 64);
        }
        let mut bytes = Vec::new();
        table.encode_into(&mut bytes);
        let i = at % bytes.len();
        bytes[i] = byte;
        let mut back = EndpointTable::new();
        if back.decode_into(&bytes).is_ok() {
            let mut again = Vec::new();
            back.encode_into(&mut again);
            prop_assert_eq!(again, bytes);
        } else {
            prop_assert_eq!(back, EndpointTable::new());
        }
    }
}

/// The end-to-end scenario, without Envoy: primary and secondary
/// answer a timestamp, a random id and a list in random order; the
/// candidate the same, with the price off by one on 10 % of requests.
/// After `minRequests`, exactly the requests with a wrong price are
/// `body_mismatch` and all others `noise`; before, `learning`.
#[test]
fn timestamps_ids_and_list_order_are_noise_and_a_wrong_price_is_real() {
    let p = policy(3_334, 64);
    let mut rng = SplitMix(23);
    fn answer(price: u64, rng: &mut SplitMix) -> Value {
        let mut list = vec![1, 2, 3, 4, 5];
        for i in (1..list.len()).rev() {
            list.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        json!({"ts": rng.next_u64(), "id": format!("{:x}", rng.next_u64()), "items": list, "price": price})
    }
    let mut table = EndpointTable::new();
    let mut counts = std::collections::HashMap::new();
    let mut wrong = 0;
    for n in 1..=10_000u64 {
        let primary = answer(100, &mut rng);
        let secondary = answer(100, &mut rng);
        let off = rng.next_u64().is_multiple_of(10);
        let candidate = answer(if off { 101 } else { 100 }, &mut rng);
        let raw = diffs(&primary, &candidate, 64);
        table.record(&raw, &diffs(&primary, &secondary, 64), p.max_fields);
        let verdict = table.verdict(&raw, &p);
        if n < p.min_requests {
            assert_eq!(verdict, NoiseVerdict::Learning, "request {n}");
            continue;
        }
        wrong += u64::from(off);
        let expected = if off {
            NoiseVerdict::BodyMismatch
        } else {
            NoiseVerdict::Noise
        };
        assert_eq!(verdict, expected, "request {n}");
        *counts.entry(verdict).or_insert(0u64) += 1;
    }
    let judged = 10_000 - (p.min_requests - 1);
    assert_eq!(counts.get(&NoiseVerdict::BodyMismatch).copied().unwrap_or(0), wrong);
    let slack = crate::strategies::binomial_slack(judged, 0.1);
    assert!(
        (wrong as f64 - judged as f64 * 0.1).abs() <= slack,
        "{wrong} of {judged}"
    );
    let field = |path| vrata_mirror_core::compare::Field {
        path,
        kind: JsonDifferenceKind::Value,
    };
    let ts = table.counts(field("ts")).unwrap();
    assert_eq!((ts.raw, ts.noise), (10_000, 10_000));
    let price = table.counts(field("price")).unwrap();
    assert_eq!(price.noise, 0);
    let order = table
        .counts(vrata_mirror_core::compare::Field {
            path: "items[]",
            kind: JsonDifferenceKind::Order,
        })
        .unwrap();
    assert!(order.raw > 9_000 && order.noise > 9_000, "{order:?}");
}
