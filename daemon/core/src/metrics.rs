//! Measuring the process, exactly and fast.
//!
//! Written in the same transaction as every transition:
//! - per-stage counters of entries and exits by kind, per day and per 32-day
//!   bucket, with and without the owner, so flow for a period costs
//!   O(days + buckets), not O(prospects);
//! - open prospects per (stage, owner), so the count at any instant is the
//!   current count minus what happened since;
//! - completed stays by stage and exit time (time in stage);
//! - entries by stage and time (cohorts for "reached" conversion);
//! - outcomes by close time (win rate, cycle length);
//! - stage aliases left by renames, so a renamed stage is the same stage.
//!
//! Definitions (DESIGN.md §7), for stage S and period [t0, t1):
//! start = prospects in S at t0; entered = transitions into S with
//! t0 ≤ at < t1; exited = transitions out of S in the period, by kind;
//! end = prospects in S at t1; always end = start + entered − exited.
//! Periods are whole UTC days: `from` and `to` are rounded down to midnight.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redb::{ReadTransaction, ReadableTable};

use crate::process::Process;
use crate::store::{ProspectFilter, Snapshot, StoreError, stay_days};
use stagecoach_types::api::results::{
    Conversion, Direct, DirectRow, LostReason, Outcomes, OwnerRow, Owners, PipelineRow, Reached,
    ReachedRow, RemovedStage, StageLabel, TrendMonth, TrendStage, Trends,
};
use stagecoach_types::model::{Millis, Status, Transition, TransitionKind};

use crate::store::counters::*;

/// Query filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this rep's prospects.
    pub owner: Option<String>,
}

pub use stagecoach_types::api::results::Conversion as ConversionAnswer;
pub use stagecoach_types::api::results::FlowRow;

/// Every id that means `stage`: itself and the ids it was renamed from.
pub fn stage_ids(txn: &ReadTransaction, stage: &str) -> Result<Vec<String>, StoreError> {
    let aliases = txn.open_table(ALIASES)?;
    let mut map: HashMap<String, String> = HashMap::new();
    for entry in aliases.iter()? {
        let (k, v) = entry?;
        map.insert(k.value().to_string(), v.value().to_string());
    }
    let mut ids: BTreeSet<String> = BTreeSet::from([stage.to_string()]);
    loop {
        let before = ids.len();
        for (old, new) in &map {
            if ids.contains(new) {
                ids.insert(old.clone());
            }
        }
        if ids.len() == before {
            return Ok(ids.into_iter().collect());
        }
    }
}

/// Every stage id the counters know: each one a transition ever entered or
/// left. One seek per stage.
fn counted_stage_ids(txn: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    let table = txn.open_table(FLOW_ALL_BUCKET)?;
    let mut out: Vec<String> = Vec::new();
    loop {
        let next = match out.last() {
            None => table.iter()?.next(),
            Some(after) => table.range((after.as_str(), i64::MAX, u8::MAX)..)?.next(),
        };
        match next {
            None => return Ok(out),
            Some(entry) => {
                let id = entry?.0.value().0.to_string();
                if out.last() == Some(&id) {
                    // Only at (id, i64::MAX, 255) itself, which no day reaches.
                    return Ok(out);
                }
                out.push(id);
            }
        }
    }
}

/// A stage as a period's figures list it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStage {
    /// Its id (for a renamed stage, the id in force).
    pub id: String,
    /// Its name, former ids, and whether it was removed.
    pub label: StageLabel,
    /// The stage after it in the list, or `won`.
    pub next: String,
}

/// A stored version's stages, read leniently: an old file need not pass
/// today's validation to tell what its stages were called.
#[derive(serde::Deserialize)]
struct LenientFile {
    #[serde(default)]
    stages: Vec<LenientStage>,
    #[serde(default)]
    migrate: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct LenientStage {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// What history knows of a stage the process no longer has: its name,
/// the stage before and after it, and where it went.
struct PastStage {
    name: String,
    after: Option<String>,
    next: Option<String>,
    removed: RemovedStage,
}

/// What history knows of each of `ids`, reading and parsing the stored
/// versions once.
fn past_stages(
    txn: &ReadTransaction,
    ids: &[String],
) -> Result<HashMap<String, PastStage>, StoreError> {
    let mut found: HashMap<String, PastStage> = HashMap::new();
    if ids.is_empty() {
        return Ok(found);
    }
    for v in &crate::store::versions_in(txn)? {
        let Ok(file) = toml::from_str::<LenientFile>(&v.text) else {
            continue;
        };
        for id in ids {
            match file.stages.iter().position(|s| s.id == *id) {
                Some(i) => {
                    let s = &file.stages[i];
                    found.insert(
                        id.clone(),
                        PastStage {
                            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                            after: i.checked_sub(1).map(|j| file.stages[j].id.clone()),
                            next: file.stages.get(i + 1).map(|n| n.id.clone()),
                            removed: RemovedStage {
                                in_version: v.number + 1,
                                moved_to: None,
                            },
                        },
                    );
                }
                None => {
                    if let Some(f) = found.get_mut(id)
                        && f.removed.in_version == v.number
                    {
                        f.removed.moved_to = file.migrate.get(id).cloned();
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The name of a stage id: the process's own, the stage it was renamed to,
/// or, for a removed stage, its name in the last version that had it.
pub fn stage_name(
    txn: &ReadTransaction,
    process: &Process,
    id: &str,
) -> Result<Option<String>, StoreError> {
    if let Some(s) = process.stage(id) {
        return Ok(Some(s.name.clone()));
    }
    for s in &process.stages {
        if stage_ids(txn, &s.id)?.iter().any(|x| x == id) {
            return Ok(Some(s.name.clone()));
        }
    }
    Ok(past_stages(txn, &[id.to_string()])?
        .remove(id)
        .map(|p| p.name))
}

/// The stages a period's figures list, in order: the process's own (each
/// with the ids it was renamed from), and every stage a later version
/// removed that held prospects during [from, to), after the stage that
/// preceded it, marked as removed. The next stage of each is the one after
/// it in the list (a removed stage: its next when it existed), `won` after
/// the last.
pub fn period_stages(
    txn: &ReadTransaction,
    process: &Process,
    from: Millis,
    to: Millis,
    now: Millis,
    filter: &Filter,
) -> Result<Vec<PeriodStage>, StoreError> {
    let mut list: Vec<PeriodStage> = Vec::with_capacity(process.stages.len());
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for s in &process.stages {
        let ids = stage_ids(txn, &s.id)?;
        let formerly = ids.iter().filter(|x| **x != s.id).cloned().collect();
        covered.extend(ids);
        list.push(PeriodStage {
            id: s.id.clone(),
            label: StageLabel {
                name: s.name.clone(),
                formerly,
                removed: None,
            },
            next: String::new(),
        });
    }
    let mut removed_next: BTreeMap<String, String> = BTreeMap::new();
    // A stage renamed and later removed is one stage under its last id:
    // follow every counted id to the id it was last renamed to.
    let renamed = Renames::read(txn)?;
    let mut roots: Vec<String> = Vec::new();
    for id in counted_stage_ids(txn)? {
        let root = renamed.last_id(&id);
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    // The removed stages that held prospects in the period, then what the
    // stored versions say of them, read once.
    let mut kept: Vec<(String, Vec<String>)> = Vec::new();
    for id in roots {
        if covered.contains(&id) {
            continue;
        }
        let ids = stage_ids(txn, &id)?;
        covered.extend(ids.iter().cloned());
        let row = &flow(txn, std::slice::from_ref(&id), from, to, now, filter)?[0];
        if row.start == 0 && row.entered == 0 && row.exited == 0 && row.end == 0 {
            continue;
        }
        kept.push((id, ids));
    }
    let mut past = past_stages(
        txn,
        &kept.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
    )?;
    for (id, ids) in kept {
        let (name, after, removed) = match past.remove(&id) {
            Some(p) => {
                if let Some(n) = p.next {
                    removed_next.insert(id.clone(), n);
                }
                (p.name, p.after, Some(p.removed))
            }
            None => (id.clone(), None, None),
        };
        let at = after
            .and_then(|a| {
                list.iter()
                    .position(|x| x.id == a || x.label.formerly.contains(&a))
            })
            .map_or(0, |i| i + 1);
        list.insert(
            at,
            PeriodStage {
                id: id.clone(),
                label: StageLabel {
                    name,
                    formerly: ids.into_iter().filter(|x| *x != id).collect(),
                    removed,
                },
                next: String::new(),
            },
        );
    }
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let last = process.stages.last().map(|s| s.id.clone());
    for (i, s) in list.iter_mut().enumerate() {
        s.next = match (&s.label.removed, removed_next.get(&s.id)) {
            (Some(_), Some(n)) => n.clone(),
            (Some(_), None) => "won".into(),
            // The process's last stage converts to won, whatever history
            // placed after it.
            _ if last.as_ref() == Some(&s.id) => "won".into(),
            _ => ids.get(i + 1).cloned().unwrap_or_else(|| "won".into()),
        };
    }
    Ok(list)
}

/// Direct conversion from one stage's exits by kind: (moved on, exits,
/// forced, rate). Moving on is advancing, or winning when the next is
/// `won`. The one definition `metrics.conversion`, `metrics.compare` and
/// the report use.
pub fn direct_conversion(
    exited_by_kind: &BTreeMap<String, i64>,
    next: &str,
) -> (u64, u64, u64, Option<f64>) {
    let get = |k: &str| exited_by_kind.get(k).copied().unwrap_or(0).max(0) as u64;
    let exits: u64 = exited_by_kind.values().map(|v| (*v).max(0) as u64).sum();
    let moved_on = if next == "won" {
        get("won")
    } else {
        get("advanced")
    };
    let rate = (exits > 0).then(|| moved_on as f64 / exits as f64);
    (moved_on, exits, get("forced"), rate)
}

/// The renames the store remembers: old id → new id.
pub(crate) struct Renames(HashMap<String, String>);

impl Renames {
    pub(crate) fn read(txn: &ReadTransaction) -> Result<Renames, StoreError> {
        let table = txn.open_table(ALIASES)?;
        let mut map = HashMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            map.insert(k.value().to_string(), v.value().to_string());
        }
        Ok(Renames(map))
    }

    /// The id a stage id was last renamed to (itself if never).
    pub(crate) fn last_id(&self, id: &str) -> String {
        let mut id = id.to_string();
        for _ in 0..=self.0.len() {
            match self.0.get(&id) {
                Some(next) if *next != id => id = next.clone(),
                _ => break,
            }
        }
        id
    }
}

/// The counter tables, open for reading.
struct Counters {
    day: redb::ReadOnlyTable<(&'static str, i64, &'static str, u8), u64>,
    bucket: redb::ReadOnlyTable<(&'static str, i64, &'static str, u8), u64>,
    all_day: redb::ReadOnlyTable<(&'static str, i64, u8), u64>,
    all_bucket: redb::ReadOnlyTable<(&'static str, i64, u8), u64>,
}

impl Counters {
    fn open(txn: &ReadTransaction) -> Result<Counters, StoreError> {
        Ok(Counters {
            day: txn.open_table(FLOW)?,
            bucket: txn.open_table(FLOW_BUCKET)?,
            all_day: txn.open_table(FLOW_ALL)?,
            all_bucket: txn.open_table(FLOW_ALL_BUCKET)?,
        })
    }

    /// Calls `f(owner, kind, count)` for every counter of `id` in units
    /// [u0, u1) of one table (days or buckets): the per-owner tables when
    /// `owners`, else the totals (owner `""`).
    fn scan(
        &self,
        buckets: bool,
        id: &str,
        u0: i64,
        u1: i64,
        owners: bool,
        f: &mut dyn FnMut(&str, u8, i64),
    ) -> Result<(), StoreError> {
        if u0 >= u1 {
            return Ok(());
        }
        if owners {
            let table = if buckets { &self.bucket } else { &self.day };
            for entry in table.range((id, u0, "", 0u8)..(id, u1, "", 0u8))? {
                let (k, v) = entry?;
                let (_, _, o, kind) = k.value();
                f(o, kind, v.value() as i64);
            }
        } else {
            let table = if buckets {
                &self.all_bucket
            } else {
                &self.all_day
            };
            for entry in table.range((id, u0, 0u8)..(id, u1, 0u8))? {
                let (k, v) = entry?;
                f("", k.value().2, v.value() as i64);
            }
        }
        Ok(())
    }

    /// [`Counters::scan`] for `ids` over days [d0, d1): whole 32-day
    /// buckets from the bucket table, the ragged ends from the day table.
    fn scan_days(
        &self,
        ids: &[String],
        d0: i64,
        d1: i64,
        owners: bool,
        f: &mut dyn FnMut(&str, u8, i64),
    ) -> Result<(), StoreError> {
        if d0 >= d1 {
            return Ok(());
        }
        let first_full = (d0 + (1 << BUCKET_SHIFT) - 1) >> BUCKET_SHIFT;
        let last_full = d1 >> BUCKET_SHIFT;
        for id in ids {
            if first_full < last_full {
                self.scan(false, id, d0, first_full << BUCKET_SHIFT, owners, f)?;
                self.scan(true, id, first_full, last_full, owners, f)?;
                self.scan(false, id, last_full << BUCKET_SHIFT, d1, owners, f)?;
            } else {
                self.scan(false, id, d0, d1, owners, f)?;
            }
        }
        Ok(())
    }

    /// Sums by kind for `ids` over days [d0, d1), of one owner's prospects
    /// or of all.
    fn sums(
        &self,
        ids: &[String],
        d0: i64,
        d1: i64,
        owner: Option<&str>,
    ) -> Result<HashMap<u8, i64>, StoreError> {
        let mut out: HashMap<u8, i64> = HashMap::new();
        self.scan_days(ids, d0, d1, owner.is_some(), &mut |o, kind, n| {
            if owner.is_none_or(|want| want == o) {
                *out.entry(kind).or_default() += n;
            }
        })?;
        Ok(out)
    }

    /// Exits by kind for `ids` over days [d0, d1), per owner.
    fn exits_per_owner(
        &self,
        ids: &[String],
        d0: i64,
        d1: i64,
    ) -> Result<HashMap<String, BTreeMap<String, i64>>, StoreError> {
        let mut out: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
        self.scan_days(ids, d0, d1, true, &mut |o, kind, n| {
            if let Some(k) = EXIT_KINDS.iter().find(|k| exit_code(**k) == kind) {
                *out.entry(o.to_string())
                    .or_default()
                    .entry(k.as_str().to_string())
                    .or_default() += n;
            }
        })?;
        Ok(out)
    }
}

fn entered_exited(s: &HashMap<u8, i64>, owner_filtered: bool) -> (i64, i64) {
    let mut entered = s.get(&ENTERED).copied().unwrap_or(0);
    let mut exited: i64 = EXIT_KINDS
        .iter()
        .map(|k| s.get(&exit_code(*k)).copied().unwrap_or(0))
        .sum();
    if owner_filtered {
        entered += s.get(&REASSIGNED_IN).copied().unwrap_or(0);
        exited += s.get(&REASSIGNED_OUT).copied().unwrap_or(0);
    }
    (entered, exited)
}

/// Flow for each of `stages` over [from, to), rounded to whole UTC days.
pub fn flow(
    txn: &ReadTransaction,
    stages: &[String],
    from: Millis,
    to: Millis,
    now: Millis,
    filter: &Filter,
) -> Result<Vec<FlowRow>, StoreError> {
    let counters = Counters::open(txn)?;
    let open = txn.open_table(OPEN_COUNTS)?;
    let owner = filter.owner.as_deref();
    let (d0, d1) = (day(from), day(to));
    // Counters cover every accepted time: nothing dated later is stored.
    let horizon = day(now).max(d1).max(day(Millis::END)) + 1;
    let mut rows = Vec::new();
    for stage in stages {
        let ids = stage_ids(txn, stage)?;
        let mut current: i64 = 0;
        for id in &ids {
            for entry in open.range((id.as_str(), "")..=(id.as_str(), "\u{10ffff}"))? {
                let (k, v) = entry?;
                if owner.is_none_or(|want| want == k.value().1) {
                    current += v.value() as i64;
                }
            }
        }
        let since_end = counters.sums(&ids, d1, horizon, owner)?;
        let within = counters.sums(&ids, d0, d1, owner)?;
        let (in_after, out_after) = entered_exited(&since_end, owner.is_some());
        let (entered, exited) = entered_exited(&within, owner.is_some());
        let end = current - in_after + out_after;
        let start = end - entered + exited;
        let exited_by_kind = EXIT_KINDS
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    within.get(&exit_code(*k)).copied().unwrap_or(0),
                )
            })
            .collect();
        let reassigned = owner.map(|_| {
            (
                within.get(&REASSIGNED_IN).copied().unwrap_or(0),
                within.get(&REASSIGNED_OUT).copied().unwrap_or(0),
            )
        });
        rows.push(FlowRow {
            stage: stage.clone(),
            label: StageLabel::default(),
            start,
            entered,
            exited,
            exited_by_kind,
            reassigned,
            end,
        });
    }
    Ok(rows)
}

pub use stagecoach_types::api::results::Durations;

/// Summarises durations in milliseconds, from the durations themselves.
pub fn durations(mut ms: Vec<i64>) -> Durations {
    ms.sort_unstable();
    let pct = |p: f64| -> Option<f64> {
        if ms.is_empty() {
            return None;
        }
        let rank = (p * ms.len() as f64).ceil() as usize;
        Some(stay_days::days(ms[rank.clamp(1, ms.len()) - 1]))
    };
    let mut histogram: Vec<(String, usize)> = stay_days::bin_labels().map(|l| (l, 0)).collect();
    for m in &ms {
        histogram[stay_days::bin(*m)].1 += 1;
    }
    Durations {
        count: ms.len(),
        mean_days: (!ms.is_empty())
            .then(|| stay_days::days(ms.iter().sum::<i64>() / ms.len() as i64)),
        median_days: pct(0.5),
        p25_days: pct(0.25),
        p75_days: pct(0.75),
        p90_days: pct(0.9),
        histogram,
    }
}

/// Time in `stage` over the stays that ended in [from, to): what
/// [`durations`] of [`completed_stays`] answers, read from the per-day
/// summaries (O(days), not O(stays)). Only the parts of a day the period
/// cuts are read stay by stay.
pub fn time_in_stage(
    txn: &ReadTransaction,
    stage: &str,
    from: Millis,
    to: Millis,
    filter: &Filter,
) -> Result<Durations, StoreError> {
    // Whole days: [d0, d1).
    let d0 = day(from) + i64::from(from.0.rem_euclid(Millis::DAY) != 0);
    let d1 = day(to);
    if d0 >= d1 {
        return Ok(durations(completed_stays(txn, stage, from, to, filter)?));
    }
    let mut edges: Vec<Vec<u8>> = Vec::new();
    for (a, b) in [
        (from, Millis(d0 * Millis::DAY)),
        (Millis(d1 * Millis::DAY), to),
    ] {
        if a < b {
            edges.push(stay_days::build(&completed_stays(
                txn, stage, a, b, filter,
            )?));
        }
    }
    let mut guards = Vec::new();
    let all = txn.open_table(stay_days::STAY_DAYS)?;
    let by_owner = txn.open_table(stay_days::STAY_DAYS_BY_OWNER)?;
    for id in stage_ids(txn, stage)? {
        let id = id.as_str();
        match filter.owner.as_deref() {
            None => {
                for entry in all.range((id, d0)..(id, d1))? {
                    guards.push(entry?.1);
                }
            }
            Some(owner) => {
                for entry in by_owner.range((id, owner, d0)..(id, owner, d1))? {
                    guards.push(entry?.1);
                }
            }
        }
    }
    let views: Vec<stay_days::View> = guards
        .iter()
        .map(|g| stay_days::View(g.value()))
        .chain(edges.iter().map(|e| stay_days::View(e)))
        .collect();
    Ok(stay_days::summarize(&views))
}

/// The ages at `now` of the stays open in `stage` (exactly `stage`, not
/// the ids it was renamed from: open prospects carry its current id):
/// what [`durations`] of `max(0, now − entered)` over its open prospects
/// answers, from the per-entry-day summaries.
pub fn open_ages(
    txn: &ReadTransaction,
    stage: &str,
    now: Millis,
    filter: &Filter,
) -> Result<Durations, StoreError> {
    let mut guards = Vec::new();
    match filter.owner.as_deref() {
        None => {
            let table = txn.open_table(stay_days::OPEN_DAYS)?;
            for entry in table.range((stage, i64::MIN)..=(stage, i64::MAX))? {
                let (k, v) = entry?;
                guards.push((k.value().1, v));
            }
        }
        Some(owner) => {
            let table = txn.open_table(stay_days::OPEN_DAYS_BY_OWNER)?;
            for entry in table.range((stage, owner, i64::MIN)..=(stage, owner, i64::MAX))? {
                let (k, v) = entry?;
                guards.push((k.value().2, v));
            }
        }
    }
    let views: Vec<(i64, stay_days::View)> = guards
        .iter()
        .map(|(d, g)| (*d, stay_days::View(g.value())))
        .collect();
    Ok(stay_days::summarize_open(&views, now))
}

/// Completed stays in `stage` that ended in [from, to).
pub fn completed_stays(
    txn: &ReadTransaction,
    stage: &str,
    from: Millis,
    to: Millis,
    filter: &Filter,
) -> Result<Vec<i64>, StoreError> {
    let stays = txn.open_table(STAYS)?;
    let mut out = Vec::new();
    for id in stage_ids(txn, stage)? {
        for entry in stays.range((id.as_str(), from.0, 0)..(id.as_str(), to.0, 0))? {
            let (_, v) = entry?;
            let (ms, _, owner) = v.value();
            if filter.owner.as_deref().is_none_or(|want| want == owner) {
                out.push(ms);
            }
        }
    }
    Ok(out)
}

/// Exits from `stage` in [from, to) by kind (for direct conversion).
pub fn exits_by_kind(
    txn: &ReadTransaction,
    stage: &str,
    from: Millis,
    to: Millis,
    filter: &Filter,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let counters = Counters::open(txn)?;
    let s = counters.sums(
        &stage_ids(txn, stage)?,
        day(from),
        day(to),
        filter.owner.as_deref(),
    )?;
    Ok(EXIT_KINDS
        .iter()
        .map(|k| {
            (
                k.as_str().to_string(),
                s.get(&exit_code(*k)).copied().unwrap_or(0),
            )
        })
        .collect())
}

/// Prospects that entered `stage` in [from, to) (a cohort).
pub fn cohort(
    txn: &ReadTransaction,
    stage: &str,
    from: Millis,
    to: Millis,
) -> Result<BTreeSet<u64>, StoreError> {
    let entries = txn.open_table(ENTRIES)?;
    let mut out = BTreeSet::new();
    for id in stage_ids(txn, stage)? {
        for entry in entries.range((id.as_str(), from.0, 0)..(id.as_str(), to.0, 0))? {
            out.insert(entry?.0.value().2);
        }
    }
    Ok(out)
}

/// A deal closed in a period.
#[derive(Debug, Clone)]
pub struct Closed {
    /// Won (else lost).
    pub won: bool,
    /// Close time − creation time, ms.
    pub cycle: i64,
    /// The prospect.
    pub id: u64,
    /// Its owner at the close (`""`: none).
    pub owner: String,
}

/// Deals closed in [from, to), by close time.
pub fn outcomes(
    txn: &ReadTransaction,
    from: Millis,
    to: Millis,
    filter: &Filter,
) -> Result<Vec<Closed>, StoreError> {
    let table = txn.open_table(OUTCOMES)?;
    let mut out = Vec::new();
    for entry in table.range((from.0, 0)..(to.0, 0))? {
        let (k, v) = entry?;
        let (won, cycle, owner) = v.value();
        if filter.owner.as_deref().is_none_or(|want| want == owner) {
            out.push(Closed {
                won,
                cycle,
                id: k.value().1,
                owner: owner.to_string(),
            });
        }
    }
    Ok(out)
}

/// Recomputes flow from the transition log alone: the test oracle, and the
/// definition made executable. O(transitions).
pub fn flow_brute_force(
    transitions: &[Transition],
    stage_ids: &[String],
    from: Millis,
    to: Millis,
) -> (i64, i64, i64, i64) {
    let (d0, d1) = (day(from), day(to));
    let is_s = |s: &str| stage_ids.iter().any(|x| x == s);
    let mut start = 0;
    let mut entered = 0;
    let mut exited = 0;
    let mut end = 0;
    for t in transitions {
        let d = day(t.at);
        let into = is_s(&t.to) && !matches!(t.kind, TransitionKind::Won | TransitionKind::Lost);
        let out = t.from.as_deref().is_some_and(is_s);
        let delta = i64::from(into) - i64::from(out);
        if d < d0 {
            start += delta;
        }
        if d < d1 {
            end += delta;
        }
        if (d0..d1).contains(&d) {
            entered += i64::from(into);
            exited += i64::from(out);
        }
    }
    (start, entered, exited, end)
}

/// How many prospects a summary reads at most (open pipeline, a stage's
/// open prospects).
pub const MAX_SCAN: usize = 1_000_000;

/// A prospect's amount, by the process's (or the request's) amount field.
fn amount(p: &stagecoach_types::model::Prospect, field: &str) -> Option<f64> {
    p.fields.get(field).and_then(|v| v.as_number())
}

/// `metrics.outcomes`: the deals closed in [from, to) and the open pipeline
/// now, from one snapshot. `amount_field` overrides the process's.
pub fn summarize_outcomes(
    snap: &Snapshot,
    process: &Process,
    from: Millis,
    to: Millis,
    owner: Option<String>,
    amount_field: Option<String>,
) -> Result<Outcomes, StoreError> {
    let txn = snap.txn();
    let amount_field = amount_field.unwrap_or_else(|| process.money.amount_field.clone());
    let filter = Filter {
        owner: owner.clone(),
    };
    let closed = outcomes(txn, from, to, &filter)?;
    let won: Vec<&Closed> = closed.iter().filter(|c| c.won).collect();
    let lost = closed.len() - won.len();
    let win_rate = (!closed.is_empty()).then(|| won.len() as f64 / closed.len() as f64);
    let cycle = durations(won.iter().map(|c| c.cycle).collect());
    let lost_cycle = durations(closed.iter().filter(|c| !c.won).map(|c| c.cycle).collect());
    // Outcomes an import recorded as the source had them, without this
    // process's criteria met. A closed prospect's last move is its close.
    let mut imported = [0u64; 2];
    let flags = snap.last_move_imported(closed.iter().map(|c| c.id))?;
    for (c, flag) in closed.iter().zip(flags) {
        if flag {
            imported[usize::from(c.won)] += 1;
        }
    }
    let mut won_amounts = Vec::new();
    let mut lost_amount = 0.0;
    let mut reasons: BTreeMap<Option<String>, (u64, f64)> = BTreeMap::new();
    let records = snap.records()?;
    for c in &closed {
        let Some(x) = records.head(c.id, Some(&amount_field))? else {
            continue;
        };
        let a = x.number;
        if c.won {
            won_amounts.extend(a);
        } else {
            lost_amount += a.unwrap_or(0.0);
            let reason = records
                .transitions(c.id)?
                .into_iter()
                .rev()
                .find(|t| t.kind == TransitionKind::Lost)
                .and_then(|t| t.reason);
            let r = reasons.entry(reason).or_default();
            r.0 += 1;
            r.1 += a.unwrap_or(0.0);
        }
    }
    let mut lost_reasons: Vec<LostReason> = reasons
        .into_iter()
        .map(|(reason, (count, amount))| LostReason {
            reason,
            count,
            amount: amount + 0.0,
        })
        .collect();
    lost_reasons.sort_by(|a, b| b.count.cmp(&a.count).then(b.amount.total_cmp(&a.amount)));
    // `+ 0.0`: an empty sum is -0.0, which prints as such.
    let won_amount: f64 = won_amounts.iter().sum::<f64>() + 0.0;
    let open = snap.open_heads(owner.as_deref(), Some(&amount_field), MAX_SCAN)?;
    let mut pipeline: Vec<PipelineRow> = process
        .stages
        .iter()
        .map(|s| PipelineRow {
            stage: s.id.clone(),
            name: s.name.clone(),
            open: 0,
            amount: 0.0,
            probability: s.probability,
            weighted: 0.0,
        })
        .collect();
    for x in &open {
        let i = match pipeline.iter().position(|r| r.stage == x.stage) {
            Some(i) => i,
            None => {
                pipeline.push(PipelineRow {
                    stage: x.stage.clone(),
                    name: x.stage.clone(),
                    open: 0,
                    amount: 0.0,
                    probability: None,
                    weighted: 0.0,
                });
                pipeline.len() - 1
            }
        };
        let row = &mut pipeline[i];
        let a = x.number.unwrap_or(0.0);
        row.open += 1;
        row.amount += a;
        row.weighted += a * row.probability.unwrap_or(0.0);
    }
    let open_amount: f64 = pipeline.iter().map(|r| r.amount).sum::<f64>() + 0.0;
    let weighted: f64 = pipeline.iter().map(|r| r.weighted).sum::<f64>() + 0.0;
    let mean_won = (!won_amounts.is_empty())
        .then(|| won_amounts.iter().sum::<f64>() / won_amounts.len() as f64);
    let velocity = match (win_rate, mean_won, cycle.mean_days) {
        (Some(w), Some(a), Some(d)) if d > 0.0 => Some(open.len() as f64 * w * a / d),
        _ => None,
    };
    Ok(Outcomes {
        from,
        to,
        owner,
        amount_field,
        won: won.len() as u64,
        lost: lost as u64,
        win_rate,
        won_imported: imported[1],
        lost_imported: imported[0],
        cycle,
        lost_cycle,
        won_amount,
        open: open.len() as u64,
        mean_won_amount: mean_won,
        velocity_per_day: velocity,
        weighted_pipeline: weighted,
        currency: process.money.currency.clone(),
        lost_amount: lost_amount + 0.0,
        open_amount,
        pipeline,
        lost_reasons,
        note: "win rate = won ÷ (won + lost) closed in the period; cycle = won at − created at (lost_cycle: lost at − created at); won_imported / lost_imported = outcomes an import recorded as the source had them, not earned under the exit criteria; velocity = open × win rate × mean won amount ÷ mean cycle days (money per day); weighted pipeline = Σ amount × stage probability over open prospects now; lost reasons = the reason recorded with each loss in the period".into(),
    })
}

/// Whether an open prospect is stalled as of `now`: its last activity is
/// older than its stage's `stall_after_days`.
pub fn is_stalled(process: &Process, p: &stagecoach_types::model::Prospect, now: Millis) -> bool {
    process
        .stage(&p.stage)
        .and_then(|s| s.stall_after_days)
        .is_some_and(|days| p.last_activity_at.0 < now.0 - i64::from(days) * Millis::DAY)
}

/// `metrics.owners`: one scorecard row per rep for [from, to), with the
/// open pipeline and the stalled prospects as of now.
pub fn owners(
    snap: &Snapshot,
    process: &Process,
    from: Millis,
    to: Millis,
    now: Millis,
) -> Result<Owners, StoreError> {
    let txn = snap.txn();
    let field = &process.money.amount_field;
    let mut rows: BTreeMap<String, OwnerRow> = BTreeMap::new();
    let blank = |owner: &str| OwnerRow {
        owner: owner.to_string(),
        open: 0,
        open_amount: 0.0,
        weighted: 0.0,
        moved_on: 0,
        forced: 0,
        won: 0,
        lost: 0,
        win_rate: None,
        cycle_median_days: None,
        won_amount: 0.0,
        stalled: 0,
    };
    for x in snap.prospects(&ProspectFilter {
        status: Some(Status::Open),
        limit: MAX_SCAN,
        ..Default::default()
    })? {
        let owner = x.owner.clone().unwrap_or_default();
        let row = rows.entry(owner.clone()).or_insert_with(|| blank(&owner));
        let a = amount(&x, field).unwrap_or(0.0);
        row.open += 1;
        row.open_amount += a;
        row.weighted += a * process
            .stage(&x.stage)
            .and_then(|s| s.probability)
            .unwrap_or(0.0);
        if is_stalled(process, &x, now) {
            row.stalled += 1;
        }
    }
    let counters = Counters::open(txn)?;
    let filter = Filter::default();
    for stage in period_stages(txn, process, from, to, now, &filter)? {
        let ids = stage_ids(txn, &stage.id)?;
        for (owner, exits) in counters.exits_per_owner(&ids, day(from), day(to))? {
            let (moved_on, _, forced, _) = direct_conversion(&exits, &stage.next);
            let row = rows.entry(owner.clone()).or_insert_with(|| blank(&owner));
            row.moved_on += moved_on;
            row.forced += forced;
        }
    }
    let mut cycles: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for c in outcomes(txn, from, to, &filter)? {
        let row = rows
            .entry(c.owner.clone())
            .or_insert_with(|| blank(&c.owner));
        if c.won {
            row.won += 1;
            cycles.entry(c.owner.clone()).or_default().push(c.cycle);
            if let Some(p) = snap.prospect(c.id)? {
                row.won_amount += amount(&p, field).unwrap_or(0.0);
            }
        } else {
            row.lost += 1;
        }
    }
    let mut rows: Vec<OwnerRow> = rows
        .into_values()
        .map(|mut r| {
            let closed = r.won + r.lost;
            r.win_rate = (closed > 0).then(|| r.won as f64 / closed as f64);
            r.cycle_median_days = cycles
                .remove(&r.owner)
                .and_then(|c| durations(c).median_days);
            r.open_amount += 0.0;
            r.weighted += 0.0;
            r.won_amount += 0.0;
            r
        })
        .collect();
    rows.sort_by(|a, b| {
        b.won_amount
            .total_cmp(&a.won_amount)
            .then(b.open_amount.total_cmp(&a.open_amount))
            .then(a.owner.cmp(&b.owner))
    });
    Ok(Owners {
        from,
        to,
        currency: process.money.currency.clone(),
        rows,
        note: "per rep: open, open_amount, weighted and stalled are as of now; moved_on (exits that advanced, or won from the last stage), forced, won, lost, win rate, cycle (median days, created → won) and won_amount are of the period; a prospect counts for its owner at the time".into(),
    })
}

/// `metrics.trends`: each month of `months` ((label, from, to), oldest
/// first): per stage entered, exited and direct conversion, and the
/// month's outcomes.
pub fn trends(
    snap: &Snapshot,
    process: &Process,
    months: &[(String, Millis, Millis)],
    now: Millis,
    owner: Option<String>,
) -> Result<Trends, StoreError> {
    let txn = snap.txn();
    let filter = Filter {
        owner: owner.clone(),
    };
    let mut out = Vec::with_capacity(months.len());
    for (label, from, to) in months {
        let stages = period_stages(txn, process, *from, *to, now, &filter)?;
        let ids: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
        let rows = flow(txn, &ids, *from, *to, now, &filter)?;
        let stages = stages
            .iter()
            .zip(rows)
            .map(|(s, r)| TrendStage {
                stage: s.id.clone(),
                entered: r.entered,
                exited: r.exited,
                rate: direct_conversion(&r.exited_by_kind, &s.next).3,
            })
            .collect();
        let closed = outcomes(txn, *from, *to, &filter)?;
        let won = closed.iter().filter(|c| c.won).count() as u64;
        let mut won_amount = 0.0;
        for c in closed.iter().filter(|c| c.won) {
            if let Some(p) = snap.prospect(c.id)? {
                won_amount += amount(&p, &process.money.amount_field).unwrap_or(0.0);
            }
        }
        out.push(TrendMonth {
            month: label.clone(),
            from: *from,
            to: *to,
            stages,
            won,
            lost: closed.len() as u64 - won,
            win_rate: (!closed.is_empty()).then(|| won as f64 / closed.len() as f64),
            won_amount: won_amount + 0.0,
        });
    }
    Ok(Trends {
        owner,
        currency: process.money.currency.clone(),
        months: out,
        note: "each calendar month (UTC): entered and exited as metrics.flow counts them, direct conversion as metrics.conversion defines it, outcomes as metrics.outcomes".into(),
    })
}

/// `metrics.conversion` over `stages` (from [`period_stages`]) for
/// [from, to), from one snapshot.
pub fn conversion(
    snap: &Snapshot,
    stages: &[PeriodStage],
    from: Millis,
    to: Millis,
    owner: Option<String>,
) -> Result<Conversion, StoreError> {
    let txn = snap.txn();
    let filter = Filter {
        owner: owner.clone(),
    };
    let mut direct = Vec::new();
    for stage in stages {
        let exits = exits_by_kind(txn, &stage.id, from, to, &filter)?;
        let (moved_on, all, forced, rate) = direct_conversion(&exits, &stage.next);
        direct.push(DirectRow {
            stage: stage.id.clone(),
            label: stage.label.clone(),
            next: stage.next.clone(),
            moved_on,
            exits: all,
            forced,
            rate,
        });
    }
    let first = stages
        .iter()
        .find(|s| s.label.removed.is_none())
        .unwrap_or(&stages[0])
        .id
        .clone();
    let first = &first;
    let stages: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
    let mut known: Vec<(String, Vec<String>)> = Vec::with_capacity(stages.len());
    for stage in &stages {
        known.push((stage.clone(), stage_ids(txn, stage)?));
    }
    // Reached: the cohort that entered the first stage in the period.
    let mut reached: BTreeMap<String, u64> = BTreeMap::new();
    let mut won = 0;
    let records = snap.records()?;
    for id in cohort(txn, first, from, to)? {
        let Some(prospect) = records.head(id, None)? else {
            continue;
        };
        if owner
            .as_ref()
            .is_some_and(|o| prospect.owner.as_ref() != Some(o))
        {
            continue;
        }
        let seen = records.targets(id)?;
        for (stage, ids) in &known {
            if ids.iter().any(|n| seen.contains(n)) {
                *reached.entry(stage.clone()).or_default() += 1;
            }
        }
        if prospect.status == Status::Won {
            won += 1;
        }
    }
    let base = reached.get(first).copied().unwrap_or(0);
    let share = |n: u64| (base > 0).then(|| n as f64 / base as f64);
    let rows = stages
        .iter()
        .map(|s| {
            let n = reached.get(s).copied().unwrap_or(0);
            ReachedRow {
                stage: s.clone(),
                reached: n,
                share: share(n),
            }
        })
        .chain(std::iter::once(ReachedRow {
            stage: "won".into(),
            reached: won,
            share: share(won),
        }))
        .collect();
    Ok(Conversion {
        from,
        to,
        owner,
        direct: Direct {
            label: "direct conversion: moved on to the next stage ÷ all exits from the stage, exits in the period".into(),
            rows: direct,
        },
        reached: Reached {
            label: format!("reached: of the {base} prospects that entered `{first}` in the period, how many ever reached each stage"),
            cohort: base,
            rows,
        },
    })
}

/// Most closed deals `metrics.criteria` re-evaluates (the latest closed).
pub const MAX_CRITERIA_DEALS: usize = 5_000;
/// Most prospects whose moves `metrics.criteria` reads for breaches.
pub const MAX_BREACH_SCAN: usize = 200_000;

/// Calls `f` for every move (creation aside) made in [from, to), reading at
/// most [`MAX_BREACH_SCAN`] prospects; true when there were more.
fn scan_moves(
    snap: &Snapshot,
    from: Millis,
    to: Millis,
    f: &mut dyn FnMut(&stagecoach_types::model::Prospect, &Transition),
) -> Result<bool, StoreError> {
    let mut after = None;
    let mut scanned = 0;
    while scanned < MAX_BREACH_SCAN {
        let page = snap.prospects(&ProspectFilter {
            after,
            limit: 2_000,
            ..Default::default()
        })?;
        let Some(last) = page.last() else {
            return Ok(false);
        };
        after = Some(last.id);
        scanned += page.len();
        for p in &page {
            for t in snap.transitions(p.id)? {
                if t.at >= from && t.at < to && t.kind != TransitionKind::Created {
                    f(p, &t);
                }
            }
        }
    }
    Ok(!snap
        .prospects(&ProspectFilter {
            after,
            limit: 1,
            ..Default::default()
        })?
        .is_empty())
}

/// `metrics.conformance` for [from, to): are we following our own process?
/// Per stage and per owner, the moves the criteria made, the forced,
/// skipped and regressed ones, losses, and warn-mode breaches; why moves
/// were forced; and the outcomes an import recorded without the criteria.
pub fn conformance(
    snap: &Snapshot,
    process: &Process,
    from: Millis,
    to: Millis,
) -> Result<stagecoach_types::api::results::Conformance, StoreError> {
    use stagecoach_types::api::results::{Conformance, ConformanceRow, ForcedReason};
    let blank = |key: &str, name: &str| ConformanceRow {
        key: key.to_string(),
        name: name.to_string(),
        by_criteria: 0,
        forced: 0,
        skipped: 0,
        regressed: 0,
        lost: 0,
        imported: 0,
        breaches: 0,
    };
    let mut stages: Vec<ConformanceRow> = process
        .stages
        .iter()
        .map(|s| blank(&s.id, &s.name))
        .collect();
    let mut owners: BTreeMap<String, ConformanceRow> = BTreeMap::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let renamed = Renames::read(snap.txn())?;
    let capped = scan_moves(snap, from, to, &mut |p, t| {
        let Some(left) = t.from.as_deref() else {
            return;
        };
        // A move before a rename belongs to the stage under its id now.
        let left = renamed.last_id(left);
        let i = match stages.iter().position(|r| r.key == left) {
            Some(i) => i,
            None => {
                stages.push(blank(&left, &left));
                stages.len() - 1
            }
        };
        let owner = p.owner.clone().unwrap_or_default();
        let o = owners
            .entry(owner.clone())
            .or_insert_with(|| blank(&owner, &owner));
        for row in [&mut stages[i], o] {
            match t.kind {
                _ if t.imported => row.imported += 1,
                TransitionKind::Advanced | TransitionKind::Won => row.by_criteria += 1,
                TransitionKind::Forced => row.forced += 1,
                TransitionKind::Skipped => row.skipped += 1,
                TransitionKind::Regressed => row.regressed += 1,
                TransitionKind::Lost => row.lost += 1,
                TransitionKind::Created => {}
            }
            row.breaches += t.verdicts.iter().filter(|v| v.warn && !v.met).count() as u64;
        }
        if t.kind == TransitionKind::Forced && !t.imported {
            *reasons
                .entry(
                    t.reason
                        .clone()
                        .unwrap_or_else(|| "(no reason given)".into()),
                )
                .or_default() += 1;
        }
    })?;
    let mut forced_reasons: Vec<ForcedReason> = reasons
        .into_iter()
        .map(|(reason, count)| ForcedReason { reason, count })
        .collect();
    forced_reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    let closed = outcomes(snap.txn(), from, to, &Filter::default())?;
    let mut unearned = [0u64; 2];
    let flags = snap.last_move_imported(closed.iter().map(|c| c.id))?;
    for (c, flag) in closed.iter().zip(flags) {
        if flag {
            unearned[usize::from(c.won)] += 1;
        }
    }
    Ok(Conformance {
        from,
        to,
        stages,
        owners: owners.into_values().collect(),
        forced_reasons,
        imported_wins: unearned[1],
        imported_losses: unearned[0],
        capped,
        note: "moves out of each stage in the period, by who decided them: by_criteria (advanced, or won, with the exit criteria met), forced (a person overrode them), skipped and regressed (a source's dated history), lost, imported (moves an import recorded as the source had them); breaches: warn-mode criteria unmet on those moves; imported_wins / imported_losses: outcomes in the period an import recorded without the criteria".into(),
    })
}

/// `metrics.criteria` for deals closed in [from, to): each exit criterion
/// and checklist item of the process in force, evaluated as of the moment
/// each deal left its stage (with only what had happened by then), against
/// how the deal ended; and the breaches of warn-mode criteria recorded on
/// the period's moves.
pub fn criteria(
    snap: &Snapshot,
    active: &crate::engine::ActiveProcess,
    from: Millis,
    to: Millis,
) -> Result<stagecoach_types::api::results::Criteria, StoreError> {
    use stagecoach_types::api::results::{Checklist, CriterionRow};
    use stagecoach_types::model::ActivityFacts;
    let txn = snap.txn();
    let process = &active.process;
    let mut closed = outcomes(txn, from, to, &Filter::default())?;
    let capped = closed.len() > MAX_CRITERIA_DEALS;
    if capped {
        closed.drain(..closed.len() - MAX_CRITERIA_DEALS);
    }
    // (stage, kind, name) → [met won, met lost, unmet won, unmet lost]
    let mut tally: BTreeMap<(usize, u8, String), [u64; 4]> = BTreeMap::new();
    let mut modes: HashMap<(usize, String), &'static str> = HashMap::new();
    let mut names: Vec<(usize, u8, String)> = Vec::new();
    for (i, s) in process.stages.iter().enumerate() {
        for c in &s.exit {
            let key = (i, 0u8, c.question.clone());
            modes.insert(
                (i, c.question.clone()),
                if c.mode == crate::process::CriterionMode::Warn {
                    "warn"
                } else {
                    "enforce"
                },
            );
            names.push(key);
        }
    }
    let mut ids_of = Vec::with_capacity(process.stages.len());
    for stage in &process.stages {
        ids_of.push(stage_ids(txn, &stage.id)?);
    }
    for c in &closed {
        let Some(prospect) = snap.prospect(c.id)? else {
            continue;
        };
        let moves = snap.transitions(c.id)?;
        let all = snap.activities(c.id)?;
        for ((i, stage), ids) in process.stages.iter().enumerate().zip(&ids_of) {
            // The last stay in the stage: its entry and its exit.
            let Some(exit_at) = moves.iter().rposition(|t| {
                t.from
                    .as_deref()
                    .is_some_and(|f| ids.iter().any(|x| x == f))
            }) else {
                continue;
            };
            let exit = &moves[exit_at];
            let entered = moves[..exit_at]
                .iter()
                .rev()
                .find(|t| ids.contains(&t.to))
                .map_or(prospect.created_at, |t| t.at);
            let then: Vec<_> = all.iter().filter(|a| a.at <= exit.at).cloned().collect();
            let facts = ActivityFacts::from_activities(&then);
            let mut at_the_time = prospect.clone();
            at_the_time.fields = crate::simulate::fields_at(&prospect, &all, Some(exit.at)).0;
            at_the_time.stage = stage.id.clone();
            at_the_time.status = Status::Open;
            at_the_time.stage_entered_at = entered;
            at_the_time.closed_at = None;
            at_the_time.owner_since = None;
            let slot = |met: bool| usize::from(!met) * 2 + usize::from(!c.won);
            for v in crate::criteria::evaluate_stage(
                stage,
                &at_the_time,
                &facts,
                exit.at,
                active.plugin_context(),
            ) {
                tally.entry((i, 0, v.question.clone())).or_default()[slot(v.met)] += 1;
            }
            for list in crate::criteria::stage_checklists(
                stage,
                &at_the_time,
                &facts,
                exit.at,
                active.plugin_context(),
            ) {
                if let Checklist::Items { name, items, .. } = list {
                    for item in items {
                        let key = (i, 1u8, format!("{name}: {}", item.label));
                        if !names.contains(&key) {
                            names.push(key.clone());
                        }
                        tally.entry(key).or_default()[slot(item.done)] += 1;
                    }
                }
            }
        }
    }
    // Breaches of warn-mode criteria on the period's moves.
    let mut breaches: HashMap<(String, String), (u64, BTreeSet<u64>)> = HashMap::new();
    let renamed = Renames::read(txn)?;
    scan_moves(snap, from, to, &mut |p, t| {
        for v in t.verdicts.iter().filter(|v| v.warn && !v.met) {
            let from_stage = renamed.last_id(t.from.as_deref().unwrap_or_default());
            let e = breaches
                .entry((from_stage, v.question.clone()))
                .or_default();
            e.0 += 1;
            e.1.insert(p.id);
        }
    })?;
    let mut rows = Vec::new();
    names.sort_by_key(|a| (a.0, a.1));
    for (i, kind, name) in names {
        let stage = &process.stages[i];
        let t = tally
            .get(&(i, kind, name.clone()))
            .copied()
            .unwrap_or_default();
        let rate = |won: u64, lost: u64| (won + lost > 0).then(|| won as f64 / (won + lost) as f64);
        let significance = crate::stats::compare_rates(t[2], t[2] + t[3], t[0], t[0] + t[1]);
        let verdict = match significance.verdict.as_str() {
            "likely real" if significance.difference.is_some_and(|d| d > 0.0) => "predicts winning",
            "likely real" => "predicts losing",
            "could be noise" => "does not predict winning",
            _ => "too few to tell",
        };
        let (count, fate) = match breaches.get(&(stage.id.clone(), name.clone())) {
            Some((n, who)) => {
                let mut fate = (0, 0, 0);
                for id in who {
                    match snap.prospect(*id)?.map(|p| p.status) {
                        Some(Status::Won) => fate.0 += 1,
                        Some(Status::Lost) => fate.1 += 1,
                        _ => fate.2 += 1,
                    }
                }
                (*n, fate)
            }
            None => (0, (0, 0, 0)),
        };
        rows.push(CriterionRow {
            stage: stage.id.clone(),
            kind: if kind == 0 {
                "criterion"
            } else {
                "checklist item"
            }
            .into(),
            mode: (kind == 0).then(|| {
                modes
                    .get(&(i, name.clone()))
                    .copied()
                    .unwrap_or("enforce")
                    .to_string()
            }),
            name,
            met: (t[0], t[1]),
            unmet: (t[2], t[3]),
            win_rate_met: rate(t[0], t[1]),
            win_rate_unmet: rate(t[2], t[3]),
            significance,
            verdict: verdict.into(),
            breaches: count,
            breached_fate: fate,
        });
    }
    Ok(stagecoach_types::api::results::Criteria {
        from,
        to,
        closed: closed.len() as u64,
        capped,
        rows,
        note: "for deals closed in the period: each exit criterion and checklist item of the process in force, evaluated as of the moment the deal last left that stage with only what had happened by then (its fields as they were, from each change's record of what it replaced); an enforced criterion is met by every deal that advanced, so its unmet side is the deals lost or forced out of the stage: warn-mode criteria and checklist items are the fair comparisons; met against unmet by Newcombe's 95% interval for the difference of win rates, fewer than 10 on a side too few to tell; breaches: moves in the period a warn-mode criterion would have blocked, and how those prospects stand now".into(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use tokio::sync::broadcast;

    use super::*;
    use crate::clock::Clock;
    use crate::engine::{ActiveProcess, NewProspect, ProspectUpdate, WriteOp};
    use crate::store::Store;
    use crate::writer::{Writer, WriterStats};
    use redb::TableDefinition;
    use stagecoach_types::model::Status;

    const STAGES: [&str; 3] = ["a", "b", "c"];
    const OWNERS: [&str; 2] = ["maria", "tom"];

    #[derive(Debug, Clone)]
    enum Op {
        Create {
            stage: usize,
            day: i64,
            owner: usize,
        },
        Move {
            prospect: usize,
            to: usize,
            day: i64,
        },
        Close {
            prospect: usize,
            won: bool,
            day: i64,
        },
        Reassign {
            prospect: usize,
            owner: usize,
            day: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..60i64, 0..2usize).prop_map(|(stage, day, owner)| Op::Create {
                stage,
                day,
                owner
            }),
            // Creations on a few days only: one batch then bumps the same
            // counter several times (the writer gathers them per batch).
            (
                0..3usize,
                prop::sample::select(vec![5i64, 6, 40]),
                0..2usize
            )
                .prop_map(|(stage, day, owner)| Op::Create { stage, day, owner }),
            (0..20usize, 0..3usize, 0..60i64).prop_map(|(prospect, to, day)| Op::Move {
                prospect,
                to,
                day
            }),
            (0..20usize, any::<bool>(), 0..60i64).prop_map(|(prospect, won, day)| Op::Close {
                prospect,
                won,
                day
            }),
            (0..20usize, 0..2usize, 0..60i64).prop_map(|(prospect, owner, day)| Op::Reassign {
                prospect,
                owner,
                day
            }),
        ]
    }

    fn process() -> Arc<ActiveProcess> {
        // Manual stages whose criteria never pass: only the ops move prospects.
        let text = r#"
[process]
name = "prop"
[[stages]]
id = "a"
name = "A"
advance = "manual"
exit = [{ question = "never", field = "never", op = "present" }]
[[stages]]
id = "b"
name = "B"
advance = "manual"
exit = [{ question = "never", field = "never", op = "present" }]
[[stages]]
id = "c"
name = "C"
exit = [{ question = "Signed?", activity = "signed" }]
"#;
        Arc::new(ActiveProcess {
            version: 1,
            hash: String::new(),
            text: text.into(),
            loaded_at: Millis(0),
            process: crate::process::parse(text, "prop.toml").unwrap(),
            plugins: Default::default(),
        })
    }

    fn ms(day: i64) -> Millis {
        Millis(day * Millis::DAY + 3_600_000)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// For random histories: end = start + entered − exited for every
        /// stage and period, and the counters agree with a recomputation
        /// from the transition log.
        #[test]
        fn counters_match_the_transition_log(ops in proptest::collection::vec(op(), 1..40), periods in proptest::collection::vec((0..70i64, 1..40i64), 1..6)) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("db.redb")).unwrap();
            let (events, _) = broadcast::channel(1024);
            let (writer, thread) = Writer::start(store.clone(), Clock::fixed(ms(100)), events, Arc::new(WriterStats::default())).unwrap();
            let active = process();
            let mut ids: Vec<u64> = Vec::new();
            // Runs of creations are submitted without waiting, so that the
            // writer takes several in one batch (as an import does).
            let mut created = Vec::new();
            let take = |created: &mut Vec<tokio::sync::oneshot::Receiver<crate::writer::WriteResult>>, ids: &mut Vec<u64>| {
                for rx in created.drain(..) {
                    if let Ok(crate::engine::Answer::Prospect(p)) = rx.blocking_recv().unwrap() {
                        ids.push(p.prospect.id);
                    }
                }
            };
            for op in ops {
                if !matches!(op, Op::Create { .. }) {
                    take(&mut created, &mut ids);
                }
                let write = match op {
                    Op::Create { stage, day, owner } => WriteOp::CreateProspect(NewProspect {
                        name: "p".into(), company: None, owner: Some(OWNERS[owner].into()), fields: Default::default(),
                        stage: Some(STAGES[stage].into()), external_id: None, at: Some(ms(day)),
                    }),
                    Op::Move { prospect, to, day } if !ids.is_empty() => WriteOp::Move {
                        id: ids[prospect % ids.len()], to: STAGES[to].into(), reason: "prop".into(), by: None, at: ms(day),
                    },
                    Op::Close { prospect, won, day } if !ids.is_empty() => {
                        let id = ids[prospect % ids.len()];
                        if won {
                            // Winning needs the last stage and its criteria.
                            WriteOp::RecordActivity(crate::engine::NewActivity {
                                prospect: id, kind: "signed".into(), actor: None, at: Some(ms(day)), data: Default::default(),
                            })
                        } else {
                            WriteOp::Close { id, outcome: Status::Lost, reason: None, at: ms(day) }
                        }
                    }
                    Op::Reassign { prospect, owner, day } if !ids.is_empty() => WriteOp::UpdateProspect(ProspectUpdate {
                        id: ids[prospect % ids.len()], name: None, company: None, owner: Some(OWNERS[owner].into()),
                        fields: Default::default(), at: Some(ms(day)),
                    }),
                    _ => continue,
                };
                if matches!(write, WriteOp::CreateProspect(_)) {
                    created.push(writer.submit(active.clone(), write));
                    continue;
                }
                let result = writer.submit(active.clone(), write).blocking_recv().unwrap();
                if let Ok(crate::engine::Answer::Prospect(p)) = result
                    && p.moves.first().is_some_and(|m| m.kind == TransitionKind::Created)
                {
                    ids.push(p.prospect.id);
                }
            }
            take(&mut created, &mut ids);
            drop(writer);
            thread.join().unwrap();

            let transitions = store.all_transitions().unwrap();
            let txn = store.read_txn().unwrap();
            let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
            for (d0, len) in periods {
                let (from, to) = (Millis(d0 * Millis::DAY), Millis((d0 + len) * Millis::DAY));
                let rows = flow(&txn, &stages, from, to, ms(100), &Filter::default()).unwrap();
                for row in &rows {
                    prop_assert_eq!(row.end, row.start + row.entered - row.exited, "identity: {:?}", row);
                    let expected = flow_brute_force(&transitions, std::slice::from_ref(&row.stage), from, to);
                    prop_assert_eq!((row.start, row.entered, row.exited, row.end), expected, "stage {} days {}..{}", row.stage, d0, d0 + len);
                    prop_assert!(row.start >= 0 && row.end >= 0);
                }
                // Open ages from the entry-day summaries equal the open
                // prospects' own.
                for owner in [None, Some(OWNERS[0]), Some(OWNERS[1])] {
                    let filter = Filter { owner: owner.map(str::to_string) };
                    for s in STAGES {
                        let now = Millis(d0 * Millis::DAY + 7);
                        let ages: Vec<i64> = store
                            .prospects(&ProspectFilter { stage: Some(s.into()), owner: filter.owner.clone(), limit: usize::MAX, ..Default::default() })
                            .unwrap()
                            .iter()
                            .map(|p| (now.0 - p.stage_entered_at.0).max(0))
                            .collect();
                        prop_assert_eq!(open_ages(&txn, s, now, &filter).unwrap(), durations(ages), "open in {} at {:?}, owner {:?}", s, now, owner);
                    }
                }
                // Time in stage from the day summaries equals the stays' own
                // answer: whole days, and periods that cut days.
                for (a, b) in [(from, to), (Millis(from.0 + 3_600_001), Millis(to.0 + 3_600_001)), (Millis(from.0 + 1), Millis(from.0 + 7_200_000))] {
                    for owner in [None, Some(OWNERS[0]), Some(OWNERS[1])] {
                        let filter = Filter { owner: owner.map(str::to_string) };
                        for s in STAGES {
                            prop_assert_eq!(
                                time_in_stage(&txn, s, a, b, &filter).unwrap(),
                                durations(completed_stays(&txn, s, a, b, &filter).unwrap()),
                                "stage {} {:?}..{:?} owner {:?}", s, a, b, owner
                            );
                        }
                    }
                }
                for owner in OWNERS {
                    let filter = Filter { owner: Some(owner.into()) };
                    for row in flow(&txn, &stages, from, to, ms(100), &filter).unwrap() {
                        prop_assert_eq!(row.end, row.start + row.entered - row.exited, "owner identity: {:?}", row);
                        prop_assert!(row.start >= 0 && row.end >= 0, "owner counts stay non-negative: {:?}", row);
                    }
                }
            }
        }
    }

    /// Every stage's time in stage over a few periods, whole days and not,
    /// with and without an owner.
    fn times_in_stage(txn: &ReadTransaction) -> Vec<Durations> {
        let mut out = Vec::new();
        for (from, to) in [(0, 40 * Millis::DAY), (3_600_001, 25 * Millis::DAY + 1)] {
            for owner in [None, Some(OWNERS[0]), Some(OWNERS[1])] {
                let filter = Filter {
                    owner: owner.map(str::to_string),
                };
                for s in STAGES {
                    out.push(time_in_stage(txn, s, Millis(from), Millis(to), &filter).unwrap());
                    out.push(open_ages(txn, s, Millis(to), &filter).unwrap());
                }
            }
        }
        out
    }

    /// A database written by this build, then made to look like an older
    /// schema by `downgrade`; opened again, it answers as before.
    fn upgrades_to_the_same_answers(downgrade: impl FnOnce(&redb::WriteTransaction) -> u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
        let (from, to) = (Millis(0), Millis(40 * Millis::DAY));
        let (before, tis_before) = {
            let store = Store::open(&path).unwrap();
            let (events, _) = broadcast::channel(16);
            let (writer, thread) = Writer::start(
                store.clone(),
                Clock::fixed(ms(100)),
                events,
                Arc::new(WriterStats::default()),
            )
            .unwrap();
            let active = process();
            for i in 0..12u64 {
                let op = WriteOp::CreateProspect(NewProspect {
                    name: format!("p{i}"),
                    company: None,
                    owner: Some(OWNERS[(i % 2) as usize].into()),
                    fields: Default::default(),
                    stage: Some(STAGES[(i % 3) as usize].into()),
                    external_id: None,
                    at: Some(ms(i as i64)),
                });
                writer
                    .submit(active.clone(), op)
                    .blocking_recv()
                    .unwrap()
                    .unwrap();
            }
            for id in 1..=6u64 {
                let op = WriteOp::Move {
                    id,
                    to: "c".into(),
                    reason: "r".into(),
                    by: None,
                    at: ms(20 + id as i64),
                };
                let _ = writer.submit(active.clone(), op).blocking_recv().unwrap();
            }
            drop(writer);
            thread.join().unwrap();
            let txn = store.read_txn().unwrap();
            (
                flow(&txn, &stages, from, to, ms(100), &Filter::default()).unwrap(),
                times_in_stage(&txn),
            )
        };
        {
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let schema = downgrade(&txn);
            txn.open_table(TableDefinition::<&str, u64>::new("meta"))
                .unwrap()
                .insert("schema_version", schema)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        // Schema 3: where the version's history starts, found once.
        assert_eq!(
            store.version_first_transition(process().version).unwrap(),
            Some(ms(0))
        );
        let txn = store.read_txn().unwrap();
        let after = flow(&txn, &stages, from, to, ms(100), &Filter::default()).unwrap();
        assert_eq!(before, after);
        assert!(
            after.iter().any(|r| r.entered > 0 && r.exited > 0),
            "{after:?}"
        );
        let transitions = store.all_transitions().unwrap();
        for row in &after {
            assert_eq!(
                (row.start, row.entered, row.exited, row.end),
                flow_brute_force(&transitions, std::slice::from_ref(&row.stage), from, to)
            );
        }
        // Schema 4: time in stage from the day summaries, as before.
        let tis_after = times_in_stage(&txn);
        assert_eq!(tis_before, tis_after);
        assert!(tis_after.iter().any(|d| d.count > 0), "{tis_after:?}");
    }

    #[test]
    fn a_schema_1_database_gets_its_counters_built_once() {
        // Schema 1: no counters, no kind index.
        upgrades_to_the_same_answers(|txn| {
            drop_tables(txn).unwrap();
            txn.delete_table(TableDefinition::<(u64, &str, u64), (i64, bool)>::new(
                "activities_by_prospect_kind",
            ))
            .unwrap();
            txn.delete_table(TableDefinition::<u64, i64>::new("version_first_transition"))
                .unwrap();
            1
        });
    }

    #[test]
    fn a_schema_3_database_gets_its_stays_summarised_once() {
        upgrades_to_the_same_answers(|txn| {
            txn.delete_table(stay_days::STAY_DAYS).unwrap();
            txn.delete_table(stay_days::STAY_DAYS_BY_OWNER).unwrap();
            3
        });
    }

    #[test]
    fn durations_summarise() {
        let d = durations(vec![
            Millis::DAY,
            2 * Millis::DAY,
            3 * Millis::DAY,
            10 * Millis::DAY,
        ]);
        assert_eq!(d.count, 4);
        assert_eq!(d.median_days, Some(2.0));
        assert_eq!(d.p90_days, Some(10.0));
        assert_eq!(d.mean_days, Some(4.0));
    }
}
