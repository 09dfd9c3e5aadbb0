import assert from "node:assert/strict";
import { test } from "node:test";

import { Config, Input, PluginError, Prospect } from "stagecoach-plugin";

import plugin from "../src/index.ts";

const config = (extra = {}) =>
  new Config({ min_employees: 50, industries: "SaaS, fintech", min_score: 0.5, ...extra });
const evaluate = (p: Prospect, c: Config) => plugin.evaluate(new Input(p, 0, c));

test("scores configured checks", () => {
  const fits = new Prospect("prospect", { fields: { employees: 200, industry: "saas" } });
  assert.deepEqual(evaluate(fits, config()), {
    met: true,
    reason: "ICP score 2/2 (employees 200 ≥ 50; industry saas)",
  });
  const half = new Prospect("prospect", { fields: { employees: 10, industry: "fintech" } });
  assert.equal(evaluate(half, config()).met, true);
  assert.equal(evaluate(half, new Config({ min_employees: 50, industries: "SaaS, fintech" })).met, false);
});

test("missing fields fail and no config is an error", () => {
  const v = evaluate(new Prospect("p"), config());
  assert.equal(v.met, false);
  assert.match(v.reason, /`employees` not set/);
  const elsewhere = new Prospect("p", { fields: { employees: 12.5, industry: "retail" } });
  assert.equal(
    evaluate(elsewhere, config()).reason,
    "ICP score 0/2 (employees 12.5 < 50; industry retail not in SaaS, fintech)",
  );
  assert.throws(() => evaluate(new Prospect("p"), new Config()), PluginError);
});

test("numeric text counts and only ASCII letters fold", () => {
  const p = new Prospect("p", { fields: { employees: " 75 ", industry: "ÉNERGIE" } });
  assert.equal(
    evaluate(p, new Config({ min_employees: 50, industries: "énergie" })).reason,
    "ICP score 1/2 (employees 75 ≥ 50; industry ÉNERGIE not in énergie)",
  );
});
