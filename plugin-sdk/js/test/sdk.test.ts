// The TypeScript SDK natively: what a plugin author's tests rely on, and the
// parts that must match the Rust SDK exactly (numbers, numeric text,
// evidence texts, UTF-8 byte offsets without TextEncoder).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  capabilities,
  Config,
  definePlugin,
  Input,
  item,
  MetricInput,
  num,
  Prospect,
  ProspectSummary,
} from "../src/index.ts";
import { Pool } from "../src/pool.ts";

test("numbers are written as the Rust SDK writes them", () => {
  const cases: Array<[number, string]> = [
    [120, "120"],
    [0.25, "0.25"],
    [12.5, "12.5"],
    [-3, "-3"],
    [-0, "0"],
    [1e-7, "0.0000001"],
    [-1.5e-10, "-0.00000000015"],
    [1e15, "1000000000000000"],
    [2.5e16, "25000000000000000"],
    [1e21, "1000000000000000000000"],
    [1.5e300, "15" + "0".repeat(299)],
    [123456789012345.6, "123456789012345.6"],
    [0.1 + 0.2, "0.30000000000000004"],
    [NaN, "NaN"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
  ];
  for (const [n, text] of cases) assert.equal(num(n), text, `num(${n})`);
});

test("numeric text is read as Rust reads it", () => {
  const p = new Prospect("s", {
    fields: { a: " 75 ", b: "0x10", c: "inf", d: "", e: "1e3", f: true, g: "1_000", h: ".5" },
  });
  assert.equal(p.number("a"), 75);
  assert.equal(p.number("b"), undefined);
  assert.equal(p.number("c"), Infinity);
  assert.equal(p.number("d"), undefined);
  assert.equal(p.number("e"), 1000);
  assert.equal(p.number("f"), undefined);
  assert.equal(p.number("g"), undefined);
  assert.equal(p.number("h"), 0.5);
  assert.ok(p.yes("f") && !p.hasField("d") && p.hasField("a"));
});

test("activity views", () => {
  const p = new Prospect("research")
    .enteredStageAt(100)
    .withAction("replied", 50)
    .withActivity("replied", "rep", 150)
    .withAction("replied", 200)
    .withActivity("demo", "prospect", 200, { minutes: 30, by: "Zoë" })
    .withActivity("demo", "prospect", 200, { minutes: 45 });
  assert.ok(p.did("replied") && !p.did("call"));
  assert.equal(p.count("replied"), 3);
  assert.equal(p.countSinceStageEntry("replied"), 2);
  // The last of equally late ones, as Rust's max_by_key.
  assert.equal(p.last("demo")?.datum("minutes"), 45);
  assert.equal(p.daysInStage(100 + 86_400_000 * 3), 3);
  const onlyRep = new Prospect("s").withActivity("replied", "rep", 1);
  assert.ok(onlyRep.hasActivity("replied") && !onlyRep.did("replied"));
});

test("config reads typed entries", () => {
  const c = new Config({ min: 5, list: " saas, ,fintech ", on: true, text: "5" });
  assert.equal(c.number("min"), 5);
  assert.equal(c.number("text"), undefined);
  assert.deepEqual(c.items("list"), ["saas", "fintech"]);
  assert.deepEqual(c.items("missing"), []);
  assert.equal(c.boolean("on"), true);
});

test("checklist items say what the Rust ones say", () => {
  const p = new Prospect("s", { fields: { budget: 0, dm: false, need: "  ", date: "fin de T3" } })
    .withAction("met", 5)
    .withAction("met", 5)
    .withActivity("shared", "rep", 7);
  assert.equal(item.field("b", "B", p, "budget").evidence, "`budget`: 0");
  assert.equal(item.field("d", "D", p, "dm").evidence, "`dm` is no");
  assert.equal(item.field("n", "N", p, "need").done, false);
  assert.equal(item.prospectDid("m", "M", p, "met").evidence, "`met` recorded (at 5 ms)");
  assert.equal(item.prospectDid("s", "S", p, "shared").evidence, "no `shared` by the prospect yet");
  assert.equal(item.recorded("s", "S", p, "shared").evidence, "`shared` recorded (at 7 ms)");
  const either = item.either(item.field("x", "X", p, "missing"), item.prospectDid("y", "Y", p, "met"));
  assert.deepEqual([either.id, either.label, either.done], ["x", "X", true]);
});

test("spans are UTF-8 byte offsets", () => {
  const text = "Zoë 🚀 café budget";
  const bytes = Buffer.from(text);
  const span = (s: string) => ({ start: bytes.indexOf(Buffer.from(s)), len: Buffer.byteLength(s) });
  const pool = new Pool(text, [
    { name: span("café"), value: { tag: "text", val: span("🚀") } },
    { name: span("budget"), value: { tag: "number", val: 5 } },
  ]);
  for (const s of ["Zoë", "🚀", "café", "budget", " "]) assert.equal(pool.get(span(s)), s);
  assert.deepEqual(pool.run({ start: 0, len: 2 }), [
    ["café", "🚀"],
    ["budget", 5],
  ]);
  assert.equal(new Pool("a budget", []).get({ start: 2, len: 6 }), "budget");
});

test("a plugin provides what it has", () => {
  const both = definePlugin({
    name: "both",
    description: "",
    evaluate: () => ({ met: true, reason: "ok" }),
    checklist: () => [],
  });
  assert.deepEqual(capabilities(both), ["criterion", "checklist"]);
  assert.throws(() => definePlugin({ name: "", description: "", evaluate: () => ({ met: true, reason: "" }) }));
  assert.throws(() => definePlugin({ name: "nothing", description: "" }), /provides nothing/);
  const count = definePlugin({
    name: "count",
    description: "",
    metric: (m) => [{ name: "open", label: "", value: m.prospects().filter((p) => p.status === "open").length }],
  });
  const m = new MetricInput().withProspect(new ProspectSummary(1, "s")).withProspect(new ProspectSummary(2, "s", { status: "won" }));
  assert.deepEqual(count.metric(m), [{ name: "open", label: "", value: 1 }]);
  assert.deepEqual(new Input(new Prospect("s")).config.entries(), []);
});
