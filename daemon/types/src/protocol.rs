//! JSON-RPC 2.0 framing: requests, responses, and the error codes clients
//! can rely on.
//!
//! | code | meaning |
//! |---|---|
//! | -32700 | parse error: the line is not JSON |
//! | -32600 | invalid request (not a JSON-RPC 2.0 request, or the line is too long) |
//! | -32601 | method not found |
//! | -32602 | invalid params (missing, wrong type, unknown key) |
//! | -32603 | internal error (storage failure; nothing was written) |
//! | -32001 | not found (prospect, process version) |
//! | -32002 | exit criteria unmet; `data.unmet` lists each with its question and why |
//! | -32003 | conflict (external id already used; `data.id` is the existing prospect) |
//! | -32004 | invalid state (prospect closed, not in the last stage, same stage) |
//! | -32005 | invalid process (`data.errors` has file, line, column, key, message, hint) |
//! | -32006 | unavailable (shutting down, too many connections, access refused) |

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{EngineError, ProcessError, StorageKind, WriteError};
use crate::model::{ProspectId, Status, Transition, Verdict};

/// Not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// The daemon failed; nothing was written.
pub const INTERNAL_ERROR: i64 = -32603;
/// An id that does not exist.
pub const NOT_FOUND: i64 = -32001;
/// Exit criteria unmet.
pub const CRITERIA_UNMET: i64 = -32002;
/// A uniqueness conflict.
pub const CONFLICT: i64 = -32003;
/// The prospect's state does not allow it.
pub const INVALID_STATE: i64 = -32004;
/// A process text that does not validate.
pub const INVALID_PROCESS: i64 = -32005;
/// The daemon cannot take the request now.
pub const UNAVAILABLE: i64 = -32006;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// A lowercase sentence saying what is wrong.
    pub message: String,
    /// Structured detail, when there is some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<ErrorData>>,
}

/// An error's `data`: the input that failed and what to do about it. Which
/// fields a code sends is in docs/protocol.md; absent fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    /// The prospect concerned (-32001, -32002, -32003: the existing one, -32004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The external id already in use (-32003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The stage concerned: the prospect's (-32002, -32004) or the unknown
    /// one (-32602).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The process's last stage (-32004, closing won from elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stage: Option<String>,
    /// The prospect's status (-32004, closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Every unmet exit criterion, with why (-32002).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmet: Option<Vec<Verdict>>,
    /// Every error in a process text (-32005).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProcessError>>,
    /// Removed stages that still hold open prospects (-32005).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned: Option<Vec<Orphaned>>,
    /// The process version asked for (-32001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// What kind of storage failure (-32603).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageKind>,
    /// The plugin asked for (-32001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Every method there is (-32601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A removed stage that still holds open prospects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphaned {
    /// The stage id.
    pub stage: String,
    /// Open prospects in it.
    pub open_prospects: u64,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Invalid params.
    pub fn params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// -32001 for a process version that does not exist.
    pub fn no_version(version: u64) -> Self {
        RpcError::new(NOT_FOUND, format!("no process version {version}")).with_data(ErrorData {
            version: Some(version),
            ..ErrorData::default()
        })
    }

    /// -32001 for a prospect that does not exist.
    pub fn no_prospect(id: ProspectId) -> Self {
        EngineError::ProspectNotFound(id).into()
    }

    /// Attaches data.
    pub fn with_data(mut self, data: ErrorData) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// What to do about it (`data.hint`), where the daemon says.
    pub fn hint(&self) -> Option<&str> {
        self.data.as_ref()?.hint.as_deref()
    }
}

impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        let hint = e.hint();
        match e {
            EngineError::ProspectNotFound(id) => {
                RpcError::new(NOT_FOUND, message).with_data(ErrorData {
                    id: Some(id),
                    ..ErrorData::default()
                })
            }
            EngineError::UnknownStage { stage, .. } => {
                RpcError::params(message).with_data(ErrorData {
                    stage: Some(stage),
                    ..ErrorData::default()
                })
            }
            EngineError::ExternalIdTaken { external_id, id } => RpcError::new(CONFLICT, message)
                .with_data(ErrorData {
                    external_id: Some(external_id),
                    id: Some(id),
                    ..ErrorData::default()
                }),
            EngineError::Closed { id, status } => {
                RpcError::new(INVALID_STATE, message).with_data(ErrorData {
                    id: Some(id),
                    status: Some(status),
                    ..ErrorData::default()
                })
            }
            EngineError::CriteriaUnmet {
                id, stage, unmet, ..
            } => RpcError::new(CRITERIA_UNMET, message).with_data(ErrorData {
                id: Some(id),
                stage: Some(stage),
                unmet: Some(unmet),
                ..ErrorData::default()
            }),
            EngineError::NotInLastStage { id, stage, last } => {
                RpcError::new(INVALID_STATE, message).with_data(ErrorData {
                    id: Some(id),
                    stage: Some(stage),
                    last_stage: Some(last),
                    ..ErrorData::default()
                })
            }
            EngineError::OrphanedStages(stages) => {
                let stages = stages
                    .into_iter()
                    .map(|(stage, open_prospects)| Orphaned {
                        stage,
                        open_prospects: open_prospects as u64,
                    })
                    .collect();
                RpcError::new(INVALID_PROCESS, message).with_data(ErrorData {
                    orphaned: Some(stages),
                    hint,
                    ..ErrorData::default()
                })
            }
            EngineError::Invalid(_) => RpcError::params(message),
            EngineError::NotDeclared { .. } => RpcError::params(message).with_data(ErrorData {
                hint,
                ..ErrorData::default()
            }),
        }
    }
}

impl From<WriteError> for RpcError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Refused(e) => e.into(),
            WriteError::Storage { kind, .. } => RpcError::new(INTERNAL_ERROR, e.to_string())
                .with_data(ErrorData {
                    storage: Some(kind),
                    hint: kind.hint().map(str::to_string),
                    ..ErrorData::default()
                }),
            WriteError::ShuttingDown => RpcError::new(UNAVAILABLE, e.to_string()),
            WriteError::SessionEnded(_) => RpcError::params(e.to_string()).with_data(ErrorData {
                hint: Some(
                    "nothing of the session was written unless its `import.commit` was answered; run the import again".into(),
                ),
                ..ErrorData::default()
            }),
        }
    }
}

/// The notifications the daemon pushes after `events.subscribe`, by name
/// (each is a JSON-RPC notification whose `method` is the name).
pub mod events {
    /// A prospect moved (every move except creation).
    pub const PROSPECT_MOVED: &str = "prospect.moved";
    /// A saved process file became the version in force.
    pub const PROCESS_RELOADED: &str = "process.reloaded";
    /// A saved process file was refused; the version in force stays.
    pub const PROCESS_REJECTED: &str = "process.rejected";
    /// A plugin call failed closed, or a new build was refused.
    pub const PLUGIN_FAILED: &str = "plugin.failed";
    /// New plugin builds were swapped in.
    pub const PLUGINS_RELOADED: &str = "plugins.reloaded";
    /// `process.reevaluate` finished a batch.
    pub const PROCESS_REEVALUATING: &str = "process.reevaluating";
    /// The client read too slowly and missed events.
    pub const EVENTS_LAGGED: &str = "events.lagged";
    /// Every notification, as `events.subscribe` lists them.
    pub const ALL: &[&str] = &[
        PROSPECT_MOVED,
        PROCESS_RELOADED,
        PROCESS_REJECTED,
        PLUGIN_FAILED,
        PLUGINS_RELOADED,
        PROCESS_REEVALUATING,
        EVENTS_LAGGED,
    ];
}

/// A notification, as the daemon pushes it after `events.subscribe`:
/// `method` is the event's name (one of [`events::ALL`]), `params` what it
/// says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum Event {
    /// A prospect moved (every move except creation).
    #[serde(rename = "prospect.moved")]
    ProspectMoved {
        /// Who moved.
        prospect: MovedProspect,
        /// The transition.
        transition: Transition,
    },
    /// A saved process file became the version in force (or a refused file
    /// was restored to it: then `version` = `previous` and no changes).
    #[serde(rename = "process.reloaded")]
    ProcessReloaded {
        /// The version in force now.
        version: u64,
        /// The version in force before.
        previous: u64,
        /// What changed, in sentences.
        changes: Vec<String>,
        /// Prospects that followed a renamed stage.
        renamed: u64,
        /// Prospects moved out of removed stages by `[migrate]`.
        migrated: u64,
    },
    /// A saved process file was refused; `version` stays in force.
    #[serde(rename = "process.rejected")]
    ProcessRejected {
        /// The version that stays in force.
        version: u64,
        /// Why, with file, line and column.
        errors: Vec<ProcessError>,
    },
    /// A plugin call failed closed, or a new build was refused.
    #[serde(rename = "plugin.failed")]
    PluginFailed {
        /// The plugin.
        plugin: String,
        /// `fuel`, `timeout`, `memory`, `trap`, `output`, `error`, or `load`
        /// (a new build refused).
        kind: String,
        /// What happened.
        message: String,
        /// What to do about it, where we can tell.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// New plugin builds were swapped in.
    #[serde(rename = "plugins.reloaded")]
    PluginsReloaded {
        /// The process version they serve.
        version: u64,
        /// How many plugins changed.
        changed: u64,
    },
    /// `process.reevaluate` finished a batch.
    #[serde(rename = "process.reevaluating")]
    Reevaluating {
        /// Open prospects evaluated so far.
        done: u64,
        /// Open prospects to evaluate in all.
        total: u64,
        /// Of those evaluated, how many moved.
        moved: u64,
    },
    /// The client read too slowly and missed events.
    #[serde(rename = "events.lagged")]
    EventsLagged {
        /// How many.
        missed: u64,
        /// What to do about it.
        hint: String,
    },
}

impl Event {
    /// The event's name, as `method` on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Event::ProspectMoved { .. } => events::PROSPECT_MOVED,
            Event::ProcessReloaded { .. } => events::PROCESS_RELOADED,
            Event::ProcessRejected { .. } => events::PROCESS_REJECTED,
            Event::PluginFailed { .. } => events::PLUGIN_FAILED,
            Event::PluginsReloaded { .. } => events::PLUGINS_RELOADED,
            Event::Reevaluating { .. } => events::PROCESS_REEVALUATING,
            Event::EventsLagged { .. } => events::EVENTS_LAGGED,
        }
    }

    /// The notification line's JSON (`{"jsonrpc":"2.0","method":…,"params":…}`).
    pub fn notification(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("events serialize");
        v["jsonrpc"] = json!("2.0");
        v
    }
}

/// The prospect in a `prospect.moved` notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovedProspect {
    /// Its id.
    pub id: ProspectId,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: Option<String>,
}

/// A request that passed framing checks.
#[derive(Debug)]
pub struct Request {
    /// `None` for notifications (no response is sent).
    pub id: Option<Value>,
    /// `noun.verb`.
    pub method: String,
    /// Named parameters (`{}` when absent).
    pub params: Value,
}

/// Checks that `value` is a JSON-RPC 2.0 request. On error returns the id to
/// answer with (null when it cannot be read).
pub fn parse_request(value: Value) -> Result<Request, (Value, RpcError)> {
    let Value::Object(mut obj) = value else {
        return Err((
            Value::Null,
            RpcError::new(INVALID_REQUEST, "a request must be a JSON object"),
        ));
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::new(INVALID_REQUEST, "`id` must be a string, a number or null"),
            ));
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            answer_id,
            RpcError::new(INVALID_REQUEST, "`jsonrpc` must be \"2.0\""),
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            return Err((
                answer_id,
                RpcError::new(INVALID_REQUEST, "`method` must be a string"),
            ));
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err((
                answer_id,
                RpcError::params("`params` must be an object of named parameters"),
            ));
        }
    };
    Ok(Request { id, method, params })
}

/// A success response.
pub fn ok(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response.
pub fn err(id: Value, error: RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_listed_and_spelled_as_on_the_wire() {
        let lagged = Event::EventsLagged {
            missed: 3,
            hint: "h".into(),
        };
        let line = lagged.notification();
        assert_eq!(line["jsonrpc"], "2.0");
        assert_eq!(line["method"], lagged.method());
        assert_eq!(line["params"]["missed"], 3);
        assert_eq!(serde_json::from_value::<Event>(line).unwrap(), lagged);
        let failed = Event::PluginFailed {
            plugin: "p".into(),
            kind: "fuel".into(),
            message: "m".into(),
            hint: None,
        };
        for e in [lagged, failed] {
            assert!(events::ALL.contains(&e.method()));
        }
    }

    #[test]
    fn framing_errors_keep_the_id_when_they_can() {
        let (id, e) = parse_request(json!({"id": 7, "method": "x"})).unwrap_err();
        assert_eq!((id, e.code), (json!(7), INVALID_REQUEST));
        let (id, e) = parse_request(json!([1])).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, INVALID_REQUEST));
        let (_, e) =
            parse_request(json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}))
                .unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        let r = parse_request(json!({"jsonrpc": "2.0", "method": "x"})).unwrap();
        assert!(r.id.is_none());
    }
}
