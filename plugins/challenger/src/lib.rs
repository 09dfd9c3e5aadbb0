//! `challenger`: the Challenger (teach, tailor, take control) methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: an `insight_presented` activity; the prospect's `problem_confirmed`
//! (the insight reframed their thinking); at least two `stakeholders`
//! (tailoring); a `next_step_agreed` by the prospect (taking control).

use stagecoach_plugin_sdk::{ChecklistItem, Num, checklist_plugin};

checklist_plugin! {
    name: "challenger",
    description: "Challenger: commercial insight taught, message tailored, control of the next step.",
    items: |p| vec![
        ChecklistItem::recorded(
            "teach",
            "Commercial insight presented",
            p,
            "insight_presented",
        ),
        ChecklistItem::prospect_did(
            "reframe",
            "Prospect confirmed the reframed problem",
            p,
            "problem_confirmed",
        ),
        {
            let n = p.number("stakeholders").unwrap_or(0.0);
            ChecklistItem::new(
                "tailor",
                "Message tailored to 2+ stakeholders",
                n >= 2.0,
                format!("{} stakeholders engaged", Num(n)),
            )
        },
        ChecklistItem::prospect_did(
            "take-control",
            "Prospect agreed the next step",
            p,
            "next_step_agreed",
        ),
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_plugin_sdk::{Actor, Config, Input, Plugin, Prospect};

    fn items(p: Prospect) -> Vec<ChecklistItem> {
        Checklist::checklist(&Input::new(p, 0, Config::default())).unwrap()
    }

    #[test]
    fn tailoring_needs_two_stakeholders() {
        let one = items(Prospect::new("research").with_field("stakeholders", 1));
        assert!(!one[2].done);
        let two = items(
            Prospect::new("research")
                .with_field("stakeholders", 2)
                .with_activity("insight_presented", Actor::Rep, 1),
        );
        assert!(two[0].done && two[2].done);
        assert!(!two[3].done);
    }
}
