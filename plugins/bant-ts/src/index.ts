/**
 * BANT in TypeScript: budget, authority, need and timeline established (the
 * same items and evidence as the Rust plugin in plugins/bant).
 */

import { definePlugin, item } from "stagecoach-plugin";

export default definePlugin({
  name: "bant",
  description: "BANT: budget, authority, need and timeline established.",

  checklist({ prospect: p }) {
    return [
      item.field("budget", "Budget confirmed", p, "budget"),
      item.either(
        item.field("authority", "Decision maker involved", p, "decision_maker"),
        item.prospectDid("authority", "Decision maker involved", p, "decision_maker_met"),
      ),
      item.either(
        item.prospectDid("need", "Need stated by the prospect", p, "requirements_shared"),
        item.field("need", "Need stated by the prospect", p, "need"),
      ),
      item.either(
        item.field("timeline", "Timeline agreed", p, "timeline"),
        item.field("timeline", "Timeline agreed", p, "close_date"),
      ),
    ];
  },
});
