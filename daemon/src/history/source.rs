//! Reading another system's CSV export: finding the columns (by a mapping
//! or by the names CRMs commonly use), parsing dates, stages and actors,
//! and checking every row, each rejection with its file and line.

use std::collections::BTreeMap;

// Hashed with FxHash: a 1M-deal import hashes tens of millions of ids,
// and SipHash was a tenth of its reading time.
use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use stagecoach_types::model::{Actor, FieldValue, Millis};

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
    /// Activity kinds (after the kind mapping) that are the prospect's
    /// actions when a row does not say whose action it is.
    #[serde(default)]
    pub prospect_kinds: Vec<String>,
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

/// A row that was not imported, and why: the file, its physical line, the
/// column and value at fault, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// Which file it is (its path is `file`).
    #[serde(skip)]
    pub kind: FileKind,
    /// The file.
    pub file: String,
    /// The physical line the row starts on (the header is line 1).
    pub line: u64,
    /// The column at fault, by its header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The value at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        match (&self.column, &self.value) {
            (Some(c), Some(v)) => write!(f, "column `{c}`, value `{v}`: ")?,
            (Some(c), None) => write!(f, "column `{c}`: ")?,
            _ => {}
        }
        write!(f, "{}", self.reason)?;
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

/// What is wrong with one row, before the file and line are known.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The column's header.
    pub column: Option<String>,
    /// The value.
    pub value: Option<String>,
    /// Why.
    pub reason: String,
    /// What to do.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem with no particular cell.
    pub fn row(reason: impl Into<String>) -> Problem {
        Problem {
            column: None,
            value: None,
            reason: reason.into(),
            hint: None,
        }
    }

    /// A problem with a cell.
    pub fn cell(column: &str, value: &str, reason: impl Into<String>) -> Problem {
        Problem {
            column: Some(column.to_string()),
            value: Some(value.to_string()),
            reason: reason.into(),
            hint: None,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// Placed in `file` at `line`.
    pub fn at(self, kind: FileKind, file: &str, line: u64) -> Rejection {
        Rejection {
            kind,
            file: file.to_string(),
            line,
            column: self.column,
            value: self.value,
            reason: self.reason,
            hint: self.hint,
        }
    }
}

/// Logical columns: (name, required, the names vendors give it, best first).
///
/// Names are compared normalized (`Deal Owner` → `dealowner`), and a
/// Pipedrive header is also compared without its `Deal - ` / `Activity - `
/// prefix. Sources: HubSpot's deal and activity exports, Salesforce's
/// report and Data Loader exports, Pipedrive's deal and activity exports
/// (docs/crm-layouts.md).
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
            "accountname",
            "account",
            "organization",
            "organisation",
            "dealorganization",
            "organizationname",
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
    ("pipeline", false, &["pipeline", "dealpipeline"]),
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
    ("won", false, &["won", "iswon", "isclosedwon"]),
    ("is_closed", false, &["closed", "isclosed", "isdealclosed"]),
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
    ("won_at", false, &["wontime", "datewon", "wonat"]),
    ("lost_at", false, &["losttime", "datelost", "lostat"]),
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
            "lossreason",
        ],
    ),
];

const ACTIVITY_COLUMNS: Columns = &[
    (
        "prospect",
        true,
        &[
            // Ids first: an id column beats a name column for the same deal.
            "associateddealids",
            "associateddealid",
            "dealids",
            "dealid",
            "prospectid",
            "opportunityid",
            "whatid",
            "prospect",
            "dealkey",
        ],
    ),
    // The activity's own id (HubSpot's `Record ID` in an activities export).
    (
        "source_id",
        false,
        &["activityid", "recordid", "id", "engagementid"],
    ),
    (
        "prospect_name",
        false,
        &[
            "associateddeal",
            "associateddeals",
            "deal",
            "dealtitle",
            "dealname",
            "opportunity",
            "opportunityname",
            "relatedto",
        ],
    ),
    (
        "kind",
        true,
        &[
            "kind",
            "activitytype",
            "type",
            "tasksubtype",
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
            "activitydate",
            "markedasdonetime",
            "completeddatetime",
            "date",
            "time",
            "occurredat",
            "eventdate",
            "duedate",
            "meetingstarttime",
            "start",
            "startdatetime",
            "createdat",
            "createddate",
            "createdate",
        ],
    ),
    ("actor", false, &["actor", "by"]),
    (
        "direction",
        false,
        &["direction", "emaildirection", "calldirection", "calltype"],
    ),
    ("done", false, &["done", "status"]),
    ("data", false, &["data"]),
];

const TRANSITION_COLUMNS: Columns = &[
    (
        "prospect",
        true,
        &[
            "prospect",
            "prospectid",
            "opportunityid",
            "dealid",
            "deal",
            "recordid",
        ],
    ),
    (
        "to",
        true,
        &[
            "to",
            "tostage",
            "newstage",
            "stage",
            "stagename",
            "newvalue",
        ],
    ),
    (
        "at",
        true,
        &[
            "at",
            "timestamp",
            "changedat",
            "lastmodified",
            "lastmodifieddate",
            "editdate",
            "createddate",
            "date",
        ],
    ),
    ("kind", false, &["kind"]),
    ("reason", false, &["reason"]),
    ("by", false, &["by", "forcedby"]),
    ("imported", false, &["imported"]),
];

/// The names vendors give logical column `name`.
fn names_of(columns: Columns, name: &str) -> &'static [&'static str] {
    columns.iter().find(|c| c.0 == name).map_or(&[], |c| c.2)
}

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

/// The names a header answers to: itself, and without a Pipedrive-style
/// `Deal - ` prefix.
fn header_names(header: &str) -> [String; 2] {
    let bare = header.split_once(" - ").map_or("", |(_, rest)| rest);
    [normalize(header), normalize(bare)]
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
    /// Logical name → every column that answers to it, best first: a row
    /// with the first empty takes the next (Salesforce's events have no
    /// `Completed Date/Time`; HubSpot has a direction column per type).
    alternates: HashMap<&'static str, Vec<usize>>,
    /// The headers, as written.
    names: Vec<String>,
    /// Columns not mapped to anything: (index, header).
    rest: Vec<(usize, String)>,
}

impl Header {
    /// The header of logical column `name`.
    fn title<'a>(&'a self, name: &'a str) -> &'a str {
        self.found
            .get(name)
            .map_or(name, |&i| self.names[i].as_str())
    }
}

fn resolve(
    path: &Path,
    which: &str,
    headers: &csv::StringRecord,
    columns: Columns,
    explicit: &BTreeMap<String, String>,
    consumed: &dyn Fn(&str) -> bool,
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
    let names: Vec<[String; 2]> = headers.iter().map(header_names).collect();
    let mut found: HashMap<&'static str, usize> = HashMap::default();
    let mut missing = Vec::new();
    for (name, required, common) in columns {
        let taken = |i: &usize| found.values().any(|f| f == i);
        let index = match explicit.get(*name) {
            Some(header) => Some(
                headers
                    .iter()
                    .position(|h| h.trim() == header.trim())
                    .or_else(|| names.iter().position(|n| n[0] == normalize(header)))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "`{}` has no column `{header}` (mapped to `{which}.{name}`); its columns are: {}",
                            path.display(),
                            headers.iter().collect::<Vec<_>>().join(", ")
                        )
                    })?,
            ),
            // The full name first, then without a prefix; a column is
            // used once.
            None => (0..2).find_map(|form| {
                common.iter().find_map(|c| {
                    names
                        .iter()
                        .enumerate()
                        .position(|(i, n)| n[form] == *c && !taken(&i))
                })
            }),
        };
        match index {
            Some(i) => {
                found.insert(*name, i);
            }
            None if *required => missing.push((
                *name,
                format!("`{which}.{name}` (looked for {})", common.join(", ")),
            )),
            None => {}
        }
    }
    let mut alternates: HashMap<&'static str, Vec<usize>> = HashMap::default();
    for (name, _, common) in columns {
        if explicit.contains_key(*name) {
            continue;
        }
        let Some(&first) = found.get(*name) else {
            continue;
        };
        // Columns another name took are not alternates of this one.
        let free = |i: usize| i == first || !found.values().any(|&f| f == i);
        let mut all: Vec<usize> = vec![first];
        for form in 0..2 {
            for c in *common {
                for (i, n) in names.iter().enumerate() {
                    if n[form] == *c && !all.contains(&i) && free(i) {
                        all.push(i);
                    }
                }
            }
        }
        if *name == "direction" {
            // Every per-type direction column (`Email direction`, `Call direction`).
            for (i, n) in names.iter().enumerate() {
                if n[0].ends_with("direction") && !all.contains(&i) && free(i) {
                    all.push(i);
                }
            }
        }
        if all.len() > 1 {
            alternates.insert(*name, all);
        }
    }
    if !missing.is_empty() {
        let what: Vec<&str> = missing.iter().map(|m| m.1.as_str()).collect();
        let flags: Vec<String> = missing
            .iter()
            .map(|m| format!("`--column {which}.{}=HEADER`", m.0))
            .collect();
        anyhow::bail!(
            "`{}` has no column for {}; its columns are: {}\nhint: name it with {} or in a `--mapping` file",
            path.display(),
            what.join(", "),
            headers.iter().collect::<Vec<_>>().join(", "),
            flags.join(", ")
        );
    }
    let rest = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| {
            !found.values().any(|f| f == i)
                && !alternates.values().flatten().any(|f| f == i)
                && !DERIVED.contains(&normalize(h).as_str())
                && !consumed(h)
        })
        .map(|(i, h)| (i, h.to_string()))
        .collect();
    Ok(Header {
        found,
        alternates,
        names: headers.iter().map(str::to_string).collect(),
        rest,
    })
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

/// A closed deal's outcome, as the source has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Won (else lost).
    pub won: bool,
    /// When it closed, if the source says (an import needs it; discovery
    /// falls back to the last activity).
    pub at: Option<Millis>,
    /// The source gives only the day (`2/24/2026`): that day's activities
    /// happened before the close.
    pub whole_day: bool,
}

/// One dated stage entry from a deal's stage-history columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The stage id.
    pub stage: String,
    /// When the deal entered it.
    pub at: Millis,
}

/// One prospect row.
#[derive(Debug, Clone)]
pub struct ProspectRow {
    /// Its physical line.
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
    /// Where the source says it is (an open stage, won or lost).
    pub stage: Option<SourceStage>,
    /// Created.
    pub created: Millis,
    /// Its outcome, for a closed deal.
    pub outcome: Option<Outcome>,
    /// Why it was lost.
    pub lost_reason: Option<String>,
    /// Dated stage entries (HubSpot's `Date entered "…"` columns), oldest
    /// first; open stages only (the outcome carries the close).
    pub history: Vec<Entry>,
    /// Fields (amount and every unmapped column).
    pub fields: Map<String, Value>,
}

/// One activity row.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    /// Its physical line.
    pub line: u64,
    /// The prospects' source ids (one row may name several deals).
    pub keys: Vec<String>,
    /// The activity kind (after the kind mapping).
    pub kind: String,
    /// When.
    pub at: Millis,
    /// Who, when the file says (an actor or direction column, or a type
    /// such as `Incoming Email`).
    pub actor: Option<Actor>,
    /// Extra data.
    pub data: Map<String, Value>,
}

/// One transition row: Stagecoach's own export, or a stage-history report
/// (Salesforce's Opportunity History) with no `kind`.
#[derive(Debug, Clone)]
pub struct TransitionRow {
    /// Its physical line.
    pub line: u64,
    /// The prospect's source id.
    pub key: String,
    /// The stage entered, or `won` / `lost`, resolved.
    pub to: SourceStage,
    /// When.
    pub at: Millis,
    /// `created`, `advanced`, `forced`, `won`, `lost`, … when the file says.
    pub kind: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// Who forced it.
    pub by: Option<String>,
    /// Whether the move was itself imported (Stagecoach's export says).
    pub imported: Option<bool>,
}

/// A date column read but not used as history, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnusedColumn {
    /// The file.
    pub file: String,
    /// The header.
    pub column: String,
    /// What was done with it instead.
    pub why: String,
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
    /// Activities were matched to deals by name (no id column).
    pub matched_by_name: Option<String>,
    /// Activity rows associated with no deal (not imported).
    pub without_deal: u64,
    /// Activity rows not done yet (planned, not history; not imported).
    pub not_done: u64,
    /// Activity kinds whose rows say nothing about whose action they were
    /// → rows (imported as the rep's unless the process declares them).
    pub without_direction: BTreeMap<String, u64>,
    /// Date columns not read as history.
    pub unused_dates: Vec<UnusedColumn>,
    /// The prospects file's close-date column, by its header.
    pub close_column: String,
    /// The activities file's deal column, by its header.
    pub activity_deal_column: String,
    /// The transitions file's deal column, by its header.
    pub transition_deal_column: String,
    /// Deals whose stage-history columns were read.
    pub with_history: u64,
}

/// The files to read.
#[derive(Debug, Clone)]
pub struct Files {
    /// Prospects (deals).
    pub prospects: PathBuf,
    /// Activities.
    pub activities: Option<PathBuf>,
    /// Transitions or stage history.
    pub transitions: Option<PathBuf>,
}

/// Reads one cell: trimmed, empty as none; an empty cell falls back to
/// the next column answering to the same name.
fn cell<'r>(record: &'r csv::StringRecord, header: &Header, name: &str) -> Option<&'r str> {
    let get = |i: &usize| record.get(*i).map(str::trim).filter(|s| !s.is_empty());
    match header.alternates.get(name) {
        Some(list) => list.iter().find_map(get),
        None => header.found.get(name).and_then(get),
    }
}

/// Formats tried, in order, when the mapping gives none: what the three
/// CRMs' exports write (HubSpot and Pipedrive `2026-03-05 14:22[:10]`,
/// Salesforce reports `3/5/2026 2:15 PM`), all read as UTC.
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
];

fn parse_with(format: &str, text: &str) -> Option<Millis> {
    let parsed = jiff::fmt::strtime::parse(format, text).ok()?;
    if let Ok(ts) = parsed.to_timestamp() {
        return Some(Millis(ts.as_millisecond()));
    }
    let civil = parsed.to_datetime().or_else(|_| {
        parsed
            .to_date()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    let z = civil.ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(Millis(z.timestamp().as_millisecond()))
}

/// A date as the source writes it: RFC 3339, an ISO date or date-time
/// (UTC), integer milliseconds, the CRMs' usual layouts, or `format`.
pub fn parse_date(text: &str, format: Option<&str>) -> Result<Millis, String> {
    // A date-time format also reads the same dates without their time
    // (deal dates next to activity timestamps).
    let date_only = format.and_then(|f| f.find(" %").map(|i| &f[..i]).filter(|d| !d.is_empty()));
    let found = [format, date_only]
        .into_iter()
        .flatten()
        .find_map(|f| parse_with(f, text))
        .or_else(|| match Millis::parse_unchecked(text) {
            Ok(m) => Some(m),
            // Salesforce writes `PM` as well as `pm`.
            Err(_) if format.is_none() => {
                let upper = text.to_ascii_uppercase();
                DATE_FORMATS.iter().find_map(|f| parse_with(f, &upper))
            }
            Err(_) => None,
        });
    if let Some(m) = found {
        return if m.in_range() {
            Ok(m)
        } else {
            Err("out of range: dates lie from 1970-01-01 to 2200-01-01".into())
        };
    }
    Err(match format {
        Some(f) => format!("not a date in the format `{f}`"),
        None => "not a date; read are RFC 3339, `2026-07-01`, `2026-07-01 09:30[:00]`, `7/1/2026 [9:30 AM]` and integer milliseconds".into(),
    })
}

/// What `work` makes of `value`, worked out once per distinct value.
fn memo<T: Clone>(seen: &mut HashMap<String, T>, value: &str, work: impl FnOnce(&str) -> T) -> T {
    if let Some(known) = seen.get(value) {
        return known.clone();
    }
    let made = work(value);
    seen.insert(value.to_string(), made.clone());
    made
}

/// The hint for a date that did not parse.
const DATE_HINT: &str =
    "give the source's format with `--date-format` (strftime, e.g. `%d/%m/%Y %H:%M`)";

fn actor(text: &str) -> Option<Actor> {
    match normalize(text).as_str() {
        "prospect" | "customer" | "contact" | "lead" | "inbound" | "incoming" | "received"
        | "incomingemail" | "inboundcall" | "in" => Some(Actor::Prospect),
        "rep" | "user" | "owner" | "sales" | "outbound" | "outgoing" | "sent" | "email"
        | "outgoingemail" | "outboundcall" | "forwardedemail" | "out" => Some(Actor::Rep),
        _ => None,
    }
}

/// Whose action an activity type says it is, by its name alone
/// (HubSpot's `Incoming Email`).
fn actor_of_type(kind: &str) -> Option<Actor> {
    let n = normalize(kind);
    if n.starts_with("incoming") || n.starts_with("inbound") || n.contains("reply") {
        Some(Actor::Prospect)
    } else if n.starts_with("outgoing") || n.starts_with("outbound") {
        Some(Actor::Rep)
    } else {
        None
    }
}

/// A cell as a yes/no: `true`, `1`, `yes`, `done`, `x`.
fn truthy(text: &str) -> Option<bool> {
    match normalize(text).as_str() {
        "true" | "1" | "yes" | "y" | "done" | "x" | "completed" | "complete" => Some(true),
        "false"
        | "0"
        | "no"
        | "n"
        | "notdone"
        | "todo"
        | "open"
        | "notstarted"
        | "inprogress"
        | "waitingonsomeoneelse"
        | "deferred"
        | "scheduled"
        | "planned"
        | "" => Some(false),
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

/// The problem with an unknown stage value in `column`.
fn unknown_stage(column: &str, value: &str, stages: &StageNames) -> Problem {
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    Problem::cell(column, value, "no stage of the process has this name").hint(format!(
        "map it with `--stage \"{value}=STAGE\"` or in the mapping file's `[stages]`; the stages are {}, `won` and `lost`",
        ids.join(", ")
    ))
}

/// A HubSpot stage-history column: `Date entered "Connect (Sales
/// Pipeline)"` → (`Connect`, `Sales Pipeline`).
fn history_column(header: &str) -> Option<(bool, String, Option<String>)> {
    let lower = header.trim().to_ascii_lowercase();
    let (entered, rest) = if let Some(rest) = lower.strip_prefix("date entered") {
        (true, &header.trim()[header.trim().len() - rest.len()..])
    } else if let Some(rest) = lower.strip_prefix("date exited") {
        (false, &header.trim()[header.trim().len() - rest.len()..])
    } else {
        return None;
    };
    let label = rest
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '“' || c == '”');
    let label = label.trim();
    // `Date entered current stage` is a property of its own, not a stage.
    if label.is_empty() || normalize(label) == "currentstage" {
        return None;
    }
    Some(match label.rsplit_once(" (") {
        Some((stage, pipeline)) if pipeline.ends_with(')') => (
            entered,
            stage.trim().to_string(),
            Some(pipeline.trim_end_matches(')').trim().to_string()),
        ),
        _ => (entered, label.to_string(), None),
    })
}

/// HubSpot's derived stage-time columns (not data).
fn derived_history_column(header: &str) -> bool {
    let n = normalize(header);
    n.starts_with("cumulativetime")
        || n.starts_with("timein")
        || n.starts_with("latesttimein")
        || n.starts_with("datefirstentered")
}

/// Physical lines, counted from the bytes themselves: the CSV parser's own
/// line numbers run one short in files with CRLF line ends (what Windows
/// and many CRM exports write).
#[derive(Default)]
struct LineCounter {
    /// Offsets of the newlines read but not yet passed.
    ahead: std::collections::VecDeque<u64>,
    /// Newlines before the last position asked about.
    passed: u64,
}

impl LineCounter {
    /// The physical line (1-based) of a record starting at `offset`;
    /// offsets asked about never decrease. A newline at `offset` itself is
    /// the end of the line before: in a CRLF file the parser ends a record
    /// at `\r` and puts the next one's start on the `\n`.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.ahead.front().is_some_and(|&n| n <= offset) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// A reader that notes where its newlines are.
struct Counting<R> {
    inner: R,
    offset: u64,
    lines: std::rc::Rc<std::cell::RefCell<LineCounter>>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut lines = self.lines.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                lines.ahead.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

type CsvReader = csv::Reader<Counting<std::io::BufReader<std::fs::File>>>;

fn open_counted(
    path: &Path,
) -> anyhow::Result<(CsvReader, std::rc::Rc<std::cell::RefCell<LineCounter>>)> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    if file.metadata().is_ok_and(|m| !m.is_file()) {
        anyhow::bail!("`{}` is not a regular file", path.display());
    }
    let lines = std::rc::Rc::new(std::cell::RefCell::new(LineCounter::default()));
    let reader = Counting {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        offset: 0,
        lines: lines.clone(),
    };
    Ok((
        csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader),
        lines,
    ))
}

fn open(path: &Path) -> anyhow::Result<CsvReader> {
    Ok(open_counted(path)?.0)
}

/// Iterates `path`'s rows with their physical line numbers (the header is
/// line 1); a row the CSV parser cannot read is a rejection, not the end
/// of the file.
fn rows(
    path: &Path,
    kind: FileKind,
    columns: Columns,
    explicit: &BTreeMap<String, String>,
    consumed: &dyn Fn(&str) -> bool,
    rejected: &mut Vec<Rejection>,
    mut each: impl FnMut(u64, &csv::StringRecord, &Header) -> Result<(), Problem>,
) -> anyhow::Result<Header> {
    let headers = headers_of(&mut open(path)?, path)?;
    let header = resolve(path, kind.name(), &headers, columns, explicit, consumed)?;
    let file = path.display().to_string();
    // One-cell rows after the data are a report's footer (Salesforce:
    // "Copyright …", "Generated By: …"); one-cell rows with data after
    // them are rows with too few columns.
    let mut footer: Vec<u64> = Vec::new();
    // The CSV is parsed on a thread of its own, a few batches of records
    // ahead of resolving them here: parsing and trimming cells was a
    // quarter of reading an export (perf, 1M activities).
    let (batches, parsed) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(4);
    let (spent, reuse) = std::sync::mpsc::channel::<Vec<Parsed>>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let parser = scope.spawn(move || parse_rows(path, batches, reuse));
        for batch in parsed {
            for one in &batch {
                match one {
                    &Parsed::Row(line, ref record) => {
                        if record.iter().all(|c| c.trim().is_empty()) {
                            continue;
                        }
                        if record.len() == 1 && headers.len() > 2 {
                            footer.push(line);
                            continue;
                        }
                        for line in footer.drain(..) {
                            rejected.push(
                                Problem::row(format!(
                                    "the row has 1 column of {}: not a row of this file",
                                    headers.len()
                                ))
                                .at(kind, &file, line),
                            );
                        }
                        if let Err(problem) = each(line, record, &header) {
                            rejected.push(problem.at(kind, &file, line));
                        }
                    }
                    Parsed::Bad(line, e) => rejected
                        .push(Problem::row(format!("not valid CSV: {e}")).at(kind, &file, *line)),
                }
            }
            let _ = spent.send(batch);
        }
        parser.join().expect("the CSV parser does not panic")
    })?;
    Ok(header)
}

/// One record as [`parse_rows`] read it, with its physical line.
enum Parsed {
    Row(u64, csv::StringRecord),
    /// Not valid CSV: the message.
    Bad(u64, String),
}

/// Reads `path`'s records after the header into batches sent on `out`,
/// taking spent batches back from `reuse` and reading into their records
/// again (a record per row grew its buffers anew each time: a tenth of
/// the reading in reallocations). A record that is not valid UTF-8 is
/// reported and skipped; any other CSV error ends the file.
fn parse_rows(
    path: &Path,
    out: std::sync::mpsc::SyncSender<Vec<Parsed>>,
    reuse: std::sync::mpsc::Receiver<Vec<Parsed>>,
) -> anyhow::Result<()> {
    const BATCH: usize = 4096;
    let (mut reader, lines) = open_counted(path)?;
    headers_of(&mut reader, path)?;
    let line_of = |byte: u64| lines.borrow_mut().line_at(byte);
    // The record the `n`th row of `batch` is read into.
    fn slot(batch: &mut Vec<Parsed>, n: usize) -> &mut csv::StringRecord {
        if n == batch.len() {
            batch.push(Parsed::Row(0, csv::StringRecord::new()));
        }
        if let Parsed::Bad(..) = batch[n] {
            batch[n] = Parsed::Row(0, csv::StringRecord::new());
        }
        match &mut batch[n] {
            Parsed::Row(_, record) => record,
            Parsed::Bad(..) => unreachable!("made a row just now"),
        }
    }
    let mut batch: Vec<Parsed> = Vec::with_capacity(BATCH);
    let mut n = 0;
    loop {
        let record = slot(&mut batch, n);
        match reader.read_record(record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| line_of(p.byte()));
                if let Parsed::Row(at, _) = &mut batch[n] {
                    *at = line;
                }
            }
            Err(e) => {
                let byte = e.position().map_or(reader.position().byte(), |p| p.byte());
                batch[n] = Parsed::Bad(line_of(byte), e.to_string());
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    n += 1;
                    break;
                }
            }
        }
        n += 1;
        if n == BATCH {
            let next = reuse
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            if out.send(std::mem::replace(&mut batch, next)).is_err() {
                return Ok(());
            }
            n = 0;
        }
    }
    batch.truncate(n);
    let _ = out.send(batch);
    Ok(())
}

fn headers_of<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    path: &Path,
) -> anyhow::Result<csv::StringRecord> {
    Ok(reader
        .headers()
        .map_err(|e| anyhow::anyhow!("cannot read the header of `{}`: {e}", path.display()))?
        .clone())
}

fn required<'r>(
    record: &'r csv::StringRecord,
    header: &Header,
    name: &str,
) -> Result<&'r str, Problem> {
    cell(record, header, name).ok_or_else(|| {
        let i = header.found[name];
        let title = header.title(name);
        if record.len() <= i {
            Problem::row(format!(
                "the row has {} columns, too few to reach `{title}` (column {})",
                record.len(),
                i + 1
            ))
        } else {
            Problem {
                column: Some(title.to_string()),
                value: None,
                reason: "the cell is empty".into(),
                hint: None,
            }
        }
    })
}

/// Reads and checks `files`. A file that cannot be read at all, or lacks a
/// required column, is an error before anything happens; a bad row is a
/// [`Rejection`] with its physical line, column and value, and the rows
/// that depend on it (the activities of a rejected prospect) are rejected
/// too.
///
/// `existing` says whether a prospect id not in the prospects file is
/// already known (activities may then refer to it). With no `stages`
/// (discovery), stage values are not placed, so an unknown one is no error.
pub fn read(
    files: &Files,
    mapping: &Mapping,
    stages: &StageNames,
    existing: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Source> {
    let mut src = Source::default();
    // With no stages to place deals in (discovery), a stage value no stage
    // has is not an error: only the outcome is read.
    let placing = !stages.is_empty();
    let format = mapping.date_format.as_deref();
    let date = |record: &csv::StringRecord, header: &Header, name: &str| {
        cell(record, header, name)
            .map(|text| {
                parse_date(text, format)
                    .map_err(|e| Problem::cell(header.title(name), text, e).hint(DATE_HINT))
            })
            .transpose()
    };
    let prospects_file = files.prospects.display().to_string();

    // Prospects.
    let mut seen: HashMap<String, u64> = HashMap::default();
    let mut rejected_keys: HashMap<String, u64> = HashMap::default();
    let mut prospects = Vec::new();
    let mut unknown_stages: BTreeMap<String, usize> = BTreeMap::new();
    // Stage-history columns: index → (the stage its label names, its
    // pipeline normalized), resolved once, not per row.
    let history_columns: Vec<(usize, SourceStage, Option<String>)> =
        headers_of(&mut open(&files.prospects)?, &files.prospects)?
            .iter()
            .enumerate()
            .filter_map(|(i, h)| match history_column(h) {
                Some((true, stage, pipeline)) => Some((
                    i,
                    source_stage(&stage, mapping, stages),
                    pipeline.as_deref().map(normalize),
                )),
                _ => None,
            })
            .collect();
    // Stage values seen before, resolved (a file has a handful).
    let mut stage_values: HashMap<String, SourceStage> = HashMap::default();
    let mut open_close_dates = 0u64;
    let header = rows(
        &files.prospects,
        FileKind::Prospects,
        PROSPECT_COLUMNS,
        &mapping.prospects,
        &|h| history_column(h).is_some() || derived_history_column(h),
        &mut src.rejected,
        |line, record, header| {
            let key = required(record, header, "id")?.to_string();
            if let Some(first) = seen.get(&key) {
                // The first row stands; only this one is refused.
                return Err(Problem::cell(
                    header.title("id"),
                    &key,
                    format!("duplicate of line {first}: the id appears twice"),
                ));
            }
            let result = (|| {
                let name = required(record, header, "name")?.to_string();
                required(record, header, "created")?;
                let created = date(record, header, "created")?.expect("the cell is there");
                // A creation date after today is an expected date, not
                // history (a `Close Date` mapped as `created`, say).
                if created.0 > Millis::now().0 + Millis::DAY {
                    return Err(Problem::cell(
                        header.title("created"),
                        cell(record, header, "created").unwrap_or_default(),
                        "the deal would be created in the future",
                    )
                    .hint("is this the creation date? name the right column with `--column prospects.created=HEADER`"));
                }
                let mut fields = Map::new();
                if let Some(amount) = cell(record, header, "amount") {
                    let n: f64 = amount
                        .replace([',', '$', '€', '£', ' ', '\u{a0}'], "")
                        .parse()
                        .map_err(|_| {
                            Problem::cell(header.title("amount"), amount, "not a number")
                        })?;
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
                // Where the source has it: a status, won/closed flags, or
                // the stage (`Closed Won`).
                let status = cell(record, header, "status").and_then(|s| match normalize(s) {
                    n if n.contains("won") => Some(SourceStage::Won),
                    n if n.contains("lost") => Some(SourceStage::Lost),
                    _ => None,
                });
                let flag = |name: &str| -> Result<Option<bool>, Problem> {
                    cell(record, header, name)
                        .map(|v| {
                            truthy(v).ok_or_else(|| {
                                Problem::cell(header.title(name), v, "not a yes/no value")
                            })
                        })
                        .transpose()
                };
                let flags = match (flag("is_closed")?, flag("won")?) {
                    (Some(true), Some(true)) => Some(SourceStage::Won),
                    (Some(true), Some(false)) => Some(SourceStage::Lost),
                    (None, Some(true)) => Some(SourceStage::Won),
                    _ => None,
                };
                let stage_cell = cell(record, header, "stage");
                let stage = stage_cell.map(|s| match stage_values.get(s) {
                    Some(known) => known.clone(),
                    None => {
                        let resolved = source_stage(s, mapping, stages);
                        stage_values.insert(s.to_string(), resolved.clone());
                        resolved
                    }
                });
                if let (Some(SourceStage::Unknown(v)), None, None) = (&stage, &status, &flags) {
                    *unknown_stages.entry(v.clone()).or_default() += 1;
                    if placing {
                        return Err(unknown_stage(header.title("stage"), v, stages));
                    }
                }
                let stage = status.or(flags).or(stage);

                // Stage history, from the columns of this deal's pipeline.
                let pipeline = cell(record, header, "pipeline").map(normalize);
                let mut history = Vec::new();
                let mut closed_in_history: Option<(bool, Millis)> = None;
                for (i, label, of) in &history_columns {
                    if let (Some(p), Some(of)) = (&pipeline, of)
                        && p != of
                    {
                        continue;
                    }
                    let Some(text) = record.get(*i).map(str::trim).filter(|t| !t.is_empty()) else {
                        continue;
                    };
                    let column = &header.names[*i];
                    let at = parse_date(text, format)
                        .map_err(|e| Problem::cell(column, text, e).hint(DATE_HINT))?;
                    match label.clone() {
                        SourceStage::Open(id) => history.push(Entry { stage: id, at }),
                        SourceStage::Won => closed_in_history = Some((true, at)),
                        SourceStage::Lost => closed_in_history = Some((false, at)),
                        SourceStage::Unknown(v) => {
                            *unknown_stages.entry(v.clone()).or_default() += 1;
                            if placing {
                                return Err(unknown_stage(column, &v, stages));
                            }
                        }
                    }
                }
                history.sort_by_key(|e| e.at);

                // The outcome and its time: won/lost time, else the close
                // date, else when the history entered won/lost.
                let outcome = match &stage {
                    Some(SourceStage::Won | SourceStage::Lost) => {
                        let won = stage == Some(SourceStage::Won);
                        let own_column = if won { "won_at" } else { "lost_at" };
                        let own = date(record, header, own_column)?;
                        let close = date(record, header, "closed")?;
                        let text = if own.is_some() {
                            cell(record, header, own_column)
                        } else if close.is_some() {
                            cell(record, header, "closed")
                        } else {
                            None
                        };
                        let whole_day = text.is_some_and(|t| !t.contains(':'));
                        let at = own
                            .or(close)
                            .or(closed_in_history.filter(|c| c.0 == won).map(|c| c.1));
                        Some(Outcome { won, at, whole_day })
                    }
                    _ => {
                        // An open deal's close date is the expected one.
                        if let Some(c) = cell(record, header, "closed") {
                            open_close_dates += 1;
                            fields.insert("expected_close_date".into(), Value::String(c.into()));
                        }
                        None
                    }
                };
                if let Some(Outcome {
                    at: Some(at), won, ..
                }) = &outcome
                    && *at < created
                {
                    return Err(Problem::cell(
                        header.title(if *won { "won_at" } else { "lost_at" }),
                        &at.to_string(),
                        format!("the deal closed before it was created ({created})"),
                    ));
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
                    outcome,
                    lost_reason: cell(record, header, "lost_reason").map(str::to_string),
                    history,
                    fields,
                })
            })();
            match result {
                Ok(row) => {
                    seen.insert(key.clone(), line);
                    if !row.history.is_empty() {
                        src.with_history += 1;
                    }
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
    src.close_column = header.title("closed").to_string();
    for (_, h) in &header.rest {
        let n = normalize(h);
        if n.contains("date") || n.contains("time") {
            src.unused_dates.push(UnusedColumn {
                file: prospects_file.clone(),
                column: h.clone(),
                why: format!("kept as field `{}`", snake(h)),
            });
        }
    }
    if open_close_dates > 0 {
        src.unused_dates.push(UnusedColumn {
            file: prospects_file.clone(),
            column: header.title("closed").to_string(),
            why: format!(
                "an open deal's close date is only expected: kept as field `expected_close_date` ({open_close_dates} deals)"
            ),
        });
    }

    let known = |key: &str, column: &str| -> Result<(), Problem> {
        if let Some(line) = rejected_keys.get(key) {
            Err(Problem::cell(
                column,
                key,
                deal_rejected(*line, &prospects_file),
            ))
        } else if seen.contains_key(key) || existing(key) {
            Ok(())
        } else {
            Err(Problem::cell(column, key, unknown_prospect(key)))
        }
    };

    // Activities.
    if let Some(path) = &files.activities {
        let file = path.display().to_string();
        // A row is a duplicate when its id (or, without one, every cell)
        // appeared before.
        let mut seen_activity: HashMap<String, u64> = HashMap::default();
        let mut activities = Vec::new();
        let mut without_direction: BTreeMap<String, u64> = BTreeMap::new();
        let mut matched_by_name = None;
        let (mut without_deal, mut not_done) = (0u64, 0u64);
        // When the file has no id column but a name column, names are used.
        let mut by_names = false;
        let mut mapping_activities = mapping.activities.clone();
        {
            let reader_headers = headers_of(&mut open(path)?, path)?;
            let names: Vec<[String; 2]> = reader_headers.iter().map(header_names).collect();
            let ids = names_of(ACTIVITY_COLUMNS, "prospect");
            let has_id = mapping.activities.contains_key("prospect")
                || names
                    .iter()
                    .any(|n| ids.contains(&n[0].as_str()) || ids.contains(&n[1].as_str()));
            if !has_id {
                let name_cols = names_of(ACTIVITY_COLUMNS, "prospect_name");
                if let Some(h) = reader_headers.iter().zip(&names).find_map(|(h, n)| {
                    (name_cols.contains(&n[0].as_str()) || name_cols.contains(&n[1].as_str()))
                        .then_some(h)
                }) {
                    mapping_activities.insert("prospect".into(), h.to_string());
                    by_names = true;
                    matched_by_name = Some(h.to_string());
                }
            }
        }
        // Deals by name, when names are all the activities give (made only
        // then: a string and a list per deal).
        let mut by_name: HashMap<String, Vec<String>> = HashMap::default();
        if by_names {
            for p in &src.prospects {
                by_name
                    .entry(normalize(&p.name))
                    .or_default()
                    .push(p.key.clone());
            }
        }
        // What a cell value means, for the columns whose values repeat
        // (kinds, directions, done flags): worked out once per value.
        let mut kinds: HashMap<String, (String, Option<Actor>)> = HashMap::default();
        let mut actors: HashMap<String, Option<Actor>> = HashMap::default();
        let mut done_flags: HashMap<String, Option<bool>> = HashMap::default();
        // The other columns, as the data fields they fill.
        let mut rest_fields: Option<Vec<(usize, String)>> = None;
        let header = rows(
            path,
            FileKind::Activities,
            ACTIVITY_COLUMNS,
            &mapping_activities,
            &|_| false,
            &mut src.rejected,
            |line, record, header| {
                if let Some(done) = cell(record, header, "done")
                    && memo(&mut done_flags, done, truthy) == Some(false)
                {
                    not_done += 1;
                    return Ok(());
                }
                let Some(cell_keys) = cell(record, header, "prospect") else {
                    without_deal += 1;
                    return Ok(());
                };
                let column = header.title("prospect").to_string();
                let mut keys: Vec<String> = Vec::new();
                if by_names {
                    for name in cell_keys
                        .split(';')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                    {
                        match by_name.get(&normalize(name)).map(Vec::as_slice) {
                            Some([key]) => keys.push(key.clone()),
                            Some(many) => {
                                return Err(Problem::cell(
                                    &column,
                                    name,
                                    format!(
                                        "{} deals have this name (ids {}): a name cannot say which",
                                        many.len(),
                                        many.join(", ")
                                    ),
                                )
                                .hint("export the activities with the deals' ids (HubSpot: `Associated Deal IDs`)"));
                            }
                            None => {
                                return Err(Problem::cell(
                                    &column,
                                    name,
                                    "no deal in the prospects file has this name",
                                ));
                            }
                        }
                    }
                } else {
                    for key in cell_keys
                        .split(';')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                    {
                        known(key, &column)?;
                        keys.push(key.to_string());
                    }
                }
                keys.dedup();
                let source_kind = required(record, header, "kind")?;
                let (kind, typed_actor) = memo(&mut kinds, source_kind, |source_kind| {
                    let kind = mapping
                        .kinds
                        .iter()
                        .find(|(k, _)| {
                            k.trim() == source_kind || normalize(k) == normalize(source_kind)
                        })
                        .map_or_else(|| snake(source_kind), |(_, v)| v.clone());
                    (kind, actor_of_type(source_kind))
                });
                if kind.is_empty() {
                    return Err(Problem::cell(
                        header.title("kind"),
                        source_kind,
                        "not a usable activity kind",
                    ));
                }
                required(record, header, "at")?;
                let at = date(record, header, "at")?.expect("the cell is there");
                let mut actor = match cell(record, header, "actor") {
                    Some(a) => Some(memo(&mut actors, a, self::actor).ok_or_else(|| {
                        Problem::cell(header.title("actor"), a, "neither `prospect` nor `rep`")
                    })?),
                    None => None,
                };
                if actor.is_none() {
                    actor = cell(record, header, "direction")
                        .and_then(|d| memo(&mut actors, d, self::actor))
                        .or(typed_actor);
                }
                if actor.is_none() {
                    if mapping.prospect_kinds.contains(&kind) {
                        actor = Some(Actor::Prospect);
                    } else {
                        *without_direction.entry(kind.clone()).or_default() += 1;
                    }
                }
                let mut data = match cell(record, header, "data") {
                    Some(text) => match serde_json::from_str::<Value>(text) {
                        Ok(Value::Object(m)) => m,
                        _ => {
                            return Err(Problem::cell(
                                header.title("data"),
                                text,
                                "not a JSON object",
                            ));
                        }
                    },
                    None => Map::new(),
                };
                let fields = rest_fields.get_or_insert_with(|| {
                    header
                        .rest
                        .iter()
                        .filter(|(_, h)| !header_names(h).iter().any(|n| n == "id"))
                        .map(|(i, h)| (*i, snake(h)))
                        .collect()
                });
                for (i, name) in fields.iter() {
                    if let Some(v) = record.get(*i).map(str::trim).filter(|v| !v.is_empty()) {
                        data.insert(name.clone(), field_value(v));
                    }
                }
                let identity = match cell(record, header, "source_id") {
                    Some(id) => format!("id {id}"),
                    None => record.iter().collect::<Vec<_>>().join("\u{1f}"),
                };
                if let Some(first) = seen_activity.get(&identity) {
                    return Err(match cell(record, header, "source_id") {
                        Some(id) => Problem::cell(
                            header.title("source_id"),
                            id,
                            format!("duplicate of line {first}: the activity id appears twice"),
                        ),
                        None => {
                            Problem::row(format!("duplicate of line {first}: the same row twice"))
                        }
                    });
                }
                seen_activity.insert(identity, line);
                activities.push(ActivityRow {
                    line,
                    keys,
                    kind,
                    at,
                    actor,
                    data,
                });
                Ok(())
            },
        )?;
        src.activities = activities;
        src.activity_deal_column = header.title("prospect").to_string();
        for (_, h) in &header.rest {
            let n = normalize(h);
            if n.contains("date") || n.contains("time") {
                src.unused_dates.push(UnusedColumn {
                    file: file.clone(),
                    column: h.clone(),
                    why: format!(
                        "kept in the activity's data (its time is `{}`)",
                        header.title("at")
                    ),
                });
            }
        }
        src.without_direction = without_direction;
        src.matched_by_name = matched_by_name;
        src.without_deal = without_deal;
        src.not_done = not_done;
    }

    // Transitions or stage history.
    if let Some(path) = &files.transitions {
        let mut transitions = Vec::new();
        let header = rows(
            path,
            FileKind::Transitions,
            TRANSITION_COLUMNS,
            &mapping.transitions,
            &|_| false,
            &mut src.rejected,
            |line, record, header| {
                let key = required(record, header, "prospect")?.to_string();
                known(&key, header.title("prospect"))?;
                let kind = cell(record, header, "kind").map(str::to_lowercase);
                const KINDS: [&str; 7] = [
                    "created",
                    "advanced",
                    "skipped",
                    "regressed",
                    "forced",
                    "won",
                    "lost",
                ];
                if let Some(k) = &kind
                    && !KINDS.contains(&k.as_str())
                {
                    return Err(Problem::cell(
                        header.title("kind"),
                        k,
                        format!("not one of {}", KINDS.join(", ")),
                    ));
                }
                let value = required(record, header, "to")?;
                let to = source_stage(value, mapping, stages);
                if let SourceStage::Unknown(v) = &to {
                    *unknown_stages.entry(v.clone()).or_default() += 1;
                    return Err(unknown_stage(header.title("to"), v, stages));
                }
                required(record, header, "at")?;
                let at = date(record, header, "at")?.expect("the cell is there");
                let imported = cell(record, header, "imported").and_then(truthy);
                transitions.push(TransitionRow {
                    line,
                    key,
                    to,
                    at,
                    kind,
                    reason: cell(record, header, "reason").map(str::to_string),
                    by: cell(record, header, "by").map(str::to_string),
                    imported,
                });
                Ok(())
            },
        )?;
        src.transitions = transitions;
        src.transition_deal_column = header.title("prospect").to_string();
    }
    src.unknown_stages = unknown_stages;
    src.rejected
        .sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
    Ok(src)
}

/// How the reason of a row refused only because its deal was begins.
pub const DEAL_REJECTED: &str = "its deal was rejected";

/// Why a row is refused when its deal (at `line` of `file`) was.
pub fn deal_rejected(line: u64, file: &str) -> String {
    format!("{DEAL_REJECTED} (line {line} of {file})")
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

/// Adds `--column which.name=HEADER`, `--stage SRC=ID`, `--kind SRC=KIND`
/// and `--prospect-kinds` flags to `mapping`.
pub fn apply_flags(
    mapping: &mut Mapping,
    columns: &[String],
    stages: &[String],
    kinds: &[String],
    prospect_kinds: &[String],
    date_format: Option<&str>,
) -> anyhow::Result<()> {
    for k in prospect_kinds.iter().flat_map(|k| k.split(',')) {
        let k = k.trim();
        if !k.is_empty() && !mapping.prospect_kinds.iter().any(|p| p == k) {
            mapping.prospect_kinds.push(k.to_string());
        }
    }
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
