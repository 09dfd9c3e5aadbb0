//! The SDK's own types: what a plugin reads and returns, with helpers for
//! the questions plugins ask most. Plain Rust, so plugin logic can be unit
//! tested natively.

use crate::bindings::stagecoach::plugin::types as t;

/// Milliseconds in one day.
const DAY_MS: f64 = 86_400_000.0;

/// A field, config or data value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// A yes/no answer.
    Boolean(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

/// A number as people write it: `120`, not `120.0`; `0.25` stays.
///
/// Whole numbers are written as integers, which inside a plugin is also
/// several times cheaper than formatting a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        if n.fract() == 0.0 && n.abs() < 1e15 {
            // Digits by hand: one `write_str`, none of the formatter's
            // padding machinery (which is most of the cost in wasm).
            let mut digits = [0u8; 17];
            let mut at = digits.len();
            let mut rest = n.abs() as u64;
            loop {
                at -= 1;
                digits[at] = b'0' + (rest % 10) as u8;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            if n < 0.0 {
                at -= 1;
                digits[at] = b'-';
            }
            f.write_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"))
        } else {
            write!(f, "{n}")
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

/// One activity of the prospect's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// What happened.
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// When (UTC milliseconds).
    pub at: i64,
    /// Scalar data recorded with it.
    pub data: Vec<(String, Value)>,
}

impl Activity {
    /// A datum by name.
    pub fn datum(&self, name: &str) -> Option<&Value> {
        self.data.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// The prospect a criterion or checklist is evaluated for.
#[derive(Debug, Clone, PartialEq)]
pub struct Prospect {
    /// The daemon's id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Owning rep.
    pub owner: Option<String>,
    /// Current stage id.
    pub stage: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Creation time (UTC ms).
    pub created_at: i64,
    /// When it entered its stage (UTC ms).
    pub stage_entered_at: i64,
    /// Fields.
    pub fields: Vec<(String, Value)>,
    /// The most recent activities, oldest first.
    pub activities: Vec<Activity>,
    /// Older activities were left out by the host's input limit.
    pub activities_truncated: bool,
}

impl Prospect {
    /// An open prospect in `stage`, for tests.
    pub fn new(stage: &str) -> Prospect {
        Prospect {
            id: 1,
            name: "Test prospect".into(),
            company: None,
            owner: None,
            stage: stage.into(),
            status: "open".into(),
            created_at: 0,
            stage_entered_at: 0,
            fields: Vec::new(),
            activities: Vec::new(),
            activities_truncated: false,
        }
    }

    /// With a field set.
    pub fn with_field(mut self, name: &str, value: impl Into<Value>) -> Prospect {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.into(), value.into()));
        self
    }

    /// With an activity appended.
    pub fn with_activity(mut self, kind: &str, actor: Actor, at: i64) -> Prospect {
        self.activities.push(Activity {
            kind: kind.into(),
            actor,
            at,
            data: Vec::new(),
        });
        self
    }

    /// With a prospect action appended at `at`.
    pub fn with_action(self, kind: &str, at: i64) -> Prospect {
        self.with_activity(kind, Actor::Prospect, at)
    }

    /// Entered its stage at `at`.
    pub fn entered_stage_at(mut self, at: i64) -> Prospect {
        self.stage_entered_at = at;
        self
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A field as a number (numeric text counts).
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.field(name)? {
            Value::Number(n) => Some(*n),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Boolean(_) => None,
        }
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

    /// Activities of `kind` by anyone.
    pub fn activities_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Activity> + 'a {
        self.activities.iter().filter(move |a| a.kind == kind)
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
            .filter(|a| a.at >= self.stage_entered_at)
            .count()
    }

    /// The latest `kind` activity.
    pub fn last(&self, kind: &str) -> Option<&Activity> {
        self.activities
            .iter()
            .filter(|a| a.kind == kind)
            .max_by_key(|a| a.at)
    }

    /// Days in the current stage as of `now`.
    pub fn days_in_stage(&self, now: i64) -> f64 {
        (now - self.stage_entered_at) as f64 / DAY_MS
    }
}

/// A plugin's configuration: the `config` table of its criterion (or of its
/// `[[plugins]]` entry) in `process.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Entries in file order.
    pub entries: Vec<(String, Value)>,
}

impl Config {
    /// With an entry, for tests.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Config {
        self.entries.push((name.into(), value.into()));
        self
    }

    /// An entry by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A number entry.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            Value::Number(n) => Some(*n),
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
            Value::Boolean(b) => Some(*b),
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
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// What an exit criterion or checklist is evaluated on.
#[derive(Debug, Clone, PartialEq)]
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
            .activities
            .iter()
            .filter(|a| a.kind == kind && a.actor == Actor::Prospect)
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
                ChecklistItem::new(id, label, true, format!("`{name}`: {}", Num(*n)))
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
#[derive(Debug, Clone, PartialEq)]
pub struct ProspectSummary {
    /// The daemon's id.
    pub id: u64,
    /// Owning rep.
    pub owner: Option<String>,
    /// Stage (for closed prospects: the stage they closed from).
    pub stage: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Creation time (UTC ms).
    pub created_at: i64,
    /// Close time (UTC ms).
    pub closed_at: Option<i64>,
    /// The stage's win probability, if the process sets one.
    pub stage_probability: Option<f64>,
    /// Fields.
    pub fields: Vec<(String, Value)>,
}

impl ProspectSummary {
    /// A field as a number.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                Value::Number(n) => Some(*n),
                Value::Text(t) => t.trim().parse().ok(),
                Value::Boolean(_) => None,
            })
    }
}

/// A stage change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The prospect.
    pub prospect: u64,
    /// The stage left.
    pub from: Option<String>,
    /// The stage entered, `won` or `lost`.
    pub to: String,
    /// When (UTC ms).
    pub at: i64,
    /// `created`, `advanced`, `forced`, `won`, `lost`, …
    pub kind: String,
}

/// What a metric plugin folds over.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInput {
    /// The evaluation time (UTC ms).
    pub now: i64,
    /// The plugin's configuration.
    pub config: Config,
    /// Prospects (bounded by the host).
    pub prospects: Vec<ProspectSummary>,
    /// Transitions (bounded by the host).
    pub transitions: Vec<Transition>,
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

/// Reads an input's spans back into strings (see the interface's `span`).
struct Text<'a>(&'a str);

/// The error for an input the host should never send.
fn malformed(what: &str) -> String {
    format!("malformed input from the host: {what}")
}

impl Text<'_> {
    fn str(&self, s: t::Span) -> Result<String, String> {
        let start = s.start as usize;
        self.0
            .get(start..start + s.len as usize)
            .map(str::to_string)
            .ok_or_else(|| malformed("a span outside the text"))
    }

    fn opt(&self, s: Option<t::Span>) -> Result<Option<String>, String> {
        s.map(|s| self.str(s)).transpose()
    }

    fn value(&self, v: t::Value) -> Result<Value, String> {
        Ok(match v {
            t::Value::Text(s) => Value::Text(self.str(s)?),
            t::Value::Number(n) => Value::Number(n),
            t::Value::Boolean(b) => Value::Boolean(b),
        })
    }

    fn entries(&self, list: &[t::Entry]) -> Result<Vec<(String, Value)>, String> {
        // Plain loops here and below: collecting into a `Result` measurably
        // costs more in a plugin, where every instruction is metered.
        let mut entries = Vec::with_capacity(list.len());
        for e in list {
            entries.push((self.str(e.name)?, self.value(e.value)?));
        }
        Ok(entries)
    }

    /// `len` entries of `pool` from `start`.
    fn slice(
        &self,
        pool: &[t::Entry],
        start: u32,
        len: u32,
    ) -> Result<Vec<(String, Value)>, String> {
        let start = start as usize;
        let part = pool
            .get(start..start + len as usize)
            .ok_or_else(|| malformed("entries outside their list"))?;
        self.entries(part)
    }
}

fn status(s: t::Status) -> String {
    match s {
        t::Status::Open => "open",
        t::Status::Won => "won",
        t::Status::Lost => "lost",
    }
    .to_string()
}

impl From<t::Actor> for Actor {
    fn from(a: t::Actor) -> Self {
        match a {
            t::Actor::Prospect => Actor::Prospect,
            t::Actor::Rep => Actor::Rep,
        }
    }
}

impl TryFrom<t::Input> for Input {
    type Error = String;

    fn try_from(i: t::Input) -> Result<Self, String> {
        let text = Text(&i.text);
        let p = i.prospect;
        let mut prospect = Prospect {
            id: p.id,
            name: text.str(p.name)?,
            company: text.opt(p.company)?,
            owner: text.opt(p.owner)?,
            stage: text.str(p.stage)?,
            status: status(p.status),
            created_at: p.created_at,
            stage_entered_at: p.stage_entered_at,
            fields: text.entries(&p.fields)?,
            activities: Vec::with_capacity(p.activities.len()),
            activities_truncated: p.activities_truncated,
        };
        for a in &p.activities {
            prospect.activities.push(Activity {
                kind: text.str(a.kind)?,
                actor: a.actor.into(),
                at: a.at,
                data: text.slice(&p.activity_data, a.data_start, a.data_len)?,
            });
        }
        Ok(Input {
            prospect,
            now: i.now,
            config: Config {
                entries: text.entries(&i.config)?,
            },
        })
    }
}

impl TryFrom<t::MetricInput> for MetricInput {
    type Error = String;

    fn try_from(i: t::MetricInput) -> Result<Self, String> {
        let text = Text(&i.text);
        let mut input = MetricInput {
            now: i.now,
            config: Config {
                entries: text.entries(&i.config)?,
            },
            prospects: Vec::with_capacity(i.prospects.len()),
            transitions: Vec::with_capacity(i.transitions.len()),
        };
        for p in &i.prospects {
            input.prospects.push(ProspectSummary {
                id: p.id,
                owner: text.opt(p.owner)?,
                stage: text.str(p.stage)?,
                status: status(p.status),
                created_at: p.created_at,
                closed_at: p.closed_at,
                stage_probability: p.stage_probability,
                fields: text.slice(&i.fields, p.fields_start, p.fields_len)?,
            });
        }
        for t in &i.transitions {
            input.transitions.push(Transition {
                prospect: t.prospect,
                from: text.opt(t.from)?,
                to: text.str(t.to)?,
                at: t.at,
                kind: text.str(t.kind)?,
            });
        }
        Ok(input)
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

    fn wire_input(text: &str, name: t::Span) -> t::Input {
        t::Input {
            text: text.to_string(),
            prospect: t::Prospect {
                id: 3,
                name,
                company: None,
                owner: Some(span(3, 5)),
                stage: span(8, 7),
                status: t::Status::Won,
                created_at: 1,
                stage_entered_at: 2,
                fields: vec![t::Entry {
                    name: span(15, 4),
                    value: t::Value::Text(span(19, 5)),
                }],
                activities: vec![
                    t::Activity {
                        kind: span(24, 7),
                        actor: t::Actor::Prospect,
                        at: 5,
                        data_start: 0,
                        data_len: 0,
                    },
                    t::Activity {
                        kind: span(24, 7),
                        actor: t::Actor::Rep,
                        at: 6,
                        data_start: 0,
                        data_len: 1,
                    },
                ],
                activity_data: vec![t::Entry {
                    name: span(15, 4),
                    value: t::Value::Number(2.5),
                }],
                activities_truncated: false,
            },
            now: 9,
            config: vec![t::Entry {
                name: span(31, 1),
                value: t::Value::Boolean(true),
            }],
        }
    }

    #[test]
    fn spans_become_strings() {
        let text = "Adamariaconnecttier€1 repliedx";
        let input = Input::try_from(wire_input(text, span(0, 3))).unwrap();
        let p = &input.prospect;
        assert_eq!(
            (p.name.as_str(), p.owner.as_deref()),
            ("Ada", Some("maria"))
        );
        assert_eq!((p.stage.as_str(), p.status.as_str()), ("connect", "won"));
        assert_eq!(p.text("tier"), Some("€1 "));
        assert_eq!(p.activities[0].kind, "replied");
        assert!(p.activities[0].data.is_empty());
        assert_eq!(p.activities[1].datum("tier"), Some(&Value::Number(2.5)));
        assert_eq!(input.config.boolean("x"), Some(true));
        assert_eq!(input.now, 9);
    }

    #[test]
    fn a_malformed_input_is_an_error_not_a_panic() {
        let text = "Adamariaconnecttier€1 repliedx";
        // Past the end, and inside the three bytes of `€`.
        for name in [span(28, 5), span(20, 1)] {
            let err = Input::try_from(wire_input(text, name)).unwrap_err();
            assert!(err.starts_with("malformed input from the host"), "{err}");
        }
        let mut bad = wire_input(text, span(0, 3));
        bad.prospect.activities[1].data_start = 1;
        assert!(Input::try_from(bad).is_err());
    }
}
