use super::*;
use crate::compare::fields::field_differences;
use crate::config::BodyComparison;
use JsonDifferenceKind::{Order, Value};

fn policy() -> NoisePolicy {
    NoisePolicy {
        secondary: "secondary".to_owned(),
        secondary_index: 1,
        relative_ppm: 200_000,
        absolute_ppm: 300,
        min_requests: 3_334,
        max_fields: 64,
        max_endpoints: 64,
        key_prefix: "vrata_mirror.noise.v1:forward.mirror:canary".to_owned(),
    }
}

fn diffs(p: &str, s: &str, max: usize) -> FieldDiffs {
    let mut out = FieldDiffs::new();
    field_differences(&mut out, p.as_bytes(), s.as_bytes(), BodyComparison::Json, &[], max);
    out
}

fn field(path: &str, kind: JsonDifferenceKind) -> Field<'_> {
    Field { path, kind }
}

fn c(raw: u64, noise: u64) -> Counts {
    Counts { raw, noise }
}

#[test]
fn the_rule_needs_all_three_conditions() {
    let (rel, abs) = (200_000, 300);
    // raw must be above noise.
    assert!(!is_real(c(10, 10), 10_000, rel, abs));
    assert!(!is_real(c(5, 10), 10_000, rel, abs));
    assert!(is_real(c(10, 0), 10_000, rel, abs));
    // Relative: (6 - 4) / 10 = 20 % is not above 20 %; (7 - 4) / 11 is.
    assert!(!is_real(c(6, 4), 1_000, rel, abs));
    assert!(is_real(c(7, 4), 1_000, rel, abs));
    // Absolute: 3 / 10,000 = 0.03 % is not above 0.03 %; 4 / 10,000 is.
    assert!(!is_real(c(3, 0), 10_000, rel, abs));
    assert!(is_real(c(4, 0), 10_000, rel, abs));
    // A field that differs on every request on both sides is noise...
    assert!(!is_real(c(10_000, 10_000), 10_000, rel, abs));
    // ... also when the candidate differs a little more, by chance.
    assert!(!is_real(c(5_100, 4_900), 10_000, rel, abs));
    assert!(!is_real(c(1, 0), 0, rel, abs), "no requests: nothing is real");
    // Thresholds of 0: any excess is real.
    assert!(is_real(c(1, 0), u64::MAX, 0, 0));
}

#[test]
fn verdicts_match_learning_noise_and_body_mismatch() {
    let p = policy();
    let none = FieldDiffs::new();
    let ts = diffs(r#"{"ts":1,"price":1}"#, r#"{"ts":2,"price":1}"#, 64);
    let ts_and_price = diffs(r#"{"ts":1,"price":1}"#, r#"{"ts":2,"price":2}"#, 64);
    let mut table = EndpointTable::new();
    // Learning: the timestamp differs on both sides, the price sometimes
    // on the candidate only (every 10th request).
    for i in 1..p.min_requests {
        let raw = if i % 10 == 0 { &ts_and_price } else { &ts };
        table.record(raw, &ts, p.max_fields);
        assert_eq!(table.verdict(raw, &p), NoiseVerdict::Learning, "request {i}");
        assert_eq!(
            table.verdict(&none, &p),
            NoiseVerdict::Match,
            "a match is never a guess"
        );
    }
    table.record(&ts, &ts, p.max_fields);
    assert_eq!(table.requests(), p.min_requests);
    assert_eq!(table.verdict(&ts, &p), NoiseVerdict::Noise);
    assert_eq!(table.verdict(&ts_and_price, &p), NoiseVerdict::BodyMismatch);
    assert_eq!(table.verdict(&none, &p), NoiseVerdict::Match);
    assert_eq!(table.counts(field("ts", Value)), Some(c(3_334, 3_334)));
    assert_eq!(table.counts(field("price", Value)), Some(c(333, 0)));
}

#[test]
fn list_order_is_learned_as_noise() {
    let p = NoisePolicy {
        min_requests: 10,
        ..policy()
    };
    let reordered = diffs(r#"{"l":[1,2,3]}"#, r#"{"l":[3,1,2]}"#, 64);
    assert!(reordered.contains(field("l[]", Order)));
    let mut table = EndpointTable::new();
    for _ in 0..10 {
        table.record(&reordered, &reordered, p.max_fields);
    }
    assert_eq!(table.verdict(&reordered, &p), NoiseVerdict::Noise);
}

#[test]
fn fields_beyond_max_fields_share_the_overflow_bucket_once_per_request() {
    let p = NoisePolicy {
        max_fields: 2,
        min_requests: 1,
        ..policy()
    };
    let many = diffs(r#"{"a":1,"b":1,"c":1,"d":1}"#, r#"{"a":2,"b":2,"c":2,"d":2}"#, 64);
    let mut table = EndpointTable::new();
    table.record(&many, &FieldDiffs::new(), p.max_fields);
    assert_eq!(table.fields().count(), 2);
    assert_eq!(table.overflow(), c(1, 0), "c and d: one count for the request");
    // A comparison that itself overflowed counts there too.
    let capped = diffs(r#"{"x":1,"y":1}"#, r#"{"x":2,"y":2}"#, 1);
    assert!(capped.overflowed());
    table.record(&FieldDiffs::new(), &capped, p.max_fields);
    assert_eq!(table.overflow(), c(1, 1));
    assert_eq!(table.fields().count(), 2, "the table is still full");
    // The bucket is judged by the rule like a field.
    let only_d = diffs(r#"{"d":1}"#, r#"{"d":2}"#, 64);
    assert_eq!(
        table.verdict(&only_d, &p),
        NoiseVerdict::Noise,
        "overflow raw 1 = noise 1"
    );
    table.record(&only_d, &FieldDiffs::new(), p.max_fields);
    assert_eq!(table.overflow(), c(2, 1));
    assert_eq!(table.verdict(&only_d, &p), NoiseVerdict::BodyMismatch);
}

#[test]
fn a_field_never_counted_is_learning_when_the_request_is_not_counted() {
    let p = NoisePolicy {
        min_requests: 1,
        ..policy()
    };
    let mut table = EndpointTable::new();
    let a = diffs(r#"{"a":1}"#, r#"{"a":2}"#, 64);
    table.record(&a, &a, p.max_fields);
    let b = diffs(r#"{"b":1}"#, r#"{"b":2}"#, 64);
    assert_eq!(table.verdict(&b, &p), NoiseVerdict::Learning);
    assert_eq!(table.verdict(&a, &p), NoiseVerdict::Noise);
}

fn sample_table() -> EndpointTable {
    let mut table = EndpointTable::new();
    let raw = diffs(
        r#"{"ts":1,"items":[{"p":1}],"m":{"é x":1},"l":[1,2]}"#,
        r#"{"ts":2,"items":[{"p":2}],"m":{"é x":2},"l":[2,1]}"#,
        64,
    );
    let noise = diffs(r#"{"ts":1,"l":[1,2]}"#, r#"{"ts":3,"l":[1,2,3]}"#, 64);
    for _ in 0..3 {
        table.record(&raw, &noise, 3);
    }
    table
}

#[test]
fn a_table_round_trips() {
    let table = sample_table();
    assert_eq!(table.fields().count(), 3);
    assert!(table.overflow().raw > 0);
    let mut bytes = Vec::new();
    table.encode_into(&mut bytes);
    assert!(bytes.len() <= max_table_len(3));
    let mut back = EndpointTable::new();
    assert_eq!(back.decode_into(&bytes), Ok(()));
    assert_eq!(back, table);
    let mut again = Vec::new();
    back.encode_into(&mut again);
    assert_eq!(again, bytes);
    // An empty table is its header alone.
    EndpointTable::new().encode_into(&mut bytes);
    assert_eq!(bytes.len(), TABLE_HEADER_LEN);
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    let mut bytes = Vec::new();
    sample_table().encode_into(&mut bytes);
    let mut table = sample_table();
    let mut decode = |b: &[u8]| table.decode_into(b);
    assert_eq!(decode(b""), Err(DecodeError::Truncated));
    assert_eq!(decode(b"\x02"), Err(DecodeError::Version));
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode(&longer), Err(DecodeError::Trailing));
    // A kind that does not exist.
    let mut bad_kind = bytes.clone();
    bad_kind[TABLE_HEADER_LEN] = 200;
    assert_eq!(decode(&bad_kind), Err(DecodeError::Invalid));
    // More requests counted on a field than the endpoint saw.
    let mut too_many = bytes.clone();
    too_many[1..9].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(decode(&too_many), Err(DecodeError::Invalid));
    // Not UTF-8.
    let mut not_utf8 = bytes.clone();
    not_utf8[TABLE_HEADER_LEN + 2] = 0xff;
    assert_eq!(decode(&not_utf8), Err(DecodeError::Invalid));
    // A count above any configuration's maxFields.
    let mut huge = bytes.clone();
    huge[25..27].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(decode(&huge), Err(DecodeError::Invalid));
    // Fields out of order.
    let mut table = EndpointTable::new();
    let two = diffs(r#"{"a":1,"b":1}"#, r#"{"a":2,"b":2}"#, 64);
    table.record(&two, &two, 64);
    table.encode_into(&mut bytes);
    let a = TABLE_HEADER_LEN;
    let entry = 2 + 1 + 16;
    let (first, second) = (bytes[a..a + entry].to_vec(), bytes[a + entry..].to_vec());
    let swapped = [&bytes[..a], &second[..], &first[..]].concat();
    assert_eq!(table.decode_into(&swapped), Err(DecodeError::Invalid));
    assert_eq!(table, EndpointTable::new(), "left empty on an error");
}

#[test]
fn the_size_bound_holds_for_the_longest_paths() {
    let key = "k".repeat(300);
    let mut table = EndpointTable::new();
    for i in 0..70 {
        let d = diffs(&format!(r#"{{"{i}{key}":1}}"#), &format!(r#"{{"{i}{key}":2}}"#), 64);
        table.record(&d, &d, 64);
    }
    let mut bytes = Vec::new();
    table.encode_into(&mut bytes);
    assert_eq!(table.fields().count(), 64);
    assert!(bytes.len() <= max_table_len(64), "{}", bytes.len());
    assert_eq!(max_table_len(64), 17_499);
}

#[test]
fn endpoints_and_keys() {
    assert_eq!(endpoint_method("POST", "/pkg.Svc/Get?x=1", true), "/pkg.Svc/Get");
    assert_eq!(endpoint_method("POST", "/pkg.Svc/Get", true), "/pkg.Svc/Get");
    assert_eq!(endpoint_method("GET", "/v1/items/3", false), "GET");
    let long = "é".repeat(200);
    assert!(endpoint_method("GET", &long, true).len() <= 255);
    let p = policy();
    assert_eq!(
        directory_key(&p),
        "vrata_mirror.noise.v1:forward.mirror:canary:endpoints"
    );
    assert_eq!(
        table_key(&p, Slot::Endpoint(3)),
        "vrata_mirror.noise.v1:forward.mirror:canary:endpoint:3"
    );
    assert_eq!(
        table_key(&p, Slot::Overflow),
        "vrata_mirror.noise.v1:forward.mirror:canary:endpoint:overflow"
    );
}

#[test]
fn directories_round_trip_and_refuse_garbage() {
    let entries = vec![
        ("api".to_owned(), "GET".to_owned()),
        ("unnamed".to_owned(), "/pkg.Svc/Get".to_owned()),
    ];
    let mut bytes = Vec::new();
    encode_directory(&entries, &mut bytes);
    assert_eq!(decode_directory(&bytes), Ok(entries));
    for len in 0..bytes.len() {
        assert!(decode_directory(&bytes[..len]).is_err());
    }
    bytes.push(1);
    assert_eq!(decode_directory(&bytes), Err(DecodeError::Trailing));
    assert_eq!(decode_directory(b"\x01\xff\xff"), Err(DecodeError::Invalid));
}

use crate::rate::memory_store::Store;

#[test]
fn record_reads_and_writes_once_and_workers_share_the_counts() {
    let p = NoisePolicy {
        min_requests: 4,
        ..policy()
    };
    let mut store = Store::default();
    let ts = diffs(r#"{"ts":1}"#, r#"{"ts":2}"#, 64);
    let (mut one, mut two) = (Scratch::new(), Scratch::new());
    for i in 0..4 {
        let scratch = if i % 2 == 0 { &mut one } else { &mut two };
        let got = record(&mut store, "k", &ts, Some(&ts), &p, scratch).unwrap();
        let expected = if i < 3 {
            NoiseVerdict::Learning
        } else {
            NoiseVerdict::Noise
        };
        assert_eq!(
            got,
            Recorded {
                verdict: expected,
                replaced: false
            }
        );
    }
    assert_eq!(store.calls, ["load", "store"].repeat(4));
    let mut table = EndpointTable::new();
    assert_eq!(load_table(&mut store, "k", &mut table), Ok(true));
    assert_eq!(table.requests(), 4);
    assert_eq!(table.counts(field("ts", Value)), Some(c(4, 4)));
    assert_eq!(load_table(&mut store, "other", &mut table), Ok(false));
}

#[test]
fn without_the_secondary_nothing_is_counted() {
    let p = NoisePolicy {
        min_requests: 1,
        ..policy()
    };
    let mut store = Store::default();
    let ts = diffs(r#"{"ts":1}"#, r#"{"ts":2}"#, 64);
    let mut scratch = Scratch::new();
    record(&mut store, "k", &ts, Some(&ts), &p, &mut scratch).unwrap();
    store.calls.clear();
    let got = record(&mut store, "k", &ts, None, &p, &mut scratch).unwrap();
    assert_eq!(got.verdict, NoiseVerdict::Noise);
    assert_eq!(store.calls, ["load"], "read only");
    let mut table = EndpointTable::new();
    load_table(&mut store, "k", &mut table).unwrap();
    assert_eq!(table.requests(), 1);
}

#[test]
fn conflicts_are_retried_then_a_typed_error() {
    let p = policy();
    let ts = diffs(r#"{"ts":1}"#, r#"{"ts":2}"#, 64);
    let mut scratch = Scratch::new();
    let mut store = Store {
        conflicts: MAX_ATTEMPTS - 1,
        ..Store::default()
    };
    assert!(record(&mut store, "k", &ts, Some(&ts), &p, &mut scratch).is_ok());
    assert_eq!(store.calls.len(), 2 * MAX_ATTEMPTS as usize);
    let mut store = Store {
        conflicts: u32::MAX,
        ..Store::default()
    };
    assert_eq!(
        record(&mut store, "k", &ts, Some(&ts), &p, &mut scratch),
        Err(NoiseError::Contention)
    );
    assert_eq!(store.calls.len(), 2 * MAX_ATTEMPTS as usize);
    let mut store = Store {
        fail_load: true,
        ..Store::default()
    };
    assert_eq!(
        record(&mut store, "k", &ts, Some(&ts), &p, &mut scratch),
        Err(NoiseError::Host)
    );
    let mut store = Store {
        fail_store: true,
        ..Store::default()
    };
    assert_eq!(
        record(&mut store, "k", &ts, Some(&ts), &p, &mut scratch),
        Err(NoiseError::Host)
    );
    assert_eq!(store.calls, ["load", "store"]);
}

#[test]
fn a_foreign_table_is_replaced_and_said_so() {
    let p = policy();
    let ts = diffs(r#"{"ts":1}"#, r#"{"ts":2}"#, 64);
    let mut store = Store::default();
    store.data.insert("k".to_owned(), (b"not a table".to_vec(), 7));
    store.next_cas = 7;
    let got = record(&mut store, "k", &ts, Some(&ts), &p, &mut Scratch::new()).unwrap();
    assert!(got.replaced);
    let mut table = EndpointTable::new();
    load_table(&mut store, "k", &mut table).unwrap();
    assert_eq!(table.requests(), 1);
}

#[test]
fn resolve_reads_the_directory_once_per_new_endpoint() {
    let p = NoisePolicy {
        max_endpoints: 2,
        ..policy()
    };
    let mut store = Store::default();
    let mut worker = DirectoryCache::new();
    let (slot, key) = resolve(&mut store, &p, &mut worker, "api", "GET").unwrap();
    assert_eq!(
        (slot, key),
        (Slot::Endpoint(0), table_key(&p, Slot::Endpoint(0)).as_str())
    );
    assert_eq!(
        store.calls,
        ["load", "store", "load"],
        "a created directory is read back"
    );
    store.calls.clear();
    assert_eq!(
        resolve(&mut store, &p, &mut worker, "api", "GET").unwrap().0,
        Slot::Endpoint(0)
    );
    assert!(store.calls.is_empty(), "known to this worker: no host call");
    // Another worker sees the same slot, and adds the next endpoint.
    let mut other = DirectoryCache::new();
    assert_eq!(
        resolve(&mut store, &p, &mut other, "api", "GET").unwrap().0,
        Slot::Endpoint(0)
    );
    assert_eq!(
        resolve(&mut store, &p, &mut other, "api", "POST").unwrap().0,
        Slot::Endpoint(1)
    );
    assert_eq!(
        resolve(&mut store, &p, &mut worker, "api", "POST").unwrap().0,
        Slot::Endpoint(1)
    );
    // Full: the rest share the overflow table. A worker that saw the
    // directory full asks no more (it only grows).
    store.calls.clear();
    let (slot, key) = resolve(&mut store, &p, &mut worker, "api", "PUT").unwrap();
    assert_eq!((slot, key), (Slot::Overflow, table_key(&p, Slot::Overflow).as_str()));
    assert!(store.calls.is_empty());
    let mut third = DirectoryCache::new();
    assert_eq!(
        resolve(&mut store, &p, &mut third, "x", "DELETE").unwrap().0,
        Slot::Overflow
    );
    assert_eq!(store.calls, ["load"]);
    store.calls.clear();
    assert_eq!(
        resolve(&mut store, &p, &mut third, "y", "DELETE").unwrap().0,
        Slot::Overflow
    );
    assert_eq!(
        resolve(&mut store, &p, &mut third, "api", "POST").unwrap().0,
        Slot::Endpoint(1)
    );
    assert!(store.calls.is_empty());
}

#[test]
fn resolve_fails_typed_and_leaves_a_foreign_directory_alone() {
    let p = policy();
    let mut store = Store {
        fail_load: true,
        ..Store::default()
    };
    assert_eq!(
        resolve(&mut store, &p, &mut DirectoryCache::new(), "api", "GET").map(|r| r.0),
        Err(NoiseError::Host)
    );
    let mut store = Store {
        conflicts: u32::MAX,
        ..Store::default()
    };
    assert_eq!(
        resolve(&mut store, &p, &mut DirectoryCache::new(), "api", "GET").map(|r| r.0),
        Err(NoiseError::Contention)
    );
    let mut store = Store::default();
    store.data.insert(directory_key(&p), (b"\x09".to_vec(), 1));
    assert_eq!(
        resolve(&mut store, &p, &mut DirectoryCache::new(), "api", "GET").map(|r| r.0),
        Err(NoiseError::Directory(DecodeError::Version))
    );
    assert_eq!(store.calls, ["load"], "not overwritten");
}

#[test]
fn a_directory_created_twice_at_once_keeps_both_endpoints() {
    // Worker one creates the directory; worker two, which also read it
    // absent, overwrites it with CAS 0 before one reads its write back.
    struct Racing {
        inner: Store,
        raced: bool,
    }
    impl SharedStore for Racing {
        fn load(&mut self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.inner.load(key)
        }
        fn store(&mut self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.inner.store(key, value, cas)?;
            if !self.raced {
                self.raced = true;
                let mut other = Vec::new();
                encode_directory(&[("api".to_owned(), "POST".to_owned())], &mut other);
                self.inner.store(key, &other, 0)?;
            }
            Ok(())
        }
    }
    let p = policy();
    let mut store = Racing {
        inner: Store::default(),
        raced: false,
    };
    let mut cache = DirectoryCache::new();
    assert_eq!(
        resolve(&mut store, &p, &mut cache, "api", "GET").unwrap().0,
        Slot::Endpoint(1)
    );
    let stored = store.inner.data.get(&directory_key(&p)).unwrap().0.clone();
    assert_eq!(
        decode_directory(&stored).unwrap(),
        [
            ("api".to_owned(), "POST".to_owned()),
            ("api".to_owned(), "GET".to_owned())
        ]
    );
}

#[test]
fn tables_are_equal_by_content_not_by_layout() {
    let (a, b) = (
        diffs(r#"{"a":1}"#, r#"{"a":2}"#, 64),
        diffs(r#"{"b":1}"#, r#"{"b":2}"#, 64),
    );
    let none = FieldDiffs::new();
    let (mut one, mut two) = (EndpointTable::new(), EndpointTable::new());
    one.record(&a, &b, 64);
    two.record(&none, &b, 64);
    two.requests = 0;
    two.record(&a, &none, 64);
    assert_eq!(one, two, "same fields and counts, paths stored in another order");
}

mod properties {
    //! Property tests: the rule against an exact reference, path
    //! normalization (array indices fold, so counts add up per field), and
    //! the table's bounds under any sequence of requests.
    use super::*;
    use proptest::prelude::*;

    /// The rule in exact integer arithmetic (no float): what `is_real` must
    /// agree with for every count a table can hold in practice.
    fn is_real_exact(c: Counts, requests: u64, rel_ppm: u32, abs_ppm: u32) -> bool {
        if c.raw <= c.noise || requests == 0 {
            return false;
        }
        let excess = u128::from(c.raw - c.noise) * 1_000_000;
        excess > u128::from(rel_ppm) * u128::from(c.raw + c.noise)
            && excess > u128::from(abs_ppm) * u128::from(requests)
    }

    proptest! {
        #[test]
        fn the_rule_agrees_with_exact_arithmetic(
            requests in 0u64..2_000_000_000,
            raw_share in 0u64..=1000,
            noise_share in 0u64..=1000,
            rel_ppm in 0u32..1_000_000,
            abs_ppm in 0u32..1_000_000,
        ) {
            // Counts are at most the requests, as the table keeps them.
            let counts = c(requests / 1000 * raw_share, requests / 1000 * noise_share);
            prop_assert_eq!(
                is_real(counts, requests, rel_ppm, abs_ppm),
                is_real_exact(counts, requests, rel_ppm, abs_ppm),
                "{:?} of {}", counts, requests
            );
        }

        #[test]
        fn array_indices_fold_into_one_field_path(
            prices in proptest::collection::vec((0u32..100, any::<bool>()), 1..20),
        ) {
            let item = |price: u32| format!(r#"{{"price":{price},"sku":"a"}}"#);
            let primary: Vec<String> = prices.iter().map(|(p, _)| item(*p)).collect();
            let candidate: Vec<String> = prices.iter().map(|(p, off)| item(p + u32::from(*off))).collect();
            let d = diffs(
                &format!(r#"{{"items":[{}]}}"#, primary.join(",")),
                &format!(r#"{{"items":[{}]}}"#, candidate.join(",")),
                64,
            );
            let any_off = prices.iter().any(|(_, off)| *off);
            let paths: Vec<String> = d.fields().map(|f| f.path.to_owned()).collect();
            if any_off {
                // Whichever indices differ: one field, items[].price.
                prop_assert_eq!(paths, vec!["items[].price".to_owned()]);
            } else {
                prop_assert!(paths.is_empty(), "{:?}", paths);
            }
        }

        #[test]
        fn a_table_stays_within_its_bounds_and_round_trips(
            requests in proptest::collection::vec(
                (proptest::collection::vec(0usize..200, 0..12), proptest::collection::vec(0usize..200, 0..12)),
                1..60,
            ),
            max_fields in 1usize..16,
        ) {
            let body = |names: &[usize], value: u32| {
                let members: Vec<String> = names.iter().map(|n| format!(r#""f{n}":{value}"#)).collect();
                format!("{{{}}}", members.join(","))
            };
            let mut table = EndpointTable::new();
            for (raw_names, noise_names) in &requests {
                let raw = diffs(&body(raw_names, 1), &body(raw_names, 2), 64);
                let noise = diffs(&body(noise_names, 1), &body(noise_names, 2), 64);
                table.record(&raw, &noise, max_fields);
            }
            prop_assert_eq!(table.requests(), requests.len() as u64);
            prop_assert!(table.fields().count() <= max_fields);
            for (field, counts) in table.fields() {
                prop_assert!(counts.raw <= table.requests() && counts.noise <= table.requests(), "{:?}", field);
            }
            let overflow = table.overflow();
            prop_assert!(overflow.raw <= table.requests() && overflow.noise <= table.requests());
            let mut bytes = Vec::new();
            table.encode_into(&mut bytes);
            prop_assert!(bytes.len() <= max_table_len(max_fields));
            let mut back = EndpointTable::new();
            prop_assert!(back.decode_into(&bytes).is_ok());
            prop_assert_eq!(back, table);
        }
    }
}
