//! Moving history in and out: importing another CRM's CSV export through
//! the normal write path, exporting for spreadsheets and BI tools, and
//! reading closed deals for process discovery.
//!
//! - [`source`]: reading CSV exports (column mapping, dates, stages, row checks).
//! - [`import`]: replaying what was read through the daemon, idempotently.
//! - [`export`]: paging tables out as CSV or NDJSON.

pub mod export;
pub mod import;
pub mod source;

use std::collections::HashMap;

use crate::discover::{Deal, Step};
use crate::model::{Actor, Millis};
use source::{Source, SourceStage};

/// Closed deals from CSV files read by [`source::read`], for discovery:
/// a deal is won or lost by its stage or status column; open ones are left
/// out. An activity's actor is the file's, else `declared` (from a process
/// file), else guessed from its name (`…_sent`, `call_made` are the rep's).
pub fn deals_from(src: &Source, declared: &HashMap<String, Actor>) -> Vec<Deal> {
    let mut steps: HashMap<&str, Vec<Step>> = HashMap::new();
    for a in &src.activities {
        if a.kind == crate::rpc::history::FIELDS_UPDATED {
            continue;
        }
        steps.entry(a.key.as_str()).or_default().push(Step {
            kind: a.kind.clone(),
            at: a.at,
            actor: a
                .actor
                .or_else(|| declared.get(&a.kind).copied())
                .unwrap_or_else(|| guess_actor(&a.kind)),
        });
    }
    src.prospects
        .iter()
        .filter_map(|p| {
            let won = match p.stage.as_ref()? {
                SourceStage::Won => true,
                SourceStage::Lost => false,
                _ => return None,
            };
            let steps =
                crate::rpc::history::sorted(steps.remove(p.key.as_str()).unwrap_or_default());
            let last = steps.last().map_or(p.created, |s| s.at);
            Some(Deal {
                key: p.external_id.clone(),
                owner: p.owner.clone(),
                won,
                created: p.created,
                closed: p.closed.unwrap_or(last).max(Millis(p.created.0)),
                steps,
            })
        })
        .collect()
}

/// Whose action a kind is, by its name, when nothing says.
pub fn guess_actor(kind: &str) -> Actor {
    const REP: [&str; 9] = [
        "sent", "made", "outreach", "follow", "task", "note", "logged", "called", "emailed",
    ];
    if REP.iter().any(|w| kind.contains(w)) {
        Actor::Rep
    } else {
        Actor::Prospect
    }
}
