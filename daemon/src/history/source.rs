//! Reading another system's CSV export: finding the columns (by a mapping
//! or by the names CRMs commonly use), parsing dates, stages and actors,
//! and checking every row, each rejection with its file and line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Actor, FieldValue, Millis};

/// How another system's columns and values map onto Stagecoach's: from a
/// small TOML file (`--mapping`) and/or flags. Anything not named is found
/// by the column names CRMs commonly use.
///
/// ```toml
/// date_format = "%m/%d/%Y %H:%M"     # strftime; RFC 3339 and ISO dates always work
/// [prospects]
/// id = "Record ID"
/// owner = "Deal owner"
/// [activities]
/// prospect = "Associated Deal"
/// kind = "Activity type"
/// [stages]
/// "Appointment scheduled" = "connect"
/// "Closed won" = "won"
/// [kinds]
/// "Email reply" = "replied"
/// ```
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Column of each prospect attribute (`id`, `name`, `owner`, …).
    #[serde(default)]
    pub prospects: BTreeMap<String, String>,
    /// Column of each activity attribute (`prospect`, `kind`, `at`, …).
    #[serde(default)]
    pub activities: BTreeMap<String, String>,
    /// Column of each transition attribute (`prospect`, `to`, `at`, `kind`, …).
    #[serde(default)]
    pub transitions: BTreeMap<String, String>,
    /// Source stage value → stage id, `won` or `lost`.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Source activity type → activity kind.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// A strftime format for dates the default parsers do not read.
    #[serde(default)]
    pub date_format: Option<String>,
}

/// Which file a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// The prospects (deals) file.
    Prospects,
    /// The activities file.
    Activities,
    /// The transitions file.
    Transitions,
}

impl FileKind {
    /// The name mappings and flags use (`prospects.owner`).
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Prospects => "prospects",
            FileKind::Activities => "activities",
            FileKind::Transitions => "transitions",
        }
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// Which file it is (its path is `file`).
    #[serde(skip)]
    pub kind: FileKind,
    /// The file.
    pub file: String,
    /// The line the row starts on (the header is line 1).
    pub line: u64,
    /// Why, in a sentence.
    pub reason: String,
}

/// Logical columns: (name, required, common names, normalized).
type Columns = &'static [(&'static str, bool, &'static [&'static str])];

const PROSPECT_COLUMNS: Columns = &[
    (
        "id",
        true,
        &[
            "id",
            "dealid",
            "recordid",
            "opportunityid",
            "prospectid",
            "key",
        ],
    ),
    ("external_id", false, &["externalid"]),
    (
        "name",
        true,
        &[
            "name",
            "dealname",
            "opportunityname",
            "dealtitle",
            "title",
            "prospectname",
        ],
    ),
    (
        "company",
        false,
        &[
            "company",
            "companyname",
            "account",
            "accountname",
            "organization",
            "organisation",
            "dealorganization",
            "associatedcompany",
        ],
    ),
    (
        "owner",
        false,
        &[
            "owner",
            "dealowner",
            "opportunityowner",
            "ownername",
            "rep",
            "salesrep",
            "assignedto",
        ],
    ),
    (
        "stage",
        false,
        &["stage", "dealstage", "pipelinestage", "stagename"],
    ),
    (
        "status",
        false,
        &["status", "dealstatus", "outcome", "state"],
    ),
    (
        "created",
        true,
        &[
            "createdat",
            "created",
            "createdate",
            "createddate",
            "dealcreated",
            "datecreated",
            "addtime",
            "dealaddtime",
        ],
    ),
    (
        "closed",
        false,
        &[
            "closedat",
            "closedate",
            "closeddate",
            "closetime",
            "dateclosed",
            "dealclosedon",
            "dealclosetime",
        ],
    ),
    (
        "amount",
        false,
        &["amount", "value", "dealvalue", "dealamount"],
    ),
    (
        "lost_reason",
        false,
        &[
            "lostreason",
            "closedlostreason",
            "deallostreason",
            "reasonlost",
        ],
    ),
];

const ACTIVITY_COLUMNS: Columns = &[
    (
        "prospect",
        true,
        &[
            "prospect",
            "prospectid",
            "dealid",
            "deal",
            "recordid",
            "opportunityid",
            "associateddeal",
            "associateddealid",
            "dealkey",
        ],
    ),
    (
        "kind",
        true,
        &[
            "kind",
            "type",
            "activitytype",
            "eventtype",
            "event",
            "activity",
        ],
    ),
    (
        "at",
        true,
        &[
            "at",
            "timestamp",
            "date",
            "time",
            "activitydate",
            "occurredat",
            "eventdate",
            "createdat",
        ],
    ),
    ("actor", false, &["actor", "direction", "by"]),
    ("data", false, &["data"]),
];

const TRANSITION_COLUMNS: Columns = &[
    (
        "prospect",
        true,
        &["prospect", "prospectid", "dealid", "deal", "recordid"],
    ),
    ("to", true, &["to", "tostage", "newstage", "stage"]),
    ("at", true, &["at", "timestamp", "date", "changedat"]),
    ("kind", true, &["kind", "type"]),
    ("reason", false, &["reason"]),
    ("by", false, &["by", "forcedby"]),
];

/// Columns of our own export that are derived, not data.
const DERIVED: &[&str] = &[
    "stageenteredat",
    "lastactivityat",
    "ownersince",
    "processversion",
    "from",
    "activity",
];

/// `Deal Owner` → `dealowner`: how column names are compared.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// `Deal Owner` → `deal_owner`: a field or kind name from a source name.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// A file's header resolved against the logical columns.
struct Header {
    /// Logical name → column index.
    found: HashMap<&'static str, usize>,
    /// Columns not mapped to anything: (index, header).
    rest: Vec<(usize, String)>,
}

fn resolve(
    path: &Path,
    which: &str,
    headers: &csv::StringRecord,
    columns: Columns,
    explicit: &BTreeMap<String, String>,
) -> anyhow::Result<Header> {
    for key in explicit.keys() {
        if !columns.iter().any(|(name, _, _)| name == key) {
            let known: Vec<&str> = columns.iter().map(|c| c.0).collect();
            anyhow::bail!(
                "the mapping names `{which}.{key}`, which is not a {which} column; known: {}",
                known.join(", ")
            );
        }
    }
    let names: Vec<String> = headers.iter().map(normalize).collect();
    let mut found = HashMap::new();
    for (name, required, common) in columns {
        let index = match explicit.get(*name) {
            Some(header) => Some(
                headers
                    .iter()
                    .position(|h| h.trim() == header.trim())
                    .or_else(|| names.iter().position(|n| *n == normalize(header)))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "`{}` has no column `{header}` (mapped to `{which}.{name}`); its columns are: {}",
                            path.display(),
                            headers.iter().collect::<Vec<_>>().join(", ")
                        )
                    })?,
            ),
            None => common
                .iter()
                .find_map(|c| names.iter().position(|n| n == c)),
        };
        match index {
            Some(i) => {
                found.insert(*name, i);
            }
            None if *required => anyhow::bail!(
                "`{}` has no column for `{which}.{name}` (looked for {}); its columns are: {}\nhint: name it with `--column {which}.{name}=HEADER` or in a `--mapping` file",
                path.display(),
                common.join(", "),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
            None => {}
        }
    }
    let used: Vec<usize> = found.values().copied().collect();
    let rest = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !used.contains(i) && !DERIVED.contains(&normalize(h).as_str()))
        .map(|(i, h)| (i, h.to_string()))
        .collect();
    Ok(Header { found, rest })
}

/// What a source stage value means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStage {
    /// An open stage of the process.
    Open(String),
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
    /// A value the mapping does not know.
    Unknown(String),
}

/// One prospect row.
#[derive(Debug, Clone)]
pub struct ProspectRow {
    /// Its line.
    pub line: u64,
    /// The source system's id: what activity rows refer to.
    pub key: String,
    /// The external id to store (the `external_id` column, else the id).
    pub external_id: String,
    /// Name.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Where the source system says it is.
    pub stage: Option<SourceStage>,
    /// Created.
    pub created: Millis,
    /// Closed, when the source says.
    pub closed: Option<Millis>,
    /// Why it was lost.
    pub lost_reason: Option<String>,
    /// Fields (amount and every unmapped column).
    pub fields: Map<String, Value>,
}

/// One activity row.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    /// Its line.
    pub line: u64,
    /// The prospect's source id.
    pub key: String,
    /// The activity kind (after the kind mapping).
    pub kind: String,
    /// When.
    pub at: Millis,
    /// Who, when the file says.
    pub actor: Option<Actor>,
    /// Extra data.
    pub data: Map<String, Value>,
}

/// One transition row (from Stagecoach's own export).
#[derive(Debug, Clone)]
pub struct TransitionRow {
    /// Its line.
    pub line: u64,
    /// The prospect's source id.
    pub key: String,
    /// The stage entered, or `won` / `lost`.
    pub to: String,
    /// When.
    pub at: Millis,
    /// `created`, `advanced`, `forced`, `won`, `lost`, …
    pub kind: String,
    /// The reason given.
    pub reason: Option<String>,
    /// Who forced it.
    pub by: Option<String>,
}

/// Everything read from the files, rejected rows set aside.
#[derive(Debug, Default)]
pub struct Source {
    /// Prospect rows that passed, in file order.
    pub prospects: Vec<ProspectRow>,
    /// Activity rows that passed, in file order.
    pub activities: Vec<ActivityRow>,
    /// Transition rows that passed, in file order.
    pub transitions: Vec<TransitionRow>,
    /// Rows that did not.
    pub rejected: Vec<Rejection>,
    /// Source stage values the mapping does not know → rows.
    pub unknown_stages: BTreeMap<String, usize>,
}

/// The files to read.
#[derive(Debug, Clone)]
pub struct Files {
    /// Prospects (deals).
    pub prospects: PathBuf,
    /// Activities.
    pub activities: Option<PathBuf>,
    /// Transitions.
    pub transitions: Option<PathBuf>,
}

/// Reads one cell: trimmed, empty as none.
fn cell<'r>(record: &'r csv::StringRecord, header: &Header, name: &str) -> Option<&'r str> {
    header
        .found
        .get(name)
        .and_then(|i| record.get(*i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A date as the source writes it: RFC 3339, an ISO date or date-time
/// (UTC), integer milliseconds, or `format`.
pub fn parse_date(text: &str, format: Option<&str>) -> Result<Millis, String> {
    // A date-time format also reads the same dates without their time
    // (deal dates next to activity timestamps).
    let date_only = format.and_then(|f| f.find(" %").map(|i| &f[..i]).filter(|d| !d.is_empty()));
    for format in [format, date_only].into_iter().flatten() {
        let Ok(parsed) = jiff::fmt::strtime::parse(format, text) else {
            continue;
        };
        if let Ok(ts) = parsed.to_timestamp() {
            return Ok(Millis(ts.as_millisecond()));
        }
        let civil = parsed.to_datetime().or_else(|_| {
            parsed
                .to_date()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        });
        if let Ok(dt) = civil
            && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Ok(Millis(z.timestamp().as_millisecond()));
        }
    }
    if let Ok(m) = Millis::parse(text) {
        return Ok(m);
    }
    Err(match format {
        Some(f) => format!("`{text}` is not a date in the format `{f}`"),
        None => format!(
            "`{text}` is not a date; expected RFC 3339, `2026-07-01`, `2026-07-01 09:30` or integer milliseconds\nhint: give the source's format with `--date-format` (strftime, e.g. `%m/%d/%Y`)"
        ),
    })
}

fn actor(text: &str) -> Option<Actor> {
    match normalize(text).as_str() {
        "prospect" | "customer" | "contact" | "lead" | "inbound" | "incoming" | "received" => {
            Some(Actor::Prospect)
        }
        "rep" | "user" | "owner" | "sales" | "outbound" | "outgoing" | "sent" => Some(Actor::Rep),
        _ => None,
    }
}

/// A cell as a field value: numbers and booleans as such.
fn field_value(text: &str) -> Value {
    serde_json::to_value(FieldValue::parse_cli(text)).unwrap_or(Value::Null)
}

/// The process's stages: (id, name), to read stage values.
pub type StageNames = [(String, String)];

fn source_stage(value: &str, mapping: &Mapping, stages: &StageNames) -> SourceStage {
    let target = mapping
        .stages
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(value) || normalize(k) == normalize(value))
        .map(|(_, v)| v.as_str());
    let probe = target.unwrap_or(value);
    match normalize(probe).as_str() {
        "won" => return SourceStage::Won,
        "lost" => return SourceStage::Lost,
        _ => {}
    }
    if let Some((id, _)) = stages
        .iter()
        .find(|(id, name)| id.eq_ignore_ascii_case(probe) || normalize(name) == normalize(probe))
    {
        return SourceStage::Open(id.clone());
    }
    let n = normalize(value);
    if target.is_none() && n.contains("won") {
        return SourceStage::Won;
    }
    if target.is_none() && n.contains("lost") {
        return SourceStage::Lost;
    }
    SourceStage::Unknown(value.to_string())
}

fn open(path: &Path) -> anyhow::Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file))
}

/// Iterates `path`'s rows with their line numbers; a row the CSV parser
/// cannot read is a rejection, not the end of the file.
fn rows(
    path: &Path,
    kind: FileKind,
    columns: Columns,
    explicit: &BTreeMap<String, String>,
    rejected: &mut Vec<Rejection>,
    mut each: impl FnMut(u64, &csv::StringRecord, &Header) -> Result<(), String>,
) -> anyhow::Result<()> {
    let mut reader = open(path)?;
    let headers = reader
        .headers()
        .map_err(|e| anyhow::anyhow!("cannot read the header of `{}`: {e}", path.display()))?
        .clone();
    let header = resolve(path, kind.name(), &headers, columns, explicit)?;
    let file = path.display().to_string();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                if let Err(reason) = each(line, &record, &header) {
                    rejected.push(Rejection {
                        kind,
                        file: file.clone(),
                        line,
                        reason,
                    });
                }
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                rejected.push(Rejection {
                    kind,
                    file: file.clone(),
                    line,
                    reason: format!("not valid CSV: {e}"),
                });
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn required<'r>(
    record: &'r csv::StringRecord,
    header: &Header,
    name: &str,
) -> Result<&'r str, String> {
    cell(record, header, name).ok_or_else(|| {
        let i = header.found[name];
        if record.len() <= i {
            format!(
                "the row has {} columns, too few to reach `{name}` (column {})",
                record.len(),
                i + 1
            )
        } else {
            format!("missing value for `{name}`")
        }
    })
}

/// Reads and checks `files`. A file that cannot be read at all, or lacks a
/// required column, is an error before anything happens; a bad row is a
/// [`Rejection`] with its line, and the rows that depend on it (the
/// activities of a rejected prospect) are rejected too.
///
/// `existing` says whether a prospect id not in the prospects file is
/// already known (activities may then refer to it).
pub fn read(
    files: &Files,
    mapping: &Mapping,
    stages: &StageNames,
    existing: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Source> {
    let mut src = Source::default();
    let format = mapping.date_format.as_deref();
    let date =
        |text: &str, what: &str| parse_date(text, format).map_err(|e| format!("`{what}`: {e}"));

    // Prospects.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rejected_keys: HashMap<String, u64> = HashMap::new();
    let mut prospects = Vec::new();
    let mut unknown_stages: BTreeMap<String, usize> = BTreeMap::new();
    rows(
        &files.prospects,
        FileKind::Prospects,
        PROSPECT_COLUMNS,
        &mapping.prospects,
        &mut src.rejected,
        |line, record, header| {
            let key = required(record, header, "id")?.to_string();
            if let Some(first) = seen.get(&key) {
                // The first row stands; only this one is refused.
                return Err(format!(
                    "duplicate of line {first}: id `{key}` appears twice"
                ));
            }
            let result = (|| {
                let name = required(record, header, "name")?.to_string();
                let created = date(required(record, header, "created")?, "created")?;
                let closed = cell(record, header, "closed")
                    .map(|c| date(c, "closed"))
                    .transpose()?;
                let mut fields = Map::new();
                if let Some(amount) = cell(record, header, "amount") {
                    let n: f64 = amount
                        .replace([',', '$', '€', '£', ' '], "")
                        .parse()
                        .map_err(|_| format!("`amount`: `{amount}` is not a number"))?;
                    fields.insert("amount".into(), serde_json::json!(n));
                }
                for (i, h) in &header.rest {
                    let Some(v) = record.get(*i).map(str::trim).filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    let name = h
                        .strip_prefix("field.")
                        .map_or_else(|| snake(h), str::to_string);
                    if !name.is_empty() {
                        fields.insert(name, field_value(v));
                    }
                }
                let status = cell(record, header, "status").and_then(|s| match normalize(s) {
                    n if n.contains("won") => Some(SourceStage::Won),
                    n if n.contains("lost") => Some(SourceStage::Lost),
                    _ => None,
                });
                let stage = status.or_else(|| {
                    cell(record, header, "stage").map(|s| source_stage(s, mapping, stages))
                });
                if let Some(SourceStage::Unknown(v)) = &stage {
                    *unknown_stages.entry(v.clone()).or_default() += 1;
                }
                Ok(ProspectRow {
                    line,
                    external_id: cell(record, header, "external_id")
                        .map_or_else(|| key.clone(), str::to_string),
                    key: key.clone(),
                    name,
                    company: cell(record, header, "company").map(str::to_string),
                    owner: cell(record, header, "owner").map(str::to_string),
                    stage,
                    created,
                    closed,
                    lost_reason: cell(record, header, "lost_reason").map(str::to_string),
                    fields,
                })
            })();
            match result {
                Ok(row) => {
                    seen.insert(key, line);
                    prospects.push(row);
                    Ok(())
                }
                Err(e) => {
                    rejected_keys.entry(key).or_insert(line);
                    Err(e)
                }
            }
        },
    )?;
    src.prospects = prospects;
    src.unknown_stages = unknown_stages;

    let known = |key: &str| -> Result<(), String> {
        if let Some(line) = rejected_keys.get(key) {
            Err(format!(
                "its prospect `{key}` was rejected (line {line} of the prospects file)"
            ))
        } else if seen.contains_key(key) || existing(key) {
            Ok(())
        } else {
            Err(unknown_prospect(key))
        }
    };

    // Activities.
    if let Some(path) = &files.activities {
        let mut seen_activity: HashMap<(String, String, i64), u64> = HashMap::new();
        let mut activities = Vec::new();
        rows(
            path,
            FileKind::Activities,
            ACTIVITY_COLUMNS,
            &mapping.activities,
            &mut src.rejected,
            |line, record, header| {
                let key = required(record, header, "prospect")?.to_string();
                known(&key)?;
                let source_kind = required(record, header, "kind")?;
                let kind = mapping
                    .kinds
                    .iter()
                    .find(|(k, _)| {
                        k.trim() == source_kind || normalize(k) == normalize(source_kind)
                    })
                    .map_or_else(|| snake(source_kind), |(_, v)| v.clone());
                let at = date(required(record, header, "at")?, "at")?;
                let actor = match cell(record, header, "actor") {
                    Some(a) => Some(actor(a).ok_or_else(|| {
                        format!("`actor`: `{a}` is neither `prospect` nor `rep`")
                    })?),
                    None => None,
                };
                let mut data = match cell(record, header, "data") {
                    Some(text) => match serde_json::from_str::<Value>(text) {
                        Ok(Value::Object(m)) => m,
                        _ => return Err(format!("`data`: `{text}` is not a JSON object")),
                    },
                    None => Map::new(),
                };
                for (i, h) in &header.rest {
                    if normalize(h) == "id" {
                        continue;
                    }
                    if let Some(v) = record.get(*i).map(str::trim).filter(|v| !v.is_empty()) {
                        data.insert(snake(h), field_value(v));
                    }
                }
                if let Some(first) = seen_activity.insert((key.clone(), kind.clone(), at.0), line) {
                    seen_activity.insert((key.clone(), kind.clone(), at.0), first);
                    return Err(format!(
                        "duplicate of line {first}: `{kind}` for `{key}` at {at}"
                    ));
                }
                activities.push(ActivityRow {
                    line,
                    key,
                    kind,
                    at,
                    actor,
                    data,
                });
                Ok(())
            },
        )?;
        src.activities = activities;
    }

    // Transitions.
    if let Some(path) = &files.transitions {
        let mut transitions = Vec::new();
        rows(
            path,
            FileKind::Transitions,
            TRANSITION_COLUMNS,
            &mapping.transitions,
            &mut src.rejected,
            |line, record, header| {
                let key = required(record, header, "prospect")?.to_string();
                known(&key)?;
                let kind = required(record, header, "kind")?.to_lowercase();
                const KINDS: [&str; 7] = [
                    "created",
                    "advanced",
                    "skipped",
                    "regressed",
                    "forced",
                    "won",
                    "lost",
                ];
                if !KINDS.contains(&kind.as_str()) {
                    return Err(format!(
                        "`kind`: `{kind}` is not one of {}",
                        KINDS.join(", ")
                    ));
                }
                transitions.push(TransitionRow {
                    line,
                    key,
                    to: required(record, header, "to")?.to_string(),
                    at: date(required(record, header, "at")?, "at")?,
                    kind,
                    reason: cell(record, header, "reason").map(str::to_string),
                    by: cell(record, header, "by").map(str::to_string),
                });
                Ok(())
            },
        )?;
        src.transitions = transitions;
    }
    src.rejected
        .sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
    Ok(src)
}

/// Why a row naming prospect `key` is refused when no row or record has it.
pub fn unknown_prospect(key: &str) -> String {
    format!("unknown prospect `{key}`: not in the prospects file nor in the database")
}

/// Reads a `--mapping` file.
pub fn read_mapping(path: &Path) -> anyhow::Result<Mapping> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))
}

/// Adds `--column which.name=HEADER`, `--stage SRC=ID` and `--kind SRC=KIND`
/// flags to `mapping`.
pub fn apply_flags(
    mapping: &mut Mapping,
    columns: &[String],
    stages: &[String],
    kinds: &[String],
    date_format: Option<&str>,
) -> anyhow::Result<()> {
    let split = |pair: &str, flag: &str| -> anyhow::Result<(String, String)> {
        pair.split_once('=')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .ok_or_else(|| anyhow::anyhow!("`--{flag} {pair}` is not `KEY=VALUE`"))
    };
    for c in columns {
        let (k, v) = split(c, "column")?;
        let (table, name) = k.split_once('.').ok_or_else(|| {
            anyhow::anyhow!("`--column {c}`: name the file, e.g. `prospects.owner=Deal Owner`")
        })?;
        let target = match table {
            "prospects" => &mut mapping.prospects,
            "activities" => &mut mapping.activities,
            "transitions" => &mut mapping.transitions,
            other => anyhow::bail!(
                "`--column {c}`: `{other}` is not `prospects`, `activities` or `transitions`"
            ),
        };
        target.insert(name.to_string(), v);
    }
    for s in stages {
        let (k, v) = split(s, "stage")?;
        mapping.stages.insert(k, v);
    }
    for s in kinds {
        let (k, v) = split(s, "kind")?;
        mapping.kinds.insert(k, v);
    }
    if let Some(f) = date_format {
        mapping.date_format = Some(f.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_usual_shapes() {
        let want = Millis::parse("2026-07-01T09:30:00Z").unwrap();
        assert_eq!(parse_date("2026-07-01T09:30:00Z", None), Ok(want));
        assert_eq!(parse_date("2026-07-01 09:30", None), Ok(want));
        assert_eq!(
            parse_date("07/01/2026 09:30", Some("%m/%d/%Y %H:%M")),
            Ok(want)
        );
        assert_eq!(
            parse_date("07/01/2026", Some("%m/%d/%Y")),
            Ok(Millis::parse("2026-07-01").unwrap())
        );
        assert!(parse_date("yesterday", None).is_err());
    }

    #[test]
    fn stage_values_map_by_name_id_or_mapping() {
        let stages = vec![
            ("connect".to_string(), "Connect".to_string()),
            ("present".to_string(), "Present".to_string()),
        ];
        let mut m = Mapping::default();
        m.stages.insert("Demo given".into(), "present".into());
        assert_eq!(
            source_stage("Connect", &m, &stages),
            SourceStage::Open("connect".into())
        );
        assert_eq!(
            source_stage("demo given", &m, &stages),
            SourceStage::Open("present".into())
        );
        assert_eq!(source_stage("Closed Won", &m, &stages), SourceStage::Won);
        assert_eq!(source_stage("closedlost", &m, &stages), SourceStage::Lost);
        assert_eq!(
            source_stage("Appointment", &m, &stages),
            SourceStage::Unknown("Appointment".into())
        );
        assert_eq!(snake("Deal Owner "), "deal_owner");
        assert_eq!(snake("Email reply!"), "email_reply");
    }
}
