//! Every method's parameters. The daemon parses requests into these and a
//! Rust client builds them: one definition, so the two cannot drift.
//!
//! All are `deny_unknown_fields`: a misspelt parameter is refused, never
//! silently ignored. Optional parameters are left out when unset.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Actor, Fields, Millis, ProspectId, Status, TransitionKind};

fn is_false(b: &bool) -> bool {
    !*b
}

/// The largest id a cursor (`after`) may name: ids are assigned from 1 up
/// and stay exact in every JSON reader (2^53 − 1).
pub const MAX_CURSOR_ID: u64 = (1 << 53) - 1;

/// No parameters (`{}` or absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `process.get`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessGet {
    /// A stored version instead of the one in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `process.validate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessValidate {
    /// The `process.toml` text.
    pub text: String,
    /// The file name to report errors against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// `process.reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessReload {
    /// Write this text to the process file first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// With `text`: the process's tests to check it against, written
    /// beside it (`process.test.toml`) together with it, both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<String>,
}

/// `process.reevaluate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessReevaluate {
    /// Evaluate as of this time; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `process.diff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessDiff {
    /// The older version.
    pub from: u64,
    /// The newer version; the one in force if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// `process.discover`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessDiscover {
    /// Analyse lost deals too (they always check the draft).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_lost: bool,
    /// Share of won deals a step needs to count (0–1, default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_support: Option<f64>,
    /// Share of deals a path needs to be listed (0–1, default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_share: Option<f64>,
    /// How many paths to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<usize>,
    /// Deals closed at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Millis>,
    /// Deals closed before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// Only this rep's deals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only the most recently closed `last` deals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// `prospect.create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProspect {
    /// Person or deal name.
    pub name: String,
    /// Company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Owning rep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Initial fields.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: Fields,
    /// Starting stage; the first stage if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Id in another system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Creation time (imports); now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `prospect.update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectUpdate {
    /// The prospect.
    pub id: ProspectId,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// New owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Fields to set; `null` removes a field.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, Value>,
    /// When; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `prospect.get`, `prospect.evaluate` and `prospect.advance`: one prospect,
/// as of a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ById {
    /// The prospect.
    pub id: ProspectId,
    /// As of (for `advance`: when); now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `prospect.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectList {
    /// Only open prospects in this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Only this rep's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only open, won or lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// After this prospect id (the previous page's `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ProspectId>,
    /// Page size (1–10000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `prospect.move`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectMove {
    /// The prospect.
    pub id: ProspectId,
    /// The stage to move to.
    pub to: String,
    /// Why (required: a forced move is an exception to the process).
    pub reason: String,
    /// Who forced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// How a prospect closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Won: needs the last stage with its criteria met.
    Won,
    /// Lost: from any stage.
    Lost,
}

impl From<Outcome> for Status {
    fn from(o: Outcome) -> Status {
        match o {
            Outcome::Won => Status::Won,
            Outcome::Lost => Status::Lost,
        }
    }
}

/// `prospect.close`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectClose {
    /// The prospect.
    pub id: ProspectId,
    /// Won or lost.
    pub outcome: Outcome,
    /// Why (lost reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `prospect.lookup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectLookup {
    /// Up to 10,000 external ids.
    pub external_ids: Vec<String>,
    /// Also return each one's activities and transitions (`[kind, at]`,
    /// `[to, at]`), so an import can skip what is already there.
    #[serde(default, skip_serializing_if = "is_false")]
    pub history: bool,
}

/// `activity.record`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    /// The prospect.
    pub prospect: ProspectId,
    /// What happened.
    pub kind: String,
    /// Who did it; the declared actor of the kind, else `prospect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// When; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
    /// Extra data.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, Value>,
}

/// `activity.list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityList {
    /// The prospect.
    pub prospect: ProspectId,
    /// Only this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `metrics.plugin`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsPlugin {
    /// The metric plugin.
    pub plugin: String,
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// As of; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

/// `metrics.flow`, `metrics.time_in_stage` and each side of
/// `metrics.compare`: a period, optionally narrowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Start (whole UTC days: rounded down to midnight).
    pub from: Millis,
    /// End, exclusive.
    pub to: Millis,
    /// Only this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only while this process version was in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// `metrics.conversion`: a period, not a stage (the answer has every stage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionPeriod {
    /// Start.
    pub from: Millis,
    /// End, exclusive.
    pub to: Millis,
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only while this process version was in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl From<ConversionPeriod> for Period {
    fn from(p: ConversionPeriod) -> Period {
        Period {
            from: p.from,
            to: p.to,
            stage: None,
            owner: p.owner,
            version: p.version,
        }
    }
}

/// `metrics.outcomes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomesPeriod {
    /// Start.
    pub from: Millis,
    /// End, exclusive.
    pub to: Millis,
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The field holding a deal's amount (default `amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_field: Option<String>,
}

/// `metrics.stalled`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsStalled {
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Only this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Order: most idle days first (default), or largest amount first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<StalledSort>,
    /// At most this many in `stalled` (totals count all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// How `metrics.stalled` orders its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StalledSort {
    /// Most idle days first.
    #[default]
    Idle,
    /// Largest amount first.
    Value,
}

/// `process.simulate`: a draft process's text, replayed over the stored
/// history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSimulate {
    /// The draft `process.toml`'s text.
    pub text: String,
    /// The file name errors name (default `draft.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The period measured (default: the 90 days before now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Millis>,
    /// Its end, exclusive (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// At most this many prospects in `moved` (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A period and nothing else: `metrics.owners`, `metrics.criteria` (deals
/// closed in it) and `metrics.conformance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodOnly {
    /// Start.
    pub from: Millis,
    /// End, exclusive.
    pub to: Millis,
}

/// `metrics.owners`.
pub type MetricsOwners = PeriodOnly;
/// `metrics.criteria`.
pub type MetricsCriteria = PeriodOnly;
/// `metrics.conformance`.
pub type MetricsConformance = PeriodOnly;

/// `metrics.trends`: `months` calendar months ending with the one `to` falls in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTrends {
    /// How many months (1 to 120).
    pub months: u32,
    /// A time in the last month; now if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Millis>,
    /// Only this rep's prospects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `metrics.compare`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCompare {
    /// The first period (before).
    pub a: Period,
    /// The second period (after).
    pub b: Period,
}

/// What `export.page` pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportWhat {
    /// Prospects, by id.
    Prospects,
    /// Activities, by prospect then id.
    Activities,
    /// Transitions, by id.
    Transitions,
}

/// `export.page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPage {
    /// Which records.
    pub what: ExportWhat,
    /// The previous page's `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Page size (1–10000, default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Parameters of `prospect.import`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProspect {
    /// The id in the source system: what makes the import idempotent.
    pub external_id: String,
    /// Deal or person name.
    pub name: String,
    /// Company.
    #[serde(default)]
    pub company: Option<String>,
    /// Owning rep.
    #[serde(default)]
    pub owner: Option<String>,
    /// Fields.
    #[serde(default)]
    pub fields: Fields,
    /// When the source created it.
    pub created_at: Millis,
    /// Its activities, in any order.
    #[serde(default)]
    pub activities: Vec<ImportActivity>,
    /// The source's dated stage history, if it has one: where the prospect
    /// was created (the first entry) and every later move, `won`/`lost`
    /// included. When present, the exit criteria are not re-applied.
    #[serde(default)]
    pub history: Vec<ImportMove>,
    /// The source's outcome: absent for an open deal.
    #[serde(default)]
    pub outcome: Option<ImportOutcome>,
    /// Where the source says an open deal stands (a stage id).
    #[serde(default)]
    pub source_stage: Option<String>,
    /// Move an open deal to `source_stage` when the replay leaves it
    /// elsewhere (a forced move, marked imported).
    #[serde(default)]
    pub trust_source_stage: bool,
    /// Forced moves to make at their times during a replay under the
    /// criteria (`process.simulate` replaying stored history); never on the
    /// wire.
    #[serde(skip)]
    pub forced_moves: Vec<ImportMove>,
    /// The stage it was created in, for a replay without `history` (the
    /// first stage when absent); never on the wire.
    #[serde(skip)]
    pub created_in: Option<String>,
    /// The import session (`import.begin`) to apply it in: written with
    /// the session's `import.commit`, or not at all. Without it, it is
    /// written on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
}

/// `import.deals`: many deals of one session in one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDeals {
    /// As `import.begin` answered it.
    pub session: u64,
    /// Each as `prospect.import` takes it (without `session`).
    pub deals: Vec<ImportProspect>,
}

/// `import.commit` and `import.abort`: which session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSessionId {
    /// As `import.begin` answered it.
    pub session: u64,
}

/// One activity of an imported prospect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportActivity {
    /// What happened.
    pub kind: String,
    /// Who did it; when absent, the kind's declared actor, else the rep's
    /// (an import invents no prospect actions).
    #[serde(default)]
    pub actor: Option<Actor>,
    /// When.
    pub at: Millis,
    /// Anything else.
    #[serde(default)]
    pub data: serde_json::Map<String, Value>,
}

/// One dated move of the source's stage history.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportMove {
    /// The stage entered, or `won` / `lost`.
    pub to: String,
    /// When.
    pub at: Millis,
    /// The kind, when the source records it (a Stagecoach export);
    /// otherwise derived from the stages' order.
    #[serde(default)]
    pub kind: Option<TransitionKind>,
    /// A reason (lost reason, forced-move reason).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who forced it.
    #[serde(default)]
    pub by: Option<String>,
    /// Whether the move is marked imported (default true; a Stagecoach
    /// export carries its own flag).
    #[serde(default = "yes")]
    pub imported: bool,
}

fn yes() -> bool {
    true
}

/// The source's outcome for a closed deal.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOutcome {
    /// `won` or `lost`.
    pub status: Status,
    /// When it closed.
    pub at: Millis,
    /// Why (lost reason).
    #[serde(default)]
    pub reason: Option<String>,
    /// The source gives only the day (`at` is its midnight): the
    /// activities of that day are replayed before the close.
    #[serde(default)]
    pub whole_day: bool,
    /// For a loss: whether its transition is marked imported (by default
    /// it is: the source closed it, not a person under this process). A
    /// replay of the stored history passes the recorded flag, so a loss a
    /// person recorded here is not counted as imported under a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<bool>,
}
