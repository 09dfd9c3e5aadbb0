//! Import sessions: one import, however large, as one transaction.
//!
//! `stagecoach import` brings in a team's history, up to millions of deals.
//! As ordinary writes, every batch of deals would be its own commit: its
//! changes encoded for the write-ahead log, the metric rows and day
//! summaries it touches rewritten, the pages it dirties written again by
//! the next batch. An import session applies every deal it is sent in one
//! write transaction instead:
//! - the metric counters, rows and day summaries are gathered across the
//!   whole import and written once, in key order (sooner only past their
//!   memory budgets, as a replay's: `Tables::write_past_budget`);
//! - nothing goes to the write-ahead log: the commit is durable in redb
//!   itself, as a checkpoint is, so a start after a crash has nothing of
//!   it to apply;
//! - it is all or nothing. A session given up (aborted, its handle
//!   dropped, nothing sent for its idle time, the daemon killed) leaves
//!   the database as it was.
//!
//! Each import is answered once applied, as it will be committed: refused
//! or written. Only the commit's answer says it is durable. While a session
//! runs the writer serves nothing else, so other writes wait for it; reads
//! go on, and see the import when it commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use super::{State, WriteError, WriteResult, WriterStats, heal, publish};
use crate::clock::Clock;
use crate::engine::import::ImportProspect;
use crate::engine::{ActiveProcess, Event, WriteOp, apply};
use crate::store::{StoreError, Tables};

/// Notifications held until the commit; past it, subscribers are told how
/// many they missed (`events.lagged`), as when they read too slowly: the
/// daemon's notification queue holds no more than this at once anyway.
const HELD_EVENTS: usize = 4096;

enum Msg {
    Imports {
        process: Arc<ActiveProcess>,
        ops: Vec<ImportProspect>,
        reply: oneshot::Sender<Vec<WriteResult>>,
    },
    Commit(oneshot::Sender<Result<u64, WriteError>>),
    Abort,
}

/// The client's side of an import session (see the module's notes).
/// Dropping it gives the session up.
pub struct ImportSession {
    tx: std_mpsc::Sender<Msg>,
    ended: Arc<AtomicBool>,
}

/// The writer's side: what [`run`] serves.
pub(super) struct Session {
    rx: std_mpsc::Receiver<Msg>,
    limits: SessionLimits,
    ended: Arc<AtomicBool>,
}

/// How long a session may hold the writer.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Without a request: given up.
    pub idle: Duration,
    /// In all, however busy: given up (other writes wait meanwhile).
    pub longest: Duration,
}

fn ended(why: &str) -> WriteError {
    WriteError::SessionEnded(why.to_string())
}

impl ImportSession {
    pub(super) fn new(limits: SessionLimits) -> (ImportSession, Session) {
        let (tx, rx) = std_mpsc::channel();
        let ended = Arc::new(AtomicBool::new(false));
        (
            ImportSession {
                tx,
                ended: ended.clone(),
            },
            Session { rx, limits, ended },
        )
    }

    /// Whether the session has ended (committed or given up).
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Applies many imports in the session, in order; resolves to their
    /// results once all are applied.
    pub fn imports(
        &self,
        process: Arc<ActiveProcess>,
        ops: Vec<ImportProspect>,
    ) -> oneshot::Receiver<Vec<WriteResult>> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Imports {
            process,
            ops,
            reply,
        });
        rx
    }

    /// Commits everything applied; resolves to how many imports were
    /// written, once durable.
    pub fn commit(&self) -> oneshot::Receiver<Result<u64, WriteError>> {
        let (reply, rx) = oneshot::channel();
        self.send(Msg::Commit(reply));
        rx
    }

    /// Hands `msg` to the writer; a session it no longer serves answers it
    /// at once.
    fn send(&self, msg: Msg) {
        if let Err(std_mpsc::SendError(msg)) = self.tx.send(msg) {
            refuse(msg, "it is no longer open");
        }
    }

    /// Gives the session up: nothing of it is written. It is over from
    /// now on, for [`ImportSession::has_ended`] and what is sent to it.
    pub fn abort(&self) {
        self.ended.store(true, Ordering::Release);
        let _ = self.tx.send(Msg::Abort);
    }

    /// Marks a session the writer will never serve (it has stopped) as over.
    pub(super) fn never_served(session: Session) {
        session.ended.store(true, Ordering::Release);
    }
}

/// Serves one session on the writer thread, then answers whatever is still
/// queued for it.
pub(super) fn run(
    state: &mut State,
    clock: &Clock,
    session: Session,
    events: &broadcast::Sender<Event>,
    stats: &WriterStats,
) {
    let why = match serve(state, clock, &session, events, stats) {
        Ok(why) => why,
        Err(e) => {
            let now = clock.now();
            tracing::error!(error = %e, "import session failed; nothing of it was written");
            stats.set_degraded(now, Some(e.to_string()));
            if (e.poisons() || matches!(e, StoreError::Reopening))
                && let Err(e) = heal(state)
            {
                tracing::error!(error = %e, "cannot reopen the database yet; trying again with the next write");
            }
            format!("storage failure, nothing of it was written: {e}")
        }
    };
    session.ended.store(true, Ordering::Release);
    while let Ok(msg) = session.rx.try_recv() {
        refuse(msg, &why);
    }
}

/// Answers a request that came too late for the session.
fn refuse(msg: Msg, why: &str) {
    match msg {
        Msg::Imports { reply, ops, .. } => {
            let _ = reply.send(ops.iter().map(|_| Err(ended(why))).collect());
        }
        Msg::Commit(reply) => {
            let _ = reply.send(Err(ended(why)));
        }
        Msg::Abort => {}
    }
}

/// The session's transaction: returns why it ended (for requests that
/// arrive after), or the storage failure that ended it.
fn serve(
    state: &mut State,
    clock: &Clock,
    session: &Session,
    events: &broadcast::Sender<Event>,
    stats: &WriterStats,
) -> Result<String, StoreError> {
    if state.wal.is_none() {
        heal(state)?;
    }
    let store = state.store.clone();
    store.check_space()?;
    let mut txn = store.begin_write()?;
    let mut tables = Tables::open_unlogged(&txn, state.ids)?;
    let started = std::time::Instant::now();
    let deadline = started + session.limits.longest;
    let mut held = Held::default();
    let result = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let received = session.rx.recv_timeout(session.limits.idle.min(left));
        if left.is_zero() {
            // However busy: past its longest time it is given up.
            tracing::warn!(
                longest_secs = session.limits.longest.as_secs_f64(),
                applied = held.applied,
                "import session given up: open for its longest time; nothing of it was written"
            );
            let why = format!(
                "it was open for {} s, the longest a session may hold the other writes (`--import-max-secs`), so it was given up and nothing of it was written; import fewer deals at a time",
                session.limits.longest.as_secs()
            );
            if let Ok(msg) = received {
                refuse(msg, &why);
            }
            return Ok(why);
        }
        let msg = match received {
            Ok(msg) => msg,
            // Past the deadline, the next turn gives it up.
            Err(RecvTimeoutError::Timeout) if left <= session.limits.idle => continue,
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    idle_secs = session.limits.idle.as_secs_f64(),
                    applied = held.applied,
                    "import session given up: nothing was sent to it for its idle time; nothing of it was written"
                );
                return Ok(format!(
                    "nothing was sent to it for {} s, so it was given up and nothing of it was written",
                    session.limits.idle.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                tracing::info!(
                    applied = held.applied,
                    "import session dropped; nothing of it was written"
                );
                return Ok("it was given up; nothing of it was written".into());
            }
        };
        match msg {
            Msg::Abort => {
                tracing::info!(
                    applied = held.applied,
                    "import session aborted; nothing of it was written"
                );
                return Ok("it was aborted; nothing of it was written".into());
            }
            Msg::Imports {
                process,
                ops,
                reply,
            } => {
                let n = ops.len();
                let mut results = Vec::with_capacity(n);
                for op in ops {
                    match held.apply(&mut tables, &process, op, clock) {
                        Ok(result) => results.push(result),
                        Err(e) => {
                            // Nothing of the session is written: none of them.
                            let _ = reply.send((0..n).map(|_| Err(storage(&e))).collect());
                            return Err(e);
                        }
                    }
                }
                let _ = reply.send(results);
            }
            Msg::Commit(reply) => break reply,
        }
    };
    let reply = result;
    // Over for new requests from here, so that an `import.begin` sent right
    // after the commit's answer is not refused as "still open".
    session.ended.store(true, Ordering::Release);
    let wal = state
        .wal
        .as_mut()
        .expect("a session runs only on an open log");
    // Durable in redb itself, with what the log held before it: the log
    // starts over, as after a checkpoint.
    let written = tables
        .finish()
        .and_then(|()| tables.set_log_applied(wal.next_seq() - 1));
    if let Err(e) = written {
        let _ = reply.send(Err(storage(&e)));
        return Err(e);
    }
    let ids = tables.ids;
    drop(tables);
    txn.set_quick_repair(true);
    let applied_at = std::time::Instant::now();
    if let Err(e) = txn.commit() {
        let e = StoreError::from(e);
        let _ = reply.send(Err(storage(&e)));
        return Err(e);
    }
    wal.reset();
    state.ids = ids;
    stats.set_degraded(clock.now(), None);
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.requests.fetch_add(held.applied, Ordering::Relaxed);
    stats
        .apply_micros
        .fetch_add((applied_at - started).as_micros() as u64, Ordering::Relaxed);
    stats
        .commit_micros
        .fetch_add(applied_at.elapsed().as_micros() as u64, Ordering::Relaxed);
    tracing::info!(
        imports = held.applied,
        seconds = started.elapsed().as_secs_f64(),
        "import session committed"
    );
    let _ = reply.send(Ok(held.applied));
    publish(events, held.events);
    if held.missed > 0 {
        publish(
            events,
            vec![Event::EventsLagged {
                missed: held.missed,
                hint: "an import moved more prospects than notifications are held for; read the prospects again (`prospect.list`)".into(),
            }],
        );
    }
    Ok("it was committed".into())
}

fn storage(e: &StoreError) -> WriteError {
    WriteError::Storage {
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// What a session keeps until its commit.
#[derive(Default)]
struct Held {
    /// Notifications, up to [`HELD_EVENTS`].
    events: Vec<Event>,
    /// Notifications past them.
    missed: u64,
    /// Imports applied (not refused).
    applied: u64,
}

impl Held {
    /// Applies one import; `Err` is a storage failure, which ends the
    /// session with nothing written.
    fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        process: &ActiveProcess,
        op: ImportProspect,
        clock: &Clock,
    ) -> Result<WriteResult, StoreError> {
        let op = WriteOp::Import(Box::new(op));
        let result = match apply(tables, process, &op, clock.now())? {
            Ok((answer, evs)) => {
                self.applied += 1;
                for e in evs {
                    if self.events.len() < HELD_EVENTS {
                        self.events.push(e);
                    } else {
                        self.missed += 1;
                    }
                }
                Ok(answer)
            }
            Err(e) => Err(WriteError::Refused(e)),
        };
        tables.write_past_budget()?;
        Ok(result)
    }
}
