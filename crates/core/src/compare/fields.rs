//! Every field path where two answers differ, for noise cancellation
//! ([`noise`](super::noise)): where [`json`](super::json) stops at the first
//! difference, this walks both trees to the end and lists each differing
//! field once, so that counts per field add up over requests.
//!
//! The bodies are read by [`json`](super::json)'s parser (so `ignoreFields`,
//! number equality, duplicate keys and the depth limit are the same), then
//! flattened as opendiffy does (`ai.diffy.compare.Difference`: `flattened`):
//! - **Array indices are dropped**: `items[3].price` and `items[7].price`
//!   are both `items[].price`, so one field is counted whatever its place.
//! - **Lists.** Same length, same elements in another order: one
//!   difference `items[]`, kind `order` (Diffy's `OrderingDifference`),
//!   not one per misplaced element: a list served in random order is one
//!   field noise can learn. Different lengths: one difference `items[]`,
//!   kind `length` (Diffy's `SeqSizeDifference`): after an insertion every
//!   later index would differ. Else elements are compared pairwise.
//! - **Objects**: a key on one side only is `only_in_primary` /
//!   `only_in_shadow` at its path (Diffy's `MissingField` / `ExtraField`).
//! - The **kind is part of the field** (Diffy keys its counts by path and
//!   difference class): `tags[]` reordered and `tags[]` with a changed
//!   element are counted apart.
//! - Paths are spelled as in the mismatch line (`$` for the root, `a.b`,
//!   `meta["a.b"]`), with `[]` for "any element".
//!
//! **Bounds.** At most `max` distinct fields per pair (`compare.noise
//! .maxFields`); more set [`FieldDiffs::overflowed`], which counts in the
//! table's overflow bucket. A path is at most [`MAX_PATH_BYTES`]: a deeper
//! one is cut to its first 254 bytes (at a character boundary) and `*`, and
//! anything different below counts there as `value`. Work is linear in the
//! bodies but for the order check: each element of a same-length list that
//! differs is hashed (structurally, consistent with equality) and the two
//! sorted hash lists compared, then equal-hash elements verified: O(n log n).
//!
//! **Allocation.** A [`FieldDiffs`] keeps its buffers: reused for every
//! pair, it allocates only while it grows (plus the parsed trees, as for
//! the first-difference comparison).
//!
//! A body that is not JSON (or `"body": "exact"`) and differs is one field,
//! `$`, kind `value`: noise still learns a body that always differs, but
//! only as a whole.

use super::json::{self, is_plain, Node, Number};
use super::JsonDifferenceKind;
use crate::config::{quote, BodyComparison};
use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// The longest field path kept, in bytes (its length is one byte when stored).
pub const MAX_PATH_BYTES: usize = 255;

/// One field: where, and what kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Field<'a> {
    pub path: &'a str,
    pub kind: JsonDifferenceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<V> {
    start: u32,
    len: u8,
    kind: JsonDifferenceKind,
    value: V,
}

/// A sorted set of fields, each with a value, in two buffers (the paths
/// back to back, and the entries), so that clearing and refilling it
/// allocates nothing once it has grown.
#[derive(Debug, Clone)]
pub struct FieldSet<V> {
    text: String,
    entries: Vec<Entry<V>>,
}

/// Equal when they hold the same fields and values, however the paths
/// are laid out in the buffer.
impl<V: Copy + PartialEq> PartialEq for FieldSet<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Copy + Eq> Eq for FieldSet<V> {}

impl<V> Default for FieldSet<V> {
    fn default() -> Self {
        FieldSet {
            text: String::new(),
            entries: Vec::new(),
        }
    }
}

impl<V: Copy> FieldSet<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    fn path(&self, entry: &Entry<V>) -> &str {
        let start = entry.start as usize;
        self.text.get(start..start + usize::from(entry.len)).unwrap_or("")
    }

    /// Where `field` is (`Ok`) or would be inserted (`Err`).
    pub(super) fn find(&self, field: Field<'_>) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| (self.path(e), e.kind).cmp(&(field.path, field.kind)))
    }

    pub fn get(&self, field: Field<'_>) -> Option<V> {
        let i = self.find(field).ok()?;
        self.entries.get(i).map(|e| e.value)
    }

    pub(super) fn value_mut(&mut self, index: usize) -> Option<&mut V> {
        self.entries.get_mut(index).map(|e| &mut e.value)
    }

    /// Inserts at `index` (from [`find`](Self::find)); the path is cut to
    /// [`MAX_PATH_BYTES`] if need be (callers cut it first).
    pub(super) fn insert_at(&mut self, index: usize, field: Field<'_>, value: V) {
        let path = cut(field.path, MAX_PATH_BYTES);
        let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        self.text.push_str(path);
        let entry = Entry {
            start,
            len: u8::try_from(path.len()).unwrap_or(u8::MAX),
            kind: field.kind,
            value,
        };
        self.entries.insert(index.min(self.entries.len()), entry);
    }

    /// In order: by path (bytes), then kind.
    pub fn iter(&self) -> impl Iterator<Item = (Field<'_>, V)> + '_ {
        self.entries.iter().map(|e| {
            (
                Field {
                    path: self.path(e),
                    kind: e.kind,
                },
                e.value,
            )
        })
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(super) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// The fields where one pair of answers differs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldDiffs {
    set: FieldSet<()>,
    overflowed: bool,
}

impl FieldDiffs {
    pub fn new() -> Self {
        FieldDiffs::default()
    }

    /// The differing fields, at most `max` of them, sorted.
    pub fn fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        self.set.iter().map(|(field, ())| field)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// More than `max` distinct fields differed: those not listed count in
    /// the overflow bucket.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && !self.overflowed
    }

    pub fn contains(&self, field: Field<'_>) -> bool {
        self.set.find(field).is_ok()
    }

    fn clear(&mut self) {
        self.set.clear();
        self.overflowed = false;
    }

    fn add(&mut self, field: Field<'_>, max: usize) {
        if let Err(at) = self.set.find(field) {
            if self.set.len() < max {
                self.set.insert_at(at, field, ());
            } else {
                self.overflowed = true;
            }
        }
    }
}

/// Fills `out` with the fields where `primary` and `other` (the candidate's
/// or the secondary's answer) differ under `body` and `ignore`, at most
/// `max` of them; see the module documentation. `"none"` compares no body:
/// `out` is left empty.
pub fn field_differences(
    out: &mut FieldDiffs,
    primary: &[u8],
    other: &[u8],
    body: BodyComparison,
    ignore: &[String],
    max: usize,
) {
    out.clear();
    if body == BodyComparison::None || primary == other {
        return;
    }
    if body == BodyComparison::Json {
        if let (Some(p), Some(s)) = (json::parse(primary, ignore), json::parse(other, ignore)) {
            let mut walk = Walk {
                out,
                max,
                path: String::new(),
            };
            walk.diff(&p, &s);
            return;
        }
    }
    out.add(
        Field {
            path: "$",
            kind: JsonDifferenceKind::Value,
        },
        max,
    );
}

/// The walk over both trees, with the path so far in one buffer.
struct Walk<'o> {
    out: &'o mut FieldDiffs,
    max: usize,
    path: String,
}

impl Walk<'_> {
    fn record(&mut self, kind: JsonDifferenceKind) {
        let path = if self.path.is_empty() { "$" } else { self.path.as_str() };
        self.out.add(Field { path, kind }, self.max);
    }

    /// Appends one step to the path; false if the path is then too long,
    /// in which case it is cut and ends with `*`.
    fn push_key(&mut self, key: &str) -> bool {
        if is_plain(key) {
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(key);
        } else {
            self.path.push('[');
            self.path.push_str(&quote(key));
            self.path.push(']');
        }
        self.fits()
    }

    fn push_elements(&mut self) -> bool {
        self.path.push_str("[]");
        self.fits()
    }

    fn fits(&mut self) -> bool {
        if self.path.len() <= MAX_PATH_BYTES {
            return true;
        }
        let keep = cut(&self.path, MAX_PATH_BYTES - 1).len();
        self.path.truncate(keep);
        self.path.push('*');
        false
    }

    /// Below a step: compared field by field, or as a whole where the path
    /// was cut.
    fn below(&mut self, fits: bool, p: &Node<'_>, s: &Node<'_>) {
        if fits {
            self.diff(p, s);
        } else if !equal(p, s) {
            self.record(JsonDifferenceKind::Value);
        }
    }

    /// Records the difference `kind` one step below the current path.
    fn record_key(&mut self, key: &str, kind: JsonDifferenceKind) {
        let mark = self.path.len();
        self.push_key(key);
        self.record(kind);
        self.path.truncate(mark);
    }

    fn diff(&mut self, p: &Node<'_>, s: &Node<'_>) {
        use JsonDifferenceKind::{Length, OnlyInPrimary, OnlyInShadow, Order, Type, Value};
        match (p, s) {
            (Node::Null, Node::Null) => {}
            (Node::Bool(a), Node::Bool(b)) if a == b => {}
            (Node::Number(a), Node::Number(b)) if a.same(*b) => {}
            (Node::String(a), Node::String(b)) if a == b => {}
            (Node::Bool(_), Node::Bool(_))
            | (Node::Number(_), Node::Number(_))
            | (Node::String(_), Node::String(_)) => self.record(Value),
            (Node::Array(a), Node::Array(b)) => {
                let mark = self.path.len();
                let fits = self.push_elements();
                if a.len() != b.len() {
                    self.record(Length);
                } else if let Some(first) = a.iter().zip(b).position(|(x, y)| !equal(x, y)) {
                    if is_permutation(a, b) {
                        self.record(Order);
                    } else {
                        for (x, y) in a.iter().zip(b).skip(first) {
                            self.below(fits, x, y);
                        }
                    }
                }
                self.path.truncate(mark);
            }
            (Node::Object(a), Node::Object(b)) => {
                let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
                loop {
                    match (a.peek().copied(), b.peek().copied()) {
                        (None, None) => break,
                        (Some((key, _)), None) => {
                            self.record_key(key, OnlyInPrimary);
                            a.next();
                        }
                        (None, Some((key, _))) => {
                            self.record_key(key, OnlyInShadow);
                            b.next();
                        }
                        (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                            Ordering::Less => {
                                self.record_key(ka, OnlyInPrimary);
                                a.next();
                            }
                            Ordering::Greater => {
                                self.record_key(kb, OnlyInShadow);
                                b.next();
                            }
                            Ordering::Equal => {
                                let mark = self.path.len();
                                let fits = self.push_key(ka);
                                self.below(fits, va, vb);
                                self.path.truncate(mark);
                                a.next();
                                b.next();
                            }
                        },
                    }
                }
            }
            _ => self.record(Type),
        }
    }
}

/// Structural equality, as [`json`](super::json) compares (recursion is
/// bounded by the parser's depth limit).
fn equal(p: &Node<'_>, s: &Node<'_>) -> bool {
    match (p, s) {
        (Node::Null, Node::Null) => true,
        (Node::Bool(a), Node::Bool(b)) => a == b,
        (Node::Number(a), Node::Number(b)) => a.same(*b),
        (Node::String(a), Node::String(b)) => a == b,
        (Node::Array(a), Node::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y)),
        (Node::Object(a), Node::Object(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && equal(va, vb))
        }
        _ => false,
    }
}

/// Whether `b` holds the same elements as `a` (as many times each), in
/// any order: structural hashes sorted and compared, then each run of
/// equal hashes verified element by element (so a hash collision is never
/// taken for equality).
fn is_permutation(a: &[Node<'_>], b: &[Node<'_>]) -> bool {
    let hashes = |list: &[Node<'_>]| {
        let mut hashes: Vec<(u64, usize)> = list.iter().map(hash_of).zip(0..).collect();
        hashes.sort_unstable();
        hashes
    };
    let (ha, hb) = (hashes(a), hashes(b));
    if ha.len() != hb.len() || ha.iter().zip(&hb).any(|(x, y)| x.0 != y.0) {
        return false;
    }
    let mut used = vec![false; b.len()];
    for (run_a, run_b) in ha.chunk_by(|x, y| x.0 == y.0).zip(hb.chunk_by(|x, y| x.0 == y.0)) {
        for (_, ia) in run_a {
            let Some(x) = a.get(*ia) else { return false };
            let matched = run_b
                .iter()
                .find(|(_, ib)| !used.get(*ib).copied().unwrap_or(true) && b.get(*ib).is_some_and(|y| equal(x, y)));
            match matched.and_then(|(_, ib)| used.get_mut(*ib)) {
                Some(slot) => *slot = true,
                None => return false,
            }
        }
    }
    true
}

fn hash_of(node: &Node<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_node(node, &mut hasher);
    hasher.finish()
}

/// Equal nodes (as [`equal`] says) hash alike: numbers hash by value.
fn hash_node(node: &Node<'_>, h: &mut DefaultHasher) {
    match node {
        Node::Null => 0u8.hash(h),
        Node::Bool(b) => (1u8, b).hash(h),
        Node::Number(n) => (2u8, number_key(*n)).hash(h),
        Node::String(s) => (3u8, s.as_ref()).hash(h),
        Node::Array(items) => {
            (4u8, items.len()).hash(h);
            for item in items {
                hash_node(item, h);
            }
        }
        Node::Object(members) => {
            (5u8, members.len()).hash(h);
            for (key, value) in members {
                key.as_ref().hash(h);
                hash_node(value, h);
            }
        }
    }
}

/// A number's value as (sign or float, magnitude or bits): the same for
/// every spelling [`Number::same`] takes as equal (an integral float in
/// integer range is its integer; `-0` is `0`).
fn number_key(n: Number) -> (u8, u64) {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    match n {
        Number::Unsigned(u) => (0, u),
        Number::Negative(i) => (1, i.unsigned_abs()),
        Number::Float(f) if f.trunc() == f && (0.0..TWO_POW_64).contains(&f) => (0, f as u64),
        Number::Float(f) if f.trunc() == f && (MINUS_TWO_POW_63..0.0).contains(&f) => (1, (-f) as u64),
        Number::Float(f) => (2, f.to_bits()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JsonDifferenceKind::{Length, OnlyInPrimary, OnlyInShadow, Order, Type, Value};

    fn diffs_with(p: &str, s: &str, ignore: &[&str], max: usize) -> (Vec<(String, JsonDifferenceKind)>, bool) {
        let ignore: Vec<String> = ignore.iter().map(|f| (*f).to_owned()).collect();
        let mut out = FieldDiffs::new();
        field_differences(&mut out, p.as_bytes(), s.as_bytes(), BodyComparison::Json, &ignore, max);
        let fields = out.fields().map(|f| (f.path.to_owned(), f.kind)).collect();
        (fields, out.overflowed())
    }

    fn diffs(p: &str, s: &str) -> Vec<(String, JsonDifferenceKind)> {
        diffs_with(p, s, &[], 64).0
    }

    fn f(path: &str, kind: JsonDifferenceKind) -> (String, JsonDifferenceKind) {
        (path.to_owned(), kind)
    }

    #[test]
    fn every_differing_field_is_listed_once_with_indices_dropped() {
        assert_eq!(
            diffs(
                r#"{"ts":1,"id":"a","items":[{"id":1,"price":10},{"id":2,"price":20},{"id":3,"price":30}],"ok":true}"#,
                r#"{"ts":2,"id":"b","items":[{"id":1,"price":11},{"id":2,"price":20},{"id":3,"price":31}],"ok":true}"#,
            ),
            [f("id", Value), f("items[].price", Value), f("ts", Value)]
        );
        assert_eq!(diffs("1", "2"), [f("$", Value)]);
        assert_eq!(diffs(r#"{"a":1}"#, r#"{"a":"1"}"#), [f("a", Type)]);
        assert_eq!(diffs(r#"[{"id":1}]"#, r#"[{"id":2}]"#), [f("[].id", Value)]);
        assert_eq!(
            diffs(r#"{"a":{"b":[[1,2],[3,4]]}}"#, r#"{"a":{"b":[[1,2],[3,5]]}}"#),
            [f("a.b[][]", Value)]
        );
        assert!(diffs(r#"{"a":[1,{"b":null}]}"#, r#"{ "a" : [1.0, {"b":null}] }"#).is_empty());
    }

    #[test]
    fn lists_in_another_order_are_one_order_difference() {
        assert_eq!(
            diffs(r#"{"tags":["a","b","c"]}"#, r#"{"tags":["c","a","b"]}"#),
            [f("tags[]", Order)]
        );
        assert_eq!(
            diffs(r#"[{"id":1,"p":1.0},{"id":2}]"#, r#"[{"id":2},{"p":1,"id":1}]"#),
            [f("[]", Order)],
            "elements equal as JSON, key order and number spelling aside"
        );
        // Same length, not the same elements: pairwise; duplicates count.
        assert_eq!(diffs(r#"["a","b"]"#, r#"["b","b"]"#), [f("[]", Value)]);
        assert_eq!(diffs(r#"[1,1,2]"#, r#"[1,2,2]"#), [f("[]", Value)]);
        assert_eq!(diffs(r#"[1,1,2]"#, r#"[2,1,1]"#), [f("[]", Order)]);
        // Kinds are counted apart at one path.
        assert_ne!(f("tags[]", Order), f("tags[]", Value));
    }

    #[test]
    fn lists_of_other_lengths_are_one_length_difference() {
        assert_eq!(diffs(r#"{"l":[1,2,3]}"#, r#"{"l":[1,2]}"#), [f("l[]", Length)]);
        assert_eq!(diffs(r#"{"l":[]}"#, r#"{"l":[{"x":1}]}"#), [f("l[]", Length)]);
    }

    #[test]
    fn members_on_one_side_and_quoted_keys() {
        assert_eq!(
            diffs(r#"{"a":1,"b":2,"m":{"x y":1}}"#, r#"{"a":1,"c":2,"m":{"x y":2}}"#),
            [f("b", OnlyInPrimary), f("c", OnlyInShadow), f(r#"m["x y"]"#, Value)]
        );
        assert_eq!(diffs(r#"{"a.b":1}"#, r#"{"a.b":2}"#), [f(r#"["a.b"]"#, Value)]);
    }

    #[test]
    fn ignored_fields_are_not_listed() {
        let (fields, _) = diffs_with(
            r#"{"timestamp":1,"data":[{"timestamp":2,"v":1}]}"#,
            r#"{"timestamp":3,"data":[{"timestamp":4,"v":2}]}"#,
            &["timestamp"],
            64,
        );
        assert_eq!(fields, [f("data[].v", Value)]);
    }

    #[test]
    fn at_most_max_fields_then_overflow() {
        let object = |v: u32| {
            let members: Vec<String> = (0..10).map(|k| format!("\"k{k}\":{v}")).collect();
            format!("{{{}}}", members.join(","))
        };
        let (fields, overflowed) = diffs_with(&object(1), &object(2), &[], 4);
        assert_eq!(fields.len(), 4);
        assert!(overflowed);
        let (fields, overflowed) = diffs_with(&object(1), &object(2), &[], 10);
        assert_eq!(fields.len(), 10);
        assert!(!overflowed);
        // The same field many times is one field, not an overflow.
        let list = |v: u32| format!("[{}]", vec![format!("{{\"p\":{v}}}"); 1000].join(","));
        assert_eq!(diffs_with(&list(1), &list(2), &[], 1), (vec![f("[].p", Value)], false));
    }

    #[test]
    fn long_paths_are_cut_and_counted_as_a_whole() {
        let key = "k".repeat(100);
        let nest = |leaf: u32| format!("{}{leaf}{}", format!("{{\"{key}\":").repeat(5), "}".repeat(5));
        let fields = diffs(&nest(1), &nest(2));
        assert_eq!(fields.len(), 1);
        let (path, kind) = &fields[0];
        assert_eq!(kind, &Value);
        assert_eq!(path.len(), MAX_PATH_BYTES);
        assert!(
            path.ends_with('*') && path.starts_with(&format!("{key}.{key}.")),
            "{path}"
        );
        assert!(diffs(&nest(1), &nest(1)).is_empty());
        // A multi-byte key is cut at a character boundary.
        let wide = "é".repeat(200);
        let fields = diffs(&format!("{{\"{wide}\":1}}"), &format!("{{\"{wide}\":2}}"));
        assert!(fields[0].0.len() <= MAX_PATH_BYTES && fields[0].0.ends_with('*'));
    }

    #[test]
    fn bodies_that_are_not_json_or_exact_are_one_field() {
        let mut out = FieldDiffs::new();
        field_differences(&mut out, b"<a>", b"<b>", BodyComparison::Json, &[], 64);
        assert_eq!(out.fields().collect::<Vec<_>>(), [Field { path: "$", kind: Value }]);
        field_differences(&mut out, br#"{"a":1}"#, br#"{"a":2}"#, BodyComparison::Exact, &[], 64);
        assert_eq!(out.fields().collect::<Vec<_>>(), [Field { path: "$", kind: Value }]);
        field_differences(&mut out, b"x", b"x", BodyComparison::Exact, &[], 64);
        assert!(out.is_empty());
        field_differences(&mut out, b"x", b"y", BodyComparison::None, &[], 64);
        assert!(out.is_empty());
    }

    #[test]
    fn number_hashes_agree_with_number_equality() {
        let same = [
            (Number::Unsigned(1), Number::Float(1.0)),
            (Number::Unsigned(0), Number::Float(-0.0)),
            (Number::Negative(-5), Number::Float(-5.0)),
            (Number::Negative(i64::MIN), Number::Float(-9_223_372_036_854_775_808.0)),
        ];
        for (a, b) in same {
            assert!(a.same(b));
            assert_eq!(number_key(a), number_key(b), "{a:?} {b:?}");
        }
        assert_ne!(number_key(Number::Float(0.5)), number_key(Number::Unsigned(0)));
        assert_ne!(number_key(Number::Negative(-1)), number_key(Number::Unsigned(1)));
    }
}
