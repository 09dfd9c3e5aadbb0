//! Live process iteration: `process.toml` is watched, and every saved change
//! that validates becomes the next process version, swapped in atomically.
//!
//! A bad edit never replaces a good process: the running version stays, the
//! error (file, line, column, key, hint) is logged, kept for
//! `daemon.status` / `process.get`, and pushed to subscribers as
//! `process.rejected`. A later good save clears it and pushes
//! `process.reloaded`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::engine::{ActiveProcess, EngineError, Event, NewVersion, WriteOp};
use crate::model::Millis;
use crate::process::{InvalidProcess, Process, ProcessError, content_hash};
use crate::rpc::Ctx;
use crate::watch::FileWatcher;
use crate::writer::WriteError;

/// How long a save must be quiet before the file is read: one save is often
/// several events (truncate, write, rename).
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// How long a rejected read waits for a follow-up write before it is reported.
const SETTLE: Duration = Duration::from_millis(150);

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// The file's content is the version in force.
    Unchanged {
        /// The version in force.
        version: u64,
    },
    /// A new version is in force.
    Reloaded {
        /// The new version.
        version: u64,
        /// The version it replaced.
        previous: u64,
        /// What changed, in words.
        changes: Vec<String>,
        /// Prospects that followed a renamed stage.
        renamed: u64,
        /// Prospects moved out of removed stages by `[migrate]`.
        migrated: u64,
    },
    /// The file was refused; the running version stays.
    Rejected(InvalidProcess),
}

fn whole_file_error(file: &str, message: String, hint: Option<String>) -> InvalidProcess {
    InvalidProcess {
        errors: vec![ProcessError {
            file: file.to_string(),
            line: 1,
            column: 1,
            key: String::new(),
            message,
            hint,
        }],
    }
}

/// Reads the process file and, if it changed and validates, makes it the
/// next version. Publishes `process.reloaded` or `process.rejected`.
pub async fn reload(ctx: &Arc<Ctx>) -> Reload {
    let outcome = read_and_apply(ctx).await;
    publish(ctx, &outcome);
    outcome
}

/// Reads the file and applies it if it changed and validates; publishes nothing.
async fn read_and_apply(ctx: &Arc<Ctx>) -> Reload {
    let path = ctx.process_path.clone();
    let file = path.display().to_string();
    match tokio::fs::read_to_string(&path).await {
        Err(e) => Reload::Rejected(whole_file_error(
            &file,
            format!("cannot read the file: {e}"),
            Some("the running version stays in force until the file is readable again".into()),
        )),
        Ok(text) => apply_text(ctx, &file, text).await,
    }
}

async fn apply_text(ctx: &Arc<Ctx>, file: &str, text: String) -> Reload {
    let current = ctx.active();
    let hash = content_hash(&text);
    if hash == current.hash {
        return Reload::Unchanged {
            version: current.version,
        };
    }
    let process = match Process::parse(&text, file) {
        Ok(p) => p,
        Err(invalid) => return Reload::Rejected(invalid),
    };
    let at = ctx.clock.now();
    let changes = crate::diff::describe(&current.process, &process);
    let op = WriteOp::ApplyProcessVersion(Box::new(NewVersion {
        text: text.clone(),
        hash: hash.clone(),
        path: file.to_string(),
        at,
        process: process.clone(),
        previous: Some(current.clone()),
    }));
    match ctx.writer.write(current.clone(), op).await {
        Ok(result) => {
            let version = result["version"].as_u64().expect("a version number");
            let active = ActiveProcess {
                version,
                hash,
                text,
                loaded_at: at,
                process,
            };
            *ctx.process.write().expect("process lock") = Arc::new(active);
            Reload::Reloaded {
                version,
                previous: current.version,
                changes,
                renamed: result["renamed"].as_u64().unwrap_or(0),
                migrated: result["migrated"].as_u64().unwrap_or(0),
            }
        }
        Err(WriteError::Refused(e @ EngineError::OrphanedStages(_))) => {
            let hint = e
                .to_string()
                .split_once("\nhint: ")
                .map(|(_, h)| h.to_string());
            let message = e
                .to_string()
                .split('\n')
                .next()
                .unwrap_or_default()
                .to_string();
            Reload::Rejected(whole_file_error(file, message, hint))
        }
        Err(e) => Reload::Rejected(whole_file_error(
            file,
            format!("cannot store the new version: {e}"),
            None,
        )),
    }
}

fn publish(ctx: &Arc<Ctx>, outcome: &Reload) {
    let (method, params): (&'static str, Value) = match outcome {
        Reload::Unchanged { version } => {
            // Saving the running content again clears an earlier rejection.
            if ctx
                .last_process_error
                .lock()
                .expect("error lock")
                .take()
                .is_none()
            {
                return;
            }
            tracing::info!(version, "process file restored to the running version");
            (
                "process.reloaded",
                json!({ "version": version, "previous": version, "changes": [] }),
            )
        }
        Reload::Reloaded {
            version,
            previous,
            changes,
            renamed,
            migrated,
        } => {
            *ctx.last_process_error.lock().expect("error lock") = None;
            tracing::info!(
                version,
                previous,
                changes = changes.len(),
                renamed,
                migrated,
                "process reloaded"
            );
            for change in changes {
                tracing::info!(version, "  {change}");
            }
            (
                "process.reloaded",
                json!({ "version": version, "previous": previous, "changes": changes,
                        "renamed": renamed, "migrated": migrated }),
            )
        }
        Reload::Rejected(invalid) => {
            tracing::error!(
                version = ctx.active().version,
                "process edit rejected, running version kept:\n{invalid}"
            );
            *ctx.last_process_error.lock().expect("error lock") = Some(invalid.clone());
            (
                "process.rejected",
                json!({ "version": ctx.active().version, "errors": invalid.errors }),
            )
        }
    };
    let _ = ctx.events.send(Event { method, params });
}

/// Watches the process file until `stop` is cancelled, reloading on every
/// change.
pub async fn watch_process(ctx: Arc<Ctx>, stop: CancellationToken) {
    let path = ctx.process_path.clone();
    let mut watcher = match FileWatcher::new(std::slice::from_ref(&path)) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the process file; edits need `stagecoach process reload`");
            return;
        }
    };
    tracing::info!(path = %path.display(), "watching the process file");
    loop {
        let changed = tokio::select! {
            _ = stop.cancelled() => return,
            changed = watcher.next_change(DEBOUNCE) => changed,
        };
        if changed.is_none() {
            return;
        }
        // A delete-and-recreate save can leave the file briefly missing.
        if !Path::new(&path).exists() {
            tokio::time::sleep(DEBOUNCE * 4).await;
        }
        let mut outcome = read_and_apply(&ctx).await;
        // A save caught half-way (truncated, not yet written) reads as a bad
        // file: report a rejection only if no further write follows soon.
        while matches!(outcome, Reload::Rejected(_)) {
            match tokio::time::timeout(SETTLE, watcher.next_change(DEBOUNCE)).await {
                Ok(Some(_)) => outcome = read_and_apply(&ctx).await,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        publish(&ctx, &outcome);
    }
}

/// The review warning for `daemon.status`: days since the process last
/// changed, when that is longer than `review_every_days`.
pub fn review_overdue(active: &ActiveProcess, now: Millis) -> Option<Value> {
    let days = active.process.review_every_days?;
    let age = active.loaded_at.days_until(now);
    (age > f64::from(days)).then(|| {
        json!({
            "message": format!("the process has not changed for {} days; review it every {days} days", age.floor()),
            "days_since_change": age.floor(),
            "review_every_days": days,
        })
    })
}
