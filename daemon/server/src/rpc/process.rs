//! `process.*`: the process in force, its versions, and validating a
//! candidate text without applying it.

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use crate::live::Reload;
use stagecoach_core::engine::WriteOp;
use stagecoach_core::lint::lint;
use stagecoach_core::process::{Process, content_hash};
use stagecoach_types::api::params::{
    ProcessDiff, ProcessGet, ProcessReevaluate, ProcessReload, ProcessValidate,
};
use stagecoach_types::api::results::{Diff, ProcessText, Validation, VersionWindow, Versions};
use stagecoach_types::protocol::{ErrorData, INVALID_PROCESS, RpcError};

pub(super) fn get(ctx: &Arc<Ctx>, p: ProcessGet) -> Reply {
    let active = ctx.active();
    let last_error = ctx.last_process_error.lock().expect("error lock").clone();
    match p.version {
        None => ready(Ok(json!(ProcessText {
            version: active.version,
            hash: active.hash.clone(),
            loaded_at: active.loaded_at,
            path: ctx.process_path.display().to_string(),
            text: active.text.clone(),
            current: true,
            process: Some(active.process.clone()),
            last_error,
        }))),
        Some(v) => {
            let ctx = ctx.clone();
            read(move || {
                let versions = ctx.store.process_versions()?;
                let Some(found) = versions.into_iter().find(|x| x.number == v) else {
                    return Err(ReadError::Rpc(RpcError::no_version(v)));
                };
                Ok(json!(ProcessText {
                    current: found.number == active.version,
                    version: found.number,
                    hash: found.hash,
                    loaded_at: found.loaded_at,
                    path: found.path,
                    text: found.text,
                    process: None,
                    last_error: None,
                }))
            })
        }
    }
}

pub(super) fn versions(ctx: &Arc<Ctx>, _: super::NoParams) -> Reply {
    let ctx = ctx.clone();
    let current = ctx.active().version;
    read(move || {
        let versions: Vec<_> = ctx
            .store
            .version_windows()?
            .into_iter()
            .map(|(v, from, until)| VersionWindow {
                version: v.number,
                hash: v.hash,
                loaded_at: v.loaded_at,
                in_force_from: from,
                in_force_until: until,
                path: v.path,
            })
            .collect();
        Ok(json!(Versions { current, versions }))
    })
}

pub(super) fn validate(ctx: &Arc<Ctx>, p: ProcessValidate) -> Reply {
    let file = p.file.unwrap_or_else(|| "process.toml".into());
    let active = ctx.active();
    let result = match stagecoach_core::process::parse(&p.text, &file) {
        Ok(process) => {
            // Unchanged text keeps its age; a changed text would be new today.
            let last_changed = if content_hash(&p.text) == active.hash {
                active.loaded_at
            } else {
                ctx.clock.now()
            };
            let warnings = lint(&process, ctx.clock.now(), Some(last_changed));
            let changes = stagecoach_core::diff::describe(&active.process, &process);
            Validation {
                valid: true,
                errors: Vec::new(),
                warnings,
                stages: Some(process.stages.len()),
                changes: Some(changes),
            }
        }
        Err(invalid) => Validation {
            valid: false,
            errors: invalid.errors,
            warnings: Vec::new(),
            stages: None,
            changes: None,
        },
    };
    ready(Ok(json!(result)))
}

pub(super) fn reload(ctx: &Arc<Ctx>, p: ProcessReload) -> Reply {
    let ctx = ctx.clone();
    Box::pin(async move {
        let outcome = match p.text {
            Some(text) => crate::live::write_and_reload(&ctx, text).await,
            None => crate::live::reload(&ctx).await,
        };
        let result = match outcome {
            Reload::Applied(result) => result,
            Reload::Rejected(invalid) => {
                return Err(RpcError::new(
                    INVALID_PROCESS,
                    format!(
                        "process file refused; version {} stays in force",
                        ctx.active().version
                    ),
                )
                .with_data(ErrorData {
                    errors: Some(invalid.errors),
                    ..ErrorData::default()
                }));
            }
        };
        Ok(serde_json::to_value(result).expect("results serialize"))
    })
}

pub(super) fn reevaluate(ctx: &Arc<Ctx>, p: ProcessReevaluate) -> Reply {
    let at = p.at.unwrap_or_else(|| ctx.clock.now());
    ctx.write(WriteOp::Reevaluate { at })
}

pub(super) fn diff(ctx: &Arc<Ctx>, p: ProcessDiff) -> Reply {
    let ctx = ctx.clone();
    let to = p.to.unwrap_or_else(|| ctx.active().version);
    read(move || {
        let versions = ctx.store.process_versions()?;
        let load = |n: u64| -> Result<Process, ReadError> {
            let v = versions
                .iter()
                .find(|v| v.number == n)
                .ok_or_else(|| ReadError::Rpc(RpcError::no_version(n)))?;
            stagecoach_core::process::parse(&v.text, &v.path).map_err(|e| {
                ReadError::Rpc(RpcError::new(
                    INVALID_PROCESS,
                    format!("stored version {n} no longer parses: {e}"),
                ))
            })
        };
        let (a, b) = (load(p.from)?, load(to)?);
        Ok(json!(Diff {
            from: p.from,
            to,
            changes: stagecoach_core::diff::describe(&a, &b),
        }))
    })
}
