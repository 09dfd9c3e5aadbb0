//! `process.*`: the process in force, its versions, and validating a
//! candidate text without applying it.

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read};
use crate::live::Reload;
use stagecoach_core::engine::{WriteOp, ahead};
use stagecoach_core::process::{Process, content_hash};
use stagecoach_types::api::params::{
    ProcessDiff, ProcessGet, ProcessReevaluate, ProcessReload, ProcessValidate,
};
use stagecoach_types::api::results::{
    Diff, ProcessText, Reevaluated, Validation, VersionWindow, Versions,
};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::{ErrorData, INTERNAL_ERROR, INVALID_PROCESS, RpcError};

pub(super) fn get(ctx: &Arc<Ctx>, p: ProcessGet) -> Reply {
    let active = ctx.active();
    let last_error = ctx.last_process_error.lock().expect("error lock").clone();
    match p.version {
        None => {
            let path = ctx.process_path.clone();
            read(move || {
                let tests = crate::live::read_tests(&path)
                    .map_err(|e| ReadError::Rpc(RpcError::new(INTERNAL_ERROR, e)))?;
                Ok(json!(ProcessText {
                    version: active.version,
                    hash: active.hash.clone(),
                    loaded_at: active.loaded_at,
                    path: path.display().to_string(),
                    text: active.text.clone(),
                    current: true,
                    process: Some(active.process.clone()),
                    last_error,
                    tests,
                }))
            })
        }
        Some(v) => {
            let ctx = ctx.clone();
            read(move || {
                let versions = ctx.store.process_versions()?;
                let Some(found) = versions.into_iter().find(|x| x.number == v) else {
                    return Err(ReadError::Rpc(RpcError::no_version(v)));
                };
                Ok(json!(ProcessText {
                    current: found.number == active.version,
                    version: found.number,
                    hash: found.hash,
                    loaded_at: found.loaded_at,
                    path: found.path,
                    text: found.text,
                    process: None,
                    last_error: None,
                    tests: None,
                }))
            })
        }
    }
}

pub(super) fn versions(ctx: &Arc<Ctx>, _: super::NoParams) -> Reply {
    let ctx = ctx.clone();
    let current = ctx.active().version;
    read(move || {
        let versions: Vec<_> = ctx
            .store
            .version_windows()?
            .into_iter()
            .map(|(v, from, until)| VersionWindow {
                version: v.number,
                hash: v.hash,
                loaded_at: v.loaded_at,
                in_force_from: from,
                in_force_until: until,
                path: v.path,
            })
            .collect();
        Ok(json!(Versions { current, versions }))
    })
}

pub(super) fn validate(ctx: &Arc<Ctx>, p: ProcessValidate) -> Reply {
    let ctx = ctx.clone();
    // Off the runtime's threads: a large text must not stall other clients.
    read(move || Ok(json!(validation(&ctx, p))))
}

fn validation(ctx: &Ctx, p: ProcessValidate) -> Validation {
    let file = p.file.unwrap_or_else(|| "process.toml".into());
    let active = ctx.active();
    // Unchanged text keeps its age; a changed text would be new today.
    let last_changed = if content_hash(&p.text) == active.hash {
        active.loaded_at
    } else {
        ctx.clock.now()
    };
    let (mut answer, process) =
        stagecoach_core::lint::validation(&p.text, &file, ctx.clock.now(), Some(last_changed));
    if let Some(process) = process {
        answer.changes = Some(stagecoach_core::diff::describe(&active.process, &process));
    }
    answer
}

pub(super) fn reload(ctx: &Arc<Ctx>, p: ProcessReload) -> Reply {
    let ctx = ctx.clone();
    Box::pin(async move {
        if p.text.is_none() && p.tests.is_some() {
            return Err(RpcError::params(
                "`tests` goes with `text`: the tests are checked against that text and written with it",
            ));
        }
        let outcome = match p.text {
            Some(text) => crate::live::write_and_reload(&ctx, text, p.tests).await,
            None => crate::live::reload(&ctx).await,
        };
        let result = match outcome {
            Reload::Applied(result) => result,
            Reload::Rejected(invalid) => {
                return Err(RpcError::new(
                    INVALID_PROCESS,
                    format!(
                        "process file refused; version {} stays in force",
                        ctx.active().version
                    ),
                )
                .with_data(ErrorData {
                    errors: Some(invalid.errors),
                    ..ErrorData::default()
                }));
            }
        };
        Ok(serde_json::to_value(result).expect("results serialize"))
    })
}

/// Open prospects re-evaluated per write: the writer never holds other
/// clients' writes for more than one batch.
const REEVALUATE_BATCH: usize = 200;

pub(super) fn reevaluate(ctx: &Arc<Ctx>, p: ProcessReevaluate) -> Reply {
    let at = p.at.unwrap_or_else(|| ctx.clock.now());
    let gate = crate::context::take_gate();
    let ctx = ctx.clone();
    Box::pin(async move {
        // This connection's later writes wait for the whole re-evaluation;
        // other clients' writes go between its batches.
        struct Opened(Option<crate::context::WriteGate>);
        impl Drop for Opened {
            fn drop(&mut self) {
                if let Some(g) = &self.0 {
                    g.open();
                }
            }
        }
        let gate = Opened(gate);
        if let Some(g) = &gate.0 {
            g.wait_submitted().await;
        }
        reevaluate_open(&ctx, at).await.map(|total| json!(total))
    })
}

/// Evaluates every open prospect again as of `at`, in batches of
/// [`REEVALUATE_BATCH`] (other clients' writes go between them), pushing
/// `process.reevaluating` after each: `process.reevaluate`, and what the
/// daemon does when a plugin it was waiting for becomes ready.
pub async fn reevaluate_open(ctx: &Arc<Ctx>, at: Millis) -> Result<Reevaluated, RpcError> {
    let store = ctx.store.clone();
    let open = tokio::task::spawn_blocking(move || open_prospects(&store))
        .await
        .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("read task failed: {e}")))?
        .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?;
    let batches = open.len().div_ceil(REEVALUATE_BATCH);
    let mut total = Reevaluated {
        evaluated: 0,
        moved: 0,
        transitions: 0,
        process_version: ctx.active().version,
    };
    let chunks: Vec<Vec<_>> = open.chunks(REEVALUATE_BATCH).map(<[_]>::to_vec).collect();
    // Later batches are evaluated ahead while the writer applies this one.
    let ahead_of = |i: usize| {
        chunks
            .get(i)
            .map(|c| tokio::spawn(evaluate_batch_ahead(ctx.clone(), c.clone(), at)))
    };
    // Two batches in flight, so the plugin threads never wait for the writer.
    let mut next: std::collections::VecDeque<_> = (0..2).filter_map(ahead_of).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        if let Some(ahead) = next.pop_front() {
            let _ = ahead.await;
        }
        next.extend(ahead_of(i + 2));
        let ids: Vec<_> = chunk.iter().map(|p| p.id).collect();
        let op = WriteOp::Reevaluate { at, ids: Some(ids) };
        let answer = ctx.submit(op).await?;
        let r: Reevaluated = serde_json::from_value(answer)
            .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?;
        total.evaluated += r.evaluated;
        total.moved += r.moved;
        total.transitions += r.transitions;
        total.process_version = r.process_version;
        tracing::info!(
            batch = i + 1,
            batches,
            evaluated = total.evaluated,
            moved = total.moved,
            "re-evaluating open prospects"
        );
        let _ = ctx
            .events
            .send(stagecoach_core::engine::Event::Reevaluating {
                done: total.evaluated,
                total: open.len() as u64,
                moved: total.moved,
            });
    }
    Ok(total)
}

/// Every open prospect, as a snapshot has them.
fn open_prospects(
    store: &stagecoach_core::store::Store,
) -> Result<Vec<stagecoach_types::model::Prospect>, stagecoach_core::store::StoreError> {
    let snapshot = store.snapshot()?;
    let mut open = Vec::new();
    let mut after = None;
    loop {
        let page = snapshot.prospects(&stagecoach_core::store::ProspectFilter {
            stage: None,
            owner: None,
            status: Some(stagecoach_types::model::Status::Open),
            after,
            limit: 10_000,
        })?;
        after = page.last().map(|p| p.id);
        let last = page.len() < 10_000;
        open.extend(page);
        if last {
            return Ok(open);
        }
    }
}

/// Evaluates ahead, on the plugin threads (all of them, in parallel), the
/// plugin criteria a batch of re-evaluation will meet: the writer then
/// reuses the answers, so re-evaluation uses every core.
async fn evaluate_batch_ahead(
    ctx: Arc<Ctx>,
    chunk: Vec<stagecoach_types::model::Prospect>,
    at: stagecoach_types::model::Millis,
) {
    let active = ctx.active();
    let using: Vec<_> = chunk
        .iter()
        // Every plugin, however fast: the writer's work is serial, the
        // plugin threads' parallel.
        .filter(|p| ahead::reaches_plugins(&active, &p.stage, false))
        .cloned()
        .collect();
    if using.is_empty() {
        return;
    }
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = using.len().div_ceil(parts);
    let mut jobs = Vec::new();
    for part in using.chunks(per) {
        let (part, active, store, pool) = (
            part.to_vec(),
            active.clone(),
            ctx.store.clone(),
            ctx.ahead.clone(),
        );
        let op = WriteOp::Reevaluate { at, ids: None };
        jobs.push(tokio::spawn(async move {
            pool.run(move || {
                let Ok(snapshot) = store.snapshot() else {
                    return;
                };
                for p in &part {
                    let _ = ahead::evaluate_ahead(&snapshot, &active, p, &op);
                }
            })
            .await
        }));
    }
    for job in jobs {
        let _ = job.await;
    }
}

pub(super) fn diff(ctx: &Arc<Ctx>, p: ProcessDiff) -> Reply {
    let ctx = ctx.clone();
    let to = p.to.unwrap_or_else(|| ctx.active().version);
    read(move || {
        let versions = ctx.store.process_versions()?;
        let load = |n: u64| -> Result<Process, ReadError> {
            let v = versions
                .iter()
                .find(|v| v.number == n)
                .ok_or_else(|| ReadError::Rpc(RpcError::no_version(n)))?;
            stagecoach_core::process::parse(&v.text, &v.path).map_err(|e| {
                ReadError::Rpc(RpcError::new(
                    INVALID_PROCESS,
                    format!("stored version {n} no longer parses: {e}"),
                ))
            })
        };
        let (a, b) = (load(p.from)?, load(to)?);
        Ok(json!(Diff {
            from: p.from,
            to,
            changes: stagecoach_core::diff::describe(&a, &b),
        }))
    })
}
