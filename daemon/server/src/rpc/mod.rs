//! The protocol's methods: parameters parsed into types and dispatched in
//! one place. One module per protocol area.
//!
//! Write methods are submitted to the writer *before* [`dispatch`] returns
//! its future, so requests pipelined on one connection are applied in the
//! order they arrived even though their answers are awaited concurrently.

mod activity;
mod daemon;
pub mod history;
mod metrics;
mod plugins;
mod process;
mod prospect;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use stagecoach_core::store::StoreError;
use stagecoach_types::protocol::{INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError};

pub use crate::context::{Ctx, Reply};

/// Runs a blocking read on the blocking pool.
fn read<F>(f: F) -> Reply
where
    F: FnOnce() -> Result<Value, ReadError> + Send + 'static,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.map_err(RpcError::from),
            Err(e) => Err(RpcError::new(
                INTERNAL_ERROR,
                format!("read task failed: {e}"),
            )),
        }
    })
}

/// A read that failed: either the client's fault or the store's.
enum ReadError {
    Rpc(RpcError),
    Store(StoreError),
}

impl From<RpcError> for ReadError {
    fn from(e: RpcError) -> Self {
        ReadError::Rpc(e)
    }
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        ReadError::Store(e)
    }
}

impl From<ReadError> for RpcError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Rpc(e) => e,
            ReadError::Store(e) => RpcError::new(INTERNAL_ERROR, e.to_string()),
        }
    }
}

fn ready(result: Result<Value, RpcError>) -> Reply {
    Box::pin(std::future::ready(result))
}

/// Parses named parameters into `T`, with a message naming the bad key.
fn params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            RpcError::params(format!("invalid params: {inner}"))
        } else {
            RpcError::params(format!("invalid params: `{path}`: {inner}"))
        }
    })
}

/// Every method name, for `method not found` hints.
pub const METHODS: &[&str] = &[
    "daemon.status",
    "events.subscribe",
    "process.get",
    "process.versions",
    "process.validate",
    "process.diff",
    "process.reload",
    "process.reevaluate",
    "process.discover",
    "prospect.create",
    "prospect.get",
    "prospect.list",
    "prospect.update",
    "prospect.evaluate",
    "prospect.advance",
    "prospect.move",
    "prospect.close",
    "prospect.lookup",
    "prospect.import",
    "activity.record",
    "activity.list",
    "plugins.list",
    "metrics.plugin",
    "metrics.flow",
    "metrics.time_in_stage",
    "metrics.conversion",
    "metrics.outcomes",
    "metrics.stalled",
    "metrics.compare",
    "export.page",
];

/// Starts `method`. Writes are queued before this returns.
pub fn dispatch(ctx: &Arc<Ctx>, method: &str, p: Value) -> Reply {
    macro_rules! call {
        ($f:path) => {
            match params(p) {
                Ok(p) => $f(ctx, p),
                Err(e) => ready(Err(e)),
            }
        };
    }
    match method {
        "daemon.status" => call!(daemon::status),
        "process.get" => call!(process::get),
        "process.versions" => call!(process::versions),
        "process.validate" => call!(process::validate),
        "process.diff" => call!(process::diff),
        "process.reload" => call!(process::reload),
        "process.reevaluate" => call!(process::reevaluate),
        "process.discover" => call!(history::discover),
        "prospect.create" => call!(prospect::create),
        "prospect.get" => call!(prospect::get),
        "prospect.list" => call!(prospect::list),
        "prospect.update" => call!(prospect::update),
        "prospect.evaluate" => call!(prospect::evaluate),
        "prospect.advance" => call!(prospect::advance),
        "prospect.move" => call!(prospect::force_move),
        "prospect.close" => call!(prospect::close),
        "prospect.lookup" => call!(history::lookup),
        "prospect.import" => call!(prospect::import),
        "activity.record" => call!(activity::record),
        "activity.list" => call!(activity::list),
        "plugins.list" => call!(plugins::list),
        "metrics.plugin" => call!(plugins::metric),
        "metrics.flow" => call!(metrics::flow),
        "metrics.time_in_stage" => call!(metrics::time_in_stage),
        "metrics.conversion" => call!(metrics::conversion),
        "metrics.outcomes" => call!(metrics::outcomes),
        "metrics.stalled" => call!(metrics::stalled),
        "metrics.compare" => call!(metrics::compare),
        "export.page" => call!(history::page),
        other => {
            let hint = METHODS
                .iter()
                .find(|m| m.split('.').next() == other.split('.').next())
                .map(|m| format!("; did you mean `{m}`? methods are `noun.verb`"))
                .unwrap_or_default();
            ready(Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("unknown method `{other}`{hint}"),
            )
            .with_data(serde_json::json!({ "methods": METHODS }))))
        }
    }
}
