//! Metric counters, written in the same transaction as every transition:
//! - per-stage counters of entries and exits by kind, per day and per 32-day
//!   bucket, with and without the owner, so flow for a period costs
//!   O(days + buckets), not O(prospects);
//! - open prospects per (stage, owner), so the count at any instant is the
//!   current count minus what happened since;
//! - completed stays by stage and exit time, and summarised per exit day
//!   (time in stage in O(days), [`super::stay_days`]);
//! - entries by stage and time (cohorts for "reached" conversion);
//! - outcomes by close time (win rate, cycle length);
//! - stage aliases left by renames, so a renamed stage is the same stage.
//!
//! The queries over them are in [`crate::metrics`].

use rustc_hash::FxHashMap as HashMap;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::StoreError;
use super::lazy::Lazy;
use super::stay_days::{self, OPEN_DAYS, OPEN_DAYS_BY_OWNER, STAY_DAYS, STAY_DAYS_BY_OWNER};
use stagecoach_types::model::{Millis, Prospect, Status, Transition, TransitionKind};

/// (stage, day, owner, kind) → count.
pub(crate) const FLOW: TableDefinition<(&str, i64, &str, u8), u64> =
    TableDefinition::new("metrics_flow");
/// (stage, day, kind) → count, all owners: the common, unfiltered query
/// reads 20× fewer rows.
pub(crate) const FLOW_ALL: TableDefinition<(&str, i64, u8), u64> =
    TableDefinition::new("metrics_flow_all");
/// (stage, bucket of 32 days, owner, kind) → count: long stretches of time
/// are summed a bucket at a time.
pub(crate) const FLOW_BUCKET: TableDefinition<(&str, i64, &str, u8), u64> =
    TableDefinition::new("metrics_flow_bucket");
/// (stage, bucket of 32 days, kind) → count, all owners.
pub(crate) const FLOW_ALL_BUCKET: TableDefinition<(&str, i64, u8), u64> =
    TableDefinition::new("metrics_flow_all_bucket");
/// Days per bucket (a power of two).
pub(crate) const BUCKET_SHIFT: u32 = 5;
/// (stage, owner) → open prospects now.
pub(crate) const OPEN_COUNTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("metrics_open_counts");
/// (stage, exit at, transition id) → (duration ms, exit kind, owner).
pub(crate) const STAYS: TableDefinition<(&str, i64, u64), (i64, u8, &str)> =
    TableDefinition::new("metrics_stays");
/// (stage, entry at, prospect) → ().
pub(crate) const ENTRIES: TableDefinition<(&str, i64, u64), ()> =
    TableDefinition::new("metrics_entries");
/// (closed at, prospect) → (won, cycle ms, owner).
pub(crate) const OUTCOMES: TableDefinition<(i64, u64), (bool, i64, &str)> =
    TableDefinition::new("metrics_outcomes");
/// old stage id → new stage id.
pub(crate) const ALIASES: TableDefinition<&str, &str> =
    TableDefinition::new("metrics_stage_aliases");

pub(crate) const ENTERED: u8 = 0;
pub(crate) const REASSIGNED_IN: u8 = 1;
pub(crate) const REASSIGNED_OUT: u8 = 2;

pub(crate) fn exit_code(kind: TransitionKind) -> u8 {
    10 + match kind {
        TransitionKind::Created => 0,
        TransitionKind::Advanced => 1,
        TransitionKind::Skipped => 2,
        TransitionKind::Regressed => 3,
        TransitionKind::Forced => 4,
        TransitionKind::Won => 5,
        TransitionKind::Lost => 6,
    }
}

pub(crate) const EXIT_KINDS: [TransitionKind; 6] = [
    TransitionKind::Advanced,
    TransitionKind::Skipped,
    TransitionKind::Regressed,
    TransitionKind::Forced,
    TransitionKind::Won,
    TransitionKind::Lost,
];

pub(crate) fn day(at: Millis) -> i64 {
    at.0.div_euclid(Millis::DAY)
}

pub(crate) fn owner_of(p: &Prospect) -> &str {
    p.owner.as_deref().unwrap_or("")
}

/// Creates the metric tables (at start-up).
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(FLOW)?;
    txn.open_table(FLOW_ALL)?;
    txn.open_table(FLOW_BUCKET)?;
    txn.open_table(FLOW_ALL_BUCKET)?;
    txn.open_table(OPEN_COUNTS)?;
    txn.open_table(STAYS)?;
    txn.open_table(STAY_DAYS)?;
    txn.open_table(STAY_DAYS_BY_OWNER)?;
    txn.open_table(OPEN_DAYS)?;
    txn.open_table(OPEN_DAYS_BY_OWNER)?;
    txn.open_table(ENTRIES)?;
    txn.open_table(OUTCOMES)?;
    txn.open_table(ALIASES)?;
    Ok(())
}

/// Deletes the metric tables (before a rebuild).
pub(crate) fn drop_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(FLOW)?;
    txn.delete_table(FLOW_ALL)?;
    txn.delete_table(FLOW_BUCKET)?;
    txn.delete_table(FLOW_ALL_BUCKET)?;
    txn.delete_table(OPEN_COUNTS)?;
    txn.delete_table(STAYS)?;
    txn.delete_table(STAY_DAYS)?;
    txn.delete_table(STAY_DAYS_BY_OWNER)?;
    txn.delete_table(OPEN_DAYS)?;
    txn.delete_table(OPEN_DAYS_BY_OWNER)?;
    txn.delete_table(ENTRIES)?;
    txn.delete_table(OUTCOMES)?;
    Ok(())
}

/// Rewrites the summary at `key` (empty when there is none) with `change`,
/// which says whether anything is left to keep; if not, it is removed.
fn rewrite<'k, K: redb::Key + 'static>(
    table: &mut Table<'_, K, &'static [u8]>,
    key: &K::SelfType<'k>,
    change: impl Fn(&mut Vec<u8>) -> bool,
) -> Result<(), StoreError> {
    let mut blob = table
        .get(key)?
        .map(|v| v.value().to_vec())
        .unwrap_or_default();
    if change(&mut blob) {
        table.insert(key, blob.as_slice())?;
    } else {
        table.remove(key)?;
    }
    Ok(())
}

/// The metric tables, open in the writer's transaction.
pub(crate) struct MetricTables<'txn> {
    flow: Lazy<'txn, (&'static str, i64, &'static str, u8), u64>,
    flow_all: Lazy<'txn, (&'static str, i64, u8), u64>,
    flow_bucket: Lazy<'txn, (&'static str, i64, &'static str, u8), u64>,
    flow_all_bucket: Lazy<'txn, (&'static str, i64, u8), u64>,
    open_counts: Lazy<'txn, (&'static str, &'static str), u64>,
    stays: Lazy<'txn, (&'static str, i64, u64), (i64, u8, &'static str)>,
    stay_days: Lazy<'txn, (&'static str, i64), &'static [u8]>,
    stay_days_by_owner: Lazy<'txn, (&'static str, &'static str, i64), &'static [u8]>,
    open_days: Lazy<'txn, (&'static str, i64), &'static [u8]>,
    open_days_by_owner: Lazy<'txn, (&'static str, &'static str, i64), &'static [u8]>,
    entries: Lazy<'txn, (&'static str, i64, u64), ()>,
    outcomes: Lazy<'txn, (i64, u64), (bool, i64, &'static str)>,
    aliases: Lazy<'txn, &'static str, &'static str>,
    /// Counts and summaries not yet written: see [`Deltas`].
    deltas: Deltas,
}

/// A completed stay's row, stage and owner by number or by name:
/// ((stage, exit at, transition), (ms, exit kind, owner)).
type StayRow<N> = ((N, i64, u64), (i64, u8, N));

/// An outcome's row, owner by number or by name:
/// ((closed at, prospect), (won, cycle ms, owner)).
type OutcomeRow<N> = ((i64, u64), (bool, i64, N));

/// What a batch adds to the counters, day summaries and time-keyed rows,
/// gathered in memory and written once at its end ([`MetricTables::flush`]),
/// in key order.
/// Reading and rewriting four counters in redb at every move was 18 % of
/// the writer's time in an import (perf); gathered, the bumps are 2 % and
/// the flush 12 % (the bucket and all-owner counters repeat within a
/// batch; the per-day ones less so). A day's stay summary is a sorted list
/// that grows with the prospects (~10 KiB on a busy day at a million):
/// rewritten once per batch instead of once per move, the copies stop
/// growing with the batch. Nothing reads these inside the writer's
/// transaction.
#[derive(Default)]
struct Deltas {
    /// Stage and owner names, by the number the keys below use.
    names: Vec<String>,
    numbers: HashMap<String, u32>,
    /// (stage, day, owner, kind) → count to add.
    by_day: HashMap<(u32, i64, u32, u8), u64>,
    /// (stage, bucket, owner, kind) → count to add.
    by_bucket: HashMap<(u32, i64, u32, u8), u64>,
    /// Without the owner (reassignments left out).
    all_by_day: HashMap<(u32, i64, u8), u64>,
    all_by_bucket: HashMap<(u32, i64, u8), u64>,
    /// (stage, owner) → change in open prospects.
    open_counts: HashMap<(u32, u32), i64>,
    /// (stage, exit day) → lengths of the stays that ended then, ms.
    stays: HashMap<(u32, i64), Vec<i64>>,
    /// (stage, owner, exit day) → the same, per owner.
    stays_by_owner: HashMap<(u32, u32, i64), Vec<i64>>,
    /// (stage, entry day) → open stays in (+1) and out (−1), by entry time.
    open: HashMap<(u32, i64), Vec<(Millis, i64)>>,
    /// (stage, owner, entry day) → the same, per owner.
    open_by_owner: HashMap<(u32, u32, i64), Vec<(Millis, i64)>>,
    /// Completed stays' rows: (stage, exit at, transition) → (ms, exit
    /// kind, owner). These three tables are keyed by time, so a prospect's
    /// rows land all over their B-trees: inserted one by one they were
    /// 23 % of a replay's writer (perf); sorted at the flush, neighbouring
    /// rows share their pages.
    stay_rows: Vec<StayRow<u32>>,
    /// Entries' rows: (stage, entry at, prospect).
    entry_rows: Vec<(u32, i64, u64)>,
    /// Outcomes' rows: (closed at, prospect) → (won, cycle ms, owner).
    outcome_rows: Vec<OutcomeRow<u32>>,
    /// Stay lengths and open stays' changes gathered in the lists above.
    listed: usize,
}

impl Deltas {
    fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.to_string());
        self.numbers.insert(name.to_string(), n);
        n
    }

    /// `map`'s entries with their names, in the order redb keeps the keys.
    fn sorted<'a, K: Copy, V, T: Ord + 'a>(
        &'a self,
        map: &'a HashMap<K, V>,
        named: impl Fn(&'a [String], K) -> T,
    ) -> Vec<(T, &'a V)> {
        let mut out: Vec<(T, &V)> = map
            .iter()
            .map(|(k, v)| (named(&self.names, *k), v))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Each name's place in the names' sorted order, by its number: keys
    /// ordered by these ranks are in the order redb keeps the named keys.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut rank = vec![0; order.len()];
        for (r, n) in order.into_iter().enumerate() {
            rank[n as usize] = r as u32;
        }
        rank
    }
}

/// A gathered stay's row with its names.
fn stay_row(names: &[String], ((s, at, id), (ms, kind, o)): StayRow<u32>) -> StayRow<&str> {
    ((&names[s as usize], at, id), (ms, kind, &names[o as usize]))
}

/// A gathered entry's row with its stage's name.
fn entry_row(names: &[String], (s, at, p): (u32, i64, u64)) -> (&str, i64, u64) {
    (&names[s as usize], at, p)
}

/// A gathered outcome's row with its owner's name.
fn outcome_row(names: &[String], (k, (won, cycle, o)): OutcomeRow<u32>) -> OutcomeRow<&str> {
    (k, (won, cycle, &names[o as usize]))
}

/// A gathered (stage, day, owner, kind) key with its names.
fn with_owner(names: &[String], (s, d, o, k): (u32, i64, u32, u8)) -> (&str, i64, &str, u8) {
    (&names[s as usize], d, &names[o as usize], k)
}

/// A gathered (stage, day, kind) key with its stage's name.
fn without_owner(names: &[String], (s, d, k): (u32, i64, u8)) -> (&str, i64, u8) {
    (&names[s as usize], d, k)
}

/// A gathered (stage, owner) key with its names.
fn stage_owner(names: &[String], (s, o): (u32, u32)) -> (&str, &str) {
    (&names[s as usize], &names[o as usize])
}

/// A gathered (stage, day) key with its stage's name.
fn stage_day(names: &[String], (s, d): (u32, i64)) -> (&str, i64) {
    (&names[s as usize], d)
}

/// A gathered (stage, owner, day) key with its names.
fn stage_owner_day(names: &[String], (s, o, d): (u32, u32, i64)) -> (&str, &str, i64) {
    (&names[s as usize], &names[o as usize], d)
}

/// A day's open stays in and out, sorted by entry time and netted.
fn netted(changes: &[(Millis, i64)]) -> Vec<(Millis, i64)> {
    let mut sorted = changes.to_vec();
    sorted.sort_unstable_by_key(|c| c.0);
    let mut out: Vec<(Millis, i64)> = Vec::with_capacity(sorted.len());
    for (at, n) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == at => last.1 += n,
            _ => out.push((at, n)),
        }
    }
    out
}

/// Applies a day's open stays in and out to its summary.
fn change_open(blob: &mut Vec<u8>, changes: &[(Millis, i64)]) -> bool {
    let missing = stay_days::change_open(blob, changes);
    if missing > 0 {
        debug_assert!(false, "{missing} open stay(s) not summarised");
        tracing::warn!(missing, "open stays were missing from their summary");
    }
    stay_days::View(blob).count() > 0
}

impl<'txn> MetricTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Self {
        MetricTables {
            flow: Lazy::new(txn, FLOW),
            flow_all: Lazy::new(txn, FLOW_ALL),
            flow_bucket: Lazy::new(txn, FLOW_BUCKET),
            flow_all_bucket: Lazy::new(txn, FLOW_ALL_BUCKET),
            open_counts: Lazy::new(txn, OPEN_COUNTS),
            stays: Lazy::new(txn, STAYS),
            stay_days: Lazy::new(txn, STAY_DAYS),
            stay_days_by_owner: Lazy::new(txn, STAY_DAYS_BY_OWNER),
            open_days: Lazy::new(txn, OPEN_DAYS),
            open_days_by_owner: Lazy::new(txn, OPEN_DAYS_BY_OWNER),
            entries: Lazy::new(txn, ENTRIES),
            outcomes: Lazy::new(txn, OUTCOMES),
            aliases: Lazy::new(txn, ALIASES),
            deltas: Deltas::default(),
        }
    }

    /// Writes the counts, summaries and rows gathered since the last flush;
    /// called once per batch before commit (through `Tables::finish`; a
    /// replay's scratch store, at its end or when what it gathered passes
    /// its budget).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_rows()?;
        let deltas = std::mem::take(&mut self.deltas);
        for (table, map) in [
            (&mut self.flow, &deltas.by_day),
            (&mut self.flow_bucket, &deltas.by_bucket),
        ] {
            if map.is_empty() {
                continue;
            }
            let table = table.write()?;
            for (key, add) in deltas.sorted(map, with_owner) {
                let n = table.get(key)?.map_or(0, |v| v.value());
                table.insert(key, n + add)?;
            }
        }
        for (table, map) in [
            (&mut self.flow_all, &deltas.all_by_day),
            (&mut self.flow_all_bucket, &deltas.all_by_bucket),
        ] {
            if map.is_empty() {
                continue;
            }
            let table = table.write()?;
            for (key, add) in deltas.sorted(map, without_owner) {
                let n = table.get(key)?.map_or(0, |v| v.value());
                table.insert(key, n + add)?;
            }
        }
        if !deltas.open_counts.is_empty() {
            let table = self.open_counts.write()?;
            for (key, delta) in deltas.sorted(&deltas.open_counts, stage_owner) {
                let n = table.get(key)?.map_or(0, |v| v.value()) as i64 + delta;
                if n <= 0 {
                    table.remove(key)?;
                } else {
                    table.insert(key, n as u64)?;
                }
            }
        }
        if !deltas.stays.is_empty() {
            let table = self.stay_days.write()?;
            for (key, ms) in deltas.sorted(&deltas.stays, stage_day) {
                rewrite(table, &key, |blob| {
                    stay_days::add_stays(blob, ms);
                    true
                })?;
            }
        }
        if !deltas.stays_by_owner.is_empty() {
            let table = self.stay_days_by_owner.write()?;
            for (key, ms) in deltas.sorted(&deltas.stays_by_owner, stage_owner_day) {
                rewrite(table, &key, |blob| {
                    stay_days::add_stays(blob, ms);
                    true
                })?;
            }
        }
        if !deltas.open.is_empty() {
            let table = self.open_days.write()?;
            for (key, changes) in deltas.sorted(&deltas.open, stage_day) {
                let changes = netted(changes);
                rewrite(table, &key, |blob| change_open(blob, &changes))?;
            }
        }
        if !deltas.open_by_owner.is_empty() {
            let table = self.open_days_by_owner.write()?;
            for (key, changes) in deltas.sorted(&deltas.open_by_owner, stage_owner_day) {
                let changes = netted(changes);
                rewrite(table, &key, |blob| change_open(blob, &changes))?;
            }
        }
        Ok(())
    }

    /// Memory everything gathered since the last flush takes, bytes
    /// (roughly: the maps' entries at 48 bytes, the listed values at 16).
    pub fn gathered_bytes(&self) -> usize {
        let d = &self.deltas;
        let entries = d.by_day.len()
            + d.by_bucket.len()
            + d.all_by_day.len()
            + d.all_by_bucket.len()
            + d.open_counts.len()
            + d.stays.len()
            + d.stays_by_owner.len()
            + d.open.len()
            + d.open_by_owner.len();
        self.rows_bytes() + entries * 48 + d.listed * 16
    }

    /// Memory the time-keyed rows gathered since the last flush take, bytes.
    pub fn rows_bytes(&self) -> usize {
        let d = &self.deltas;
        d.stay_rows.len() * std::mem::size_of::<StayRow<u32>>()
            + d.entry_rows.len() * std::mem::size_of::<(u32, i64, u64)>()
            + d.outcome_rows.len() * std::mem::size_of::<OutcomeRow<u32>>()
    }

    /// Writes only the time-keyed rows gathered since the last flush
    /// (stays, entries, outcomes), keeping the counters and day summaries
    /// gathered: a replay writes those once, at its end. The rows grow
    /// with every move, so they are written as they come; the counters
    /// and summaries are what the finished tables would hold anyway (one
    /// figure per key, one length per stay), and every write of a day
    /// summary copies the whole of it, so writing them every few batches
    /// copied each busy day's summary once per flush: quadratic in the
    /// history (at 1M prospects, ~40 MiB of summaries rewritten ~60 times).
    pub fn flush_rows(&mut self) -> Result<(), StoreError> {
        let d = &mut self.deltas;
        let (mut stays, mut entries, mut outcomes) = (
            std::mem::take(&mut d.stay_rows),
            std::mem::take(&mut d.entry_rows),
            std::mem::take(&mut d.outcome_rows),
        );
        // Sorted in place by the names' ranks, which order the rows as
        // redb orders the named keys (no named copy of millions of rows).
        let rank = d.ranks();
        stays.sort_unstable_by_key(|&((s, at, id), _)| (rank[s as usize], at, id));
        entries.sort_unstable_by_key(|&(s, at, p)| (rank[s as usize], at, p));
        outcomes.sort_unstable_by_key(|&(key, _)| key);
        let names = &self.deltas.names;
        if !stays.is_empty() {
            let table = self.stays.write()?;
            for row in stays {
                let (key, value) = stay_row(names, row);
                table.insert(key, value)?;
            }
        }
        if !entries.is_empty() {
            let table = self.entries.write()?;
            for row in entries {
                table.insert(entry_row(names, row), ())?;
            }
        }
        if !outcomes.is_empty() {
            let table = self.outcomes.write()?;
            for row in outcomes {
                let (key, value) = outcome_row(names, row);
                table.insert(key, value)?;
            }
        }
        Ok(())
    }

    fn bump(&mut self, stage: &str, at: Millis, owner: &str, kind: u8) {
        let d = day(at);
        let b = d >> BUCKET_SHIFT;
        let deltas = &mut self.deltas;
        let (s, o) = (deltas.number(stage), deltas.number(owner));
        *deltas.by_day.entry((s, d, o, kind)).or_default() += 1;
        *deltas.by_bucket.entry((s, b, o, kind)).or_default() += 1;
        // Reassignments cancel out across owners: the all-owner tables skip them.
        if kind != REASSIGNED_IN && kind != REASSIGNED_OUT {
            *deltas.all_by_day.entry((s, d, kind)).or_default() += 1;
            *deltas.all_by_bucket.entry((s, b, kind)).or_default() += 1;
        }
    }

    /// Adds a completed stay in `stage`, ended by `exit`: its row, and its
    /// exit day's summaries.
    fn add_stay(&mut self, stage: &str, exit: &Transition, owner: &str, ms: i64) {
        let d = day(exit.at);
        let deltas = &mut self.deltas;
        let (s, o) = (deltas.number(stage), deltas.number(owner));
        deltas
            .stay_rows
            .push(((s, exit.at.0, exit.id), (ms, exit_code(exit.kind), o)));
        deltas.stays.entry((s, d)).or_default().push(ms);
        deltas.stays_by_owner.entry((s, o, d)).or_default().push(ms);
        deltas.listed += 2;
    }

    /// Adds an open stay (`add`) or takes it out, in its entry day's
    /// summaries.
    fn open_stay(&mut self, (stage, owner, entered): (&str, &str, Millis), add: bool) {
        let d = day(entered);
        let deltas = &mut self.deltas;
        let (s, o) = (deltas.number(stage), deltas.number(owner));
        let n = if add { 1 } else { -1 };
        deltas.open.entry((s, d)).or_default().push((entered, n));
        deltas.listed += 2;
        deltas
            .open_by_owner
            .entry((s, o, d))
            .or_default()
            .push((entered, n));
    }

    fn add_open(&mut self, stage: &str, owner: &str, delta: i64) {
        let deltas = &mut self.deltas;
        let (s, o) = (deltas.number(stage), deltas.number(owner));
        *deltas.open_counts.entry((s, o)).or_default() += delta;
    }

    /// Records a prospect's change: `moves` in order, from `old` (none for a
    /// new prospect) to `new`; `changed_at` dates an owner change.
    pub fn record(
        &mut self,
        old: Option<&Prospect>,
        new: &Prospect,
        moves: &[Transition],
        changed_at: Millis,
    ) -> Result<(), StoreError> {
        let owner = owner_of(new);
        // An owner change while open moves the prospect between owners' counts.
        if let Some(o) = old
            && o.status == Status::Open
            && owner_of(o) != owner
        {
            // Not before the prospect entered the stage: a backdated change
            // cannot predate the stay it changes.
            let when = new
                .owner_since
                .unwrap_or(changed_at)
                .max(o.stage_entered_at);
            self.bump(&o.stage, when, owner_of(o), REASSIGNED_OUT);
            self.bump(&o.stage, when, owner, REASSIGNED_IN);
        }
        let mut entered_at = old.map(|o| o.stage_entered_at);
        for m in moves {
            if let Some(from) = &m.from {
                self.bump(from, m.at, owner, exit_code(m.kind));
                let stay = entered_at.map_or(0, |e| (m.at.0 - e.0).max(0));
                self.add_stay(from, m, owner, stay);
            }
            match m.kind {
                TransitionKind::Won | TransitionKind::Lost => {
                    let cycle = (m.at.0 - new.created_at.0).max(0);
                    let o = self.deltas.number(owner);
                    self.deltas.outcome_rows.push((
                        (m.at.0, m.prospect),
                        (m.kind == TransitionKind::Won, cycle, o),
                    ));
                }
                _ => {
                    self.bump(&m.to, m.at, owner, ENTERED);
                    let s = self.deltas.number(&m.to);
                    self.deltas.entry_rows.push((s, m.at.0, m.prospect));
                }
            }
            entered_at = Some(m.at);
        }
        // The open stay, where it changed: out of its old place, into the new.
        let was = old
            .filter(|o| o.status == Status::Open)
            .map(|o| (o.stage.as_str(), owner_of(o), o.stage_entered_at));
        let is = (new.status == Status::Open).then_some((
            new.stage.as_str(),
            owner,
            new.stage_entered_at,
        ));
        if was != is {
            if let Some(w) = was {
                self.open_stay(w, false);
            }
            if let Some(i) = is {
                self.open_stay(i, true);
            }
        }
        let unchanged = old.is_some_and(|o| {
            o.status == new.status && o.stage == new.stage && owner_of(o) == owner
        });
        if unchanged {
            return Ok(()); // the common case: an activity that moved nothing
        }
        if let Some(o) = old.filter(|o| o.status == Status::Open) {
            self.add_open(&o.stage, owner_of(o), -1);
        }
        if new.status == Status::Open {
            self.add_open(&new.stage, owner, 1);
        }
        Ok(())
    }

    /// Remembers that stage `old` is now called `new`.
    pub fn alias(&mut self, old: &str, new: &str) -> Result<(), StoreError> {
        self.aliases.write()?.insert(old, new)?;
        Ok(())
    }
}
