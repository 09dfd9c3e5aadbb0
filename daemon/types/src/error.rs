//! Why a request was refused or failed: the engine's refusals and the
//! writer's failures, each mapped to a documented protocol error
//! ([`crate::protocol::RpcError`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{ProspectId, Status, Verdict};

/// Why an operation was refused. Each maps to a documented protocol error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No prospect has this id.
    #[error("no prospect with id {0}")]
    ProspectNotFound(ProspectId),
    /// The stage id is not in the process.
    #[error("unknown stage `{stage}`; the stages are {known}")]
    UnknownStage {
        /// The id given.
        stage: String,
        /// The process's stage ids, comma-separated.
        known: String,
    },
    /// The external id already belongs to a prospect.
    #[error("external id `{external_id}` already belongs to prospect {id}")]
    ExternalIdTaken {
        /// The external id.
        external_id: String,
        /// The prospect that has it.
        id: ProspectId,
    },
    /// The prospect is won or lost.
    #[error("prospect {id} is already {}", status.as_str())]
    Closed {
        /// The prospect.
        id: ProspectId,
        /// `won` or `lost`.
        status: Status,
    },
    /// Exit criteria are unmet.
    #[error("prospect {id} cannot leave stage `{stage}`: {} of {} exit criteria unmet", unmet.len(), total)]
    CriteriaUnmet {
        /// The prospect.
        id: ProspectId,
        /// Its stage.
        stage: String,
        /// Every unmet criterion, with why.
        unmet: Vec<Verdict>,
        /// How many criteria the stage has.
        total: usize,
    },
    /// Winning requires the last stage.
    #[error(
        "prospect {id} is in `{stage}`; a prospect can be won only from the last stage `{last}`"
    )]
    NotInLastStage {
        /// The prospect.
        id: ProspectId,
        /// Its stage.
        stage: String,
        /// The last stage.
        last: String,
    },
    /// A new process version would leave prospects in stages it removed.
    /// The way out is [`EngineError::hint`].
    #[error("{}", orphan_message(.0))]
    OrphanedStages(Vec<(String, usize)>),
    /// Parameters that parse but make no sense (empty name, move to the same stage).
    #[error("{0}")]
    Invalid(String),
    /// A name the process does not declare: an activity kind, a lost reason.
    #[error("{what} `{given}` is not one the process declares{}; it declares {known}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    NotDeclared {
        /// What kind of name (`activity kind`).
        what: &'static str,
        /// The name given.
        given: String,
        /// The declared name it most looks like.
        suggestion: Option<String>,
        /// The declared names, comma-separated.
        known: String,
        /// What to do about it.
        hint: String,
    },
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The engine refused this request; nothing of it was written.
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The batch could not be committed; nothing of it was written.
    #[error("storage failure, nothing was written: {message}")]
    Storage {
        /// What kind of failure: a full disk is not a corrupt file.
        kind: StorageKind,
        /// The storage layer's own words.
        message: String,
    },
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The import session this request belongs to has ended (committed,
    /// given up, or idle too long); nothing more can be added to it.
    #[error("the import session has ended: {0}")]
    SessionEnded(String),
}

fn orphan_message(stages: &[(String, usize)]) -> String {
    let list: Vec<String> = stages
        .iter()
        .map(|(s, n)| {
            format!(
                "stage `{s}` still holds {n} open prospect{}",
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    format!(
        "the new process removes stages that hold prospects: {}",
        list.join("; ")
    )
}

impl EngineError {
    /// What to do about it, where there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::NotDeclared { hint, .. } => Some(hint.clone()),
            EngineError::OrphanedStages(stages) => {
                let first = &stages.first()?.0;
                Some(format!(
                    "on the stage that replaces it add `renamed_from = [\"{first}\"]`, or add `[migrate]` with `{first} = \"<stage id>\"`"
                ))
            }
            _ => None,
        }
    }
}

/// What kind of storage failure stopped a write. Serialized in the
/// `-32603` error's `data.storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// No space left on the device (or over quota).
    DiskFull,
    /// Another I/O error, or the database refusing writes after one.
    Io,
    /// The file is damaged, or a record does not decode.
    Corrupt,
    /// The database is closed (shutting down).
    Closed,
    /// Anything else.
    Other,
}

impl StorageKind {
    /// What to do about it.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            StorageKind::DiskFull => {
                Some("free space on the data directory's disk; nothing of this request was written")
            }
            StorageKind::Corrupt => Some(
                "restore the data directory from a backup, or import the last export into a new one",
            ),
            _ => None,
        }
    }
}

/// Where in `process.toml` something went wrong, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessError {
    /// The file, as given to the daemon.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The key path (`stages[2].exit[0].op`), empty for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell (always sent, null otherwise).
    #[serde(default)]
    pub hint: Option<String>,
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A `process.toml` that cannot be used, with every error found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub struct InvalidProcess {
    /// The errors, in file order.
    pub errors: Vec<ProcessError>,
}

impl fmt::Display for InvalidProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
