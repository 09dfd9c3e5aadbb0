//! Methods' results that are typed: what the engine returns, what the
//! daemon sends and what a client reads back, one definition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Activity, Prospect, ProspectId, Status, Transition, Verdict};

/// A prospect with the transitions the request caused (`prospect.create`,
/// `prospect.update`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProspectMoves {
    /// The prospect as it now is.
    #[serde(flatten)]
    pub prospect: Prospect,
    /// The transitions the request caused, oldest first.
    pub moves: Vec<Transition>,
}

/// Where a prospect stands after a request that may move it
/// (`prospect.advance`, `prospect.move`, `prospect.close`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    /// The transitions the request caused, oldest first.
    pub moves: Vec<Transition>,
    /// The prospect's stage now (for a closed prospect: the stage it closed from).
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
}

/// `activity.record`: the activity and what it caused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The activity as stored.
    pub activity: Activity,
    /// The transitions it caused, at the activity's time.
    pub moves: Vec<Transition>,
    /// The prospect's stage now.
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
}

/// `process.reevaluate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reevaluated {
    /// Open prospects evaluated.
    pub evaluated: u64,
    /// Prospects that moved.
    pub moved: u64,
    /// The transitions written.
    pub transitions: u64,
    /// The process version they were evaluated under.
    pub process_version: u64,
}

/// A process version written by the engine (a reload's first half; not a
/// method of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionApplied {
    /// The new version's number.
    pub version: u64,
    /// Prospects that followed a renamed stage.
    pub renamed: u64,
    /// Prospects moved out of removed stages by `[migrate]`.
    pub migrated: u64,
}

/// A won outcome recorded without the exit criteria met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unearned {
    /// The stage it closed from.
    pub stage: String,
    /// The criteria of that stage that were not met.
    pub unmet: Vec<Verdict>,
}

/// Where the replay left an open deal and the source has it elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The stage the source has.
    pub source: String,
    /// The stage the replay reached.
    pub here: String,
    /// Why they differ.
    pub reason: String,
}

/// `prospect.import`: what one deal's import did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    /// The prospect.
    pub id: ProspectId,
    /// It was new (not present from an earlier import).
    pub created: bool,
    /// Its stage now.
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
    /// Activities written.
    pub activities: u64,
    /// Activities already present (same kind and time), skipped.
    pub activities_present: u64,
    /// Transitions written, creation excluded.
    pub moves: u64,
    /// Of all transitions written, those marked imported.
    pub imported_moves: u64,
    /// A won outcome the replay did not earn, if any.
    pub unearned: Option<Unearned>,
    /// The deal was forced to the source's stage (`trust_source_stage`).
    pub forced: bool,
    /// Where the replay and the source disagree, if they do.
    pub difference: Option<Difference>,
}

/// Distribution of durations, in days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    /// How many.
    pub count: usize,
    /// Mean days.
    pub mean_days: Option<f64>,
    /// Median days.
    pub median_days: Option<f64>,
    /// First quartile, days.
    #[serde(default)]
    pub p25_days: Option<f64>,
    /// Third quartile, days.
    #[serde(default)]
    pub p75_days: Option<f64>,
    /// 90th percentile days.
    pub p90_days: Option<f64>,
    /// Histogram: days bucket upper bound → count (1, 2, 4, 7, 14, 30, 60, 90, more).
    pub histogram: Vec<(String, usize)>,
}

/// `metrics.outcomes`: deals closed in a period, and the open pipeline now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Start of the period.
    pub from: crate::model::Millis,
    /// End of the period, exclusive.
    pub to: crate::model::Millis,
    /// The owner filter, if any.
    pub owner: Option<String>,
    /// The field read as a deal's amount.
    pub amount_field: String,
    /// Deals won in the period.
    pub won: u64,
    /// Deals lost in the period.
    pub lost: u64,
    /// won ÷ (won + lost); null when none closed.
    pub win_rate: Option<f64>,
    /// Of `won`, those an import recorded without the criteria met.
    pub won_imported: u64,
    /// Of `lost`, those an import recorded.
    pub lost_imported: u64,
    /// Created to won.
    pub cycle: Durations,
    /// Created to lost.
    pub lost_cycle: Durations,
    /// Σ amount of the deals won.
    pub won_amount: f64,
    /// Open prospects now.
    pub open: u64,
    /// Mean amount of a won deal; null when none has one.
    pub mean_won_amount: Option<f64>,
    /// open × win rate × mean won amount ÷ mean cycle days.
    pub velocity_per_day: Option<f64>,
    /// Σ amount × stage probability over open prospects now.
    pub weighted_pipeline: f64,
    /// The currency amounts are in (`[process] currency`), if the process says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Σ amount of the deals lost in the period.
    #[serde(default)]
    pub lost_amount: f64,
    /// Σ amount over open prospects now (the pipeline's value).
    #[serde(default)]
    pub open_amount: f64,
    /// The open pipeline now, per stage, in the process's order.
    #[serde(default)]
    pub pipeline: Vec<PipelineRow>,
    /// Deals lost in the period by reason, most first (`reason` null: none given).
    #[serde(default)]
    pub lost_reasons: Vec<LostReason>,
    /// The definitions, in words.
    pub note: String,
}

/// One stage of the open pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRow {
    /// The stage.
    pub stage: String,
    /// Its name.
    pub name: String,
    /// Open prospects in it now.
    pub open: u64,
    /// Σ their amounts.
    pub amount: f64,
    /// The stage's win probability, if it has one.
    pub probability: Option<f64>,
    /// amount × probability (0 without one).
    pub weighted: f64,
}

/// Deals lost for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostReason {
    /// The reason recorded with the loss; null when none was.
    pub reason: Option<String>,
    /// How many deals.
    pub count: u64,
    /// Σ their amounts.
    pub amount: f64,
}

/// `metrics.owners`: one scorecard row per rep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owners {
    /// Start of the period.
    pub from: crate::model::Millis,
    /// End of the period, exclusive.
    pub to: crate::model::Millis,
    /// The currency amounts are in, if the process says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// One row per owner (`""`: prospects without one), by won amount, then name.
    pub rows: Vec<OwnerRow>,
    /// The definitions, in words.
    pub note: String,
}

/// One rep's scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerRow {
    /// The rep (`""`: no owner).
    pub owner: String,
    /// Open prospects now.
    pub open: u64,
    /// Σ their amounts.
    pub open_amount: f64,
    /// Σ amount × stage probability of them.
    pub weighted: f64,
    /// Stage exits in the period that moved on (advanced, or won from the last stage).
    pub moved_on: u64,
    /// Forced moves in the period.
    pub forced: u64,
    /// Deals won in the period.
    pub won: u64,
    /// Deals lost in the period.
    pub lost: u64,
    /// won ÷ (won + lost); null when none closed.
    pub win_rate: Option<f64>,
    /// Median days from creation to won, of the deals won in the period.
    pub cycle_median_days: Option<f64>,
    /// Σ amount of the deals won in the period.
    pub won_amount: f64,
    /// Open prospects stalled now.
    pub stalled: u64,
}

/// `metrics.trends`: month by month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trends {
    /// The owner filter, if any.
    pub owner: Option<String>,
    /// The currency amounts are in, if the process says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// One entry per calendar month, oldest first.
    pub months: Vec<TrendMonth>,
    /// The definitions, in words.
    pub note: String,
}

/// One month of a trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendMonth {
    /// `2026-06`.
    pub month: String,
    /// Its first day.
    pub from: crate::model::Millis,
    /// The next month's first day.
    pub to: crate::model::Millis,
    /// Per stage: entered, exited and direct conversion, as `metrics.flow`
    /// and `metrics.conversion` answer for the month.
    pub stages: Vec<TrendStage>,
    /// Deals won in the month.
    pub won: u64,
    /// Deals lost in the month.
    pub lost: u64,
    /// won ÷ (won + lost); null when none closed.
    pub win_rate: Option<f64>,
    /// Σ amount won.
    pub won_amount: f64,
}

/// One stage in one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendStage {
    /// The stage.
    pub stage: String,
    /// Entered in the month.
    pub entered: i64,
    /// Exited in the month.
    pub exited: i64,
    /// Direct conversion in the month; null when none exited.
    pub rate: Option<f64>,
}

/// One stage's direct conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectRow {
    /// The stage.
    pub stage: String,
    /// Its name, former ids, and whether it was removed.
    #[serde(flatten)]
    pub label: StageLabel,
    /// The stage after it in the period's list, or `won` after the last.
    pub next: String,
    /// Exits that moved on: advanced, or won from the last stage.
    pub moved_on: u64,
    /// All exits in the period.
    pub exits: u64,
    /// Of the exits, forced moves (overrides, and `[migrate]` moving a
    /// removed stage's prospects): moves, not conversion.
    #[serde(default)]
    pub forced: u64,
    /// moved_on ÷ exits; null when none exited.
    pub rate: Option<f64>,
}

/// How far the period's cohort got, for one stage (or `won`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachedRow {
    /// The stage, or `won`.
    pub stage: String,
    /// Prospects of the cohort that ever reached it.
    pub reached: u64,
    /// reached ÷ cohort; null for an empty cohort.
    pub share: Option<f64>,
}

/// Direct conversion, per stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Direct {
    /// What the figures mean.
    pub label: String,
    /// One row per stage.
    pub rows: Vec<DirectRow>,
}

/// The cohort that entered the first stage in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    /// What the figures mean.
    pub label: String,
    /// Prospects that entered the first stage in the period.
    pub cohort: u64,
    /// One row per stage, then `won`.
    pub rows: Vec<ReachedRow>,
}

/// `metrics.conversion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversion {
    /// Start of the period (narrowed to a version's window).
    pub from: crate::model::Millis,
    /// End of the period, exclusive.
    pub to: crate::model::Millis,
    /// The owner filter, if any.
    pub owner: Option<String>,
    /// Moved on ÷ all exits, per stage.
    pub direct: Direct,
    /// How far the period's cohort got.
    pub reached: Reached,
}

/// What a period's figures call a stage: its name, the ids it had before a
/// rename, and whether the process still has it. A period lists every stage
/// that held prospects during it, removed ones too, so its funnel adds up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageLabel {
    /// The display name (a removed stage's, as its last version had it).
    pub name: String,
    /// Ids the stage had before renames: their history is its history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formerly: Vec<String>,
    /// Set when the process in force no longer has the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedStage>,
}

/// A stage a later process version removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemovedStage {
    /// The first version without it.
    pub in_version: u64,
    /// Where `[migrate]` moved its prospects (forced moves), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
}

/// One stage's flow in a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    /// Stage id.
    pub stage: String,
    /// Its name, former ids, and whether it was removed.
    #[serde(flatten)]
    pub label: StageLabel,
    /// Prospects in the stage at the start.
    pub start: i64,
    /// Transitions into the stage (creation in it counts).
    pub entered: i64,
    /// Transitions out of the stage.
    pub exited: i64,
    /// Exits by kind.
    pub exited_by_kind: BTreeMap<String, i64>,
    /// With an owner filter: prospects handed to / taken from this owner
    /// while in the stage (included in entered / exited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigned: Option<(i64, i64)>,
    /// Prospects in the stage at the end.
    pub end: i64,
}

/// `metrics.flow`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Start of the period (narrowed to a version's window).
    pub from: crate::model::Millis,
    /// End of the period, exclusive.
    pub to: crate::model::Millis,
    /// The owner filter, if any.
    pub owner: Option<String>,
    /// The version filter, if any.
    pub version: Option<u64>,
    /// The definitions, in words.
    pub note: String,
    /// One row per stage.
    pub rows: Vec<FlowRow>,
}

/// One stage's time in stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeInStageRow {
    /// The stage.
    pub stage: String,
    /// Its name, former ids, and whether it was removed.
    #[serde(flatten)]
    pub label: StageLabel,
    /// Stays that ended in the period.
    pub completed: Durations,
    /// Current stays' ages, as of now.
    pub open_ages: Durations,
}

/// `metrics.time_in_stage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeInStage {
    /// Start of the period (narrowed to a version's window).
    pub from: crate::model::Millis,
    /// End of the period, exclusive.
    pub to: crate::model::Millis,
    /// The owner filter, if any.
    pub owner: Option<String>,
    /// One row per stage.
    pub rows: Vec<TimeInStageRow>,
    /// The definitions, in words.
    pub note: String,
}

/// One open prospect idle longer than its stage allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StalledProspect {
    /// The prospect.
    pub id: ProspectId,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Its stage.
    pub stage: String,
    /// Its latest activity.
    pub last_activity_at: crate::model::Millis,
    /// Whole days since then.
    pub idle_days: i64,
    /// The stage's `stall_after_days`.
    pub stall_after_days: u32,
    /// The deal's amount, if it has one.
    #[serde(default)]
    pub amount: Option<f64>,
}

/// `metrics.stalled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stalled {
    /// When it was computed.
    pub as_of: crate::model::Millis,
    /// The stalled prospects: most idle first (or largest amount first),
    /// at most `limit`.
    pub stalled: Vec<StalledProspect>,
    /// How many are stalled in all (`stalled` may hold fewer).
    #[serde(default)]
    pub total: u64,
    /// Σ amount of all of them.
    #[serde(default)]
    pub total_amount: f64,
    /// The currency amounts are in, if the process says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// How many per owner (`""`: no owner).
    pub by_owner: BTreeMap<String, u64>,
    /// The definition, in words.
    pub note: String,
}

/// A checklist item as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// Stable id.
    pub id: String,
    /// What the item asks.
    pub label: String,
    /// Whether it is done.
    pub done: bool,
    /// Evidence, or what is missing.
    pub evidence: String,
}

/// One methodology checklist of a prospect's stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checklist {
    /// The plugin answered.
    Items {
        /// The checklist plugin.
        name: String,
        /// Items done.
        done: u64,
        /// Items in all.
        total: u64,
        /// Each item with its evidence.
        items: Vec<ChecklistItem>,
    },
    /// The plugin failed (closed): why.
    Failed {
        /// The checklist plugin.
        name: String,
        /// Why it has no items.
        error: String,
    },
}

/// `prospect.get` and `prospect.evaluate`: a prospect with where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProspectView {
    /// The prospect.
    #[serde(flatten)]
    pub prospect: Prospect,
    /// Its stage's name; null when the stage is not in the process in force.
    pub stage_name: Option<String>,
    /// Each exit criterion of its stage, as of the request (open prospects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Vec<Verdict>>,
    /// Every exit criterion met (open prospects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// The stage it would move to, or `won` (open prospects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_stage: Option<String>,
    /// Days in its stage, one decimal (open prospects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_in_stage: Option<f64>,
    /// Its stage's checklists.
    pub checklists: Vec<Checklist>,
    /// The process version evaluated under.
    pub process_version: u64,
    /// Its transitions, oldest first (`prospect.get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<Transition>>,
}

/// `prospect.list`: one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProspectPage {
    /// The prospects, in id order.
    pub prospects: Vec<Prospect>,
    /// Pass as `after` for the next page; null at the end.
    pub next: Option<ProspectId>,
}

/// `activity.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activities {
    /// In recording order.
    pub activities: Vec<Activity>,
}

/// `process.diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// The older version.
    pub from: u64,
    /// The newer version.
    pub to: u64,
    /// What changed, in sentences.
    pub changes: Vec<String>,
}

/// `process.get`: a process version's text, and for the version in force
/// also the process as parsed and the last edit that was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessText {
    /// Its number.
    pub version: u64,
    /// BLAKE3 of the text, hex.
    pub hash: String,
    /// When it was loaded.
    pub loaded_at: crate::model::Millis,
    /// The file it was read from.
    pub path: String,
    /// The text as loaded.
    pub text: String,
    /// Whether it is the version in force.
    pub current: bool,
    /// The process as parsed (the version in force only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::process::Process>,
    /// The last edit of the file that was refused, if any since start (the
    /// version in force only; null otherwise).
    #[serde(default)]
    pub last_error: Option<crate::error::InvalidProcess>,
    /// The process's tests (`process.test.toml` beside the file) as they
    /// are now, if it has them (the version in force only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
}

/// One stored process version and when it was in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionWindow {
    /// Its number.
    pub version: u64,
    /// BLAKE3 of the file, hex.
    pub hash: String,
    /// When it was loaded.
    pub loaded_at: crate::model::Millis,
    /// When it came into force (see docs/protocol.md: backfills may date it earlier).
    pub in_force_from: crate::model::Millis,
    /// When the next version came into force; null for the current one.
    pub in_force_until: Option<crate::model::Millis>,
    /// The file it was read from.
    pub path: String,
}

/// `process.versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The version in force.
    pub current: u64,
    /// Every version, oldest first.
    pub versions: Vec<VersionWindow>,
}

/// `events.subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    /// Always true: notifications follow on this connection.
    pub subscribed: bool,
    /// Every notification that can arrive.
    pub events: Vec<String>,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// A short stable name for the rule (`no-exit-criteria`, …).
    pub rule: String,
    /// 1-based line, 0 when the finding is about the whole file.
    pub line: usize,
    /// 1-based column, 0 when the finding is about the whole file.
    pub column: usize,
    /// The key path (`stages[1].exit[0]`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// `process.validate`: whether a text would load, and what it would change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// It parses and passes every check.
    pub valid: bool,
    /// Every error (empty when valid).
    pub errors: Vec<crate::error::ProcessError>,
    /// The lint findings (empty when invalid).
    pub warnings: Vec<Warning>,
    /// How many stages it has (when valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<usize>,
    /// What it changes against the version in force, in sentences (when valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<String>>,
}

/// Record counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// All prospects.
    pub prospects: u64,
    /// Prospects still open.
    pub open_prospects: u64,
    /// Activities recorded.
    pub activities: u64,
    /// Transitions recorded.
    pub transitions: u64,
}

/// The process review is overdue (`review_every_days` in `process.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// What to do, in words.
    pub message: String,
    /// Whole days since the process last changed.
    pub days_since_change: f64,
    /// The review interval.
    pub review_every_days: u32,
}

/// The process in force, in `daemon.status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusProcess {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// BLAKE3 of the file, hex.
    pub hash: String,
    /// The file served.
    pub path: String,
    /// When this version was loaded.
    pub loaded_at: crate::model::Millis,
    /// Its stage ids, in order.
    pub stages: Vec<String>,
    /// The last rejected edit of the file, until a good one.
    pub last_error: Option<crate::error::InvalidProcess>,
    /// Present when the review is overdue.
    pub review: Option<Review>,
}

/// The writer's statistics since start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterSummary {
    /// Transactions committed.
    pub commits: u64,
    /// Requests applied.
    pub requests: u64,
    /// Requests per commit.
    pub mean_batch: f64,
    /// Mean time applying a batch, ms.
    pub mean_apply_ms: f64,
    /// Mean time committing a batch, ms.
    pub mean_commit_ms: f64,
}

/// `daemon.status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// This build's version.
    pub daemon_version: String,
    /// Deprecated alias of `daemon_version`.
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    /// When it started.
    pub started_at: crate::model::Millis,
    /// Seconds since then.
    pub uptime_seconds: i64,
    /// The socket it serves.
    pub socket: String,
    /// Its data directory.
    pub data_dir: String,
    /// The process in force.
    pub process: StatusProcess,
    /// Record counts; null while the database cannot be read.
    pub counts: Option<Counts>,
    /// Open connections.
    pub connections: u64,
    /// The writer's statistics.
    pub writer: WriterSummary,
    /// Whether the store takes writes.
    pub store: StoreHealth,
    /// A `process.simulate` running now: prospects replayed of all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<(u64, u64)>,
    /// Plugins the process declares that are not loaded, and why: being
    /// compiled in the background after a start with a cold cache (their
    /// criteria are unmet meanwhile, and open prospects are evaluated again
    /// when they are ready), or that load's failure. Absent when all are.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub plugins_unavailable: std::collections::BTreeMap<String, String>,
}

/// How the store is doing, in `daemon.status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// `ok`, or `degraded` while writes fail (a full disk, an I/O error);
    /// reads go on, and it is `ok` again with the first write that
    /// succeeds.
    pub health: String,
    /// Why it is degraded.
    pub reason: Option<String>,
    /// Since when.
    pub since: Option<crate::model::Millis>,
}

/// One side of a `metrics.compare` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSide {
    /// The stage's flow in that period.
    pub flow: FlowRow,
    /// Stays that ended in that period.
    pub time_in_stage: Durations,
    /// The direct conversion, as `metrics.conversion` defines it: exits that
    /// moved on (advanced, or won from the last stage) ÷ all exits; null
    /// when none exited.
    pub advance_rate: Option<f64>,
    /// Exits that moved on.
    #[serde(default)]
    pub moved_on: u64,
}

/// b − a for one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareDelta {
    /// Entered, b − a.
    pub entered: i64,
    /// Exited, b − a.
    pub exited: i64,
}

/// One stage in `metrics.compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// The stage.
    pub stage: String,
    /// The first period.
    pub a: CompareSide,
    /// The second period.
    pub b: CompareSide,
    /// The differences.
    pub delta: CompareDelta,
    /// Whether the conversion and time-in-stage differences are likely real.
    #[serde(default)]
    pub significance: Option<RowSignificance>,
}

/// The tests behind one stage's differences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowSignificance {
    /// Direct conversion (moved on of exits), b against a.
    pub conversion: Significance,
    /// Completed stays' durations, b against a.
    pub time_in_stage: Significance,
}

/// A compared period, as answered (narrowed to its version's window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparedPeriod {
    /// Start.
    pub from: crate::model::Millis,
    /// End, exclusive.
    pub to: crate::model::Millis,
    /// The version filter, if any.
    pub version: Option<u64>,
    /// The owner filter, if any.
    pub owner: Option<String>,
}

/// `metrics.compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compare {
    /// The first period.
    pub a: ComparedPeriod,
    /// The second period.
    pub b: ComparedPeriod,
    /// One row per stage.
    pub rows: Vec<CompareRow>,
    /// Deals won and lost in each period, and whether the win rates differ.
    #[serde(default)]
    pub win_rate: Option<CompareWinRate>,
}

/// Win rates of two periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareWinRate {
    /// Won, lost in the first period.
    pub a: (u64, u64),
    /// Won, lost in the second.
    pub b: (u64, u64),
    /// Whether the difference is likely real.
    pub significance: Significance,
}

impl CompareWinRate {
    /// won ÷ (won + lost) of one side, `(won, lost)`; none when none closed.
    pub fn rate((won, lost): (u64, u64)) -> Option<f64> {
        (won + lost > 0).then(|| won as f64 / (won + lost) as f64)
    }

    /// Each side in words: `22.1% (25 won of 113)`, `– (0 won of 0)`.
    pub fn sides(&self) -> [String; 2] {
        [self.a, self.b].map(|side| {
            let rate = Self::rate(side).map_or("–".into(), |r| format!("{:.1}%", r * 100.0));
            format!("{rate} ({} won of {})", side.0, side.0 + side.1)
        })
    }
}

/// Whether a difference between two samples is likely real, could be
/// noise, or the samples are too small to tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Significance {
    /// The test or interval used.
    pub test: String,
    /// The first sample's size.
    pub n_a: u64,
    /// The second sample's size.
    pub n_b: u64,
    /// b − a (rates as fractions, durations as median days).
    pub difference: Option<f64>,
    /// The 95% interval of the difference, where the test gives one.
    pub interval: Option<(f64, f64)>,
    /// The two-sided p-value, where the test gives one.
    pub p_value: Option<f64>,
    /// `likely real`, `could be noise`, or `too few to tell` (fewer than 10
    /// on a side).
    pub verdict: String,
}

/// One external id found by `prospect.lookup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupEntry {
    /// The prospect.
    pub id: ProspectId,
    /// Its stage.
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
    /// With `history`: each activity as `[kind, at]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activities: Option<Vec<(String, crate::model::Millis)>>,
    /// With `history`: each transition as `[to, at]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<(String, crate::model::Millis)>>,
}

/// `import.begin`: a session for one import's `prospect.import` calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSession {
    /// Its number, for `prospect.import`'s `session`.
    pub session: u64,
    /// Seconds without a request after which it is given up.
    pub idle_secs: u64,
}

/// What became of one deal of `import.deals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealResult {
    /// Applied: written with the session's commit.
    Imported(Imported),
    /// Refused, as `prospect.import` would answer it; nothing of it written.
    Refused(crate::protocol::RpcError),
}

/// `import.deals`: one result per deal, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedDeals {
    /// `{"imported": …}` or `{"refused": error}` per deal.
    pub results: Vec<DealResult>,
}

/// `import.commit` and `import.abort`: how the session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportEnded {
    /// The session.
    pub session: u64,
    /// Whether its imports are written (durable) or none of them is.
    pub committed: bool,
    /// Imports written (refused ones not counted); 0 when not committed.
    pub imports: u64,
}

/// `prospect.lookup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lookup {
    /// External id → what is there; absent ids are left out.
    pub found: BTreeMap<String, LookupEntry>,
}

/// The records of one `export.page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExportRows {
    /// `what: prospects`.
    Prospects(Vec<Prospect>),
    /// `what: activities`.
    Activities(Vec<Activity>),
    /// `what: transitions`.
    Transitions(Vec<Transition>),
}

impl ExportRows {
    /// No records (an empty page reads back as any kind: JSON `[]` does not
    /// say which).
    pub fn is_empty(&self) -> bool {
        match self {
            ExportRows::Prospects(v) => v.is_empty(),
            ExportRows::Activities(v) => v.is_empty(),
            ExportRows::Transitions(v) => v.is_empty(),
        }
    }
}

/// `export.page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedPage {
    /// The records, in cursor order.
    pub rows: ExportRows,
    /// Pass as `after` for the next page; null at the end.
    pub next: Option<serde_json::Value>,
}

/// The most memory any plugin may be given (the pool's slot size).
pub const MAX_MEMORY_MIB: u32 = 256;

/// Limits for one plugin, from its `[[plugins]]` entry. A call that passes
/// one fails closed (its criterion is unmet with the reason), is counted,
/// logged and pushed as `plugin.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Fuel per call (roughly, wasm instructions).
    pub fuel: u64,
    /// Linear memory per call, MiB, all of the component's memories together.
    pub memory_mib: u32,
    /// Wall-clock deadline per call.
    pub timeout_ms: u64,
    /// Input size bound, KiB: older activities are left out beyond it.
    pub max_input_kib: u32,
    /// All text a call returns together, KiB.
    pub max_output_kib: u32,
    /// Checklist items or metric values one call may return.
    pub max_items: u32,
    /// Bytes of any one string a call returns (a reason, an item's id, label
    /// or evidence, a metric's name or label). An error message longer than
    /// this is cut to it.
    pub max_text_bytes: u32,
    /// Log bytes one call may write; the rest is dropped (and said so).
    pub max_log_kib: u32,
    /// Log lines per second per plugin, across calls; the rest is dropped and
    /// counted in the next line that gets through.
    pub max_log_lines_per_second: u32,
    /// Size of the component file, MiB: a larger file is refused unread.
    pub max_file_mib: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            memory_mib: 32,
            timeout_ms: 50,
            max_input_kib: 256,
            max_output_kib: 64,
            max_items: 256,
            max_text_bytes: 1024,
            max_log_kib: 16,
            max_log_lines_per_second: 20,
            max_file_mib: 64,
        }
    }
}

/// What runs a plugin's code: compiled to WebAssembly (Rust, C), or an
/// interpreter inside the component. `stagecoach plugins build` records it
/// in the component (a `stagecoach:runtime` custom section); a component
/// without one counts as compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Compiled to WebAssembly.
    #[default]
    Compiled,
    /// CPython (componentize-py).
    Python,
    /// QuickJS (componentize-qjs).
    Quickjs,
}

impl Runtime {
    /// The runtime a `stagecoach:runtime` section names.
    pub fn from_section(data: &[u8]) -> Runtime {
        match data {
            b"python" => Runtime::Python,
            b"quickjs" => Runtime::Quickjs,
            _ => Runtime::Compiled,
        }
    }

    /// Fuel, memory and time per call for plugins on this runtime, where
    /// `process.toml` does not set them. An interpreter converts the whole
    /// input into its own objects before the plugin's code runs and
    /// interprets every step after. Measured on BANT over 300 activities
    /// (`stagecoach plugins run`): Rust 0.26M fuel, CPython 28.5M (and a
    /// 13 MiB heap), QuickJS 45.2M, each ~20 ms; the defaults leave room for
    /// the largest input the host sends (`max_input_kib`).
    pub fn default_limits(self) -> Limits {
        let compiled = Limits::default();
        match self {
            Runtime::Compiled => compiled,
            Runtime::Python => Limits {
                fuel: 400_000_000,
                memory_mib: 128,
                timeout_ms: 1_000,
                ..compiled
            },
            Runtime::Quickjs => Limits {
                fuel: 400_000_000,
                memory_mib: 64,
                timeout_ms: 500,
                ..compiled
            },
        }
    }
}

/// What a plugin can do, from its own `describe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Exit criterion.
    Criterion,
    /// Methodology checklist.
    Checklist,
    /// Metric.
    Metric,
}

/// One loaded plugin, in `plugins.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Its name in `process.toml`.
    pub name: String,
    /// Its file.
    pub path: String,
    /// BLAKE3 of the file, hex.
    pub hash: String,
    /// The plugin interface version it speaks.
    pub interface: String,
    /// What runs its code; interpreted plugins get larger default limits.
    #[serde(default)]
    pub runtime: Runtime,
    /// What it says it does.
    pub description: String,
    /// What it provides.
    pub provides: Vec<Capability>,
    /// Whether it reads the activity log.
    pub reads_activities: bool,
    /// Its limits per call.
    pub limits: Limits,
    /// Calls since start.
    pub calls: u64,
    /// Calls that failed closed.
    pub failures: u64,
    /// Answers reused instead of calling the plugin again on the same input
    /// (computed ahead, off the writer, or by an earlier request).
    #[serde(default)]
    pub reused: u64,
    /// Mean wall time per call, µs.
    pub mean_micros: f64,
}

/// `plugins.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plugins {
    /// The loaded plugins, by name.
    pub plugins: Vec<PluginInfo>,
    /// The process version they serve.
    pub process_version: u64,
}

/// A metric plugin's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    /// What it is.
    pub name: String,
    /// Which slice.
    pub label: String,
    /// The number.
    pub value: f64,
}

/// `metrics.plugin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginMetric {
    /// The metric plugin.
    pub plugin: String,
    /// Its values.
    pub values: Vec<MetricValue>,
    /// How long the call took, µs.
    pub micros: f64,
}

// `process.discover`.

/// Knobs of the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Also analyse lost deals (graph, variants, owners); the draft always
    /// learns from won deals only.
    pub include_lost: bool,
    /// A kind is a main step when at least this share of won deals show it.
    pub min_support: f64,
    /// Kinds seen in fewer than this share of analysed deals are left out of
    /// the graph as noise.
    pub min_share: f64,
    /// How many variants to list.
    pub variants: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            include_lost: false,
            min_support: 0.5,
            min_share: 0.05,
            variants: 10,
        }
    }
}

/// A kind's statistics over won deals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// The activity kind.
    pub kind: String,
    /// `prospect` or `rep` (the most common actor of the kind).
    pub actor: crate::model::Actor,
    /// Won deals that show it.
    pub won_deals: usize,
    /// Their share of won deals.
    pub support: f64,
    /// Whether it is a main step (support ≥ `min_support`).
    pub main: bool,
    /// Days from the deal's creation to its first occurrence.
    pub from_start: Durations,
    /// The generic stage it ends, for main prospect actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// An edge of the directly-follows graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// The earlier kind, or `(created)`.
    pub from: String,
    /// The later kind, or `(won)` / `(lost)`.
    pub to: String,
    /// How many times one directly followed the other.
    pub count: usize,
    /// Days between them.
    pub days: Durations,
}

/// One order of the main prospect actions and how many deals followed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// The main steps in the order they happened.
    pub path: Vec<String>,
    /// Deals that followed it.
    pub deals: usize,
    /// Their share of analysed deals.
    pub share: f64,
    /// Won among them.
    pub won: usize,
}

/// One owner's deals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerStats {
    /// The rep (`(none)` for unowned deals).
    pub owner: String,
    /// Closed deals analysed.
    pub deals: usize,
    /// Won.
    pub won: usize,
    /// Won ÷ deals.
    pub win_rate: f64,
    /// Cycle of their won deals.
    pub won_cycle: Durations,
    /// Median activities per deal.
    pub median_activities: f64,
}

/// A generic stage and the observed steps that end it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageMap {
    /// The generic stage id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The main prospect actions that end it, in order.
    pub exit: Vec<String>,
    /// Time in the stage for won deals that show all its steps.
    pub days: Durations,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// The knobs used.
    pub options: Options,
    /// Deals analysed.
    pub deals: usize,
    /// Won among them.
    pub won: usize,
    /// Lost among them.
    pub lost: usize,
    /// Distinct owners.
    pub owners_count: usize,
    /// The earliest creation among them.
    pub from: Option<crate::model::Millis>,
    /// The latest close among them.
    pub to: Option<crate::model::Millis>,
    /// Days from creation to close, won deals.
    pub won_cycle: Durations,
    /// Days from creation to close, lost deals.
    pub lost_cycle: Durations,
    /// Every activity kind over won deals, main steps first, by median time.
    pub steps: Vec<StepStats>,
    /// The directly-follows graph.
    pub edges: Vec<Edge>,
    /// The most common orders of the main prospect actions.
    pub variants: Vec<Variant>,
    /// By owner.
    pub owners: Vec<OwnerStats>,
    /// The observed steps mapped onto the generic stages (stages with no
    /// observed step are left out).
    pub stages: Vec<StageMap>,
    /// How the draft fits the deals it was learned from.
    pub fit: Fit,
    /// A draft `process.toml`.
    pub draft: String,
    /// The directly-follows graph in Graphviz DOT.
    pub dot: String,
    /// Activity kinds whose direction (by the prospect or by the rep) the
    /// source left open, with how many activities (discovery from CSV files
    /// only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_direction: BTreeMap<String, u64>,
}

/// A draft replayed over the deals it was learned from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Where the draft leaves the deals: one row per draft stage, then `won`.
    pub stages: Vec<FitRow>,
    /// Won deals the draft closes won.
    pub won_closed_won: usize,
    /// Lost deals the draft would close won: must be zero.
    pub lost_closed_won: usize,
    /// Open deals the draft would close won: must be zero.
    pub open_closed_won: usize,
    /// The last stage closes won only by hand (`advance = "manual"`): no
    /// prospect action separates won deals from lost and open ones.
    pub manual_close: bool,
    /// Why the last stage exits as it does, in a sentence.
    pub close_note: String,
}

/// Deals a draft leaves in one stage (or `won`), by what the source says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitRow {
    /// The stage id, or `won`.
    pub stage: String,
    /// Won in the source.
    pub won: usize,
    /// Lost in the source.
    pub lost: usize,
    /// Open in the source.
    pub open: usize,
}

/// `process.simulate`: the stored history replayed under a draft, beside
/// what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// The period measured.
    pub from: crate::model::Millis,
    /// Its end, exclusive.
    pub to: crate::model::Millis,
    /// What was replayed.
    pub replayed: Replayed,
    /// What the draft cannot replay faithfully, in sentences.
    pub warnings: Vec<String>,
    /// Open prospects per stage now: actual (in the process in force) and
    /// simulated (in the draft's stages), in the draft's order then the
    /// stages only the process in force has.
    pub stages: Vec<SimulatedStage>,
    /// How many prospects stand differently, by change: `held back`,
    /// `further`, `closed`, `reopened`, `won, not earned`, `elsewhere`.
    pub changes: BTreeMap<String, u64>,
    /// The prospects that stand differently, at most `limit`.
    pub moved: Vec<SimulatedProspect>,
    /// How many stand differently in all.
    pub moved_total: u64,
    /// Per exit criterion of the draft: the open prospects it holds now.
    pub criteria: Vec<SimulatedCriterion>,
    /// The period's figures as they are.
    pub actual: Measured,
    /// The period's figures under the draft.
    pub simulated: Measured,
}

/// What a simulation replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    /// Prospects.
    pub prospects: u64,
    /// Activities (field changes included).
    pub activities: u64,
    /// Forced moves, as recorded.
    pub forced_moves: u64,
    /// Wins the draft's criteria would not have allowed (still wins).
    pub unearned_wins: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// One stage's open prospects, actual and simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedStage {
    /// The stage.
    pub stage: String,
    /// Its name.
    pub name: String,
    /// Open prospects there now.
    pub actual: u64,
    /// Open prospects there under the draft.
    pub simulated: u64,
}

/// A prospect that would stand differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedProspect {
    /// The prospect.
    pub id: crate::model::ProspectId,
    /// Its name.
    pub name: String,
    /// Its stage now.
    pub actual_stage: String,
    /// Its status now.
    pub actual_status: crate::model::Status,
    /// Its stage under the draft.
    pub simulated_stage: String,
    /// Its status under the draft.
    pub simulated_status: crate::model::Status,
    /// See [`Simulation::changes`].
    pub change: String,
}

/// One exit criterion of the draft, and who it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedCriterion {
    /// The stage.
    pub stage: String,
    /// The criterion's question.
    pub question: String,
    /// Open prospects in the stage for which it is unmet now.
    pub holding: u64,
    /// Their days in the stage so far.
    pub held: Durations,
}

/// A period's figures, in the shapes `metrics.*` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// As `metrics.flow`.
    pub flow: Flow,
    /// As `metrics.time_in_stage`.
    pub time_in_stage: TimeInStage,
    /// As `metrics.conversion`.
    pub conversion: Conversion,
    /// As `metrics.outcomes`.
    pub outcomes: Outcomes,
}

/// `metrics.criteria`: for each exit criterion and checklist item, whether
/// meeting it by the time a prospect left the stage went with winning, and
/// how often a warn-mode criterion was breached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    /// Start of the period (deals closed from).
    pub from: crate::model::Millis,
    /// End, exclusive.
    pub to: crate::model::Millis,
    /// Deals closed in the period that were looked at.
    pub closed: u64,
    /// More deals closed than are looked at (the most recent are).
    pub capped: bool,
    /// One row per criterion, then per checklist item, in stage order.
    pub rows: Vec<CriterionRow>,
    /// The definitions, in words.
    pub note: String,
}

/// One exit criterion or checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionRow {
    /// The stage.
    pub stage: String,
    /// `criterion` or `checklist item`.
    pub kind: String,
    /// The criterion's question, or `checklist: item label`.
    pub name: String,
    /// A criterion's mode: `enforce` or `warn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Closed deals that had met it when they left the stage: won, lost.
    pub met: (u64, u64),
    /// Closed deals that had not: won, lost.
    pub unmet: (u64, u64),
    /// Win rate of those that met it.
    pub win_rate_met: Option<f64>,
    /// Win rate of those that did not.
    pub win_rate_unmet: Option<f64>,
    /// Met against unmet.
    pub significance: Significance,
    /// `predicts winning`, `predicts losing`, `does not predict winning`, or
    /// `too few to tell`.
    pub verdict: String,
    /// A warn-mode criterion: moves in the period it would have blocked.
    #[serde(default)]
    pub breaches: u64,
    /// Of the prospects behind those breaches: won, lost, open now.
    #[serde(default)]
    pub breached_fate: (u64, u64, u64),
}

/// `metrics.conformance`: are we following our own process?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conformance {
    /// Start of the period.
    pub from: crate::model::Millis,
    /// End, exclusive.
    pub to: crate::model::Millis,
    /// Per stage left, in the process's order.
    pub stages: Vec<ConformanceRow>,
    /// Per owner (`""`: none).
    pub owners: Vec<ConformanceRow>,
    /// Why moves were forced, most first.
    pub forced_reasons: Vec<ForcedReason>,
    /// Wins in the period an import recorded without the criteria met.
    pub imported_wins: u64,
    /// Losses in the period an import recorded.
    pub imported_losses: u64,
    /// More prospects than are read (200,000) had moves to look at.
    pub capped: bool,
    /// The definitions, in words.
    pub note: String,
}

/// Moves by who decided them, for one stage or owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConformanceRow {
    /// The stage id, or the owner.
    pub key: String,
    /// The stage's name, or the owner.
    pub name: String,
    /// Advanced or won with the exit criteria met.
    pub by_criteria: u64,
    /// Forced by a person.
    pub forced: u64,
    /// Skipped stages (a source's dated history).
    pub skipped: u64,
    /// Went back a stage (a source's dated history).
    pub regressed: u64,
    /// Lost.
    pub lost: u64,
    /// Recorded by an import as the source had them.
    pub imported: u64,
    /// Warn-mode criteria unmet on these moves.
    pub breaches: u64,
}

/// A reason given for forced moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedReason {
    /// The reason.
    pub reason: String,
    /// How many moves.
    pub count: u64,
}
