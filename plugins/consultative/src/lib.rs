//! `consultative`: the Consultative selling methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: the prospect shared requirements (`requirements_shared`); a
//! discovery meeting held (`meeting_held`); a `recommendation_sent`; the
//! prospect accepted it (`recommendation_accepted`).

use stagecoach_plugin_sdk::{Capability, ChecklistItem, Input, Plugin, register_plugin};

/// The plugin.
pub struct Checklist;

impl Plugin for Checklist {
    const NAME: &'static str = "consultative";
    const DESCRIPTION: &'static str =
        "Consultative selling: research, questions, advice, agreement.";
    const PROVIDES: &'static [Capability] = &[Capability::Checklist];

    fn checklist(input: &Input) -> Result<Vec<ChecklistItem>, String> {
        let p = &input.prospect;
        Ok(vec![
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
        ])
    }
}

register_plugin!(Checklist);

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_plugin_sdk::{Actor, Config, Prospect};

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
