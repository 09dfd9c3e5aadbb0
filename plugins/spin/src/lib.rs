//! `spin`: the SPIN selling (Situation, Problem, Implication, Need-payoff) methodology as a checklist, every item
//! verifiable from recorded activities and fields.
//!
//! Items: a `current_solution` field (Situation); a `pain` field or the
//! prospect's `problem_confirmed` (Problem); a `cost_of_problem` number
//! (Implication); the prospect's `value_confirmed` (Need-payoff).

use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};

checklist_plugin! {
    name: "spin",
    description: "SPIN: situation, problem, implication and need-payoff established.",
    items: |p| vec![
        ChecklistItem::field(
            "situation",
            "Situation: current solution known",
            p,
            "current_solution",
        ),
        ChecklistItem::either(
            ChecklistItem::field("problem", "Problem: pain stated", p, "pain"),
            ChecklistItem::prospect_did(
                "problem",
                "Problem: pain stated",
                p,
                "problem_confirmed",
            ),
        ),
        ChecklistItem::field(
            "implication",
            "Implication: cost of the problem quantified",
            p,
            "cost_of_problem",
        ),
        ChecklistItem::prospect_did(
            "need-payoff",
            "Need-payoff: prospect stated the value",
            p,
            "value_confirmed",
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
    fn four_spin_items() {
        let p = Prospect::new("research")
            .with_field("current_solution", "spreadsheets")
            .with_field("cost_of_problem", 40000);
        let done: Vec<_> = items(p).iter().map(|i| i.done).collect();
        assert_eq!(done, [true, false, true, false]);
    }
}
