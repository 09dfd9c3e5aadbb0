//! `daemon.status`: what is running, on what, and how it is doing; and
//! `events.subscribe`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{Ctx, NoParams, Reply, read, ready};
use stagecoach_types::api::results::{
    DaemonStatus, StatusProcess, StoreHealth, Subscribed, WriterSummary,
};
use stagecoach_types::protocol::events;

pub(super) fn status(ctx: &Arc<Ctx>, _: NoParams) -> Reply {
    let ctx = ctx.clone();
    read(move || {
        let active = ctx.active();
        let now = ctx.clock.now();
        let counts = ctx.store.counts();
        let mut degraded = ctx
            .writer_stats
            .degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let (Err(e), None) = (&counts, &degraded) {
            degraded = Some((now, e.to_string()));
        }
        let last_error = ctx.last_process_error.lock().expect("error lock").clone();
        Ok(json!(DaemonStatus {
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started_at: ctx.started_at,
            uptime_seconds: (now.0 - ctx.started_at.0).max(0) / 1000,
            socket: ctx.socket.display().to_string(),
            data_dir: ctx.data_dir.display().to_string(),
            process: StatusProcess {
                name: active.process.name.clone(),
                version: active.version,
                hash: active.hash.clone(),
                path: ctx.process_path.display().to_string(),
                loaded_at: active.loaded_at,
                stages: active.process.stages.iter().map(|s| s.id.clone()).collect(),
                last_error,
                review: crate::live::review_overdue(&active, now),
            },
            counts: counts.ok(),
            connections: ctx.connections.load(Ordering::Relaxed) as u64,
            writer: writer_stats(&ctx.writer_stats),
            store: StoreHealth {
                health: if degraded.is_some() { "degraded" } else { "ok" }.into(),
                since: degraded.as_ref().map(|(since, _)| *since),
                reason: degraded.map(|(_, reason)| reason),
            },
            simulation: super::simulate::progress(),
            plugins_unavailable: active.plugins.unavailable.clone(),
        }))
    })
}

fn writer_stats(s: &stagecoach_core::writer::WriterStats) -> WriterSummary {
    let commits = s.commits.load(Ordering::Relaxed);
    let requests = s.requests.load(Ordering::Relaxed);
    let per = |total: u64| {
        if commits == 0 {
            0.0
        } else {
            total as f64 / commits as f64
        }
    };
    WriterSummary {
        commits,
        requests,
        mean_batch: per(requests),
        mean_apply_ms: per(s.apply_micros.load(Ordering::Relaxed)) / 1000.0,
        mean_commit_ms: per(s.commit_micros.load(Ordering::Relaxed)) / 1000.0,
    }
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
