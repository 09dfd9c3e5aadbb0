//! Learning from history: `process.discover`, `export.page` (the rows
//! `stagecoach export` writes) and `prospect.lookup` (what an import finds
//! already present).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::discover::{self, Deal, Step};
use stagecoach_core::store::ProspectFilter;
use stagecoach_types::api::params::{
    ExportPage, ExportWhat, MAX_CURSOR_ID, ProcessDiscover, ProspectLookup,
};
use stagecoach_types::api::results::{ExportRows, ExportedPage, Lookup, LookupEntry};
use stagecoach_types::model::{FIELDS_UPDATED, Status};
use stagecoach_types::protocol::RpcError;

const MAX_PAGE: usize = 10_000;

pub(super) fn discover(ctx: &Arc<Ctx>, p: ProcessDiscover) -> Reply {
    let options = match discover::options(p.include_lost, p.min_support, p.min_share, p.variants) {
        Ok(o) => o,
        Err(e) => return ready(Err(RpcError::params(e))),
    };
    let ctx = ctx.clone();
    read(move || {
        let mut deals = Vec::new();
        // Lost deals also check the draft (its last stage must not close
        // them won), whether or not they are analysed.
        let statuses: &[Status] = &[Status::Won, Status::Lost];
        for status in statuses {
            let mut after = None;
            loop {
                let page = ctx.store.prospects(&ProspectFilter {
                    stage: None,
                    owner: p.owner.clone(),
                    status: Some(*status),
                    after,
                    limit: MAX_PAGE,
                })?;
                after = page.last().map(|p| p.id);
                for prospect in &page {
                    let closed = prospect.closed_at.unwrap_or(prospect.last_activity_at);
                    if p.from.is_some_and(|f| closed < f) || p.to.is_some_and(|t| closed >= t) {
                        continue;
                    }
                    let steps = ctx
                        .store
                        .activities(prospect.id)?
                        .into_iter()
                        .filter(|a| a.kind != FIELDS_UPDATED)
                        .map(|a| Step {
                            kind: a.kind,
                            at: a.at,
                            actor: a.actor,
                        })
                        .collect();
                    deals.push(Deal {
                        open: false,
                        key: prospect
                            .external_id
                            .clone()
                            .unwrap_or_else(|| prospect.id.to_string()),
                        owner: prospect.owner.clone(),
                        won: prospect.status == Status::Won,
                        created: prospect.created_at,
                        closed,
                        steps: discover::sorted(steps),
                    });
                }
                if page.len() < MAX_PAGE {
                    break;
                }
            }
        }
        if let Some(last) = p.last {
            deals.sort_by_key(|d| std::cmp::Reverse(d.closed));
            deals.truncate(last);
        }
        Ok(json!(discover::discover(&deals, &options, ctx.clock.now())))
    })
}

/// One page of an export: `{rows, next}`; `next` is the `after` of the next
/// page, null at the end.
pub(super) fn page(ctx: &Arc<Ctx>, p: ExportPage) -> Reply {
    let limit = p.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_PAGE {
        return ready(Err(RpcError::params(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        ))));
    }
    let ctx = ctx.clone();
    read(move || {
        let after = p.after;
        Ok(match p.what {
            ExportWhat::Prospects => {
                let filter = ProspectFilter {
                    stage: None,
                    owner: None,
                    status: None,
                    after: cursor(after)?,
                    limit,
                };
                page_of(
                    ctx.store.prospects(&filter)?,
                    limit,
                    |r| json!(r.id),
                    ExportRows::Prospects,
                )
            }
            ExportWhat::Activities => page_of(
                ctx.store.activities_page(cursor(after)?, limit)?,
                limit,
                |a| json!([a.prospect, a.id]),
                ExportRows::Activities,
            ),
            ExportWhat::Transitions => page_of(
                ctx.store.transitions_page(cursor(after)?, limit)?,
                limit,
                |t| json!(t.id),
                ExportRows::Transitions,
            ),
        })
    })
}

/// A page's `after`: none (or null) for the first page; ids in a cursor
/// lie within [`MAX_CURSOR_ID`], so none wraps round to the first page.
fn cursor<T: DeserializeOwned + Cursor>(after: Option<Value>) -> Result<Option<T>, ReadError> {
    let v = after.unwrap_or(Value::Null);
    let refuse = || {
        ReadError::Rpc(RpcError::params(format!(
            "`after`: `{v}` is not a cursor from a previous page (pass a page's `next`)"
        )))
    };
    let cursor: Option<T> = serde_json::from_value(v.clone()).map_err(|_| refuse())?;
    if cursor
        .as_ref()
        .is_some_and(|c| c.first_id() > MAX_CURSOR_ID)
    {
        return Err(refuse());
    }
    Ok(cursor)
}

/// What a page's cursor starts with: an id the daemon assigned.
trait Cursor {
    fn first_id(&self) -> u64;
}

impl Cursor for u64 {
    fn first_id(&self) -> u64 {
        *self
    }
}

impl Cursor for (u64, u64) {
    fn first_id(&self) -> u64 {
        self.0
    }
}

/// `{rows, next}`: `next` is the last row's cursor when the page is full.
fn page_of<T>(
    rows: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> Value,
    wrap: impl Fn(Vec<T>) -> ExportRows,
) -> Value {
    let next = rows.last().filter(|_| rows.len() == limit).map(key);
    json!(ExportedPage {
        rows: wrap(rows),
        next,
    })
}

/// The prospects behind `external_ids` (those that exist).
pub(super) fn lookup(ctx: &Arc<Ctx>, p: ProspectLookup) -> Reply {
    if p.external_ids.len() > MAX_PAGE {
        return ready(Err(RpcError::params(format!(
            "at most {MAX_PAGE} `external_ids` per call"
        ))));
    }
    let ctx = ctx.clone();
    read(move || {
        // One snapshot for the whole answer.
        let snap = ctx.store.snapshot()?;
        let mut found = BTreeMap::new();
        for ext in p.external_ids {
            let Some(id) = snap.prospect_by_external_id(&ext)? else {
                continue;
            };
            let Some(prospect) = snap.prospect(id)? else {
                continue;
            };
            let (activities, transitions) = if p.history {
                let activities = snap.activities(id)?.into_iter().map(|a| (a.kind, a.at));
                let transitions = snap.transitions(id)?.into_iter().map(|t| (t.to, t.at));
                (Some(activities.collect()), Some(transitions.collect()))
            } else {
                (None, None)
            };
            let entry = LookupEntry {
                id,
                stage: prospect.stage,
                status: prospect.status,
                activities,
                transitions,
            };
            found.insert(ext, entry);
        }
        Ok(json!(Lookup { found }))
    })
}
