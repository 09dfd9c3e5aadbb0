//! The SDK's own types: what a plugin reads and returns, with helpers for
//! the questions plugins ask most. Plain Rust, so plugin logic can be unit
//! tested natively.
//!
//! An input is read where the host put it: text stays in the one string
//! the host sent (see the interface's `span`), and the SDK's types hand out
//! `&str`s into it. Reading a field or an activity allocates nothing, which
//! matters in a plugin, where every instruction is metered.

use std::rc::Rc;

use crate::bindings::stagecoach::plugin::types as t;

/// Milliseconds in one day.
const DAY_MS: f64 = 86_400_000.0;

/// A field, config or data value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Text.
    Text(&'a str),
    /// A number.
    Number(f64),
    /// A yes/no answer.
    Boolean(bool),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}

impl From<f64> for Value<'_> {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<i32> for Value<'_> {
    fn from(n: i32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl Value<'_> {
    /// As a number (numeric text counts).
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Boolean(_) => None,
        }
    }
}

/// A number as people write it: `120`, not `120.0`; `0.25` stays.
///
/// Whole numbers are written as integers, which inside a plugin is also
/// several times cheaper than formatting a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Num {
    /// Appends the number to `out` as it displays, without the formatting
    /// machinery: in a plugin, where every instruction is metered, this is
    /// several times cheaper than `write!` for whole numbers.
    pub fn push_to(self, out: &mut String) {
        match self.integer() {
            Some((digits, at)) => out.extend(digits[at..].iter().map(|&b| char::from(b))),
            None => {
                use std::fmt::Write as _;
                // Writing to a String cannot fail.
                let _ = write!(out, "{}", self.0);
            }
        }
    }

    /// A whole number's digits (and sign) at the end of a buffer, and where
    /// they start.
    fn integer(self) -> Option<([u8; 17], usize)> {
        let n = self.0;
        if n.fract() != 0.0 || n.abs() >= 1e15 {
            return None;
        }
        let mut digits = [0u8; 17];
        let mut at = digits.len();
        let mut rest = n.abs() as u64;
        // Two digits per division, and 32-bit division (a multiplication in
        // wasm) once the rest fits: 64-bit division is slow, and metered.
        while rest > u64::from(u32::MAX) {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let mut rest = rest as u32;
        while rest >= 100 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if rest >= 10 {
            let pair = rest as usize * 2;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            at -= 1;
            digits[at] = b'0' + rest as u8;
        }
        if n < 0.0 {
            at -= 1;
            digits[at] = b'-';
        }
        Some((digits, at))
    }
}

/// "00" to "99".
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("ASCII digits")
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.integer() {
            // One `write_str`, none of the formatter's padding machinery.
            Some((digits, at)) => f.write_str(ascii(&digits[at..])),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Who performed an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The prospect.
    Prospect,
    /// The sales rep.
    Rep,
}

/// One input's text and entries (see the interface's `span` and `range`),
/// shared by everything read from it.
#[derive(Debug, Clone, Default)]
struct Pool(Rc<PoolData>);

#[derive(Debug, Clone, Default)]
struct PoolData {
    text: String,
    entries: Vec<t::Entry>,
}

impl Pool {
    /// The text of a span. Spans and ranges from the host are checked once
    /// when the input arrives ([`Pool::check`]); the SDK makes the others
    /// itself.
    fn get(&self, s: t::Span) -> &str {
        &self.0.text[span(s)]
    }

    /// The entries of a range.
    fn run(&self, r: t::Range) -> Entries<'_> {
        Entries {
            text: &self.0.text,
            list: &self.0.entries[range(r)],
        }
    }

    /// Appends `s` to the text (for inputs built in tests).
    fn push(&mut self, s: &str) -> t::Span {
        let text = &mut Rc::make_mut(&mut self.0).text;
        let start = text.len() as u32;
        text.push_str(s);
        t::Span {
            start,
            len: s.len() as u32,
        }
    }

    /// Appends a named value to the run `r`, first moving the run to the
    /// end of the entries if something was appended after it.
    fn append(&mut self, r: &mut t::Range, name: &str, value: Value) {
        let entry = t::Entry {
            name: self.push(name),
            value: match value {
                Value::Text(s) => t::Value::Text(self.push(s)),
                Value::Number(n) => t::Value::Number(n),
                Value::Boolean(b) => t::Value::Boolean(b),
            },
        };
        let entries = &mut Rc::make_mut(&mut self.0).entries;
        let end = (r.start + r.len) as usize;
        if end != entries.len() {
            let start = entries.len();
            entries.extend_from_within(r.start as usize..end);
            r.start = start as u32;
        }
        entries.push(entry);
        r.len += 1;
    }

    /// Drops the entries named `name` from the run `r` (moving it to the end).
    fn remove(&mut self, r: &mut t::Range, name: &str) {
        let kept: Vec<t::Entry> = self
            .run(*r)
            .list
            .iter()
            .filter(|e| self.get(e.name) != name)
            .copied()
            .collect();
        let entries = &mut Rc::make_mut(&mut self.0).entries;
        *r = t::Range {
            start: entries.len() as u32,
            len: kept.len() as u32,
        };
        entries.extend(kept);
    }

    /// Whether a span from the host lies inside the text, on character
    /// boundaries.
    fn check(&self, s: t::Span) -> Result<(), String> {
        match self.0.text.get(span(s)) {
            Some(_) => Ok(()),
            None => Err(malformed("a span outside the text")),
        }
    }

    /// Whether a range from the host lies inside the entries.
    fn check_range(&self, r: t::Range) -> Result<(), String> {
        match self.0.entries.get(range(r)) {
            Some(_) => Ok(()),
            None => Err(malformed("a range outside the entries")),
        }
    }

    /// The text and entries of an input from the host, with every entry's
    /// spans checked.
    fn arrived(text: String, entries: Vec<t::Entry>) -> Result<Pool, String> {
        let pool = Pool(Rc::new(PoolData { text, entries }));
        pool.check_entries()?;
        Ok(pool)
    }

    /// Checks every entry's spans.
    fn check_entries(&self) -> Result<(), String> {
        for e in &self.0.entries {
            self.check(e.name)?;
            if let t::Value::Text(s) = e.value {
                self.check(s)?;
            }
        }
        Ok(())
    }
}

/// The bytes of the text a span covers (saturating: a span from the host
/// may point anywhere until it is checked).
fn span(s: t::Span) -> std::ops::Range<usize> {
    let start = s.start as usize;
    start..start.saturating_add(s.len as usize)
}

/// The entries a range covers (see [`span`]).
fn range(r: t::Range) -> std::ops::Range<usize> {
    let start = r.start as usize;
    start..start.saturating_add(r.len as usize)
}

/// The error for an input the host should never send.
fn malformed(what: &str) -> String {
    format!("malformed input from the host: {what}")
}

/// Named values in an input.
#[derive(Clone, Copy)]
struct Entries<'a> {
    text: &'a str,
    list: &'a [t::Entry],
}

impl<'a> Entries<'a> {
    fn text(self, s: t::Span) -> &'a str {
        &self.text[span(s)]
    }

    fn value(self, v: t::Value) -> Value<'a> {
        match v {
            t::Value::Text(s) => Value::Text(self.text(s)),
            t::Value::Number(n) => Value::Number(n),
            t::Value::Boolean(b) => Value::Boolean(b),
        }
    }

    fn get(self, name: &str) -> Option<Value<'a>> {
        // Lengths first, then bytes: most names differ in length, and
        // comparing bytes skips slicing the text at character boundaries.
        let bytes = self.text.as_bytes();
        self.list
            .iter()
            .find(|e| {
                e.name.len as usize == name.len() && {
                    let start = e.name.start as usize;
                    &bytes[start..start + name.len()] == name.as_bytes()
                }
            })
            .map(|e| self.value(e.value))
    }

    fn iter(self) -> impl Iterator<Item = (&'a str, Value<'a>)> + 'a {
        self.list
            .iter()
            .map(move |e| (self.text(e.name), self.value(e.value)))
    }
}

impl std::fmt::Debug for Entries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// One activity of the prospect's log.
#[derive(Debug, Clone, Copy)]
pub struct Activity<'a> {
    /// What happened.
    pub kind: &'a str,
    /// Who did it.
    pub actor: Actor,
    /// When (UTC milliseconds).
    pub at: i64,
    data: Entries<'a>,
}

impl<'a> Activity<'a> {
    /// A datum by name.
    pub fn datum(&self, name: &str) -> Option<Value<'a>> {
        self.data.get(name)
    }

    /// The scalar data recorded with it.
    pub fn data(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + 'a {
        self.data.iter()
    }
}

/// The prospect a criterion or checklist is evaluated for.
#[derive(Clone)]
pub struct Prospect {
    pool: Pool,
    p: t::Prospect,
}

impl std::fmt::Debug for Prospect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prospect")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("stage", &self.stage())
            .field("status", &self.status())
            .field("fields", &self.entries())
            .field("activities", &self.activities().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Prospect {
    /// An open prospect in `stage`, for tests.
    pub fn new(stage: &str) -> Prospect {
        let mut pool = Pool::default();
        let name = pool.push("Test prospect");
        let stage = pool.push(stage);
        Prospect {
            pool,
            p: t::Prospect {
                id: 1,
                name,
                company: None,
                owner: None,
                stage,
                status: t::Status::Open,
                created_at: 0,
                stage_entered_at: 0,
                fields: t::Range { start: 0, len: 0 },
                activities: Vec::new(),
                activities_truncated: false,
            },
        }
    }

    /// With a field set.
    pub fn with_field<'v>(mut self, name: &str, value: impl Into<Value<'v>>) -> Prospect {
        self.pool.remove(&mut self.p.fields, name);
        self.pool.append(&mut self.p.fields, name, value.into());
        self
    }

    /// With an activity appended.
    pub fn with_activity(mut self, kind: &str, actor: Actor, at: i64) -> Prospect {
        let kind = self.pool.push(kind);
        self.p.activities.push(t::Activity {
            kind,
            actor: match actor {
                Actor::Prospect => t::Actor::Prospect,
                Actor::Rep => t::Actor::Rep,
            },
            at,
            data: t::Range { start: 0, len: 0 },
        });
        self
    }

    /// With a datum on the last activity appended.
    pub fn with_datum<'v>(mut self, name: &str, value: impl Into<Value<'v>>) -> Prospect {
        if let Some(last) = self.p.activities.last_mut() {
            self.pool.append(&mut last.data, name, value.into());
        }
        self
    }

    /// With a prospect action appended at `at`.
    pub fn with_action(self, kind: &str, at: i64) -> Prospect {
        self.with_activity(kind, Actor::Prospect, at)
    }

    /// Entered its stage at `at`.
    pub fn entered_stage_at(mut self, at: i64) -> Prospect {
        self.p.stage_entered_at = at;
        self
    }

    /// The daemon's id.
    pub fn id(&self) -> u64 {
        self.p.id
    }

    /// Name.
    pub fn name(&self) -> &str {
        self.pool.get(self.p.name)
    }

    /// Company.
    pub fn company(&self) -> Option<&str> {
        self.p.company.map(|s| self.pool.get(s))
    }

    /// Owning rep.
    pub fn owner(&self) -> Option<&str> {
        self.p.owner.map(|s| self.pool.get(s))
    }

    /// Current stage id.
    pub fn stage(&self) -> &str {
        self.pool.get(self.p.stage)
    }

    /// `open`, `won` or `lost`.
    pub fn status(&self) -> &'static str {
        status(self.p.status)
    }

    /// Creation time (UTC ms).
    pub fn created_at(&self) -> i64 {
        self.p.created_at
    }

    /// When it entered its stage (UTC ms).
    pub fn stage_entered_at(&self) -> i64 {
        self.p.stage_entered_at
    }

    /// Whether older activities were left out by the host's input limit.
    pub fn activities_truncated(&self) -> bool {
        self.p.activities_truncated
    }

    fn entries(&self) -> Entries<'_> {
        self.pool.run(self.p.fields)
    }

    /// The fields, by name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        self.entries().iter()
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<Value<'_>> {
        self.entries().get(name)
    }

    /// A field as a number (numeric text counts).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.field(name)?.number()
    }

    /// A field as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.field(name)? {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// True when a yes/no field is yes.
    pub fn yes(&self, name: &str) -> bool {
        matches!(self.field(name), Some(Value::Boolean(true)))
    }

    /// True when a field has a non-empty value.
    pub fn has_field(&self, name: &str) -> bool {
        match self.field(name) {
            Some(Value::Text(t)) => !t.trim().is_empty(),
            Some(_) => true,
            None => false,
        }
    }

    /// The most recent activities, oldest first.
    pub fn activities(&self) -> impl DoubleEndedIterator<Item = Activity<'_>> + Clone {
        let pool = &self.pool;
        self.p.activities.iter().map(move |a| Activity {
            kind: pool.get(a.kind),
            actor: match a.actor {
                t::Actor::Prospect => Actor::Prospect,
                t::Actor::Rep => Actor::Rep,
            },
            at: a.at,
            data: pool.run(a.data),
        })
    }

    /// Activities of `kind` by anyone.
    pub fn activities_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = Activity<'a>> + 'a {
        self.activities().filter(move |a| a.kind == kind)
    }

    /// True when the prospect itself did `kind` at least once.
    pub fn did(&self, kind: &str) -> bool {
        self.activities_of(kind).any(|a| a.actor == Actor::Prospect)
    }

    /// True when anyone recorded `kind` at least once.
    pub fn has_activity(&self, kind: &str) -> bool {
        self.activities_of(kind).next().is_some()
    }

    /// How many `kind` activities (by anyone).
    pub fn count(&self, kind: &str) -> usize {
        self.activities_of(kind).count()
    }

    /// How many `kind` activities since the prospect entered its stage.
    pub fn count_since_stage_entry(&self, kind: &str) -> usize {
        self.activities_of(kind)
            .filter(|a| a.at >= self.p.stage_entered_at)
            .count()
    }

    /// The latest `kind` activity.
    pub fn last(&self, kind: &str) -> Option<Activity<'_>> {
        self.activities()
            .filter(|a| a.kind == kind)
            .max_by_key(|a| a.at)
    }

    /// Days in the current stage as of `now`.
    pub fn days_in_stage(&self, now: i64) -> f64 {
        (now - self.p.stage_entered_at) as f64 / DAY_MS
    }
}

/// A plugin's configuration: the `config` table of its criterion (or of its
/// `[[plugins]]` entry) in `process.toml`.
#[derive(Clone)]
pub struct Config {
    pool: Pool,
    range: t::Range,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool: Pool::default(),
            range: t::Range { start: 0, len: 0 },
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.view().fmt(f)
    }
}

impl Config {
    /// With an entry, for tests.
    pub fn with<'v>(mut self, name: &str, value: impl Into<Value<'v>>) -> Config {
        self.pool.append(&mut self.range, name, value.into());
        self
    }

    fn view(&self) -> Entries<'_> {
        self.pool.run(self.range)
    }

    /// Entries in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        self.view().iter()
    }

    /// An entry by name.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        self.view().get(name)
    }

    /// A number entry.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// A text entry.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A yes/no entry.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Boolean(b) => Some(b),
            _ => None,
        }
    }

    /// A comma-separated text entry as a list (`"saas, fintech"`).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.items(name).map(str::to_string).collect()
    }

    /// The items of a comma-separated text entry, trimmed, without
    /// allocating (empty when the entry is missing or not text).
    pub fn items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + Clone + 'a {
        self.text(name)
            .unwrap_or_default()
            // A char set rather than `','`: for short lists scanning
            // characters is cheaper than the memchr-based search.
            .split([','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// What an exit criterion or checklist is evaluated on.
#[derive(Debug, Clone)]
pub struct Input {
    /// The prospect.
    pub prospect: Prospect,
    /// The evaluation time (UTC ms), from the host.
    pub now: i64,
    /// The plugin's configuration.
    pub config: Config,
}

impl Input {
    /// An input for tests.
    pub fn new(prospect: Prospect, now: i64, config: Config) -> Input {
        Input {
            prospect,
            now,
            config,
        }
    }
}

/// An exit criterion's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the criterion is met.
    pub met: bool,
    /// Why, in words.
    pub reason: String,
}

impl Verdict {
    /// Met, because `reason`.
    pub fn met(reason: impl Into<String>) -> Verdict {
        Verdict {
            met: true,
            reason: reason.into(),
        }
    }

    /// Unmet, because `reason`.
    pub fn unmet(reason: impl Into<String>) -> Verdict {
        Verdict {
            met: false,
            reason: reason.into(),
        }
    }
}

/// One checklist item.
#[derive(Debug, Clone, PartialEq)]
pub struct ChecklistItem {
    /// Stable id.
    pub id: String,
    /// What the item asks.
    pub label: String,
    /// Whether it is done.
    pub done: bool,
    /// What shows it is done, or what is missing.
    pub evidence: String,
}

impl ChecklistItem {
    /// An item.
    pub fn new(id: &str, label: &str, done: bool, evidence: impl Into<String>) -> ChecklistItem {
        ChecklistItem {
            id: id.into(),
            label: label.into(),
            done,
            evidence: evidence.into(),
        }
    }

    /// Done when the prospect did `kind`; the evidence says when, or what is missing.
    pub fn prospect_did(id: &str, label: &str, p: &Prospect, kind: &str) -> ChecklistItem {
        let last = p
            .activities_of(kind)
            .filter(|a| a.actor == Actor::Prospect)
            .max_by_key(|a| a.at);
        match last {
            Some(a) => ChecklistItem::new(
                id,
                label,
                true,
                format!("`{kind}` recorded (at {} ms)", a.at),
            ),
            None => {
                ChecklistItem::new(id, label, false, format!("no `{kind}` by the prospect yet"))
            }
        }
    }

    /// Done when anyone recorded `kind`.
    pub fn recorded(id: &str, label: &str, p: &Prospect, kind: &str) -> ChecklistItem {
        match p.last(kind) {
            Some(a) => ChecklistItem::new(
                id,
                label,
                true,
                format!("`{kind}` recorded (at {} ms)", a.at),
            ),
            None => ChecklistItem::new(id, label, false, format!("no `{kind}` recorded yet")),
        }
    }

    /// Done when the field has a value (yes/no fields: when yes).
    pub fn field(id: &str, label: &str, p: &Prospect, name: &str) -> ChecklistItem {
        match p.field(name) {
            Some(Value::Boolean(true)) => {
                ChecklistItem::new(id, label, true, format!("`{name}` is yes"))
            }
            Some(Value::Boolean(false)) => {
                ChecklistItem::new(id, label, false, format!("`{name}` is no"))
            }
            Some(Value::Text(t)) if !t.trim().is_empty() => {
                ChecklistItem::new(id, label, true, format!("`{name}`: {t}"))
            }
            Some(Value::Number(n)) => {
                ChecklistItem::new(id, label, true, format!("`{name}`: {}", Num(n)))
            }
            _ => ChecklistItem::new(id, label, false, format!("`{name}` is not set")),
        }
    }

    /// Done when either item is done.
    pub fn either(a: ChecklistItem, b: ChecklistItem) -> ChecklistItem {
        if a.done {
            a
        } else if b.done {
            ChecklistItem {
                id: a.id,
                label: a.label,
                ..b
            }
        } else {
            a
        }
    }
}

/// A prospect as a metric plugin sees it.
#[derive(Debug, Clone, Copy)]
pub struct ProspectSummary<'a> {
    /// The daemon's id.
    pub id: u64,
    /// Owning rep.
    pub owner: Option<&'a str>,
    /// Stage (for closed prospects: the stage they closed from).
    pub stage: &'a str,
    /// `open`, `won` or `lost`.
    pub status: &'static str,
    /// Creation time (UTC ms).
    pub created_at: i64,
    /// Close time (UTC ms).
    pub closed_at: Option<i64>,
    /// The stage's win probability, if the process sets one.
    pub stage_probability: Option<f64>,
    fields: Entries<'a>,
}

impl<'a> ProspectSummary<'a> {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<Value<'a>> {
        self.fields.get(name)
    }

    /// A field as a number (numeric text counts).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.field(name)?.number()
    }

    /// The fields, by name.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, Value<'a>)> + 'a {
        self.fields.iter()
    }
}

/// A stage change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition<'a> {
    /// The prospect.
    pub prospect: u64,
    /// The stage left.
    pub from: Option<&'a str>,
    /// The stage entered, `won` or `lost`.
    pub to: &'a str,
    /// When (UTC ms).
    pub at: i64,
    /// `created`, `advanced`, `forced`, `won`, `lost`, …
    pub kind: &'a str,
}

/// What a metric plugin folds over.
#[derive(Clone)]
pub struct MetricInput {
    /// The evaluation time (UTC ms).
    pub now: i64,
    /// The plugin's configuration.
    pub config: Config,
    pool: Pool,
    prospects: Vec<t::ProspectSummary>,
    transitions: Vec<t::Transition>,
}

impl std::fmt::Debug for MetricInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricInput")
            .field("now", &self.now)
            .field("config", &self.config)
            .field("prospects", &self.prospects().collect::<Vec<_>>())
            .field("transitions", &self.transitions().collect::<Vec<_>>())
            .finish()
    }
}

impl MetricInput {
    /// An input without prospects or transitions, for tests.
    pub fn new(now: i64, config: Config) -> MetricInput {
        MetricInput {
            now,
            config,
            pool: Pool::default(),
            prospects: Vec::new(),
            transitions: Vec::new(),
        }
    }

    /// With a prospect in `stage`, for tests: `status` is `open`, `won` or
    /// `lost`, and `probability` the stage's win probability.
    pub fn with_prospect(
        mut self,
        owner: Option<&str>,
        stage: &str,
        status: &str,
        probability: Option<f64>,
        fields: &[(&str, Value)],
    ) -> MetricInput {
        let mut range = t::Range { start: 0, len: 0 };
        for (name, value) in fields {
            self.pool.append(&mut range, name, *value);
        }
        let summary = t::ProspectSummary {
            id: self.prospects.len() as u64 + 1,
            owner: owner.map(|o| self.pool.push(o)),
            stage: self.pool.push(stage),
            status: match status {
                "won" => t::Status::Won,
                "lost" => t::Status::Lost,
                _ => t::Status::Open,
            },
            created_at: 0,
            closed_at: None,
            stage_probability: probability,
            fields: range,
        };
        self.prospects.push(summary);
        self
    }

    /// With a transition, for tests.
    pub fn with_transition(mut self, transition: Transition) -> MetricInput {
        let t = t::Transition {
            prospect: transition.prospect,
            from: transition.from.map(|f| self.pool.push(f)),
            to: self.pool.push(transition.to),
            at: transition.at,
            kind: self.pool.push(transition.kind),
        };
        self.transitions.push(t);
        self
    }

    /// The prospects (bounded by the host).
    pub fn prospects(&self) -> impl ExactSizeIterator<Item = ProspectSummary<'_>> + Clone {
        let pool = &self.pool;
        self.prospects.iter().map(move |p| ProspectSummary {
            id: p.id,
            owner: p.owner.map(|s| pool.get(s)),
            stage: pool.get(p.stage),
            status: status(p.status),
            created_at: p.created_at,
            closed_at: p.closed_at,
            stage_probability: p.stage_probability,
            fields: pool.run(p.fields),
        })
    }

    /// The transitions (bounded by the host).
    pub fn transitions(&self) -> impl ExactSizeIterator<Item = Transition<'_>> + Clone {
        let pool = &self.pool;
        self.transitions.iter().map(move |t| Transition {
            prospect: t.prospect,
            from: t.from.map(|s| pool.get(s)),
            to: pool.get(t.to),
            at: t.at,
            kind: pool.get(t.kind),
        })
    }
}

/// One named result of a metric plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// What the number is.
    pub name: String,
    /// Which slice it is for (`owner=maria`), empty for the total.
    pub label: String,
    /// The number.
    pub value: f64,
}

impl MetricValue {
    /// A value.
    pub fn new(name: &str, label: impl Into<String>, value: f64) -> MetricValue {
        MetricValue {
            name: name.into(),
            label: label.into(),
            value,
        }
    }
}

// Conversions from and to the generated bindings.

fn status(s: t::Status) -> &'static str {
    match s {
        t::Status::Open => "open",
        t::Status::Won => "won",
        t::Status::Lost => "lost",
    }
}

impl TryFrom<t::Input> for Input {
    type Error = String;

    /// Takes the host's input as it is, after checking every span and
    /// range once, so that reading it later cannot fail.
    fn try_from(i: t::Input) -> Result<Self, String> {
        let pool = Pool::arrived(i.text, i.entries)?;
        let p = &i.prospect;
        for s in [Some(p.name), p.company, p.owner, Some(p.stage)]
            .into_iter()
            .flatten()
        {
            pool.check(s)?;
        }
        pool.check_range(p.fields)?;
        for a in &p.activities {
            pool.check(a.kind)?;
            pool.check_range(a.data)?;
        }
        pool.check_range(i.config)?;
        Ok(Input {
            prospect: Prospect {
                pool: pool.clone(),
                p: i.prospect,
            },
            now: i.now,
            config: Config {
                pool,
                range: i.config,
            },
        })
    }
}

impl TryFrom<t::MetricInput> for MetricInput {
    type Error = String;

    /// Takes the host's input as it is, after checking every span and
    /// range once.
    fn try_from(i: t::MetricInput) -> Result<Self, String> {
        let pool = Pool::arrived(i.text, i.entries)?;
        pool.check_range(i.config)?;
        for p in &i.prospects {
            for s in [p.owner, Some(p.stage)].into_iter().flatten() {
                pool.check(s)?;
            }
            pool.check_range(p.fields)?;
        }
        for t in &i.transitions {
            for s in [t.from, Some(t.to), Some(t.kind)].into_iter().flatten() {
                pool.check(s)?;
            }
        }
        Ok(MetricInput {
            now: i.now,
            config: Config {
                pool: pool.clone(),
                range: i.config,
            },
            pool,
            prospects: i.prospects,
            transitions: i.transitions,
        })
    }
}

impl From<Verdict> for t::Verdict {
    fn from(v: Verdict) -> Self {
        t::Verdict {
            met: v.met,
            reason: v.reason,
        }
    }
}

impl From<ChecklistItem> for t::ChecklistItem {
    fn from(i: ChecklistItem) -> Self {
        t::ChecklistItem {
            id: i.id,
            label: i.label,
            done: i.done,
            evidence: i.evidence,
        }
    }
}

impl From<MetricValue> for t::MetricValue {
    fn from(v: MetricValue) -> Self {
        t::MetricValue {
            name: v.name,
            label: v.label,
            value: v.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(Num(120.0).to_string(), "120");
        assert_eq!(Num(-3.0).to_string(), "-3");
        assert_eq!(Num(0.0).to_string(), "0");
        assert_eq!(Num(-0.0).to_string(), "0");
        assert_eq!(Num(-999_999_999_999_999.0).to_string(), "-999999999999999");
        assert_eq!(Num(0.25).to_string(), "0.25");
        assert_eq!(Num(1e20).to_string(), "100000000000000000000");
        for n in [
            7_i64,
            10,
            99,
            100,
            101,
            4_294_967_295,
            4_294_967_296,
            123_456_789_012_345,
        ] {
            assert_eq!(Num(n as f64).to_string(), n.to_string());
            assert_eq!(Num(-(n as f64)).to_string(), format!("-{n}"));
        }
        for n in [120.0, -3.0, 0.25, 1e20, -0.5] {
            let mut pushed = String::from("x");
            Num(n).push_to(&mut pushed);
            assert_eq!(pushed, format!("x{}", Num(n)));
        }
    }

    #[test]
    fn helpers_answer_the_common_questions() {
        let p = Prospect::new("connect")
            .entered_stage_at(100)
            .with_field("budget", 12000)
            .with_field("nda", true)
            .with_field("employees", "250")
            .with_action("replied", 50)
            .with_action("replied", 150)
            .with_activity("call_made", Actor::Rep, 160);
        assert_eq!(p.number("budget"), Some(12000.0));
        assert_eq!(p.number("employees"), Some(250.0));
        assert!(p.yes("nda"));
        assert!(p.did("replied"));
        assert!(!p.did("call_made"));
        assert!(p.has_activity("call_made"));
        assert_eq!(p.count("replied"), 2);
        assert_eq!(p.count_since_stage_entry("replied"), 1);
        assert_eq!(p.days_in_stage(100 + 2 * 86_400_000), 2.0);
        let c = Config::default().with("industries", "saas, fintech ,");
        assert_eq!(c.list("industries"), ["saas", "fintech"]);
        assert_eq!(c.items("industries").count(), 2);
        assert_eq!(c.items("missing").count(), 0);
        let item = ChecklistItem::prospect_did("reply", "Replied", &p, "replied");
        assert!(item.done);
        assert!(!ChecklistItem::field("x", "X", &p, "missing").done);
    }

    fn span(start: u32, len: u32) -> t::Span {
        t::Span { start, len }
    }

    fn range(start: u32, len: u32) -> t::Range {
        t::Range { start, len }
    }

    fn wire_input(text: &str, name: t::Span) -> t::Input {
        t::Input {
            text: text.to_string(),
            // A field, an activity datum, a config entry.
            entries: vec![
                t::Entry {
                    name: span(15, 4),
                    value: t::Value::Text(span(19, 5)),
                },
                t::Entry {
                    name: span(15, 4),
                    value: t::Value::Number(2.5),
                },
                t::Entry {
                    name: span(31, 1),
                    value: t::Value::Boolean(true),
                },
            ],
            prospect: t::Prospect {
                id: 3,
                name,
                company: None,
                owner: Some(span(3, 5)),
                stage: span(8, 7),
                status: t::Status::Won,
                created_at: 1,
                stage_entered_at: 2,
                fields: range(0, 1),
                activities: vec![
                    t::Activity {
                        kind: span(24, 7),
                        actor: t::Actor::Prospect,
                        at: 5,
                        data: range(0, 0),
                    },
                    t::Activity {
                        kind: span(24, 7),
                        actor: t::Actor::Rep,
                        at: 6,
                        data: range(1, 1),
                    },
                ],
                activities_truncated: false,
            },
            now: 9,
            config: range(2, 1),
        }
    }

    #[test]
    fn inputs_are_read_where_the_host_put_them() {
        let text = "Adamariaconnecttier€1 repliedx";
        let input = Input::try_from(wire_input(text, span(0, 3))).unwrap();
        let p = &input.prospect;
        assert_eq!((p.id(), p.name(), p.owner()), (3, "Ada", Some("maria")));
        assert_eq!(
            (p.stage(), p.status(), p.company()),
            ("connect", "won", None)
        );
        assert_eq!(p.text("tier"), Some("€1 "));
        assert_eq!(
            p.fields().collect::<Vec<_>>(),
            [("tier", Value::Text("€1 "))]
        );
        let log: Vec<Activity> = p.activities().collect();
        assert_eq!(
            (log[0].kind, log[0].actor, log[0].at),
            ("replied", Actor::Prospect, 5)
        );
        assert_eq!(log[0].data().count(), 0);
        assert_eq!(log[1].datum("tier"), Some(Value::Number(2.5)));
        assert_eq!(p.last("replied").unwrap().at, 6);
        assert!(p.did("replied"));
        assert_eq!(input.config.boolean("x"), Some(true));
        assert_eq!(input.now, 9);
    }

    #[test]
    fn builders_make_the_same_inputs() {
        let p = Prospect::new("connect")
            .with_field("tier", "gold")
            .with_field("tier", 2)
            .with_activity("meeting_held", Actor::Rep, 7)
            .with_datum("minutes", 30)
            .with_datum("topic", "pricing")
            .with_action("replied", 8);
        assert_eq!(
            p.fields().collect::<Vec<_>>(),
            [("tier", Value::Number(2.0))]
        );
        let held = p.last("meeting_held").unwrap();
        assert_eq!(held.datum("minutes").and_then(Value::number), Some(30.0));
        assert_eq!(held.datum("topic"), Some(Value::Text("pricing")));
        assert_eq!(p.last("replied").unwrap().data().count(), 0);
        // Interleaved building keeps every run whole.
        let p = p.with_field("later", "yes").with_datum("after", 1);
        assert_eq!(p.fields().count(), 2);
        assert_eq!(p.text("later"), Some("yes"));
        assert_eq!(
            p.last("replied").unwrap().datum("after"),
            Some(Value::Number(1.0))
        );
        assert_eq!(p.last("meeting_held").unwrap().data().count(), 2);
        // A clone is independent of the original.
        let more = p.clone().with_field("extra", true);
        assert!(more.yes("extra") && !p.has_field("extra"));

        let m = MetricInput::new(0, Config::default())
            .with_prospect(
                Some("maria"),
                "present",
                "won",
                Some(0.5),
                &[("amount", 10.into())],
            )
            .with_prospect(None, "close", "open", None, &[])
            .with_transition(Transition {
                prospect: 1,
                from: Some("present"),
                to: "won",
                at: 3,
                kind: "won",
            });
        let ps: Vec<ProspectSummary> = m.prospects().collect();
        assert_eq!(
            (ps[0].owner, ps[0].status, ps[0].number("amount")),
            (Some("maria"), "won", Some(10.0))
        );
        assert_eq!((ps[1].stage, ps[1].fields().count()), ("close", 0));
        assert_eq!(m.transitions().next().unwrap().from, Some("present"));
    }

    #[test]
    fn a_malformed_input_is_an_error_not_a_panic() {
        let text = "Adamariaconnecttier€1 repliedx";
        // Past the end, inside the three bytes of `€`, and past any end.
        for name in [span(28, 5), span(20, 1), span(u32::MAX, u32::MAX)] {
            let err = Input::try_from(wire_input(text, name)).unwrap_err();
            assert!(err.starts_with("malformed input from the host"), "{err}");
        }
        let mut bad = wire_input(text, span(0, 3));
        bad.prospect.activities[1].data = range(2, 2);
        assert!(Input::try_from(bad).is_err());
    }
}
