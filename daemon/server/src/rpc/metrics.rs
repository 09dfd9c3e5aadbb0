//! `metrics.*`: flow, time in stage, conversion, outcomes, stalled
//! prospects, and comparisons, per period, owner and process version.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::engine::ActiveProcess;
use stagecoach_core::metrics::{self, Filter};
use stagecoach_core::store::{ProspectFilter, Store};
use stagecoach_types::api::params::{
    ConversionPeriod, MetricsCompare, MetricsStalled, OutcomesPeriod, Period,
};
use stagecoach_types::api::results::{
    Compare, CompareDelta, CompareRow, CompareSide, ComparedPeriod, Flow, Stalled, StalledProspect,
    TimeInStage, TimeInStageRow,
};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::RpcError;

/// Most prospects a metrics query reads one by one (stalled, open ages).
use metrics::MAX_SCAN;

fn check(p: &Period) -> Result<(), RpcError> {
    if p.to <= p.from {
        return Err(RpcError::params(format!(
            "`to` ({}) must be after `from` ({})",
            p.to, p.from
        )));
    }
    Ok(())
}

fn stages(active: &ActiveProcess, stage: &Option<String>) -> Result<Vec<String>, RpcError> {
    match stage {
        Some(s) if active.process.stage(s).is_none() => {
            Err(stagecoach_core::engine::unknown_stage(&active.process, s).into())
        }
        Some(s) => Ok(vec![s.clone()]),
        None => Ok(active.process.stages.iter().map(|s| s.id.clone()).collect()),
    }
}

/// Narrows [from, to) to when `version` was in force.
fn version_window(store: &Store, p: &Period) -> Result<(Millis, Millis), ReadError> {
    let Some(v) = p.version else {
        return Ok((p.from, p.to));
    };
    let windows = store.version_windows()?;
    let Some((_, start, end)) = windows.into_iter().find(|(x, _, _)| x.number == v) else {
        return Err(ReadError::Rpc(RpcError::no_version(v)));
    };
    let end = end.unwrap_or(Millis(i64::MAX / 4));
    Ok((p.from.max(start), p.to.min(end).max(p.from.max(start))))
}

fn flow_of(
    store: &Store,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<Flow, ReadError> {
    let stages = stages(active, &p.stage)?;
    let (from, to) = version_window(store, p)?;
    let txn = store.read_txn()?;
    let filter = Filter {
        owner: p.owner.clone(),
    };
    let rows = metrics::flow(&txn, &stages, from, to, now, &filter)?;
    Ok(Flow {
        from,
        to,
        owner: p.owner.clone(),
        version: p.version,
        note: "periods are whole UTC days; end = start + entered − exited".into(),
        rows,
    })
}

pub(super) fn flow(ctx: &Arc<Ctx>, p: Period) -> Reply {
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || Ok(json!(flow_of(&ctx.store, &active, &p, now)?)))
}

pub(super) fn time_in_stage(ctx: &Arc<Ctx>, p: Period) -> Reply {
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let stages = stages(&active, &p.stage)?;
        let (from, to) = version_window(&ctx.store, &p)?;
        let txn = ctx.store.read_txn()?;
        let filter = Filter {
            owner: p.owner.clone(),
        };
        let mut rows = Vec::new();
        for stage in stages {
            let completed =
                metrics::durations(metrics::completed_stays(&txn, &stage, from, to, &filter)?);
            let open: Vec<i64> = ctx
                .store
                .prospects(&ProspectFilter {
                    stage: Some(stage.clone()),
                    owner: p.owner.clone(),
                    limit: MAX_SCAN,
                    ..Default::default()
                })?
                .iter()
                .map(|x| (now.0 - x.stage_entered_at.0).max(0))
                .collect();
            rows.push(TimeInStageRow {
                stage,
                completed,
                open_ages: metrics::durations(open),
            });
        }
        Ok(json!(TimeInStage {
            from,
            to,
            owner: p.owner.clone(),
            rows,
            note: "completed: stays that ended in the period; open_ages: current stays, as of now"
                .into(),
        }))
    })
}

pub(super) fn conversion(ctx: &Arc<Ctx>, p: ConversionPeriod) -> Reply {
    let p = Period::from(p);
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    read(move || {
        let (from, to) = version_window(&ctx.store, &p)?;
        let stages: Vec<String> = active.process.stages.iter().map(|s| s.id.clone()).collect();
        let snap = ctx.store.snapshot()?;
        let c = metrics::conversion(&snap, &stages, from, to, p.owner.clone())?;
        Ok(json!(c))
    })
}

pub(super) fn outcomes(ctx: &Arc<Ctx>, p: OutcomesPeriod) -> Reply {
    if p.to <= p.from {
        return ready(Err(RpcError::params("`to` must be after `from`")));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    read(move || {
        let field = p.amount_field.clone().unwrap_or_else(|| "amount".into());
        let snap = ctx.store.snapshot()?;
        let o = metrics::summarize_outcomes(
            &snap,
            &active.process,
            p.from,
            p.to,
            p.owner.clone(),
            field,
        )?;
        Ok(json!(o))
    })
}

pub(super) fn stalled(ctx: &Arc<Ctx>, p: MetricsStalled) -> Reply {
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let stages = stages(&active, &p.stage)?;
        let mut out = Vec::new();
        let mut by_owner: BTreeMap<String, u64> = BTreeMap::new();
        for id in stages {
            let stage = active.process.stage(&id).expect("a stage of the process");
            let Some(days) = stage.stall_after_days else {
                continue;
            };
            let cutoff = Millis(now.0 - i64::from(days) * Millis::DAY);
            for x in ctx.store.prospects(&ProspectFilter {
                stage: Some(id.clone()),
                owner: p.owner.clone(),
                limit: MAX_SCAN,
                ..Default::default()
            })? {
                if x.last_activity_at < cutoff {
                    *by_owner
                        .entry(x.owner.clone().unwrap_or_default())
                        .or_default() += 1;
                    out.push(StalledProspect {
                        idle_days: (now.0 - x.last_activity_at.0) / Millis::DAY,
                        id: x.id,
                        name: x.name,
                        owner: x.owner,
                        stage: x.stage,
                        last_activity_at: x.last_activity_at,
                        stall_after_days: days,
                    });
                }
            }
        }
        Ok(json!(Stalled {
            as_of: now,
            stalled: out,
            by_owner,
            note: "open prospects whose last activity is older than their stage's stall_after_days"
                .into(),
        }))
    })
}

pub(super) fn compare(ctx: &Arc<Ctx>, p: MetricsCompare) -> Reply {
    if let Err(e) = check(&p.a).and_then(|_| check(&p.b)) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let a = flow_of(&ctx.store, &active, &p.a, now)?;
        let b = flow_of(&ctx.store, &active, &p.b, now)?;
        let txn = ctx.store.read_txn()?;
        let stays = |period: &Period, stage: &str| -> Result<metrics::Durations, ReadError> {
            let (from, to) = version_window(&ctx.store, period)?;
            let filter = Filter {
                owner: period.owner.clone(),
            };
            Ok(metrics::durations(metrics::completed_stays(
                &txn, stage, from, to, &filter,
            )?))
        };
        let mut rows = Vec::new();
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            let stage = ra.stage.clone();
            let rate = |r: &metrics::FlowRow| {
                (r.exited > 0).then(|| {
                    r.exited_by_kind.get("advanced").copied().unwrap_or(0) as f64 / r.exited as f64
                })
            };
            rows.push(CompareRow {
                a: CompareSide {
                    flow: ra.clone(),
                    time_in_stage: stays(&p.a, &stage)?,
                    advance_rate: rate(ra),
                },
                b: CompareSide {
                    flow: rb.clone(),
                    time_in_stage: stays(&p.b, &stage)?,
                    advance_rate: rate(rb),
                },
                delta: CompareDelta {
                    entered: rb.entered - ra.entered,
                    exited: rb.exited - ra.exited,
                },
                stage,
            });
        }
        let side = |f: &Flow, q: &Period| ComparedPeriod {
            from: f.from,
            to: f.to,
            version: q.version,
            owner: q.owner.clone(),
        };
        Ok(json!(Compare {
            a: side(&a, &p.a),
            b: side(&b, &p.b),
            rows,
        }))
    })
}
