//! What plugins are given: the daemon's records turned into the interface's
//! types, bounded by the plugin's input limit.
//!
//! All the text of one input goes into one string, and records point into
//! it with spans (see `types.wit`): the canonical ABI copies each string
//! and list into the plugin with a call to its allocator, so an input is a
//! handful of copies instead of one per name, stage and field.

use std::cell::RefCell;
use std::collections::HashMap;

use stagecoach_types::model::{Activity, Actor, FieldValue, Millis, Prospect, Status, Transition};

use super::bindings::stagecoach::plugin::types as wit;

/// The inputs of an exit criterion or checklist call.
#[derive(Debug, Clone)]
pub struct CallInput<'a> {
    /// The prospect.
    pub prospect: &'a Prospect,
    /// Its activities, oldest first.
    pub activities: &'a [Activity],
    /// The evaluation time.
    pub now: Millis,
    /// The criterion's config merged over the plugin's.
    pub config: &'a [(String, FieldValue)],
}

impl CallInput<'_> {
    /// A digest of everything a plugin can see of this input (the activities
    /// only if it reads them): plugins have no clock, randomness or I/O, so
    /// equal digests mean equal answers, and an answer can be reused.
    pub fn fingerprint(&self, reads_activities: bool) -> [u8; 32] {
        fn text(h: &mut blake3::Hasher, s: &str) {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        fn opt(h: &mut blake3::Hasher, s: Option<&str>) {
            match s {
                None => {
                    h.update(&[0]);
                }
                Some(s) => {
                    h.update(&[1]);
                    text(h, s);
                }
            }
        }
        fn value(h: &mut blake3::Hasher, v: &FieldValue) {
            match v {
                FieldValue::Bool(b) => h.update(&[b'b', u8::from(*b)]),
                FieldValue::Number(n) => h.update(b"n").update(&n.to_bits().to_le_bytes()),
                FieldValue::Text(t) => {
                    h.update(b"t");
                    text(h, t);
                    h
                }
            };
        }
        let mut h = blake3::Hasher::new();
        h.update(&self.now.0.to_le_bytes());
        h.update(&(self.config.len() as u64).to_le_bytes());
        for (k, v) in self.config {
            text(&mut h, k);
            value(&mut h, v);
        }
        let p = self.prospect;
        h.update(&p.id.to_le_bytes());
        text(&mut h, &p.name);
        opt(&mut h, p.company.as_deref());
        opt(&mut h, p.owner.as_deref());
        text(&mut h, &p.stage);
        text(&mut h, p.status.as_str());
        h.update(&p.created_at.0.to_le_bytes());
        h.update(&p.stage_entered_at.0.to_le_bytes());
        h.update(&(p.fields.len() as u64).to_le_bytes());
        for (k, v) in &p.fields {
            text(&mut h, k);
            value(&mut h, v);
        }
        if reads_activities {
            h.update(&(self.activities.len() as u64).to_le_bytes());
            for a in self.activities {
                text(&mut h, &a.kind);
                h.update(&[u8::from(
                    a.actor == stagecoach_types::model::Actor::Prospect,
                )]);
                h.update(&a.at.0.to_le_bytes());
                let _ = serde_json::to_writer(&mut h, &a.data);
            }
        }
        *h.finalize().as_bytes()
    }
}

/// One input's text and entries, and spans and ranges into them.
///
/// Inputs are bounded (the input limit for prospects, the row limit for
/// metrics), far below the 4 GiB a `u32` span reaches.
#[derive(Default)]
struct Text<'a> {
    text: String,
    entries: Vec<wit::Entry>,
    /// Pieces already in `text` (metric inputs repeat stages, kinds,
    /// owners and field names thousands of times).
    shared: Option<HashMap<&'a str, wit::Span>>,
}

impl<'a> Text<'a> {
    /// A text that stores each distinct piece once.
    fn interned() -> Text<'a> {
        Text {
            text: String::new(),
            entries: Vec::new(),
            shared: Some(HashMap::new()),
        }
    }

    fn span(&mut self, s: &'a str) -> wit::Span {
        if let Some(span) = self.shared.as_ref().and_then(|m| m.get(s)) {
            return *span;
        }
        let span = wit::Span {
            start: self.text.len() as u32,
            len: s.len() as u32,
        };
        self.text.push_str(s);
        if let Some(shared) = &mut self.shared {
            shared.insert(s, span);
        }
        span
    }

    fn value(&mut self, v: &'a FieldValue) -> wit::Value {
        match v {
            FieldValue::Text(t) => wit::Value::Text(self.span(t)),
            FieldValue::Number(n) => wit::Value::Number(*n),
            FieldValue::Bool(b) => wit::Value::Boolean(*b),
        }
    }

    /// Appends named values to the entries; returns their range.
    fn entries(
        &mut self,
        items: impl IntoIterator<Item = (&'a String, &'a FieldValue)>,
    ) -> wit::Range {
        let start = self.entries.len();
        for (k, v) in items {
            let entry = wit::Entry {
                name: self.span(k),
                value: self.value(v),
            };
            self.entries.push(entry);
        }
        self.range_from(start)
    }

    /// Appends an activity's scalar data (the interface has no nesting);
    /// returns its range.
    fn data(&mut self, data: &'a serde_json::Map<String, serde_json::Value>) -> wit::Range {
        let start = self.entries.len();
        for (name, v) in data {
            let value = match v {
                serde_json::Value::String(s) => wit::Value::Text(self.span(s)),
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(n) => wit::Value::Number(n),
                    None => continue,
                },
                serde_json::Value::Bool(b) => wit::Value::Boolean(*b),
                _ => continue,
            };
            let entry = wit::Entry {
                name: self.span(name),
                value,
            };
            self.entries.push(entry);
        }
        self.range_from(start)
    }

    fn range_from(&self, start: usize) -> wit::Range {
        wit::Range {
            start: start as u32,
            len: (self.entries.len() - start) as u32,
        }
    }
}

fn status(s: Status) -> wit::Status {
    match s {
        Status::Open => wit::Status::Open,
        Status::Won => wit::Status::Won,
        Status::Lost => wit::Status::Lost,
    }
}

/// About how many bytes a value takes in the plugin's input (the input
/// limit's measure; computed without formatting anything).
fn value_size(v: &FieldValue) -> usize {
    match v {
        FieldValue::Text(t) => t.len(),
        FieldValue::Number(_) | FieldValue::Bool(_) => 8,
    }
}

fn approx_size(a: &Activity) -> usize {
    48 + a.kind.len()
        + a.data
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
            .sum::<usize>()
}

/// A call's input, ready to lend to the plugin (see [`WitInput::with`]).
struct WitInput {
    text: String,
    entries: Vec<wit::Entry>,
    id: u64,
    name: wit::Span,
    company: Option<wit::Span>,
    owner: Option<wit::Span>,
    stage: wit::Span,
    status: wit::Status,
    created_at: i64,
    stage_entered_at: i64,
    fields: wit::Range,
    activities: Vec<wit::Activity>,
    truncated: bool,
    now: i64,
    config: wit::Range,
}

impl CallInput<'_> {
    /// The interface's input, keeping the most recent activities that fit
    /// in `max_input_kib`; none when the plugin does not read them
    /// (`activities-truncated` then says they were left out).
    fn to_wit(&self, max_input_kib: u32, with_activities: bool) -> WitInput {
        let mut wit = WitInput::default();
        wit.fill(self, max_input_kib, with_activities);
        wit
    }

    /// Calls `f` with the interface's input (as [`CallInput::to_wit`]),
    /// built in buffers this thread keeps from call to call.
    pub(super) fn with_wit<R>(
        &self,
        max_input_kib: u32,
        with_activities: bool,
        f: impl FnOnce(wit::Input<'_>) -> R,
    ) -> R {
        thread_local! {
            static SCRATCH: RefCell<WitInput> = RefCell::new(WitInput::default());
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut wit) => {
                wit.fill(self, max_input_kib, with_activities);
                let result = wit.with(f);
                wit.trim();
                result
            }
            // Only if `f` itself builds an input on this thread.
            Err(_) => self.to_wit(max_input_kib, with_activities).with(f),
        })
    }
}

impl Default for WitInput {
    fn default() -> Self {
        let none = wit::Span { start: 0, len: 0 };
        let empty = wit::Range { start: 0, len: 0 };
        WitInput {
            text: String::new(),
            entries: Vec::new(),
            id: 0,
            name: none,
            company: None,
            owner: None,
            stage: none,
            status: wit::Status::Open,
            created_at: 0,
            stage_entered_at: 0,
            fields: empty,
            activities: Vec::new(),
            truncated: false,
            now: 0,
            config: empty,
        }
    }
}

/// Above this, a kept buffer is given back after the call.
const KEEP_BYTES: usize = 64 << 10;

impl WitInput {
    /// Replaces the contents with `input` (see [`CallInput::to_wit`]),
    /// reusing the buffers.
    fn fill(&mut self, input: &CallInput, max_input_kib: u32, with_activities: bool) {
        let p = input.prospect;
        let budget = (max_input_kib as usize) << 10;
        let mut used = 256
            + p.name.len()
            + p.fields
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 16)
                .sum::<usize>()
            + input
                .config
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 16)
                .sum::<usize>();
        let mut keep = 0;
        for a in input.activities.iter().rev().filter(|_| with_activities) {
            used += approx_size(a);
            if used > budget {
                break;
            }
            keep += 1;
        }
        let start = input.activities.len() - keep;
        let mut text = Text {
            text: std::mem::take(&mut self.text),
            entries: std::mem::take(&mut self.entries),
            shared: None,
        };
        text.text.clear();
        text.entries.clear();
        text.text.reserve(used.min(budget));
        self.name = text.span(&p.name);
        self.company = p.company.as_deref().map(|c| text.span(c));
        self.owner = p.owner.as_deref().map(|o| text.span(o));
        self.stage = text.span(&p.stage);
        text.entries.reserve(p.fields.len() + input.config.len());
        self.fields = text.entries(&p.fields);
        self.config = text.entries(input.config.iter().map(|(k, v)| (k, v)));
        self.activities.clear();
        self.activities
            .extend(input.activities[start..].iter().map(|a| wit::Activity {
                kind: text.span(&a.kind),
                actor: match a.actor {
                    Actor::Prospect => wit::Actor::Prospect,
                    Actor::Rep => wit::Actor::Rep,
                },
                at: a.at.0,
                data: text.data(&a.data),
            }));
        self.text = text.text;
        self.entries = text.entries;
        self.id = p.id;
        self.status = status(p.status);
        self.created_at = p.created_at.0;
        self.stage_entered_at = p.stage_entered_at.0;
        self.truncated = start > 0 || !with_activities;
        self.now = input.now.0;
    }

    /// Gives back buffers a large input grew.
    fn trim(&mut self) {
        if self.text.capacity() > KEEP_BYTES {
            self.text = String::new();
        }
        if self.entries.capacity() * size_of::<wit::Entry>() > KEEP_BYTES {
            self.entries = Vec::new();
        }
        if self.activities.capacity() * size_of::<wit::Activity>() > KEEP_BYTES {
            self.activities = Vec::new();
        }
    }
}

impl WitInput {
    /// Calls `f` with the interface's input.
    fn with<R>(&self, f: impl FnOnce(wit::Input<'_>) -> R) -> R {
        f(wit::Input {
            text: &self.text,
            entries: &self.entries,
            prospect: wit::Prospect {
                id: self.id,
                name: self.name,
                company: self.company,
                owner: self.owner,
                stage: self.stage,
                status: self.status,
                created_at: self.created_at,
                stage_entered_at: self.stage_entered_at,
                fields: self.fields,
                activities: &self.activities,
                activities_truncated: self.truncated,
            },
            now: self.now,
            config: self.config,
        })
    }
}

/// The inputs of a metric call.
#[derive(Debug, Clone)]
pub struct MetricData {
    /// The evaluation time.
    pub now: Millis,
    /// The plugin's config.
    pub config: Vec<(String, FieldValue)>,
    /// Prospects with their stage's win probability.
    pub prospects: Vec<(Prospect, Option<f64>)>,
    /// Transitions.
    pub transitions: Vec<Transition>,
}

impl MetricData {
    /// Calls `f` with the interface's metric input.
    pub(super) fn with<R>(&self, f: impl FnOnce(wit::MetricInput<'_>) -> R) -> R {
        let mut text = Text::interned();
        let config = text.entries(self.config.iter().map(|(k, v)| (k, v)));
        let prospects: Vec<wit::ProspectSummary> = self
            .prospects
            .iter()
            .map(|(p, probability)| {
                let fields = text.entries(&p.fields);
                wit::ProspectSummary {
                    id: p.id,
                    owner: p.owner.as_deref().map(|o| text.span(o)),
                    stage: text.span(&p.stage),
                    status: status(p.status),
                    created_at: p.created_at.0,
                    closed_at: p.closed_at.map(|m| m.0),
                    stage_probability: *probability,
                    fields,
                }
            })
            .collect();
        let transitions: Vec<wit::Transition> = self
            .transitions
            .iter()
            .map(|t| wit::Transition {
                prospect: t.prospect,
                from: t.from.as_deref().map(|s| text.span(s)),
                to: text.span(&t.to),
                at: t.at.0,
                kind: text.span(t.kind.as_str()),
            })
            .collect();
        f(wit::MetricInput {
            text: &text.text,
            entries: &text.entries,
            now: self.now.0,
            config,
            prospects: &prospects,
            transitions: &transitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_types::model::Status;

    fn prospect() -> Prospect {
        Prospect {
            id: 1,
            external_id: None,
            name: "Ada".into(),
            company: None,
            owner: None,
            fields: [("industry".to_string(), FieldValue::Text("SaaS".into()))].into(),
            stage: "connect".into(),
            status: Status::Open,
            created_at: Millis(0),
            stage_entered_at: Millis(0),
            last_activity_at: Millis(0),
            closed_at: None,
            owner_since: None,
        }
    }

    fn activities(n: u64) -> Vec<Activity> {
        (0..n)
            .map(|i| Activity {
                id: i,
                prospect: 1,
                kind: "replied".into(),
                actor: Actor::Prospect,
                at: Millis(i as i64),
                data: serde_json::json!({ "note": "x".repeat(200), "score": 3, "nested": {} })
                    .as_object()
                    .cloned()
                    .unwrap(),
            })
            .collect()
    }

    #[test]
    fn a_fingerprint_changes_with_anything_the_plugin_can_see_and_nothing_else() {
        let p = prospect();
        let log = activities(3);
        let config = [("min".to_string(), FieldValue::Number(50.0))];
        let input = |p: &Prospect, log: &[Activity], now: i64, config: &[(String, FieldValue)]| {
            CallInput {
                prospect: p,
                activities: log,
                now: Millis(now),
                config,
            }
            .fingerprint(true)
        };
        let base = input(&p, &log, 5, &config);
        assert_eq!(base, input(&p.clone(), &log.clone(), 5, &config));
        // What the plugin does not see: the activity ids, the last activity time.
        let mut renumbered = log.clone();
        renumbered[0].id = 99;
        let mut later = p.clone();
        later.last_activity_at = Millis(77);
        assert_eq!(base, input(&later, &renumbered, 5, &config));
        // What it sees.
        let mut field = p.clone();
        field
            .fields
            .insert("industry".into(), FieldValue::Text("Retail".into()));
        let mut moved = p.clone();
        moved.stage_entered_at = Millis(1);
        let mut data = log.clone();
        data[2].data.insert("score".into(), serde_json::json!(4));
        let other = [("min".to_string(), FieldValue::Number(51.0))];
        for changed in [
            input(&field, &log, 5, &config),
            input(&moved, &log, 5, &config),
            input(&p, &data, 5, &config),
            input(&p, &log[..2], 5, &config),
            input(&p, &log, 6, &config),
            input(&p, &log, 5, &other),
        ] {
            assert_ne!(base, changed);
        }
        // A plugin that does not read activities is not told about them.
        let without = |log: &[Activity]| {
            CallInput {
                prospect: &p,
                activities: log,
                now: Millis(5),
                config: &config,
            }
            .fingerprint(false)
        };
        assert_eq!(without(&log), without(&data));
    }

    #[test]
    fn the_input_limit_keeps_the_most_recent_activities() {
        let p = prospect();
        let log = activities(100);
        let input = CallInput {
            prospect: &p,
            activities: &log,
            now: Millis(0),
            config: &[],
        };
        // Each activity is about 270 bytes: 4 KiB holds about a dozen.
        let wit = input.to_wit(4, true);
        assert!(wit.truncated);
        assert!(
            (10..16).contains(&wit.activities.len()),
            "{}",
            wit.activities.len()
        );
        assert_eq!(wit.activities.last().unwrap().at, 99);
        // Only scalar data is passed, each activity's after the one before
        // (and after the prospect's one field).
        assert_eq!(wit.entries.len(), 1 + 2 * wit.activities.len());
        let last = wit.activities.last().unwrap();
        assert_eq!(last.data.start as usize + 2, wit.entries.len());
        assert_eq!(last.data.len, 2);

        let all = input.to_wit(64, true);
        assert!(!all.truncated);
        assert_eq!(all.activities.len(), 100);

        // A plugin that does not read the log gets none of it, and is told.
        let none = input.to_wit(64, false);
        assert!(none.truncated && none.activities.is_empty());
        none.with(|i| {
            assert!(i.prospect.activities.is_empty() && i.prospect.activities_truncated);
            assert_eq!(i.prospect.fields.len, 1);
            assert_eq!(i.entries.len(), 1);
        });
    }

    /// The text a span points at.
    fn at(text: &str, s: wit::Span) -> &str {
        &text[s.start as usize..(s.start + s.len) as usize]
    }

    /// The entries a range points at.
    fn run(entries: &[wit::Entry], r: wit::Range) -> &[wit::Entry] {
        &entries[r.start as usize..(r.start + r.len) as usize]
    }

    #[test]
    fn spans_point_at_the_records_text() {
        let p = prospect();
        let log = activities(2);
        let config = [("industries".to_string(), FieldValue::Text("saas".into()))];
        let input = CallInput {
            prospect: &p,
            activities: &log,
            now: Millis(5),
            config: &config,
        };
        input.to_wit(64, true).with(|i| {
            let text = i.text;
            assert_eq!(at(text, i.prospect.name), "Ada");
            assert_eq!(at(text, i.prospect.stage), "connect");
            assert!(i.prospect.company.is_none());
            let field = &run(i.entries, i.prospect.fields)[0];
            assert_eq!(at(text, field.name), "industry");
            assert!(matches!(field.value, wit::Value::Text(s) if at(text, s) == "SaaS"));
            let config = run(i.entries, i.config);
            assert!(matches!(config[0].value, wit::Value::Text(s) if at(text, s) == "saas"));
            let second = &i.prospect.activities[1];
            assert_eq!(at(text, second.kind), "replied");
            let data = run(i.entries, second.data);
            assert_eq!(at(text, data[0].name), "note");
            assert!(matches!(data[1].value, wit::Value::Number(n) if n == 3.0));
        });
    }

    #[test]
    fn reused_buffers_hold_only_the_current_input() {
        let big = prospect();
        let log = activities(50);
        let mut small = prospect();
        small.name = "Bo".into();
        small.fields.clear();
        let inputs = [(&big, &log[..]), (&small, &[][..])];
        for (p, log) in inputs.iter().chain(&inputs) {
            let input = CallInput {
                prospect: p,
                activities: log,
                now: Millis(1),
                config: &[],
            };
            input.with_wit(256, true, |i| {
                assert_eq!(at(i.text, i.prospect.name), p.name);
                assert_eq!(i.prospect.fields.len as usize, p.fields.len());
                assert_eq!(i.prospect.activities.len(), log.len());
                assert_eq!(i.entries.len(), p.fields.len() + 2 * log.len());
                // Building another input inside the call uses fresh buffers.
                input.with_wit(256, false, |inner| {
                    assert!(inner.prospect.activities.is_empty());
                    assert_eq!(at(inner.text, inner.prospect.name), p.name);
                });
            });
        }
    }

    #[test]
    fn metric_inputs_store_repeated_text_once() {
        let mut prospects = Vec::new();
        for id in 0..100 {
            let mut p = prospect();
            p.id = id;
            p.owner = Some(format!("rep{}", id % 3));
            prospects.push((p, Some(0.5)));
        }
        let data = MetricData {
            now: Millis(0),
            config: Vec::new(),
            prospects,
            transitions: Vec::new(),
        };
        data.with(|i| {
            assert_eq!(i.prospects.len(), 100);
            assert_eq!(i.entries.len(), 100);
            // "Ada", "connect", "industry", "SaaS" and three owners, once each.
            assert_eq!(i.text.len(), "rep0connectindustrySaaSrep1rep2".len());
            let p = &i.prospects[41];
            assert_eq!(at(i.text, p.owner.unwrap()), "rep2");
            assert_eq!((p.fields.start, p.fields.len), (41, 1));
        });
    }
}
