//! Everything a request may touch, shared by all connections.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use serde_json::Value;
use stagecoach_core::clock::Clock;
use stagecoach_core::engine::{ActiveProcess, Event, ProcessHandle, WriteOp, ahead};
use stagecoach_core::process::InvalidProcess;
use stagecoach_core::store::Store;
use stagecoach_core::writer::{Writer, WriterStats};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::RpcError;

/// A method's answer, computed later.
pub type Reply = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>;

/// Everything a request may touch, shared by all connections.
pub struct Ctx {
    /// The database (reads).
    pub store: Store,
    /// The single writer (writes).
    pub writer: Writer,
    /// The process version in force.
    pub process: ProcessHandle,
    /// The plugin host.
    pub plugin_host: Arc<stagecoach_plugin_host::PluginHost>,
    /// The process file being served.
    pub process_path: PathBuf,
    /// The largest process file read, bytes.
    pub max_process_file: u64,
    /// The last rejected edit of the process file, until a good one.
    pub last_process_error: Mutex<Option<InvalidProcess>>,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Notifications for subscribers.
    pub events: broadcast::Sender<Event>,
    /// Writer statistics.
    pub writer_stats: Arc<WriterStats>,
    /// When the daemon started.
    pub started_at: Millis,
    /// The socket path.
    pub socket: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Open connections.
    pub connections: AtomicUsize,
    /// Threads that evaluate plugin criteria ahead of the writer.
    pub ahead: Arc<crate::ahead::AheadPool>,
    /// Held while a process text is compared with the version in force and
    /// applied, so the watcher and `process.reload` never both apply one edit.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// The import session open now, with its number (one at a time).
    pub import: Mutex<Option<(u64, Arc<stagecoach_core::writer::session::ImportSession>)>>,
    /// The last import session's number.
    pub import_sessions: std::sync::atomic::AtomicU64,
    /// How long an import session may go without a request, and stay open.
    pub import_limits: stagecoach_core::writer::session::SessionLimits,
}

impl Ctx {
    /// The process version in force now; a request keeps it to the end.
    pub fn active(&self) -> Arc<ActiveProcess> {
        self.process.read().expect("process lock").clone()
    }

    /// Queues `op` with the writer; the reply resolves when it is committed.
    /// A connection's writes reach the writer in the order they arrived
    /// (see [`WriteGate`]).
    pub(crate) fn write(self: &Arc<Self>, op: WriteOp) -> Reply {
        self.in_order(move |ctx| ctx.submit(op))
    }

    /// Runs `submit` (which hands something to the writer) once the
    /// connection's earlier writes have been handed to it, so that the
    /// writer sees a connection's writes in the order they arrived.
    pub(crate) fn in_order(
        self: &Arc<Self>,
        submit: impl FnOnce(&Arc<Ctx>) -> Reply + Send + 'static,
    ) -> Reply {
        match GATE.take() {
            None => submit(self),
            Some(gate) if gate.submitted_before() => {
                let reply = submit(self);
                gate.open();
                reply
            }
            Some(gate) => {
                let ctx = self.clone();
                Box::pin(async move {
                    gate.wait_submitted().await;
                    let reply = submit(&ctx);
                    gate.open();
                    reply.await
                })
            }
        }
    }

    /// [`Ctx::write`], with the plugin criteria the write will evaluate
    /// evaluated first, off the writer ([`crate::ahead`]). Writes that
    /// reach no slow plugin criterion go straight to the writer.
    pub(crate) fn write_ahead(self: &Arc<Self>, mut op: WriteOp) -> Reply {
        let active = self.active();
        let first = &active.process.stages[0].id;
        if !ahead::reaches_plugins(&active, first, true) {
            return self.write(op);
        }
        // The writer must see the time evaluated with.
        let now = self.clock.now();
        match &mut op {
            WriteOp::RecordActivity(a) => {
                a.at.get_or_insert(now);
            }
            WriteOp::UpdateProspect(u) => {
                u.at.get_or_insert(now);
            }
            _ => {}
        }
        let Some(id) = ahead::prospect_of(&op) else {
            return self.write(op);
        };
        let gate = GATE.take();
        let ctx = self.clone();
        Box::pin(async move {
            // After this connection's earlier writes, so the snapshot has them.
            if let Some(g) = &gate {
                g.wait_done().await;
            }
            let store = ctx.store.clone();
            let pool = ctx.ahead.clone();
            let prepared = tokio::task::spawn_blocking(move || {
                let snapshot = store.snapshot().ok()?;
                let prospect = snapshot.prospect(id).ok()??;
                ahead::reaches_plugins(&active, &prospect.stage, true)
                    .then_some((snapshot, prospect, active))
            })
            .await
            .ok()
            .flatten();
            let op = match prepared {
                None => op,
                Some((snapshot, prospect, active)) => {
                    let ran = pool
                        .run(move || {
                            if let Err(e) =
                                ahead::evaluate_ahead(&snapshot, &active, &prospect, &op)
                            {
                                tracing::debug!(error = %e, "evaluating ahead failed; the writer will");
                            }
                            op
                        })
                        .await;
                    match ran {
                        Some(op) => op,
                        None => {
                            return Err(RpcError::from(
                                stagecoach_core::writer::WriteError::ShuttingDown,
                            ));
                        }
                    }
                }
            };
            let reply = ctx.submit(op);
            if let Some(g) = gate {
                g.open();
            }
            reply.await
        })
    }

    /// Hands `op` to the writer now, outside any connection's order.
    pub(crate) fn submit(&self, op: WriteOp) -> Reply {
        let rx = self.writer.submit(self.active(), op);
        Box::pin(async move {
            match rx.await {
                Ok(result) => result
                    .map(|answer| serde_json::to_value(answer).expect("answers serialize"))
                    .map_err(RpcError::from),
                Err(_) => Err(RpcError::from(
                    stagecoach_core::writer::WriteError::ShuttingDown,
                )),
            }
        })
    }
}

/// Where one write of a connection stands among the connection's writes:
/// they are numbered in arrival order and handed to the writer in that
/// order, even when one first waits for its criteria to be evaluated ahead.
pub(crate) struct WriteGate {
    /// This write's number on its connection, from 1.
    pub number: u64,
    /// The highest write number handed to the writer.
    pub submitted: Arc<tokio::sync::watch::Sender<u64>>,
    /// The highest write number answered.
    pub done: Arc<tokio::sync::watch::Sender<u64>>,
}

impl WriteGate {
    pub(crate) fn submitted_before(&self) -> bool {
        *self.submitted.borrow() + 1 >= self.number
    }

    pub(crate) async fn wait_submitted(&self) {
        let before = self.number - 1;
        let _ = self.submitted.subscribe().wait_for(|s| *s >= before).await;
    }

    pub(crate) async fn wait_done(&self) {
        let before = self.number - 1;
        let _ = self.done.subscribe().wait_for(|d| *d >= before).await;
    }

    /// This write is with the writer (or will never be): the next may go.
    pub(crate) fn open(&self) {
        self.submitted.send_modify(|s| *s = (*s).max(self.number));
    }
}

thread_local! {
    /// The gate of the write being dispatched on this thread: set by the
    /// connection around a write method's (synchronous) dispatch, taken by
    /// [`Ctx::write`] or [`Ctx::write_ahead`].
    static GATE: std::cell::Cell<Option<WriteGate>> = const { std::cell::Cell::new(None) };
}

/// The gate of the write being dispatched, for a method that hands the
/// writer several operations ([`Ctx::write`] takes it for one).
pub(crate) fn take_gate() -> Option<WriteGate> {
    GATE.take()
}

/// Dispatches a write method under `gate`; a method that submitted nothing
/// (refused before writing) opens it for the next write.
pub(crate) fn gated<R>(gate: WriteGate, dispatch: impl FnOnce() -> R) -> R {
    GATE.set(Some(gate));
    let r = dispatch();
    if let Some(unused) = GATE.take() {
        unused.open();
    }
    r
}
