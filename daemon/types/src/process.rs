//! The sales process as `process.toml` defines it, validated: stages in
//! order, their exit criteria, activity kinds and plugins. The daemon parses
//! and validates the file (`stagecoach_core::process::parse`); this is what
//! it holds and what `process.get` answers as `process`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::results::Limits;
use crate::model::{Actor, FieldValue};

/// A validated sales process: ordered stages with their exit criteria.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// The process's display name.
    pub name: String,
    /// What the process is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How often the process should be reviewed (the guide: every 4–6 months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_every_days: Option<u32>,
    /// Activity kinds the team records, by kind.
    pub activities: BTreeMap<String, ActivityKind>,
    /// Money: where a deal's amount is and what currency it is in.
    #[serde(default)]
    pub money: Money,
    /// Whether `activity.record` refuses a kind `[activities]` does not
    /// declare (when it declares any). Imports never are refused for it.
    #[serde(default = "yes")]
    pub strict_activities: bool,
    /// Whether closing as lost needs a reason.
    #[serde(default)]
    pub require_lost_reason: bool,
    /// The reasons a deal may be lost for; empty: any text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_reasons: Vec<String>,
    /// The stages, in order. `won` and `lost` are outcomes, not stages.
    pub stages: Vec<Stage>,
    /// Removed stage id → the stage its prospects move to (recorded as a
    /// forced move). For a plain rename use the stage's `renamed_from`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub migrate: BTreeMap<String, String>,
    /// WebAssembly plugins the process uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginDecl>,
}

fn yes() -> bool {
    true
}

/// Where a deal's amount is, and its currency: every money figure uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// The prospect field holding the deal's amount.
    pub amount_field: String,
    /// The ISO 4217 code amounts are in (`EUR`), when the process says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl Default for Money {
    fn default() -> Money {
        Money {
            amount_field: DEFAULT_AMOUNT_FIELD.into(),
            currency: None,
        }
    }
}

/// The amount field when the process names none.
pub const DEFAULT_AMOUNT_FIELD: &str = "amount";

/// A `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginDecl {
    /// The name criteria and checklists use.
    pub name: String,
    /// The component file, relative to `process.toml`'s directory.
    pub path: String,
    /// Limits per call (compiled plugins' defaults where the file is
    /// silent: see [`PluginDecl::limits_for`]).
    pub limits: Limits,
    /// Which of fuel, memory and time the file sets itself (the others
    /// follow the plugin's runtime).
    #[serde(default, skip_serializing_if = "SetLimits::is_empty")]
    pub limits_set: SetLimits,
    /// Default config, under each criterion's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<(String, FieldValue)>,
    /// Where the entry is in the file (line, column).
    #[serde(skip)]
    pub at: (usize, usize),
}

/// Which per-call limits a `[[plugins]]` entry sets itself; the others
/// follow the plugin's runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetLimits {
    /// `fuel`.
    pub fuel: bool,
    /// `memory_mib`.
    pub memory_mib: bool,
    /// `timeout_ms`.
    pub timeout_ms: bool,
}

impl SetLimits {
    /// True when the file sets none of them.
    pub fn is_empty(&self) -> bool {
        !(self.fuel || self.memory_mib || self.timeout_ms)
    }
}

impl PluginDecl {
    /// The limits for this plugin on `runtime`: what the file sets, and
    /// the runtime's defaults for the rest.
    pub fn limits_for(&self, runtime: crate::api::results::Runtime) -> Limits {
        let defaults = runtime.default_limits();
        Limits {
            fuel: if self.limits_set.fuel {
                self.limits.fuel
            } else {
                defaults.fuel
            },
            memory_mib: if self.limits_set.memory_mib {
                self.limits.memory_mib
            } else {
                defaults.memory_mib
            },
            timeout_ms: if self.limits_set.timeout_ms {
                self.limits.timeout_ms
            } else {
                defaults.timeout_ms
            },
            ..self.limits.clone()
        }
    }
}

/// A declared activity kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityKind {
    /// Who usually performs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether a stage moves prospects on by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdvanceMode {
    /// Move as soon as every exit criterion is met.
    #[default]
    Auto,
    /// Wait for an explicit `prospect.advance`.
    Manual,
}

/// One stage of the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Stable identifier (`connect`), used in the protocol and in history.
    pub id: String,
    /// Display name (`Connect`).
    pub name: String,
    /// What happens in this stage.
    pub description: String,
    /// Open prospects without activity for longer than this are stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_after_days: Option<u32>,
    /// Whether met exit criteria move the prospect on by themselves.
    pub advance: AdvanceMode,
    /// Probability of winning from this stage, for the weighted pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Former ids of this stage; prospects in them follow this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_from: Vec<String>,
    /// The objective prospect actions that move a prospect on.
    pub exit: Vec<ExitCriterion>,
    /// Methodology checklists (plugin names) shown for this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklists: Vec<String>,
    /// Where the stage is defined in the file (1-based line).
    #[serde(skip)]
    pub line: usize,
}

/// One exit criterion: a question with an objective, check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitCriterion {
    /// The question as sales ops wrote it ("Did the prospect reply?").
    pub question: String,
    /// How the answer is checked.
    #[serde(flatten)]
    pub check: Check,
    /// `enforce` (default): an unmet criterion holds the prospect; `warn`:
    /// evaluated and recorded, never holding anyone (a criterion tried in
    /// shadow before it is enforced).
    #[serde(default, skip_serializing_if = "CriterionMode::is_enforce")]
    pub mode: CriterionMode,
    /// Where the criterion is defined in the file (1-based line, column).
    #[serde(skip)]
    pub at: (usize, usize),
}

/// Whether an exit criterion holds prospects or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CriterionMode {
    /// Unmet, it holds the prospect in the stage.
    #[default]
    Enforce,
    /// Evaluated and recorded, never holding: a move it would have blocked
    /// still happens, with the breach in the transition's verdicts.
    Warn,
}

impl CriterionMode {
    /// The default mode.
    pub fn is_enforce(&self) -> bool {
        *self == CriterionMode::Enforce
    }
}

/// How an exit criterion is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Check {
    /// An activity of `kind` happened at least `at_least` times.
    Activity {
        /// The activity kind.
        kind: String,
        /// Only activities by this actor count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<Actor>,
        /// How many are needed.
        at_least: u32,
        /// Only activities since the prospect entered the stage count.
        since_entering: bool,
    },
    /// A field compared with a value.
    Field {
        /// The field name.
        field: String,
        /// The comparison.
        op: Op,
        /// The value compared with (none for `present`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<FieldValue>,
    },
    /// A yes/no answer, stored as a boolean field: met when it is yes.
    Answer {
        /// The field holding the answer.
        field: String,
    },
    /// A plugin's exit criterion.
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// Config for this criterion (over the plugin's own).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        config: Vec<(String, FieldValue)>,
    },
    /// A methodology checklist with at least `at_least` items done (all
    /// when absent).
    Checklist {
        /// The checklist plugin's name.
        checklist: String,
        /// Items required.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_least: Option<u32>,
    },
}

/// A field comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// The field has any value.
    #[serde(rename = "present")]
    Present,
}

impl Op {
    /// The operator as written in `process.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Present => "present",
        }
    }

    /// Whether it orders values (`<`, `<=`, `>`, `>=`): numbers only.
    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

impl Process {
    /// The stage with this id.
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// The position of the stage with this id.
    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }

    /// The first stage: where new prospects start.
    pub fn first_stage(&self) -> &Stage {
        &self.stages[0]
    }
}
