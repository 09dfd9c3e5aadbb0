//! Methods' results that are typed: what the engine returns, what the
//! daemon sends and what a client reads back, one definition.

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
