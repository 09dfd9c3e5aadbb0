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
use stagecoach_types::model::{Activity, Fields, Millis, Prospect, Transition};

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
    /// The stages of every process version: order, name, probability,
    /// stall limit, former ids (to sort and weigh the other tables by).
    Stages,
}

impl Table {
    fn what(self) -> ExportWhat {
        match self {
            Table::Prospects => ExportWhat::Prospects,
            Table::Activities => ExportWhat::Activities,
            Table::Transitions => ExportWhat::Transitions,
            Table::Stages => unreachable!("stages come from the process versions, not export.page"),
        }
    }
}

/// One stage of one process version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageRow {
    /// The process version.
    pub version: u64,
    /// When that version came into force.
    pub in_force_from: Millis,
    /// When the next one did (none: in force now).
    pub in_force_until: Option<Millis>,
    /// 1 for the first stage.
    pub position: u64,
    /// The stage id the other tables carry.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its win probability (weighted pipeline), if set.
    pub probability: Option<f64>,
    /// Days without activity before a prospect counts as stalled.
    pub stall_after_days: Option<u32>,
    /// Ids it had before a rename, comma-separated.
    pub renamed_from: String,
}

/// The stages of every stored process version, read from their texts.
/// A version whose text no longer parses (the rules grew stricter since)
/// is left out with a warning.
async fn stage_rows(client: &mut Client) -> anyhow::Result<Vec<StageRow>> {
    let versions = client
        .request::<methods::ProcessVersions>(&params::NoParams::default())
        .await?;
    let mut rows = Vec::new();
    for w in versions.versions {
        let text = client
            .request::<methods::ProcessGet>(&params::ProcessGet {
                version: Some(w.version),
            })
            .await?;
        let process = match stagecoach_core::process::parse(&text.text, &text.path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "warning: process version {} no longer parses, its stages are left out: {e}",
                    w.version
                );
                continue;
            }
        };
        for (i, st) in process.stages.iter().enumerate() {
            rows.push(StageRow {
                version: w.version,
                in_force_from: w.in_force_from,
                in_force_until: w.in_force_until,
                position: i as u64 + 1,
                id: st.id.clone(),
                name: st.name.clone(),
                probability: st.probability,
                stall_after_days: st.stall_after_days,
                renamed_from: st.renamed_from.join(","),
            });
        }
    }
    Ok(rows)
}

impl Row for StageRow {
    const COLUMNS: &'static [&'static str] = &[
        "version",
        "in_force_from",
        "in_force_until",
        "position",
        "id",
        "name",
        "probability",
        "stall_after_days",
        "renamed_from",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.version.to_string(),
            self.in_force_from.to_string(),
            opt(&self.in_force_until),
            self.position.to_string(),
            self.id.clone(),
            self.name.clone(),
            opt(&self.probability),
            opt(&self.stall_after_days),
            self.renamed_from.clone(),
        ]
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

/// Where an export's rows come from: the daemon's pages, or rows at hand.
enum Source<R> {
    Pages(fn(ExportRows) -> Option<Vec<R>>),
    Ready(Vec<R>),
}

impl<R> Source<R> {
    /// Calls `each` with every row.
    async fn each(
        &self,
        client: &mut Client,
        table: Table,
        each: impl FnMut(&R) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            Source::Pages(pick) => pages(client, table, *pick, each).await,
            Source::Ready(rows) => rows.iter().try_for_each(each),
        }
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
        Table::Prospects => write(client, table, Source::Pages(pick_prospects), format, out).await,
        Table::Activities => {
            write(client, table, Source::Pages(pick_activities), format, out).await
        }
        Table::Transitions => {
            write(client, table, Source::Pages(pick_transitions), format, out).await
        }
        Table::Stages => {
            let rows = Source::Ready(stage_rows(client).await?);
            write(client, table, rows, format, out).await
        }
    }
}

/// Writes `table` to `out` as Parquet; returns the number of rows.
pub async fn run_parquet<W: Write + Send>(
    client: &mut Client,
    table: Table,
    out: W,
) -> anyhow::Result<(u64, W)> {
    match table {
        Table::Prospects => write_parquet(client, table, Source::Pages(pick_prospects), out).await,
        Table::Activities => {
            write_parquet(client, table, Source::Pages(pick_activities), out).await
        }
        Table::Transitions => {
            write_parquet(client, table, Source::Pages(pick_transitions), out).await
        }
        Table::Stages => {
            let rows = Source::Ready(stage_rows(client).await?);
            write_parquet(client, table, rows, out).await
        }
    }
}

async fn write_parquet<R: ParquetRow, W: Write + Send>(
    client: &mut Client,
    table: Table,
    source: Source<R>,
    out: W,
) -> anyhow::Result<(u64, W)> {
    let mut rows = 0u64;
    let mut w = ParquetWriter::<W, R>::new(out)?;
    source
        .each(client, table, |row| {
            rows += 1;
            w.push(row)
        })
        .await?;
    Ok((rows, w.finish()?))
}

async fn write<R: Row>(
    client: &mut Client,
    table: Table,
    source: Source<R>,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut rows = 0u64;
    anyhow::ensure!(
        matches!(format, Format::Csv | Format::Ndjson),
        "{format:?} is written by its own writer"
    );
    if format == Format::Ndjson {
        source
            .each(client, table, |row| {
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
        source
            .each(client, table, |row| {
                fields.extend(row.fields().into_iter().flat_map(|f| f.keys().cloned()));
                Ok(())
            })
            .await?;
    }
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = R::COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(fields.iter().map(|f| format!("field.{f}")));
    w.write_record(&header)?;
    source
        .each(client, table, |row| {
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
