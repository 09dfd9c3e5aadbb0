//! `stagecoach import`: replays another system's history through the
//! daemon's normal write path.
//!
//! Each prospect is created (at its creation time, in the first stage),
//! then its activities and transitions are replayed in time order with
//! their own times, so the exit criteria decide where it goes exactly as if
//! the history had happened here. Many prospects advance together: each
//! round sends the next step of up to `batch` prospects as one JSON-RPC
//! batch, which the daemon commits as one group.
//!
//! Imports are idempotent by external id: a prospect already present is
//! not created again, and its activities and transitions that are already
//! recorded (same kind and time; same stage and time) are skipped, so an
//! interrupted import finishes when run again and a newer export of the
//! same CRM adds only what is new.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::source::{
    self, ActivityRow, FileKind, Files, Mapping, ProspectRow, Rejection, Source, SourceStage,
    TransitionRow, unknown_prospect,
};
use crate::client::{Client, ClientError};
use crate::model::Millis;
use crate::rpc::history::FIELDS_UPDATED;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The files.
    pub files: Files,
    /// How their columns and values map.
    pub mapping: Mapping,
    /// Where the exit criteria leave a prospect short of the stage the
    /// source gives, move it there (a forced move, reason recorded).
    pub trust_source_stage: bool,
    /// Prospects replayed together (one JSON-RPC batch per round).
    pub batch: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

/// Rows of one file: imported, already present, rejected.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Written now.
    pub imported: u64,
    /// Already present (an earlier import).
    pub skipped: u64,
    /// Refused, with a reason.
    pub rejected: u64,
}

/// Where a prospect ended up differs from what the source says.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The prospect row's line.
    pub line: u64,
    /// Its external id.
    pub external_id: String,
    /// What the source says.
    pub source: String,
    /// Where the replayed history left it.
    pub here: String,
    /// Why they differ.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Prospect rows.
    pub prospects: Counts,
    /// Activity rows.
    pub activities: Counts,
    /// Transition rows.
    pub transitions: Counts,
    /// Prospects closed won / lost by the import (as the source says).
    pub closed_won: u64,
    /// See `closed_won`.
    pub closed_lost: u64,
    /// Prospects moved to the source's stage by `--trust-source-stage`.
    pub forced: u64,
    /// Prospects whose replayed stage differs from the source's.
    pub differences: Vec<Difference>,
    /// Rejected rows, by file and line.
    pub rejected: Vec<Rejection>,
    /// Source stage values no stage matches → rows.
    pub unknown_stages: BTreeMap<String, usize>,
    /// Activity kinds `process.toml` does not declare → rows.
    pub undeclared_kinds: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Create,
    Activity(usize),
    Transition(usize),
    Reconcile,
}

/// One prospect's replay.
struct Work {
    row: Option<usize>,
    external_id: String,
    /// Assigned once created (or found).
    id: Option<u64>,
    stage: String,
    status: String,
    /// The stage a `created` transition names.
    first_stage: Option<String>,
    steps: VecDeque<Step>,
    /// The latest time replayed so far.
    last_at: Millis,
    /// Set when the daemon refused the prospect itself.
    refused: Option<u64>,
    /// A forced move to the last stage was made for a won source.
    forced_to_last: bool,
}

/// What the process in force says about stages and kinds.
struct ProcessInfo {
    stages: Vec<(String, String)>,
    kinds: HashSet<String>,
}

async fn process_info(client: &mut Client) -> Result<ProcessInfo, ClientError> {
    let p = client.call("process.get", json!({})).await?;
    let stages = p["process"]["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_string(),
                s["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let kinds = p["process"]["activities"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    Ok(ProcessInfo { stages, kinds })
}

/// Reads `options.files`, checks every row, and replays what passed.
/// A missing column or unreadable file is an error before anything is written.
pub async fn run(client: &mut Client, options: &ImportOptions) -> anyhow::Result<Summary> {
    let info = process_info(client).await?;
    let src = source::read(&options.files, &options.mapping, &info.stages, &|_| true)?;
    let mut summary = Summary {
        unknown_stages: src.unknown_stages.clone(),
        ..Summary::default()
    };
    let Source {
        prospects,
        activities,
        transitions,
        mut rejected,
        ..
    } = src;
    for r in &rejected {
        count(&mut summary, r.kind).rejected += 1;
    }

    // What is already there.
    let mut keys: Vec<String> = prospects.iter().map(|p| p.external_id.clone()).collect();
    let in_file: HashMap<&str, usize> = prospects
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.as_str(), i))
        .collect();
    let mut orphan_keys: Vec<String> = activities
        .iter()
        .map(|a| &a.key)
        .chain(transitions.iter().map(|t| &t.key))
        .filter(|k| !in_file.contains_key(k.as_str()))
        .cloned()
        .collect();
    orphan_keys.sort();
    orphan_keys.dedup();
    keys.extend(orphan_keys.iter().cloned());
    let mut existing: HashMap<String, Value> = HashMap::new();
    for chunk in keys.chunks(2000) {
        let r = client
            .call(
                "prospect.lookup",
                json!({ "external_ids": chunk, "history": true }),
            )
            .await?;
        if let Some(found) = r["found"].as_object() {
            for (k, v) in found {
                existing.insert(k.clone(), v.clone());
            }
        }
    }

    // One replay per prospect: rows of the prospects file, then prospects
    // only the activity or transition files name (already in the database).
    let mut works: Vec<Work> = Vec::new();
    let mut work_of: HashMap<String, usize> = HashMap::new();
    for (i, p) in prospects.iter().enumerate() {
        work_of.insert(p.key.clone(), works.len());
        works.push(new_work(
            Some(i),
            p.external_id.clone(),
            existing.get(&p.external_id),
        ));
    }
    for key in &orphan_keys {
        if let Some(found) = existing.get(key) {
            work_of.insert(key.clone(), works.len());
            works.push(new_work(None, key.clone(), Some(found)));
        }
    }
    let files = &options.files;
    for (i, a) in activities.iter().enumerate() {
        let Some(&w) = work_of.get(&a.key) else {
            let why = unknown_prospect(&a.key);
            reject_row(
                &mut summary,
                &mut rejected,
                files,
                FileKind::Activities,
                a.line,
                why,
            );
            continue;
        };
        if !info.kinds.contains(&a.kind) && a.kind != FIELDS_UPDATED {
            *summary.undeclared_kinds.entry(a.kind.clone()).or_default() += 1;
        }
        let present = existing
            .get(&works[w].external_id)
            .is_some_and(|e| has_pair(&e["activities"], &a.kind, a.at));
        if present {
            summary.activities.skipped += 1;
        } else {
            works[w].steps.push_back(Step::Activity(i));
        }
    }
    for (i, t) in transitions.iter().enumerate() {
        let Some(&w) = work_of.get(&t.key) else {
            let why = unknown_prospect(&t.key);
            reject_row(
                &mut summary,
                &mut rejected,
                files,
                FileKind::Transitions,
                t.line,
                why,
            );
            continue;
        };
        let work = &mut works[w];
        let present = existing
            .get(&work.external_id)
            .is_some_and(|e| has_pair(&e["transitions"], &t.to, t.at));
        if present {
            summary.transitions.skipped += 1;
        } else if t.kind == "created" {
            // The stage the prospect was created in; replaying it is the creation.
            work.first_stage = Some(t.to.clone());
            summary.transitions.imported += 1;
        } else {
            work.steps.push_back(Step::Transition(i));
        }
    }
    for work in &mut works {
        let at = |s: &Step| match s {
            Step::Activity(i) => (activities[*i].at, 1, activities[*i].line),
            Step::Transition(i) => (transitions[*i].at, 2, transitions[*i].line),
            Step::Create | Step::Reconcile => (Millis(i64::MIN), 0, 0),
        };
        let mut steps: Vec<Step> = work.steps.drain(..).collect();
        steps.sort_by_key(at);
        if work.id.is_none() {
            steps.insert(0, Step::Create);
        } else if work.row.is_some() {
            summary.prospects.skipped += 1;
        }
        if work.row.is_some() {
            steps.push(Step::Reconcile);
        }
        work.steps = steps.into();
    }

    let total = (prospects.len() + activities.len() + transitions.len()) as u64;
    let bar = if options.progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.inc(summary.activities.skipped + summary.transitions.skipped);

    let last_stage = info.stages.last().map(|s| s.0.clone()).unwrap_or_default();
    let ctx = Replay {
        prospects: &prospects,
        activities: &activities,
        transitions: &transitions,
        trust: options.trust_source_stage,
        last_stage: &last_stage,
    };
    let batch = options.batch.max(1);
    for chunk in (0..works.len()).collect::<Vec<_>>().chunks(batch) {
        loop {
            let mut calls: Vec<(&str, Value)> = Vec::new();
            let mut owners: Vec<(usize, Step)> = Vec::new();
            for &w in chunk {
                while let Some(step) = works[w].steps.pop_front() {
                    match ctx.request(&mut works[w], step, &mut summary, &mut rejected, files) {
                        Some((method, params)) => {
                            calls.push((method, params));
                            owners.push((w, step));
                            break;
                        }
                        None => bar.inc(progress_of(step)),
                    }
                }
            }
            if calls.is_empty() {
                break;
            }
            let answers = client.batch(&calls).await?;
            for ((w, step), answer) in owners.into_iter().zip(answers) {
                ctx.answer(
                    &mut works[w],
                    step,
                    answer,
                    &mut summary,
                    &mut rejected,
                    files,
                );
                bar.inc(progress_of(step));
            }
        }
    }
    bar.finish_and_clear();
    rejected.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
    summary.rejected = rejected;
    Ok(summary)
}

fn progress_of(step: Step) -> u64 {
    u64::from(!matches!(step, Step::Reconcile))
}

fn path_of(files: &Files, kind: FileKind) -> String {
    match kind {
        FileKind::Prospects => files.prospects.display().to_string(),
        FileKind::Activities => files
            .activities
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string()),
        FileKind::Transitions => files
            .transitions
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string()),
    }
}

fn count(summary: &mut Summary, kind: FileKind) -> &mut Counts {
    match kind {
        FileKind::Prospects => &mut summary.prospects,
        FileKind::Activities => &mut summary.activities,
        FileKind::Transitions => &mut summary.transitions,
    }
}

fn new_work(row: Option<usize>, external_id: String, found: Option<&Value>) -> Work {
    Work {
        row,
        external_id,
        id: found.and_then(|f| f["id"].as_u64()),
        stage: found
            .and_then(|f| f["stage"].as_str())
            .unwrap_or_default()
            .to_string(),
        status: found
            .and_then(|f| f["status"].as_str())
            .unwrap_or("open")
            .to_string(),
        first_stage: None,
        steps: VecDeque::new(),
        last_at: Millis(i64::MIN),
        refused: None,
        forced_to_last: false,
    }
}

/// Whether `pairs` (`[[name, at], …]`) holds `(name, at)`.
fn has_pair(pairs: &Value, name: &str, at: Millis) -> bool {
    pairs.as_array().is_some_and(|list| {
        list.iter().any(|p| {
            p[0].as_str() == Some(name)
                && p[1].as_str().and_then(|t| Millis::parse(t).ok()) == Some(at)
        })
    })
}

struct Replay<'a> {
    prospects: &'a [ProspectRow],
    activities: &'a [ActivityRow],
    transitions: &'a [TransitionRow],
    trust: bool,
    last_stage: &'a str,
}

impl Replay<'_> {
    /// The request that replays `step`, or none when there is nothing to
    /// send (the step is already true, or cannot be replayed: then it is
    /// counted here).
    fn request(
        &self,
        work: &mut Work,
        step: Step,
        summary: &mut Summary,
        rejected: &mut Vec<Rejection>,
        files: &Files,
    ) -> Option<(&'static str, Value)> {
        if let Some(line) = work.refused {
            let why = format!("its prospect (line {line} of the prospects file) was refused");
            self.reject(step, why, summary, rejected, files);
            return None;
        }
        match step {
            Step::Create => {
                let p = &self.prospects[work.row.expect("a created prospect has a row")];
                work.last_at = p.created;
                Some((
                    "prospect.create",
                    json!({
                        "name": p.name, "company": p.company, "owner": p.owner,
                        "fields": p.fields, "external_id": p.external_id,
                        "stage": work.first_stage, "at": p.created,
                    }),
                ))
            }
            Step::Activity(i) => {
                let a = &self.activities[i];
                let id = work.id?;
                work.last_at = work.last_at.max(a.at);
                if a.kind == FIELDS_UPDATED {
                    return Some(("prospect.update", update_params(id, a)));
                }
                Some((
                    "activity.record",
                    json!({ "prospect": id, "kind": a.kind, "actor": a.actor, "at": a.at, "data": a.data }),
                ))
            }
            Step::Transition(i) => {
                let t = &self.transitions[i];
                let id = work.id?;
                work.last_at = work.last_at.max(t.at);
                if work.status != "open" && work.status != t.kind {
                    let why = format!(
                        "the prospect is already {} here, by the replayed exit criteria",
                        work.status
                    );
                    self.reject(step, why, summary, rejected, files);
                    return None;
                }
                let already = match t.kind.as_str() {
                    "won" | "lost" => work.status == t.kind,
                    _ => work.stage == t.to,
                };
                if already {
                    // The exit criteria already made this move when the
                    // activity before it was replayed.
                    summary.transitions.imported += 1;
                    return None;
                }
                Some(match t.kind.as_str() {
                    "won" | "lost" => (
                        "prospect.close",
                        json!({ "id": id, "outcome": t.kind, "reason": t.reason, "at": t.at }),
                    ),
                    "advanced" => ("prospect.advance", json!({ "id": id, "at": t.at })),
                    _ => (
                        "prospect.move",
                        json!({
                            "id": id, "to": t.to, "at": t.at, "by": t.by,
                            "reason": t.reason.clone().unwrap_or_else(|| format!("imported `{}` move", t.kind)),
                        }),
                    ),
                })
            }
            Step::Reconcile => self.reconcile(work, summary),
        }
    }

    /// Brings the prospect to where the source says it is, when the
    /// history did not: closes it lost, closes it won (criteria enforced),
    /// or with `trust`, moves it (forced) to the source's stage.
    fn reconcile(&self, work: &mut Work, summary: &mut Summary) -> Option<(&'static str, Value)> {
        let id = work.id?;
        let p = &self.prospects[work.row?];
        let source = p.stage.as_ref()?;
        let at = p.closed.unwrap_or(work.last_at).max(work.last_at);
        let here = if work.status == "open" {
            work.stage.clone()
        } else {
            work.status.clone()
        };
        let mut differs = |source: &str, reason: String| {
            summary.differences.push(Difference {
                line: p.line,
                external_id: p.external_id.clone(),
                source: source.to_string(),
                here: here.clone(),
                reason,
            });
            None
        };
        match source {
            SourceStage::Lost if work.status == "open" => Some((
                "prospect.close",
                json!({ "id": id, "outcome": "lost", "at": at,
                        "reason": p.lost_reason.clone().unwrap_or_else(|| "lost in the source system".into()) }),
            )),
            SourceStage::Won if work.status == "open" => {
                if work.stage == self.last_stage {
                    Some((
                        "prospect.close",
                        json!({ "id": id, "outcome": "won", "at": at }),
                    ))
                } else if self.trust && !work.forced_to_last {
                    work.forced_to_last = true;
                    work.steps.push_back(Step::Reconcile);
                    Some(force(id, self.last_stage, at, "won"))
                } else {
                    differs(
                        "won",
                        format!(
                            "the exit criteria left it in `{}`; only the last stage closes won{}",
                            work.stage,
                            if self.trust {
                                ""
                            } else {
                                " (--trust-source-stage moves it there)"
                            }
                        ),
                    )
                }
            }
            SourceStage::Open(stage) if work.status == "open" && &work.stage != stage => {
                if self.trust {
                    Some(force(id, stage, at, stage))
                } else {
                    differs(
                        stage,
                        "the recorded activities do not meet the exit criteria in between (--trust-source-stage moves it there, as a forced move)".into(),
                    )
                }
            }
            SourceStage::Open(stage) if work.status != "open" => differs(
                stage,
                format!("the replayed history closed it {}", work.status),
            ),
            SourceStage::Won | SourceStage::Lost
                if work.status != "open" && Some(work.status.as_str()) != source_name(source) =>
            {
                differs(
                    source_name(source).unwrap_or_default(),
                    format!("the replayed history closed it {}", work.status),
                )
            }
            _ => None,
        }
    }

    /// Counts and lists an activity or transition row as rejected.
    fn reject(
        &self,
        step: Step,
        reason: String,
        summary: &mut Summary,
        rejected: &mut Vec<Rejection>,
        files: &Files,
    ) {
        let (kind, line) = match step {
            Step::Activity(i) => (FileKind::Activities, self.activities[i].line),
            Step::Transition(i) => (FileKind::Transitions, self.transitions[i].line),
            Step::Create | Step::Reconcile => return,
        };
        reject_row(summary, rejected, files, kind, line, reason);
    }

    /// Takes the daemon's answer to `step`'s request.
    fn answer(
        &self,
        work: &mut Work,
        step: Step,
        answer: Result<Value, crate::protocol::RpcError>,
        summary: &mut Summary,
        rejected: &mut Vec<Rejection>,
        files: &Files,
    ) {
        match answer {
            Ok(r) => {
                if let Some(id) = r["id"].as_u64().filter(|_| matches!(step, Step::Create)) {
                    work.id = Some(id);
                }
                if let Some(stage) = r["stage"].as_str() {
                    work.stage = stage.to_string();
                }
                if let Some(status) = r["status"].as_str() {
                    work.status = status.to_string();
                }
                match step {
                    Step::Create => summary.prospects.imported += 1,
                    Step::Activity(_) => summary.activities.imported += 1,
                    Step::Transition(_) => summary.transitions.imported += 1,
                    Step::Reconcile => {
                        let moved = r["moves"].as_array().and_then(|m| m.last());
                        match moved.and_then(|m| m["kind"].as_str()) {
                            Some("won") => summary.closed_won += 1,
                            Some("lost") => summary.closed_lost += 1,
                            Some("forced") => summary.forced += 1,
                            _ => {}
                        }
                    }
                }
            }
            Err(e) => match step {
                Step::Create => {
                    let line = self.prospects[work.row.expect("created from a row")].line;
                    work.refused = Some(line);
                    reject_row(
                        summary,
                        rejected,
                        files,
                        FileKind::Prospects,
                        line,
                        e.message,
                    );
                }
                Step::Activity(_) | Step::Transition(_) => {
                    self.reject(step, e.message, summary, rejected, files);
                }
                Step::Reconcile => {
                    let p = &self.prospects[work.row.expect("reconciled from a row")];
                    summary.differences.push(Difference {
                        line: p.line,
                        external_id: p.external_id.clone(),
                        source: p
                            .stage
                            .as_ref()
                            .and_then(source_name)
                            .unwrap_or("?")
                            .to_string(),
                        here: work.stage.clone(),
                        reason: e.message,
                    });
                }
            },
        }
    }
}

fn source_name(s: &SourceStage) -> Option<&str> {
    match s {
        SourceStage::Open(id) => Some(id),
        SourceStage::Won => Some("won"),
        SourceStage::Lost => Some("lost"),
        SourceStage::Unknown(_) => None,
    }
}

fn force(id: u64, to: &str, at: Millis, source: &str) -> (&'static str, Value) {
    (
        "prospect.move",
        json!({ "id": id, "to": to, "at": at, "by": "import",
                "reason": format!("imported: `{source}` in the source system") }),
    )
}

/// Counts a row of `kind` as rejected and lists it with its reason.
fn reject_row(
    summary: &mut Summary,
    rejected: &mut Vec<Rejection>,
    files: &Files,
    kind: FileKind,
    line: u64,
    reason: String,
) {
    count(summary, kind).rejected += 1;
    rejected.push(Rejection {
        kind,
        file: path_of(files, kind),
        line,
        reason,
    });
}

/// A `fields_updated` activity (from a Stagecoach export) replayed as the
/// update it records.
fn update_params(id: u64, a: &ActivityRow) -> Value {
    let mut p = Map::new();
    p.insert("id".into(), json!(id));
    p.insert("at".into(), json!(a.at));
    for key in ["name", "company", "owner"] {
        if let Some(v) = a.data.get(key) {
            p.insert(key.into(), v.clone());
        }
    }
    let mut fields = a
        .data
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for removed in a
        .data
        .get("removed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(k) = removed.as_str() {
            fields.insert(k.to_string(), Value::Null);
        }
    }
    p.insert("fields".into(), Value::Object(fields));
    Value::Object(p)
}
