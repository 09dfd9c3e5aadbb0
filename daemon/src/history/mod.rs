//! Moving history in and out: importing another CRM's CSV export through
//! the normal write path, exporting for spreadsheets and BI tools, and
//! reading closed deals for process discovery.
//!
//! - [`source`]: reading CSV exports (column mapping, dates, stages, row checks).
//! - [`import`]: replaying what was read through the daemon, idempotently.
//! - [`export`]: paging tables out as CSV, NDJSON or Parquet ([`parquet`]),
//!   or the whole history as an OCEL 2.0 log ([`ocel`]).

pub mod export;
pub mod import;
pub mod ocel;
pub mod parquet;
pub mod source;

use std::collections::HashMap;

use source::Source;
use stagecoach_core::discover::{Deal, Step};
use stagecoach_types::model::Actor;

/// Deals from CSV files read by [`source::read`], for discovery: won or
/// lost as the source has it, or open (which only checks the draft). An
/// activity's actor is the file's (an actor or direction column, or a type
/// such as `Incoming Email`), else `declared` (from a process file), else
/// the rep's: nothing is invented.
pub fn deals_from(src: &Source, declared: &HashMap<String, Actor>) -> Vec<Deal> {
    let mut steps: HashMap<&str, Vec<Step>> = HashMap::new();
    for a in &src.activities {
        if a.kind == stagecoach_types::model::FIELDS_UPDATED {
            continue;
        }
        let actor = a
            .actor
            .or_else(|| declared.get(&a.kind).copied())
            .unwrap_or(Actor::Rep);
        for key in &a.keys {
            steps.entry(key.as_str()).or_default().push(Step {
                kind: a.kind.clone(),
                at: a.at,
                actor,
            });
        }
    }
    src.prospects
        .iter()
        .map(|p| {
            let steps =
                stagecoach_core::discover::sorted(steps.remove(p.key.as_str()).unwrap_or_default());
            let last = steps.last().map_or(p.created, |s| s.at);
            Deal {
                key: p.external_id.clone(),
                owner: p.owner.clone(),
                won: p.outcome.as_ref().is_some_and(|o| o.won),
                open: p.outcome.is_none(),
                created: p.created,
                closed: p
                    .outcome
                    .as_ref()
                    .and_then(|o| o.at)
                    .unwrap_or(last)
                    .max(p.created),
                steps,
            }
        })
        .collect()
}
