//! `activity.*`: record what happened, list the activity log.

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read};
use stagecoach_core::engine::{NewActivity, WriteOp};
use stagecoach_types::api::params::ActivityList;
use stagecoach_types::api::results::Activities;
use stagecoach_types::protocol::RpcError;

pub(super) fn record(ctx: &Arc<Ctx>, p: NewActivity) -> Reply {
    ctx.write_ahead(WriteOp::RecordActivity(p))
}

pub(super) fn list(ctx: &Arc<Ctx>, p: ActivityList) -> Reply {
    let ctx = ctx.clone();
    read(move || {
        if ctx.store.prospect(p.prospect)?.is_none() {
            return Err(ReadError::Rpc(RpcError::no_prospect(p.prospect)));
        }
        let mut activities = ctx.store.activities(p.prospect)?;
        if let Some(kind) = &p.kind {
            activities.retain(|a| &a.kind == kind);
        }
        Ok(json!(Activities { activities }))
    })
}
