//! What plugins are given: the daemon's records turned into the interface's
//! types, bounded by the plugin's input limit.
//!
//! The interface's input types borrow the daemon's records (the bindings
//! are generated with `ownership: Borrowing`): strings are copied once,
//! straight into the plugin's memory, instead of first into owned copies.
//! Only the lists that hold them are built here.

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

fn value(v: &FieldValue) -> wit::Value<'_> {
    match v {
        FieldValue::Text(t) => wit::Value::Text(t),
        FieldValue::Number(n) => wit::Value::Number(*n),
        FieldValue::Bool(b) => wit::Value::Boolean(*b),
    }
}

/// Named values as the interface's entries.
fn entries<'a>(
    items: impl IntoIterator<Item = (&'a String, &'a FieldValue)>,
) -> Vec<wit::Entry<'a>> {
    items
        .into_iter()
        .map(|(k, v)| wit::Entry {
            name: k,
            value: value(v),
        })
        .collect()
}

fn json_scalar(v: &serde_json::Value) -> Option<wit::Value<'_>> {
    Some(match v {
        serde_json::Value::String(s) => wit::Value::Text(s),
        serde_json::Value::Number(n) => wit::Value::Number(n.as_f64()?),
        serde_json::Value::Bool(b) => wit::Value::Boolean(*b),
        _ => return None,
    })
}

fn approx_size(a: &Activity) -> usize {
    48 + a.kind.len()
        + a.data
            .iter()
            .map(|(k, v)| k.len() + v.to_string().len())
            .sum::<usize>()
}

/// A call's input, ready to lend to the plugin (see [`WitInput::with`]).
pub struct WitInput<'a> {
    input: &'a CallInput<'a>,
    fields: Vec<wit::Entry<'a>>,
    config: Vec<wit::Entry<'a>>,
    /// The activities passed (the most recent that fit), with their data.
    activities: &'a [Activity],
    data: Vec<Vec<wit::Entry<'a>>>,
    truncated: bool,
}

impl<'a> CallInput<'a> {
    /// The interface's input, keeping the most recent activities that fit
    /// in `max_input_kib`; none when the plugin does not read them
    /// (`activities-truncated` then says they were left out).
    pub fn to_wit(&'a self, max_input_kib: u32, with_activities: bool) -> WitInput<'a> {
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
        let activities = &self.activities[start..];
        WitInput {
            input: self,
            fields: entries(&p.fields),
            config: entries(self.config.iter().map(|(k, v)| (k, v))),
            activities,
            data: activities
                .iter()
                .map(|a| {
                    a.data
                        .iter()
                        .filter_map(|(k, v)| {
                            Some(wit::Entry {
                                name: k,
                                value: json_scalar(v)?,
                            })
                        })
                        .collect()
                })
                .collect(),
            truncated: start > 0 || !with_activities,
        }
    }
}

impl WitInput<'_> {
    /// Calls `f` with the interface's input.
    pub fn with<R>(&self, f: impl FnOnce(wit::Input<'_>) -> R) -> R {
        let p = self.input.prospect;
        let activities: Vec<wit::Activity<'_>> = self
            .activities
            .iter()
            .zip(&self.data)
            .map(|(a, data)| wit::Activity {
                kind: &a.kind,
                actor: match a.actor {
                    Actor::Prospect => wit::Actor::Prospect,
                    Actor::Rep => wit::Actor::Rep,
                },
                at: a.at.0,
                data,
            })
            .collect();
        f(wit::Input {
            prospect: wit::Prospect {
                id: p.id,
                name: &p.name,
                company: p.company.as_deref(),
                owner: p.owner.as_deref(),
                stage: &p.stage,
                status: p.status.as_str(),
                created_at: p.created_at.0,
                stage_entered_at: p.stage_entered_at.0,
                fields: &self.fields,
                activities: &activities,
                activities_truncated: self.truncated,
            },
            now: self.input.now.0,
            config: &self.config,
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
        let fields: Vec<Vec<wit::Entry<'_>>> = self
            .prospects
            .iter()
            .map(|(p, _)| entries(&p.fields))
            .collect();
        let prospects: Vec<wit::ProspectSummary<'_>> = self
            .prospects
            .iter()
            .zip(&fields)
            .map(|((p, probability), fields)| wit::ProspectSummary {
                id: p.id,
                owner: p.owner.as_deref(),
                stage: &p.stage,
                status: p.status.as_str(),
                created_at: p.created_at.0,
                closed_at: p.closed_at.map(|m| m.0),
                stage_probability: *probability,
                fields,
            })
            .collect();
        let transitions: Vec<wit::Transition<'_>> = self
            .transitions
            .iter()
            .map(|t| wit::Transition {
                prospect: t.prospect,
                from: t.from.as_deref(),
                to: &t.to,
                at: t.at.0,
                kind: t.kind.as_str(),
            })
            .collect();
        let config = entries(self.config.iter().map(|(k, v)| (k, v)));
        f(wit::MetricInput {
            now: self.now.0,
            config: &config,
            prospects: &prospects,
            transitions: &transitions,
        })
    }
}
