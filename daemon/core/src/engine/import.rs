//! `prospect.import`: one prospect and its history from another system,
//! written in one operation.
//!
//! The source's facts win over the replay:
//! - **Outcomes are facts.** A deal the source has as won is won at its
//!   close date, lost is lost at its lost date with its reason, open stays
//!   open. An automatic cascade during the replay never closes a prospect
//!   won; only the source's outcome does.
//! - **Where the source has stage history** (dated moves), the prospect's
//!   transitions are those moves, marked [`Transition::imported`], and the
//!   activities come in at their own times without criteria being applied
//!   to what the source already decided.
//! - **Without stage history**, activities are replayed in time order and
//!   the exit criteria move the prospect as if the history had happened
//!   here. A won outcome whose last-stage criteria the replay does not meet
//!   is recorded anyway, marked imported, with the criteria that were unmet.
//!
//! The operation is idempotent by external id: run again (a newer export),
//! it adds the activities not yet present (same kind and time), the moves
//! after the prospect's current stay, and the outcome if it is still open.

use std::collections::HashSet;

use serde_json::Value;

use super::{
    ActiveProcess, Answer, Applied, EngineError, cascade_to, evaluate, moved_events, save,
    transition, unknown_stage,
};
use crate::criteria::all_met;
use crate::store::{StoreError, Tables};
use stagecoach_types::model::{
    Activity, Actor, Millis, Prospect, Status, Transition, TransitionKind, Verdict,
};

pub use stagecoach_types::api::params::{
    ImportActivity, ImportMove, ImportOutcome, ImportProspect,
};
use stagecoach_types::api::results::{Difference, Imported, Unearned};

/// Applies one `prospect.import`.
pub(crate) fn apply(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    p: &ImportProspect,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let process = &active.process;
    // Check everything the client can get wrong before writing anything.
    if p.name.trim().is_empty() {
        refuse!(EngineError::Invalid("`name` must not be empty".into()));
    }
    if p.external_id.trim().is_empty() {
        refuse!(EngineError::Invalid(
            "`external_id` must not be empty".into()
        ));
    }
    for m in &p.history {
        if m.to != "won" && m.to != "lost" && process.stage(&m.to).is_none() {
            refuse!(unknown_stage(process, &m.to));
        }
    }
    if let Some(s) = &p.source_stage
        && process.stage(s).is_none()
    {
        refuse!(unknown_stage(process, s));
    }
    if p.outcome.as_ref().is_some_and(|o| o.status == Status::Open) {
        refuse!(EngineError::Invalid(
            "`outcome.status` must be `won` or `lost`".into()
        ));
    }
    if p.activities.iter().any(|a| a.kind.trim().is_empty()) {
        refuse!(EngineError::Invalid(
            "an activity `kind` must not be empty".into()
        ));
    }

    let mut moves: Vec<Transition> = Vec::new();
    let (old, mut prospect, known) = match t.prospect_by_external_id(&p.external_id)? {
        Some(id) => {
            let Some(old) = t.prospect(id)? else {
                return Err(StoreError::Corrupt {
                    what: "external id",
                    key: p.external_id.clone(),
                    message: format!("names prospect {id}, which is missing"),
                });
            };
            let known: HashSet<(String, i64)> = t
                .activities(id)?
                .into_iter()
                .map(|a| (a.kind, a.at.0))
                .collect();
            (Some(old.clone()), old, known)
        }
        None => {
            let first = p
                .history
                .iter()
                .min_by_key(|m| m.at)
                .filter(|m| process.stage(&m.to).is_some())
                .map(|m| m.to.clone())
                .or_else(|| p.created_in.clone().filter(|s| process.stage(s).is_some()))
                .unwrap_or_else(|| process.first_stage().id.clone());
            let id = t.ids.prospect;
            t.ids.prospect += 1;
            t.fresh_prospect(id)?;
            let at = p.created_at;
            let prospect = Prospect {
                id,
                external_id: Some(p.external_id.clone()),
                name: p.name.clone(),
                company: p.company.clone(),
                owner: p.owner.clone(),
                fields: p.fields.clone(),
                stage: first.clone(),
                status: Status::Open,
                created_at: at,
                stage_entered_at: at,
                last_activity_at: at,
                closed_at: None,
                owner_since: None,
            };
            moves.push(transition(
                t,
                active,
                &prospect,
                None,
                &first,
                at,
                TransitionKind::Created,
            ));
            (None, prospect, HashSet::new())
        }
    };
    let created = old.is_none();
    // Owner changes (a Stagecoach export's `fields_updated` activities)
    // split the history: what came before is saved under the old owner.
    let mut segment = Segment {
        old: old.clone(),
        saved: 0,
    };

    // Activities not yet present, in time order.
    let mut activities: Vec<&ImportActivity> = p
        .activities
        .iter()
        .filter(|a| !known.contains(&(a.kind.clone(), a.at.0)))
        .collect();
    activities.sort_by_key(|a| a.at);
    let present = p.activities.len() - activities.len();

    let mut unearned: Option<Unearned> = None;
    let mut difference: Option<Difference> = None;
    let mut forced = false;
    if !p.history.is_empty() {
        // The source decided the moves: write them as it dated them, with
        // the activities in between in time order (an owner change takes
        // effect at its own time; at the same instant, moves go first).
        let mut history: Vec<&ImportMove> = p.history.iter().collect();
        // Stable: moves at the same time keep their order.
        history.sort_by_key(|m| m.at);
        // The first entry, when it is a stage, is where the deal was created.
        let skip_first = usize::from(
            created
                && history
                    .first()
                    .is_some_and(|m| process.stage(&m.to).is_some()),
        );
        let mut pending_moves = history.into_iter().skip(skip_first).peekable();
        let mut pending_activities = activities.iter().peekable();
        loop {
            let move_first = match (pending_moves.peek(), pending_activities.peek()) {
                (Some(m), Some(a)) => m.at <= a.at,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if !move_first {
                let a = pending_activities.next().expect("peeked");
                owner_change(t, &mut segment, &mut prospect, &moves, a)?;
                insert(t, active, &mut prospect, a)?;
                continue;
            }
            let m = pending_moves.next().expect("peeked");
            if prospect.status != Status::Open || m.to == prospect.stage {
                continue;
            }
            if !created && m.at < prospect.stage_entered_at {
                continue;
            }
            moves.push(dated_move(t, active, &mut prospect, m));
        }
        if let Some(o) = &p.outcome
            && prospect.status == Status::Open
        {
            let m = ImportMove {
                to: o.status.as_str().to_string(),
                at: o.at,
                kind: None,
                reason: o.reason.clone(),
                by: None,
                imported: true,
            };
            moves.push(dated_move(t, active, &mut prospect, &m));
        }
    } else {
        // Replay: the criteria move it, up to the last stage; the source's
        // outcome closes it at its own time.
        if created {
            let at = prospect.created_at;
            moves.extend(cascade_to(t, active, &mut prospect, at, None, false)?);
        }
        // When the close comes in the replay: a close known only by its day
        // comes after that day's activities.
        let close_at = p.outcome.as_ref().map(|o| {
            if o.whole_day {
                Millis(o.at.0 + Millis::DAY - 1)
            } else {
                o.at
            }
        });
        let mut pending = activities.into_iter().peekable();
        let mut forced_moves: Vec<&ImportMove> = p.forced_moves.iter().collect();
        forced_moves.sort_by_key(|m| m.at);
        let mut pending_forced = forced_moves.into_iter().peekable();
        loop {
            let next_at = pending.peek().map(|a| a.at);
            // A forced move as recorded, before activities at its instant.
            if let Some(m) = pending_forced.peek()
                && next_at.is_none_or(|n| m.at <= n)
                && close_at.is_none_or(|c| m.at <= c)
            {
                let m = pending_forced.next().expect("peeked");
                if prospect.status == Status::Open
                    && m.to != prospect.stage
                    && process.stage(&m.to).is_some()
                {
                    // As `prospect.move`: the prospect stays where it was
                    // put until its next activity.
                    moves.push(dated_move(t, active, &mut prospect, m));
                }
                continue;
            }
            let close_now = prospect.status == Status::Open
                && close_at.is_some_and(|c| next_at.is_none_or(|n| c < n));
            if close_now {
                let o = p
                    .outcome
                    .as_ref()
                    .expect("a close time comes from an outcome");
                let (m, u) = close(t, active, &mut prospect, o)?;
                unearned = u;
                moves.push(m);
                continue;
            }
            let Some(a) = pending.next() else { break };
            owner_change(t, &mut segment, &mut prospect, &moves, a)?;
            field_change(&mut prospect, a);
            let id = insert(t, active, &mut prospect, a)?;
            if prospect.status == Status::Open {
                moves.extend(cascade_to(t, active, &mut prospect, a.at, Some(id), false)?);
            }
        }
        if let (Some(o), Status::Open) = (&p.outcome, prospect.status) {
            // Already past its close time when this run began (a re-run).
            let (m, u) = close(t, active, &mut prospect, o)?;
            unearned = u;
            moves.push(m);
        }
        if prospect.status == Status::Open
            && let Some(source) = &p.source_stage
            && *source != prospect.stage
        {
            if p.trust_source_stage {
                let at = prospect.last_activity_at.max(prospect.earliest_move());
                let m = ImportMove {
                    to: source.clone(),
                    at,
                    kind: Some(TransitionKind::Forced),
                    reason: Some(format!(
                        "imported: `{source}` in the source system; the recorded activities do not meet the exit criteria in between"
                    )),
                    by: Some("import".into()),
                    imported: true,
                };
                moves.push(dated_move(t, active, &mut prospect, &m));
                forced = true;
            } else {
                difference = Some(Difference {
                    source: source.clone(),
                    here: prospect.stage.clone(),
                    reason: "the recorded activities do not meet the exit criteria in between (--trust-source-stage moves it there, as a forced move marked imported)".into(),
                });
            }
        }
    }

    t.end_fresh()?;
    let at = moves.last().map_or(prospect.last_activity_at, |m| m.at);
    save(
        t,
        segment.old.as_ref(),
        &prospect,
        &moves[segment.saved..],
        at,
    )?;
    // Nobody listens to a replay's scratch store.
    let events = if t.is_scratch() {
        Vec::new()
    } else {
        moved_events(&prospect, &moves)
    };
    let new_moves = moves
        .iter()
        .filter(|m| m.kind != TransitionKind::Created)
        .count();
    Ok(Ok((
        Answer::Imported(Imported {
            id: prospect.id,
            created,
            stage: prospect.stage.clone(),
            status: prospect.status,
            activities: (p.activities.len() - present) as u64,
            activities_present: present as u64,
            moves: new_moves as u64,
            imported_moves: moves.iter().filter(|m| m.imported).count() as u64,
            unearned,
            forced,
            difference,
        }),
        events,
    )))
}

/// Where the last save left the prospect: the state it was saved in, and
/// how many moves were saved with it.
struct Segment {
    old: Option<Prospect>,
    saved: usize,
}

/// When `a` records a change of owner (a Stagecoach export's
/// `fields_updated` with `owner`), saves what came before under the old
/// owner and makes the new one the owner from `a`'s time, as
/// `prospect.update` would have.
fn owner_change(
    t: &mut Tables<'_>,
    segment: &mut Segment,
    prospect: &mut Prospect,
    moves: &[Transition],
    a: &ImportActivity,
) -> Result<(), StoreError> {
    if a.kind != stagecoach_types::model::FIELDS_UPDATED {
        return Ok(());
    }
    let Some(owner) = a.data.get("owner").and_then(Value::as_str) else {
        return Ok(());
    };
    if prospect.owner.as_deref() == Some(owner) {
        return Ok(());
    }
    save(
        t,
        segment.old.as_ref(),
        prospect,
        &moves[segment.saved..],
        a.at.max(prospect.earliest_move()),
    )?;
    segment.saved = moves.len();
    segment.old = Some(prospect.clone());
    prospect.owner_since = Some(a.at.max(prospect.earliest_move()));
    prospect.owner = Some(owner.to_string());
    Ok(())
}

/// When `a` records field changes (`fields_updated`: `fields` set,
/// `removed`), applies them at its time, so criteria on fields see the
/// values as they were then.
fn field_change(prospect: &mut Prospect, a: &ImportActivity) {
    if a.kind != stagecoach_types::model::FIELDS_UPDATED {
        return;
    }
    if let Some(set) = a.data.get("fields").and_then(Value::as_object) {
        for (k, v) in set {
            if let Ok(v) = serde_json::from_value(v.clone()) {
                prospect.fields.insert(k.clone(), v);
            }
        }
    }
    if let Some(removed) = a.data.get("removed").and_then(Value::as_array) {
        for k in removed.iter().filter_map(Value::as_str) {
            prospect.fields.remove(k);
        }
    }
}

/// Records one activity (no criteria applied here) and returns its id.
fn insert(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    a: &ImportActivity,
) -> Result<u64, StoreError> {
    let actor = a.actor.unwrap_or_else(|| {
        active
            .process
            .activities
            .get(&a.kind)
            .and_then(|k| k.actor)
            .unwrap_or(Actor::Rep)
    });
    let id = t.ids.activity;
    t.ids.activity += 1;
    t.add_activity(Activity {
        id,
        prospect: prospect.id,
        kind: a.kind.clone(),
        actor,
        at: a.at,
        data: a.data.clone(),
    })?;
    prospect.last_activity_at = prospect.last_activity_at.max(a.at);
    Ok(id)
}

/// A move as the source dated it (never before the current stay began).
fn dated_move(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    m: &ImportMove,
) -> Transition {
    let stages = &active.process.stages;
    let at = m.at.max(prospect.earliest_move());
    let from = prospect.stage.clone();
    let kind = m.kind.unwrap_or_else(|| match m.to.as_str() {
        "won" => TransitionKind::Won,
        "lost" => TransitionKind::Lost,
        to => {
            let (i, j) = (
                active.process.stage_index(&from).unwrap_or(0),
                stages.iter().position(|s| s.id == to).unwrap_or(0),
            );
            if j == i + 1 {
                TransitionKind::Advanced
            } else if j > i {
                TransitionKind::Skipped
            } else {
                TransitionKind::Regressed
            }
        }
    });
    let mut tr = transition(t, active, prospect, Some(&from), &m.to, at, kind);
    tr.reason = m.reason.clone();
    tr.by = m.by.clone();
    tr.imported = m.imported;
    match m.to.as_str() {
        "won" => {
            prospect.status = Status::Won;
            prospect.closed_at = Some(at);
        }
        "lost" => {
            prospect.status = Status::Lost;
            prospect.closed_at = Some(at);
        }
        to => {
            prospect.stage = to.to_string();
            prospect.stage_entered_at = at;
        }
    }
    tr
}

/// Closes the prospect as the source says. A won close is earned when the
/// prospect is in the last stage and meets its criteria at the close time;
/// otherwise it is recorded anyway, marked imported, with what was unmet.
fn close(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    o: &ImportOutcome,
) -> Result<(Transition, Option<Unearned>), StoreError> {
    let at = o.at.max(prospect.earliest_move());
    if o.status == Status::Lost {
        let m = ImportMove {
            to: "lost".into(),
            at,
            kind: Some(TransitionKind::Lost),
            reason: Some(
                o.reason
                    .clone()
                    .unwrap_or_else(|| "lost in the source system".into()),
            ),
            by: None,
            // The source closed it, not a person under this process
            // (unless a replay says a person here did).
            imported: o.imported.unwrap_or(true),
        };
        return Ok((dated_move(t, active, prospect, &m), None));
    }
    let stages = &active.process.stages;
    let last = stages.last().expect("a process has stages");
    let verdicts = if prospect.stage == last.id {
        evaluate(t, active, prospect, last, at, false)?.verdicts
    } else {
        Vec::new()
    };
    let earned = prospect.stage == last.id && all_met(&verdicts);
    let unearned = (!earned).then(|| Unearned {
        stage: prospect.stage.clone(),
        unmet: if prospect.stage == last.id {
            verdicts
                .iter()
                .filter(|v| !v.met && !v.warn)
                .cloned()
                .collect()
        } else {
            vec![Verdict {
                question: format!("Did the prospect reach the last stage, `{}`?", last.id),
                met: false,
                reason: format!("the replayed activities left it in `{}`", prospect.stage),
                warn: false,
            }]
        },
    });
    let m = ImportMove {
        to: "won".into(),
        at,
        kind: Some(TransitionKind::Won),
        reason: (!earned).then(|| {
            format!(
                "imported: won in the source system; not earned under this process (from `{}`)",
                prospect.stage
            )
        }),
        by: None,
        imported: !earned,
    };
    let mut tr = dated_move(t, active, prospect, &m);
    if earned {
        tr.verdicts = verdicts;
    }
    Ok((tr, unearned))
}
