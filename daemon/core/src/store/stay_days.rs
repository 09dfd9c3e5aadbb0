//! Stays summarised per day, so time in stage for a period costs O(days),
//! not O(stays), and stays exact:
//! - **completed stays** per (stage, exit day) and per (stage, owner, exit
//!   day), keyed by the stay's length in centi-days;
//! - **open stays** per (stage, entry day) and per (stage, owner, entry
//!   day), keyed by the entry time in milliseconds.
//!
//! A summary is the sum of what it counts, the counts of the answer's
//! histogram bins (completed stays only), and its keys as a sorted list of
//! `u32`: a completed stay's length in centi-days, an open stay's entry
//! time as milliseconds into its day.
//!
//! Time in stage is answered in days rounded to two decimals, and that
//! rounding is monotone, so the k-th smallest completed stay, rounded, is
//! the k-th smallest centi-day key: a percentile over any set of days is
//! found exactly by a search over centi-days in which each day answers "how
//! many stays round to at most v" by a binary search of its own list. An
//! open stay's age is `now − entry`, so its order is the entries' order
//! reversed, and the days themselves are ordered: the k-th entry is found
//! by summing whole days' counts, then indexing one day's list. Count and
//! mean are exact sums, the mean the sum's integer division as over the
//! stays themselves.
//!
//! Layout (little-endian): sum `i128`, [`BINS`] × `u64` bin counts, then
//! the keys, `u32` each, in order. Four bytes a stay keeps each rewrite of
//! a day's summary (on every transition that ends or begins a stay in it)
//! a small copy: at a million prospects a busy day's summary is ~10 KiB.

use redb::TableDefinition;

use stagecoach_types::api::results::Durations;
use stagecoach_types::model::Millis;

/// (stage, exit day) → the stays that ended that day.
pub(crate) const STAY_DAYS: TableDefinition<(&str, i64), &[u8]> =
    TableDefinition::new("metrics_stay_days");
/// (stage, owner, exit day) → that owner's stays that ended that day.
pub(crate) const STAY_DAYS_BY_OWNER: TableDefinition<(&str, &str, i64), &[u8]> =
    TableDefinition::new("metrics_stay_days_by_owner");
/// (stage, entry day) → the open stays that began that day.
pub(crate) const OPEN_DAYS: TableDefinition<(&str, i64), &[u8]> =
    TableDefinition::new("metrics_open_stay_days");
/// (stage, owner, entry day) → that owner's open stays that began that day.
pub(crate) const OPEN_DAYS_BY_OWNER: TableDefinition<(&str, &str, i64), &[u8]> =
    TableDefinition::new("metrics_open_stay_days_by_owner");

/// Upper bounds, in days, of the answer's histogram bins (the last bin,
/// "more", has none).
pub const HISTOGRAM_BOUNDS: [u32; 8] = [1, 2, 4, 7, 14, 30, 60, 90];
const BINS: usize = HISTOGRAM_BOUNDS.len() + 1;
const HEADER: usize = 16 + 8 * BINS;
const KEY: usize = 4;

/// A duration in days, rounded to two decimals, times 100: the figure the
/// answer shows is `centi_days(ms) / 100`.
pub fn centi_days(ms: i64) -> i64 {
    (ms as f64 / Millis::DAY as f64 * 100.0).round() as i64
}

/// Days, two decimals, from milliseconds.
pub fn days(ms: i64) -> f64 {
    centi_days(ms) as f64 / 100.0
}

/// The histogram bin a duration falls in.
pub fn bin(ms: i64) -> usize {
    let d = ms as f64 / Millis::DAY as f64;
    HISTOGRAM_BOUNDS
        .iter()
        .position(|b| d <= f64::from(*b))
        .unwrap_or(HISTOGRAM_BOUNDS.len())
}

/// The histogram's labels, in bin order.
pub fn bin_labels() -> impl Iterator<Item = String> {
    HISTOGRAM_BOUNDS
        .iter()
        .map(|b| format!("≤{b}d"))
        .chain(std::iter::once("more".to_string()))
}

/// A completed stay's key. Stays are never negative, and accepted times
/// span 1970 to 2200, so 230 years (8.4 million centi-days) fit.
fn stay_key(ms: i64) -> u32 {
    u32::try_from(centi_days(ms.max(0))).unwrap_or(u32::MAX)
}

/// An open stay's key: milliseconds into its entry day.
fn open_key(entered: Millis) -> u32 {
    entered.0.rem_euclid(Millis::DAY) as u32
}

fn add_to_sum(blob: &mut [u8], value: i64) {
    let sum = View(blob).sum() + i128::from(value);
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
}

/// Inserts `key` after the keys at most it.
fn insert_key(blob: &mut Vec<u8>, key: u32) {
    let at = HEADER + View(blob).partition(|k| k <= key) * KEY;
    blob.splice(at..at, key.to_le_bytes());
}

/// Adds a completed stay of `ms` to a summary (`blob` empty: a new one):
/// the reference [`add_stays`] is tested against.
#[cfg(test)]
fn add_stay(blob: &mut Vec<u8>, ms: i64) {
    if blob.is_empty() {
        blob.resize(HEADER, 0);
    }
    add_to_sum(blob, ms);
    let at = 16 + 8 * bin(ms);
    let n = u64::from_le_bytes(blob[at..at + 8].try_into().expect("8 bytes")) + 1;
    blob[at..at + 8].copy_from_slice(&n.to_le_bytes());
    insert_key(blob, stay_key(ms));
}

/// Adds an open stay that began at `entered` to its entry day's summary.
pub(crate) fn add_open(blob: &mut Vec<u8>, entered: Millis) {
    if blob.is_empty() {
        blob.resize(HEADER, 0);
    }
    add_to_sum(blob, entered.0);
    insert_key(blob, open_key(entered));
}

/// Takes an open stay that began at `entered` out of its entry day's
/// summary; false when the summary does not hold it. The summary left may
/// be empty ([`View::count`] 0): the caller removes it. The reference
/// [`change_open`] is tested against.
#[cfg(test)]
fn remove_open(blob: &mut Vec<u8>, entered: Millis) -> bool {
    let key = open_key(entered);
    let view = View(blob);
    let i = view.partition(|k| k < key);
    if i == view.len() || view.key(i) != key {
        return false;
    }
    add_to_sum(blob, -entered.0);
    let at = HEADER + i * KEY;
    blob.drain(at..at + KEY);
    true
}

/// Adds completed stays of `ms` (in any order) to a summary at once: the
/// summary adding them one by one makes, in one pass over its keys (a
/// batch's stays of one day, [`super::counters`]).
pub(crate) fn add_stays(blob: &mut Vec<u8>, ms: &[i64]) {
    if ms.is_empty() {
        return;
    }
    if blob.is_empty() {
        blob.resize(HEADER, 0);
    }
    let mut sum = View(blob).sum();
    let mut keys: Vec<u32> = Vec::with_capacity(ms.len());
    for m in ms {
        sum += i128::from(*m);
        let at = 16 + 8 * bin(*m);
        let n = u64::from_le_bytes(blob[at..at + 8].try_into().expect("8 bytes")) + 1;
        blob[at..at + 8].copy_from_slice(&n.to_le_bytes());
        keys.push(stay_key(*m));
    }
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    keys.sort_unstable();
    let old = keys_of(blob);
    blob.truncate(HEADER);
    blob.reserve((old.len() + keys.len()) * KEY);
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < keys.len() {
        let k = if j == keys.len() || (i < old.len() && old[i] <= keys[j]) {
            i += 1;
            old[i - 1]
        } else {
            j += 1;
            keys[j - 1]
        };
        blob.extend_from_slice(&k.to_le_bytes());
    }
}

/// A summary's keys, in order.
fn keys_of(blob: &[u8]) -> Vec<u32> {
    let view = View(blob);
    (0..view.len()).map(|i| view.key(i)).collect()
}

/// Applies a batch's changes to an open-stay summary at once: `changes`,
/// sorted by entry time, says for each entry time how many open stays that
/// began then come in (positive) or go out (negative). The summary adding
/// and taking them out one by one makes; returns how many were to go out
/// and were not there (each is left out, as [`remove_open`] does).
pub(crate) fn change_open(blob: &mut Vec<u8>, changes: &[(Millis, i64)]) -> u64 {
    if changes.iter().all(|(_, n)| *n == 0) {
        return 0;
    }
    if blob.is_empty() {
        blob.resize(HEADER, 0);
    }
    let mut sum = View(blob).sum();
    let old = keys_of(blob);
    blob.truncate(HEADER);
    blob.reserve((old.len() + changes.len()) * KEY);
    let mut missing = 0;
    let mut i = 0;
    for &(entered, n) in changes {
        let key = open_key(entered);
        while i < old.len() && old[i] < key {
            blob.extend_from_slice(&old[i].to_le_bytes());
            i += 1;
        }
        if n >= 0 {
            for _ in 0..n {
                blob.extend_from_slice(&key.to_le_bytes());
            }
            sum += i128::from(entered.0) * i128::from(n);
        } else {
            for _ in 0..n.unsigned_abs() {
                if i < old.len() && old[i] == key {
                    i += 1;
                    sum -= i128::from(entered.0);
                } else {
                    missing += 1;
                }
            }
        }
    }
    for k in &old[i..] {
        blob.extend_from_slice(&k.to_le_bytes());
    }
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    missing
}

/// A summary of completed stays of `ms` (in any order); none, empty.
pub(crate) fn build(ms: &[i64]) -> Vec<u8> {
    if ms.is_empty() {
        return Vec::new();
    }
    let mut blob = vec![0u8; HEADER];
    let mut bins = [0u64; BINS];
    let mut keys: Vec<u32> = Vec::with_capacity(ms.len());
    let mut sum = 0i128;
    for m in ms {
        sum += i128::from(*m);
        bins[bin(*m)] += 1;
        keys.push(stay_key(*m));
    }
    keys.sort_unstable();
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    for (i, n) in bins.iter().enumerate() {
        blob[16 + 8 * i..24 + 8 * i].copy_from_slice(&n.to_le_bytes());
    }
    for k in keys {
        blob.extend_from_slice(&k.to_le_bytes());
    }
    blob
}

/// A summary, read in place.
#[derive(Clone, Copy)]
pub(crate) struct View<'a>(pub &'a [u8]);

impl View<'_> {
    fn len(&self) -> usize {
        self.0.len().saturating_sub(HEADER) / KEY
    }
    fn key(&self, i: usize) -> u32 {
        let o = HEADER + i * KEY;
        u32::from_le_bytes(self.0[o..o + KEY].try_into().expect("4 bytes"))
    }
    /// How many the summary counts.
    pub(crate) fn count(&self) -> u64 {
        self.len() as u64
    }
    fn sum(&self) -> i128 {
        if self.0.len() < HEADER {
            return 0;
        }
        i128::from_le_bytes(self.0[0..16].try_into().expect("16 bytes"))
    }
    fn bin(&self, i: usize) -> u64 {
        if self.0.len() < HEADER {
            return 0;
        }
        u64::from_le_bytes(self.0[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"))
    }
    /// The number of keys for which `pred(key)` holds (a prefix).
    fn partition(&self, pred: impl Fn(u32) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// Keys of at most `v`.
    fn at_most(&self, v: u32) -> u64 {
        self.partition(|k| k <= v) as u64
    }
}

/// The rank of a percentile among `count` values (0-based), as
/// [`crate::metrics::durations`] takes it: nearest rank.
fn rank(p: f64, count: u64) -> u64 {
    ((p * count as f64).ceil() as u64).clamp(1, count) - 1
}

const PERCENTILES: [f64; 4] = [0.25, 0.5, 0.75, 0.9];

fn answer(count: u64, mean_ms: i64, pct: [f64; 4], bins: impl Fn(usize) -> u64) -> Durations {
    let some = |v: f64| (count > 0).then_some(v);
    Durations {
        count: count as usize,
        mean_days: some(days(mean_ms)),
        median_days: some(pct[1]),
        p25_days: some(pct[0]),
        p75_days: some(pct[2]),
        p90_days: some(pct[3]),
        histogram: bin_labels()
            .enumerate()
            .map(|(i, label)| (label, bins(i) as usize))
            .collect(),
    }
}

/// Time in stage over the completed stays of `summaries` (of any days),
/// as [`crate::metrics::durations`] answers it from the stays.
pub(crate) fn summarize(summaries: &[View<'_>]) -> Durations {
    let count: u64 = summaries.iter().map(View::count).sum();
    if count == 0 {
        return answer(0, 0, [0.0; 4], |_| 0);
    }
    let sum: i128 = summaries.iter().map(View::sum).sum();
    let (lo, hi) = summaries
        .iter()
        .filter(|d| d.len() > 0)
        .fold((u32::MAX, 0), |(lo, hi), d| {
            (lo.min(d.key(0)), hi.max(d.key(d.len() - 1)))
        });
    // The smallest centi-day with more than `rank` stays at or below it.
    let select = |rank: u64| -> f64 {
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if summaries.iter().map(|d| d.at_most(mid)).sum::<u64>() > rank {
                b = mid;
            } else {
                a = mid + 1;
            }
        }
        f64::from(a) / 100.0
    };
    answer(
        count,
        (sum / i128::from(count)) as i64,
        PERCENTILES.map(|p| select(rank(p, count))),
        |i| summaries.iter().map(|d| d.bin(i)).sum(),
    )
}

/// The ages at `now` of the open stays of `summaries` (of open stays by
/// entry day, in day order), as [`crate::metrics::durations`] answers
/// it from `max(0, now − entered)` of each.
pub(crate) fn summarize_open(summaries: &[(i64, View<'_>)], now: Millis) -> Durations {
    let count: u64 = summaries.iter().map(|(_, d)| d.count()).sum();
    if count == 0 {
        return answer(0, 0, [0.0; 4], |_| 0);
    }
    let now_day = now.0.div_euclid(Millis::DAY);
    // Entries before `now`'s day are all before `now`; later ones age 0.
    let age_sum: i128 = summaries
        .iter()
        .map(|(day, d)| match day.cmp(&now_day) {
            std::cmp::Ordering::Less => i128::from(d.count()) * i128::from(now.0) - d.sum(),
            std::cmp::Ordering::Equal => (0..d.len())
                .map(|i| i128::from((now.0 - (day * Millis::DAY + i64::from(d.key(i)))).max(0)))
                .sum(),
            std::cmp::Ordering::Greater => 0,
        })
        .sum();
    // The entry of rank `r` in entry order.
    let nth = |r: u64| -> i64 {
        let mut before = 0;
        for (day, d) in summaries {
            let n = d.count();
            if r < before + n {
                return day * Millis::DAY + i64::from(d.key((r - before) as usize));
            }
            before += n;
        }
        unreachable!("rank {r} below the count {count}")
    };
    let age = |entered: i64| (now.0 - entered).max(0);
    // Youngest first: the age of rank r is the entry of rank count−1−r.
    let pct = PERCENTILES.map(|p| days(age(nth(count - 1 - rank(p, count)))));
    // Entries before `t`, by whole days and one day's search.
    let before = |t: i64| -> u64 {
        let t_day = t.div_euclid(Millis::DAY);
        summaries
            .iter()
            .map(|(day, d)| match day.cmp(&t_day) {
                std::cmp::Ordering::Less => d.count(),
                std::cmp::Ordering::Equal => {
                    let offset = (t - t_day * Millis::DAY) as u32;
                    d.partition(|k| k < offset) as u64
                }
                std::cmp::Ordering::Greater => 0,
            })
            .sum()
    };
    // Ages of at most b days are entries at or after now − b days.
    let at_most_days: Vec<u64> = HISTOGRAM_BOUNDS
        .iter()
        .map(|b| count - before(now.0 - i64::from(*b) * Millis::DAY))
        .chain(std::iter::once(count))
        .collect();
    answer(count, (age_sum / i128::from(count)) as i64, pct, |i| {
        at_most_days[i] - if i == 0 { 0 } else { at_most_days[i - 1] }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metrics::durations;
    use proptest::prelude::*;

    fn by_adding(ms: &[i64]) -> Vec<u8> {
        let mut blob = Vec::new();
        for m in ms {
            add_stay(&mut blob, *m);
        }
        blob
    }

    /// Durations near the rounding and bin boundaries, and anywhere.
    fn duration() -> impl Strategy<Value = i64> {
        let bounds: Vec<i64> = HISTOGRAM_BOUNDS
            .iter()
            .map(|b| i64::from(*b) * Millis::DAY)
            .collect();
        prop_oneof![
            0..3 * Millis::DAY,
            0..200 * Millis::DAY,
            (proptest::sample::select(bounds), -1..=1i64).prop_map(|(b, d)| b + d),
            Just(432_000i64),
            Just(0),
        ]
    }

    proptest! {
        /// Completed stays' summaries, built one stay at a time or at once,
        /// split over any number of days, answer what the stays do.
        #[test]
        fn summaries_answer_what_the_stays_do(
            days in proptest::collection::vec(proptest::collection::vec(duration(), 0..30), 1..6)
        ) {
            let all: Vec<i64> = days.iter().flatten().copied().collect();
            let added: Vec<Vec<u8>> = days.iter().map(|d| by_adding(d)).collect();
            let built: Vec<Vec<u8>> = days.iter().map(|d| build(d)).collect();
            prop_assert_eq!(&added, &built);
            let views: Vec<View> = added.iter().map(|b| View(b)).collect();
            prop_assert_eq!(summarize(&views), durations(all));
        }

        /// Open stays' summaries, with entries added and taken out again,
        /// answer what the ages themselves do, at any `now` (before some
        /// entries, on one's day, long after).
        #[test]
        fn open_summaries_answer_what_the_ages_do(
            entries in proptest::collection::vec((0..40 * Millis::DAY, any::<bool>()), 1..60),
            now in prop_oneof![0..45 * Millis::DAY, Just(20 * Millis::DAY)],
            shift in prop_oneof![Just(0i64), (0..3i64).prop_map(|b| [1, 7, 30][b as usize] * Millis::DAY)],
        ) {
            let mut blobs: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
            let mut open = Vec::new();
            for (at, keep) in &entries {
                let blob = blobs.entry(at.div_euclid(Millis::DAY)).or_default();
                add_open(blob, Millis(*at));
                if *keep {
                    open.push(*at);
                } else {
                    prop_assert!(remove_open(blob, Millis(*at)));
                }
            }
            prop_assert!(!remove_open(&mut Vec::new(), Millis(5)));
            blobs.retain(|_, b| View(b).count() > 0);
            // A `now` exactly a bin's bound after an entry, sometimes.
            let now = Millis(entries[0].0 + shift).max(Millis(now));
            let views: Vec<(i64, View)> = blobs.iter().map(|(d, b)| (*d, View(b))).collect();
            let ages: Vec<i64> = open.iter().map(|e| (now.0 - e).max(0)).collect();
            prop_assert_eq!(summarize_open(&views, now), durations(ages));
        }
    }

    proptest! {
        /// A batch's stays added at once make the summary adding them one
        /// by one makes, onto any summary.
        #[test]
        fn stays_added_at_once_are_stays_added_one_by_one(
            before in proptest::collection::vec(duration(), 0..30),
            batch in proptest::collection::vec(duration(), 0..30),
        ) {
            let mut at_once = by_adding(&before);
            add_stays(&mut at_once, &batch);
            let all: Vec<i64> = before.iter().chain(&batch).copied().collect();
            prop_assert_eq!(at_once, by_adding(&all));
        }

        /// A batch's open stays in and out of one day's summary, applied at
        /// once, make the summary applying them one by one makes; a stay
        /// taken out that is not there is counted and left out.
        #[test]
        fn open_changes_at_once_are_changes_one_by_one(
            before in proptest::collection::vec(0..Millis::DAY / 1000, 0..20),
            batch in proptest::collection::vec((0..Millis::DAY / 1000, -2..=2i64), 0..30),
        ) {
            // Few distinct times (seconds into day 3), so changes collide.
            let at = |s: i64| Millis(3 * Millis::DAY + s % 40 * 1000);
            let mut one_by_one = Vec::new();
            for s in &before {
                add_open(&mut one_by_one, at(*s));
            }
            let mut at_once = one_by_one.clone();
            let mut net: BTreeMap<i64, i64> = BTreeMap::new();
            let mut missing = 0;
            for (s, n) in &batch {
                *net.entry(at(*s).0).or_default() += n;
            }
            for (t, n) in &net {
                for _ in 0..n.unsigned_abs() {
                    if *n > 0 {
                        add_open(&mut one_by_one, Millis(*t));
                    } else if !remove_open(&mut one_by_one, Millis(*t)) {
                        missing += 1;
                    }
                }
            }
            let changes: Vec<(Millis, i64)> = net.iter().map(|(t, n)| (Millis(*t), *n)).collect();
            prop_assert_eq!(change_open(&mut at_once, &changes), missing);
            if one_by_one.is_empty() {
                prop_assert_eq!(View(&at_once).count(), 0);
            } else {
                prop_assert_eq!(at_once, one_by_one);
            }
        }
    }

    #[test]
    fn rounding_boundaries_and_bins_match_the_raw_answer() {
        // Half a centi-day, a whole day (the first bin's bound, inclusive)
        // and one millisecond either side of each.
        let ms = [
            431_999,
            432_000,
            432_001,
            Millis::DAY - 1,
            Millis::DAY,
            Millis::DAY + 1,
            90 * Millis::DAY,
            90 * Millis::DAY + 1,
        ];
        let blob = by_adding(&ms);
        assert_eq!(summarize(&[View(&blob)]), durations(ms.to_vec()));
        assert_eq!(summarize(&[]), durations(Vec::new()));
        assert_eq!(summarize_open(&[], Millis(0)), durations(Vec::new()));
    }
}
