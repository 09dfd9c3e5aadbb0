//! `meddpicc`: the MEDDPICC methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Eight items, each a field (or the prospect's action where one fits):
//! `metrics`, `economic_buyer` / `economic_buyer_met`, `decision_criteria`,
//! `decision_process`, `paper_process` / `legal_review_started`, `pain` /
//! `requirements_shared`, `champion`, `competition`. Require, for example,
//! 6 of 8 with `{ checklist = "meddpicc", at_least = 6 }`.

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "meddpicc",
    description: "MEDDPICC: metrics, economic buyer, decision criteria and process, paper process, pain, champion, competition.",
    items: |p| vec![
        ChecklistItem::field(
            "metrics",
            "Metrics: quantified value the prospect expects",
            p,
            "metrics",
        ),
        ChecklistItem::either(
            ChecklistItem::field(
                "economic-buyer",
                "Economic buyer identified",
                p,
                "economic_buyer",
            ),
            ChecklistItem::prospect_did(
                "economic-buyer",
                "Economic buyer identified",
                p,
                "economic_buyer_met",
            ),
        ),
        ChecklistItem::field(
            "decision-criteria",
            "Decision criteria known",
            p,
            "decision_criteria",
        ),
        ChecklistItem::field(
            "decision-process",
            "Decision process known",
            p,
            "decision_process",
        ),
        ChecklistItem::either(
            ChecklistItem::field("paper-process", "Paper process known", p, "paper_process"),
            ChecklistItem::prospect_did(
                "paper-process",
                "Paper process known",
                p,
                "legal_review_started",
            ),
        ),
        ChecklistItem::either(
            ChecklistItem::field("pain", "Pain identified", p, "pain"),
            ChecklistItem::prospect_did("pain", "Pain identified", p, "requirements_shared"),
        ),
        ChecklistItem::field("champion", "Champion inside the account", p, "champion"),
        ChecklistItem::field("competition", "Competition known", p, "competition"),
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
    fn eight_items() {
        let p = Prospect::new("present")
            .with_field("metrics", "cut churn 10%")
            .with_action("economic_buyer_met", 1)
            .with_field("decision_criteria", "SSO, price")
            .with_field("champion", "Dana (VP Ops)");
        let items = items(p);
        assert_eq!(items.len(), 8);
        assert_eq!(items.iter().filter(|i| i.done).count(), 4);
        assert_eq!(items[1].id, "economic-buyer");
        assert!(items[1].done);
        assert!(items[7].evidence.contains("`competition` is not set"));
    }
}
