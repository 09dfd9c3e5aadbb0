//! The single writer: group commit.
//!
//! Every change goes through one thread that takes all requests waiting in
//! its queue, applies them in one redb write transaction and commits once.
//! Each request is answered only after the batch is durable, so one sync is
//! shared by every request in the batch. Requests are applied in the order
//! they were submitted.
//!
//! Durable means in the write-ahead log ([`crate::store::wal`]): the batch's
//! changes are appended and synced there, its requests are answered, and
//! then it is committed to redb without a sync; reads wait for that commit,
//! so an answered write is always visible to the reads that follow it. Every [`CHECKPOINT_BYTES`] of log the commit is durable in redb
//! itself and saves its allocator state, so that a start after a crash
//! loads that state instead of checking the whole file, then applies the
//! log written since. After redb fails on I/O (a full disk) the writer opens
//! the file again and applies the log, so writes succeed again as soon as
//! the disk allows, without a restart.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::engine::{ActiveProcess, Answer, EngineError, Event, WriteOp, apply};
use crate::store::wal::Wal;
use crate::store::{Store, StoreError, Tables};

pub mod session;

/// Upper bound on requests per transaction: keeps a batch's latency bounded
/// under a flood while still sharing each fsync widely.
const MAX_BATCH: usize = 4096;

/// Log written since the last checkpoint after which the next batch is a
/// checkpoint: bounds what a start after a crash applies again.
pub const CHECKPOINT_BYTES: u64 = 8 << 20;
/// The log file's size: a checkpoint's worth and room for large batches
/// (one that does not fit is committed as a checkpoint instead).
const LOG_BYTES: u64 = 24 << 20;

/// What a write request is answered with.
pub type WriteResult = Result<Answer, WriteError>;

pub use stagecoach_types::error::WriteError;

struct Job {
    process: Arc<ActiveProcess>,
    op: WriteOp,
    reply: oneshot::Sender<WriteResult>,
}

/// What the writer's queue carries: a write, or an import session that
/// holds the writer until it is committed or given up.
enum Work {
    Job(Job),
    Session(session::Session),
}

/// A handle to submit writes. Cloning is cheap; when every handle is
/// dropped the writer finishes its queue and stops.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Work>,
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
    /// Why the store is degraded (writes failing), with when it began;
    /// `None` while it is healthy.
    pub degraded: std::sync::Mutex<Option<(stagecoach_types::model::Millis, String)>>,
}

impl WriterStats {
    fn set_degraded(&self, now: stagecoach_types::model::Millis, reason: Option<String>) {
        let mut d = self
            .degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match reason {
            None => *d = None,
            Some(r) => *d = Some((d.as_ref().map_or(now, |(since, _)| *since), r)),
        }
    }
}

impl Writer {
    /// Starts the writer thread.
    pub fn start(
        store: Store,
        clock: Clock,
        events: broadcast::Sender<Event>,
        stats: Arc<WriterStats>,
    ) -> Result<(Writer, JoinHandle<()>), StoreError> {
        let wal = recover(&store)?;
        let ids = store.next_ids()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
        let handle = std::thread::Builder::new()
            .name("stagecoach-writer".into())
            .spawn(move || {
                let mut state = State {
                    store,
                    wal: Some(wal),
                    ids,
                };
                let mut batch = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    // Writes queued before a session are committed before it.
                    let mut session = None;
                    match first {
                        Work::Job(job) => batch.push(job),
                        Work::Session(s) => session = Some(s),
                    }
                    while session.is_none() && batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Work::Job(job)) => batch.push(job),
                            Ok(Work::Session(s)) => session = Some(s),
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() {
                        run_batch(&mut state, &clock, &mut batch, &events, &stats);
                    }
                    if let Some(session) = session {
                        session::run(&mut state, &clock, session, &events, &stats);
                    }
                }
                // Stopping: one durable commit, so the next start applies nothing.
                if let Some(wal) = state.wal.as_mut()
                    && let Err(e) = checkpoint(&state.store, wal, state.ids)
                {
                    tracing::error!(error = %e, "final checkpoint failed; the next start applies the log");
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
        if let Err(mpsc::error::SendError(Work::Job(job))) =
            self.tx.send(Work::Job(Job { process, op, reply }))
        {
            let _ = job.reply.send(Err(WriteError::ShuttingDown));
        }
        rx
    }

    /// Starts an import session ([`session`]): the imports sent through
    /// the handle are applied in one transaction, committed durable when
    /// the handle commits, and given up (nothing written) when it aborts,
    /// is dropped, sends nothing for `limits.idle`, or is still open after
    /// `limits.longest`. Other writes wait while it
    /// runs; reads go on.
    pub fn import_session(&self, limits: session::SessionLimits) -> session::ImportSession {
        let (handle, session) = session::ImportSession::new(limits);
        // A writer that has stopped never serves it: it is over at once.
        if let Err(mpsc::error::SendError(Work::Session(session))) =
            self.tx.send(Work::Session(session))
        {
            session::ImportSession::never_served(session);
        }
        handle
    }

    /// Submits and waits.
    pub async fn write(&self, process: Arc<ActiveProcess>, op: WriteOp) -> WriteResult {
        self.submit(process, op)
            .await
            .unwrap_or(Err(WriteError::ShuttingDown))
    }
}

/// What a batch produced besides its answers: the events to publish and
/// the id counters after it.
struct Committed {
    events: Vec<Event>,
    ids: crate::store::Ids,
}

/// What the writer thread holds between batches.
struct State {
    store: Store,
    /// `None` after a storage failure until the database is open again.
    wal: Option<Wal>,
    ids: crate::store::Ids,
}

fn log_error(store: &Store) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    |source| StoreError::Log {
        path: store.log_path(),
        source,
    }
}

/// Opens the write-ahead log, applies what it holds beyond the database's
/// last checkpoint, and checkpoints. When the disk refuses the checkpoint
/// (it is full), the entries stay applied without it and the log is kept:
/// reads see every acknowledged write, and a later checkpoint succeeds
/// once the disk has room.
fn recover(store: &Store) -> Result<Wal, StoreError> {
    let started = std::time::Instant::now();
    let (mut wal, applied) = replay(store)?;
    if applied == 0 {
        // Nothing since the last durable commit: the log starts empty.
        return Ok(wal);
    }
    let ids = store.next_ids()?;
    match checkpoint(store, &mut wal, ids) {
        Ok(()) => {}
        Err(e) if e.poisons() => {
            tracing::warn!(error = %e, "cannot checkpoint; the write-ahead log is kept until the disk has room");
            store.reopen()?;
            wal = replay(store)?.0;
        }
        Err(e) => return Err(e),
    }
    tracing::info!(
        entries = applied,
        millis = started.elapsed().as_millis() as u64,
        "applied the write-ahead log written since the last checkpoint"
    );
    Ok(wal)
}

/// Applies the log's entries beyond the database's, without a sync (the
/// log holds them); returns the log, open after them, and how many.
fn replay(store: &Store) -> Result<(Wal, usize), StoreError> {
    let applied = store.log_applied()?;
    let (wal, entries) = store
        .open_log(LOG_BYTES, applied)
        .map_err(log_error(store))?;
    if let Some(last) = entries.last().map(|e| e.seq) {
        let mut txn = store.begin_write()?;
        {
            let mut tables = Tables::open(&txn, store.next_ids()?)?;
            for entry in &entries {
                tables.replay(&entry.changes)?;
                tables.ids = entry.ids;
            }
            tables.finish()?;
            tables.set_log_applied(last)?;
        }
        txn.set_durability(redb::Durability::None)?;
        txn.commit()?;
    }
    Ok((wal, entries.len()))
}

/// A commit durable in redb with its allocator state; the log starts over.
fn checkpoint(store: &Store, wal: &mut Wal, ids: crate::store::Ids) -> Result<(), StoreError> {
    let mut txn = store.begin_write()?;
    {
        let mut tables = Tables::open(&txn, ids)?;
        tables.set_log_applied(wal.next_seq() - 1)?;
    }
    txn.set_quick_repair(true);
    txn.commit()?;
    wal.reset();
    Ok(())
}

/// A batch applied in its write transaction, not yet durable.
struct Applied<'s> {
    txn: redb::WriteTransaction,
    /// One per job, in order.
    results: Vec<Result<Answer, EngineError>>,
    committed: Committed,
    /// What the batch did to the tables, for the log; empty when every
    /// request was refused.
    changes: Vec<u8>,
    /// Committed durable in redb itself instead of through the log.
    is_checkpoint: bool,
    started: std::time::Instant,
    store: &'s Store,
}

/// Applies every job in one write transaction.
fn apply_batch<'s>(
    store: &'s Store,
    wal: &Wal,
    ids: crate::store::Ids,
    batch: &[Job],
    now: stagecoach_types::model::Millis,
) -> Result<Applied<'s>, StoreError> {
    let started = std::time::Instant::now();
    store.check_space()?;
    let txn = store.begin_write()?;
    let mut results = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    let (ids, changes, is_checkpoint) = {
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
        tables.finish()?;
        let changes = tables.take_log();
        let is_checkpoint =
            !changes.is_empty() && (!wal.fits(changes.len()) || wal.used() >= CHECKPOINT_BYTES);
        // The last entry the tables now hold: the one about to be logged,
        // or, when nothing goes to the log, the last one already there.
        let applied = if changes.is_empty() || is_checkpoint {
            wal.next_seq() - 1
        } else {
            wal.next_seq()
        };
        tables.set_log_applied(applied)?;
        (tables.ids, changes, is_checkpoint)
    };
    Ok(Applied {
        txn,
        results,
        committed: Committed { events, ids },
        changes,
        is_checkpoint,
        started,
        store,
    })
}

/// What became of a batch.
enum Outcome {
    /// Durable, visible and answered.
    Committed(Committed),
    /// Durable in the log and already answered (see [`commit`]), but redb
    /// failed to commit it. The database has been opened again with the
    /// log applied, or, if that failed, stays closed (reads fail) until the
    /// next batch reopens it.
    AnsweredButNotCommitted(StoreError, Committed),
}

/// Makes an applied batch durable and answers it (`answer`). A batch that
/// goes to the log is answered as soon as its entry is synced, before redb
/// commits it: the entry is what makes it durable, and a start after a crash
/// applies it again. Until the commit is done, reads wait
/// ([`Store::hold_reads`]), so that a client that has its answer and reads
/// next always sees its write. Returns `Err` with nothing answered and
/// nothing written when the batch could not be made durable.
fn commit(
    state: &mut State,
    applied: Applied<'_>,
    stats: &WriterStats,
    answer: impl FnOnce(&mut Vec<Result<Answer, EngineError>>),
) -> Result<Outcome, StoreError> {
    let Applied {
        mut txn,
        mut results,
        committed,
        changes,
        is_checkpoint,
        started,
        store,
    } = applied;
    let wal = state
        .wal
        .as_mut()
        .expect("a batch is applied only on an open log");
    let applied_at = std::time::Instant::now();
    let mut failed = None;
    if is_checkpoint || changes.is_empty() {
        if is_checkpoint {
            txn.set_quick_repair(true);
            txn.commit()?;
            wal.reset();
        } else {
            // Nothing changed (every request refused): nothing to make durable.
            txn.set_durability(redb::Durability::None)?;
            txn.commit()?;
        }
        answer(&mut results);
    } else {
        txn.set_durability(redb::Durability::None)?;
        // On failure the transaction is dropped: nothing was written.
        wal.append(&committed.ids, &changes)
            .map_err(log_error(store))?;
        let reads_wait = store.hold_reads();
        answer(&mut results);
        if let Err(e) = txn.commit() {
            let e = StoreError::from(e);
            tracing::error!(error = %e, "commit failed after its log entry was synced; opening the database again to apply the log");
            // Still holding reads: none may see the database without the
            // writes just answered.
            if let Err(again) = heal_holding(state, &reads_wait) {
                tracing::error!(error = %again, "cannot reopen the database yet; reads fail until it can");
            }
            failed = Some(e);
        }
    }
    stats.apply_micros.fetch_add(
        (applied_at - started).as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    stats.commit_micros.fetch_add(
        applied_at.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(match failed {
        None => Outcome::Committed(committed),
        Some(e) => Outcome::AnsweredButNotCommitted(e, committed),
    })
}

/// After redb failed on I/O: opens the file again and applies the log.
fn heal(state: &mut State) -> Result<(), StoreError> {
    let store = state.store.clone();
    let reads_wait = store.hold_reads();
    heal_holding(state, &reads_wait)
}

/// [`heal`], with reads already held. When the log cannot be applied, the
/// database stays closed: reads fail rather than miss acknowledged writes.
fn heal_holding(
    state: &mut State,
    _reads_wait: &std::sync::RwLockWriteGuard<'_, ()>,
) -> Result<(), StoreError> {
    state.wal = None;
    let store = state.store.clone();
    store.reopen()?;
    // The ids first: the log is open again only with the ids it continues.
    let reopened = recover(&store).and_then(|wal| Ok((wal, store.next_ids()?)));
    match reopened {
        Ok((wal, ids)) => {
            state.ids = ids;
            state.wal = Some(wal);
        }
        Err(e) => {
            store.close();
            return Err(e);
        }
    }
    tracing::info!("database reopened after a storage failure; writes go on");
    Ok(())
}

/// Sends each job its result.
fn answer(batch: &mut Vec<Job>, results: &mut Vec<Result<Answer, EngineError>>) {
    for (job, result) in batch.drain(..).zip(results.drain(..)) {
        let _ = job.reply.send(result.map_err(WriteError::Refused));
    }
}

fn publish(events: &broadcast::Sender<Event>, published: Vec<Event>) {
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

fn run_batch(
    state: &mut State,
    clock: &Clock,
    batch: &mut Vec<Job>,
    events: &broadcast::Sender<Event>,
    stats: &WriterStats,
) {
    let now = clock.now();
    let healed = if state.wal.is_none() {
        heal(state)
    } else {
        Ok(())
    };
    let requests = batch.len() as u64;
    let outcome = healed.and_then(|()| {
        let store = state.store.clone();
        let wal = state.wal.as_ref().expect("open once healed");
        let applied = apply_batch(&store, wal, state.ids, batch, now)?;
        commit(state, applied, stats, |results| {
            // Healthy again before anyone hears of the write: a client that
            // asks `daemon.status` right after its answer must not be told
            // of the failure this write has just outlived.
            stats.set_degraded(now, None);
            answer(batch, results)
        })
    });
    match outcome {
        Ok(Outcome::Committed(Committed {
            events: published,
            ids: new_ids,
        })) => {
            state.ids = new_ids;
            stats
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            stats
                .requests
                .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
            publish(events, published);
        }
        Ok(Outcome::AnsweredButNotCommitted(e, committed)) => {
            // The writes are durable and answered; once the log is applied
            // (done, unless the reopen failed) they are visible too.
            stats.set_degraded(now, Some(e.to_string()));
            publish(events, committed.events);
        }
        Err(e) => {
            tracing::error!(error = %e, requests = batch.len(), "write batch failed; nothing was written");
            stats.set_degraded(now, Some(e.to_string()));
            if e.poisons() || matches!(e, StoreError::Reopening) {
                // redb refuses everything after an I/O error: open it again
                // now, so that reads go on and the next write can succeed —
                // before the clients hear of the failure, so that a read
                // they send next never meets the refusing handle.
                if let Err(e) = heal(state) {
                    tracing::error!(error = %e, "cannot reopen the database yet; trying again with the next write");
                }
            }
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(WriteError::Storage {
                    kind: e.kind(),
                    message: e.to_string(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod power_cut {
    //! Every acknowledged write survives a power cut at any moment: the
    //! database and its log on a simulated disk that loses every write not
    //! yet synced (kill -9 keeps the page cache, so it never tests this).

    use super::*;
    use crate::engine::{NewActivity, NewProspect};
    use crate::store::media::sim::SimMedia;
    use stagecoach_types::model::Millis;

    const START: i64 = 20_454 * Millis::DAY; // 2026-01-01

    fn process() -> Arc<ActiveProcess> {
        let text = "[process]\nname = \"p\"\n[[stages]]\nid = \"prospect\"\nname = \"Prospect\"\nexit = [{ question = \"q\", activity = \"replied\", actor = \"prospect\" }]\n[[stages]]\nid = \"connect\"\nname = \"Connect\"\n";
        Arc::new(ActiveProcess {
            version: 1,
            hash: String::new(),
            text: text.into(),
            loaded_at: Millis(START),
            process: crate::process::parse(text, "p.toml").unwrap(),
            plugins: Default::default(),
        })
    }

    /// A small deterministic generator (xorshift), so a failing round can
    /// be run again.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// The store on `media` with its writer started (the log applied),
    /// its clock at `now`.
    fn started(
        dir: &std::path::Path,
        media: &Arc<SimMedia>,
        now: i64,
    ) -> Result<(Store, Writer, JoinHandle<()>), StoreError> {
        let store = Store::open_sim(dir, media.clone())?;
        let (events, _) = broadcast::channel(16);
        let (writer, thread) = Writer::start(
            store.clone(),
            Clock::fixed(Millis(now)),
            events,
            Arc::new(WriterStats::default()),
        )?;
        Ok((store, writer, thread))
    }

    /// The store after a start, which applies the log; its writer stopped.
    fn after_start(dir: &std::path::Path, media: &Arc<SimMedia>) -> Store {
        let (store, writer, thread) = started(dir, media, START).unwrap();
        drop(writer);
        thread.join().unwrap();
        store
    }

    #[test]
    fn every_acknowledged_write_survives_a_power_cut_at_any_moment() {
        let dir = tempfile::tempdir().unwrap();
        let media = Arc::new(SimMedia::default());
        let active = process();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // (prospect id, name, activities acknowledged)
        let mut acked: Vec<(u64, String, usize)> = Vec::new();
        let (mut cuts_in_start, mut rounds_with_writes, mut refused) = (0, 0, 0);
        for round in 0..30 {
            // The power goes off at a random moment of this round, start-up
            // (replaying the log, its checkpoint) included.
            // Every other round, unsynced writes reach the disk at random
            // (torn: any subset, in any order); otherwise none does.
            let delay = std::time::Duration::from_micros(rng.below(30_000));
            let (torn, mut seed) = (round % 2 == 1, Rng(rng.below(u64::MAX) | 1));
            let cutter = {
                let media = media.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    media.cut(&mut || torn && seed.below(2) == 0);
                })
            };
            let started = started(dir.path(), &media, START + 100 * Millis::DAY).and_then(|(store, writer, thread)| {
                // Once the log is applied (the daemon serves nothing
                // before), everything acknowledged before is there.
                // Everything acknowledged before is there.
                for (id, name, activities) in &acked {
                    let p = store.prospect(*id)?;
                    assert_eq!(
                        p.as_ref().map(|p| p.name.as_str()),
                        Some(name.as_str()),
                        "round {round}: acknowledged prospect {id} lost"
                    );
                    let stored = store.activities(*id)?.len();
                    assert!(
                        stored >= *activities,
                        "round {round}: prospect {id} has {stored} activities of {activities} acknowledged"
                    );
                }
                Ok((store, writer, thread))
            });
            let Ok((store, writer, thread)) = started else {
                cuts_in_start += 1;
                cutter.join().unwrap();
                media.restart();
                continue;
            };
            // Writes, sixteen in flight, until they fail: the power is off.
            let mut pending = std::collections::VecDeque::new();
            let mut next = acked.len();
            let mut failed = false;
            while !failed {
                let name = format!("p{round}-{next}");
                next += 1;
                pending.push_back((
                    name.clone(),
                    writer.submit(
                        active.clone(),
                        WriteOp::CreateProspect(NewProspect {
                            name,
                            company: None,
                            owner: Some("o".into()),
                            fields: Default::default(),
                            stage: None,
                            external_id: None,
                            at: Some(Millis(START)),
                        }),
                    ),
                ));
                while pending.len() >= 16 || (failed && !pending.is_empty()) {
                    let (name, rx) = pending.pop_front().unwrap();
                    match rx.blocking_recv().unwrap() {
                        Ok(Answer::Prospect(p)) => {
                            let id = p.prospect.id;
                            // And one activity on it, acknowledged or not.
                            let rx = writer.submit(
                                active.clone(),
                                WriteOp::RecordActivity(NewActivity {
                                    prospect: id,
                                    kind: "email_sent".into(),
                                    actor: None,
                                    at: Some(Millis(START + 1)),
                                    data: Default::default(),
                                }),
                            );
                            let activity = rx.blocking_recv().unwrap().is_ok();
                            failed |= !activity;
                            acked.push((id, name, usize::from(activity)));
                        }
                        Ok(other) => panic!("{other:?}"),
                        Err(_) => {
                            refused += 1;
                            failed = true;
                        }
                    }
                }
            }
            rounds_with_writes += 1;
            drop(writer);
            thread.join().unwrap();
            drop(store);
            cutter.join().unwrap();
            media.restart();
        }
        // The last cut's survivors, checked once more (after the log is
        // applied, as every start does).
        let store = after_start(dir.path(), &media);
        for (id, name, activities) in &acked {
            let p = store.prospect(*id).unwrap().expect("acknowledged prospect");
            assert_eq!(&p.name, name);
            assert!(store.activities(*id).unwrap().len() >= *activities);
        }
        // That the cuts fell while writing, not only at start-up (where
        // they fall is a matter of timing; these bounds hold with room).
        assert!(acked.len() > 50, "{} writes acknowledged", acked.len());
        assert!(
            rounds_with_writes >= 5 && refused >= 5,
            "{rounds_with_writes} rounds, {refused} refused"
        );
        eprintln!(
            "power cuts: {} acknowledged prospects survived 30 cuts ({cuts_in_start} during start-up, {rounds_with_writes} while writing)",
            acked.len()
        );
    }

    /// redb failing to commit a batch whose log entry is synced (and so
    /// already answered): the write stays, reads never see the database
    /// without it, and once the disk takes writes again it is there, after
    /// a power cut too.
    #[test]
    fn a_commit_that_fails_after_the_log_keeps_the_answered_write() {
        let dir = tempfile::tempdir().unwrap();
        let media = Arc::new(SimMedia::default());
        let active = process();
        let (store, writer, thread) = started(dir.path(), &media, START + Millis::DAY).unwrap();
        let write = |op| writer.submit(active.clone(), op).blocking_recv().unwrap();
        // Larger than the simulated database's page cache (16 MiB), so
        // that redb writes during the commit (a small non-durable commit
        // stays in its cache) — and smaller than the log.
        let notes = "n".repeat(18 << 20);
        let activity = |prospect| {
            WriteOp::RecordActivity(NewActivity {
                prospect,
                kind: "email_sent".into(),
                actor: None,
                at: Some(Millis(START + 1)),
                data: serde_json::from_value(serde_json::json!({ "notes": notes })).unwrap(),
            })
        };
        let id = match write(WriteOp::CreateProspect(NewProspect {
            name: "p".into(),
            company: None,
            owner: None,
            fields: Default::default(),
            stage: None,
            external_id: None,
            at: Some(Millis(START)),
        })) {
            Ok(Answer::Prospect(p)) => p.prospect.id,
            other => panic!("{other:?}"),
        };
        // The database's disk refuses writes from the moment the log is
        // synced: redb fails in the commit, after the answer.
        media.log.on_next_sync_refuse_writes_of(&media.db);
        let answered = write(activity(id));
        assert!(answered.is_ok(), "{answered:?}");
        // Meanwhile a read has the write or fails; it never misses it.
        if let Ok(stored) = store.activities(id) {
            assert_eq!(stored.len(), 1);
        }
        // The disk takes writes again: the next write reopens the
        // database, applies the log and goes on.
        media.db.refuse_writes(false);
        let next = write(activity(id));
        assert!(next.is_ok(), "{next:?}");
        assert_eq!(store.activities(id).unwrap().len(), 2);
        drop(writer);
        thread.join().unwrap();
        drop(store);
        // And both survive a power cut.
        media.cut(&mut || false);
        media.restart();
        let store = after_start(dir.path(), &media);
        assert_eq!(store.activities(id).unwrap().len(), 2);
    }
}
