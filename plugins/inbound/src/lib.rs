//! `inbound`: the Inbound selling (Identify, Connect, Explore, Advise) methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: Identify: the lead came inbound (`source` = inbound, or a
//! `content_downloaded` by the prospect); Connect: the prospect `replied`;
//! Explore: `requirements_shared`; Advise: `demo_attended` or
//! `proposal_requested`.

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "inbound",
    description: "Inbound selling: identify, connect, explore, advise.",
    items: |p| vec![
        {
            let inbound = p
                .text("source")
                .is_some_and(|s| s.eq_ignore_ascii_case("inbound"));
            ChecklistItem::either(
                ChecklistItem::new(
                    "identify",
                    "Identify: an active buyer",
                    inbound,
                    "`source` is inbound",
                ),
                ChecklistItem::prospect_did(
                    "identify",
                    "Identify: an active buyer",
                    p,
                    "content_downloaded",
                ),
            )
        },
        ChecklistItem::prospect_did("connect", "Connect: the prospect replied", p, "replied"),
        ChecklistItem::prospect_did(
            "explore",
            "Explore: goals and challenges shared",
            p,
            "requirements_shared",
        ),
        ChecklistItem::either(
            ChecklistItem::prospect_did(
                "advise",
                "Advise: presentation received",
                p,
                "demo_attended",
            ),
            ChecklistItem::prospect_did(
                "advise",
                "Advise: presentation received",
                p,
                "proposal_requested",
            ),
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
    fn identify_connect_explore_advise() {
        let p = Prospect::new("research")
            .with_field("source", "Inbound")
            .with_action("replied", 1)
            .with_action("proposal_requested", 2);
        let items = items(p);
        let ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["identify", "connect", "explore", "advise"]);
        let done: Vec<_> = items.iter().map(|i| i.done).collect();
        assert_eq!(done, [true, true, false, true]);
    }
}
