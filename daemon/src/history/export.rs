//! `stagecoach export`: prospects, activities or transitions as CSV (for
//! spreadsheets) or NDJSON (for BI tools), paged out of the daemon.
//!
//! The CSV columns are the ones `stagecoach import` reads back, so an
//! export imported into an empty daemon replays the same history.

use std::collections::BTreeSet;
use std::io::Write;

use clap::ValueEnum;
use serde_json::{Value, json};

use stagecoach_client::Client;

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
    fn name(self) -> &'static str {
        match self {
            Table::Prospects => "prospects",
            Table::Activities => "activities",
            Table::Transitions => "transitions",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Prospects => &[
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
            ],
            Table::Activities => &["id", "prospect", "kind", "actor", "at", "data"],
            Table::Transitions => &[
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
            ],
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
}

const PAGE: usize = 5000;

/// Calls `each` with every row of `table`, page by page.
async fn pages(
    client: &mut Client,
    table: Table,
    mut each: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = Value::Null;
    loop {
        let page = client
            .call(
                "export.page",
                json!({ "what": table.name(), "after": after, "limit": PAGE }),
            )
            .await?;
        for row in page["rows"].as_array().into_iter().flatten() {
            each(row)?;
        }
        after = page["next"].clone();
        if after.is_null() {
            return Ok(());
        }
    }
}

/// A cell: strings as they are, objects as JSON (empty when empty).
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    }
}

/// Writes `table` to `out`; returns the number of rows.
pub async fn run(
    client: &mut Client,
    table: Table,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut rows = 0u64;
    if format == Format::Ndjson {
        pages(client, table, |row| {
            rows += 1;
            writeln!(out, "{row}")?;
            Ok(())
        })
        .await?;
        out.flush()?;
        return Ok(rows);
    }
    // Prospects' fields become columns: a first pass finds their names.
    let mut fields = BTreeSet::new();
    if table == Table::Prospects {
        pages(client, table, |row| {
            if let Some(f) = row["fields"].as_object() {
                fields.extend(f.keys().cloned());
            }
            Ok(())
        })
        .await?;
    }
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = table.columns().iter().map(|c| c.to_string()).collect();
    header.extend(fields.iter().map(|f| format!("field.{f}")));
    w.write_record(&header)?;
    pages(client, table, |row| {
        rows += 1;
        let mut record: Vec<String> = table
            .columns()
            .iter()
            .map(|c| match *c {
                // Absent means false: every move the daemon made itself.
                "imported" => row[*c].as_bool().unwrap_or(false).to_string(),
                _ => cell(&row[*c]),
            })
            .collect();
        record.extend(fields.iter().map(|f| cell(&row["fields"][f])));
        w.write_record(&record)?;
        Ok(())
    })
    .await?;
    w.flush()?;
    Ok(rows)
}
