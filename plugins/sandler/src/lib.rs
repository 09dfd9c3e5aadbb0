//! `sandler`: the Sandler selling system methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: `meeting_held` (bonding and rapport); `upfront_contract_agreed` by
//! the prospect; `pain`, `budget` and `decision_process` fields;
//! `demo_attended` (fulfillment); `contract_signed` (post-sell).

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "sandler",
    description: "Sandler: bonding, up-front contract, pain, budget, decision, fulfillment, post-sell.",
    items: |p| vec![
        ChecklistItem::prospect_did("bonding", "Bonding and rapport: met", p, "meeting_held"),
        ChecklistItem::prospect_did(
            "upfront-contract",
            "Up-front contract agreed",
            p,
            "upfront_contract_agreed",
        ),
        ChecklistItem::field("pain", "Pain uncovered", p, "pain"),
        ChecklistItem::field("budget", "Budget uncovered", p, "budget"),
        ChecklistItem::field(
            "decision",
            "Decision process uncovered",
            p,
            "decision_process",
        ),
        ChecklistItem::prospect_did(
            "fulfillment",
            "Fulfillment: solution presented",
            p,
            "demo_attended",
        ),
        ChecklistItem::prospect_did(
            "post-sell",
            "Post-sell: commitment signed",
            p,
            "contract_signed",
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
    fn seven_sandler_steps() {
        let items = items(
            Prospect::new("close")
                .with_action("meeting_held", 1)
                .with_field("budget", 1000),
        );
        assert_eq!(items.len(), 7);
        assert_eq!(items.iter().filter(|i| i.done).count(), 2);
    }
}
