//! `import.*`: import sessions, in which many `prospect.import`s are
//! written together, all or nothing (see
//! [`stagecoach_core::writer::session`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Ctx, NoParams, Reply, ready};
use stagecoach_core::engine::import::ImportProspect;
use stagecoach_core::engine::{Answer, WriteOp};
use stagecoach_core::writer::WriteError;
use stagecoach_core::writer::session::ImportSession;
use stagecoach_types::api::params::{ImportDeals, ImportSessionId};
use stagecoach_types::api::results::{self, DealResult, ImportEnded, ImportedDeals};
use stagecoach_types::protocol::{ErrorData, INTERNAL_ERROR, RpcError, UNAVAILABLE};

pub(super) fn begin(ctx: &Arc<Ctx>, _: NoParams) -> Reply {
    ctx.in_order(|ctx| {
        let mut slot = ctx.import.lock().expect("import slot");
        if let Some((open, session)) = slot.as_ref()
            && !session.has_ended()
        {
            return ready(Err(RpcError::new(
                UNAVAILABLE,
                format!("import session {open} is still open: one import runs at a time"),
            )
            .with_data(ErrorData {
                hint: Some(format!(
                    "wait for it to finish; a session sent nothing for {} s is given up",
                    ctx.import_limits.idle.as_secs()
                )),
                ..ErrorData::default()
            })));
        }
        let number = session_number(ctx.import_sessions.fetch_add(1, Ordering::Relaxed));
        let session = ctx.writer.import_session(ctx.import_limits);
        *slot = Some((number, Arc::new(session)));
        ready(Ok(serde_json::to_value(results::ImportSession {
            session: number,
            idle_secs: ctx.import_limits.idle.as_secs(),
        })
        .expect("answers serialize")))
    })
}

/// A session's number: not guessable from the ones before it, so that
/// only the client that began a session reaches it, and under 2^53, so
/// that every JSON client reads it exactly.
fn session_number(nth: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A fresh randomly keyed hasher each time (the standard library seeds
    // them from the system's randomness).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(nth);
    (h.finish() & ((1 << 53) - 1)).max(1)
}

/// The open session numbered `number`.
fn open(ctx: &Ctx, number: u64) -> Result<Arc<ImportSession>, RpcError> {
    let slot = ctx.import.lock().expect("import slot");
    match slot.as_ref() {
        Some((n, s)) if *n == number && !s.has_ended() => Ok(s.clone()),
        _ => Err(RpcError::params(format!(
            "no open import session {number}: it has ended (committed, aborted, or given up after {} s without a request) or never began; nothing more can be added to it",
            ctx.import_limits.idle.as_secs()
        ))),
    }
}

/// `prospect.import`: in its session when it names one, else on its own.
pub(super) fn import(ctx: &Arc<Ctx>, p: ImportProspect) -> Reply {
    let Some(number) = p.session else {
        return ctx.write(WriteOp::Import(Box::new(p)));
    };
    match open(ctx, number) {
        Ok(session) => ctx.in_order(move |ctx| {
            // A session's imports go as `import.deals` sends them: this one alone.
            let rx = session.imports(ctx.active(), vec![p]);
            Box::pin(async move {
                let result = rx
                    .await
                    .ok()
                    .and_then(|results| results.into_iter().next())
                    .unwrap_or(Err(WriteError::ShuttingDown));
                result
                    .map(|answer| serde_json::to_value(answer).expect("answers serialize"))
                    .map_err(RpcError::from)
            })
        }),
        Err(e) => ready(Err(e)),
    }
}

pub(super) fn commit(ctx: &Arc<Ctx>, p: ImportSessionId) -> Reply {
    match open(ctx, p.session) {
        Ok(session) => ctx.in_order(move |_| {
            let rx = session.commit();
            Box::pin(async move {
                let imports = match rx.await {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {
                        return Err(WriteError::ShuttingDown.into());
                    }
                };
                Ok(serde_json::to_value(ImportEnded {
                    session: p.session,
                    committed: true,
                    imports,
                })
                .expect("answers serialize"))
            })
        }),
        Err(e) => ready(Err(e)),
    }
}

pub(super) fn abort(ctx: &Arc<Ctx>, p: ImportSessionId) -> Reply {
    match open(ctx, p.session) {
        Ok(session) => ctx.in_order(move |_| {
            session.abort();
            ready(Ok(serde_json::to_value(ImportEnded {
                session: p.session,
                committed: false,
                imports: 0,
            })
            .expect("answers serialize")))
        }),
        Err(e) => ready(Err(e)),
    }
}

/// Gives up session `number` if it is still open: its client's connection
/// has closed without committing it (0: the connection began none).
pub fn give_up_import(ctx: &Ctx, number: u64) {
    if number == 0 {
        return;
    }
    if let Ok(session) = open(ctx, number) {
        tracing::info!(
            session = number,
            "the client that began an import session has gone without committing it; giving it up"
        );
        session.abort();
    }
}

/// `import.deals`: many deals of the session, applied in order.
pub(super) fn deals(ctx: &Arc<Ctx>, p: ImportDeals) -> Reply {
    if p.deals.is_empty() {
        // It would write nothing, and only keep the session (and the
        // writer) held.
        return ready(Err(RpcError::params(
            "`deals` is empty: send at least one deal",
        )));
    }
    let session = match open(ctx, p.session) {
        Ok(s) => s,
        Err(e) => return ready(Err(e)),
    };
    ctx.in_order(move |ctx| {
        let rx = session.imports(ctx.active(), p.deals);
        Box::pin(async move {
            let results = rx
                .await
                .map_err(|_| RpcError::from(WriteError::ShuttingDown))?;
            let results = results
                .into_iter()
                .map(|r| match r {
                    Ok(Answer::Imported(i)) => DealResult::Imported(i),
                    Ok(other) => DealResult::Refused(RpcError::new(
                        INTERNAL_ERROR,
                        format!("an import answered {other:?}"),
                    )),
                    Err(e) => DealResult::Refused(e.into()),
                })
                .collect();
            Ok(serde_json::to_value(ImportedDeals { results }).expect("answers serialize"))
        })
    })
}
