//! What plugins are given: the daemon's records turned into the interface's
//! types, bounded by the plugin's input limit.

use crate::model::{Activity, Actor, FieldValue, Millis, Prospect, Transition};

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

fn value(v: &FieldValue) -> wit::Value {
    match v {
        FieldValue::Text(t) => wit::Value::Text(t.clone()),
        FieldValue::Number(n) => wit::Value::Number(*n),
        FieldValue::Bool(b) => wit::Value::Boolean(*b),
    }
}

/// Converts named values to the interface's entries.
pub fn to_entries<'a>(
    items: impl IntoIterator<Item = (&'a String, &'a FieldValue)>,
) -> Vec<wit::Entry> {
    items
        .into_iter()
        .map(|(k, v)| wit::Entry {
            name: k.clone(),
            value: value(v),
        })
        .collect()
}

fn json_scalar(v: &serde_json::Value) -> Option<wit::Value> {
    Some(match v {
        serde_json::Value::String(s) => wit::Value::Text(s.clone()),
        serde_json::Value::Number(n) => wit::Value::Number(n.as_f64()?),
        serde_json::Value::Bool(b) => wit::Value::Boolean(*b),
        _ => return None,
    })
}

fn activity(a: &Activity) -> wit::Activity {
    wit::Activity {
        kind: a.kind.clone(),
        actor: match a.actor {
            Actor::Prospect => wit::Actor::Prospect,
            Actor::Rep => wit::Actor::Rep,
        },
        at: a.at.0,
        data: a
            .data
            .iter()
            .filter_map(|(k, v)| {
                Some(wit::Entry {
                    name: k.clone(),
                    value: json_scalar(v)?,
                })
            })
            .collect(),
    }
}

fn approx_size(a: &Activity) -> usize {
    48 + a.kind.len()
        + a.data
            .iter()
            .map(|(k, v)| k.len() + v.to_string().len())
            .sum::<usize>()
}

impl CallInput<'_> {
    /// The interface's input, keeping the most recent activities that fit
    /// in `max_input_kib`; none when the plugin does not read them
    /// (`activities-truncated` then says they were left out).
    pub fn to_wit(&self, max_input_kib: u32, with_activities: bool) -> wit::Input {
        let p = self.prospect;
        let budget = (max_input_kib as usize) << 10;
        let mut used = 256
            + p.name.len()
            + p.fields
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len() + 16)
                .sum::<usize>()
            + self
                .config
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len() + 16)
                .sum::<usize>();
        let mut keep = 0;
        for a in self.activities.iter().rev().filter(|_| with_activities) {
            used += approx_size(a);
            if used > budget {
                break;
            }
            keep += 1;
        }
        let start = self.activities.len() - keep;
        wit::Input {
            prospect: wit::Prospect {
                id: p.id,
                name: p.name.clone(),
                company: p.company.clone(),
                owner: p.owner.clone(),
                stage: p.stage.clone(),
                status: p.status.as_str().to_string(),
                created_at: p.created_at.0,
                stage_entered_at: p.stage_entered_at.0,
                fields: to_entries(&p.fields),
                activities: self.activities[start..].iter().map(activity).collect(),
                activities_truncated: start > 0 || !with_activities,
            },
            now: self.now.0,
            config: to_entries(self.config.iter().map(|(k, v)| (k, v))),
        }
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
    pub(super) fn to_wit(&self) -> wit::MetricInput {
        wit::MetricInput {
            now: self.now.0,
            config: to_entries(self.config.iter().map(|(k, v)| (k, v))),
            prospects: self
                .prospects
                .iter()
                .map(|(p, probability)| wit::ProspectSummary {
                    id: p.id,
                    owner: p.owner.clone(),
                    stage: p.stage.clone(),
                    status: p.status.as_str().to_string(),
                    created_at: p.created_at.0,
                    closed_at: p.closed_at.map(|m| m.0),
                    stage_probability: *probability,
                    fields: to_entries(&p.fields),
                })
                .collect(),
            transitions: self
                .transitions
                .iter()
                .map(|t| wit::Transition {
                    prospect: t.prospect,
                    from: t.from.clone(),
                    to: t.to.clone(),
                    at: t.at.0,
                    kind: t.kind.as_str().to_string(),
                })
                .collect(),
        }
    }
}
