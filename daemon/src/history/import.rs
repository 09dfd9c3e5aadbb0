//! `stagecoach import`: brings another system's history in through the
//! daemon's `prospect.import`, one operation per deal.
//!
//! 1. **Everything is read and resolved first**: every row of every file,
//!    its references, dates, stages and kinds. A rejected row stops the
//!    import before anything is written, with every problem listed (file,
//!    physical line, column, value, why, a hint), unless the user asks to
//!    import the rest (`skip_bad_rows`) or only to check (`dry_run`).
//! 2. **Each deal is sent whole**: its fields, activities, stage history
//!    and outcome in one `prospect.import`, many deals to a JSON-RPC batch
//!    that the daemon commits as one group. The daemon applies the source's
//!    facts (see `engine::import`): outcomes as the source has them, dated
//!    stage history where the export has it, otherwise the activities
//!    replayed under the exit criteria, which never close a deal won.
//!
//! Imports are idempotent by external id: run again, a deal already present
//! gets only the activities and moves it does not have yet.

use std::collections::BTreeMap;

// FxHash: see `source`.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use super::source::{
    self, FileKind, Files, Mapping, Problem, ProspectRow, Rejection, Source, SourceStage,
    UnusedColumn,
};
use stagecoach_client::Client;
use stagecoach_core::engine::import::{ImportActivity, ImportMove, ImportOutcome, ImportProspect};
use stagecoach_types::api::results::{DealResult, Imported, ImportedDeals};
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::FIELDS_UPDATED;
use stagecoach_types::model::{Actor, Millis, Status, TransitionKind};
use stagecoach_types::protocol::{INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError};

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The files.
    pub files: Files,
    /// How their columns and values map.
    pub mapping: Mapping,
    /// Where the exit criteria leave an open deal short of the stage the
    /// source gives, move it there (a forced move, marked imported).
    pub trust_source_stage: bool,
    /// Deals sent together (one JSON-RPC batch).
    pub batch: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// Read and resolve everything, write nothing.
    pub dry_run: bool,
    /// Import the rows that passed even when some were rejected.
    pub skip_bad_rows: bool,
    /// Write everything in one import session (all or nothing), when the
    /// daemon has them; else batch by batch.
    pub session: bool,
}

/// Rows of one file: imported, already present, rejected.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    /// Written now (or, in a dry run, to be written).
    pub imported: u64,
    /// Already present (an earlier import).
    pub skipped: u64,
    /// Refused, with a reason.
    pub rejected: u64,
}

/// Where a deal ended up differs from what the source says.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The deal row's line.
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
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    /// Nothing was written: a dry run.
    pub dry_run: bool,
    /// Nothing was written: rows were rejected (and `--skip-bad-rows` not given).
    pub refused: bool,
    /// Deal rows.
    pub prospects: Counts,
    /// Activity rows (an activity of several deals counts once per deal).
    pub activities: Counts,
    /// Transition / stage-history rows.
    pub transitions: Counts,
    /// Deals closed won / lost by the import, as the source has them.
    pub closed_won: u64,
    /// See `closed_won`.
    pub closed_lost: u64,
    /// Won deals whose replayed activities do not meet the criteria for
    /// winning: recorded won anyway, marked imported, by the stage they
    /// closed from.
    pub unearned: BTreeMap<String, u64>,
    /// Deals whose moves are the source's dated stage history.
    pub with_stage_history: u64,
    /// Moves written as the source dated them (marked imported).
    pub imported_moves: u64,
    /// Open deals moved to the source's stage by `--trust-source-stage`.
    pub forced: u64,
    /// Open deals whose replayed stage differs from the source's.
    pub differences: Vec<Difference>,
    /// Rejected rows: the causes by file and line, then the rows refused
    /// only because their deal was.
    pub rejected: Vec<Rejection>,
    /// Of `rejected`, the rows refused only because their deal was.
    pub dependent: u64,
    /// Source stage values no stage matches → rows.
    pub unknown_stages: BTreeMap<String, usize>,
    /// Activity kinds `process.toml` does not declare → rows.
    pub undeclared_kinds: BTreeMap<String, usize>,
    /// Activity kinds whose rows do not say whose action they were → rows
    /// (imported as the rep's unless the process declares the kind).
    pub without_direction: BTreeMap<String, u64>,
    /// The column activities were matched to deals by name with, when the
    /// file has no deal id column.
    pub matched_by_name: Option<String>,
    /// Activity rows associated with no deal (not imported).
    pub without_deal: u64,
    /// Activity rows not done yet: planned, not history (not imported).
    pub not_done: u64,
    /// Date columns read, but not as history, and why.
    pub unused_dates: Vec<UnusedColumn>,
}

/// What the process in force says about stages and kinds.
struct ProcessInfo {
    stages: Vec<(String, String)>,
    kinds: HashMap<String, Option<Actor>>,
}

async fn process_info(client: &mut Client) -> anyhow::Result<ProcessInfo> {
    let got = client
        .request::<methods::ProcessGet>(&params::ProcessGet::default())
        .await?;
    let Some(p) = got.process else {
        anyhow::bail!("the daemon did not answer the process in force");
    };
    let stages = p.stages.into_iter().map(|s| (s.id, s.name)).collect();
    let kinds = p
        .activities
        .into_iter()
        .map(|(kind, decl)| (kind, decl.actor))
        .collect();
    Ok(ProcessInfo { stages, kinds })
}

/// One deal to send, with the rows it came from.
struct Plan {
    /// The deal row, when the prospects file has it.
    row: Option<usize>,
    op: ImportProspect,
    /// Rows this plan carries, for the progress bar.
    rows: u64,
}

/// Reads `options.files`, resolves every row, and (unless refused or a dry
/// run) writes the deals. A missing column or unreadable file is an error
/// before anything is written.
pub async fn run(client: &mut Client, options: &ImportOptions) -> anyhow::Result<Summary> {
    let info = process_info(client).await?;
    let src = source::read(&options.files, &options.mapping, &info.stages, &|_| true)?;
    let mut summary = Summary {
        dry_run: options.dry_run,
        unknown_stages: src.unknown_stages.clone(),
        without_direction: src.without_direction.clone(),
        matched_by_name: src.matched_by_name.clone(),
        without_deal: src.without_deal,
        not_done: src.not_done,
        unused_dates: src.unused_dates.clone(),
        ..Summary::default()
    };
    let Source {
        prospects,
        activities,
        transitions,
        mut rejected,
        activity_deal_column: activity_column,
        close_column,
        transition_deal_column: transition_column,
        ..
    } = src;

    // References to deals only the database has.
    let in_file: HashMap<&str, usize> = prospects
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.as_str(), i))
        .collect();
    let mut orphans: Vec<String> = activities
        .iter()
        .flat_map(|a| a.keys.iter().map(String::as_str))
        .chain(transitions.iter().map(|t| t.key.as_str()))
        .filter(|k| !in_file.contains_key(k))
        .map(str::to_string)
        .collect();
    orphans.sort_unstable();
    orphans.dedup();
    let mut keys: Vec<&str> = prospects.iter().map(|p| p.external_id.as_str()).collect();
    keys.extend(orphans.iter().map(String::as_str));
    let present = lookup(client, &keys).await?;
    let files = &options.files;
    let activity_file = files
        .activities
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    let transition_file = files
        .transitions
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    // An outcome needs its date.
    let prospects_file = files.prospects.display().to_string();
    let mut undated: HashSet<u64> = HashSet::default();
    for p in &prospects {
        if let Some(o) = p.outcome.as_ref().filter(|o| o.at.is_none()) {
            undated.insert(p.line);
            let column = if close_column == "closed" {
                "Close Date"
            } else {
                close_column.as_str()
            };
            rejected.push(Problem {
                column: Some(column.to_string()),
                value: None,
                reason: format!(
                    "the deal is {} but has no close date",
                    if o.won { "won" } else { "lost" }
                ),
                hint: Some("fill in its close date, or name the column that has it with `--column prospects.closed=HEADER`".into()),
            }.at(FileKind::Prospects, &prospects_file, p.line));
        }
    }
    // Why a row naming deal `key` cannot be imported, if it cannot.
    let refused_deal = |key: &str| -> Option<String> {
        match in_file.get(key) {
            Some(&i) if undated.contains(&prospects[i].line) => {
                Some(source::deal_rejected(prospects[i].line, &prospects_file))
            }
            Some(_) => None,
            None if present.contains(key) => None,
            None => Some(source::unknown_prospect(key)),
        }
    };
    let mut bad_activity: HashSet<u64> = HashSet::default();
    for a in &activities {
        if let Some((k, why)) = a.keys.iter().find_map(|k| Some((k, refused_deal(k)?))) {
            bad_activity.insert(a.line);
            rejected.push(Problem::cell(&activity_column, k, why).at(
                FileKind::Activities,
                &activity_file,
                a.line,
            ));
        }
    }
    let mut bad_transition: HashSet<u64> = HashSet::default();
    for t in &transitions {
        if let Some(why) = refused_deal(&t.key) {
            bad_transition.insert(t.line);
            rejected.push(Problem::cell(&transition_column, &t.key, why).at(
                FileKind::Transitions,
                &transition_file,
                t.line,
            ));
        }
    }
    // The causes first, then the rows refused only because their deal was.
    rejected.sort_by(|a, b| {
        dependent(a)
            .cmp(&dependent(b))
            .then(a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
    });
    summary.dependent = rejected.iter().filter(|r| dependent(r)).count() as u64;
    for r in &rejected {
        count(&mut summary, r.kind).rejected += 1;
    }
    summary.rejected = rejected;
    if !summary.rejected.is_empty() && !options.skip_bad_rows {
        summary.refused = true;
        return Ok(summary);
    }

    // One plan per deal.
    let mut plans: Vec<Plan> = Vec::new();
    let mut plan_of: HashMap<&str, usize> = HashMap::default();
    for (i, p) in prospects.iter().enumerate() {
        if undated.contains(&p.line) {
            continue;
        }
        plan_of.insert(p.key.as_str(), plans.len());
        plans.push(Plan {
            row: Some(i),
            op: deal(p, options.trust_source_stage),
            rows: 1,
        });
    }
    for key in &orphans {
        if present.contains(key.as_str()) {
            plan_of.insert(key.as_str(), plans.len());
            plans.push(Plan {
                row: None,
                op: ImportProspect {
                    external_id: key.to_string(),
                    // Not used: the deal exists, and keeps its own.
                    name: key.to_string(),
                    company: None,
                    owner: None,
                    fields: Default::default(),
                    created_at: Millis(0),
                    activities: Vec::new(),
                    history: Vec::new(),
                    outcome: None,
                    source_stage: None,
                    trust_source_stage: false,
                    forced_moves: Vec::new(),
                    created_in: None,
                    session: None,
                },
                rows: 0,
            });
        }
    }
    // The deals an activity goes to: one vector for every activity, not
    // one each.
    let mut targets: Vec<usize> = Vec::new();
    for a in activities
        .into_iter()
        .filter(|a| !bad_activity.contains(&a.line))
    {
        if !info.kinds.contains_key(&a.kind) && a.kind != FIELDS_UPDATED {
            *summary.undeclared_kinds.entry(a.kind.clone()).or_default() += 1;
        }
        targets.clear();
        targets.extend(
            a.keys
                .iter()
                .filter_map(|k| plan_of.get(k.as_str()).copied()),
        );
        // Moved into the last deal it names; copied for the others.
        let mut activity = Some(ImportActivity {
            kind: a.kind,
            actor: a.actor,
            at: a.at,
            data: a.data,
        });
        for (n, i) in targets.iter().enumerate() {
            let plan = &mut plans[*i];
            plan.rows += 1;
            let one = if n + 1 == targets.len() {
                activity.take().expect("moved once")
            } else {
                activity.clone().expect("still here")
            };
            plan.op.activities.push(one);
        }
    }
    for t in transitions
        .iter()
        .filter(|t| !bad_transition.contains(&t.line))
    {
        let Some(&i) = plan_of.get(t.key.as_str()) else {
            continue;
        };
        let plan = &mut plans[i];
        plan.rows += 1;
        let kind = t.kind.as_deref().and_then(|k| {
            serde_json::from_value::<TransitionKind>(Value::String(k.to_string())).ok()
        });
        match &t.to {
            SourceStage::Open(stage) => plan.op.history.push(ImportMove {
                to: stage.clone(),
                at: t.at,
                kind: kind.filter(|k| *k != TransitionKind::Created),
                reason: t.reason.clone(),
                by: t.by.clone(),
                // A stage-history report is the source's decision; our own
                // export says for each move.
                imported: t.imported.unwrap_or(kind.is_none()),
            }),
            // Our own export records its closes as moves, with their own
            // flag: they are the outcome, as they were.
            SourceStage::Won | SourceStage::Lost if kind.is_some() => {
                let won = t.to == SourceStage::Won;
                plan.op.outcome = None;
                plan.op.history.push(ImportMove {
                    to: if won { "won" } else { "lost" }.into(),
                    at: t.at,
                    kind,
                    reason: t.reason.clone(),
                    by: t.by.clone(),
                    imported: t.imported.unwrap_or(false),
                });
            }
            // A stage-history report's close: the outcome comes from the
            // deal row; a lost move's reason fills in a missing one.
            SourceStage::Lost => {
                if let Some(o) = &mut plan.op.outcome
                    && o.reason.is_none()
                {
                    o.reason = t.reason.clone();
                }
            }
            SourceStage::Won | SourceStage::Unknown(_) => {}
        }
    }
    for plan in &mut plans {
        plan.op.history.sort_by_key(|m| m.at);
        plan.op
            .history
            .dedup_by(|a, b| a.to == b.to && a.at == b.at);
    }

    summary.with_stage_history = plans.iter().filter(|p| !p.op.history.is_empty()).count() as u64;
    if options.dry_run {
        // What is already there, activity by activity, for deals present.
        let present_keys: Vec<&str> = plans
            .iter()
            .map(|p| p.op.external_id.as_str())
            .filter(|k| present.contains(*k))
            .collect();
        let known = known_activities(client, &present_keys).await?;
        for plan in &plans {
            let p = &plan.op;
            let have = known.get(p.external_id.as_str());
            let is_new = !present.contains(p.external_id.as_str());
            if plan.row.is_some() {
                if is_new {
                    summary.prospects.imported += 1;
                    match p.outcome.as_ref().map(|o| o.status) {
                        Some(Status::Won) => summary.closed_won += 1,
                        Some(Status::Lost) => summary.closed_lost += 1,
                        _ => {}
                    }
                } else {
                    summary.prospects.skipped += 1;
                }
            }
            for a in &p.activities {
                if have.is_some_and(|h| h.contains(&(a.kind.clone(), a.at))) {
                    summary.activities.skipped += 1;
                } else {
                    summary.activities.imported += 1;
                }
            }
            if is_new {
                // The dated moves: every change of stage after the first
                // entry, and the close. (Replayed deals' moves are the
                // criteria's to decide, on import.)
                let changes = p.history.windows(2).filter(|w| w[0].to != w[1].to).count() as u64;
                let moves = changes + u64::from(p.outcome.is_some() && !p.history.is_empty());
                summary.transitions.imported += moves;
                summary.imported_moves += moves;
            }
        }
        return Ok(summary);
    }

    let total: u64 = plans.iter().map(|p| p.rows).sum();
    let bar = if options.progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // One session: the daemon writes every deal in one transaction, all
    // or nothing, when it is committed (a daemon without sessions writes
    // each batch as it comes).
    let session = if options.session {
        begin(client).await?
    } else {
        None
    };
    let before = summary.clone();
    // Requests are lines of at most LINE_BUDGET bytes: a batch closes when
    // the next deal would not fit, and a deal too large for one request is
    // sent in pieces (its activities in time order, its moves and outcome
    // with the last piece).
    let mut out = Outbox {
        client,
        batch: options.batch.max(1),
        calls: Vec::new(),
        owners: Vec::new(),
        bytes: 0,
        in_flight: std::collections::VecDeque::new(),
        session,
    };
    for (i, plan) in plans.iter().enumerate() {
        let pieces = pieces(&plan.op);
        let n = pieces.len();
        for (k, op) in pieces.into_iter().enumerate() {
            let part = Part {
                first: k == 0,
                last: k + 1 == n,
            };
            if out.full(op.len()) {
                out.send(&mut summary, &plans, &prospects, files, &bar)
                    .await?;
            }
            out.push(i, part, op);
        }
    }
    // The last batch, then the answers still due.
    out.send(&mut summary, &plans, &prospects, files, &bar)
        .await?;
    while !out.in_flight.is_empty() {
        out.send(&mut summary, &plans, &prospects, files, &bar)
            .await?;
    }
    bar.finish_and_clear();
    let Some(session) = session else {
        return Ok(summary);
    };
    let refused_here = summary.rejected.len() > before.rejected.len();
    if refused_here && !options.skip_bad_rows {
        // The daemon refused deals: nothing is written, every refusal is
        // listed, as for rows refused while reading.
        client
            .request::<methods::ImportAbort>(&params::ImportSessionId { session })
            .await?;
        let mut refused = before;
        for r in &summary.rejected[refused.rejected.len()..] {
            count(&mut refused, r.kind).rejected += 1;
        }
        refused.rejected = summary.rejected;
        refused.refused = true;
        return Ok(refused);
    }
    client
        .request::<methods::ImportCommit>(&params::ImportSessionId { session })
        .await
        .context("the import was not written: committing it failed")?;
    Ok(summary)
}

/// Starts an import session; `None` from a daemon that has none (older
/// than `import.begin`).
async fn begin(client: &mut Client) -> anyhow::Result<Option<u64>> {
    match client
        .request::<methods::ImportBegin>(&params::NoParams {})
        .await
    {
        Ok(s) => Ok(Some(s.session)),
        Err(stagecoach_client::ClientError::Rpc(e)) if e.code == METHOD_NOT_FOUND => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a rejection is only a consequence of its deal's.
fn dependent(r: &Rejection) -> bool {
    r.reason.starts_with(source::DEAL_REJECTED)
}

/// Batches the importer keeps sent ahead of their answers: while it
/// prepares the next, the daemon parses one and writes the other (with
/// one, the writer waited for the parse at 1M deals).
const IN_FLIGHT: usize = 2;

/// The largest request line the importer sends: under the daemon's default
/// `--max-line` (1 MiB), with room for the JSON-RPC envelope.
const LINE_BUDGET: usize = 768 * 1024;

/// Which piece of a deal a request is.
#[derive(Debug, Clone, Copy)]
struct Part {
    first: bool,
    last: bool,
}

/// Requests gathered for the next batch, and the batch in flight: one
/// batch is sent while the answers to the one before are read, so the
/// files, the connection and the daemon's writer work at the same time.
struct Outbox<'c> {
    client: &'c mut Client,
    /// Deals (pieces) to a batch at most.
    batch: usize,
    calls: Vec<(&'static str, String)>,
    /// Which plan and piece each call is.
    owners: Vec<(usize, Part)>,
    bytes: usize,
    /// Batches sent and not yet answered, oldest first: at most
    /// [`IN_FLIGHT`].
    in_flight: std::collections::VecDeque<(stagecoach_client::Sent, Vec<(usize, Part)>)>,
    /// The import session: each batch goes as one `import.deals` request
    /// (without one, as a JSON-RPC batch of `prospect.import`s).
    session: Option<u64>,
}

impl Outbox<'_> {
    /// Whether a request of `size` bytes must wait for the next batch.
    fn full(&self, size: usize) -> bool {
        !self.calls.is_empty()
            && (self.calls.len() >= self.batch || self.bytes + size > LINE_BUDGET)
    }

    fn push(&mut self, plan: usize, part: Part, op: String) {
        self.bytes += op.len() + 64;
        self.calls.push(("prospect.import", op));
        self.owners.push((plan, part));
    }

    /// Sends what is gathered (if anything) and takes the answers to the
    /// batch sent before it.
    async fn send(
        &mut self,
        summary: &mut Summary,
        plans: &[Plan],
        prospects: &[ProspectRow],
        files: &Files,
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<()> {
        // The oldest batch's answers are taken once the next would be one
        // too many in flight, or when nothing more is sent.
        let previous = if self.calls.is_empty() || self.in_flight.len() >= IN_FLIGHT {
            self.in_flight.pop_front()
        } else {
            None
        };
        if let (Some(session), false) = (self.session, self.calls.is_empty()) {
            let deals: Vec<&str> = self.calls.iter().map(|(_, op)| op.as_str()).collect();
            let params = format!("{{\"session\":{session},\"deals\":[{}]}}", deals.join(","));
            self.calls = vec![(
                <methods::ImportDeals as stagecoach_types::api::Method>::NAME,
                params,
            )];
        }
        let (sent, answers) = self
            .client
            .pipeline(&self.calls, previous.as_ref().map(|p| p.0))
            .await?;
        if let Some((_, owners)) = previous {
            let answers = match self.session {
                Some(_) => per_deal(answers, owners.len())?,
                None => answers
                    .into_iter()
                    .map(|a| {
                        a.and_then(|r| {
                            serde_json::from_value::<Imported>(r).map_err(|e| {
                                RpcError::new(INTERNAL_ERROR, format!("unexpected answer: {e}"))
                            })
                        })
                    })
                    .collect(),
            };
            for ((i, part), answer) in owners.into_iter().zip(answers) {
                let plan = &plans[i];
                take(summary, plan, part, prospects, answer, files);
                if part.last {
                    bar.inc(plan.rows);
                }
            }
        }
        if let Some(s) = sent {
            self.in_flight
                .push_back((s, std::mem::take(&mut self.owners)));
        }
        self.calls.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// The answer to one `import.deals` request, deal by deal: a refused
/// request refuses each of its `n` deals.
fn per_deal(
    answers: Vec<Result<Value, RpcError>>,
    n: usize,
) -> anyhow::Result<Vec<Result<Imported, RpcError>>> {
    let Some(answer) = answers.into_iter().next() else {
        anyhow::bail!("the daemon did not answer an `import.deals` request");
    };
    let results = match answer {
        Err(e) => return Ok(vec![Err(e); n]),
        Ok(v) => {
            serde_json::from_value::<ImportedDeals>(v)
                .context("unexpected answer to `import.deals`")?
                .results
        }
    };
    anyhow::ensure!(
        results.len() == n,
        "the daemon answered {} results for {n} deals",
        results.len()
    );
    Ok(results
        .into_iter()
        .map(|r| match r {
            DealResult::Imported(i) => Ok(i),
            DealResult::Refused(e) => Err(e),
        })
        .collect())
}

/// One deal's requests as JSON text: itself, or, when larger than
/// [`LINE_BUDGET`], pieces that together import the same.
fn pieces(op: &ImportProspect) -> Vec<String> {
    let text = serde_json::to_string(op).expect("imports serialize");
    let size = text.len();
    if size <= LINE_BUDGET || op.activities.len() < 2 {
        return vec![text];
    }
    let per = (size / op.activities.len()).max(1);
    let chunk = (LINE_BUDGET / 2 / per).max(1);
    let mut sorted: Vec<&ImportActivity> = op.activities.iter().collect();
    sorted.sort_by_key(|a| a.at);
    let chunks: Vec<&[&ImportActivity]> = sorted.chunks(chunk).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(k, acts)| {
            let last = k + 1 == n;
            let piece = ImportProspect {
                activities: acts.iter().map(|a| (*a).clone()).collect(),
                // Every piece knows where the deal was created; the moves
                // and the outcome come with the last.
                history: if last {
                    op.history.clone()
                } else {
                    op.history.iter().take(1).cloned().collect()
                },
                outcome: if last { op.outcome.clone() } else { None },
                source_stage: if last { op.source_stage.clone() } else { None },
                trust_source_stage: last && op.trust_source_stage,
                ..op.clone()
            };
            serde_json::to_string(&piece).expect("imports serialize")
        })
        .collect()
}

/// The activities (kind, time) the database has for each external id.
async fn known_activities(
    client: &mut Client,
    keys: &[&str],
) -> anyhow::Result<HashMap<String, HashSet<(String, Millis)>>> {
    let mut out = HashMap::default();
    for chunk in keys.chunks(2000) {
        let r = client
            .request::<methods::ProspectLookup>(&params::ProspectLookup {
                external_ids: chunk.iter().map(|k| k.to_string()).collect(),
                history: true,
            })
            .await?;
        for (k, v) in r.found {
            let set: HashSet<(String, Millis)> = v.activities.into_iter().flatten().collect();
            out.insert(k, set);
        }
    }
    Ok(out)
}

/// The external ids among `keys` the database already has.
async fn lookup(client: &mut Client, keys: &[&str]) -> anyhow::Result<HashSet<String>> {
    let mut present = HashSet::default();
    for chunk in keys.chunks(10_000) {
        let r = client
            .request::<methods::ProspectLookup>(&params::ProspectLookup {
                external_ids: chunk.iter().map(|k| k.to_string()).collect(),
                history: false,
            })
            .await?;
        present.extend(r.found.into_keys());
    }
    Ok(present)
}

/// The `prospect.import` of one deal row (activities and moves added later).
fn deal(p: &ProspectRow, trust: bool) -> ImportProspect {
    let fields = p
        .fields
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
        .collect();
    let outcome = p.outcome.as_ref().map(|o| ImportOutcome {
        status: if o.won { Status::Won } else { Status::Lost },
        at: o.at.expect("undated outcomes are rejected"),
        whole_day: o.whole_day,
        imported: None,
        reason: if o.won {
            None
        } else {
            Some(
                p.lost_reason
                    .clone()
                    .unwrap_or_else(|| "lost in the source system".into()),
            )
        },
    });
    ImportProspect {
        external_id: p.external_id.clone(),
        name: p.name.clone(),
        company: p.company.clone(),
        owner: p.owner.clone(),
        fields,
        created_at: p.created,
        activities: Vec::new(),
        history: p
            .history
            .iter()
            .map(|e| ImportMove {
                to: e.stage.clone(),
                at: e.at,
                kind: None,
                reason: None,
                by: None,
                imported: true,
            })
            .collect(),
        outcome,
        source_stage: match &p.stage {
            Some(SourceStage::Open(s)) => Some(s.clone()),
            _ => None,
        },
        trust_source_stage: trust,
        forced_moves: Vec::new(),
        created_in: None,
        session: None,
    }
}

/// Takes the daemon's answer for one deal into the summary.
fn take(
    summary: &mut Summary,
    plan: &Plan,
    part: Part,
    prospects: &[ProspectRow],
    answer: Result<Imported, RpcError>,
    files: &Files,
) {
    let row = plan.row.map(|i| &prospects[i]);
    match answer {
        Ok(r) => {
            if row.is_some() && part.first {
                if r.created {
                    summary.prospects.imported += 1;
                } else {
                    summary.prospects.skipped += 1;
                }
            }
            summary.activities.imported += r.activities;
            summary.activities.skipped += r.activities_present;
            summary.imported_moves += r.imported_moves;
            summary.transitions.imported += r.moves;
            let closed_now = part.last && (r.created || r.moves > 0);
            match r.status {
                Status::Won if closed_now => summary.closed_won += 1,
                Status::Lost if closed_now => summary.closed_lost += 1,
                _ => {}
            }
            if let Some(u) = r.unearned {
                *summary.unearned.entry(u.stage).or_default() += 1;
            }
            if r.forced {
                summary.forced += 1;
            }
            if let (Some(d), Some(row)) = (r.difference, row) {
                summary.differences.push(Difference {
                    line: row.line,
                    external_id: row.external_id.clone(),
                    source: d.source,
                    here: d.here,
                    reason: d.reason,
                });
            }
        }
        Err(e) => {
            let (kind, line) = match row {
                Some(row) => (FileKind::Prospects, row.line),
                None => (FileKind::Activities, 0),
            };
            count(summary, kind).rejected += 1;
            let file = match kind {
                FileKind::Prospects => files.prospects.display().to_string(),
                _ => files
                    .activities
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
            };
            summary
                .rejected
                .push(Problem::cell("deal", &plan.op.external_id, e.message).at(kind, &file, line));
        }
    }
}

fn count(summary: &mut Summary, kind: FileKind) -> &mut Counts {
    match kind {
        FileKind::Prospects => &mut summary.prospects,
        FileKind::Activities => &mut summary.activities,
        FileKind::Transitions => &mut summary.transitions,
    }
}
