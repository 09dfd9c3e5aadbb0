//! Evaluating a stage's exit criteria for one prospect.
//!
//! Pure functions of the prospect, its activities and the time of
//! evaluation: the same inputs always give the same verdicts, which is what
//! makes dry runs (`prospect.evaluate`) trustworthy.

use crate::model::{Activity, FieldValue, Millis, Prospect, Verdict};
use crate::process::{ExitCriterion, Op, Rule, Stage};

/// Evaluates every exit criterion of `stage` for `prospect` as of `as_of`.
///
/// Only activities at or before `as_of` count, so a move caused by an
/// activity is decided by what was known at that activity's time.
pub fn evaluate_stage(
    stage: &Stage,
    prospect: &Prospect,
    activities: &[Activity],
    as_of: Millis,
) -> Vec<Verdict> {
    stage
        .exit
        .iter()
        .map(|c| evaluate(c, prospect, activities, as_of))
        .collect()
}

/// True when the verdicts allow leaving the stage. A stage without exit
/// criteria never lets a prospect leave by itself: that would be a stage
/// nobody can be held to.
pub fn all_met(verdicts: &[Verdict]) -> bool {
    !verdicts.is_empty() && verdicts.iter().all(|v| v.met)
}

fn evaluate(
    criterion: &ExitCriterion,
    prospect: &Prospect,
    activities: &[Activity],
    as_of: Millis,
) -> Verdict {
    let (met, reason) = match &criterion.rule {
        Rule::Activity {
            kind,
            actor,
            at_least,
            since_entering,
        } => {
            let matching = activities.iter().filter(|a| {
                a.kind == *kind
                    && a.at <= as_of
                    && actor.is_none_or(|want| a.actor == want)
                    && (!since_entering || a.at >= prospect.stage_entered_at)
            });
            let (count, latest) = matching.fold((0u32, None), |(n, latest), a| {
                (n + 1, Some(latest.map_or(a.at, |l: Millis| l.max(a.at))))
            });
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
        Rule::Field { field, op, value } => compare(prospect.fields.get(field), field, *op, value),
        Rule::Answer { field } => match prospect.fields.get(field) {
            Some(FieldValue::Bool(true)) => (true, format!("`{field}` answered yes")),
            Some(FieldValue::Bool(false)) => (false, format!("`{field}` answered no")),
            Some(other) => (
                false,
                format!("`{field}` is `{other}`, not a yes/no answer"),
            ),
            None => (false, format!("`{field}` not answered yet")),
        },
    };
    Verdict {
        question: criterion.question.clone(),
        met,
        reason,
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
    use crate::model::{Actor, Status};
    use crate::process::Process;

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
        let text = format!("[process]\nname = \"t\"\n[[stages]]\nid = \"s\"\nname = \"S\"\nexit = [{exit}]\n");
        Process::parse(&text, "t.toml").unwrap().stages.remove(0)
    }

    #[test]
    fn activity_criteria_count_actor_window_and_time() {
        let s = stage(r#"{ question = "q", activity = "replied", actor = "prospect", at_least = 2, since_entering = true }"#);
        let p = prospect(100);
        let acts = vec![
            activity("replied", Actor::Prospect, 50),  // before entering
            activity("replied", Actor::Rep, 150),      // wrong actor
            activity("replied", Actor::Prospect, 200),
            activity("replied", Actor::Prospect, 300), // after as_of below
        ];
        let v = &evaluate_stage(&s, &p, &acts, Millis(250))[0];
        assert!(!v.met);
        assert!(v.reason.contains("1 of 2"), "{}", v.reason);
        let v = &evaluate_stage(&s, &p, &acts, Millis(300))[0];
        assert!(v.met, "{}", v.reason);
    }

    #[test]
    fn field_and_answer_criteria() {
        let s = stage(r#"{ question = "b", field = "budget", op = ">=", value = 10000 }, { question = "n", answer = "nda" }"#);
        let mut p = prospect(0);
        let v = evaluate_stage(&s, &p, &[], Millis(0));
        assert!(!v[0].met && v[0].reason.contains("not set"));
        assert!(!v[1].met && v[1].reason.contains("not answered"));
        p.fields.insert("budget".into(), FieldValue::Number(12000.0));
        p.fields.insert("nda".into(), FieldValue::Bool(true));
        let v = evaluate_stage(&s, &p, &[], Millis(0));
        assert!(all_met(&v), "{v:?}");
        p.fields.insert("budget".into(), FieldValue::Text("big".into()));
        assert!(!evaluate_stage(&s, &p, &[], Millis(0))[0].met);
    }

    #[test]
    fn a_stage_without_criteria_is_never_met() {
        assert!(!all_met(&[]));
    }
}
