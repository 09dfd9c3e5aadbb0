//! Stays summarised per day, so time in stage for a period costs O(days),
//! not O(stays), and stays exact:
//! - **completed stays** per (stage, exit day) and per (stage, owner, exit
//!   day), keyed by the stay's length in centi-days;
//! - **open stays** per (stage, entry day) and per (stage, owner, entry
//!   day), keyed by the entry time in milliseconds.
//!
//! A summary is a sorted multiset: the sum of what it counts, the counts
//! of the answer's histogram bins (completed stays only), and its keys as a
//! sorted list of (key, count of entries up to and including it).
//!
//! Time in stage is answered in days rounded to two decimals, and that
//! rounding is monotone, so the k-th smallest completed stay, rounded, is
//! the k-th smallest centi-day key: a percentile over any set of days is
//! found exactly by a search over centi-days in which each day answers "how
//! many stays round to at most v" by a binary search of its own list. An
//! open stay's age is `now − entry`, so its order is the entries' order
//! reversed, and the days themselves are ordered: the k-th entry is found
//! by summing whole days' counts, then searching one day. Count and mean
//! are exact sums, the mean the sum's integer division as over the stays
//! themselves.
//!
//! Layout (little-endian): sum `i128`, [`BINS`] × `u64` bin counts, then
//! `n` × (`i64` key, `u64` entries up to and including it).

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
const ENTRY: usize = 8 + 8;

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

fn read_u64(blob: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(blob[at..at + 8].try_into().expect("8 bytes"))
}

/// Adds `delta` to the count at `at`.
fn bump(blob: &mut [u8], at: usize, delta: i64) {
    let v = read_u64(blob, at).wrapping_add_signed(delta);
    blob[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Adds `key` once to a summary (`blob` empty: a new one), with `value`
/// added to its sum and `bin`'s count raised.
pub(crate) fn add(blob: &mut Vec<u8>, key: i64, value: i64, bin: Option<usize>) {
    if blob.is_empty() {
        blob.resize(HEADER, 0);
    }
    let sum = View(blob).sum() + i128::from(value);
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    if let Some(b) = bin {
        let at = 16 + 8 * b;
        bump(blob, at, 1);
    }
    let view = View(blob);
    // The first entry whose key is ≥ key.
    let at = view.partition(|k| k < key);
    if at == view.len() || view.key(at) != key {
        let before = if at == 0 { 0 } else { view.cum(at - 1) };
        let offset = HEADER + at * ENTRY;
        let mut entry = [0u8; ENTRY];
        entry[0..8].copy_from_slice(&key.to_le_bytes());
        entry[8..].copy_from_slice(&before.to_le_bytes());
        blob.splice(offset..offset, entry);
    }
    // Every entry from the key on counts one more.
    for i in at..View(blob).len() {
        let c = HEADER + i * ENTRY + 8;
        bump(blob, c, 1);
    }
}

/// Takes `key` out of a summary once (with `value` out of its sum); false
/// when the summary does not hold it. The summary left may be empty
/// ([`View::count`] 0): the caller removes it.
pub(crate) fn remove(blob: &mut Vec<u8>, key: i64, value: i64) -> bool {
    let view = View(blob);
    let at = view.partition(|k| k < key);
    if at == view.len() || view.key(at) != key {
        return false;
    }
    let before = if at == 0 { 0 } else { view.cum(at - 1) };
    let last = view.cum(at) - before == 1;
    let sum = view.sum() - i128::from(value);
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    for i in at..View(blob).len() {
        let c = HEADER + i * ENTRY + 8;
        bump(blob, c, -1);
    }
    if last {
        let offset = HEADER + at * ENTRY;
        blob.drain(offset..offset + ENTRY);
    }
    true
}

/// A summary of completed stays of `ms` (in any order); none, empty.
pub(crate) fn build(ms: &mut [i64]) -> Vec<u8> {
    if ms.is_empty() {
        return Vec::new();
    }
    ms.sort_unstable();
    let mut blob = vec![0u8; HEADER];
    let mut sum = 0i128;
    let mut count = 0u64;
    for (i, m) in ms.iter().enumerate() {
        sum += i128::from(*m);
        let b = 16 + 8 * bin(*m);
        bump(&mut blob, b, 1);
        count += 1;
        let k = centi_days(*m);
        // One entry per key: written at the last stay with it.
        if ms.get(i + 1).is_none_or(|next| centi_days(*next) != k) {
            blob.extend_from_slice(&k.to_le_bytes());
            blob.extend_from_slice(&count.to_le_bytes());
        }
    }
    blob[0..16].copy_from_slice(&sum.to_le_bytes());
    blob
}

/// Adds a completed stay of `ms` to a summary.
pub(crate) fn add_stay(blob: &mut Vec<u8>, ms: i64) {
    add(blob, centi_days(ms), ms, Some(bin(ms)));
}

/// A summary, read in place.
#[derive(Clone, Copy)]
pub(crate) struct View<'a>(pub &'a [u8]);

impl View<'_> {
    fn len(&self) -> usize {
        self.0.len().saturating_sub(HEADER) / ENTRY
    }
    fn key(&self, i: usize) -> i64 {
        let o = HEADER + i * ENTRY;
        i64::from_le_bytes(self.0[o..o + 8].try_into().expect("8 bytes"))
    }
    fn cum(&self, i: usize) -> u64 {
        read_u64(self.0, HEADER + i * ENTRY + 8)
    }
    /// How many entries the summary counts.
    pub(crate) fn count(&self) -> u64 {
        match self.len() {
            0 => 0,
            n => self.cum(n - 1),
        }
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
        read_u64(self.0, 16 + 8 * i)
    }
    /// The number of entries for which `pred(key)` holds (a prefix).
    fn partition(&self, pred: impl Fn(i64) -> bool) -> usize {
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
    /// Entries with a key of at most `v`.
    fn at_most(&self, v: i64) -> u64 {
        match self.partition(|k| k <= v) {
            0 => 0,
            n => self.cum(n - 1),
        }
    }
    /// The key of the entry of rank `r` (0-based, in key order).
    fn nth(&self, r: u64) -> i64 {
        let (mut lo, mut hi) = (0, self.len() - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.cum(mid) > r {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.key(lo)
    }
    /// Σ (now − key) over the keys at most `now`.
    fn age_sum(&self, now: i64) -> i128 {
        let mut sum = 0i128;
        let mut before = 0;
        for i in 0..self.len() {
            let k = self.key(i);
            if k > now {
                break;
            }
            let c = self.cum(i);
            sum += i128::from(now - k) * i128::from(c - before);
            before = c;
        }
        sum
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

/// Time in stage over the completed stays of `summaries` (of any days), as [`crate::metrics::durations`] answers it from the stays.
pub(crate) fn summarize(summaries: &[View<'_>]) -> Durations {
    let count: u64 = summaries.iter().map(View::count).sum();
    if count == 0 {
        return answer(0, 0, [0.0; 4], |_| 0);
    }
    let sum: i128 = summaries.iter().map(View::sum).sum();
    let (lo, hi) = summaries
        .iter()
        .filter(|d| d.len() > 0)
        .fold((i64::MAX, i64::MIN), |(lo, hi), d| {
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
        a as f64 / 100.0
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
    // Entries before `now`'s day are all at most `now`; later ones count 0.
    let age_sum: i128 = summaries
        .iter()
        .map(|(day, d)| match day.cmp(&now_day) {
            std::cmp::Ordering::Less => i128::from(d.count()) * i128::from(now.0) - d.sum(),
            std::cmp::Ordering::Equal => d.age_sum(now.0),
            std::cmp::Ordering::Greater => 0,
        })
        .sum();
    // The entry of rank `r` in entry order.
    let nth = |r: u64| -> i64 {
        let mut before = 0;
        for (_, d) in summaries {
            let n = d.count();
            if r < before + n {
                return d.nth(r - before);
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
                std::cmp::Ordering::Equal => d.at_most(t - 1),
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
            let built: Vec<Vec<u8>> = days.iter().map(|d| build(&mut d.clone())).collect();
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
                add(blob, *at, *at, None);
                if *keep {
                    open.push(*at);
                } else {
                    prop_assert!(remove(blob, *at, *at));
                }
            }
            prop_assert!(!remove(&mut Vec::new(), 5, 5));
            blobs.retain(|_, b| View(b).count() > 0);
            // A `now` exactly a bin's bound after an entry, sometimes.
            let now = Millis(entries[0].0 + shift).max(Millis(now));
            let views: Vec<(i64, View)> = blobs.iter().map(|(d, b)| (*d, View(b))).collect();
            let ages: Vec<i64> = open.iter().map(|e| (now.0 - e).max(0)).collect();
            prop_assert_eq!(summarize_open(&views, now), durations(ages));
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
