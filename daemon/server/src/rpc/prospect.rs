//! `prospect.*`: create, read, list, update, evaluate and move prospects.

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::criteria::{all_met, stage_checklists};
use stagecoach_core::engine::{self, NewProspect, ProspectUpdate, WriteOp};
use stagecoach_core::store::ProspectFilter;
use stagecoach_types::api::params::{
    ById, MAX_CURSOR_ID, Outcome, ProspectClose, ProspectList, ProspectMove,
};
use stagecoach_types::api::results::{ProspectPage, ProspectView};
use stagecoach_types::model::{Millis, ProspectId, Status};
use stagecoach_types::protocol::RpcError;

/// The default and largest page for `prospect.list`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

pub(super) fn create(ctx: &Arc<Ctx>, p: NewProspect) -> Reply {
    ctx.write(WriteOp::CreateProspect(p))
}

pub(super) fn update(ctx: &Arc<Ctx>, p: ProspectUpdate) -> Reply {
    ctx.write_ahead(WriteOp::UpdateProspect(p))
}

pub(super) fn advance(ctx: &Arc<Ctx>, p: ById) -> Reply {
    let at = p.at.unwrap_or_else(|| ctx.clock.now());
    ctx.write_ahead(WriteOp::Advance { id: p.id, at })
}

pub(super) fn force_move(ctx: &Arc<Ctx>, p: ProspectMove) -> Reply {
    let at = p.at.unwrap_or_else(|| ctx.clock.now());
    ctx.write(WriteOp::Move {
        id: p.id,
        to: p.to,
        reason: p.reason,
        by: p.by,
        at,
    })
}

pub(super) fn close(ctx: &Arc<Ctx>, p: ProspectClose) -> Reply {
    let at = p.at.unwrap_or_else(|| ctx.clock.now());
    let outcome = match p.outcome {
        Outcome::Won => Status::Won,
        Outcome::Lost => Status::Lost,
    };
    ctx.write_ahead(WriteOp::Close {
        id: p.id,
        outcome,
        reason: p.reason,
        at,
    })
}

/// The prospect with its current stage's verdicts, evaluated as of `at`.
fn with_verdicts(ctx: &Arc<Ctx>, id: ProspectId, at: Option<Millis>, history: bool) -> Reply {
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = at.unwrap_or_else(|| ctx.clock.now());
    read(move || {
        // One snapshot for everything this answer says.
        let snap = ctx.store.snapshot()?;
        let Some(prospect) = snap.prospect(id)? else {
            return Err(ReadError::Rpc(RpcError::no_prospect(id)));
        };
        let process = &active.process;
        let index = process.stage_index(&prospect.stage);
        let mut view = ProspectView {
            stage_name: match index {
                Some(i) => Some(process.stages[i].name.clone()),
                // Closed in a stage since renamed or removed.
                None => stagecoach_core::metrics::stage_name(snap.txn(), process, &prospect.stage)?,
            },
            verdicts: None,
            ready: None,
            next_stage: None,
            days_in_stage: None,
            checklists: Vec::new(),
            process_version: active.version,
            transitions: None,
            prospect: prospect.clone(),
        };
        if let Some(i) = index
            && prospect.status == Status::Open
        {
            let stage = &process.stages[i];
            // The engine's own evaluation, as a write would make it now.
            let checklists = !stage.checklists.is_empty();
            let e = engine::evaluate(&snap, &active, &prospect, stage, now, checklists)?;
            view.checklists =
                stage_checklists(stage, &prospect, &e.facts, e.as_of, active.plugin_context());
            view.next_stage = Some(
                process
                    .stages
                    .get(i + 1)
                    .map_or("won".to_string(), |s| s.id.clone()),
            );
            view.ready = Some(all_met(&e.verdicts));
            view.verdicts = Some(e.verdicts);
            view.days_in_stage =
                Some((prospect.stage_entered_at.days_until(now) * 10.0).round() / 10.0);
        }
        if history {
            view.transitions = Some(snap.transitions(id)?);
        }
        Ok(json!(view))
    })
}

pub(super) fn get(ctx: &Arc<Ctx>, p: ById) -> Reply {
    with_verdicts(ctx, p.id, p.at, true)
}

pub(super) fn evaluate(ctx: &Arc<Ctx>, p: ById) -> Reply {
    with_verdicts(ctx, p.id, p.at, false)
}

pub(super) fn list(ctx: &Arc<Ctx>, p: ProspectList) -> Reply {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return ready(Err(RpcError::params(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        ))));
    }
    if let Some(after) = p.after.filter(|a| *a > MAX_CURSOR_ID) {
        return ready(Err(RpcError::params(format!(
            "`after`: `{after}` is not a cursor from a previous page (pass a page's `next`)"
        ))));
    }
    if let Some(stage) = &p.stage
        && ctx.active().process.stage(stage).is_none()
    {
        let e = engine::unknown_stage(&ctx.active().process, stage);
        return ready(Err(e.into()));
    }
    let ctx = ctx.clone();
    read(move || {
        let filter = ProspectFilter {
            stage: p.stage,
            owner: p.owner,
            status: p.status,
            after: p.after,
            limit,
        };
        let prospects = ctx.store.prospects(&filter)?;
        let next = (prospects.len() == limit)
            .then(|| prospects.last().map(|p| p.id))
            .flatten();
        Ok(json!(ProspectPage { prospects, next }))
    })
}
