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

use crate::error::{EngineError, WriteError};

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
    pub data: Option<Value>,
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

    /// Attaches data.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// What to do about it (`data.hint`), where the daemon says.
    pub fn hint(&self) -> Option<&str> {
        self.data.as_ref()?.get("hint")?.as_str()
    }
}

impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        let hint = e.hint();
        match e {
            EngineError::ProspectNotFound(id) => {
                RpcError::new(NOT_FOUND, message).with_data(json!({ "id": id }))
            }
            EngineError::UnknownStage { stage, .. } => {
                RpcError::params(message).with_data(json!({ "stage": stage }))
            }
            EngineError::ExternalIdTaken { external_id, id } => RpcError::new(CONFLICT, message)
                .with_data(json!({ "external_id": external_id, "id": id })),
            EngineError::Closed { id, status } => RpcError::new(INVALID_STATE, message)
                .with_data(json!({ "id": id, "status": status })),
            EngineError::CriteriaUnmet {
                id, stage, unmet, ..
            } => RpcError::new(CRITERIA_UNMET, message)
                .with_data(json!({ "id": id, "stage": stage, "unmet": unmet })),
            EngineError::NotInLastStage { id, stage, last } => {
                RpcError::new(INVALID_STATE, message)
                    .with_data(json!({ "id": id, "stage": stage, "last_stage": last }))
            }
            EngineError::OrphanedStages(stages) => {
                let stages: Vec<Value> = stages
                    .iter()
                    .map(|(s, n)| json!({ "stage": s, "open_prospects": n }))
                    .collect();
                RpcError::new(INVALID_PROCESS, message)
                    .with_data(json!({ "orphaned": stages, "hint": hint }))
            }
            EngineError::Invalid(_) => RpcError::params(message),
        }
    }
}

impl From<WriteError> for RpcError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Refused(e) => e.into(),
            WriteError::Storage { kind, .. } => RpcError::new(INTERNAL_ERROR, e.to_string())
                .with_data(json!({ "storage": kind, "hint": kind.hint() })),
            WriteError::ShuttingDown => RpcError::new(UNAVAILABLE, e.to_string()),
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
    /// The client read too slowly and missed events.
    pub const EVENTS_LAGGED: &str = "events.lagged";
    /// Every notification, as `events.subscribe` lists them.
    pub const ALL: &[&str] = &[
        PROSPECT_MOVED,
        PROCESS_RELOADED,
        PROCESS_REJECTED,
        PLUGIN_FAILED,
        PLUGINS_RELOADED,
        EVENTS_LAGGED,
    ];
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

/// A server-pushed notification.
pub fn notification(method: &str, params: &Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

#[cfg(test)]
mod tests {
    use super::*;

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
