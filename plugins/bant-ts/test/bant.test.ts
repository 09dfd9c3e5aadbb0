import assert from "node:assert/strict";
import { test } from "node:test";

import { Input, Prospect } from "stagecoach-plugin";

import plugin from "../src/index.ts";

const items = (p: Prospect) => plugin.checklist(new Input(p));

test("four items from fields and actions", () => {
  const none = items(new Prospect("connect"));
  assert.equal(none.length, 4);
  assert.ok(none.every((i) => !i.done));
  const everything = items(
    new Prospect("connect")
      .withField("budget", 20000)
      .withAction("decision_maker_met", 5)
      .withAction("requirements_shared", 6)
      .withField("close_date", "2026-09-30"),
  );
  assert.ok(everything.every((i) => i.done), JSON.stringify(everything));
  assert.equal(everything[0].evidence, "`budget`: 20000");
  assert.equal(everything[1].evidence, "`decision_maker_met` recorded (at 5 ms)");
  const rep = items(new Prospect("connect").withActivity("requirements_shared", "rep", 1));
  assert.equal(rep[2].done, false);
  assert.equal(rep[2].evidence, "no `requirements_shared` by the prospect yet");
});
