"""BANT in Python: budget, authority, need and timeline established (the
same items and evidence as the Rust plugin in plugins/bant)."""

from stagecoach_plugin import ChecklistItem as Item
from stagecoach_plugin import Input, Plugin


class Bant(Plugin):
    name = "bant"
    description = "BANT: budget, authority, need and timeline established."

    def checklist(self, input: Input) -> list[Item]:
        p = input.prospect
        return [
            Item.field("budget", "Budget confirmed", p, "budget"),
            Item.either(
                Item.field("authority", "Decision maker involved", p, "decision_maker"),
                Item.prospect_did("authority", "Decision maker involved", p, "decision_maker_met"),
            ),
            Item.either(
                Item.prospect_did("need", "Need stated by the prospect", p, "requirements_shared"),
                Item.field("need", "Need stated by the prospect", p, "need"),
            ),
            Item.either(
                Item.field("timeline", "Timeline agreed", p, "timeline"),
                Item.field("timeline", "Timeline agreed", p, "close_date"),
            ),
        ]
