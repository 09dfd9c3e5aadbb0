//! Evaluating a stage's exit criteria for one prospect.
//!
//! Pure functions of the prospect, its activities and the time of
//! evaluation: the same inputs always give the same verdicts, which is what
//! makes dry runs (`prospect.evaluate`) trustworthy.

use crate::process::{Check, ExitCriterion, Op, PluginDecl, Stage};
use stagecoach_plugin_host::{CallInput, PluginSet};
use stagecoach_types::api::results::Checklist;
pub use stagecoach_types::model::ActivityFacts;
use stagecoach_types::model::{FieldValue, Millis, Prospect, Verdict};

/// The plugins a process version uses, for criteria and checklists.
#[derive(Clone, Copy)]
pub struct Plugins<'a> {
    /// Loaded plugins by name.
    pub set: &'a PluginSet,
    /// Their declarations (default config).
    pub decls: &'a [PluginDecl],
}

impl<'a> Plugins<'a> {
    /// No plugins.
    pub fn none() -> Plugins<'static> {
        static EMPTY: std::sync::OnceLock<PluginSet> = std::sync::OnceLock::new();
        Plugins {
            set: EMPTY.get_or_init(PluginSet::default),
            decls: &[],
        }
    }

    fn config(&self, name: &str, own: &[(String, FieldValue)]) -> Vec<(String, FieldValue)> {
        let mut merged: Vec<(String, FieldValue)> = self
            .decls
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.config.clone())
            .unwrap_or_default();
        for (k, v) in own {
            merged.retain(|(x, _)| x != k);
            merged.push((k.clone(), v.clone()));
        }
        merged
    }
}

/// Whether evaluating `stage`'s exit criteria needs the prospect's full
/// activity list (for plugins that read it), not just counts by kind.
pub fn needs_activities(stage: &Stage, plugins: &Plugins<'_>) -> bool {
    let reads = |name: &str| plugins.set.get(name).is_some_and(|p| p.reads_activities);
    stage.exit.iter().any(|c| match &c.check {
        Check::Plugin { plugin, .. } => reads(plugin),
        Check::Checklist { checklist, .. } => reads(checklist),
        _ => false,
    })
}

/// The activity kinds a stage's exit criteria look at.
pub fn activity_kinds(stage: &Stage) -> Vec<&str> {
    let mut kinds: Vec<&str> = stage
        .exit
        .iter()
        .filter_map(|c| match &c.check {
            Check::Activity { kind, .. } => Some(kind.as_str()),
            _ => None,
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Evaluates every exit criterion of `stage` for `prospect` as of `as_of`.
///
/// Only activities at or before `as_of` count, so a move caused by an
/// activity is decided by what was known at that activity's time.
pub fn evaluate_stage(
    stage: &Stage,
    prospect: &Prospect,
    activities: &ActivityFacts,
    as_of: Millis,
    plugins: Plugins<'_>,
) -> Vec<Verdict> {
    evaluate_stage_with(stage, prospect, activities, as_of, plugins, true)
}

/// [`evaluate_stage`], with the reasons of activity criteria left empty
/// unless `reasons`: a replay's scratch store keeps no verdicts of the
/// moves its criteria make, and
/// writing "`replied` by the prospect recorded 1× (latest …)" after every
/// replayed activity was a tenth of the replay (perf, at 1M prospects).
pub fn evaluate_stage_with(
    stage: &Stage,
    prospect: &Prospect,
    activities: &ActivityFacts,
    as_of: Millis,
    plugins: Plugins<'_>,
    reasons: bool,
) -> Vec<Verdict> {
    stage
        .exit
        .iter()
        .map(|c| evaluate(c, prospect, activities, as_of, plugins, reasons))
        .collect()
}

/// A checklist item's label as a reason quotes it: at most 80 characters.
fn cut_label(label: &str) -> String {
    const MAX: usize = 80;
    match label.char_indices().nth(MAX) {
        None => label.to_string(),
        Some((end, _)) => format!("{}…", &label[..end]),
    }
}

/// The stage's methodology checklists for `prospect`, for display.
pub fn stage_checklists(
    stage: &Stage,
    prospect: &Prospect,
    facts: &ActivityFacts,
    as_of: Millis,
    plugins: Plugins<'_>,
) -> Vec<Checklist> {
    let one = |name: &String| match run_checklist(name, prospect, facts, as_of, plugins) {
        Ok(items) => Checklist::Items {
            name: name.clone(),
            done: items.iter().filter(|i| i.done).count() as u64,
            total: items.len() as u64,
            items,
        },
        Err(error) => Checklist::Failed {
            name: name.clone(),
            error,
        },
    };
    if stage.checklists.len() < 2 {
        return stage.checklists.iter().map(one).collect();
    }
    // Several checklists: one thread each, so the slowest sets the pace.
    let one = &one;
    std::thread::scope(|s| {
        let running: Vec<_> = stage
            .checklists
            .iter()
            .map(|name| s.spawn(move || one(name)))
            .collect();
        running
            .into_iter()
            .map(|r| r.join().expect("a checklist thread panicked"))
            .collect()
    })
}

fn run_checklist(
    name: &str,
    prospect: &Prospect,
    facts: &ActivityFacts,
    as_of: Millis,
    plugins: Plugins<'_>,
) -> Result<Vec<stagecoach_plugin_host::ChecklistItem>, String> {
    let plugin = plugins
        .set
        .get(name)
        .ok_or_else(|| plugins.set.missing_reason(name))?;
    let config = plugins.config(name, &[]);
    let input = CallInput {
        prospect,
        activities: &facts.activities,
        now: as_of,
        config: &config,
    };
    plugin
        .checklist(&input)
        .map(|(items, _)| items)
        .map_err(|f| f.to_string())
}

/// True when the verdicts allow leaving the stage. A stage without exit
/// criteria never lets a prospect leave by itself: that would be a stage
/// nobody can be held to.
/// A warn-mode criterion never holds anyone: its verdict is recorded, met
/// or not.
pub fn all_met(verdicts: &[Verdict]) -> bool {
    !verdicts.is_empty() && verdicts.iter().all(|v| v.met || v.warn)
}

fn evaluate(
    criterion: &ExitCriterion,
    prospect: &Prospect,
    activities: &ActivityFacts,
    as_of: Millis,
    plugins: Plugins<'_>,
    reasons: bool,
) -> Verdict {
    let (met, reason) = match &criterion.check {
        Check::Activity {
            kind,
            actor,
            at_least,
            since_entering,
        } => {
            let matching = activities.of_kind(kind).iter().filter(|(at, by)| {
                *at <= as_of
                    && actor.is_none_or(|want| *by == want)
                    && (!since_entering || *at >= prospect.stage_entered_at)
            });
            let (count, latest) = matching.fold((0u32, None), |(n, latest), (at, _)| {
                (n + 1, Some(latest.map_or(*at, |l: Millis| l.max(*at))))
            });
            if !reasons {
                return Verdict {
                    question: criterion.question.clone(),
                    met: latest.is_some() && count >= *at_least,
                    reason: String::new(),
                    warn: criterion.mode == crate::process::CriterionMode::Warn,
                };
            }
            let who = actor.map_or(String::new(), |a| format!(" by the {}", a.as_str()));
            let window = if *since_entering {
                " since entering the stage"
            } else {
                ""
            };
            match latest {
                Some(latest) if count >= *at_least => (
                    true,
                    format!("`{kind}`{who} recorded {count}× (latest {latest})"),
                ),
                _ if count == 0 => (false, format!("no `{kind}`{who} recorded{window}")),
                _ => (
                    false,
                    format!("`{kind}`{who} recorded {count} of {at_least} times needed{window}"),
                ),
            }
        }
        Check::Field { field, op, value } => compare(prospect.fields.get(field), field, *op, value),
        Check::Answer { field } => match prospect.fields.get(field) {
            Some(FieldValue::Bool(true)) => (true, format!("`{field}` answered yes")),
            Some(FieldValue::Bool(false)) => (false, format!("`{field}` answered no")),
            Some(other) => (
                false,
                format!("`{field}` is `{other}`, not a yes/no answer"),
            ),
            None => (false, format!("`{field}` not answered yet")),
        },
        Check::Plugin { plugin, config } => match plugins.set.get(plugin) {
            None => (false, plugins.set.missing_reason(plugin)),
            Some(loaded) => {
                let config = plugins.config(plugin, config);
                let input = CallInput {
                    prospect,
                    activities: &activities.activities,
                    now: as_of,
                    config: &config,
                };
                match loaded.evaluate(&input) {
                    Ok((v, _)) => (v.met, v.reason),
                    Err(failure) => (false, failure.to_string()),
                }
            }
        },
        Check::Checklist {
            checklist,
            at_least,
        } => match run_checklist(checklist, prospect, activities, as_of, plugins) {
            Err(reason) => (false, reason),
            Ok(items) => {
                let done = items.iter().filter(|i| i.done).count();
                let need = at_least.map_or(items.len(), |n| n as usize);
                let missing: Vec<&str> = items
                    .iter()
                    .filter(|i| !i.done)
                    .map(|i| i.label.as_str())
                    .collect();
                let mut reason = format!(
                    "{done} of {} `{checklist}` items done, {need} needed",
                    items.len()
                );
                if !missing.is_empty() {
                    // Bounded whatever the plugin's limits: the reason is
                    // stored with every transition it allows.
                    const SHOWN: usize = 5;
                    let mut list = missing
                        .iter()
                        .take(SHOWN)
                        .map(|l| cut_label(l))
                        .collect::<Vec<_>>()
                        .join("; ");
                    if missing.len() > SHOWN {
                        list.push_str(&format!("; and {} more", missing.len() - SHOWN));
                    }
                    reason.push_str(&format!(" (missing: {list})"));
                }
                (done >= need && !items.is_empty(), reason)
            }
        },
    };
    Verdict {
        question: criterion.question.clone(),
        met,
        reason,
        warn: criterion.mode == crate::process::CriterionMode::Warn,
    }
}

fn compare(
    actual: Option<&FieldValue>,
    field: &str,
    op: Op,
    expected: &Option<FieldValue>,
) -> (bool, String) {
    let Some(actual) = actual else {
        return (false, format!("`{field}` is not set"));
    };
    let Some(expected) = expected else {
        // Only `present` has no value.
        return (true, format!("`{field}` is `{actual}`"));
    };
    let met = match op {
        Op::Present => true,
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let (Some(a), Some(b)) = (actual.as_number(), expected.as_number()) else {
                return (false, format!("`{field}` is `{actual}`, not a number"));
            };
            match op {
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            }
        }
    };
    let sym = op.as_str();
    let reason = if met {
        format!("`{field}` is `{actual}` ({sym} {expected})")
    } else {
        format!("`{field}` is `{actual}`, needs {sym} {expected}")
    };
    (met, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_types::model::{Activity, Actor, Status};

    fn prospect(entered: i64) -> Prospect {
        Prospect {
            id: 1,
            external_id: None,
            name: "Ada".into(),
            company: None,
            owner: None,
            fields: Default::default(),
            stage: "s".into(),
            status: Status::Open,
            created_at: Millis(0),
            stage_entered_at: Millis(entered),
            last_activity_at: Millis(0),
            closed_at: None,
            owner_since: None,
        }
    }

    fn activity(kind: &str, actor: Actor, at: i64) -> Activity {
        Activity {
            id: at as u64,
            prospect: 1,
            kind: kind.into(),
            actor,
            at: Millis(at),
            data: Default::default(),
        }
    }

    fn stage(exit: &str) -> Stage {
        let text = format!(
            "[process]\nname = \"t\"\n[[stages]]\nid = \"s\"\nname = \"S\"\nexit = [{exit}]\n"
        );
        crate::process::parse(&text, "t.toml")
            .unwrap()
            .stages
            .remove(0)
    }

    #[test]
    fn activity_criteria_count_actor_window_and_time() {
        let s = stage(
            r#"{ question = "q", activity = "replied", actor = "prospect", at_least = 2, since_entering = true }"#,
        );
        let p = prospect(100);
        let acts = vec![
            activity("replied", Actor::Prospect, 50), // before entering
            activity("replied", Actor::Rep, 150),     // wrong actor
            activity("replied", Actor::Prospect, 200),
            activity("replied", Actor::Prospect, 300), // after as_of below
        ];
        let facts = ActivityFacts::from_activities(&acts);
        let v = &evaluate_stage(&s, &p, &facts, Millis(250), Plugins::none())[0];
        assert!(!v.met);
        assert!(v.reason.contains("1 of 2"), "{}", v.reason);
        let v = &evaluate_stage(&s, &p, &facts, Millis(300), Plugins::none())[0];
        assert!(v.met, "{}", v.reason);
    }

    #[test]
    fn field_and_answer_criteria() {
        let s = stage(
            r#"{ question = "b", field = "budget", op = ">=", value = 10000 }, { question = "n", answer = "nda" }"#,
        );
        let mut p = prospect(0);
        let v = evaluate_stage(
            &s,
            &p,
            &ActivityFacts::default(),
            Millis(0),
            Plugins::none(),
        );
        assert!(!v[0].met && v[0].reason.contains("not set"));
        assert!(!v[1].met && v[1].reason.contains("not answered"));
        p.fields
            .insert("budget".into(), FieldValue::Number(12000.0));
        p.fields.insert("nda".into(), FieldValue::Bool(true));
        let v = evaluate_stage(
            &s,
            &p,
            &ActivityFacts::default(),
            Millis(0),
            Plugins::none(),
        );
        assert!(all_met(&v), "{v:?}");
        p.fields
            .insert("budget".into(), FieldValue::Text("big".into()));
        assert!(
            !evaluate_stage(
                &s,
                &p,
                &ActivityFacts::default(),
                Millis(0),
                Plugins::none()
            )[0]
            .met
        );
    }

    #[test]
    fn a_stage_without_criteria_is_never_met() {
        assert!(!all_met(&[]));
    }
}
