// The TypeScript SDK natively: what a plugin author's tests rely on, and the
// parts that must match the Rust SDK exactly (numbers, numeric text,
// evidence texts, UTF-8 byte offsets without TextEncoder).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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
import { decodeInput, decodeMetricInput, NO_SPAN, Pool } from "../src/pool.ts";

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
  const pool = new Pool(text);
  for (const s of ["Zoë", "🚀", "café", "budget", " "]) {
    assert.equal(pool.get(bytes.indexOf(Buffer.from(s)), Buffer.byteLength(s)), s);
  }
  assert.equal(pool.opt(NO_SPAN, 0), undefined);
  assert.equal(new Pool("a budget").get(2, 6), "budget");
  // Text the host says is ASCII is not scanned.
  assert.equal(new Pool("a budget", undefined, 0, true).get(2, 6), "budget");
});

// What the daemon sends, written by the plugin host's own test: the host's
// writer and this reader are held to the same bytes.
function fixture(name: string): [string, Uint8Array, any] {
  const dir = new URL("../../testdata/", import.meta.url);
  const text = readFileSync(new URL(`${name}.txt`, dir), "utf8");
  const packed = new Uint8Array(readFileSync(new URL(`${name}.bin`, dir)));
  return [text, packed, JSON.parse(readFileSync(new URL(`${name}.json`, dir), "utf8"))];
}

test("the packed input reads as the host wrote it", () => {
  const [text, packed, want] = fixture("input");
  // The questions about activities, answered from the host's columns
  // (before any activity object is made), as from the objects.
  for (const fresh of [true, false]) {
    const q = decodeInput(text, packed).prospect;
    if (!fresh) q.activities();
    for (const kind of ["demo_attended", "démo_envoyée", "replied", "email_sent", "missing"]) {
      const mine = want.prospect.activities.filter((a: any) => a.kind === kind);
      assert.equal(q.count(kind), mine.length);
      assert.equal(q.hasActivity(kind), mine.length > 0);
      assert.equal(q.did(kind), mine.some((a: any) => a.actor === "prospect"));
      assert.deepEqual(q.activitiesOf(kind).map((a) => a.at), mine.map((a: any) => a.at));
      assert.equal(q.last(kind)?.at, mine.length ? mine[mine.length - 1].at : undefined);
      // The latest of equals is the later one.
      assert.deepEqual(q.last(kind)?.data(), mine.length ? mine[mine.length - 1].data : undefined);
      assert.equal(
        q.countSinceStageEntry(kind),
        mine.filter((a: any) => a.at >= q.stageEnteredAt).length,
      );
    }
    assert.equal(item.prospectDid("d", "D", q, "demo_attended").evidence, "`demo_attended` recorded (at -5000 ms)");
    assert.equal(item.prospectDid("e", "E", q, "démo_envoyée").done, false);
  }
  const i = decodeInput(text, packed);
  const p = i.prospect;
  const w = want.prospect;
  assert.deepEqual(
    [p.id, p.name, p.company, p.owner, p.stage, p.status],
    [Number(w.id), w.name, w.company ?? undefined, w.owner ?? undefined, w.stage, w.status],
  );
  assert.deepEqual(
    [p.createdAt, p.stageEnteredAt, p.activitiesTruncated],
    [w.created_at, w.stage_entered_at, w.activities_truncated],
  );
  assert.deepEqual(p.fields(), w.fields);
  assert.deepEqual(
    p.activities().map((a) => [a.kind, a.actor, a.at, a.data()]),
    w.activities.map((a: any) => [a.kind, a.actor, a.at, a.data]),
  );
  assert.deepEqual([i.now, i.config.entries()], [want.now, want.config]);
  // The views over it answer as over a prospect built natively.
  assert.equal(p.number("employees"), 120);
  assert.equal(p.yes("decision_maker"), false);
  assert.ok(p.did("demo_attended") && !p.did("démo_envoyée") && p.hasActivity("démo_envoyée"));
  assert.equal(p.activities()[1].datum("who"), "ça va");
  assert.deepEqual(i.config.items("industries"), ["saas", "fintech", "☃"]);
  // Every entry found by its name where it lies, as in the pairs; a name
  // that is a prefix of one, or absent, finds nothing.
  const fresh = decodeInput(text, packed);
  for (const [name, value] of w.fields) assert.deepEqual(fresh.prospect.field(name), value, name);
  for (const [name, value] of want.config) assert.deepEqual(fresh.config.get(name), value, name);
  assert.equal(fresh.prospect.field("employee"), undefined);
  assert.equal(fresh.config.get("nope"), undefined);
  // It shows as a prospect built natively does, and its values can be set.
  const native = new Prospect(w.stage, {
    id: Number(w.id),
    name: w.name,
    company: w.company ?? undefined,
    owner: w.owner ?? undefined,
    status: w.status,
    createdAt: w.created_at,
    stageEnteredAt: w.stage_entered_at,
    fields: Object.fromEntries(w.fields),
    activities: fresh.prospect.activities(),
  });
  assert.deepEqual(JSON.parse(JSON.stringify(decodeInput(text, packed).prospect)), JSON.parse(JSON.stringify(native)));
  fresh.prospect.stage = "elsewhere";
  assert.equal(fresh.prospect.stage, "elsewhere");
  assert.equal(decodeInput(text, packed).prospect.stage, w.stage);
});

test("the packed metric input reads as the host wrote it", () => {
  const [text, packed, want] = fixture("metric");
  const m = decodeMetricInput(text, packed);
  assert.deepEqual([m.now, m.config.entries()], [want.now, want.config]);
  assert.deepEqual(
    m.prospects().map((p) => [p.id, p.stage, p.owner, p.status, p.createdAt, p.closedAt, p.stageProbability, p.fields()]),
    want.prospects.map((p: any) => [
      Number(p.id),
      p.stage,
      p.owner ?? undefined,
      p.status,
      p.created_at,
      p.closed_at ?? undefined,
      p.stage_probability ?? undefined,
      p.fields,
    ]),
  );
  assert.deepEqual(
    m.transitions().map((t) => [t.prospect, t.from, t.to, t.at, t.kind]),
    want.transitions.map((t: any) => [Number(t.prospect), t.from ?? undefined, t.to, t.at, t.kind]),
  );
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
