//! The whole history as one OCEL 2.0 object-centric event log, in its JSON
//! form (<https://www.ocel-standard.org/>), for process-mining tools such
//! as pm4py, Celonis or ProM.
//!
//! - Objects: every prospect (`prospect`, id `p<id>`: its name, company,
//!   stage, status and fields (`field.NAME`) as attributes, related to its owner as
//!   `owned by`) and every owner (`owner`, id `owner:<name>`).
//! - Events: every activity (its kind as the event type, `a<id>`: actor and
//!   data (`data.KEY`) as attributes) and every transition (`t<id>`: `entered <stage>`,
//!   or `won` / `lost`; from, to, kind, process version, reason, by and the
//!   imported flag as attributes), each related to its prospect as
//!   `prospect`.
//!
//! Events also relate to the prospect's owner at the time (`owner`): its
//! owner now, or where the owner changed, the one the latest change before
//! the event set.
//!
//! Written as the pages arrive: events (activities, then transitions, so
//! an activity comes before the move it caused at the same instant), then
//! objects, and the type declarations last, once every attribute has been
//! seen (JSON readers do not care about the order of an object's keys).
//! Memory: a prospect's activities at a time, and who owns which prospect.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use serde_json::{Value, json};

use stagecoach_client::Client;
use stagecoach_types::model::{Activity, FieldValue, Millis, Prospect, Transition};

use super::export::{Table, pages, pick_activities, pick_prospects, pick_transitions};

/// What an OCEL export wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// Prospect objects.
    pub prospects: u64,
    /// Owner objects.
    pub owners: u64,
    /// Activity events.
    pub activities: u64,
    /// Transition events.
    pub transitions: u64,
}

/// OCEL 2.0's attribute types, by what the values were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrType {
    String,
    Integer,
    Float,
    Boolean,
}

impl AttrType {
    fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Integer => "integer",
            AttrType::Float => "float",
            AttrType::Boolean => "boolean",
        }
    }
    fn of(v: &Value) -> AttrType {
        match v {
            Value::Bool(_) => AttrType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => AttrType::Integer,
            Value::Number(_) => AttrType::Float,
            _ => AttrType::String,
        }
    }
}

/// The attributes seen per object or event type: one type per attribute,
/// widened where values disagree (integer and float → float, anything
/// else → string).
#[derive(Default)]
struct Types(BTreeMap<String, BTreeMap<String, AttrType>>);

impl Types {
    fn saw(&mut self, of: &str, attr: &str, t: AttrType) {
        let attrs = self.0.entry(of.to_string()).or_default();
        match attrs.get_mut(attr) {
            None => {
                attrs.insert(attr.to_string(), t);
            }
            Some(old) if *old == t => {}
            Some(old) => {
                let numbers = [AttrType::Integer, AttrType::Float];
                *old = if numbers.contains(old) && numbers.contains(&t) {
                    AttrType::Float
                } else {
                    AttrType::String
                };
            }
        }
    }
    fn declare(&mut self, of: &str) {
        self.0.entry(of.to_string()).or_default();
    }
    fn json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(name, attrs)| {
                    json!({
                        "name": name,
                        "attributes": attrs
                            .iter()
                            .map(|(a, t)| json!({"name": a, "type": t.name()}))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

/// A scalar attribute value as OCEL writes it: objects and lists as JSON
/// text.
fn scalar(v: &Value) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) => Value::String(v.to_string()),
        other => other.clone(),
    }
}

fn field_value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::Number(n) => json!(n),
        FieldValue::Text(t) => Value::String(t.clone()),
    }
}

/// Writes `items` as the elements of a JSON array that is already open,
/// with commas between them (`first` says whether one was written yet).
struct Items<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl Items<'_> {
    fn push(&mut self, v: &Value) -> anyhow::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, v)?;
        Ok(())
    }
}

fn owner_id(name: &str) -> String {
    format!("owner:{name}")
}

fn prospect_object(p: &Prospect, types: &mut Types) -> Value {
    let mut attrs = Vec::new();
    let mut attr = |name: &str, time: Millis, value: Value, types: &mut Types| {
        types.saw("prospect", name, AttrType::of(&value));
        attrs.push(json!({"name": name, "time": time.to_string(), "value": value}));
    };
    attr("name", p.created_at, json!(p.name), types);
    if let Some(c) = &p.company {
        attr("company", p.created_at, json!(c), types);
    }
    if let Some(x) = &p.external_id {
        attr("external_id", p.created_at, json!(x), types);
    }
    attr("stage", p.stage_entered_at, json!(p.stage), types);
    attr(
        "status",
        p.closed_at.unwrap_or(p.created_at),
        json!(p.status.as_str()),
        types,
    );
    // Prefixed as the CSV export's columns are, so a field never shares a
    // name with the attributes above.
    for (name, v) in &p.fields {
        attr(
            &format!("field.{name}"),
            p.created_at,
            field_value(v),
            types,
        );
    }
    let relationships: Vec<Value> = p
        .owner
        .iter()
        .map(|o| json!({"objectId": owner_id(o), "qualifier": "owned by"}))
        .collect();
    json!({
        "id": format!("p{}", p.id),
        "type": "prospect",
        "attributes": attrs,
        "relationships": relationships,
    })
}

fn event(
    id: String,
    kind: &str,
    at: Millis,
    prospect: u64,
    owner: Option<&str>,
    attributes: Vec<(&str, Value)>,
    types: &mut Types,
) -> Value {
    types.declare(kind);
    let attributes: Vec<Value> = attributes
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| {
            let v = scalar(&v);
            types.saw(kind, name, AttrType::of(&v));
            json!({"name": name, "value": v})
        })
        .collect();
    let mut relationships =
        vec![json!({"objectId": format!("p{prospect}"), "qualifier": "prospect"})];
    if let Some(o) = owner {
        relationships.push(json!({"objectId": owner_id(o), "qualifier": "owner"}));
    }
    json!({
        "id": id,
        "type": kind,
        "time": at.to_string(),
        "attributes": attributes,
        "relationships": relationships,
    })
}

/// Who owned each prospect when: its owner now, and for the prospects
/// whose owner changed, the changes (`fields_updated` activities that set
/// `owner`) in time order. Before a prospect's first recorded change its
/// owner is unknown, and its events there relate to no owner.
#[derive(Default)]
struct Owners {
    names: Vec<String>,
    index: HashMap<String, u32>,
    now: HashMap<u64, u32>,
    changes: HashMap<u64, Vec<(Millis, u32)>>,
}

impl Owners {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    /// The owner changes among one prospect's activities.
    fn learn(&mut self, prospect: u64, activities: &[Activity]) {
        let mut changes: Vec<(Millis, u32)> = activities
            .iter()
            .filter(|a| a.kind == stagecoach_types::model::FIELDS_UPDATED)
            .filter_map(|a| Some((a.at, a.data.get("owner")?.as_str()?)))
            .map(|(at, name)| (at, self.intern(name)))
            .collect();
        if !changes.is_empty() {
            changes.sort_by_key(|c| c.0);
            self.changes.insert(prospect, changes);
        }
    }

    fn at(&self, prospect: u64, at: Millis) -> Option<&str> {
        let i = match self.changes.get(&prospect) {
            None => *self.now.get(&prospect)?,
            Some(changes) => changes.iter().rev().find(|c| c.0 <= at)?.1,
        };
        Some(&self.names[i as usize])
    }
}

fn activity_event(a: &Activity, owners: &Owners, types: &mut Types) -> Value {
    let keys: Vec<String> = a.data.keys().map(|k| format!("data.{k}")).collect();
    let mut attrs = vec![("actor", json!(a.actor.as_str()))];
    attrs.extend(
        keys.iter()
            .map(String::as_str)
            .zip(a.data.values().cloned()),
    );
    let owner = owners.at(a.prospect, a.at);
    event(
        format!("a{}", a.id),
        &a.kind,
        a.at,
        a.prospect,
        owner,
        attrs,
        types,
    )
}

/// A transition's event type: what a process-mining tool shows as the step.
pub fn transition_type(t: &Transition) -> String {
    match t.kind {
        stagecoach_types::model::TransitionKind::Won => "won".into(),
        stagecoach_types::model::TransitionKind::Lost => "lost".into(),
        _ => format!("entered {}", t.to),
    }
}

fn transition_event(t: &Transition, owners: &Owners, types: &mut Types) -> Value {
    let attrs = vec![
        ("from", json!(t.from)),
        ("to", json!(t.to)),
        ("kind", json!(t.kind.as_str())),
        ("process_version", json!(t.process_version)),
        ("reason", json!(t.reason)),
        ("by", json!(t.by)),
        ("imported", json!(t.imported)),
    ];
    let kind = transition_type(t);
    let owner = owners.at(t.prospect, t.at);
    event(
        format!("t{}", t.id),
        &kind,
        t.at,
        t.prospect,
        owner,
        attrs,
        types,
    )
}

/// Writes the daemon's whole history to `out` as OCEL 2.0 JSON.
pub async fn write(client: &mut Client, out: &mut dyn Write) -> anyhow::Result<Written> {
    let mut written = Written::default();
    let mut objects = Types::default();
    let mut events = Types::default();
    objects.declare("prospect");
    objects.declare("owner");

    // Who owns what now, before any event needs it.
    let mut owners = Owners::default();
    pages(client, Table::Prospects, pick_prospects, |p: &Prospect| {
        if let Some(o) = &p.owner {
            let i = owners.intern(o);
            owners.now.insert(p.id, i);
        }
        Ok(())
    })
    .await?;

    out.write_all(b"{\"events\": [\n")?;
    let mut items = Items { out, first: true };
    // Activities come a prospect at a time: each prospect's are held until
    // the next one's start, so its owner changes are known for all of them.
    let mut held: Vec<Activity> = Vec::new();
    let flush = |held: &mut Vec<Activity>,
                 owners: &mut Owners,
                 items: &mut Items<'_>,
                 events: &mut Types|
     -> anyhow::Result<()> {
        if let Some(first) = held.first() {
            owners.learn(first.prospect, held);
        }
        for a in held.drain(..) {
            items.push(&activity_event(&a, owners, events))?;
        }
        Ok(())
    };
    pages(
        client,
        Table::Activities,
        pick_activities,
        |a: &Activity| {
            written.activities += 1;
            if held.first().is_some_and(|h| h.prospect != a.prospect) {
                flush(&mut held, &mut owners, &mut items, &mut events)?;
            }
            held.push(a.clone());
            Ok(())
        },
    )
    .await?;
    flush(&mut held, &mut owners, &mut items, &mut events)?;
    pages(
        client,
        Table::Transitions,
        pick_transitions,
        |t: &Transition| {
            written.transitions += 1;
            items.push(&transition_event(t, &owners, &mut events))
        },
    )
    .await?;

    items.out.write_all(b"\n],\n\"objects\": [\n")?;
    items.first = true;
    pages(client, Table::Prospects, pick_prospects, |p: &Prospect| {
        written.prospects += 1;
        // (an owner new since the first pass still gets its object)
        if let Some(o) = &p.owner {
            owners.intern(o);
        }
        items.push(&prospect_object(p, &mut objects))
    })
    .await?;
    for o in &owners.names {
        written.owners += 1;
        items.push(
            &json!({"id": owner_id(o), "type": "owner", "attributes": [], "relationships": []}),
        )?;
    }
    let out = items.out;
    out.write_all(b"\n],\n\"objectTypes\": ")?;
    serde_json::to_writer(&mut *out, &objects.json())?;
    out.write_all(b",\n\"eventTypes\": ")?;
    serde_json::to_writer(&mut *out, &events.json())?;
    out.write_all(b"\n}\n")?;
    out.flush()?;
    Ok(written)
}
