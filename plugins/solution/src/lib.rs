//! `solution`: the Solution selling methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: a `pain` field; the prospect attended a demo (`demo_attended`,
//! the solution vision); a `value_estimate` number; a `sponsor` field or a
//! `sponsor_agreed` by the prospect.

use stagecoach_plugin_sdk::{ChecklistItem, Num, checklist_plugin};

checklist_plugin! {
    name: "solution",
    description: "Solution selling: pain, vision, value and sponsor.",
    items: |p| vec![
        ChecklistItem::field("pain", "Pain admitted", p, "pain"),
        ChecklistItem::prospect_did(
            "vision",
            "Prospect saw the solution vision",
            p,
            "demo_attended",
        ),
        {
            let value = p.number("value_estimate");
            let done = value.is_some_and(|v| v > 0.0);
            let evidence = value.map_or("`value_estimate` is not set".into(), |v| {
                format!("value estimated at {}", Num(v))
            });
            ChecklistItem::new("value", "Value quantified", done, evidence)
        },
        ChecklistItem::either(
            ChecklistItem::field("sponsor", "Sponsor agreed", p, "sponsor"),
            ChecklistItem::prospect_did("sponsor", "Sponsor agreed", p, "sponsor_agreed"),
        ),
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_plugin_sdk::{Config, Input, Plugin, Prospect};

    fn items(p: Prospect) -> Vec<ChecklistItem> {
        Checklist::checklist(&Input::new(p, 0, Config::default())).unwrap()
    }

    #[test]
    fn value_must_be_positive() {
        let zero = items(Prospect::new("present").with_field("value_estimate", 0));
        assert!(!zero[2].done);
        let done = items(
            Prospect::new("present")
                .with_field("value_estimate", 50000)
                .with_action("demo_attended", 3),
        );
        assert!(done[1].done && done[2].done);
    }
}
