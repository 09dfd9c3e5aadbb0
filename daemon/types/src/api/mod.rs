//! The protocol as types: every method's name, parameters and result, one
//! definition for the daemon and for any Rust client.
//!
//! Each method is a marker type implementing [`Method`]. Results not yet
//! typed are [`serde_json::Value`]; they become types one by one.

pub mod params;
pub mod results;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One protocol method.
pub trait Method {
    /// `noun.verb`, as on the wire.
    const NAME: &'static str;
    /// Its parameters.
    type Params: Serialize + DeserializeOwned;
    /// Its result.
    type Result: Serialize + DeserializeOwned;
}

macro_rules! methods {
    ($($(#[$doc:meta])* $marker:ident = $name:literal ($params:ty) -> $result:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub enum $marker {}
            impl Method for $marker {
                const NAME: &'static str = $name;
                type Params = $params;
                type Result = $result;
            }
        )*
        /// Every method's name.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

/// One marker type per method, named after it (`methods::MetricsFlow` is
/// `metrics.flow`).
pub mod methods {
    use super::Method;
    use super::params as p;
    use super::results as r;

    methods! {
        /// What is running, on what, and how it is doing.
        DaemonStatus = "daemon.status" (p::NoParams) -> r::DaemonStatus;
        /// Notifications on this connection from now on.
        EventsSubscribe = "events.subscribe" (p::NoParams) -> r::Subscribed;
        /// The process version in force, or a stored one.
        ProcessGet = "process.get" (p::ProcessGet) -> r::ProcessText;
        /// Every stored process version and when each was in force.
        ProcessVersions = "process.versions" (p::NoParams) -> r::Versions;
        /// Checks a process text without applying it.
        ProcessValidate = "process.validate" (p::ProcessValidate) -> r::Validation;
        /// What changed between two versions, in words.
        ProcessDiff = "process.diff" (p::ProcessDiff) -> r::Diff;
        /// Replays the stored history under a draft, beside what happened.
        ProcessSimulate = "process.simulate" (p::ProcessSimulate) -> r::Simulation;
        /// Loads the process file (or a given text) as a new version.
        ProcessReload = "process.reload" (p::ProcessReload) -> super::ReloadResult;
        /// Re-applies the criteria to every open prospect.
        ProcessReevaluate = "process.reevaluate" (p::ProcessReevaluate) -> r::Reevaluated;
        /// A draft process learnt from closed deals.
        ProcessDiscover = "process.discover" (p::ProcessDiscover) -> r::Discovery;
        /// A new prospect.
        ProspectCreate = "prospect.create" (p::NewProspect) -> r::ProspectMoves;
        /// One prospect with its verdicts, checklists and transitions.
        ProspectGet = "prospect.get" (p::ById) -> r::ProspectView;
        /// A page of prospects.
        ProspectList = "prospect.list" (p::ProspectList) -> r::ProspectPage;
        /// Changes a prospect's name, company, owner or fields.
        ProspectUpdate = "prospect.update" (p::ProspectUpdate) -> r::ProspectMoves;
        /// A prospect's verdicts, as `prospect.get` without transitions.
        ProspectEvaluate = "prospect.evaluate" (p::ById) -> r::ProspectView;
        /// Moves a prospect on when its criteria are met.
        ProspectAdvance = "prospect.advance" (p::ById) -> r::Moved;
        /// A forced move, with a reason.
        ProspectMove = "prospect.move" (p::ProspectMove) -> r::Moved;
        /// Won or lost.
        ProspectClose = "prospect.close" (p::ProspectClose) -> r::Moved;
        /// Which external ids are present, with their history.
        ProspectLookup = "prospect.lookup" (p::ProspectLookup) -> r::Lookup;
        /// One deal with its history from another system.
        ProspectImport = "prospect.import" (p::ImportProspect) -> r::Imported;
        /// Starts an import session: many `prospect.import`s, one commit.
        ImportBegin = "import.begin" (p::NoParams) -> r::ImportSession;
        /// Many deals of an import session in one request.
        ImportDeals = "import.deals" (p::ImportDeals) -> r::ImportedDeals;
        /// Writes an import session's imports, durable, all at once.
        ImportCommit = "import.commit" (p::ImportSessionId) -> r::ImportEnded;
        /// Gives an import session up: none of its imports is written.
        ImportAbort = "import.abort" (p::ImportSessionId) -> r::ImportEnded;
        /// Records what happened.
        ActivityRecord = "activity.record" (p::NewActivity) -> r::Recorded;
        /// A prospect's activities.
        ActivityList = "activity.list" (p::ActivityList) -> r::Activities;
        /// The loaded plugins.
        PluginsList = "plugins.list" (p::NoParams) -> r::Plugins;
        /// A metric plugin's values.
        MetricsPlugin = "metrics.plugin" (p::MetricsPlugin) -> r::PluginMetric;
        /// Per stage: start, entered, exited, end.
        MetricsFlow = "metrics.flow" (p::Period) -> r::Flow;
        /// Per stage: completed stays and open ages.
        MetricsTimeInStage = "metrics.time_in_stage" (p::Period) -> r::TimeInStage;
        /// Direct and cohort conversion.
        MetricsConversion = "metrics.conversion" (p::ConversionPeriod) -> r::Conversion;
        /// Win rate, cycle, amounts, velocity.
        MetricsOutcomes = "metrics.outcomes" (p::OutcomesPeriod) -> r::Outcomes;
        /// Open prospects idle longer than their stage allows.
        MetricsStalled = "metrics.stalled" (p::MetricsStalled) -> r::Stalled;
        /// A scorecard per rep: pipeline, moves, outcomes, cycle, stalled.
        MetricsOwners = "metrics.owners" (p::MetricsOwners) -> r::Owners;
        /// Whether each criterion and checklist item goes with winning.
        MetricsCriteria = "metrics.criteria" (p::MetricsCriteria) -> r::Criteria;
        /// Moves by who decided them: the criteria, a person, an import.
        MetricsConformance = "metrics.conformance" (p::MetricsConformance) -> r::Conformance;
        /// Flow, conversion and win rate month by month.
        MetricsTrends = "metrics.trends" (p::MetricsTrends) -> r::Trends;
        /// Two periods side by side.
        MetricsCompare = "metrics.compare" (p::MetricsCompare) -> r::Compare;
        /// One page of an export.
        ExportPage = "export.page" (p::ExportPage) -> r::ExportedPage;
    }
}

/// Whether `process.reload` put a new version in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The text is the version in force: nothing changed.
    Unchanged,
    /// A new version is in force.
    Reloaded,
}

impl ReloadResult {
    /// The answer when the text is the version in force.
    pub fn unchanged(version: u64) -> ReloadResult {
        ReloadResult {
            outcome: ReloadOutcome::Unchanged,
            version,
            previous: version,
            changes: Vec::new(),
            renamed: 0,
            migrated: 0,
        }
    }
}

/// The result of `process.reload`: always every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadResult {
    /// What happened.
    pub outcome: ReloadOutcome,
    /// The version in force now.
    pub version: u64,
    /// The version in force before (equal to `version` when unchanged).
    pub previous: u64,
    /// What changed, in words (empty when unchanged).
    pub changes: Vec<String>,
    /// Prospects that followed a renamed stage.
    pub renamed: u64,
    /// Prospects moved out of removed stages by `[migrate]`.
    pub migrated: u64,
}
