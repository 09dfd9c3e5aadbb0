//! The single writer: group commit.
//!
//! Every change goes through one thread that takes all requests waiting in
//! its queue, applies them in one redb write transaction and commits once.
//! Each request is answered only after that commit is durable, so one fsync
//! is shared by every request in the batch. Requests are applied in the
//! order they were submitted.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::engine::{ActiveProcess, Answer, EngineError, Event, WriteOp, apply};
use crate::store::{Store, StoreError, Tables};

/// Upper bound on requests per transaction: keeps a batch's latency bounded
/// under a flood while still sharing each fsync widely.
const MAX_BATCH: usize = 4096;

/// What a write request is answered with.
pub type WriteResult = Result<Answer, WriteError>;

pub use stagecoach_types::error::WriteError;

struct Job {
    process: Arc<ActiveProcess>,
    op: WriteOp,
    reply: oneshot::Sender<WriteResult>,
}

/// A handle to submit writes. Cloning is cheap; when every handle is
/// dropped the writer finishes its queue and stops.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

/// Statistics the writer keeps for `daemon.status`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Committed transactions.
    pub commits: std::sync::atomic::AtomicU64,
    /// Requests applied in them.
    pub requests: std::sync::atomic::AtomicU64,
    /// Time spent applying batches, in microseconds.
    pub apply_micros: std::sync::atomic::AtomicU64,
    /// Time spent in commit (the durable write), in microseconds.
    pub commit_micros: std::sync::atomic::AtomicU64,
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(
        store: Store,
        clock: Clock,
        events: broadcast::Sender<Event>,
        stats: Arc<WriterStats>,
    ) -> Result<(Writer, JoinHandle<()>), StoreError> {
        let mut ids = store.next_ids()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("stagecoach-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&store, &clock, &mut ids, &mut batch, &events, &stats);
                }
            })
            .expect("spawning the writer thread");
        Ok((Writer { tx }, handle))
    }

    /// Queues `op`, evaluated against `process`. The returned receiver
    /// resolves once the change is durable (or refused).
    pub fn submit(
        &self,
        process: Arc<ActiveProcess>,
        op: WriteOp,
    ) -> oneshot::Receiver<WriteResult> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.tx.send(Job { process, op, reply }) {
            let _ = job.reply.send(Err(WriteError::ShuttingDown));
        }
        rx
    }

    /// Submits and waits.
    pub async fn write(&self, process: Arc<ActiveProcess>, op: WriteOp) -> WriteResult {
        self.submit(process, op)
            .await
            .unwrap_or(Err(WriteError::ShuttingDown))
    }
}

/// What a committed batch produced: one result per job, the events to
/// publish, and the id counters after it.
struct Committed {
    results: Vec<Result<Answer, EngineError>>,
    events: Vec<Event>,
    ids: crate::store::Ids,
}

/// Applies every job in one write transaction and commits it.
fn apply_batch(
    store: &Store,
    ids: crate::store::Ids,
    batch: &[Job],
    now: stagecoach_types::model::Millis,
    stats: &WriterStats,
) -> Result<Committed, StoreError> {
    let started = std::time::Instant::now();
    let txn = store.begin_write()?;
    let mut results = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    let ids = {
        let mut tables = Tables::open(&txn, ids)?;
        for job in batch {
            match apply(&mut tables, &job.process, &job.op, now)? {
                Ok((value, evs)) => {
                    results.push(Ok(value));
                    events.extend(evs);
                }
                Err(e) => results.push(Err(e)),
            }
        }
        tables.save_ids()?;
        tables.ids
    };
    let applied = std::time::Instant::now();
    txn.commit()?;
    stats.apply_micros.fetch_add(
        (applied - started).as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    stats.commit_micros.fetch_add(
        applied.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(Committed {
        results,
        events,
        ids,
    })
}

fn run_batch(
    store: &Store,
    clock: &Clock,
    ids: &mut crate::store::Ids,
    batch: &mut Vec<Job>,
    events: &broadcast::Sender<Event>,
    stats: &WriterStats,
) {
    let now = clock.now();
    let outcome = apply_batch(store, *ids, batch, now, stats);
    match outcome {
        Ok(Committed {
            results,
            events: published,
            ids: new_ids,
        }) => {
            *ids = new_ids;
            stats
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats
                .requests
                .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            for (job, result) in batch.drain(..).zip(results) {
                let _ = job.reply.send(result.map_err(WriteError::Refused));
            }
            for event in published {
                if let Event::ProspectMoved { transition: t, .. } = &event {
                    tracing::info!(
                        prospect = t.prospect,
                        from = t.from.as_deref().unwrap_or_default(),
                        to = %t.to,
                        kind = t.kind.as_str(),
                        "prospect moved"
                    );
                }
                // No subscribers is fine.
                let _ = events.send(event);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, requests = batch.len(), "write batch failed; nothing was written");
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(WriteError::Storage {
                    kind: e.kind(),
                    message: e.to_string(),
                }));
            }
        }
    }
}
