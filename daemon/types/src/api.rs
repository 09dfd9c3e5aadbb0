//! Methods' results as types: what the daemon sends and what a Rust client
//! reads back, one definition for both. (Methods not listed here still
//! answer JSON built by their handlers; they move here one by one.)

use serde::{Deserialize, Serialize};

/// Whether `process.reload` put a new version in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The text is the version in force: nothing changed.
    Unchanged,
    /// A new version is in force.
    Reloaded,
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
