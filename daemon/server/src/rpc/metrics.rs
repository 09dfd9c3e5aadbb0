//! `metrics.*`: flow, time in stage, conversion, outcomes, stalled
//! prospects, and comparisons, per period, owner and process version.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::engine::ActiveProcess;
use stagecoach_core::metrics::{self, Filter};
use stagecoach_core::stats;
use stagecoach_core::store::{ProspectFilter, Store};
use stagecoach_types::api::params::{
    ConversionPeriod, MetricsCompare, MetricsConformance, MetricsCriteria, MetricsOwners,
    MetricsStalled, MetricsTrends, OutcomesPeriod, Period, StalledSort,
};
use stagecoach_types::api::results::{
    Compare, CompareDelta, CompareRow, CompareSide, CompareWinRate, ComparedPeriod, Flow, Measured,
    Outcomes, RowSignificance, Stalled, StalledProspect, TimeInStage, TimeInStageRow,
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

/// The stages a period's figures list ([`metrics::period_stages`]): every
/// one that held prospects in [from, to), removed ones too; with `stage`,
/// that one only (a removed stage's id, or a renamed stage's old id, works).
fn stages_of(
    txn: &stagecoach_core::store::ReadTxn,
    active: &ActiveProcess,
    stage: &Option<String>,
    (from, to): (Millis, Millis),
    now: Millis,
    owner: &Option<String>,
) -> Result<Vec<metrics::PeriodStage>, ReadError> {
    let filter = Filter {
        owner: owner.clone(),
    };
    let all = metrics::period_stages(txn, &active.process, from, to, now, &filter)?;
    let Some(want) = stage else {
        return Ok(all);
    };
    match all
        .into_iter()
        .find(|s| s.id == *want || s.label.formerly.contains(want))
    {
        Some(s) => Ok(vec![s]),
        None if active.process.stage(want).is_none() => Err(ReadError::Rpc(
            stagecoach_core::engine::unknown_stage(&active.process, want).into(),
        )),
        None => unreachable!("every stage of the process is listed"),
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
    txn: &stagecoach_core::store::ReadTxn,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<(Flow, Vec<metrics::PeriodStage>), ReadError> {
    let (from, to) = version_window(store, p)?;
    let stages = stages_of(txn, active, &p.stage, (from, to), now, &p.owner)?;
    let filter = Filter {
        owner: p.owner.clone(),
    };
    let ids: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
    let mut rows = metrics::flow(txn, &ids, from, to, now, &filter)?;
    for (row, s) in rows.iter_mut().zip(&stages) {
        row.label = s.label.clone();
    }
    let mut note = String::from("periods are whole UTC days; end = start + entered − exited");
    if let Some(v) = p.version {
        note.push_str(&format!(
            "; narrowed to when version {v} was in force: {from} → {to}"
        ));
        if from.0.div_euclid(Millis::DAY) >= to.0.div_euclid(Millis::DAY) {
            note.push_str(", less than one whole UTC day, so every count is 0: leave out `version` or give a period it spans");
        }
    }
    Ok((
        Flow {
            from,
            to,
            owner: p.owner.clone(),
            version: p.version,
            note,
            rows,
        },
        stages,
    ))
}

pub(super) fn flow(ctx: &Arc<Ctx>, p: Period) -> Reply {
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let txn = ctx.store.read_txn()?;
        Ok(json!(flow_of(&ctx.store, &txn, &active, &p, now)?.0))
    })
}

fn time_in_stage_of(
    store: &Store,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<TimeInStage, ReadError> {
    let (from, to) = version_window(store, p)?;
    let txn = store.read_txn()?;
    let stages = stages_of(&txn, active, &p.stage, (from, to), now, &p.owner)?;
    let filter = Filter {
        owner: p.owner.clone(),
    };
    let mut rows = Vec::new();
    for metrics::PeriodStage {
        id: stage, label, ..
    } in stages
    {
        let completed = metrics::time_in_stage(&txn, &stage, from, to, &filter)?;
        rows.push(TimeInStageRow {
            open_ages: metrics::open_ages(&txn, &stage, now, &filter)?,
            stage,
            label,
            completed,
        });
    }
    Ok(TimeInStage {
        from,
        to,
        owner: p.owner.clone(),
        rows,
        note: "completed: stays that ended in the period; open_ages: current stays, as of now"
            .into(),
    })
}

pub(super) fn time_in_stage(ctx: &Arc<Ctx>, p: Period) -> Reply {
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || Ok(json!(time_in_stage_of(&ctx.store, &active, &p, now)?)))
}

fn conversion_of(
    store: &Store,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<metrics::ConversionAnswer, ReadError> {
    let (from, to) = version_window(store, p)?;
    let snap = store.snapshot()?;
    let stages = stages_of(snap.txn(), active, &None, (from, to), now, &p.owner)?;
    Ok(metrics::conversion(
        &snap,
        &stages,
        from,
        to,
        p.owner.clone(),
    )?)
}

fn outcomes_of(
    store: &Store,
    active: &ActiveProcess,
    (from, to): (Millis, Millis),
    owner: Option<String>,
    amount_field: Option<String>,
) -> Result<Outcomes, ReadError> {
    let snap = store.snapshot()?;
    Ok(metrics::summarize_outcomes(
        &snap,
        &active.process,
        from,
        to,
        owner,
        amount_field,
    )?)
}

/// The figures of one period, in the shapes `metrics.*` answer: for
/// `process.simulate`, once on the live store and once on the replay.
pub(super) fn measure(
    store: &Store,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<Measured, ReadError> {
    let txn = store.read_txn()?;
    let (flow, _) = flow_of(store, &txn, active, p, now)?;
    // Conversion and outcomes each walk many prospects' records; the
    // replay's scratch store is measured after it, on an idle machine.
    let (conversion, outcomes) = std::thread::scope(|s| {
        let outcomes =
            s.spawn(|| outcomes_of(store, active, (flow.from, flow.to), p.owner.clone(), None));
        let conversion = conversion_of(store, active, p, now);
        (conversion, super::joined(outcomes, "the outcomes"))
    });
    Ok(Measured {
        time_in_stage: time_in_stage_of(store, active, p, now)?,
        conversion: conversion?,
        outcomes: outcomes?,
        flow,
    })
}

pub(super) fn conversion(ctx: &Arc<Ctx>, p: ConversionPeriod) -> Reply {
    let p = Period::from(p);
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || Ok(json!(conversion_of(&ctx.store, &active, &p, now)?)))
}

pub(super) fn outcomes(ctx: &Arc<Ctx>, p: OutcomesPeriod) -> Reply {
    if p.to <= p.from {
        return ready(Err(RpcError::params("`to` must be after `from`")));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    read(move || {
        Ok(json!(outcomes_of(
            &ctx.store,
            &active,
            (p.from, p.to),
            p.owner.clone(),
            p.amount_field.clone()
        )?))
    })
}

/// A query of one snapshot over [from, to), refused unless `to` is after
/// `from`: `f` gets the snapshot, the process in force and now.
fn over_period<T: serde::Serialize>(
    ctx: &Arc<Ctx>,
    (from, to): (Millis, Millis),
    f: impl FnOnce(
        &stagecoach_core::store::Snapshot,
        &ActiveProcess,
        Millis,
    ) -> Result<T, stagecoach_core::store::StoreError>
    + Send
    + 'static,
) -> Reply {
    if to <= from {
        return ready(Err(RpcError::params("`to` must be after `from`")));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let snap = ctx.store.snapshot()?;
        Ok(json!(f(&snap, &active, now)?))
    })
}

pub(super) fn owners(ctx: &Arc<Ctx>, p: MetricsOwners) -> Reply {
    over_period(ctx, (p.from, p.to), move |snap, active, now| {
        metrics::owners(snap, &active.process, p.from, p.to, now)
    })
}

pub(super) fn criteria(ctx: &Arc<Ctx>, p: MetricsCriteria) -> Reply {
    over_period(ctx, (p.from, p.to), move |snap, active, _| {
        metrics::criteria(snap, active, p.from, p.to)
    })
}

pub(super) fn conformance(ctx: &Arc<Ctx>, p: MetricsConformance) -> Reply {
    over_period(ctx, (p.from, p.to), move |snap, active, _| {
        metrics::conformance(snap, &active.process, p.from, p.to)
    })
}

/// Most months a trend spans.
const MAX_TREND_MONTHS: u32 = 120;

pub(super) fn trends(ctx: &Arc<Ctx>, p: MetricsTrends) -> Reply {
    if !(1..=MAX_TREND_MONTHS).contains(&p.months) {
        return ready(Err(RpcError::params(format!(
            "`months` must be between 1 and {MAX_TREND_MONTHS}"
        ))));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let months = p.to.unwrap_or(now).months_ending(p.months - 1);
        let snap = ctx.store.snapshot()?;
        Ok(json!(metrics::trends(
            &snap,
            &active.process,
            &months,
            now,
            p.owner.clone()
        )?))
    })
}

pub(super) fn stalled(ctx: &Arc<Ctx>, p: MetricsStalled) -> Reply {
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let stages: Vec<String> = match &p.stage {
            Some(s) if active.process.stage(s).is_none() => {
                return Err(ReadError::Rpc(
                    stagecoach_core::engine::unknown_stage(&active.process, s).into(),
                ));
            }
            Some(s) => vec![s.clone()],
            None => active.process.stages.iter().map(|s| s.id.clone()).collect(),
        };
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
                        amount: x
                            .fields
                            .get(&active.process.money.amount_field)
                            .and_then(|v| v.as_number()),
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
        match p.sort.unwrap_or_default() {
            StalledSort::Idle => {
                out.sort_by(|a, b| b.idle_days.cmp(&a.idle_days).then(a.id.cmp(&b.id)))
            }
            StalledSort::Value => out.sort_by(|a, b| {
                b.amount
                    .unwrap_or(0.0)
                    .total_cmp(&a.amount.unwrap_or(0.0))
                    .then(a.id.cmp(&b.id))
            }),
        }
        let total = out.len() as u64;
        let total_amount = out.iter().filter_map(|x| x.amount).sum::<f64>() + 0.0;
        if let Some(limit) = p.limit {
            out.truncate(limit);
        }
        Ok(json!(Stalled {
            as_of: now,
            stalled: out,
            total,
            total_amount,
            currency: active.process.money.currency.clone(),
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
        let txn = ctx.store.read_txn()?;
        let (a, stages_a) = flow_of(&ctx.store, &txn, &active, &p.a, now)?;
        let (b, stages_b) = flow_of(&ctx.store, &txn, &active, &p.b, now)?;
        // Both sides' stages: b's order, with a stage only a had after the
        // stage before it there.
        let mut stages = stages_b.clone();
        for (i, s) in stages_a.iter().enumerate() {
            if stages.iter().any(|x| x.id == s.id) {
                continue;
            }
            let at = i
                .checked_sub(1)
                .and_then(|j| stages.iter().position(|x| x.id == stages_a[j].id))
                .map_or(0, |k| k + 1);
            stages.insert(at, s.clone());
        }
        let ids: Vec<String> = stages.iter().map(|s| s.id.clone()).collect();
        let side_rows =
            |period: &Period, flow: &Flow| -> Result<Vec<metrics::FlowRow>, ReadError> {
                let filter = Filter {
                    owner: period.owner.clone(),
                };
                let mut rows = metrics::flow(&txn, &ids, flow.from, flow.to, now, &filter)?;
                for (row, s) in rows.iter_mut().zip(&stages) {
                    row.label = s.label.clone();
                }
                Ok(rows)
            };
        let rows_a = side_rows(&p.a, &a)?;
        let rows_b = side_rows(&p.b, &b)?;
        let stays = |period: &Period, flow: &Flow, stage: &str| -> Result<Vec<i64>, ReadError> {
            let filter = Filter {
                owner: period.owner.clone(),
            };
            Ok(metrics::completed_stays(
                &txn, stage, flow.from, flow.to, &filter,
            )?)
        };
        let mut rows = Vec::new();
        for ((ra, rb), s) in rows_a.into_iter().zip(rows_b).zip(&stages) {
            let side = |r: metrics::FlowRow, stays: &[i64]| -> (CompareSide, u64, u64) {
                let (moved_on, exits, _, rate) =
                    metrics::direct_conversion(&r.exited_by_kind, &s.next);
                (
                    CompareSide {
                        time_in_stage: metrics::durations(stays.to_vec()),
                        advance_rate: rate,
                        moved_on,
                        flow: r,
                    },
                    moved_on,
                    exits,
                )
            };
            let delta = CompareDelta {
                entered: rb.entered - ra.entered,
                exited: rb.exited - ra.exited,
            };
            let (stays_a, stays_b) = (stays(&p.a, &a, &s.id)?, stays(&p.b, &b, &s.id)?);
            let (side_a, ka, na) = side(ra, &stays_a);
            let (side_b, kb, nb) = side(rb, &stays_b);
            rows.push(CompareRow {
                stage: s.id.clone(),
                a: side_a,
                b: side_b,
                delta,
                significance: Some(RowSignificance {
                    conversion: stats::compare_rates(ka, na, kb, nb),
                    time_in_stage: stats::compare_durations(&stays_a, &stays_b),
                }),
            });
        }
        let closed = |flow: &Flow, period: &Period| -> Result<(u64, u64), ReadError> {
            let c = metrics::outcomes(
                &txn,
                flow.from,
                flow.to,
                &Filter {
                    owner: period.owner.clone(),
                },
            )?;
            let won = c.iter().filter(|x| x.won).count() as u64;
            Ok((won, c.len() as u64 - won))
        };
        let (wa, wb) = (closed(&a, &p.a)?, closed(&b, &p.b)?);
        let win_rate = CompareWinRate {
            a: wa,
            b: wb,
            significance: stats::compare_rates(wa.0, wa.0 + wa.1, wb.0, wb.0 + wb.1),
        };
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
            win_rate: Some(win_rate),
        }))
    })
}
