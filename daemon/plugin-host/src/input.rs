//! What plugins are given: the daemon's records turned into the interface's
//! types, bounded by the plugin's input limit.
//!
//! All the text of one input goes into one string, and records point into
//! it with spans (see `types.wit`): the canonical ABI copies each string
//! and list into the plugin with a call to its allocator, so an input is a
//! handful of copies instead of one per name, stage and field.
//!
//! Interface 0.4.0 sends the same records packed into bytes, in the layout
//! `plugin-sdk/wit/types.wit` documents: [`Packer`] writes them from the
//! 0.3.0 records, so both versions see the same input by construction.

use std::cell::RefCell;
use std::collections::HashMap;

use stagecoach_types::model::{Activity, Actor, FieldValue, Millis, Prospect, Status, Transition};

use super::bindings::v0_3::stagecoach::plugin::types as wit;
use super::bindings::v0_4::stagecoach::plugin::types as packed;

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
    /// The packed form's buffer (interface 0.4.0).
    packed: Vec<u8>,
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
        self.with_scratch(max_input_kib, with_activities, |wit| wit.with(f))
    }

    /// Calls `f` with the input packed as interface 0.4.0 sends it.
    pub(super) fn with_packed<R>(
        &self,
        max_input_kib: u32,
        with_activities: bool,
        f: impl FnOnce(packed::Input<'_>) -> R,
    ) -> R {
        self.with_scratch(max_input_kib, with_activities, |wit| {
            wit.pack();
            f(packed::Input {
                text: &wit.text,
                packed: &wit.packed,
            })
        })
    }

    /// Calls `f` with this input's records, built in buffers this thread
    /// keeps from call to call.
    fn with_scratch<R>(
        &self,
        max_input_kib: u32,
        with_activities: bool,
        f: impl FnOnce(&mut WitInput) -> R,
    ) -> R {
        thread_local! {
            static SCRATCH: RefCell<WitInput> = RefCell::new(WitInput::default());
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut wit) => {
                wit.fill(self, max_input_kib, with_activities);
                let result = f(&mut wit);
                wit.trim();
                result
            }
            // Only if `f` itself builds an input on this thread.
            Err(_) => f(&mut self.to_wit(max_input_kib, with_activities)),
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
            packed: Vec::new(),
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
        if self.packed.capacity() > KEEP_BYTES {
            self.packed = Vec::new();
        }
    }

    /// Writes the packed form (interface 0.4.0) into `self.packed`.
    fn pack(&mut self) {
        // The activities' distinct kinds, in order of first appearance:
        // each activity names its kind by index, so an interpreter compares
        // numbers instead of making a string per activity.
        let mut kinds: Vec<wit::Span> = Vec::new();
        let mut kind_ids: Vec<u32> = Vec::with_capacity(self.activities.len());
        {
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for a in &self.activities {
                let text = &self.text[a.kind.start as usize..(a.kind.start + a.kind.len) as usize];
                let id = *seen.entry(text).or_insert_with(|| {
                    kinds.push(a.kind);
                    (kinds.len() - 1) as u32
                });
                kind_ids.push(id);
            }
        }
        let n = self.activities.len();
        let entries_at = INPUT_HEADER;
        let kinds_at = entries_at + ENTRY * self.entries.len();
        let kind_at = kinds_at + 8 * kinds.len();
        let at_at = align8(kind_at + 4 * n);
        let actor_at = at_at + 8 * n;
        let data_start_at = align8(actor_at + n);
        let data_len_at = align8(data_start_at + 4 * n);
        let end = align8(data_len_at + 4 * n);
        let mut p = Packer(std::mem::take(&mut self.packed));
        p.0.clear();
        p.0.reserve(end);
        p.u64(self.id);
        p.i64(self.now);
        p.i64(self.created_at);
        p.i64(self.stage_entered_at);
        p.span(self.name);
        p.span(self.stage);
        p.opt_span(self.company);
        p.opt_span(self.owner);
        p.range(self.fields);
        p.range(self.config);
        p.table(entries_at, self.entries.len());
        p.u32(n as u32);
        p.u32(kinds_at as u32);
        p.u32(kinds.len() as u32);
        p.u32(kind_at as u32);
        p.u32(at_at as u32);
        p.u32(actor_at as u32);
        p.u32(data_start_at as u32);
        p.u32(data_len_at as u32);
        p.u8(status_code(self.status));
        p.u8(u8::from(self.truncated));
        p.u8(0); // the text flags, set below
        p.pad(5);
        p.u32(end as u32);
        p.u32(0); // the map's count, set below
        debug_assert_eq!(p.0.len(), entries_at);
        p.entries(&self.entries);
        for k in &kinds {
            p.span(*k);
        }
        for id in &kind_ids {
            p.u32(*id);
        }
        p.align8();
        for a in &self.activities {
            p.i64(a.at);
        }
        for a in &self.activities {
            p.u8(match a.actor {
                wit::Actor::Prospect => 0,
                wit::Actor::Rep => 1,
            });
        }
        p.align8();
        for a in &self.activities {
            p.u32(a.data.start);
        }
        p.align8();
        for a in &self.activities {
            p.u32(a.data.len);
        }
        p.align8();
        debug_assert_eq!(p.0.len(), end);
        p.utf16_map(&self.text, 122, 132);
        self.packed = p.0;
    }
}

/// `n` rounded up to a multiple of 8.
fn align8(n: usize) -> usize {
    n.next_multiple_of(8)
}

/// Sizes in the packed layout (`plugin-sdk/wit/types.wit`), in bytes.
const INPUT_HEADER: usize = 136;
const METRIC_HEADER: usize = 56;
const ENTRY: usize = 24;
const PROSPECT_SUMMARY: usize = 64;
const TRANSITION: usize = 40;

/// An absent optional span's `start`.
const NO_SPAN: u32 = u32::MAX;

fn status_code(s: wit::Status) -> u8 {
    match s {
        wit::Status::Open => 0,
        wit::Status::Won => 1,
        wit::Status::Lost => 2,
    }
}

/// Writes the packed layout, little-endian.
struct Packer(Vec<u8>);

impl Packer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn pad(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// Writes, for each non-ASCII character of `text`, the byte offset and
    /// the UTF-16 index where it ends, then sets the header's map count (a
    /// u32 at `count_at`) and text flags (a byte at `flags_at`: bit 0, the
    /// text is all ASCII, so a reader uses byte offsets as string indexes
    /// without looking at the text). A reader whose strings are UTF-16
    /// (JavaScript) turns a byte offset into an index by a binary search
    /// here instead of scanning the text.
    fn utf16_map(&mut self, text: &str, flags_at: usize, count_at: usize) {
        let mut n = 0u32;
        if !text.is_ascii() {
            let mut units = 0u32;
            for (i, c) in text.char_indices() {
                units += c.len_utf16() as u32;
                if !c.is_ascii() {
                    self.u32((i + c.len_utf8()) as u32);
                    self.u32(units);
                    n += 1;
                }
            }
        }
        self.0[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
        self.0[flags_at] = u8::from(n == 0);
    }
    /// Pads to the next multiple of 8 bytes.
    fn align8(&mut self) {
        self.0.resize(align8(self.0.len()), 0);
    }
    fn span(&mut self, s: wit::Span) {
        self.u32(s.start);
        self.u32(s.len);
    }
    fn opt_span(&mut self, s: Option<wit::Span>) {
        self.span(s.unwrap_or(wit::Span {
            start: NO_SPAN,
            len: 0,
        }));
    }
    fn range(&mut self, r: wit::Range) {
        self.u32(r.start);
        self.u32(r.len);
    }
    /// A table's byte offset and count, in a header.
    fn table(&mut self, at: usize, count: usize) {
        self.u32(at as u32);
        self.u32(count as u32);
    }
    fn entries(&mut self, entries: &[wit::Entry]) {
        for e in entries {
            self.span(e.name);
            match e.value {
                wit::Value::Text(s) => {
                    self.u8(0);
                    self.pad(7);
                    self.span(s);
                }
                wit::Value::Number(n) => {
                    self.u8(1);
                    self.pad(7);
                    self.f64(n);
                }
                wit::Value::Boolean(b) => {
                    self.u8(2);
                    self.pad(7);
                    self.u8(u8::from(b));
                    self.pad(7);
                }
            }
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
    /// The interface's records for this data.
    fn records(&self) -> WitMetric<'_> {
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
        WitMetric {
            text,
            now: self.now.0,
            config,
            prospects,
            transitions,
        }
    }

    /// Calls `f` with the interface's metric input.
    pub(super) fn with<R>(&self, f: impl FnOnce(wit::MetricInput<'_>) -> R) -> R {
        let m = self.records();
        f(wit::MetricInput {
            text: &m.text.text,
            entries: &m.text.entries,
            now: m.now,
            config: m.config,
            prospects: &m.prospects,
            transitions: &m.transitions,
        })
    }

    /// Calls `f` with the metric input packed as interface 0.4.0 sends it.
    pub(super) fn with_packed<R>(&self, f: impl FnOnce(packed::MetricInput<'_>) -> R) -> R {
        let m = self.records();
        let bytes = m.pack();
        f(packed::MetricInput {
            text: &m.text.text,
            packed: &bytes,
        })
    }
}

/// A metric call's records (see [`MetricData::records`]).
struct WitMetric<'a> {
    text: Text<'a>,
    now: i64,
    config: wit::Range,
    prospects: Vec<wit::ProspectSummary>,
    transitions: Vec<wit::Transition>,
}

impl WitMetric<'_> {
    /// The packed form (interface 0.4.0).
    fn pack(&self) -> Vec<u8> {
        let entries_at = METRIC_HEADER;
        let prospects_at = entries_at + ENTRY * self.text.entries.len();
        let transitions_at = prospects_at + PROSPECT_SUMMARY * self.prospects.len();
        let end = transitions_at + TRANSITION * self.transitions.len();
        let mut p = Packer(Vec::with_capacity(end));
        p.i64(self.now);
        p.range(self.config);
        p.table(entries_at, self.text.entries.len());
        p.table(prospects_at, self.prospects.len());
        p.table(transitions_at, self.transitions.len());
        p.u8(0); // the text flags, set below
        p.pad(7);
        p.u32(end as u32);
        p.u32(0); // the map's count, set below
        p.entries(&self.text.entries);
        for s in &self.prospects {
            p.u64(s.id);
            p.i64(s.created_at);
            p.i64(s.closed_at.unwrap_or(0));
            p.f64(s.stage_probability.unwrap_or(0.0));
            p.span(s.stage);
            p.opt_span(s.owner);
            p.range(s.fields);
            p.u8(status_code(s.status));
            p.u8(u8::from(s.closed_at.is_some()) | (u8::from(s.stage_probability.is_some()) << 1));
            p.pad(6);
        }
        for t in &self.transitions {
            p.u64(t.prospect);
            p.i64(t.at);
            p.opt_span(t.from);
            p.span(t.to);
            p.span(t.kind);
        }
        debug_assert_eq!(p.0.len(), end);
        p.utf16_map(&self.text.text, 40, 52);
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_types::model::{Status, TransitionKind};

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

    fn transition(
        prospect: u64,
        from: Option<&str>,
        to: &str,
        at: i64,
        kind: TransitionKind,
    ) -> Transition {
        Transition {
            id: at as u64,
            prospect,
            from: from.map(str::to_string),
            to: to.into(),
            at: Millis(at),
            process_version: 1,
            kind,
            verdicts: Vec::new(),
            reason: None,
            by: None,
            activity: None,
            imported: false,
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

    /// Reads the packed layout at fixed offsets, as `types.wit` documents it.
    struct Reader<'a>(&'a [u8]);

    impl Reader<'_> {
        fn u8(&self, at: usize) -> u8 {
            self.0[at]
        }
        fn u32(&self, at: usize) -> u32 {
            u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
        }
        fn u64(&self, at: usize) -> u64 {
            u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap())
        }
        fn i64(&self, at: usize) -> i64 {
            self.u64(at) as i64
        }
        fn f64(&self, at: usize) -> f64 {
            f64::from_bits(self.u64(at))
        }
        /// The text of the span at `at`, none for an absent one.
        fn span<'t>(&self, text: &'t str, at: usize) -> Option<&'t str> {
            let (start, len) = (self.u32(at), self.u32(at + 4));
            (start != u32::MAX).then(|| &text[start as usize..(start + len) as usize])
        }
        /// Entry `i`'s name and value (as text).
        fn entry(&self, text: &str, i: u32) -> (String, String) {
            let at = self.u32(80) as usize + 24 * i as usize;
            let name = self.span(text, at).unwrap().to_string();
            let value = match self.u8(at + 8) {
                0 => self.span(text, at + 16).unwrap().to_string(),
                1 => format!("{}", self.f64(at + 16)),
                2 => format!("{}", self.u8(at + 16) == 1),
                t => panic!("tag {t}"),
            };
            (name, value)
        }
    }

    #[test]
    fn the_packed_input_is_laid_out_as_the_interface_documents() {
        let mut p = prospect();
        p.id = 7;
        p.name = "Zoë Ångström".into();
        p.owner = Some("maría".into());
        p.status = Status::Won;
        p.created_at = Millis(-5);
        p.stage_entered_at = Millis(1_700_000_000_000);
        p.fields
            .insert("employees".into(), FieldValue::Number(120.5));
        p.fields.insert("signed".into(), FieldValue::Bool(true));
        let mut log = activities(2);
        log[1].actor = Actor::Rep;
        log[1].kind = "démo".into();
        let config = [("industries".to_string(), FieldValue::Text("saas, ☃".into()))];
        let input = CallInput {
            prospect: &p,
            activities: &log,
            now: Millis(99),
            config: &config,
        };
        input.with_packed(64, true, |i| {
            let r = Reader(i.packed);
            let text = i.text;
            assert_eq!(r.u64(0), 7);
            assert_eq!(r.i64(8), 99);
            assert_eq!(r.i64(16), -5);
            assert_eq!(r.i64(24), 1_700_000_000_000);
            assert_eq!(r.span(text, 32), Some("Zoë Ångström"));
            assert_eq!(r.span(text, 40), Some("connect"));
            assert_eq!(r.span(text, 48), None);
            assert_eq!(r.span(text, 56), Some("maría"));
            // Fields in the prospect's order, then the config.
            let (fields, n) = (r.u32(64), r.u32(68));
            let named: Vec<_> = (fields..fields + n).map(|e| r.entry(text, e)).collect();
            let expected: Vec<(String, String)> = p
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        FieldValue::Text(t) => t.clone(),
                        FieldValue::Number(n) => format!("{n}"),
                        FieldValue::Bool(b) => format!("{b}"),
                    };
                    (k.clone(), v)
                })
                .collect();
            assert_eq!(named, expected);
            assert_eq!(r.u32(76), 1);
            assert_eq!(
                r.entry(text, r.u32(72)),
                ("industries".into(), "saas, ☃".into())
            );
            assert_eq!(r.u32(80), 136, "entries follow the header");
            let entries = r.u32(84);
            assert_eq!(entries as usize, p.fields.len() + 1 + 2 * 2);
            assert_eq!(r.u32(88), 2, "two activities");
            // Their distinct kinds, as spans, after the entries.
            let (kinds_at, kinds) = (r.u32(92) as usize, r.u32(96));
            assert_eq!(kinds_at, 136 + 24 * entries as usize);
            assert_eq!(kinds, 2);
            assert_eq!(r.span(text, kinds_at), Some("replied"));
            assert_eq!(r.span(text, kinds_at + 8), Some("démo"));
            // One column per field of an activity, each aligned to 8.
            let [kind, at, actor, data_start, data_len] =
                [100, 104, 108, 112, 116].map(|o| r.u32(o) as usize);
            assert_eq!(kind, kinds_at + 16);
            for column in [kind, at, actor, data_start, data_len] {
                assert_eq!(column % 8, 0, "{column}");
            }
            assert_eq!((r.u32(kind), r.u32(kind + 4)), (0, 1));
            assert_eq!((r.i64(at), r.i64(at + 8)), (0, 1));
            assert_eq!(
                (r.u8(actor), r.u8(actor + 1)),
                (0, 1),
                "the second is the rep's"
            );
            let data = r.u32(data_start + 4);
            assert_eq!(r.u32(data_len + 4), 2);
            assert_eq!(r.entry(text, data + 1), ("score".into(), "3".into()));
            // Where each non-ASCII character ends, in bytes and in UTF-16
            // units, after the columns.
            let (map, mapped) = (r.u32(128) as usize, r.u32(132) as usize);
            assert_eq!(map, data_len + 8);
            let expected: Vec<(u32, u32)> = {
                let mut units = 0;
                text.char_indices()
                    .filter_map(|(b, c)| {
                        units += c.len_utf16() as u32;
                        (!c.is_ascii()).then_some(((b + c.len_utf8()) as u32, units))
                    })
                    .collect()
            };
            let got: Vec<(u32, u32)> = (0..mapped)
                .map(|k| (r.u32(map + 8 * k), r.u32(map + 8 * k + 4)))
                .collect();
            assert_eq!(got, expected);
            assert!(mapped >= 5, "ë, Å, ö, é, ☃ at least");
            assert_eq!(i.packed.len(), map + 8 * mapped);
            assert_eq!((r.u8(120), r.u8(121)), (1, 0), "won, not truncated");
            assert_eq!(r.u8(122), 0, "the text is not all ASCII");
        });
        // A plugin that does not read activities: none, and told so.
        input.with_packed(64, false, |i| {
            let r = Reader(i.packed);
            assert_eq!((r.u32(88), r.u8(121)), (0, 1));
        });
        // All-ASCII text is flagged.
        let plain = prospect();
        let input = CallInput {
            prospect: &plain,
            activities: &[],
            now: Millis(0),
            config: &[],
        };
        input.with_packed(64, true, |i| assert_eq!(Reader(i.packed).u8(122), 1));
    }

    #[test]
    fn the_packed_metric_input_is_laid_out_as_the_interface_documents() {
        let mut won = prospect();
        won.id = 3;
        won.status = Status::Won;
        won.closed_at = Some(Millis(50));
        won.owner = Some("rep1".into());
        let data = MetricData {
            now: Millis(77),
            config: vec![("horizon".into(), FieldValue::Number(30.0))],
            prospects: vec![(prospect(), None), (won, Some(0.25))],
            transitions: vec![transition(3, None, "connect", 10, TransitionKind::Created)],
        };
        data.with_packed(|i| {
            let r = Reader(i.packed);
            let text = i.text;
            assert_eq!(r.i64(0), 77);
            assert_eq!(r.u8(40), 1, "all-ASCII text");
            let (entries_at, entries) = (r.u32(16) as usize, r.u32(20) as usize);
            assert_eq!(entries_at, 56);
            assert_eq!(r.u32(52), 0, "no map for ASCII text");
            assert_eq!(entries, 3, "the config and each prospect's one field");
            let (prospects, n) = (r.u32(24) as usize, r.u32(28));
            assert_eq!((prospects, n), (56 + 24 * entries, 2));
            let second = prospects + 64;
            assert_eq!(r.u64(second), 3);
            assert_eq!(r.i64(second + 16), 50);
            assert_eq!(r.f64(second + 24), 0.25);
            assert_eq!(r.span(text, second + 32), Some("connect"));
            assert_eq!(r.span(text, second + 40), Some("rep1"));
            assert_eq!((r.u8(second + 56), r.u8(second + 57)), (1, 0b11));
            assert_eq!((r.u8(prospects + 56), r.u8(prospects + 57)), (0, 0));
            assert_eq!(r.span(text, prospects + 40), None);
            let (transitions, t) = (r.u32(32) as usize, r.u32(36));
            assert_eq!((transitions, t), (prospects + 2 * 64, 1));
            assert_eq!(r.u64(transitions), 3);
            assert_eq!(r.i64(transitions + 8), 10);
            assert_eq!(r.span(text, transitions + 16), None);
            assert_eq!(r.span(text, transitions + 24), Some("connect"));
            assert_eq!(r.span(text, transitions + 32), Some("created"));
            assert_eq!(i.packed.len(), transitions + 40);
            assert_eq!(
                r.u32(48) as usize,
                transitions + 40,
                "where the map would be"
            );
        });
    }

    /// A value as the fixtures write it.
    fn json_value(v: &FieldValue) -> serde_json::Value {
        match v {
            FieldValue::Text(t) => t.clone().into(),
            FieldValue::Number(n) => (*n).into(),
            FieldValue::Bool(b) => (*b).into(),
        }
    }

    fn json_entries<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a FieldValue)>,
    ) -> serde_json::Value {
        entries
            .into_iter()
            .map(|(k, v)| serde_json::json!([k, json_value(v)]))
            .collect()
    }

    /// Compares `bytes` with the fixture file `name` in
    /// `plugin-sdk/testdata/`, or writes it when `STAGECOACH_BLESS` is set.
    fn fixture(name: &str, bytes: &[u8]) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugin-sdk/testdata")
            .join(name);
        if std::env::var_os("STAGECOACH_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        let kept = std::fs::read(&path).unwrap_or_default();
        assert!(
            kept == bytes,
            "`{}` differs from what the host sends now: if the layout changed on purpose, \
             run this test with STAGECOACH_BLESS=1 and check the SDKs' tests",
            path.display()
        );
    }

    /// The Python and TypeScript SDKs' tests decode these files and check
    /// the views against the `.json`: the host's writer and each SDK's
    /// reader are held to the same bytes.
    #[test]
    fn the_sdks_fixtures_are_what_the_host_sends() {
        let mut p = prospect();
        p.id = 4_503_599_627_370_497; // 2^52 + 1: both halves of the u64 matter
        p.name = "Zoë Ångström 🚀".into();
        p.company = Some("Café Ltd".into());
        p.status = Status::Open;
        p.created_at = Millis(1_700_000_000_123);
        p.stage_entered_at = Millis(1_700_086_400_000);
        p.fields
            .insert("employees".into(), FieldValue::Number(120.0));
        p.fields.insert("score".into(), FieldValue::Number(-0.25));
        p.fields
            .insert("decision_maker".into(), FieldValue::Bool(false));
        let mut log = activities(3);
        log[0].kind = "demo_attended".into();
        log[1].actor = Actor::Rep;
        log[1].kind = "démo_envoyée".into();
        log[1].data = serde_json::json!({ "ok": true, "who": "ça va", "list": [1] })
            .as_object()
            .cloned()
            .unwrap();
        log[2].at = Millis(1_700_090_000_000);
        log[2].data = serde_json::Map::new();
        for a in &mut log[..1] {
            a.data = serde_json::json!({ "minutes": 45 })
                .as_object()
                .cloned()
                .unwrap();
        }
        // A time before 1970, and a second `demo_attended` at the same time
        // as the first: the latest of equals is the later one.
        log[0].at = Millis(-5_000);
        let mut again = log[0].clone();
        again.id = 3;
        again.data = serde_json::json!({ "minutes": 30 })
            .as_object()
            .cloned()
            .unwrap();
        log.push(again);
        let mut sent = log[2].clone();
        sent.id = 4;
        sent.kind = "email_sent".into();
        sent.actor = Actor::Rep;
        sent.at = Millis(1_700_095_000_000);
        log.push(sent);
        let config = [
            (
                "industries".to_string(),
                FieldValue::Text("saas, fintech, ☃".into()),
            ),
            ("min_employees".to_string(), FieldValue::Number(50.0)),
        ];
        let input = CallInput {
            prospect: &p,
            activities: &log,
            now: Millis(1_700_100_000_000),
            config: &config,
        };
        let scalar = |d: &serde_json::Map<String, serde_json::Value>| -> serde_json::Value {
            d.iter()
                .filter(|(_, v)| v.is_string() || v.is_boolean() || v.is_number())
                .map(|(k, v)| match v {
                    serde_json::Value::Number(n) => serde_json::json!([k, n.as_f64()]),
                    v => serde_json::json!([k, v]),
                })
                .collect()
        };
        let expected = serde_json::json!({
            "prospect": {
                "id": p.id.to_string(),
                "name": p.name,
                "company": p.company,
                "owner": p.owner,
                "stage": p.stage,
                "status": "open",
                "created_at": p.created_at.0,
                "stage_entered_at": p.stage_entered_at.0,
                "activities_truncated": false,
                "fields": json_entries(&p.fields),
                "activities": log.iter().map(|a| serde_json::json!({
                    "kind": a.kind,
                    "actor": if a.actor == Actor::Prospect { "prospect" } else { "rep" },
                    "at": a.at.0,
                    "data": scalar(&a.data),
                })).collect::<Vec<_>>(),
            },
            "now": input.now.0,
            "config": json_entries(config.iter().map(|(k, v)| (k, v))),
        });
        input.with_packed(64, true, |i| {
            // Five activities: an odd count, so every column's alignment counts.
            let r = Reader(i.packed);
            for o in [100, 104, 108, 112, 116, 128] {
                assert_eq!(r.u32(o) % 8, 0, "the column at header offset {o}");
            }
            fixture("input.bin", i.packed);
            fixture("input.txt", i.text.as_bytes());
        });
        fixture(
            "input.json",
            serde_json::to_string_pretty(&expected).unwrap().as_bytes(),
        );

        let mut closed = p.clone();
        closed.id = 9;
        closed.status = Status::Lost;
        closed.closed_at = Some(Millis(1_700_200_000_000));
        closed.owner = Some("maría".into());
        let data = MetricData {
            now: Millis(1_700_300_000_000),
            config: vec![("horizon_days".into(), FieldValue::Number(30.0))],
            prospects: vec![(p.clone(), Some(0.4)), (closed.clone(), None)],
            transitions: [
                (None, "connect", 1, TransitionKind::Created),
                (Some("connect"), "lost", 2, TransitionKind::Lost),
            ]
            .into_iter()
            .map(|(from, to, at, kind)| transition(9, from, to, at, kind))
            .collect(),
        };
        let expected = serde_json::json!({
            "now": data.now.0,
            "config": json_entries(data.config.iter().map(|(k, v)| (k, v))),
            "prospects": data.prospects.iter().map(|(p, probability)| serde_json::json!({
                "id": p.id.to_string(),
                "stage": p.stage,
                "owner": p.owner,
                "status": p.status.as_str(),
                "created_at": p.created_at.0,
                "closed_at": p.closed_at.map(|m| m.0),
                "stage_probability": probability,
                "fields": json_entries(&p.fields),
            })).collect::<Vec<_>>(),
            "transitions": data.transitions.iter().map(|t| serde_json::json!({
                "prospect": t.prospect.to_string(),
                "from": t.from,
                "to": t.to,
                "at": t.at.0,
                "kind": t.kind.as_str(),
            })).collect::<Vec<_>>(),
        });
        data.with_packed(|i| {
            fixture("metric.bin", i.packed);
            fixture("metric.txt", i.text.as_bytes());
        });
        fixture(
            "metric.json",
            serde_json::to_string_pretty(&expected).unwrap().as_bytes(),
        );
    }
}
