//! `stagecoach export`: prospects, activities or transitions as CSV (for
//! spreadsheets), NDJSON or Parquet (for BI tools and SQL engines), paged
//! out of the daemon; or the whole history as one OCEL 2.0 log ([`super::ocel`]).
//!
//! The CSV columns are the ones `stagecoach import` reads back, so an
//! export imported into an empty daemon replays the same history; the
//! Parquet files have the same columns, typed ([`super::parquet`]).

use std::collections::BTreeSet;
use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;

use stagecoach_client::Client;
use stagecoach_types::api::params::ExportWhat;
use stagecoach_types::api::results::ExportRows;
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::{Activity, Fields, Prospect, Transition};

use super::parquet::{ParquetRow, ParquetWriter};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Table {
    /// One row per prospect, its fields as `field.NAME` columns.
    Prospects,
    /// The activity log.
    Activities,
    /// Every stage transition.
    Transitions,
}

impl Table {
    fn what(self) -> ExportWhat {
        match self {
            Table::Prospects => ExportWhat::Prospects,
            Table::Activities => ExportWhat::Activities,
            Table::Transitions => ExportWhat::Transitions,
        }
    }
}

/// How to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated, a header line first.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet, typed columns (times as UTC timestamps), for DuckDB,
    /// Spark, Trino, ClickHouse, pandas; without a table, all three into
    /// the `--out` directory.
    Parquet,
    /// The whole history as one OCEL 2.0 JSON object-centric event log
    /// (prospects and owners as objects, activities and transitions as
    /// events), for process mining (pm4py, Celonis, ProM); takes no table.
    Ocel,
}

const PAGE: usize = 5000;

/// One exported record: its CSV columns (the ones `stagecoach import` reads
/// back) and their cells.
trait Row: serde::Serialize {
    const COLUMNS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
    /// A prospect's fields (`field.NAME` columns); none for other records.
    fn fields(&self) -> Option<&Fields> {
        None
    }
}

fn opt(v: &Option<impl ToString>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A free-form JSON value as a cell: strings as they are, objects as JSON,
/// empty when empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    }
}

fn wire(v: &impl serde::Serialize) -> String {
    cell(&serde_json::to_value(v).unwrap_or_default())
}

impl Row for Prospect {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "external_id",
        "name",
        "company",
        "owner",
        "stage",
        "status",
        "created_at",
        "stage_entered_at",
        "closed_at",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            opt(&self.external_id),
            self.name.clone(),
            opt(&self.company),
            opt(&self.owner),
            self.stage.clone(),
            self.status.as_str().to_string(),
            self.created_at.to_string(),
            self.stage_entered_at.to_string(),
            opt(&self.closed_at),
        ]
    }
    fn fields(&self) -> Option<&Fields> {
        Some(&self.fields)
    }
}

impl Row for Activity {
    const COLUMNS: &'static [&'static str] = &["id", "prospect", "kind", "actor", "at", "data"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.prospect.to_string(),
            self.kind.clone(),
            self.actor.as_str().to_string(),
            self.at.to_string(),
            cell(&Value::Object(self.data.clone())),
        ]
    }
}

impl Row for Transition {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "prospect",
        "from",
        "to",
        "at",
        "kind",
        "process_version",
        "reason",
        "by",
        "activity",
        "imported",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.prospect.to_string(),
            opt(&self.from),
            self.to.clone(),
            self.at.to_string(),
            self.kind.as_str().to_string(),
            self.process_version.to_string(),
            opt(&self.reason),
            opt(&self.by),
            opt(&self.activity),
            // Absent means false: every move the daemon made itself.
            self.imported.to_string(),
        ]
    }
}

/// Calls `each` with every record of one kind, page by page.
pub(super) async fn pages<R>(
    client: &mut Client,
    table: Table,
    pick: fn(ExportRows) -> Option<Vec<R>>,
    mut each: impl FnMut(&R) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let page = client
            .request::<methods::ExportPage>(&params::ExportPage {
                what: table.what(),
                after,
                limit: Some(PAGE),
            })
            .await?;
        let rows = if page.rows.is_empty() {
            Vec::new()
        } else {
            pick(page.rows).ok_or_else(|| {
                anyhow::anyhow!("the daemon answered other records than {table:?}")
            })?
        };
        for row in &rows {
            each(row)?;
        }
        match page.next {
            None | Some(Value::Null) => return Ok(()),
            next => after = next,
        }
    }
}

pub(super) fn pick_prospects(r: ExportRows) -> Option<Vec<Prospect>> {
    match r {
        ExportRows::Prospects(v) => Some(v),
        _ => None,
    }
}

pub(super) fn pick_activities(r: ExportRows) -> Option<Vec<Activity>> {
    match r {
        ExportRows::Activities(v) => Some(v),
        _ => None,
    }
}

pub(super) fn pick_transitions(r: ExportRows) -> Option<Vec<Transition>> {
    match r {
        ExportRows::Transitions(v) => Some(v),
        _ => None,
    }
}

/// Writes `table` to `out` as CSV or NDJSON; returns the number of rows.
pub async fn run(
    client: &mut Client,
    table: Table,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    match table {
        Table::Prospects => write(client, table, pick_prospects, format, out).await,
        Table::Activities => write(client, table, pick_activities, format, out).await,
        Table::Transitions => write(client, table, pick_transitions, format, out).await,
    }
}

/// Writes `table` to `out` as Parquet; returns the number of rows.
pub async fn run_parquet<W: Write + Send>(
    client: &mut Client,
    table: Table,
    out: W,
) -> anyhow::Result<(u64, W)> {
    match table {
        Table::Prospects => write_parquet(client, table, pick_prospects, out).await,
        Table::Activities => write_parquet(client, table, pick_activities, out).await,
        Table::Transitions => write_parquet(client, table, pick_transitions, out).await,
    }
}

async fn write_parquet<R: ParquetRow, W: Write + Send>(
    client: &mut Client,
    table: Table,
    pick: fn(ExportRows) -> Option<Vec<R>>,
    out: W,
) -> anyhow::Result<(u64, W)> {
    let mut rows = 0u64;
    let mut w = ParquetWriter::<W, R>::new(out)?;
    pages(client, table, pick, |row| {
        rows += 1;
        w.push(row)
    })
    .await?;
    Ok((rows, w.finish()?))
}

async fn write<R: Row>(
    client: &mut Client,
    table: Table,
    pick: fn(ExportRows) -> Option<Vec<R>>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut rows = 0u64;
    anyhow::ensure!(
        matches!(format, Format::Csv | Format::Ndjson),
        "{format:?} is written by its own writer"
    );
    if format == Format::Ndjson {
        pages(client, table, pick, |row| {
            rows += 1;
            serde_json::to_writer(&mut *out, row)?;
            writeln!(out)?;
            Ok(())
        })
        .await?;
        out.flush()?;
        return Ok(rows);
    }
    // Prospects' fields become columns: a first pass finds their names.
    let mut fields = BTreeSet::new();
    if table == Table::Prospects {
        pages(client, table, pick, |row| {
            fields.extend(row.fields().into_iter().flat_map(|f| f.keys().cloned()));
            Ok(())
        })
        .await?;
    }
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = R::COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(fields.iter().map(|f| format!("field.{f}")));
    w.write_record(&header)?;
    pages(client, table, pick, |row| {
        rows += 1;
        let mut record = row.cells();
        let own = row.fields();
        record.extend(
            fields
                .iter()
                .map(|f| own.and_then(|o| o.get(f)).map(wire).unwrap_or_default()),
        );
        w.write_record(&record)?;
        Ok(())
    })
    .await?;
    w.flush()?;
    Ok(rows)
}
