//! What changed between two process versions, in words sales ops read.

use crate::process::{Check, ExitCriterion, Op, Process, Stage};
use stagecoach_types::model::Actor;

/// The changes from `old` to `new`, one sentence each, in file order.
pub fn describe(old: &Process, new: &Process) -> Vec<String> {
    let mut out = Vec::new();
    if old.name != new.name {
        out.push(format!(
            "process renamed from \"{}\" to \"{}\"",
            old.name, new.name
        ));
    }
    if old.review_every_days != new.review_every_days {
        out.push(format!(
            "review interval changed from {} to {}",
            days(old.review_every_days),
            days(new.review_every_days)
        ));
    }
    for kind in new
        .activities
        .keys()
        .filter(|k| !old.activities.contains_key(*k))
    {
        out.push(format!("activity kind `{kind}` declared"));
    }
    for kind in old
        .activities
        .keys()
        .filter(|k| !new.activities.contains_key(*k))
    {
        out.push(format!("activity kind `{kind}` no longer declared"));
    }

    // Each new stage's predecessor in the old process: same id, or renamed from it.
    let origin = |s: &Stage| -> Option<&Stage> {
        old.stage(&s.id)
            .or_else(|| s.renamed_from.iter().find_map(|r| old.stage(r)))
    };
    for (i, s) in new.stages.iter().enumerate() {
        match origin(s) {
            None => out.push(format!(
                "stage `{}` ({}) added at position {}",
                s.id,
                s.name,
                i + 1
            )),
            Some(o) if o.id != s.id => out.push(format!("stage `{}` renamed to `{}`", o.id, s.id)),
            Some(_) => {}
        }
    }
    for o in &old.stages {
        let kept = new
            .stages
            .iter()
            .any(|s| origin(s).is_some_and(|x| x.id == o.id));
        if !kept {
            match new.migrate.get(&o.id) {
                Some(to) => out.push(format!(
                    "stage `{}` removed; its prospects move to `{to}`",
                    o.id
                )),
                None => out.push(format!("stage `{}` removed", o.id)),
            }
        }
    }
    let old_order: Vec<&str> = old
        .stages
        .iter()
        .filter(|o| {
            new.stages
                .iter()
                .any(|s| origin(s).is_some_and(|x| x.id == o.id))
        })
        .map(|o| o.id.as_str())
        .collect();
    let new_order: Vec<&str> = new
        .stages
        .iter()
        .filter_map(|s| origin(s).map(|o| o.id.as_str()))
        .collect();
    if old_order != new_order {
        let renamed: Vec<&str> = new
            .stages
            .iter()
            .filter(|s| origin(s).is_some())
            .map(|s| s.id.as_str())
            .collect();
        out.push(format!(
            "stages reordered: {} → {}",
            old_order.join(", "),
            renamed.join(", ")
        ));
    }
    for s in &new.stages {
        if let Some(o) = origin(s) {
            stage_changes(o, s, &mut out);
        }
    }
    out
}

/// What a criterion checks, in words: "the prospect's `replied` at least
/// twice since entering the stage", "field `budget` ≥ 10000".
pub fn check_in_words(check: &Check) -> String {
    match check {
        Check::Activity {
            kind,
            actor,
            at_least,
            since_entering,
        } => {
            let who = match actor {
                Some(Actor::Prospect) => "the prospect's ",
                Some(Actor::Rep) => "the rep's ",
                None => "",
            };
            let times = match at_least {
                1 => String::new(),
                2 => " at least twice".into(),
                n => format!(" at least {n} times"),
            };
            let since = if *since_entering {
                " since entering the stage"
            } else {
                ""
            };
            format!("{who}`{kind}`{times}{since}")
        }
        Check::Field { field, op, value } => {
            let op = match op {
                Op::Eq => "=",
                Op::Ne => "≠",
                Op::Lt => "<",
                Op::Le => "≤",
                Op::Gt => ">",
                Op::Ge => "≥",
                Op::Present => return format!("field `{field}` present"),
            };
            let value = value
                .as_ref()
                .map(|v| match serde_json::to_value(v) {
                    Ok(serde_json::Value::String(s)) => format!("\"{s}\""),
                    Ok(other) => other.to_string(),
                    Err(_) => String::new(),
                })
                .unwrap_or_default();
            format!("field `{field}` {op} {value}")
        }
        Check::Answer { field } => format!("answer `{field}` is yes"),
        Check::Plugin { plugin, config } => {
            if config.is_empty() {
                format!("plugin `{plugin}`")
            } else {
                let list: Vec<String> = config
                    .iter()
                    .map(|(k, v)| match serde_json::to_value(v) {
                        Ok(serde_json::Value::String(s)) => format!("{k} = \"{s}\""),
                        Ok(other) => format!("{k} = {other}"),
                        Err(_) => k.clone(),
                    })
                    .collect();
                format!("plugin `{plugin}` with {}", list.join(", "))
            }
        }
        Check::Checklist {
            checklist,
            at_least,
        } => match at_least {
            Some(n) => format!("at least {n} items of checklist `{checklist}` done"),
            None => format!("every item of checklist `{checklist}` done"),
        },
    }
}

fn days(d: Option<u32>) -> String {
    d.map_or("none".into(), |d| format!("{d} days"))
}

fn stage_changes(o: &Stage, s: &Stage, out: &mut Vec<String>) {
    let id = &s.id;
    if o.name != s.name {
        out.push(format!(
            "stage `{id}`: name changed from \"{}\" to \"{}\"",
            o.name, s.name
        ));
    }
    if o.description != s.description {
        out.push(format!("stage `{id}`: description changed"));
    }
    if o.advance != s.advance {
        out.push(
            format!(
                "stage `{id}`: advance changed from {:?} to {:?}",
                o.advance, s.advance
            )
            .to_lowercase(),
        );
    }
    if o.stall_after_days != s.stall_after_days {
        out.push(format!(
            "stage `{id}`: stalled after {} instead of {}",
            days(s.stall_after_days),
            days(o.stall_after_days)
        ));
    }
    if o.probability != s.probability {
        let pct = |p: Option<f64>| p.map_or("none".into(), |p| format!("{}%", (p * 100.0).round()));
        out.push(format!(
            "stage `{id}`: win probability changed from {} to {}",
            pct(o.probability),
            pct(s.probability)
        ));
    }
    let rule = |c: &ExitCriterion| check_in_words(&c.check);
    for c in &s.exit {
        match o.exit.iter().find(|x| x.question == c.question) {
            None if !o.exit.iter().any(|x| rule(x) == rule(c)) => {
                out.push(format!(
                    "stage `{id}`: exit criterion added: \"{}\"",
                    c.question
                ));
            }
            None => out.push(format!(
                "stage `{id}`: exit criterion reworded: \"{}\"",
                c.question
            )),
            Some(x) if rule(x) != rule(c) => {
                out.push(format!(
                    "stage `{id}`: exit criterion changed: \"{}\" ({} → {})",
                    c.question,
                    rule(x),
                    rule(c)
                ));
            }
            Some(_) => {}
        }
    }
    for c in &o.exit {
        let still = s
            .exit
            .iter()
            .any(|x| x.question == c.question || rule(x) == rule(c));
        if !still {
            out.push(format!(
                "stage `{id}`: exit criterion removed: \"{}\"",
                c.question
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Process {
        crate::process::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn describes_added_removed_renamed_reordered_and_criteria() {
        let old = p(r#"
[process]
name = "t"
[[stages]]
id = "a"
name = "A"
exit = [{ question = "Replied?", activity = "replied" }]
[[stages]]
id = "b"
name = "B"
exit = [{ question = "Budget?", field = "budget", op = ">=", value = 10 }]
[[stages]]
id = "c"
name = "C"
exit = [{ question = "Signed?", activity = "signed" }]
"#);
        let new = p(r#"
[process]
name = "t"
[[stages]]
id = "bb"
name = "B"
renamed_from = ["b"]
exit = [{ question = "Budget?", field = "budget", op = ">=", value = 20 }]
[[stages]]
id = "a"
name = "A"
exit = [{ question = "Replied?", activity = "replied" }, { question = "Met?", activity = "met" }]
[[stages]]
id = "d"
name = "D"
exit = [{ question = "Signed?", activity = "signed" }]
[migrate]
c = "d"
"#);
        let changes = describe(&old, &new);
        assert_eq!(changes[0], "stage `b` renamed to `bb`");
        assert_eq!(changes[1], "stage `d` (D) added at position 3");
        assert_eq!(changes[2], "stage `c` removed; its prospects move to `d`");
        assert_eq!(changes[3], "stages reordered: a, b → bb, a");
        assert_eq!(
            changes[4],
            "stage `bb`: exit criterion changed: \"Budget?\" (field `budget` ≥ 10 → field `budget` ≥ 20)"
        );
        assert_eq!(changes[5], "stage `a`: exit criterion added: \"Met?\"");
        assert_eq!(changes.len(), 6, "{changes:#?}");
        assert!(describe(&old, &old).is_empty());
    }
}
