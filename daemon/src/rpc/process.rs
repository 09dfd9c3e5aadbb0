//! `process.*`: the process in force, its versions, and validating a
//! candidate text without applying it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use crate::process::Process;
use crate::protocol::{NOT_FOUND, RpcError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetParams {
    #[serde(default)]
    version: Option<u64>,
}

pub(super) fn get(ctx: &Arc<Ctx>, p: GetParams) -> Reply {
    let active = ctx.active();
    let last_error = ctx.last_process_error.lock().expect("error lock").clone();
    match p.version {
        None => ready(Ok(json!({
            "version": active.version,
            "hash": active.hash,
            "loaded_at": active.loaded_at,
            "path": ctx.process_path,
            "text": active.text,
            "process": active.process,
            "last_error": last_error,
        }))),
        Some(v) => {
            let ctx = ctx.clone();
            read(move || {
                let versions = ctx.store.process_versions()?;
                let Some(found) = versions.into_iter().find(|x| x.number == v) else {
                    return Err(ReadError::Rpc(
                        RpcError::new(NOT_FOUND, format!("no process version {v}"))
                            .with_data(json!({ "version": v })),
                    ));
                };
                Ok(json!({
                    "version": found.number,
                    "hash": found.hash,
                    "loaded_at": found.loaded_at,
                    "path": found.path,
                    "text": found.text,
                    "current": found.number == active.version,
                }))
            })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoParams {}

pub(super) fn versions(ctx: &Arc<Ctx>, _: NoParams) -> Reply {
    let ctx = ctx.clone();
    let current = ctx.active().version;
    read(move || {
        let versions: Vec<_> = ctx
            .store
            .process_versions()?
            .into_iter()
            .map(|v| json!({ "version": v.number, "hash": v.hash, "loaded_at": v.loaded_at, "path": v.path }))
            .collect();
        Ok(json!({ "current": current, "versions": versions }))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValidateParams {
    text: String,
    #[serde(default)]
    file: Option<String>,
}

pub(super) fn validate(_ctx: &Arc<Ctx>, p: ValidateParams) -> Reply {
    let file = p.file.unwrap_or_else(|| "process.toml".into());
    let result = match Process::parse(&p.text, &file) {
        Ok(process) => json!({ "valid": true, "errors": [], "stages": process.stages.len() }),
        Err(invalid) => json!({ "valid": false, "errors": invalid.errors }),
    };
    ready(Ok(result))
}
