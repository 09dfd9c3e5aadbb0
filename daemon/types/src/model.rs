//! The sales domain's records: prospects, activities, transitions and
//! process versions.
//!
//! Each type has one serde shape used twice: on the wire (JSON, times as
//! RFC 3339) and in the store (MessagePack, times as integer milliseconds).
//! [`Millis`] picks its form from `Serializer::is_human_readable`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The activity kind the daemon writes for field changes: history, but not
/// a step of the sales process.
pub const FIELDS_UPDATED: &str = "fields_updated";

/// A prospect's id, assigned by the daemon.
pub type ProspectId = u64;

/// A UTC instant in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Millis {
    /// Milliseconds in one day.
    pub const DAY: i64 = 86_400_000;

    /// The current wall-clock time.
    pub fn now() -> Self {
        Millis(jiff::Timestamp::now().as_millisecond())
    }

    /// The earliest time accepted from a client or a file: 1970-01-01.
    pub const EARLIEST: Millis = Millis(0);
    /// The latest time accepted: 2200-01-01T00:00:00Z (so a period may
    /// end there). Metric counters cover every day up to it.
    pub const END: Millis = Millis(7_258_118_400_000);

    /// Whether the time lies in [`Millis::EARLIEST`, `Millis::END`].
    pub fn in_range(self) -> bool {
        (Self::EARLIEST..=Self::END).contains(&self)
    }

    /// `text`, read as `self`, if it lies in range; the message otherwise.
    fn checked(self, text: &str) -> Result<Self, String> {
        if self.in_range() {
            Ok(self)
        } else {
            Err(format!(
                "`{}` is out of range: times lie from 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z",
                text.trim()
            ))
        }
    }

    /// Parses RFC 3339 (`2026-07-01T09:30:00Z`), a date-time without offset
    /// (`2026-07-01 09:30`, UTC), a plain date (`2026-07-01`, midnight UTC)
    /// or integer milliseconds, within [`Millis::in_range`].
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_unchecked(text)?.checked(text)
    }

    /// A time as the protocol writes it: RFC 3339, a date-time with its
    /// offset (`2026-07-01T09:30:00Z`) or a full date (`2026-07-01`,
    /// midnight UTC), within [`Millis::in_range`]. Nothing else: no
    /// integers, no date-times without an offset.
    pub fn parse_wire(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let time = match trimmed.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(Millis(ts.as_millisecond())),
            // A full date, and only that (`civil::Date` alone would also
            // read a date-time and drop its time).
            Err(_) if trimmed.len() == 10 => trimmed
                .parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| utc(d.to_datetime(jiff::civil::Time::midnight())).ok()),
            Err(_) => None,
        };
        time.ok_or_else(|| {
            format!("`{text}` is not a time: RFC 3339, like `2026-07-01T09:30:00Z` or `2026-07-01`")
        })?
        .checked(text)
    }

    /// [`Millis::parse`] without the range check: for readers that check
    /// [`Millis::in_range`] themselves, with their own message.
    pub fn parse_unchecked(text: &str) -> Result<Self, String> {
        let text = text.trim();
        // An instant has an offset (`Z`, `+hh:mm`, `-hh:mm`) after its
        // date: without one, trying it only builds an error (a tenth of
        // reading a CRM export's dates, perf).
        let offset = text
            .bytes()
            .skip(10)
            .any(|b| matches!(b, b'Z' | b'z' | b'+' | b'-'));
        if offset && let Ok(ts) = text.parse::<jiff::Timestamp>() {
            return Ok(Millis(ts.as_millisecond()));
        }
        // A civil date-time (`2026-07-01 09:30`) or date (midnight), as UTC.
        // Not `civil::Date`: it would read the date-time and drop the time.
        if let Ok(datetime) = text.parse::<jiff::civil::DateTime>() {
            return utc(datetime);
        }
        if let Ok(ms) = text.parse::<i64>() {
            return Ok(Millis(ms));
        }
        Err(format!(
            "`{text}` is not a time; expected RFC 3339 like `2026-07-01T09:30:00Z` or a date like `2026-07-01`"
        ))
    }

    /// Whole days from `self` to `later` (fractional).
    pub fn days_until(self, later: Millis) -> f64 {
        (later.0 - self.0) as f64 / Self::DAY as f64
    }

    /// The calendar month (UTC) `self` falls in, and the `back` months
    /// before it, oldest first: (`2026-06`, first instant, next month's
    /// first instant).
    pub fn months_ending(self, back: u32) -> Vec<(String, Millis, Millis)> {
        let date = jiff::Timestamp::from_millisecond(self.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let mut first = date.first_of_month();
        let mut out = Vec::with_capacity(back as usize + 1);
        for _ in 0..=back {
            let next = first
                .checked_add(jiff::Span::new().months(1))
                .unwrap_or(first);
            let start = utc(first.to_datetime(jiff::civil::Time::midnight())).unwrap_or(Millis(0));
            let end = utc(next.to_datetime(jiff::civil::Time::midnight())).unwrap_or(start);
            out.push((
                format!("{:04}-{:02}", first.year(), first.month()),
                start,
                end,
            ));
            match first.checked_sub(jiff::Span::new().months(1)) {
                Ok(prev) => first = prev,
                Err(_) => break,
            }
        }
        out.reverse();
        out
    }
}

/// A civil date-time read as UTC.
fn utc(datetime: jiff::civil::DateTime) -> Result<Millis, String> {
    let zoned = datetime
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?;
    Ok(Millis(zoned.timestamp().as_millisecond()))
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads an integer or a text time straight from the input: no
        /// buffering and no failed attempt per value (times are most of an
        /// import's bytes).
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time: RFC 3339 text like `2026-07-01T09:30:00Z`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Millis, E> {
                Millis::parse_wire(text).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(Visitor)
        } else {
            i64::deserialize(d).map(Millis)
        }
    }
}

/// A prospect field's value: text, a number or a yes/no answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A yes/no answer.
    Bool(bool),
    /// A quantity (amount, head count, score).
    Number(f64),
    /// Free text.
    Text(String),
}

impl FieldValue {
    /// Parses a command-line value: `yes`/`no`/`true`/`false`, a number, or text.
    pub fn parse_cli(text: &str) -> FieldValue {
        match text {
            "yes" | "true" => FieldValue::Bool(true),
            "no" | "false" => FieldValue::Bool(false),
            _ => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => FieldValue::Number(n),
                _ => FieldValue::Text(text.to_string()),
            },
        }
    }

    /// The value as a number, when it is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FieldValue::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Bool(b) => s.serialize_bool(*b),
            // Whole amounts read as `12000`, not `12000.0`, to people and scripts.
            FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => {
                s.serialize_i64(*n as i64)
            }
            FieldValue::Number(n) => s.serialize_f64(*n),
            FieldValue::Text(t) => s.serialize_str(t),
        }
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(true) => f.write_str("yes"),
            FieldValue::Bool(false) => f.write_str("no"),
            FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => {
                write!(f, "{}", *n as i64)
            }
            FieldValue::Number(n) => write!(f, "{n}"),
            FieldValue::Text(t) => f.write_str(t),
        }
    }
}

/// Prospect fields by name.
pub type Fields = BTreeMap<String, FieldValue>;

/// Where a prospect stands overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still moving through the stages.
    Open,
    /// Closed as a customer.
    Won,
    /// Closed without a deal.
    Lost,
}

impl Status {
    /// The protocol's name for this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Won => "won",
            Status::Lost => "lost",
        }
    }
}

/// Who performed an activity. Exit criteria should depend on what the
/// *prospect* did, never only on the rep's own actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The prospect (replied, attended, signed).
    Prospect,
    /// The sales rep (called, emailed, sent a proposal).
    Rep,
}

impl Actor {
    /// The protocol's name for this actor.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Prospect => "prospect",
            Actor::Rep => "rep",
        }
    }
}

/// A prospect: one company or person moving through the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prospect {
    /// Assigned by the daemon.
    pub id: ProspectId,
    /// The id in another system, unique; makes imports idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Person or deal name.
    pub name: String,
    /// Company, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// The rep who owns the prospect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Quantifiable facts and yes/no answers.
    #[serde(default)]
    pub fields: Fields,
    /// Current stage id (for a closed prospect: the stage it closed from).
    pub stage: String,
    /// Open, won or lost.
    pub status: Status,
    /// When the prospect was created.
    pub created_at: Millis,
    /// When the prospect entered its current stage.
    pub stage_entered_at: Millis,
    /// Time of the latest activity (creation counts).
    pub last_activity_at: Millis,
    /// When the prospect was won or lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    /// When the current owner took the prospect over (none: since creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_since: Option<Millis>,
}

impl Prospect {
    /// The earliest time a new move can be dated: history of one prospect
    /// runs forward, so a backdated move cannot precede its current stay or
    /// its current owner.
    pub fn earliest_move(&self) -> Millis {
        self.owner_since
            .map_or(self.stage_entered_at, |o| o.max(self.stage_entered_at))
    }
}

/// One entry of the append-only activity log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Assigned by the daemon, increasing.
    pub id: u64,
    /// The prospect it belongs to.
    pub prospect: ProspectId,
    /// What happened (`replied`, `meeting_held`, `demo_attended`, …).
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// When it happened.
    pub at: Millis,
    /// Anything else worth keeping, as a JSON object.
    #[serde(default, skip_serializing_if = "is_empty_object")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

fn is_empty_object(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.is_empty()
}

/// Why a prospect changed stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    /// The prospect was created in `to`.
    Created,
    /// Exit criteria met: moved to the next stage.
    Advanced,
    /// Moved forward past one or more stages.
    Skipped,
    /// Moved back to an earlier stage.
    Regressed,
    /// Moved by a person regardless of the exit criteria, with a reason.
    Forced,
    /// Closed as a customer.
    Won,
    /// Closed without a deal.
    Lost,
}

impl TransitionKind {
    /// The protocol's name for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Created => "created",
            TransitionKind::Advanced => "advanced",
            TransitionKind::Skipped => "skipped",
            TransitionKind::Regressed => "regressed",
            TransitionKind::Forced => "forced",
            TransitionKind::Won => "won",
            TransitionKind::Lost => "lost",
        }
    }
}

/// One criterion's outcome for one prospect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The criterion's question, as written in `process.toml`.
    pub question: String,
    /// Whether the prospect meets it.
    pub met: bool,
    /// Why, in words (the evidence or what is missing).
    pub reason: String,
    /// A warn-mode criterion: unmet, it is a breach that held nobody.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warn: bool,
}

/// A stage change, append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Assigned by the daemon, increasing.
    pub id: u64,
    /// The prospect that moved.
    pub prospect: ProspectId,
    /// The stage left (none at creation).
    #[serde(default)]
    pub from: Option<String>,
    /// The stage entered, or `won` / `lost`.
    pub to: String,
    /// When the move happened.
    pub at: Millis,
    /// The process version in force.
    pub process_version: u64,
    /// Why it happened.
    pub kind: TransitionKind,
    /// The exit-criteria verdicts that allowed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// For forced moves and closes: the reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For forced moves: who forced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The activity that caused the move, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<u64>,
    /// Written by an import as the source system recorded it, not earned
    /// under this process's exit criteria: a dated stage change from the
    /// source's stage history, or an outcome the replayed activities did
    /// not meet the criteria for. Absent (false) for every move the
    /// daemon made itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub imported: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One stored version of `process.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessVersion {
    /// 1, 2, 3, … in load order.
    pub number: u64,
    /// BLAKE3 of the file's bytes, hex.
    pub hash: String,
    /// The file's full text.
    pub text: String,
    /// When this version became active.
    pub loaded_at: Millis,
    /// The file it was read from.
    pub path: String,
}

/// What exit criteria need to know of a prospect's activities: when each
/// activity of the kinds they ask about happened, and who did it. Loaded
/// from an index by kind, so evaluating costs what the criteria ask for,
/// not the length of the prospect's history.
#[derive(Debug, Default, Clone)]
pub struct ActivityFacts {
    by_kind: HashMap<String, Vec<(Millis, Actor)>>,
    /// The full list, oldest first, loaded only for plugin criteria.
    pub activities: Vec<Activity>,
}

impl ActivityFacts {
    /// Facts from a full activity list.
    pub fn from_activities(activities: &[Activity]) -> Self {
        let mut facts = ActivityFacts::default();
        for a in activities {
            facts.add(&a.kind, a.at, a.actor);
        }
        facts.activities = activities.to_vec();
        facts
    }

    /// Adds one activity.
    pub fn add(&mut self, kind: &str, at: Millis, actor: Actor) {
        // Looked up before it is made: most adds find their kind.
        match self.by_kind.get_mut(kind) {
            Some(list) => list.push((at, actor)),
            None => {
                self.by_kind.insert(kind.to_string(), vec![(at, actor)]);
            }
        }
    }

    /// When each activity of `kind` happened and who did it, in the order added.
    pub fn of_kind(&self, kind: &str) -> &[(Millis, Actor)] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_before_skipping_the_instant_attempt_without_an_offset() {
        // What was read before the shortcut: an instant first, always.
        fn reference(text: &str) -> Option<i64> {
            let text = text.trim();
            if let Ok(ts) = text.parse::<jiff::Timestamp>() {
                return Some(ts.as_millisecond());
            }
            if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
                return dt
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .ok()
                    .map(|z| z.timestamp().as_millisecond());
            }
            text.parse::<i64>().ok()
        }
        for text in [
            "2026-07-01T09:30:00Z",
            "2026-07-01t09:30:00z",
            "2026-07-01T09:30:00.123Z",
            "2026-07-01T09:30:00+02:00",
            "2026-07-01T09:30:00-05:00",
            "2026-07-01 09:30:00+00:00",
            "2026-07-01T09:30:00-00:00",
            "2026-07-01T09:30:00+0200",
            "2026-07-01T09:30Z",
            " 2026-07-01T09:30:00Z ",
            "2026-07-01 09:30:00",
            "2026-07-01 09:30",
            "2026-07-01T09:30:00",
            "2026-07-01",
            "20260701T093000Z",
            "1767225600000",
            "-5",
            "0",
            "July first",
            "2026-13-01",
            "",
        ] {
            assert_eq!(
                Millis::parse_unchecked(text).ok().map(|m| m.0),
                reference(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn millis_round_trips_both_forms() {
        let m = Millis::parse("2026-07-01T09:30:00Z").unwrap();
        assert_eq!(m.to_string(), "2026-07-01T09:30:00Z");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"2026-07-01T09:30:00Z\"");
        let packed = rmp_serde::to_vec(&m).unwrap();
        assert_eq!(rmp_serde::from_slice::<Millis>(&packed).unwrap(), m);
        assert_eq!(
            Millis::parse("2026-07-01").unwrap().0 + 9 * 3_600_000 + 30 * 60_000,
            m.0
        );
        assert!(Millis::parse("July first").is_err());
    }

    #[test]
    fn field_values_parse_from_the_command_line() {
        assert_eq!(FieldValue::parse_cli("yes"), FieldValue::Bool(true));
        assert_eq!(FieldValue::parse_cli("12000"), FieldValue::Number(12000.0));
        assert_eq!(
            FieldValue::parse_cli("Acme"),
            FieldValue::Text("Acme".into())
        );
    }
}
