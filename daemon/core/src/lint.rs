//! Lint: the mistakes the sales-process guide warns about, as warnings on a
//! process that is otherwise valid.
//!
//! - a stage without exit criteria, or whose criteria are not objective
//!   (only the rep's own actions can satisfy them);
//! - a criterion that only a rep's action can satisfy ("open to
//!   interpretation": the rep decides, not the prospect);
//! - a criterion asking for the prospect's action of a kind declared as
//!   the rep's (no such activity can come in: it never moves anyone, or
//!   it is a mislabelled rep action);
//! - a last stage that closes won on one common activity (a meeting, an
//!   email) rather than a closing action;
//! - a process not changed for longer than `review_every_days`.

use crate::process::{Check, Process, Stage};
use stagecoach_types::model::{Actor, Millis};

use stagecoach_types::api::results::Validation;
pub use stagecoach_types::api::results::Warning;

/// `process.validate`'s answer for a text, and the process when it is
/// valid: its errors, or its stage count and the guide's warnings. What
/// changed against the version in force is the caller's to add.
pub fn validation(
    text: &str,
    file: &str,
    now: Millis,
    last_changed: Option<Millis>,
) -> (Validation, Option<Process>) {
    match crate::process::parse(text, file) {
        Ok(process) => (
            Validation {
                valid: true,
                errors: Vec::new(),
                warnings: lint(&process, now, last_changed),
                stages: Some(process.stages.len()),
                changes: None,
            },
            Some(process),
        ),
        Err(invalid) => (
            Validation {
                valid: false,
                errors: invalid.errors,
                warnings: Vec::new(),
                stages: None,
                changes: None,
            },
            None,
        ),
    }
}

/// Lints `process`. `last_changed` is when the process last changed (the
/// current version's load time, or the file's modification time).
pub fn lint(process: &Process, now: Millis, last_changed: Option<Millis>) -> Vec<Warning> {
    let mut out = Vec::new();
    for (i, stage) in process.stages.iter().enumerate() {
        lint_stage(process, i, stage, &mut out);
    }
    if let (Some(days), Some(changed)) = (process.review_every_days, last_changed) {
        let age = changed.days_until(now);
        if age > f64::from(days) {
            out.push(Warning {
                rule: "review-overdue".into(),
                line: 0,
                column: 0,
                key: "process.review_every_days".into(),
                message: format!(
                    "the process has not changed for {} days; it should be reviewed every {days} days",
                    age.floor()
                ),
                hint: "look at where prospects stall and which criteria predict a win, then edit the process".into(),
            });
        }
    }
    out
}

fn lint_stage(process: &Process, i: usize, stage: &Stage, out: &mut Vec<Warning>) {
    if stage.exit.is_empty() {
        out.push(Warning {
            rule: "no-exit-criteria".into(),
            line: stage.line,
            column: 1,
            key: format!("stages[{i}].exit"),
            message: format!("stage `{}` has no exit criteria: prospects can only leave it by a forced move", stage.id),
            hint: "add the objective prospect action that moves a prospect on, like `{ question = \"Did the prospect reply?\", activity = \"replied\", actor = \"prospect\" }`".into(),
        });
        return;
    }
    let mut rep_only = 0;
    for (j, c) in stage.exit.iter().enumerate() {
        let Check::Activity { kind, actor, .. } = &c.check else {
            continue;
        };
        // An undeclared kind is an error when parsing (a typo would
        // never move anyone), so here every kind is declared or unchecked.
        let declared = process.activities.get(kind);
        if *actor == Some(Actor::Prospect) && declared.and_then(|d| d.actor) == Some(Actor::Rep) {
            out.push(Warning {
                rule: "rep-kind".into(),
                line: c.at.0,
                column: c.at.1,
                key: format!("stages[{i}].exit[{j}]"),
                message: format!(
                    "\"{}\" asks for the prospect's `{kind}`, but `[activities]` declares `{kind}` as the rep's",
                    c.question
                ),
                hint: format!("use a kind the prospect performs, or if `{kind}` really is the prospect's, declare it `actor = \"prospect\"`"),
            });
        }
        let satisfied_by_rep = match actor {
            Some(Actor::Rep) => true,
            Some(Actor::Prospect) => false,
            None => declared.and_then(|d| d.actor) == Some(Actor::Rep),
        };
        if satisfied_by_rep {
            rep_only += 1;
            out.push(Warning {
                rule: "rep-action".into(),
                line: c.at.0,
                column: c.at.1,
                key: format!("stages[{i}].exit[{j}]"),
                message: format!(
                    "\"{}\" is satisfied by the rep's own action (`{kind}`), which is open to interpretation",
                    c.question
                ),
                hint: "use what the prospect did in response, like `replied` or `demo_attended` with `actor = \"prospect\"`".into(),
            });
        }
    }
    if i + 1 == process.stages.len()
        && let [c] = stage.exit.as_slice()
        && let Check::Activity { kind, at_least, .. } = &c.check
        && *at_least <= 1
        && !closing_action(kind)
    {
        out.push(Warning {
            rule: "weak-close".into(),
            line: c.at.0,
            column: c.at.1,
            key: format!("stages[{i}].exit[0]"),
            message: format!(
                "the last stage closes won on a single `{kind}`: one common activity is not evidence of a win"
            ),
            hint: "end the last stage on the prospect's closing action (`contract_signed`), or set `advance = \"manual\"` and close won by hand".into(),
        });
    }
    if rep_only == stage.exit.len() {
        out.push(Warning {
            rule: "not-objective".into(),
            line: stage.line,
            column: 1,
            key: format!("stages[{i}].exit"),
            message: format!(
                "every exit criterion of stage `{}` depends only on the rep's actions",
                stage.id
            ),
            hint: "a stage should end on an objective prospect action or a quantifiable fact"
                .into(),
        });
    }
}

/// Whether a kind's name says it closes a deal (signed, contract, paid, …).
fn closing_action(kind: &str) -> bool {
    const WORDS: [&str; 10] = [
        "sign",
        "contract",
        "won",
        "purchase",
        "order",
        "paid",
        "payment",
        "agreement",
        "commit",
        "closed",
    ];
    let k = kind.to_ascii_lowercase();
    WORDS.iter().any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_guides_mistakes() {
        let text = r#"
[process]
name = "t"
review_every_days = 150

[activities]
replied = { actor = "prospect" }
call_made = { actor = "rep" }

[[stages]]
id = "a"
name = "A"

[[stages]]
id = "b"
name = "B"
exit = [{ question = "Called them?", activity = "call_made" }]

[[stages]]
id = "c"
name = "C"
exit = [{ question = "Replied?", activity = "replied", actor = "prospect" }]

[[stages]]
id = "d"
name = "D"
exit = [{ question = "Did they call?", activity = "call_made", actor = "prospect" }]
"#;
        let p = crate::process::parse(text, "t.toml").unwrap();
        let now = Millis(200 * Millis::DAY);
        let w = lint(&p, now, Some(Millis(10 * Millis::DAY)));
        let rules: Vec<&str> = w.iter().map(|w| w.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "no-exit-criteria",
                "rep-action",
                "not-objective",
                "rep-kind",
                "weak-close",
                "review-overdue"
            ]
        );
        assert_eq!((w[0].line, w[0].key.as_str()), (10, "stages[0].exit"));
        assert_eq!(w[1].line, 17);
        assert_eq!((w[3].line, w[4].line), (27, 27));
        assert!(w[5].message.contains("190 days"), "{}", w[5].message);
        assert!(
            lint(&p, now, Some(Millis(100 * Millis::DAY)))
                .iter()
                .all(|w| w.rule != "review-overdue")
        );
    }

    #[test]
    fn the_default_process_is_clean() {
        let p =
            crate::process::parse(include_str!("../../../process.toml"), "process.toml").unwrap();
        assert_eq!(lint(&p, Millis(0), Some(Millis(0))), vec![]);
    }
}
