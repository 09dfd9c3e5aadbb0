//! The engine: every change to prospects, as operations applied inside the
//! writer's transaction.
//!
//! Each operation first checks everything that can make it fail for the
//! client (unknown prospect, unmet criteria, …) and only then writes, so an
//! application error never leaves half a change in the batch. Storage errors
//! abort the whole batch instead.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::criteria::{
    ActivityFacts, activity_kinds, all_met, evaluate_stage_with, needs_activities,
};
use crate::process::{AdvanceMode, Process};
use crate::store::{ActivitySource, StoreError, Tables};
use stagecoach_types::model::{
    Activity, Actor, FieldValue, Fields, Millis, ProcessVersion, Prospect, ProspectId, Status,
    Transition, TransitionKind, Verdict,
};

/// Refuses the request (an application error), writing nothing.
macro_rules! refuse {
    ($e:expr) => {
        return Ok(Err($e))
    };
}

pub mod ahead;
pub mod import;

/// A process version in force: what requests are evaluated against.
#[derive(Debug)]
pub struct ActiveProcess {
    /// The version number stamped on transitions.
    pub version: u64,
    /// Content hash of `text`.
    pub hash: String,
    /// The file's text.
    pub text: String,
    /// When this version became active.
    pub loaded_at: Millis,
    /// The validated process.
    pub process: Process,
    /// Its plugins, loaded.
    pub plugins: Arc<stagecoach_plugin_host::PluginSet>,
}

impl ActiveProcess {
    /// The plugins, as criteria evaluation takes them.
    pub fn plugin_context(&self) -> crate::criteria::Plugins<'_> {
        crate::criteria::Plugins {
            set: &self.plugins,
            decls: &self.process.plugins,
        }
    }
}

/// A stage's exit criteria evaluated for one prospect.
pub struct Evaluation {
    /// The time they were evaluated as of.
    pub as_of: Millis,
    /// One verdict per criterion.
    pub verdicts: Vec<Verdict>,
    /// What was read of the prospect's activities.
    pub facts: ActivityFacts,
}

/// The one evaluation of a prospect's exit criteria, shared by every write
/// (advance, record, close, import) and every read (`prospect.get`,
/// `prospect.evaluate`): as of `at`, but never before the prospect's
/// current stay or owner began (history runs forward). Activities are read
/// only as far as the criteria need, or all of them with `all_activities`
/// (checklists).
pub fn evaluate(
    source: &impl ActivitySource,
    active: &ActiveProcess,
    prospect: &Prospect,
    stage: &crate::process::Stage,
    at: Millis,
    all_activities: bool,
) -> Result<Evaluation, StoreError> {
    let as_of = at.max(prospect.earliest_move());
    let mut facts = source.activity_facts(prospect.id, &activity_kinds(stage))?;
    if all_activities || needs_activities(stage, &active.plugin_context()) {
        facts.activities = source.activities(prospect.id)?;
    }
    let verdicts = evaluate_stage_with(
        stage,
        prospect,
        &facts,
        as_of,
        active.plugin_context(),
        source.reasons(),
    );
    Ok(Evaluation {
        as_of,
        verdicts,
        facts,
    })
}

pub use stagecoach_types::error::EngineError;

pub use stagecoach_types::protocol::Event;

/// A change requested by a client.
#[derive(Debug)]
pub enum WriteOp {
    /// `prospect.import`: one prospect with its history, from another system.
    Import(Box<import::ImportProspect>),
    /// `prospect.create`.
    CreateProspect(NewProspect),
    /// `prospect.update`.
    UpdateProspect(ProspectUpdate),
    /// `activity.record`.
    RecordActivity(NewActivity),
    /// `prospect.advance`.
    Advance {
        /// The prospect.
        id: ProspectId,
        /// When; now if absent.
        at: Millis,
    },
    /// `prospect.move`: forced, with a reason.
    Move {
        /// The prospect.
        id: ProspectId,
        /// The target stage.
        to: String,
        /// Why the criteria are overridden.
        reason: String,
        /// Who forced it.
        by: Option<String>,
        /// When.
        at: Millis,
    },
    /// `prospect.close`.
    Close {
        /// The prospect.
        id: ProspectId,
        /// Won or lost.
        outcome: Status,
        /// Why (required in spirit for lost deals).
        reason: Option<String>,
        /// When.
        at: Millis,
    },
    /// A new process version: store it, and move the prospects of renamed
    /// or migrated stages; refused if a removed stage still holds prospects.
    ApplyProcessVersion(Box<NewVersion>),
    /// Re-evaluate open prospects against the process in force.
    Reevaluate {
        /// When the moves happen.
        at: Millis,
        /// These (closed or unknown ones are skipped); none: every open one.
        ids: Option<Vec<ProspectId>>,
    },
}

/// A process text that validated and should become the next version.
#[derive(Debug)]
pub struct NewVersion {
    /// The file's text.
    pub text: String,
    /// Its content hash.
    pub hash: String,
    /// The file path.
    pub path: String,
    /// When it was loaded.
    pub at: Millis,
    /// The parsed process.
    pub process: Process,
    /// The version it replaces (none for the first).
    pub previous: Option<Arc<ActiveProcess>>,
}

pub use stagecoach_types::api::params::{NewActivity, NewProspect, ProspectUpdate};
use stagecoach_types::api::results::{
    Imported, Moved, ProspectMoves, Recorded, Reevaluated, VersionApplied,
};

/// What an operation answers: one of the contract's result types.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// `prospect.create`, `prospect.update`.
    Prospect(ProspectMoves),
    /// `prospect.advance`, `prospect.move`, `prospect.close`.
    Moved(Moved),
    /// `activity.record`.
    Recorded(Recorded),
    /// `process.reevaluate`.
    Reevaluated(Reevaluated),
    /// A new process version.
    Version(VersionApplied),
    /// `prospect.import`.
    Imported(Imported),
}

impl Answer {
    /// The answer of [`WriteOp::ApplyProcessVersion`].
    ///
    /// # Panics
    /// On any other answer: the writer answers each operation with its own kind.
    pub fn version_applied(&self) -> &VersionApplied {
        match self {
            Answer::Version(v) => v,
            other => panic!("a process version was answered with {other:?}"),
        }
    }
}

/// What an operation produced: its answer and the events to publish once
/// the batch is durable.
pub(crate) type Applied = (Answer, Vec<Event>);

/// Applies one operation. The outer error aborts the batch; the inner one
/// refuses only this request.
pub(crate) fn apply(
    t: &mut Tables<'_>,
    process: &ActiveProcess,
    op: &WriteOp,
    now: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    match op {
        WriteOp::CreateProspect(p) => create(t, process, p, now),
        WriteOp::UpdateProspect(u) => update(t, process, u, now),
        WriteOp::RecordActivity(a) => record(t, process, a, now),
        WriteOp::Advance { id, at } => advance(t, process, *id, *at),
        WriteOp::Move {
            id,
            to,
            reason,
            by,
            at,
        } => force_move(t, process, *id, to, reason, by.as_deref(), *at),
        WriteOp::Close {
            id,
            outcome,
            reason,
            at,
        } => close(t, process, *id, *outcome, reason.as_deref(), *at),
        WriteOp::ApplyProcessVersion(v) => apply_version(t, v),
        WriteOp::Reevaluate { at, ids } => reevaluate(t, process, *at, ids.as_deref()),
        WriteOp::Import(p) => import::apply(t, process, p),
    }
}

/// The refusal for a stage id the process does not have (listing those it has).
pub fn unknown_stage(process: &Process, stage: &str) -> EngineError {
    EngineError::UnknownStage {
        stage: stage.to_string(),
        known: process
            .stages
            .iter()
            .map(|s| format!("`{}`", s.id))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn load_open(t: &Tables<'_>, id: ProspectId) -> Result<Result<Prospect, EngineError>, StoreError> {
    Ok(match t.prospect(id)? {
        None => Err(EngineError::ProspectNotFound(id)),
        Some(p) if p.status != Status::Open => Err(EngineError::Closed {
            id,
            status: p.status,
        }),
        Some(p) => Ok(p),
    })
}

fn create(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    new: &NewProspect,
    now: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let process = &active.process;
    if new.name.trim().is_empty() {
        refuse!(EngineError::Invalid("`name` must not be empty".into()));
    }
    let stage = match &new.stage {
        Some(s) => match process.stage(s) {
            Some(stage) => stage,
            None => refuse!(unknown_stage(process, s)),
        },
        None => process.first_stage(),
    };
    if let Some(ext) = &new.external_id
        && let Some(id) = t.prospect_by_external_id(ext)?
    {
        refuse!(EngineError::ExternalIdTaken {
            external_id: ext.clone(),
            id,
        });
    }
    let at = new.at.unwrap_or(now);
    let id = t.ids.prospect;
    t.ids.prospect += 1;
    let mut prospect = Prospect {
        id,
        external_id: new.external_id.clone(),
        name: new.name.clone(),
        company: new.company.clone(),
        owner: new.owner.clone(),
        fields: new.fields.clone(),
        stage: stage.id.clone(),
        status: Status::Open,
        created_at: at,
        stage_entered_at: at,
        last_activity_at: at,
        closed_at: None,
        owner_since: None,
    };
    let mut moves = vec![transition(
        t,
        active,
        &prospect,
        None,
        &stage.id,
        at,
        TransitionKind::Created,
    )];
    moves.extend(cascade(t, active, &mut prospect, at, None)?);
    save(t, None, &prospect, &moves, at)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Prospect(ProspectMoves { prospect, moves }),
        events,
    )))
}

/// The prospect after update `u` at `at`, and the changes as the
/// `fields_updated` activity records them.
pub(crate) fn updated(
    old: &Prospect,
    u: &ProspectUpdate,
    at: Millis,
) -> Result<(Prospect, serde_json::Map<String, Value>), EngineError> {
    let mut set = Fields::new();
    let mut removed = Vec::new();
    for (key, value) in &u.fields {
        match value {
            Value::Null => removed.push(key.clone()),
            other => match serde_json::from_value::<FieldValue>(other.clone()) {
                Ok(v) => {
                    set.insert(key.clone(), v);
                }
                Err(_) => {
                    return Err(EngineError::Invalid(format!(
                        "field `{key}` must be a string, number, boolean or null, not {other}"
                    )));
                }
            },
        }
    }
    if u.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(EngineError::Invalid("`name` must not be empty".into()));
    }
    let mut prospect = old.clone();
    let mut changes = serde_json::Map::new();
    if let Some(name) = &u.name {
        prospect.name = name.clone();
        changes.insert("name".into(), json!(name));
    }
    if let Some(company) = &u.company {
        prospect.company = Some(company.clone());
        changes.insert("company".into(), json!(company));
    }
    if let Some(owner) = &u.owner
        && prospect.owner.as_ref() != Some(owner)
    {
        prospect.owner_since = Some(at.max(prospect.earliest_move()));
        prospect.owner = Some(owner.clone());
        changes.insert("owner".into(), json!(owner));
    }
    // What the changed fields were before (null: absent), so history can
    // be replayed with the values as they were (process.simulate).
    let previous: serde_json::Map<String, Value> = set
        .keys()
        .chain(removed.iter())
        .map(|k| (k.clone(), json!(old.fields.get(k))))
        .collect();
    for (k, v) in &set {
        prospect.fields.insert(k.clone(), v.clone());
    }
    for k in &removed {
        prospect.fields.remove(k);
    }
    if !previous.is_empty() {
        changes.insert("previous".into(), Value::Object(previous));
    }
    if !set.is_empty() {
        changes.insert("fields".into(), json!(set));
    }
    if !removed.is_empty() {
        changes.insert("removed".into(), json!(removed));
    }
    Ok((prospect, changes))
}

fn update(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    u: &ProspectUpdate,
    now: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let old = match t.prospect(u.id)? {
        Some(p) => p,
        None => refuse!(EngineError::ProspectNotFound(u.id)),
    };
    let at = u.at.unwrap_or(now);
    let (mut prospect, changes) = match updated(&old, u, at) {
        Ok(x) => x,
        Err(e) => refuse!(e),
    };
    // Field changes are history too: record them in the activity log.
    let activity = Activity {
        id: t.ids.activity,
        prospect: prospect.id,
        kind: stagecoach_types::model::FIELDS_UPDATED.into(),
        actor: Actor::Rep,
        at,
        data: changes,
    };
    t.ids.activity += 1;
    t.insert_activity(&activity)?;
    prospect.last_activity_at = prospect.last_activity_at.max(at);
    let moves = if prospect.status == Status::Open {
        cascade(t, active, &mut prospect, at, Some(activity.id))?
    } else {
        Vec::new()
    };
    save(t, Some(&old), &prospect, &moves, at)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Prospect(ProspectMoves { prospect, moves }),
        events,
    )))
}

/// The activity `a` records, with this id.
pub(crate) fn new_activity(
    active: &ActiveProcess,
    a: &NewActivity,
    id: u64,
    now: Millis,
) -> Activity {
    let actor = a.actor.unwrap_or_else(|| {
        active
            .process
            .activities
            .get(&a.kind)
            .and_then(|k| k.actor)
            .unwrap_or(Actor::Prospect)
    });
    Activity {
        id,
        prospect: a.prospect,
        kind: a.kind.clone(),
        actor,
        at: a.at.unwrap_or(now),
        data: a.data.clone(),
    }
}

fn record(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    a: &NewActivity,
    now: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    if a.kind.trim().is_empty() {
        refuse!(EngineError::Invalid("`kind` must not be empty".into()));
    }
    let process = &active.process;
    if process.strict_activities
        && !process.activities.is_empty()
        && !process.activities.contains_key(&a.kind)
    {
        refuse!(EngineError::NotDeclared {
            what: "activity kind",
            given: a.kind.clone(),
            suggestion: stagecoach_types::suggest::did_you_mean(
                &a.kind,
                process.activities.keys().map(String::as_str),
            )
            .map(str::to_string),
            known: process
                .activities
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            hint: "declare it in `[activities]`, or set `strict_activities = false` in `[process]` to record any kind".into(),
        });
    }
    let old = match t.prospect(a.prospect)? {
        Some(p) => p,
        None => refuse!(EngineError::ProspectNotFound(a.prospect)),
    };
    let activity = new_activity(active, a, t.ids.activity, now);
    if activity.at < old.created_at {
        refuse!(EngineError::Invalid(format!(
            "the activity is dated {}, before prospect {} was created ({}); give an `at` on or after its creation",
            activity.at, old.id, old.created_at
        )));
    }
    t.ids.activity += 1;
    t.insert_activity(&activity)?;
    let mut prospect = old.clone();
    prospect.last_activity_at = prospect.last_activity_at.max(activity.at);
    let moves = if prospect.status == Status::Open {
        cascade(t, active, &mut prospect, activity.at, Some(activity.id))?
    } else {
        Vec::new()
    };
    save(t, Some(&old), &prospect, &moves, activity.at)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Recorded(Recorded {
            activity,
            moves,
            stage: prospect.stage,
            status: prospect.status,
        }),
        events,
    )))
}

fn advance(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    id: ProspectId,
    at: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let old = match load_open(t, id)? {
        Ok(p) => p,
        Err(e) => refuse!(e),
    };
    let process = &active.process;
    let Some(index) = process.stage_index(&old.stage) else {
        refuse!(unknown_stage(process, &old.stage));
    };
    let stage = &process.stages[index];
    let Evaluation {
        as_of, verdicts, ..
    } = evaluate(t, active, &old, stage, at, false)?;
    if !all_met(&verdicts) {
        refuse!(unmet(id, &stage.id, verdicts));
    }
    let mut prospect = old.clone();
    let mut moves = vec![step(t, active, &mut prospect, index, as_of, verdicts, None)];
    moves.extend(cascade(t, active, &mut prospect, as_of, None)?);
    save(t, Some(&old), &prospect, &moves, as_of)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Moved(Moved {
            moves,
            stage: prospect.stage,
            status: prospect.status,
        }),
        events,
    )))
}

fn force_move(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    id: ProspectId,
    to: &str,
    reason: &str,
    by: Option<&str>,
    at: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    if reason.trim().is_empty() {
        refuse!(EngineError::Invalid(
            "a forced move needs a `reason`: it overrides the exit criteria".into()
        ));
    }
    let old = match load_open(t, id)? {
        Ok(p) => p,
        Err(e) => refuse!(e),
    };
    if active.process.stage(to).is_none() {
        refuse!(unknown_stage(&active.process, to));
    }
    if old.stage == to {
        refuse!(EngineError::Invalid(format!(
            "prospect {id} is already in `{to}`"
        )));
    }
    let at = at.max(old.earliest_move());
    let mut prospect = old.clone();
    let mut tr = transition(
        t,
        active,
        &prospect,
        Some(&old.stage),
        to,
        at,
        TransitionKind::Forced,
    );
    tr.reason = Some(reason.to_string());
    tr.by = by.map(str::to_string);
    prospect.stage = to.to_string();
    prospect.stage_entered_at = at;
    let moves = vec![tr];
    save(t, Some(&old), &prospect, &moves, at)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Moved(Moved {
            moves,
            stage: prospect.stage,
            status: prospect.status,
        }),
        events,
    )))
}

fn close(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    id: ProspectId,
    outcome: Status,
    reason: Option<&str>,
    at: Millis,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let old = match load_open(t, id)? {
        Ok(p) => p,
        Err(e) => refuse!(e),
    };
    let process = &active.process;
    let reason = match lost_reason(process, outcome, reason) {
        Ok(r) => r,
        Err(e) => refuse!(e),
    };
    let at = at.max(old.earliest_move());
    let (kind, verdicts) = match outcome {
        Status::Open => refuse!(EngineError::Invalid(
            "`outcome` must be `won` or `lost`".into()
        )),
        Status::Lost => (TransitionKind::Lost, Vec::new()),
        Status::Won => {
            let last = process.stages.last().expect("a process has stages");
            if old.stage != last.id {
                refuse!(EngineError::NotInLastStage {
                    id,
                    stage: old.stage.clone(),
                    last: last.id.clone(),
                });
            }
            let verdicts = evaluate(t, active, &old, last, at, false)?.verdicts;
            if !all_met(&verdicts) {
                refuse!(unmet(id, &last.id, verdicts));
            }
            (TransitionKind::Won, verdicts)
        }
    };
    let mut prospect = old.clone();
    let mut tr = transition(
        t,
        active,
        &prospect,
        Some(&old.stage),
        outcome.as_str(),
        at,
        kind,
    );
    tr.verdicts = verdicts;
    tr.reason = reason;
    prospect.status = outcome;
    prospect.closed_at = Some(at);
    let moves = vec![tr];
    save(t, Some(&old), &prospect, &moves, at)?;
    let events = moved_events(&prospect, &moves);
    Ok(Ok((
        Answer::Moved(Moved {
            moves,
            stage: prospect.stage,
            status: prospect.status,
        }),
        events,
    )))
}

/// The reason a close records: required for a loss when the process says
/// so, one of `lost_reasons` (in its spelling) when it lists them.
fn lost_reason(
    process: &Process,
    outcome: Status,
    reason: Option<&str>,
) -> Result<Option<String>, EngineError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if outcome != Status::Lost {
        return Ok(reason.map(str::to_string));
    }
    let listed = || {
        process
            .lost_reasons
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(reason) = reason else {
        if process.require_lost_reason {
            return Err(EngineError::Invalid(if process.lost_reasons.is_empty() {
                "closing as lost needs a `reason` (the process requires one)".into()
            } else {
                format!("closing as lost needs a `reason`, one of {}", listed())
            }));
        }
        return Ok(None);
    };
    if process.lost_reasons.is_empty() {
        return Ok(Some(reason.to_string()));
    }
    match process
        .lost_reasons
        .iter()
        .find(|r| r.eq_ignore_ascii_case(reason))
    {
        Some(r) => Ok(Some(r.clone())),
        None => Err(EngineError::NotDeclared {
            what: "lost reason",
            given: reason.to_string(),
            suggestion: stagecoach_types::suggest::did_you_mean(
                reason,
                process.lost_reasons.iter().map(String::as_str),
            )
            .map(str::to_string),
            known: listed(),
            hint: "use one of `[process] lost_reasons`, or add it there".into(),
        }),
    }
}

fn unmet(id: ProspectId, stage: &str, verdicts: Vec<Verdict>) -> EngineError {
    let total = verdicts.len();
    let unmet: Vec<Verdict> = verdicts.into_iter().filter(|v| !v.met && !v.warn).collect();
    if total == 0 {
        return EngineError::CriteriaUnmet {
            id,
            stage: stage.to_string(),
            unmet: vec![Verdict {
                question: "Does the stage define exit criteria?".into(),
                met: false,
                reason: format!(
                    "stage `{stage}` has no exit criteria; use `prospect.move` with a reason"
                ),
                warn: false,
            }],
            total: 1,
        };
    }
    EngineError::CriteriaUnmet {
        id,
        stage: stage.to_string(),
        unmet,
        total,
    }
}

/// Builds a transition with a fresh id (written by [`save`]).
fn transition(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &Prospect,
    from: Option<&str>,
    to: &str,
    at: Millis,
    kind: TransitionKind,
) -> Transition {
    let id = t.ids.transition;
    t.ids.transition += 1;
    Transition {
        id,
        prospect: prospect.id,
        from: from.map(str::to_string),
        to: to.to_string(),
        at,
        process_version: active.version,
        kind,
        verdicts: Vec::new(),
        reason: None,
        by: None,
        activity: None,
        imported: false,
    }
}

/// One stage left because its exit criteria are met, before it has a
/// transition id.
pub(crate) struct Step {
    from: String,
    to: String,
    kind: TransitionKind,
    as_of: Millis,
    verdicts: Vec<Verdict>,
}

/// Moves `prospect` out of stage `index` because its criteria are met: to
/// the next stage, or won from the last one.
fn leave(
    active: &ActiveProcess,
    prospect: &mut Prospect,
    index: usize,
    as_of: Millis,
    verdicts: Vec<Verdict>,
) -> Step {
    let stages = &active.process.stages;
    let from = stages[index].id.clone();
    let (to, kind) = match stages.get(index + 1) {
        Some(next) => (next.id.clone(), TransitionKind::Advanced),
        None => ("won".to_string(), TransitionKind::Won),
    };
    if kind == TransitionKind::Won {
        prospect.status = Status::Won;
        prospect.closed_at = Some(as_of);
    } else {
        prospect.stage = to.clone();
        prospect.stage_entered_at = as_of;
    }
    Step {
        from,
        to,
        kind,
        as_of,
        verdicts,
    }
}

/// The transition of a step, with a fresh id.
fn written(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: ProspectId,
    step: Step,
    cause: Option<u64>,
) -> Transition {
    let id = t.ids.transition;
    t.ids.transition += 1;
    Transition {
        id,
        prospect,
        from: Some(step.from),
        to: step.to,
        at: step.as_of,
        process_version: active.version,
        kind: step.kind,
        // A replay's scratch store keeps no verdicts of the moves its
        // criteria make: nothing reads them.
        verdicts: if t.is_scratch() {
            Vec::new()
        } else {
            step.verdicts
        },
        reason: None,
        by: None,
        activity: cause,
        imported: false,
    }
}

/// Moves `prospect` out of stage `index` because its criteria are met.
fn step(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    index: usize,
    at: Millis,
    verdicts: Vec<Verdict>,
    cause: Option<u64>,
) -> Transition {
    let s = leave(active, prospect, index, at, verdicts);
    written(t, active, prospect.id, s, cause)
}

/// The stages `prospect` leaves by itself from where it is, as of `at`,
/// read through any [`ActivitySource`]: the writer's tables, or a read
/// snapshot when evaluating ahead ([`ahead`]). `prospect` is moved on.
/// Each stage is left at most once, so this ends.
pub(crate) fn plan_cascade(
    source: &impl ActivitySource,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    at: Millis,
    win: bool,
) -> Result<Vec<Step>, StoreError> {
    let mut steps = Vec::new();
    while prospect.status == Status::Open {
        let Some(index) = active.process.stage_index(&prospect.stage) else {
            break;
        };
        let stage = &active.process.stages[index];
        if stage.advance == AdvanceMode::Manual {
            break;
        }
        if !win && index + 1 == active.process.stages.len() {
            break;
        }
        let Evaluation {
            as_of, verdicts, ..
        } = evaluate(source, active, prospect, stage, at, false)?;
        if !all_met(&verdicts) {
            break;
        }
        steps.push(leave(active, prospect, index, as_of, verdicts));
    }
    Ok(steps)
}

/// Moves the prospect on while its stage advances automatically and every
/// exit criterion is met.
fn cascade(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    at: Millis,
    cause: Option<u64>,
) -> Result<Vec<Transition>, StoreError> {
    cascade_to(t, active, prospect, at, cause, true)
}

/// [`cascade`], optionally stopping in the last stage instead of closing
/// won: a replayed import never wins a prospect its source has open or lost.
fn cascade_to(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    prospect: &mut Prospect,
    at: Millis,
    cause: Option<u64>,
    win: bool,
) -> Result<Vec<Transition>, StoreError> {
    let steps = plan_cascade(t, active, prospect, at, win)?;
    Ok(steps
        .into_iter()
        .map(|s| written(t, active, prospect.id, s, cause))
        .collect())
}

/// Writes the prospect and its moves, with the metrics that follow them;
/// `at` dates changes that are not moves (an owner change).
fn save(
    t: &mut Tables<'_>,
    old: Option<&Prospect>,
    new: &Prospect,
    moves: &[Transition],
    at: Millis,
) -> Result<(), StoreError> {
    for m in moves {
        t.insert_transition(m)?;
    }
    t.record_metrics(old, new, moves, at)?;
    t.put_prospect(old, new)
}

fn moved_events(prospect: &Prospect, moves: &[Transition]) -> Vec<Event> {
    moves
        .iter()
        .filter(|m| m.kind != TransitionKind::Created)
        .map(|m| Event::ProspectMoved {
            prospect: stagecoach_types::protocol::MovedProspect {
                id: prospect.id,
                name: prospect.name.clone(),
                owner: prospect.owner.clone(),
            },
            transition: m.clone(),
        })
        .collect()
}

/// Shared handle to the process version in force.
pub type ProcessHandle = Arc<std::sync::RwLock<Arc<ActiveProcess>>>;

fn apply_version(
    t: &mut Tables<'_>,
    v: &NewVersion,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let new = &v.process;
    // Where each stage that is not in the new process goes.
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut migrations: Vec<(String, String)> = Vec::new();
    let mut orphans: Vec<(String, usize)> = Vec::new();
    for stage in t.stages_with_open_prospects()? {
        if new.stage(&stage).is_some() {
            continue;
        }
        if let Some(target) = new.stages.iter().find(|s| s.renamed_from.contains(&stage)) {
            renames.push((stage, target.id.clone()));
        } else if let Some(target) = new.migrate.get(&stage) {
            migrations.push((stage, target.clone()));
        } else {
            let n = t.open_in_stage(&stage)?.len();
            orphans.push((stage, n));
        }
    }
    if !orphans.is_empty() {
        refuse!(EngineError::OrphanedStages(orphans));
    }
    let number = t.ids.process_version;
    t.ids.process_version += 1;
    t.insert_process_version(&ProcessVersion {
        number,
        hash: v.hash.clone(),
        text: v.text.clone(),
        loaded_at: v.at,
        path: v.path.clone(),
    })?;
    let stamp = ActiveProcess {
        version: number,
        hash: v.hash.clone(),
        text: String::new(),
        loaded_at: v.at,
        process: new.clone(),
        plugins: Default::default(),
    };
    // Every rename is remembered, not only of stages holding prospects now:
    // a renamed stage's history is the stage's history.
    for s in &new.stages {
        for old in &s.renamed_from {
            t.alias(old, &s.id)?;
        }
    }
    let mut renamed = 0;
    for (from, to) in &renames {
        for id in t.open_in_stage(from)? {
            let Some(old) = t.prospect(id)? else { continue };
            let mut p = old.clone();
            // The same stage under a new id: the stay continues.
            p.stage = to.clone();
            t.record_metrics(Some(&old), &p, &[], v.at)?;
            t.put_prospect(Some(&old), &p)?;
            renamed += 1;
        }
    }
    let mut migrated = 0;
    let mut events = Vec::new();
    for (from, to) in &migrations {
        for id in t.open_in_stage(from)? {
            let Some(old) = t.prospect(id)? else { continue };
            let mut p = old.clone();
            let at = v.at.max(old.earliest_move());
            let mut tr = transition(t, &stamp, &p, Some(from), to, at, TransitionKind::Forced);
            tr.reason = Some(format!(
                "process version {number} removed stage `{from}` and migrated its prospects to `{to}`"
            ));
            tr.by = Some(v.path.clone());
            p.stage = to.clone();
            p.stage_entered_at = at;
            let moves = vec![tr];
            save(t, Some(&old), &p, &moves, at)?;
            events.extend(moved_events(&p, &moves));
            migrated += 1;
        }
    }
    Ok(Ok((
        Answer::Version(VersionApplied {
            version: number,
            renamed,
            migrated,
        }),
        events,
    )))
}

fn reevaluate(
    t: &mut Tables<'_>,
    active: &ActiveProcess,
    at: Millis,
    only: Option<&[ProspectId]>,
) -> Result<Result<Applied, EngineError>, StoreError> {
    let mut evaluated: u64 = 0;
    let mut moved: u64 = 0;
    let mut transitions: u64 = 0;
    let mut events = Vec::new();
    // Collect first: prospects moving on must not be evaluated twice.
    let mut ids = Vec::new();
    match only {
        Some(only) => ids.extend_from_slice(only),
        None => {
            for stage in &active.process.stages {
                ids.extend(t.open_in_stage(&stage.id)?);
            }
        }
    }
    {
        for id in ids {
            let Some(old) = t.prospect(id)? else { continue };
            if old.status != Status::Open {
                continue;
            }
            evaluated += 1;
            let mut p = old.clone();
            let moves = cascade(t, active, &mut p, at, None)?;
            if moves.is_empty() {
                continue;
            }
            moved += 1;
            transitions += moves.len() as u64;
            save(t, Some(&old), &p, &moves, at)?;
            events.extend(moved_events(&p, &moves));
        }
    }
    Ok(Ok((
        Answer::Reevaluated(Reevaluated {
            evaluated,
            moved,
            transitions,
            process_version: active.version,
        }),
        events,
    )))
}
