//! Evaluating ahead of the writer.
//!
//! The single writer applies a batch in microseconds per request, but a
//! plugin criterion may take up to its timeout. So before a write that will
//! evaluate plugin criteria is handed to the writer, the same evaluations
//! are run here, on a read snapshot and off the writer's thread, with the
//! request's effect applied in memory. The plugin host keeps each answer by
//! a fingerprint of the input the plugin saw; when the writer evaluates the
//! same input it reuses the answer instead of calling the plugin. If
//! anything the evaluation read changed in between (another write to the
//! prospect), the writer's input differs, and it calls the plugin itself:
//! the answer is always the one for what the writer sees.

use stagecoach_types::model::{Activity, FIELDS_UPDATED, Prospect, ProspectId, Status};

use super::{ActiveProcess, WriteOp, evaluate, leave, new_activity, plan_cascade, updated};
use crate::criteria::{ActivityFacts, all_met};
use crate::process::Check;
use crate::store::{ActivitySource, StoreError};

/// The prospect a write evaluates criteria for, if it evaluates any that
/// evaluating ahead can prepare (creation is not one: the new prospect's
/// id, which plugins see, is the writer's to give).
pub fn prospect_of(op: &WriteOp) -> Option<ProspectId> {
    match op {
        WriteOp::RecordActivity(a) if a.at.is_some() => Some(a.prospect),
        WriteOp::UpdateProspect(u) if u.at.is_some() => Some(u.id),
        WriteOp::Advance { id, .. } => Some(*id),
        WriteOp::Close {
            id,
            outcome: Status::Won,
            ..
        } => Some(*id),
        _ => None,
    }
}

/// Plugins faster than this on average are called by the writer itself:
/// evaluating ahead costs a snapshot, a fingerprint and a thread hop, more
/// than such a call.
pub const AHEAD_ABOVE_MICROS: f64 = 500.0;

/// Whether a prospect in `stage` may reach a plugin criterion by this
/// write: in the stage or any after it (a write can move it on several).
/// With `only_slow`, only plugins whose calls so far took
/// [`AHEAD_ABOVE_MICROS`] or more on average, or that have not been called
/// yet, count.
pub fn reaches_plugins(active: &ActiveProcess, stage: &str, only_slow: bool) -> bool {
    let Some(index) = active.process.stage_index(stage) else {
        return false;
    };
    let slow = |name: &str| {
        active
            .plugins
            .get(name)
            .is_some_and(|p| !only_slow || p.mean_micros().is_none_or(|m| m >= AHEAD_ABOVE_MICROS))
    };
    active.process.stages[index..].iter().any(|s| {
        s.exit.iter().any(|c| match &c.check {
            Check::Plugin { plugin, .. } => slow(plugin),
            Check::Checklist { checklist, .. } => slow(checklist),
            _ => false,
        })
    })
}

/// A source that reads like `base` with one more activity recorded last.
struct WithActivity<'a, S> {
    base: &'a S,
    extra: &'a Activity,
}

impl<S: ActivitySource> ActivitySource for WithActivity<'_, S> {
    fn activity_facts(
        &self,
        prospect: ProspectId,
        kinds: &[&str],
    ) -> Result<ActivityFacts, StoreError> {
        let mut facts = self.base.activity_facts(prospect, kinds)?;
        if prospect == self.extra.prospect && kinds.contains(&self.extra.kind.as_str()) {
            facts.add(&self.extra.kind, self.extra.at, self.extra.actor);
        }
        Ok(facts)
    }

    fn activities(&self, prospect: ProspectId) -> Result<Vec<Activity>, StoreError> {
        let mut all = self.base.activities(prospect)?;
        if prospect == self.extra.prospect {
            all.push(self.extra.clone());
        }
        Ok(all)
    }
}

/// Runs, on `source` (a read snapshot) and for `prospect` as it is there,
/// the evaluations `op` will make in the writer, so that their plugin
/// answers are ready. What it finds is not used otherwise: a refusal or a
/// different outcome is the writer's to decide.
pub fn evaluate_ahead(
    source: &impl ActivitySource,
    active: &ActiveProcess,
    prospect: &Prospect,
    op: &WriteOp,
) -> Result<(), StoreError> {
    if prospect.status != Status::Open {
        return Ok(());
    }
    let mut p = prospect.clone();
    match op {
        WriteOp::RecordActivity(a) => {
            let Some(at) = a.at else { return Ok(()) };
            let activity = new_activity(active, a, 0, at);
            let source = WithActivity {
                base: source,
                extra: &activity,
            };
            plan_cascade(&source, active, &mut p, at, true)?;
        }
        WriteOp::UpdateProspect(u) => {
            let Some(at) = u.at else { return Ok(()) };
            let Ok((mut p, changes)) = updated(prospect, u, at) else {
                return Ok(());
            };
            let activity = Activity {
                id: 0,
                prospect: p.id,
                kind: FIELDS_UPDATED.into(),
                actor: stagecoach_types::model::Actor::Rep,
                at,
                data: changes,
            };
            let source = WithActivity {
                base: source,
                extra: &activity,
            };
            plan_cascade(&source, active, &mut p, at, true)?;
        }
        WriteOp::Advance { at, .. } => {
            let Some(index) = active.process.stage_index(&p.stage) else {
                return Ok(());
            };
            let e = evaluate(
                source,
                active,
                &p,
                &active.process.stages[index],
                *at,
                false,
            )?;
            if all_met(&e.verdicts) {
                leave(active, &mut p, index, e.as_of, e.verdicts);
                plan_cascade(source, active, &mut p, e.as_of, true)?;
            }
        }
        WriteOp::Reevaluate { at, .. } => {
            plan_cascade(source, active, &mut p, *at, true)?;
        }
        WriteOp::Close { at, .. } => {
            let last = active.process.stages.last().expect("a process has stages");
            if p.stage == last.id {
                evaluate(
                    source,
                    active,
                    &p,
                    last,
                    (*at).max(p.earliest_move()),
                    false,
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}
