//! `consultative`: the Consultative selling methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: the prospect shared requirements (`requirements_shared`); a
//! discovery meeting held (`meeting_held`); a `recommendation_sent`; the
//! prospect accepted it (`recommendation_accepted`).

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "consultative",
    description: "Consultative selling: research, questions, advice, agreement.",
    items: |p| vec![
        ChecklistItem::prospect_did(
            "research",
            "Prospect's needs researched",
            p,
            "requirements_shared",
        ),
        ChecklistItem::prospect_did(
            "questions",
            "Discovery conversation held",
            p,
            "meeting_held",
        ),
        ChecklistItem::recorded("advise", "Recommendation sent", p, "recommendation_sent"),
        ChecklistItem::prospect_did(
            "agree",
            "Prospect accepted the recommendation",
            p,
            "recommendation_accepted",
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
    fn agreement_is_the_prospects() {
        let p = Prospect::new("present")
            .with_activity("recommendation_sent", Actor::Rep, 1)
            .with_activity("recommendation_accepted", Actor::Rep, 2);
        let items = items(p);
        assert!(items[2].done);
        assert!(!items[3].done, "the rep cannot accept for the prospect");
    }
}
