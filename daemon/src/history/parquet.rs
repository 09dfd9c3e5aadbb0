//! Parquet files of prospects, activities and transitions: typed columns
//! (times as UTC timestamps in milliseconds, fields and activity data as
//! JSON text), written in row groups of [`ROW_GROUP`] rows so an export of
//! any size holds one row group in memory. Written with the `parquet`
//! crate's own column writers, without the Arrow stack (`docs/analytics.md`
//! has the schema and the SQL that reads it).

use std::io::Write;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::export::StageRow;
use stagecoach_types::model::{Activity, Millis, Prospect, Transition};

/// Rows per row group: what an export holds in memory at once.
pub const ROW_GROUP: usize = 65_536;

/// A record as a Parquet row: its schema and its cells, in schema order.
pub trait ParquetRow {
    /// The Parquet message type, in the schema language `parse_message_type`
    /// reads.
    const SCHEMA: &'static str;
    /// Appends this record's cells to `row`, one call per column in order.
    fn cells(&self, row: &mut RowCursor<'_>);
}

/// One column's buffered values for the row group being filled, with the
/// definition levels of an optional column (1 present, 0 null).
enum Column {
    Int64(Vec<i64>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
    Bytes(Vec<ByteArray>),
}

struct Buffered {
    values: Column,
    levels: Option<Vec<i16>>,
}

/// Where one row's cells go, column after column.
pub struct RowCursor<'a> {
    columns: &'a mut [Buffered],
    next: usize,
}

impl RowCursor<'_> {
    fn column(&mut self, present: bool) -> &mut Column {
        let c = &mut self.columns[self.next];
        self.next += 1;
        if let Some(levels) = &mut c.levels {
            levels.push(i16::from(present));
        }
        &mut c.values
    }

    fn push_i64(&mut self, v: Option<i64>) {
        let present = v.is_some();
        match (self.column(present), v) {
            (Column::Int64(values), Some(v)) => values.push(v),
            (Column::Int64(_), None) => {}
            _ => unreachable!("the schema and the row disagree on a column's type"),
        }
    }

    fn push_text(&mut self, v: Option<&str>) {
        let present = v.is_some();
        match (self.column(present), v) {
            (Column::Bytes(values), Some(v)) => values.push(ByteArray::from(v.as_bytes().to_vec())),
            (Column::Bytes(_), None) => {}
            _ => unreachable!("the schema and the row disagree on a column's type"),
        }
    }

    /// An integer column.
    pub fn int(&mut self, v: u64) {
        self.push_i64(Some(v as i64));
    }
    /// An optional integer column.
    pub fn opt_int(&mut self, v: Option<u64>) {
        self.push_i64(v.map(|v| v as i64));
    }
    /// An optional floating-point column.
    pub fn opt_double(&mut self, v: Option<f64>) {
        match (self.column(v.is_some()), v) {
            (Column::Double(values), Some(v)) => values.push(v),
            (Column::Double(_), None) => {}
            _ => unreachable!("the schema and the row disagree on a column's type"),
        }
    }
    /// A timestamp column (milliseconds since the epoch, UTC).
    pub fn time(&mut self, v: Millis) {
        self.push_i64(Some(v.0));
    }
    /// An optional timestamp column.
    pub fn opt_time(&mut self, v: Option<Millis>) {
        self.push_i64(v.map(|v| v.0));
    }
    /// A text column.
    pub fn text(&mut self, v: &str) {
        self.push_text(Some(v));
    }
    /// An optional text column: an empty text is null, as an empty CSV cell.
    pub fn opt_text(&mut self, v: Option<&str>) {
        self.push_text(v.filter(|s| !s.is_empty()));
    }
    /// A JSON column.
    pub fn json(&mut self, v: &impl serde::Serialize) {
        let text = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
        self.push_text(Some(&text));
    }
    /// A boolean column.
    pub fn boolean(&mut self, v: bool) {
        match self.column(true) {
            Column::Bool(values) => values.push(v),
            _ => unreachable!("the schema and the row disagree on a column's type"),
        }
    }
}

/// Writes records of one kind to a Parquet file, a row group at a time.
pub struct ParquetWriter<W: Write + Send, R: ParquetRow> {
    file: SerializedFileWriter<W>,
    columns: Vec<Buffered>,
    rows: usize,
    _row: std::marker::PhantomData<R>,
}

impl<W: Write + Send, R: ParquetRow> ParquetWriter<W, R> {
    /// A writer of `R`'s schema into `out`, Snappy-compressed.
    pub fn new(out: W) -> anyhow::Result<Self> {
        let schema = Arc::new(parse_message_type(R::SCHEMA)?);
        let columns = schema
            .get_fields()
            .iter()
            .map(|f| {
                let info = f.get_basic_info();
                let values = match f.get_physical_type() {
                    parquet::basic::Type::INT64 => Column::Int64(Vec::new()),
                    parquet::basic::Type::DOUBLE => Column::Double(Vec::new()),
                    parquet::basic::Type::BOOLEAN => Column::Bool(Vec::new()),
                    parquet::basic::Type::BYTE_ARRAY => Column::Bytes(Vec::new()),
                    other => unreachable!("no column of type {other} in the export schemas"),
                };
                let optional = info.repetition() == parquet::basic::Repetition::OPTIONAL;
                Buffered {
                    values,
                    levels: optional.then(Vec::new),
                }
            })
            .collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("stagecoach {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(ParquetWriter {
            file: SerializedFileWriter::new(out, schema, Arc::new(props))?,
            columns,
            rows: 0,
            _row: std::marker::PhantomData,
        })
    }

    /// Adds one record; a full row group is written out.
    pub fn push(&mut self, row: &R) -> anyhow::Result<()> {
        let mut cursor = RowCursor {
            columns: &mut self.columns,
            next: 0,
        };
        row.cells(&mut cursor);
        debug_assert_eq!(cursor.next, self.columns.len());
        self.rows += 1;
        if self.rows == ROW_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.file.next_row_group()?;
        let mut columns = self.columns.iter_mut();
        while let Some(mut writer) = group.next_column()? {
            let c = columns.next().expect("one buffer per column");
            let levels = c.levels.as_deref();
            match &mut c.values {
                Column::Int64(v) => {
                    writer.typed::<Int64Type>().write_batch(v, levels, None)?;
                    v.clear();
                }
                Column::Double(v) => {
                    writer.typed::<DoubleType>().write_batch(v, levels, None)?;
                    v.clear();
                }
                Column::Bool(v) => {
                    writer.typed::<BoolType>().write_batch(v, levels, None)?;
                    v.clear();
                }
                Column::Bytes(v) => {
                    writer
                        .typed::<ByteArrayType>()
                        .write_batch(v, levels, None)?;
                    v.clear();
                }
            }
            writer.close()?;
            if let Some(l) = &mut c.levels {
                l.clear();
            }
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the footer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        self.flush_group()?;
        Ok(self.file.into_inner()?)
    }
}

impl ParquetRow for Prospect {
    const SCHEMA: &'static str = "message prospect {
        REQUIRED INT64 id;
        OPTIONAL BYTE_ARRAY external_id (STRING);
        REQUIRED BYTE_ARRAY name (STRING);
        OPTIONAL BYTE_ARRAY company (STRING);
        OPTIONAL BYTE_ARRAY owner (STRING);
        REQUIRED BYTE_ARRAY stage (STRING);
        REQUIRED BYTE_ARRAY status (STRING);
        REQUIRED INT64 created_at (TIMESTAMP(MILLIS, true));
        REQUIRED INT64 stage_entered_at (TIMESTAMP(MILLIS, true));
        OPTIONAL INT64 closed_at (TIMESTAMP(MILLIS, true));
        REQUIRED BYTE_ARRAY fields (JSON);
    }";
    fn cells(&self, row: &mut RowCursor<'_>) {
        row.int(self.id);
        row.opt_text(self.external_id.as_deref());
        row.text(&self.name);
        row.opt_text(self.company.as_deref());
        row.opt_text(self.owner.as_deref());
        row.text(&self.stage);
        row.text(self.status.as_str());
        row.time(self.created_at);
        row.time(self.stage_entered_at);
        row.opt_time(self.closed_at);
        row.json(&self.fields);
    }
}

impl ParquetRow for Activity {
    const SCHEMA: &'static str = "message activity {
        REQUIRED INT64 id;
        REQUIRED INT64 prospect;
        REQUIRED BYTE_ARRAY kind (STRING);
        REQUIRED BYTE_ARRAY actor (STRING);
        REQUIRED INT64 at (TIMESTAMP(MILLIS, true));
        REQUIRED BYTE_ARRAY data (JSON);
    }";
    fn cells(&self, row: &mut RowCursor<'_>) {
        row.int(self.id);
        row.int(self.prospect);
        row.text(&self.kind);
        row.text(self.actor.as_str());
        row.time(self.at);
        row.json(&self.data);
    }
}

impl ParquetRow for Transition {
    const SCHEMA: &'static str = "message transition {
        REQUIRED INT64 id;
        REQUIRED INT64 prospect;
        OPTIONAL BYTE_ARRAY from (STRING);
        REQUIRED BYTE_ARRAY to (STRING);
        REQUIRED INT64 at (TIMESTAMP(MILLIS, true));
        REQUIRED BYTE_ARRAY kind (STRING);
        REQUIRED INT64 process_version;
        OPTIONAL BYTE_ARRAY reason (STRING);
        OPTIONAL BYTE_ARRAY by (STRING);
        OPTIONAL INT64 activity;
        REQUIRED BOOLEAN imported;
    }";
    fn cells(&self, row: &mut RowCursor<'_>) {
        row.int(self.id);
        row.int(self.prospect);
        row.opt_text(self.from.as_deref());
        row.text(&self.to);
        row.time(self.at);
        row.text(self.kind.as_str());
        row.int(self.process_version);
        row.opt_text(self.reason.as_deref());
        row.opt_text(self.by.as_deref());
        row.opt_int(self.activity);
        row.boolean(self.imported);
    }
}

impl ParquetRow for StageRow {
    const SCHEMA: &'static str = "message stage {
        REQUIRED INT64 version;
        REQUIRED INT64 in_force_from (TIMESTAMP(MILLIS, true));
        OPTIONAL INT64 in_force_until (TIMESTAMP(MILLIS, true));
        REQUIRED INT64 position;
        REQUIRED BYTE_ARRAY id (STRING);
        REQUIRED BYTE_ARRAY name (STRING);
        OPTIONAL DOUBLE probability;
        OPTIONAL INT64 stall_after_days;
        OPTIONAL BYTE_ARRAY renamed_from (STRING);
    }";
    fn cells(&self, row: &mut RowCursor<'_>) {
        row.int(self.version);
        row.time(self.in_force_from);
        row.opt_time(self.in_force_until);
        row.int(self.position);
        row.text(&self.id);
        row.text(&self.name);
        row.opt_double(self.probability);
        row.opt_int(self.stall_after_days.map(u64::from));
        row.opt_text(Some(&self.renamed_from));
    }
}
