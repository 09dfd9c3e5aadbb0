//! `bant`: the BANT (Budget, Authority, Need, Timeline) methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: `budget` field; `decision_maker` yes or a `decision_maker_met`
//! activity; `requirements_shared` by the prospect or a `need` field; a
//! `timeline` or `close_date` field.

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "bant",
    description: "BANT: budget, authority, need and timeline established.",
    items: |p| vec![
        ChecklistItem::field("budget", "Budget confirmed", p, "budget"),
        ChecklistItem::either(
            ChecklistItem::field("authority", "Decision maker involved", p, "decision_maker"),
            ChecklistItem::prospect_did(
                "authority",
                "Decision maker involved",
                p,
                "decision_maker_met",
            ),
        ),
        ChecklistItem::either(
            ChecklistItem::prospect_did(
                "need",
                "Need stated by the prospect",
                p,
                "requirements_shared",
            ),
            ChecklistItem::field("need", "Need stated by the prospect", p, "need"),
        ),
        ChecklistItem::either(
            ChecklistItem::field("timeline", "Timeline agreed", p, "timeline"),
            ChecklistItem::field("timeline", "Timeline agreed", p, "close_date"),
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
    fn four_items_from_fields_and_actions() {
        let none = items(Prospect::new("connect"));
        assert_eq!(none.len(), 4);
        assert!(none.iter().all(|i| !i.done));
        let all = items(
            Prospect::new("connect")
                .with_field("budget", 20000)
                .with_action("decision_maker_met", 5)
                .with_action("requirements_shared", 6)
                .with_field("close_date", "2026-09-30"),
        );
        assert!(all.iter().all(|i| i.done), "{all:?}");
        // The rep sharing requirements is not the prospect stating a need.
        let rep =
            items(Prospect::new("connect").with_activity("requirements_shared", Actor::Rep, 1));
        assert!(!rep[2].done);
    }
}
