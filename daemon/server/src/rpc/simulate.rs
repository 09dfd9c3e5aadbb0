//! `process.simulate`: the stored history replayed under a draft process
//! in a scratch store beside the database (deleted afterwards), and the
//! period's figures of both, in the shapes `metrics.*` answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply};
use stagecoach_core::engine::ActiveProcess;
use stagecoach_core::metrics;
use stagecoach_core::simulate::{self, map_stage};
use stagecoach_core::store::Store;
use stagecoach_types::api::params::{Period, ProcessSimulate};
use stagecoach_types::api::results::{
    Replayed, SimulatedCriterion, SimulatedProspect, SimulatedStage, Simulation,
};
use stagecoach_types::model::{Millis, Status};
use stagecoach_types::protocol::{
    ErrorData, INTERNAL_ERROR, INVALID_PROCESS, RpcError, UNAVAILABLE,
};

/// One simulation at a time: each holds a blocking thread and a scratch
/// copy of the history on disk for as long as it runs.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The running simulation's progress: prospects replayed, and of how many
/// (0: none running).
static DONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// (replayed, of all) while a simulation runs, for `daemon.status`.
pub(super) fn progress() -> Option<(u64, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    let total = TOTAL.load(Relaxed);
    (total > 0).then(|| (DONE.load(Relaxed), total))
}

/// Clears the progress when the simulation ends, however it ends.
struct Progress;

impl Drop for Progress {
    fn drop(&mut self) {
        TOTAL.store(0, std::sync::atomic::Ordering::Relaxed);
        DONE.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The last simulation's scratch store, closing on a thread of its own.
static CLOSING: std::sync::Mutex<Option<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(None);

/// Prospects listed in `moved` unless the request says.
const DEFAULT_LIMIT: usize = 200;

pub(super) fn simulate(ctx: &Arc<Ctx>, p: ProcessSimulate) -> Reply {
    let ctx = ctx.clone();
    Box::pin(async move {
        let Ok(_one) = RUNNING.try_acquire() else {
            return Err(RpcError::new(
                UNAVAILABLE,
                "a simulation is already running; try again when it has finished",
            ));
        };
        let file = p.file.clone().unwrap_or_else(|| "draft.toml".into());
        let draft = match crate::live::prepare_draft(&ctx, p.text.clone(), &file).await {
            Ok(d) => Arc::new(d),
            Err(invalid) => {
                return Err(RpcError::new(
                    INVALID_PROCESS,
                    format!(
                        "the draft is invalid; nothing was simulated ({} error{})",
                        invalid.errors.len(),
                        if invalid.errors.len() == 1 { "" } else { "s" }
                    ),
                )
                .with_data(ErrorData {
                    errors: Some(invalid.errors),
                    ..ErrorData::default()
                }));
            }
        };
        let now = ctx.clock.now();
        let to = p.to.unwrap_or(now);
        let from = p.from.unwrap_or(Millis(to.0 - 90 * Millis::DAY));
        if to <= from {
            return Err(RpcError::params("`to` must be after `from`"));
        }
        let task = tokio::task::spawn_blocking(move || {
            run(
                &ctx,
                &draft,
                (from, to),
                now,
                p.limit.unwrap_or(DEFAULT_LIMIT),
            )
        });
        match task.await {
            Ok(Ok(s)) => Ok(json!(s)),
            Ok(Err(ReadError::Rpc(e))) => Err(e),
            Ok(Err(ReadError::Store(e))) => Err(RpcError::new(INTERNAL_ERROR, e.to_string())),
            Err(e) => Err(RpcError::new(
                INTERNAL_ERROR,
                format!("the simulation failed: {e}"),
            )),
        }
    })
}

/// The scratch store's file, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(
    ctx: &Ctx,
    draft: &Arc<ActiveProcess>,
    (from, to): (Millis, Millis),
    now: Millis,
    limit: usize,
) -> Result<Simulation, ReadError> {
    let started = std::time::Instant::now();
    // The last run's scratch store may still be closing (below): one at a
    // time, so back-to-back simulations never hold more than one.
    if let Some(closing) = CLOSING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        let _ = closing.join();
    }
    // Numbered per run: no run ever opens a file another one left.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = ctx.data_dir.join(format!(
        "simulate-{}-{}.redb",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let scratch_file = Scratch(path.clone());
    let scratch = Store::open_with(&path, stagecoach_core::simulate::SCRATCH_CACHE_MIB)?;
    let _progress = Progress;
    let live = ctx.active();
    let period = Period {
        from,
        to,
        ..Default::default()
    };
    // The actual figures are read while the replay runs: its reading
    // thread leaves half a core idle (the writing one is the bound).
    let (replay, actual) = std::thread::scope(|s| {
        let actual = s.spawn(|| super::metrics::measure(&ctx.store, &live, &period, now));
        let replay = simulate::replay(&ctx.store, &scratch, draft, now, &mut |done, total| {
            use std::sync::atomic::Ordering::Relaxed;
            DONE.store(done, Relaxed);
            TOTAL.store(total.max(1), Relaxed);
        });
        (replay, super::joined(actual, "the actual figures"))
    });
    let (replay, actual) = (replay?, actual?);
    let simulated = super::metrics::measure(&scratch, draft, &period, now)?;

    // Where every prospect stands, here and under the draft, as the
    // replay read the history (no second pass over every prospect).
    let live_snap = ctx.store.snapshot()?;
    let mut actual_open: BTreeMap<String, u64> = BTreeMap::new();
    let mut sim_open: BTreeMap<String, u64> = BTreeMap::new();
    let mut changes: BTreeMap<String, u64> = BTreeMap::new();
    let mut moved = Vec::new();
    let mut moved_total = 0u64;
    let index = |stage: &str| draft.process.stage_index(stage);
    for s in &replay.places {
        let a_stage = &replay.history_stages[s.was_stage as usize];
        let s_stage = &draft.process.stages[s.stage].id;
        let mapped = map_stage(&draft.process, a_stage);
        if s.was_status == Status::Open {
            // Under the draft's id when the draft renames the stage.
            let stage = mapped.clone().unwrap_or_else(|| a_stage.clone());
            *actual_open.entry(stage).or_default() += 1;
        }
        if s.status == Status::Open {
            *sim_open.entry(s_stage.clone()).or_default() += 1;
        }
        let change = match (s.was_status, s.status) {
            (Status::Open, Status::Open) if mapped.as_deref() == Some(s_stage.as_str()) => None,
            (Status::Open, Status::Open) => Some(match mapped.as_deref().and_then(index) {
                Some(i) if s.stage < i => "held back",
                Some(_) => "further",
                None => "elsewhere",
            }),
            (Status::Open, _) => Some("closed"),
            (_, Status::Open) => Some("reopened"),
            (x, y) if x == y => None,
            _ => Some("elsewhere"),
        };
        let Some(change) = change else { continue };
        *changes.entry(change.to_string()).or_default() += 1;
        moved_total += 1;
        if moved.len() < limit {
            moved.push(SimulatedProspect {
                id: s.prospect,
                name: live_snap
                    .prospect(s.prospect)?
                    .map(|p| p.name)
                    .unwrap_or_default(),
                actual_stage: a_stage.clone(),
                actual_status: s.was_status,
                simulated_stage: s_stage.clone(),
                simulated_status: s.status,
                change: change.to_string(),
            });
        }
    }
    if replay.unearned_wins > 0 {
        changes.insert("won, not earned".into(), replay.unearned_wins);
    }
    let mut stages: Vec<SimulatedStage> = draft
        .process
        .stages
        .iter()
        .map(|s| SimulatedStage {
            stage: s.id.clone(),
            name: s.name.clone(),
            actual: actual_open.get(&s.id).copied().unwrap_or(0),
            simulated: sim_open.get(&s.id).copied().unwrap_or(0),
        })
        .collect();
    for s in &live.process.stages {
        if map_stage(&draft.process, &s.id).is_none() {
            stages.push(SimulatedStage {
                stage: s.id.clone(),
                name: s.name.clone(),
                actual: actual_open.get(&s.id).copied().unwrap_or(0),
                simulated: 0,
            });
        }
    }

    // Who each of the draft's criteria holds now.
    let mut criteria = Vec::new();
    for (stage, held) in draft.process.stages.iter().zip(replay.held) {
        for (c, h) in stage.exit.iter().zip(held) {
            criteria.push(SimulatedCriterion {
                stage: stage.id.clone(),
                question: c.question.clone(),
                holding: h.len() as u64,
                held: metrics::durations(h),
            });
        }
    }

    let mut warnings = Vec::new();
    for (stage, n) in &replay.unmapped_stages {
        warnings.push(format!(
            "the history has {n} move(s) into or creation(s) in stage `{stage}`, which the draft neither has nor maps (add `renamed_from` or `[migrate]`): creations there start in the draft's first stage, forced moves there are left out"
        ));
    }
    for (kind, n) in &replay.undeclared_kinds {
        warnings.push(format!(
            "activity kind `{kind}` ({n} recorded) is not declared in the draft's `[activities]`: replayed as it is, but no criterion of the draft can use it"
        ));
    }
    if replay.fields_unknown > 0 {
        warnings.push(format!(
            "{} prospect(s) had a field changed after creation by a record that does not say what it replaced (recorded before changes kept that): the replay starts without it",
            replay.fields_unknown
        ));
    }
    // Closing the scratch store makes its one commit durable (redb syncs a
    // pending non-durable commit at close: ~1 GiB at 1M prospects), so its
    // file is removed now (the space is freed when the store closes, or
    // when the process ends) and it is closed on a thread of its own: the
    // answer does not wait for a sync of a deleted file, and a daemon
    // stopped meanwhile leaves nothing behind.
    drop(scratch_file);
    *CLOSING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(std::thread::spawn(move || drop(scratch)));
    Ok(Simulation {
        from: actual.flow.from,
        to: actual.flow.to,
        replayed: Replayed {
            prospects: replay.prospects,
            activities: replay.activities,
            forced_moves: replay.forced_moves,
            unearned_wins: replay.unearned_wins,
            seconds: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        },
        warnings,
        stages,
        changes,
        moved,
        moved_total,
        criteria,
        actual,
        simulated,
    })
}
