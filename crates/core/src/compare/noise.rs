//! Noise cancellation, as Diffy (today opendiffy) does: a field that
//! differs between the candidate and the primary is only a real difference
//! if it differs clearly more often than between the primary and a
//! **secondary** running the primary's own version. Timestamps, generated
//! ids and lists served in random order differ on both sides alike, and are
//! learned as noise instead of being listed by hand in `ignoreFields`.
//!
//! Per endpoint (the route and the method; for gRPC the method is the
//! `:path`, `/pkg.Service/Method`, see [`endpoint_method`]) an
//! [`EndpointTable`] counts the requests seen and, per field path of
//! [`fields`](super::fields), its **raw** differences (primary vs
//! candidate) and **noise** differences (primary vs secondary).
//!
//! **The rule** ([`is_real`]), opendiffy's `DifferencesFilterFactory`
//! (`ai/diffy/analysis/JoinedDifferences.scala`), with its defaults
//! (`threshold.relative` 20.0 and `threshold.absolute` 0.03, in percent, in
//! `ai/diffy/Settings.scala`): a field is a real difference iff
//! - `raw > noise`, and
//! - `(raw − noise) / (raw + noise) > relativePercent` (20 %), and
//! - `(raw − noise) / requests > absolutePercent` (0.03 %).
//!
//! All three are strict, as Diffy's code is (its flag text says
//! "inclusive"; the code compares with `>`).
//!
//! **A request's verdict** ([`EndpointTable::verdict`]), computed from the
//! table as it stands once the request itself is counted:
//! - `match`: the candidate's body has no differing field (certain whatever
//!   has been learned, so never `learning`);
//! - `learning`: the endpoint has seen fewer than `minRequests` requests;
//! - `body_mismatch`: at least one differing field is real by the rule;
//! - `noise`: every differing field is noise.
//!
//! **`minRequests`** defaults to 3334 = ⌈100 / 0.03⌉: with n requests a
//! single extra raw difference is `1/n` of them, which is above Diffy's
//! absolute threshold of 0.03 % for every n below 3334. Before that count
//! the absolute test cannot refuse anything, and a one-off difference
//! (raw 1, noise 0: relative 100 %) would be reported as real. Who lowers
//! `absolutePercent` should raise `minRequests` to about `100 / absolutePercent`.
//!
//! **Bounds.** A table counts at most `maxFields` fields (default 64); a
//! field beyond that, or a request whose comparison listed more than
//! `maxFields` fields, counts once per request in the table's overflow
//! bucket, which the rule judges like any field. An endpoint is one of at
//! most `maxEndpoints` (default 64) per mirror, kept in a shared directory
//! ([`resolve`]); endpoints beyond that share one overflow table (a client
//! choosing gRPC paths or methods freely must not grow shared data without
//! bound: proxy-wasm never deletes a key).
//!
//! **Shared data.** Every worker counts into the same tables, in
//! proxy-wasm shared data through [`SharedStore`], with compare-and-swap
//! as the rate cap does (`crate::rate`): read, add, write if no other
//! worker wrote in between, at most [`MAX_ATTEMPTS`] times; then (or when
//! the host refuses) a typed [`NoiseError`] the caller counts, and the
//! request gets no verdict from the table. Keys, under the mirror's
//! `key_prefix` (`vrata_mirror.noise.v1:<mirror's place>:<destination>`):
//! - `<prefix>:endpoints`: the directory, at most 3 + 512 × maxEndpoints bytes;
//! - `<prefix>:endpoint:<i>` (i < maxEndpoints) and
//!   `<prefix>:endpoint:overflow`: one table each, at most
//!   [`max_table_len`] bytes (17,499 with 64 fields of the longest path;
//!   27 + 34 bytes per field of a 16-byte path).
//!
//! Counts never reset while Envoy runs (shared data outlives configuration
//! pushes); the thresholds are applied when read, so changing them takes
//! effect at once on what was counted.

use super::fields::{cut, Field, FieldDiffs, FieldSet, MAX_PATH_BYTES};
use super::JsonDifferenceKind;
use crate::config::NoisePolicy;
pub use crate::rate::{SharedStore, StoreError, MAX_ATTEMPTS};

/// One field's counts, or the overflow bucket's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests where the candidate differed from the primary here.
    pub raw: u64,
    /// Requests where the secondary differed from the primary here.
    pub noise: u64,
}

/// What one request's comparison says, once noise is accounted for: the
/// `result` label the glue counts (see [`CompareResult`](super::CompareResult)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseVerdict {
    Match,
    Noise,
    BodyMismatch,
    Learning,
}

impl From<NoiseVerdict> for super::CompareResult {
    fn from(verdict: NoiseVerdict) -> Self {
        match verdict {
            NoiseVerdict::Match => super::CompareResult::Match,
            NoiseVerdict::Noise => super::CompareResult::Noise,
            NoiseVerdict::BodyMismatch => super::CompareResult::BodyMismatch,
            NoiseVerdict::Learning => super::CompareResult::Learning,
        }
    }
}

/// Diffy's rule: whether a field with these counts, at an endpoint that has
/// seen `requests` requests, is a real difference. Thresholds in millionths.
pub fn is_real(counts: Counts, requests: u64, relative_ppm: u32, absolute_ppm: u32) -> bool {
    if counts.raw <= counts.noise || requests == 0 {
        return false;
    }
    // Exact for counts below 2^53 / 10^6 (9 × 10^9), monotonic beyond.
    let excess = (counts.raw - counts.noise) as f64 * 1e6;
    let both = counts.raw as f64 + counts.noise as f64;
    excess > f64::from(relative_ppm) * both && excess > f64::from(absolute_ppm) * requests as f64
}

/// One endpoint's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointTable {
    requests: u64,
    fields: FieldSet<Counts>,
    overflow: Counts,
}

/// The version byte of a stored table or directory.
const VERSION: u8 = 1;
/// Version, requests, overflow raw and noise (u64 LE each), field count (u16 LE).
const TABLE_HEADER_LEN: usize = 27;
/// Kind, path length, then raw and noise (u64 LE) after the path.
const FIELD_OVERHEAD: usize = 18;

/// The longest encoding of a table of `max_fields` fields.
pub fn max_table_len(max_fields: usize) -> usize {
    TABLE_HEADER_LEN + max_fields * (FIELD_OVERHEAD + MAX_PATH_BYTES)
}

/// Why stored bytes are not a table or directory this module wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not version 1.
    Version,
    /// Shorter than its counts say.
    Truncated,
    /// Bytes left after the last entry.
    Trailing,
    /// A path or name that is not UTF-8, an unknown kind, fields out of
    /// order or twice, a count above the requests, more entries than any
    /// configuration allows.
    Invalid,
}

const KINDS: [JsonDifferenceKind; 6] = [
    JsonDifferenceKind::Value,
    JsonDifferenceKind::Type,
    JsonDifferenceKind::OnlyInPrimary,
    JsonDifferenceKind::OnlyInShadow,
    JsonDifferenceKind::Order,
    JsonDifferenceKind::Length,
];

fn kind_byte(kind: JsonDifferenceKind) -> u8 {
    KINDS.iter().position(|k| *k == kind).map_or(u8::MAX, |i| i as u8)
}

/// Reads the stored formats without ever indexing out of bounds.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.bytes(1)?.first().copied().ok_or(DecodeError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes(b.try_into().map_err(|_| DecodeError::Truncated)?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| DecodeError::Truncated)?))
    }

    /// A string of at most 255 bytes, its length first.
    fn text(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u8()?;
        std::str::from_utf8(self.bytes(usize::from(len))?).map_err(|_| DecodeError::Invalid)
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

impl EndpointTable {
    pub fn new() -> Self {
        EndpointTable::default()
    }

    /// Requests counted (each with both comparisons).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Each field counted, sorted by path then kind.
    pub fn fields(&self) -> impl Iterator<Item = (Field<'_>, Counts)> + '_ {
        self.fields.iter()
    }

    /// The counts of fields beyond `maxFields`.
    pub fn overflow(&self) -> Counts {
        self.overflow
    }

    /// A field's counts; `None` if it is not in the table (then it counts
    /// in [`overflow`](Self::overflow), or never differed).
    pub fn counts(&self, field: Field<'_>) -> Option<Counts> {
        self.fields.get(field)
    }

    pub fn clear(&mut self) {
        self.requests = 0;
        self.fields.clear();
        self.overflow = Counts::default();
    }

    /// Counts one request: its raw differences (primary vs candidate) and
    /// its noise differences (primary vs secondary). A field not in the
    /// table takes a slot while fewer than `max_fields` are taken (raw
    /// fields first), else counts in the overflow bucket, at most once per
    /// request and side. Every count stays at most `requests`.
    pub fn record(&mut self, raw: &FieldDiffs, noise: &FieldDiffs, max_fields: usize) {
        self.requests = self.requests.saturating_add(1);
        self.count_side(raw, max_fields, |c| &mut c.raw);
        self.count_side(noise, max_fields, |c| &mut c.noise);
    }

    fn count_side(&mut self, diffs: &FieldDiffs, max_fields: usize, side: fn(&mut Counts) -> &mut u64) {
        let mut overflowed = diffs.overflowed();
        for field in diffs.fields() {
            let index = match self.fields.find(field) {
                Ok(i) => i,
                Err(i) if self.fields.len() < max_fields => {
                    self.fields.insert_at(i, field, Counts::default());
                    i
                }
                Err(_) => {
                    overflowed = true;
                    continue;
                }
            };
            if let Some(counts) = self.fields.value_mut(index) {
                let n = side(counts);
                *n = n.saturating_add(1);
            }
        }
        if overflowed {
            let n = side(&mut self.overflow);
            *n = n.saturating_add(1);
        }
    }

    /// The verdict on a request whose raw differences are `raw`, against
    /// this table (the request already counted): see the module
    /// documentation. A field the table has never counted, while it has
    /// room, makes the verdict `learning` unless another field is real
    /// (only when the request itself was not counted: see [`record`]).
    pub fn verdict(&self, raw: &FieldDiffs, policy: &NoisePolicy) -> NoiseVerdict {
        if raw.is_empty() {
            return NoiseVerdict::Match;
        }
        if self.requests < policy.min_requests {
            return NoiseVerdict::Learning;
        }
        let real = |counts: Counts| is_real(counts, self.requests, policy.relative_ppm, policy.absolute_ppm);
        let full = self.fields.len() >= policy.max_fields;
        let (mut overflowed, mut unseen) = (raw.overflowed(), false);
        for field in raw.fields() {
            match self.counts(field) {
                Some(counts) if real(counts) => return NoiseVerdict::BodyMismatch,
                Some(_) => {}
                None if full => overflowed = true,
                None => unseen = true,
            }
        }
        if overflowed && real(self.overflow) {
            NoiseVerdict::BodyMismatch
        } else if unseen {
            NoiseVerdict::Learning
        } else {
            NoiseVerdict::Noise
        }
    }

    /// Appends the stored form to `out` (cleared first): version 1,
    /// requests, overflow raw and noise (u64 LE), field count (u16 LE),
    /// then per field: kind (u8), path length (u8), path, raw, noise (u64 LE).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(VERSION);
        out.extend_from_slice(&self.requests.to_le_bytes());
        out.extend_from_slice(&self.overflow.raw.to_le_bytes());
        out.extend_from_slice(&self.overflow.noise.to_le_bytes());
        let count = u16::try_from(self.fields.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (field, counts) in self.fields.iter().take(usize::from(count)) {
            out.push(kind_byte(field.kind));
            out.push(u8::try_from(field.path.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(field.path.as_bytes());
            out.extend_from_slice(&counts.raw.to_le_bytes());
            out.extend_from_slice(&counts.noise.to_le_bytes());
        }
    }

    /// Replaces this table with the one `bytes` holds; on an error the
    /// table is left empty. Never panics, whatever the bytes.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        self.clear();
        let result = self.read(bytes);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn read(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return Err(DecodeError::Version);
        }
        self.requests = r.u64()?;
        self.overflow = Counts {
            raw: r.u64()?,
            noise: r.u64()?,
        };
        let count = usize::from(r.u16()?);
        if count > crate::config::MAX_NOISE_MAX_FIELDS {
            return Err(DecodeError::Invalid);
        }
        let within = |c: Counts| c.raw <= self.requests && c.noise <= self.requests;
        if !within(self.overflow) {
            return Err(DecodeError::Invalid);
        }
        for _ in 0..count {
            let kind = *KINDS.get(usize::from(r.u8()?)).ok_or(DecodeError::Invalid)?;
            let path = r.text()?;
            let counts = Counts {
                raw: r.u64()?,
                noise: r.u64()?,
            };
            let field = Field { path, kind };
            // Stored in order, each once: anything else was not written here.
            let at = self.fields.len();
            if !within(counts) || self.fields.find(field) != Err(at) {
                return Err(DecodeError::Invalid);
            }
            self.fields.insert_at(at, field, counts);
        }
        r.end()
    }
}

/// The method part of an endpoint: the HTTP method, or for gRPC the
/// `:path` without any query (`/pkg.Service/Method`), so that one gRPC
/// method is one endpoint whatever the route. At most 255 bytes (cut at
/// a character boundary).
pub fn endpoint_method<'a>(method: &'a str, path: &'a str, grpc: bool) -> &'a str {
    let name = if grpc {
        path.split_once('?').map_or(path, |(p, _)| p)
    } else {
        method
    };
    cut(name, 255)
}

/// Which table an endpoint counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Its own: the endpoint's place in the directory.
    Endpoint(usize),
    /// The one shared by endpoints beyond `maxEndpoints`.
    Overflow,
}

/// The shared-data key of the directory of a mirror's endpoints.
pub fn directory_key(policy: &NoisePolicy) -> String {
    format!("{}:endpoints", policy.key_prefix)
}

/// The shared-data key of a table.
pub fn table_key(policy: &NoisePolicy, slot: Slot) -> String {
    match slot {
        Slot::Endpoint(i) => format!("{}:endpoint:{i}", policy.key_prefix),
        Slot::Overflow => format!("{}:endpoint:overflow", policy.key_prefix),
    }
}

/// The directory as stored: version 1, count (u16 LE), then per endpoint
/// the route and the method, each a length (u8) and UTF-8 bytes. An
/// endpoint's slot is its place in the list; entries are only appended.
pub fn encode_directory(entries: &[(String, String)], out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for (route, method) in entries.iter().take(usize::from(count)) {
        for part in [route, method] {
            let part = cut(part, 255);
            out.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(part.as_bytes());
        }
    }
}

/// The endpoints of a stored directory, in slot order. Never panics.
pub fn decode_directory(bytes: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(DecodeError::Version);
    }
    let count = usize::from(r.u16()?);
    if count > crate::config::MAX_NOISE_MAX_ENDPOINTS {
        return Err(DecodeError::Invalid);
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let route = r.text()?;
        let method = r.text()?;
        entries.push((route.to_owned(), method.to_owned()));
    }
    r.end()?;
    Ok(entries)
}

/// Why the shared tables could not be used for a request: the caller counts
/// it, and the request gets the plain comparison's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseError {
    /// The host refused to read or write shared data.
    Host,
    /// [`MAX_ATTEMPTS`] compare-and-swaps in a row lost to other workers.
    Contention,
    /// The directory holds bytes this module did not write: left as it is
    /// (rewriting it would hand existing tables to other endpoints).
    Directory(DecodeError),
}

/// A worker's memory of a mirror's directory: the endpoints it has seen,
/// with their table keys, so that only an endpoint new to this worker
/// reads the directory. At most `maxEndpoints` entries; keep one per
/// [`NoisePolicy`] (a configuration push starts a new one).
#[derive(Debug, Clone, Default)]
pub struct DirectoryCache {
    known: Vec<Known>,
    /// The directory is full (it only grows): new endpoints are overflow
    /// without a host call.
    full: bool,
    overflow_key: Option<String>,
}

#[derive(Debug, Clone)]
struct Known {
    route: String,
    method: String,
    slot: Slot,
    key: String,
}

impl DirectoryCache {
    pub fn new() -> Self {
        DirectoryCache::default()
    }

    fn find(&self, route: &str, method: &str) -> Option<&Known> {
        self.known.iter().find(|k| k.route == route && k.method == method)
    }

    fn learn(&mut self, policy: &NoisePolicy, entries: &[(String, String)]) {
        for (i, (route, method)) in entries.iter().enumerate().take(policy.max_endpoints) {
            if self.find(route, method).is_none() {
                let slot = Slot::Endpoint(i);
                self.known.push(Known {
                    route: route.clone(),
                    method: method.clone(),
                    slot,
                    key: table_key(policy, slot),
                });
            }
        }
        self.full = entries.len() >= policy.max_endpoints;
    }
}

/// The table an endpoint counts in, and its key. Known to this worker: no
/// host call. Else the directory is read, and the endpoint appended under
/// CAS while there is room (at most [`MAX_ATTEMPTS`] tries); a full
/// directory gives the overflow table. `route` and `method` are cut to 255
/// bytes (use [`endpoint_method`] for the method).
///
/// The directory's first write is read back. Left open: two workers that
/// create it at the same instant, the first reading its own write back
/// before the second overwrites it, give two endpoints slot 0 in their
/// caches, until the next configuration; once per mirror per Envoy.
pub fn resolve<'c, S: SharedStore>(
    store: &mut S,
    policy: &NoisePolicy,
    cache: &'c mut DirectoryCache,
    route: &str,
    method: &str,
) -> Result<(Slot, &'c str), NoiseError> {
    let (route, method) = (cut(route, 255), cut(method, 255));
    if cache.find(route, method).is_none() && !cache.full {
        learn_or_add(store, policy, cache, route, method)?;
    }
    if cache.overflow_key.is_none() {
        cache.overflow_key = Some(table_key(policy, Slot::Overflow));
    }
    let cache: &'c DirectoryCache = cache;
    Ok(match cache.find(route, method) {
        Some(known) => (known.slot, known.key.as_str()),
        None => (Slot::Overflow, cache.overflow_key.as_deref().unwrap_or_default()),
    })
}

fn learn_or_add<S: SharedStore>(
    store: &mut S,
    policy: &NoisePolicy,
    cache: &mut DirectoryCache,
    route: &str,
    method: &str,
) -> Result<(), NoiseError> {
    let key = directory_key(policy);
    let mut buf = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let (mut entries, cas) = match store.load(&key).map_err(|_| NoiseError::Host)? {
            Some((bytes, cas)) => (decode_directory(&bytes).map_err(NoiseError::Directory)?, cas),
            None => (Vec::new(), 0),
        };
        cache.learn(policy, &entries);
        if cache.find(route, method).is_some() || cache.full {
            return Ok(());
        }
        entries.push((route.to_owned(), method.to_owned()));
        encode_directory(&entries, &mut buf);
        match store.store(&key, &buf, cas) {
            // Created with CAS 0 (there is no "create if absent"): read it
            // back, in case another worker created it at the same instant
            // and this write was overwritten (then the endpoint is
            // appended to what is there).
            Ok(()) if cas == 0 => continue,
            Ok(()) => {
                cache.learn(policy, &entries);
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(StoreError::Failed) => return Err(NoiseError::Host),
        }
    }
    Err(NoiseError::Contention)
}

/// A worker's buffers for [`record`]: reused, they allocate only while growing.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    pub table: EndpointTable,
    buf: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch::default()
    }
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub verdict: NoiseVerdict,
    /// The key held bytes that are not a table: they were replaced by a
    /// new table (that endpoint learns again from this request on).
    pub replaced: bool,
}

/// Counts one request in the table under `key` and gives its verdict.
///
/// `noise` is the secondary's differences, `None` when the secondary gave
/// no comparable answer: then nothing is counted (every counted request has
/// both sides, so raw and noise counts share one denominator) and the
/// verdict is read from the table as it is.
///
/// Host calls: one load, and one store when counting; a CAS conflict
/// repeats both, at most [`MAX_ATTEMPTS`] times in all. A table not stored
/// yet is written with CAS 0 (proxy-wasm has no "create if absent"): two
/// workers counting an endpoint's very first request at the same instant
/// may lose one of the two counts, once per key.
pub fn record<S: SharedStore>(
    store: &mut S,
    key: &str,
    raw: &FieldDiffs,
    noise: Option<&FieldDiffs>,
    policy: &NoisePolicy,
    scratch: &mut Scratch,
) -> Result<Recorded, NoiseError> {
    for _ in 0..MAX_ATTEMPTS {
        let (replaced, cas) = match store.load(key).map_err(|_| NoiseError::Host)? {
            Some((bytes, cas)) => (scratch.table.decode_into(&bytes).is_err(), cas),
            None => {
                scratch.table.clear();
                (false, 0)
            }
        };
        let Some(noise) = noise else {
            return Ok(Recorded {
                verdict: scratch.table.verdict(raw, policy),
                replaced: false,
            });
        };
        scratch.table.record(raw, noise, policy.max_fields);
        let verdict = scratch.table.verdict(raw, policy);
        scratch.table.encode_into(&mut scratch.buf);
        match store.store(key, &scratch.buf, cas) {
            Ok(()) => return Ok(Recorded { verdict, replaced }),
            Err(StoreError::Conflict) => continue,
            Err(StoreError::Failed) => return Err(NoiseError::Host),
        }
    }
    Err(NoiseError::Contention)
}

/// Reads the table under `key` into `table` (for reports and metrics);
/// `Ok(false)` when there is none yet. Bytes that are not a table leave it
/// empty and are an error.
pub fn load_table<S: SharedStore>(store: &mut S, key: &str, table: &mut EndpointTable) -> Result<bool, LoadError> {
    match store.load(key).map_err(|_| LoadError::Host)? {
        Some((bytes, _)) => table.decode_into(&bytes).map(|()| true).map_err(LoadError::Decode),
        None => {
            table.clear();
            Ok(false)
        }
    }
}

/// Why [`load_table`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    Host,
    Decode(DecodeError),
}

#[cfg(test)]
#[path = "noise_tests.rs"]
mod tests;
