//! Replaying the stored history under a draft process, in a scratch store
//! the live database never sees: what `process.simulate` measures.
//!
//! Each prospect comes in as it was created (in its first stage, mapped to
//! the draft's), with its fields as they were then, and its history in
//! time order: activities (field changes included, at their own times),
//! the forced moves and the closes people made, as recorded. Everything
//! else — every move the exit criteria made — the draft's criteria decide.
//! A win the draft's criteria would not have allowed is still a win (the
//! customer signed), recorded as not earned, and counted.

use std::collections::{BTreeMap, BTreeSet};

use stagecoach_types::api::params::{ImportActivity, ImportMove, ImportOutcome, ImportProspect};
use stagecoach_types::model::{FIELDS_UPDATED, Millis, ProspectId, Status, TransitionKind};
use stagecoach_types::process::Process;

use crate::engine::{ActiveProcess, Answer};
use crate::store::{ProspectFilter, Store, StoreError, Tables};

/// What a replay did, and what it could not replay faithfully.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// Prospects replayed.
    pub prospects: u64,
    /// Activities replayed (field changes included).
    pub activities: u64,
    /// Forced moves replayed as recorded.
    pub forced_moves: u64,
    /// Wins the draft's criteria would not have allowed (recorded won, not earned).
    pub unearned_wins: u64,
    /// Stage ids in the history the draft neither has nor maps → how often
    /// (a creation there starts in the draft's first stage; a forced move
    /// there is left out).
    pub unmapped_stages: BTreeMap<String, u64>,
    /// Activity kinds the draft's `[activities]` does not declare → rows
    /// (replayed as they are, as imports are).
    pub undeclared_kinds: BTreeMap<String, u64>,
    /// Prospects with a field changed after creation by a record that does
    /// not say what it replaced (it starts absent in the replay).
    pub fields_unknown: u64,
    /// Where each prospect of the history ends up under the draft, in the
    /// history's id order.
    pub places: Vec<Place>,
    /// The history's stage ids, by the number [`Place::was_stage`] gives.
    pub history_stages: Vec<String>,
    /// Per stage of the draft, per exit criterion: how long each open
    /// prospect it holds now (unmet, not warn-mode) has been in the stage, ms.
    pub held: Vec<Vec<Vec<i64>>>,
}

/// Where one prospect of the history ends up under the draft.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    /// The prospect, by its id in the history.
    pub prospect: ProspectId,
    /// Its stage, by index in the draft (while open: the stage it is in).
    pub stage: usize,
    /// Open, won or lost.
    pub status: Status,
    /// Its stage in the history as the replay read it, by number in
    /// [`Replay::history_stages`] (while open: the stage it is in).
    pub was_stage: u32,
    /// Its status in the history as the replay read it.
    pub was_status: Status,
}

/// The draft's stage for a stage id of the history: the same id, the stage
/// renamed from it, or where `[migrate]` sends it.
pub fn map_stage(draft: &Process, id: &str) -> Option<String> {
    if draft.stage(id).is_some() {
        return Some(id.to_string());
    }
    if let Some(s) = draft
        .stages
        .iter()
        .find(|s| s.renamed_from.iter().any(|r| r == id))
    {
        return Some(s.id.clone());
    }
    draft.migrate.get(id).cloned()
}

/// A prospect's fields as they were at `at` (at creation when `None`),
/// from its current fields and its `fields_updated` records: each change
/// after `at` says what it replaced (`previous`, recorded since changes
/// carry it). True when a change made after `at` does not say (an older
/// record): that field is taken as absent.
pub fn fields_at(
    p: &stagecoach_types::model::Prospect,
    activities: &[stagecoach_types::model::Activity],
    at: Option<stagecoach_types::model::Millis>,
) -> (stagecoach_types::model::Fields, bool) {
    let mut fields = p.fields.clone();
    let mut decided: BTreeSet<String> = BTreeSet::new();
    let mut unknown = false;
    let after = activities
        .iter()
        .filter(|a| a.kind == FIELDS_UPDATED && at.is_none_or(|t| a.at > t));
    for a in after {
        let previous = a.data.get("previous").and_then(|v| v.as_object());
        let mut keys: Vec<String> = Vec::new();
        if let Some(set) = a.data.get("fields").and_then(|v| v.as_object()) {
            keys.extend(set.keys().cloned());
        }
        if let Some(gone) = a.data.get("removed").and_then(|v| v.as_array()) {
            keys.extend(gone.iter().filter_map(|v| v.as_str()).map(str::to_string));
        }
        for k in keys {
            // The earliest change after `at` knows the value at `at`.
            if !decided.insert(k.clone()) {
                continue;
            }
            match previous.and_then(|m| m.get(&k)) {
                Some(serde_json::Value::Null) => {
                    fields.remove(&k);
                }
                Some(v) => match serde_json::from_value(v.clone()) {
                    Ok(v) => {
                        fields.insert(k, v);
                    }
                    Err(_) => {
                        fields.remove(&k);
                        unknown = true;
                    }
                },
                None => {
                    fields.remove(&k);
                    unknown = true;
                }
            }
        }
    }
    (fields, unknown)
}

/// The scratch store's page cache, MiB (the live store's is its own).
pub const SCRATCH_CACHE_MIB: usize = 64;

/// Prospects per batch the reading thread sends.
const BATCH: usize = 4096;

/// Replays every prospect of `live` into the empty `scratch` store under
/// `draft`, calling `progress(done, total)` after each batch. The scratch
/// store gets the prospects, their moves and the metrics that follow, not
/// the activities ([`Tables::open_scratch`]); the criteria are evaluated
/// as of `now` for where each open prospect ends up ([`Replay::held`]).
pub fn replay(
    live: &Store,
    scratch: &Store,
    draft: &ActiveProcess,
    now: Millis,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Replay, StoreError> {
    let total = live.counts()?.prospects;
    let process = &draft.process;
    let mut out = Replay {
        held: process
            .stages
            .iter()
            .map(|s| vec![Vec::new(); s.exit.len()])
            .collect(),
        ..Replay::default()
    };
    // Reading the history and building each prospect's import runs on a
    // second thread, a batch ahead of the one writing the scratch store.
    std::thread::scope(|s| -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<ReadBatch, StoreError>>(1);
        s.spawn(move || {
            if let Err(e) = read_history(live, process, &tx) {
                let _ = tx.send(Err(e));
            }
        });
        // One write transaction for the whole replay: nothing reads the
        // scratch store before it ends, and a commit per batch would copy
        // every B-tree page it touched again (a non-durable commit cannot
        // free pages, so the file grew by each batch's copies).
        // The tables stay open across batches, so what they gather is
        // written once, at the end (sooner past their memory
        // budgets, `Tables::write_past_budget`).
        let mut txn = scratch.begin_write()?;
        // Never made durable: the file is removed once the simulation has
        // been measured, and reads see a commit of any durability. A
        // durable commit synced ~1 GiB at 1M prospects (1.6-2.0 s).
        txn.set_durability(redb::Durability::None)?;
        {
            let mut tables = Tables::open_scratch(&txn, scratch.next_ids()?)?;
            for batch in rx {
                let batch = batch?;
                out.absorb(batch.counts);
                // The scratch copy shares the database's disk: keep its reserve.
                live.check_space()?;
                for (id, (was_stage, was_status), op) in &batch.ops {
                    if let Ok((Answer::Imported(i), _)) =
                        crate::engine::import::apply(&mut tables, draft, op)?
                    {
                        let was_stage = out.stage_number(was_stage);
                        if i.unearned.is_some() {
                            out.unearned_wins += 1;
                        }
                        let stage = process.stage_index(&i.stage).unwrap_or(0);
                        out.places.push(Place {
                            prospect: *id,
                            stage,
                            status: i.status,
                            was_stage,
                            was_status: *was_status,
                        });
                        if i.status == Status::Open {
                            hold(&tables, draft, i.id, stage, now, &mut out.held)?;
                        }
                        tables.release_activities(i.id);
                    }
                    out.prospects += 1;
                }
                tables.write_past_budget()?;
                progress(out.prospects, total);
            }
            tables.finish()?;
        }
        txn.commit()?;
        Ok(())
    })?;
    Ok(out)
}

/// One batch of the history, read and turned into imports: each live
/// prospect's id, where it stands there, and its import; and what the
/// reading counted.
struct ReadBatch {
    ops: Vec<(ProspectId, (String, Status), ImportProspect)>,
    counts: Replay,
}

/// Reads `live`'s prospects in batches and sends each as imports under
/// `draft`, until the history ends or the receiver is gone.
fn read_history(
    live: &Store,
    draft: &Process,
    tx: &std::sync::mpsc::SyncSender<Result<ReadBatch, StoreError>>,
) -> Result<(), StoreError> {
    let snap = live.snapshot()?;
    let records = snap.records()?;
    let renames = crate::metrics::Renames::read(snap.txn())?;
    let mut after = None;
    loop {
        let page = snap.prospects(&ProspectFilter {
            after,
            limit: BATCH,
            ..Default::default()
        })?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.id);
        let mut counts = Replay::default();
        let ops = page
            .iter()
            .map(|p| {
                let op = replay_op(&records, draft, &renames, p, &mut counts)?;
                Ok((p.id, (p.stage.clone(), p.status), op))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if tx.send(Ok(ReadBatch { ops, counts })).is_err() {
            return Ok(());
        }
    }
}

impl Replay {
    /// The number of a stage id of the history in [`Replay::history_stages`].
    fn stage_number(&mut self, id: &str) -> u32 {
        match self.history_stages.iter().position(|s| s == id) {
            Some(n) => n as u32,
            None => {
                self.history_stages.push(id.to_string());
                (self.history_stages.len() - 1) as u32
            }
        }
    }

    /// Adds the counts a reading batch made ([`read_history`]).
    fn absorb(&mut self, part: Replay) {
        self.activities += part.activities;
        self.forced_moves += part.forced_moves;
        self.fields_unknown += part.fields_unknown;
        for (k, n) in part.unmapped_stages {
            *self.unmapped_stages.entry(k).or_default() += n;
        }
        for (k, n) in part.undeclared_kinds {
            *self.undeclared_kinds.entry(k).or_default() += n;
        }
    }
}

/// Counts what holds an open prospect of the scratch store in its stage
/// (index `stage` of the draft) as of `now`.
fn hold(
    tables: &Tables<'_>,
    draft: &ActiveProcess,
    id: ProspectId,
    stage: usize,
    now: Millis,
    held: &mut [Vec<Vec<i64>>],
) -> Result<(), StoreError> {
    let Some(p) = tables.prospect(id)? else {
        return Ok(());
    };
    let e = crate::engine::evaluate(tables, draft, &p, &draft.process.stages[stage], now, false)?;
    for (v, h) in e.verdicts.iter().zip(&mut held[stage]) {
        // A warn-mode criterion holds nobody.
        if !v.met && !v.warn {
            h.push((now.0 - p.stage_entered_at.0).max(0));
        }
    }
    Ok(())
}

/// One live prospect as an import into the scratch store.
fn replay_op(
    snap: &crate::store::Records,
    draft: &Process,
    renames: &crate::metrics::Renames,
    p: &stagecoach_types::model::Prospect,
    out: &mut Replay,
) -> Result<ImportProspect, StoreError> {
    // A stage of the history under its id, or under the id the store knows
    // it was renamed to (a `renamed_from` since dropped from the file).
    let map_stage =
        |id: &str| map_stage(draft, id).or_else(|| map_stage(draft, &renames.last_id(id)));
    let transitions = snap.transitions(p.id)?;
    let activities = snap.activities(p.id)?;
    let (fields, unknown) = fields_at(p, &activities, None);
    if unknown {
        out.fields_unknown += 1;
    }

    let unmapped = |id: &str, out: &mut Replay| {
        *out.unmapped_stages.entry(id.to_string()).or_default() += 1;
    };
    let created_in = transitions
        .iter()
        .find(|t| t.kind == TransitionKind::Created)
        .map(|t| t.to.clone());
    let created_in = match created_in {
        Some(stage) => match map_stage(&stage) {
            Some(s) => Some(s),
            None => {
                unmapped(&stage, out);
                None
            }
        },
        None => None,
    };
    let mut forced_moves = Vec::new();
    // A person's forced moves; not a `[migrate]`'s (the draft decides those).
    let migrated = |t: &&stagecoach_types::model::Transition| {
        t.reason.as_deref().is_some_and(|r| {
            r.starts_with("process version ") && r.contains("migrated its prospects")
        })
    };
    for t in transitions
        .iter()
        .filter(|t| t.kind == TransitionKind::Forced)
        .filter(|t| !migrated(t))
    {
        match map_stage(&t.to) {
            Some(to) => {
                out.forced_moves += 1;
                forced_moves.push(ImportMove {
                    to,
                    at: t.at,
                    kind: Some(TransitionKind::Forced),
                    reason: t.reason.clone(),
                    by: t.by.clone(),
                    imported: false,
                });
            }
            None => unmapped(&t.to, out),
        }
    }
    let outcome = match p.status {
        Status::Open => None,
        status => transitions
            .iter()
            .rev()
            .find(|t| matches!(t.kind, TransitionKind::Won | TransitionKind::Lost))
            .map(|t| ImportOutcome {
                status,
                at: t.at,
                reason: t.reason.clone(),
                whole_day: false,
                imported: Some(t.imported),
            }),
    };
    let declared = &draft.activities;
    let activities = activities
        .into_iter()
        .map(|a| {
            if a.kind != FIELDS_UPDATED && !declared.is_empty() && !declared.contains_key(&a.kind) {
                *out.undeclared_kinds.entry(a.kind.clone()).or_default() += 1;
            }
            out.activities += 1;
            ImportActivity {
                kind: a.kind,
                actor: Some(a.actor),
                at: a.at,
                data: a.data,
            }
        })
        .collect();
    Ok(ImportProspect {
        external_id: format!("stagecoach:{}", p.id),
        name: p.name.clone(),
        company: p.company.clone(),
        owner: p.owner.clone(),
        fields,
        created_at: p.created_at,
        activities,
        // Only where it was created: the criteria decide the rest.
        history: Vec::new(),
        outcome,
        source_stage: None,
        trust_source_stage: false,
        forced_moves,
        created_in,
        session: None,
    })
}
