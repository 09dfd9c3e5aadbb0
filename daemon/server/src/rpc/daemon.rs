//! `daemon.status`: what is running, on what, and how it is doing; and
//! `events.subscribe`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{Ctx, NoParams, Reply, read, ready};
use stagecoach_types::api::results::Subscribed;
use stagecoach_types::protocol::events;

pub(super) fn status(ctx: &Arc<Ctx>, _: NoParams) -> Reply {
    let ctx = ctx.clone();
    read(move || {
        let active = ctx.active();
        let now = ctx.clock.now();
        let counts = ctx.store.counts()?;
        let last_error = ctx.last_process_error.lock().expect("error lock").clone();
        Ok(json!({
            "daemon_version": env!("CARGO_PKG_VERSION"),
            // Deprecated alias of `daemon_version` (one word per idea:
            // `version` alone means a process version).
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "started_at": ctx.started_at,
            "uptime_seconds": (now.0 - ctx.started_at.0).max(0) / 1000,
            "socket": ctx.socket,
            "data_dir": ctx.data_dir,
            "process": {
                "name": active.process.name,
                "version": active.version,
                "hash": active.hash,
                "path": ctx.process_path,
                "loaded_at": active.loaded_at,
                "stages": active.process.stages.iter().map(|s| &s.id).collect::<Vec<_>>(),
                "last_error": last_error,
                "review": crate::live::review_overdue(&active, now),
            },
            "counts": counts,
            "connections": ctx.connections.load(Ordering::Relaxed),
            "writer": writer_stats(&ctx.writer_stats),
        }))
    })
}

fn writer_stats(s: &stagecoach_core::writer::WriterStats) -> serde_json::Value {
    let commits = s.commits.load(Ordering::Relaxed);
    let requests = s.requests.load(Ordering::Relaxed);
    let per = |total: u64| {
        if commits == 0 {
            0.0
        } else {
            total as f64 / commits as f64
        }
    };
    json!({
        "commits": commits,
        "requests": requests,
        "mean_batch": per(requests),
        "mean_apply_ms": per(s.apply_micros.load(Ordering::Relaxed)) / 1000.0,
        "mean_commit_ms": per(s.commit_micros.load(Ordering::Relaxed)) / 1000.0,
    })
}

/// `events.subscribe`: the connection is subscribed by the server once this
/// answers (the table marks the method as subscribing).
pub(super) fn subscribe(_: &Arc<Ctx>, _: NoParams) -> Reply {
    let answer = Subscribed {
        subscribed: true,
        events: events::ALL.iter().map(|e| e.to_string()).collect(),
    };
    ready(Ok(json!(answer)))
}
