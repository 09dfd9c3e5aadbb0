//! `metrics.*`: flow, time in stage, conversion, outcomes, stalled
//! prospects, and comparisons, per period, owner and process version.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::engine::ActiveProcess;
use stagecoach_core::metrics::{self, Filter};
use stagecoach_core::store::{ProspectFilter, Store};
use stagecoach_types::api::params::{
    ConversionPeriod, MetricsCompare, MetricsStalled, OutcomesPeriod, Period,
};
use stagecoach_types::model::{Millis, Status};
use stagecoach_types::protocol::{NOT_FOUND, RpcError};

/// Most prospects a metrics query reads one by one (stalled, open ages).
const MAX_SCAN: usize = 1_000_000;

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
        return Err(ReadError::Rpc(
            RpcError::new(NOT_FOUND, format!("no process version {v}"))
                .with_data(serde_json::json!({ "version": v })),
        ));
    };
    let end = end.unwrap_or(Millis(i64::MAX / 4));
    Ok((p.from.max(start), p.to.min(end).max(p.from.max(start))))
}

fn flow_json(
    store: &Store,
    active: &ActiveProcess,
    p: &Period,
    now: Millis,
) -> Result<Value, ReadError> {
    let stages = stages(active, &p.stage)?;
    let (from, to) = version_window(store, p)?;
    let txn = store.read_txn()?;
    let filter = Filter {
        owner: p.owner.clone(),
    };
    let rows = metrics::flow(&txn, &stages, from, to, now, &filter)?;
    Ok(json!({
        "from": from, "to": to, "owner": p.owner, "version": p.version,
        "note": "periods are whole UTC days; end = start + entered − exited",
        "rows": rows,
    }))
}

pub(super) fn flow(ctx: &Arc<Ctx>, p: Period) -> Reply {
    if let Err(e) = check(&p) {
        return ready(Err(e));
    }
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || flow_json(&ctx.store, &active, &p, now))
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
            rows.push(json!({ "stage": stage, "completed": completed, "open_ages": metrics::durations(open) }));
        }
        Ok(
            json!({ "from": from, "to": to, "owner": p.owner, "rows": rows,
                   "note": "completed: stays that ended in the period; open_ages: current stays, as of now" }),
        )
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
        let txn = ctx.store.read_txn()?;
        let filter = Filter {
            owner: p.owner.clone(),
        };
        let ids: Vec<String> = active.process.stages.iter().map(|s| s.id.clone()).collect();
        let mut direct = Vec::new();
        for (i, stage) in ids.iter().enumerate() {
            let exits = metrics::exits_by_kind(&txn, stage, from, to, &filter)?;
            let all: i64 = exits.values().sum();
            let onward = if i + 1 == ids.len() {
                exits["won"]
            } else {
                exits["advanced"]
            };
            let next = ids.get(i + 1).cloned().unwrap_or_else(|| "won".into());
            direct.push(json!({
                "stage": stage, "next": next, "moved_on": onward, "exits": all,
                "rate": (all > 0).then(|| onward as f64 / all as f64),
            }));
        }
        // Reached: the cohort that entered the first stage in the period.
        let first = &ids[0];
        let cohort = metrics::cohort(&txn, first, from, to)?;
        let mut reached: BTreeMap<String, usize> = BTreeMap::new();
        let mut won = 0;
        for id in &cohort {
            let Some(prospect) = ctx.store.prospect(*id)? else {
                continue;
            };
            if p.owner
                .as_ref()
                .is_some_and(|o| prospect.owner.as_ref() != Some(o))
            {
                continue;
            }
            let mut seen = std::collections::BTreeSet::new();
            for t in ctx.store.transitions(*id)? {
                seen.insert(t.to.clone());
            }
            for stage in &ids {
                let names = metrics::stage_ids(&txn, stage)?;
                if names.iter().any(|n| seen.contains(n)) {
                    *reached.entry(stage.clone()).or_default() += 1;
                }
            }
            if prospect.status == Status::Won {
                won += 1;
            }
        }
        let base = reached.get(first).copied().unwrap_or(0);
        let reached_rows: Vec<Value> = ids
            .iter()
            .map(|s| {
                let n = reached.get(s).copied().unwrap_or(0);
                json!({ "stage": s, "reached": n, "share": (base > 0).then(|| n as f64 / base as f64) })
            })
            .chain(std::iter::once(json!({ "stage": "won", "reached": won,
                "share": (base > 0).then(|| won as f64 / base as f64) })))
            .collect();
        Ok(json!({
            "from": from, "to": to, "owner": p.owner,
            "direct": { "label": "direct conversion: moved on to the next stage ÷ all exits from the stage, exits in the period", "rows": direct },
            "reached": { "label": format!("reached: of the {base} prospects that entered `{first}` in the period, how many ever reached each stage"), "cohort": base, "rows": reached_rows },
        }))
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
        let txn = ctx.store.read_txn()?;
        let filter = Filter {
            owner: p.owner.clone(),
        };
        let closed = metrics::outcomes(&txn, p.from, p.to, &filter)?;
        let won: Vec<&(bool, i64, u64)> = closed.iter().filter(|c| c.0).collect();
        let lost = closed.len() - won.len();
        let win_rate = (!closed.is_empty()).then(|| won.len() as f64 / closed.len() as f64);
        let cycle = metrics::durations(won.iter().map(|c| c.1).collect());
        let lost_cycle = metrics::durations(closed.iter().filter(|c| !c.0).map(|c| c.1).collect());
        let mut won_amounts = Vec::new();
        // Outcomes an import recorded as the source had them, without this
        // process's criteria met.
        // A closed prospect's last move is its close.
        let mut imported = [0u64; 2];
        let flags = ctx.store.last_move_imported(closed.iter().map(|c| c.2))?;
        for ((was_won, _, _), flag) in closed.iter().zip(flags) {
            if flag {
                imported[usize::from(*was_won)] += 1;
            }
        }
        for (_, _, id) in &won {
            if let Some(x) = ctx.store.prospect(*id)?
                && let Some(a) = x.fields.get(&field).and_then(|v| v.as_number())
            {
                won_amounts.push(a);
            }
        }
        // `+ 0.0`: an empty sum is -0.0, which prints as such.
        let won_amount: f64 = won_amounts.iter().sum::<f64>() + 0.0;
        let open = ctx.store.prospects(&ProspectFilter {
            owner: p.owner.clone(),
            status: Some(Status::Open),
            limit: MAX_SCAN,
            ..Default::default()
        })?;
        let weighted: f64 = open
            .iter()
            .map(|x| {
                let amount = x
                    .fields
                    .get(&field)
                    .and_then(|v| v.as_number())
                    .unwrap_or(0.0);
                amount
                    * active
                        .process
                        .stage(&x.stage)
                        .and_then(|s| s.probability)
                        .unwrap_or(0.0)
            })
            .sum::<f64>()
            + 0.0;
        let mean_won = (!won_amounts.is_empty())
            .then(|| won_amounts.iter().sum::<f64>() / won_amounts.len() as f64);
        let mean_cycle_days = cycle.mean_days;
        let velocity = match (win_rate, mean_won, mean_cycle_days) {
            (Some(w), Some(a), Some(d)) if d > 0.0 => Some(open.len() as f64 * w * a / d),
            _ => None,
        };
        Ok(json!({
            "from": p.from, "to": p.to, "owner": p.owner, "amount_field": field,
            "won": won.len(), "lost": lost, "win_rate": win_rate,
            "won_imported": imported[1], "lost_imported": imported[0],
            "cycle": cycle, "lost_cycle": lost_cycle, "won_amount": won_amount,
            "open": open.len(), "mean_won_amount": mean_won,
            "velocity_per_day": velocity,
            "weighted_pipeline": weighted,
            "note": "win rate = won ÷ (won + lost) closed in the period; cycle = won at − created at (lost_cycle: lost at − created at); won_imported / lost_imported = outcomes an import recorded as the source had them, not earned under the exit criteria; velocity = open × win rate × mean won amount ÷ mean cycle days; weighted pipeline = Σ amount × stage probability over open prospects now",
        }))
    })
}

pub(super) fn stalled(ctx: &Arc<Ctx>, p: MetricsStalled) -> Reply {
    let ctx = ctx.clone();
    let active = ctx.active();
    let now = ctx.clock.now();
    read(move || {
        let stages = stages(&active, &p.stage)?;
        let mut out = Vec::new();
        let mut by_owner: BTreeMap<String, usize> = BTreeMap::new();
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
                    out.push(json!({
                        "id": x.id, "name": x.name, "owner": x.owner, "stage": x.stage,
                        "last_activity_at": x.last_activity_at,
                        "idle_days": ((now.0 - x.last_activity_at.0) / Millis::DAY),
                        "stall_after_days": days,
                    }));
                }
            }
        }
        Ok(json!({ "as_of": now, "stalled": out, "by_owner": by_owner,
                   "note": "open prospects whose last activity is older than their stage's stall_after_days" }))
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
        let a = flow_json(&ctx.store, &active, &p.a, now)?;
        let b = flow_json(&ctx.store, &active, &p.b, now)?;
        let txn = ctx.store.read_txn()?;
        let stays = |period: &Period, stage: &str| -> Result<Value, ReadError> {
            let (from, to) = version_window(&ctx.store, period)?;
            let filter = Filter {
                owner: period.owner.clone(),
            };
            Ok(json!(metrics::durations(metrics::completed_stays(
                &txn, stage, from, to, &filter
            )?)))
        };
        let mut rows = Vec::new();
        for (ra, rb) in a["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(b["rows"].as_array().into_iter().flatten())
        {
            let stage = ra["stage"].as_str().unwrap_or_default().to_string();
            let rate = |r: &Value| {
                let exited = r["exited"].as_f64().unwrap_or(0.0);
                (exited > 0.0)
                    .then(|| r["exited_by_kind"]["advanced"].as_f64().unwrap_or(0.0) / exited)
            };
            rows.push(json!({
                "stage": stage,
                "a": { "flow": ra, "time_in_stage": stays(&p.a, &stage)?, "advance_rate": rate(ra) },
                "b": { "flow": rb, "time_in_stage": stays(&p.b, &stage)?, "advance_rate": rate(rb) },
                "delta": {
                    "entered": rb["entered"].as_i64().unwrap_or(0) - ra["entered"].as_i64().unwrap_or(0),
                    "exited": rb["exited"].as_i64().unwrap_or(0) - ra["exited"].as_i64().unwrap_or(0),
                },
            }));
        }
        Ok(
            json!({ "a": { "from": a["from"], "to": a["to"], "version": p.a.version, "owner": p.a.owner },
                   "b": { "from": b["from"], "to": b["to"], "version": p.b.version, "owner": p.b.owner },
                   "rows": rows }),
        )
    })
}
