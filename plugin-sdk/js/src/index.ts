/**
 * Write Stagecoach plugins in TypeScript or JavaScript: exit criteria,
 * methodology checklists and metrics.
 *
 * A plugin is the default export of its entry module, made with
 * {@link definePlugin}: a name, a description, and `evaluate` (an exit
 * criterion), `checklist` (a methodology checklist) or `metric` (a metric).
 * `stagecoach plugins build DIR` bundles it into a WebAssembly component on
 * QuickJS; the same code runs natively under `node --test`, with inputs
 * built by {@link Prospect}, {@link Config} and {@link MetricInput}.
 *
 * The views mirror the Rust SDK name for name (in camelCase), and
 * {@link num} formats numbers as it does, so a rule ported from Rust gives
 * byte-identical reasons.
 */

/** The plugin interface version this SDK builds against. */
export const INTERFACE_VERSION = "0.4.0";

const DAY_MS = 86_400_000;

/** A field, config or data value: text, a number or a yes/no answer. */
export type Value = string | number | boolean;

/** What a plugin provides. */
export type Capability = "criterion" | "checklist" | "metric";

/** Who performed an activity. */
export type Actor = "prospect" | "rep";

/** Where a prospect is. */
export type Status = "open" | "won" | "lost";

/** Log levels for {@link log}. */
export type Level = "debug" | "info" | "warn" | "error";

/**
 * Throw it to fail a call with exactly this message (the Rust SDK's
 * `Err(String)`). Any other exception fails the call too, reported as its
 * name and message.
 */
export class PluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginError";
  }
}

// --- numbers ---------------------------------------------------------------

/**
 * A number as people write it, and as the Rust SDK's `Num` writes it: `120`,
 * not `120.0`; `0.25` stays; never an exponent (`1e-7` is `0.0000001`).
 */
export function num(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "inf";
  if (n === -Infinity) return "-inf";
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n === 0 ? 0 : n);
  return positional(String(n));
}

/** JavaScript's shortest round-trip digits without an exponent. */
function positional(shortest: string): string {
  const e = shortest.indexOf("e");
  if (e < 0) return shortest;
  let mantissa = shortest.slice(0, e);
  const exponent = Number(shortest.slice(e + 1));
  let sign = "";
  if (mantissa.startsWith("-")) {
    sign = "-";
    mantissa = mantissa.slice(1);
  }
  const dot = mantissa.indexOf(".");
  const digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  // Where the decimal point goes, counted from the start of `digits`.
  const point = (dot < 0 ? mantissa.length : dot) + exponent;
  if (point <= 0) return sign + "0." + "0".repeat(-point) + digits;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return sign + digits.slice(0, point) + "." + digits.slice(point);
}

/**
 * Numeric text as the Rust SDK reads it (`str::parse::<f64>` on the trimmed
 * text): `Number("")` is 0 and `Number("0x10")` is 16 in JavaScript; in
 * Rust neither is a number.
 */
function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (!/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$/i.test(t)) {
    return undefined;
  }
  const lower = t.toLowerCase().replace(/^\+/, "");
  if (lower === "inf" || lower === "infinity") return Infinity;
  if (lower === "-inf" || lower === "-infinity") return -Infinity;
  if (lower === "nan" || lower === "-nan") return NaN;
  return Number(t);
}

function asNumber(v: Value | undefined): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string") return parseNumber(v);
  return undefined;
}

type Entries = Array<[string, Value]>;

/**
 * @internal Entries as the host packed them, inside the daemon: read by
 * name where they are, made into pairs only when all are asked for.
 */
export interface PackedEntries {
  find(name: string): Value | undefined;
  all(): Entries;
}

function entriesOf(values?: Record<string, Value>): Entries {
  return Object.entries(values ?? {}).map(([k, v]) => {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new TypeError(`\`${k}\`: a value is text, a number or a boolean`);
    }
    return [k, v];
  });
}

// The helpers below loop by index: `for...of`, destructuring and array
// callbacks go through the iterator protocol, several times the cost of an
// index step in QuickJS (measured with `stagecoach plugins run`: a lookup
// among four fields by destructuring cost about 30k fuel).

function lookup(entries: Entries, name: string): Value | undefined {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e[0] === name) return e[1];
  }
  return undefined;
}

// --- logging ---------------------------------------------------------------

let sink: ((level: Level, message: string) => void) | undefined;

/** @internal Where {@link log} writes inside a component. */
export function setLogSink(f: (level: Level, message: string) => void): void {
  sink = f;
}

/**
 * Writes a line to the daemon's log (to stderr when run natively).
 * `console.log` inside a built plugin goes there too.
 */
export function log(level: Level, message: string): void {
  if (sink) sink(level, message);
  else console.error(`[${level}] ${message}`);
}

// --- inputs ----------------------------------------------------------------

/** @internal A prospect's activities as columns (see `Prospect.columns_`). */
export interface ActivityColumns {
  n: number;
  /** The kinds that occur. */
  kinds: string[];
  /** Each activity's kind, an index into `kinds`. */
  kind: ArrayLike<number>;
  /** Each activity's actor: 0 the prospect, 1 the rep. */
  actor: ArrayLike<number>;
  /** Activity `i`'s time. */
  at(i: number): number;
}

/** @internal Where a prospect's activities come from inside the daemon. */
export interface PackedActivities {
  readonly n: number;
  columns(): ActivityColumns;
  activity(i: number): Activity;
  all(): Activity[];
}

/** One entry of a prospect's activity log. */
export class Activity {
  /** @internal */
  data_: Entries | undefined;
  /** @internal Reads the data on first use, inside the daemon. */
  load_?: () => Entries;
  constructor(
    /** What happened (`replied`, `demo_attended`, ...). */
    public kind: string,
    /** Who did it. */
    public actor: Actor = "prospect",
    /** When, in UTC milliseconds. */
    public at: number = 0,
    data?: Record<string, Value> | Entries | (() => Entries),
  ) {
    if (typeof data === "function") this.load_ = data;
    else this.data_ = Array.isArray(data) ? data : entriesOf(data);
  }

  private entries_(): Entries {
    // Inside the daemon an activity's data is read on first use: most
    // rules never look at it.
    if (this.data_ === undefined) this.data_ = this.load_ ? this.load_() : [];
    return this.data_;
  }

  /** A datum of the activity by name. */
  datum(name: string): Value | undefined {
    return lookup(this.entries_(), name);
  }

  /** The activity's data in order. */
  data(): Entries {
    return [...this.entries_()];
  }
}

/** What a test prospect may set; everything but the stage is optional. */
export interface ProspectInit {
  id?: number;
  name?: string;
  company?: string;
  owner?: string;
  status?: Status;
  createdAt?: number;
  stageEnteredAt?: number;
  fields?: Record<string, Value>;
  activities?: Activity[];
  activitiesTruncated?: boolean;
}

/** A prospect's fields, for the views that have them. */
abstract class HasFields {
  /** @internal The fields, once made (always, outside the daemon). */
  fields_: Entries | undefined = [];
  /** @internal Inside the daemon: the host's packed fields, until made. */
  packedFields_: PackedEntries | undefined = undefined;

  /** @internal The fields as pairs, made from the packed ones on first use. */
  protected own_(): Entries {
    if (this.fields_ === undefined) this.fields_ = this.packedFields_ ? this.packedFields_.all() : [];
    return this.fields_;
  }

  /** The prospect's fields in order. */
  fields(): Entries {
    return [...this.own_()];
  }

  /** A field by name. */
  field(name: string): Value | undefined {
    if (this.fields_ === undefined && this.packedFields_ !== undefined) return this.packedFields_.find(name);
    return lookup(this.own_(), name);
  }

  /** A field as a number (numeric text counts). */
  number(name: string): number | undefined {
    const v = this.field(name);
    return typeof v === "number" ? v : asNumber(v);
  }
}

/**
 * The prospect being evaluated. Build one for tests with
 * `new Prospect("research", { fields: { employees: 120 } })` and the `with*`
 * methods; inside the daemon the SDK builds it from the host's input.
 */
export class Prospect extends HasFields {
  id: number;
  name: string;
  company?: string;
  owner?: string;
  /** The current stage id. */
  stage: string;
  status: Status;
  createdAt: number;
  /** When the prospect entered its current stage (UTC ms). */
  stageEnteredAt: number;
  /** True when older activities were left out to respect the input limit. */
  activitiesTruncated: boolean;
  /** @internal */
  activities_: Activity[] | undefined;
  /** @internal Inside the daemon: the host's activity columns (see `pool`). */
  packed_?: PackedActivities;

  constructor(stage: string, init: ProspectInit = {}) {
    super();
    this.stage = stage;
    this.id = init.id ?? 0;
    this.name = init.name ?? "";
    this.company = init.company;
    this.owner = init.owner;
    this.status = init.status ?? "open";
    this.createdAt = init.createdAt ?? 0;
    this.stageEnteredAt = init.stageEnteredAt ?? 0;
    this.activitiesTruncated = init.activitiesTruncated ?? false;
    // Inside the daemon both come from the input, filled in afterwards.
    this.fields_ = init.fields ? entriesOf(init.fields) : [];
    this.activities_ = init.activities ? [...init.activities] : [];
  }

  /**
   * What `JSON.stringify` and `console.log` show: the prospect's values,
   * its fields and how many activities it has, not the SDK's internals
   * (inside the daemon most values are read from the host's bytes on use).
   */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      name: this.name,
      company: this.company,
      owner: this.owner,
      stage: this.stage,
      status: this.status,
      createdAt: this.createdAt,
      stageEnteredAt: this.stageEnteredAt,
      fields: Object.fromEntries(this.fields()),
      activities: this.packed_ !== undefined && this.activities_ === undefined ? this.packed_.n : this.activities().length,
    };
  }

  /** Adds a field (for tests); returns the prospect. */
  withField(name: string, value: Value): this {
    this.own_().push([name, value]);
    return this;
  }

  /** Adds an activity (for tests); returns the prospect. */
  withActivity(kind: string, actor: Actor, at: number, data?: Record<string, Value>): this {
    this.activities().push(new Activity(kind, actor, at, data));
    return this;
  }

  /** Adds an activity by the prospect (for tests). */
  withAction(kind: string, at: number): this {
    return this.withActivity(kind, "prospect", at);
  }

  /** Sets when the prospect entered its stage (for tests). */
  enteredStageAt(at: number): this {
    this.stageEnteredAt = at;
    return this;
  }


  /** A field as text (`undefined` for numbers and yes/no fields). */
  text(name: string): string | undefined {
    const v = this.field(name);
    return typeof v === "string" ? v : undefined;
  }

  /** True when a yes/no field is yes. */
  yes(name: string): boolean {
    return this.field(name) === true;
  }

  /** True when a field has a non-empty value. */
  hasField(name: string): boolean {
    const v = this.field(name);
    if (typeof v === "string") return v.trim() !== "";
    return v !== undefined;
  }

  /** The most recent activities, oldest first. */
  activities(): Activity[] {
    if (this.activities_ === undefined) this.activities_ = this.packed_ ? this.packed_.all() : [];
    return this.activities_;
  }

  // The questions below are answered from columns (the kinds that occur,
  // each activity's kind as an index into them, its actor and time):
  // inside the daemon they are the host's, viewed as typed arrays, and no
  // activity object is made unless one is returned (an object per activity
  // cost QuickJS about 13k fuel, most of a call over 300 activities).

  /** @internal */
  columns_(): ActivityColumns {
    // The host's columns, also once the objects are made (unless a test
    // builder has added to them since).
    const packed = this.packed_;
    if (packed && (this.activities_ === undefined || this.activities_.length === packed.n)) {
      return packed.columns();
    }
    const all = this.activities();
    const kinds: string[] = [];
    const kind: number[] = [];
    const actor: number[] = [];
    const at: number[] = [];
    for (let i = 0; i < all.length; i++) {
      const a = all[i];
      let k = kinds.indexOf(a.kind);
      if (k < 0) {
        k = kinds.length;
        kinds.push(a.kind);
      }
      kind.push(k);
      actor.push(a.actor === "prospect" ? 0 : 1);
      at.push(a.at);
    }
    return { n: all.length, kinds, kind, actor, at: (i) => at[i] };
  }

  private activity_(i: number): Activity {
    if (this.activities_ !== undefined || !this.packed_) return this.activities()[i];
    return this.packed_.activity(i);
  }

  /** @internal The index of the latest `kind` activity (the last of equals), or -1. */
  latest_(kind: string, byProspect: boolean): number {
    const c = this.columns_();
    const k = c.kinds.indexOf(kind);
    let best = -1;
    let bestAt = 0;
    if (k < 0) return best;
    for (let i = 0; i < c.n; i++) {
      if (c.kind[i] !== k || (byProspect && c.actor[i] !== 0)) continue;
      const at = c.at(i);
      if (best < 0 || at >= bestAt) {
        best = i;
        bestAt = at;
      }
    }
    return best;
  }

  /** Activities of `kind` by anyone. */
  activitiesOf(kind: string): Activity[] {
    const c = this.columns_();
    const k = c.kinds.indexOf(kind);
    const out: Activity[] = [];
    if (k < 0) return out;
    for (let i = 0; i < c.n; i++) if (c.kind[i] === k) out.push(this.activity_(i));
    return out;
  }

  /** True when the prospect itself did `kind` at least once. */
  did(kind: string): boolean {
    const c = this.columns_();
    const k = c.kinds.indexOf(kind);
    if (k < 0) return false;
    for (let i = 0; i < c.n; i++) if (c.kind[i] === k && c.actor[i] === 0) return true;
    return false;
  }

  /** True when anyone recorded `kind` at least once. */
  hasActivity(kind: string): boolean {
    return this.columns_().kinds.indexOf(kind) >= 0;
  }

  /** How many `kind` activities (by anyone). */
  count(kind: string): number {
    const c = this.columns_();
    const k = c.kinds.indexOf(kind);
    let n = 0;
    if (k < 0) return n;
    for (let i = 0; i < c.n; i++) if (c.kind[i] === k) n++;
    return n;
  }

  /** How many `kind` activities since the prospect entered its stage. */
  countSinceStageEntry(kind: string): number {
    const c = this.columns_();
    const k = c.kinds.indexOf(kind);
    const since = this.stageEnteredAt;
    let n = 0;
    if (k < 0) return n;
    for (let i = 0; i < c.n; i++) if (c.kind[i] === k && c.at(i) >= since) n++;
    return n;
  }

  /** The latest `kind` activity (the last of equals, as in Rust). */
  last(kind: string): Activity | undefined {
    const i = this.latest_(kind, false);
    return i < 0 ? undefined : this.activity_(i);
  }

  /** Days in the current stage as of `now`. */
  daysInStage(now: number): number {
    return (now - this.stageEnteredAt) / DAY_MS;
  }
}

/**
 * A plugin's configuration: the `config` table of its criterion (or of its
 * `[[plugins]]` entry) in `process.toml`. For tests:
 * `new Config({ min_employees: 50 })`.
 */
export class Config {
  /** @internal Outside the daemon, the entries. */
  entries_: Entries;
  /** @internal Inside the daemon, the host's packed entries instead. */
  packed_: PackedEntries | undefined;

  constructor(entries?: Record<string, Value>) {
    this.entries_ = entries ? entriesOf(entries) : [];
    this.packed_ = undefined;
  }

  /** @internal The host's entries (made without the constructor). */
  static of_(packed: PackedEntries): Config {
    const c = Object.create(Config.prototype) as Config;
    c.packed_ = packed;
    return c;
  }

  /** Entries in file order. */
  entries(): Entries {
    return this.packed_ !== undefined ? this.packed_.all() : [...this.entries_];
  }

  /** An entry by name. */
  get(name: string): Value | undefined {
    return this.packed_ !== undefined ? this.packed_.find(name) : lookup(this.entries_, name);
  }

  /** A number entry (text is not read as a number here, as in Rust). */
  number(name: string): number | undefined {
    const v = this.get(name);
    return typeof v === "number" ? v : undefined;
  }

  /** A text entry. */
  text(name: string): string | undefined {
    const v = this.get(name);
    return typeof v === "string" ? v : undefined;
  }

  /** A yes/no entry. */
  boolean(name: string): boolean | undefined {
    const v = this.get(name);
    return typeof v === "boolean" ? v : undefined;
  }

  /**
   * A comma-separated text entry as trimmed items (`"saas, fintech"`); empty
   * when the entry is missing or not text.
   */
  items(name: string): string[] {
    const text = this.text(name);
    if (text === undefined) return [];
    const parts = text.split(",");
    const out: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const item = parts[i].trim();
      if (item !== "") out.push(item);
    }
    return out;
  }

  /** The Rust SDK's name for {@link items}. */
  list(name: string): string[] {
    return this.items(name);
  }
}

/** What an exit criterion or checklist is evaluated on. */
export class Input {
  constructor(
    public prospect: Prospect,
    /** The evaluation time (UTC ms), from the host: plugins have no clock. */
    public now: number = 0,
    public config: Config = new Config(),
  ) {}
}

// --- answers ---------------------------------------------------------------

/** An exit criterion's answer. */
export interface Verdict {
  met: boolean;
  /** Why, in words a sales rep understands. */
  reason: string;
}

/** Met, because `reason`. */
export function met(reason: string): Verdict {
  return { met: true, reason };
}

/** Unmet, because `reason`. */
export function unmet(reason: string): Verdict {
  return { met: false, reason };
}

/** One methodology checklist item. */
export interface ChecklistItem {
  /** Stable id (`metrics`, `economic-buyer`). */
  id: string;
  /** What the item asks ("Economic buyer identified"). */
  label: string;
  done: boolean;
  /** What shows it is done, or what is missing. */
  evidence: string;
}

/** Checklist item builders, as in the Rust SDK. */
export const item = {
  /** An item. */
  of(id: string, label: string, done: boolean, evidence: string): ChecklistItem {
    return { id, label, done, evidence };
  },

  /** Done when the prospect did `kind`; the evidence says when, or what is missing. */
  prospectDid(id: string, label: string, p: Prospect, kind: string): ChecklistItem {
    const last = p.latest_(kind, true);
    return last >= 0
      ? { id, label, done: true, evidence: `\`${kind}\` recorded (at ${p.columns_().at(last)} ms)` }
      : { id, label, done: false, evidence: `no \`${kind}\` by the prospect yet` };
  },

  /** Done when anyone recorded `kind`. */
  recorded(id: string, label: string, p: Prospect, kind: string): ChecklistItem {
    const last = p.last(kind);
    return last !== undefined
      ? { id, label, done: true, evidence: `\`${kind}\` recorded (at ${last.at} ms)` }
      : { id, label, done: false, evidence: `no \`${kind}\` recorded yet` };
  },

  /** Done when the field has a value (yes/no fields: when yes). */
  field(id: string, label: string, p: Prospect, name: string): ChecklistItem {
    const v = p.field(name);
    if (v === true) return { id, label, done: true, evidence: `\`${name}\` is yes` };
    if (v === false) return { id, label, done: false, evidence: `\`${name}\` is no` };
    if (typeof v === "string" && v.trim() !== "") {
      return { id, label, done: true, evidence: `\`${name}\`: ${v}` };
    }
    if (typeof v === "number") return { id, label, done: true, evidence: `\`${name}\`: ${num(v)}` };
    return { id, label, done: false, evidence: `\`${name}\` is not set` };
  },

  /** Done when either item is done (`a`'s id and label). */
  either(a: ChecklistItem, b: ChecklistItem): ChecklistItem {
    if (a.done) return a;
    if (b.done) return { id: a.id, label: a.label, done: true, evidence: b.evidence };
    return a;
  },
};

// --- metrics ---------------------------------------------------------------

/** A prospect as a metric plugin sees it. */
export class ProspectSummary extends HasFields {
  owner?: string;
  status: Status;
  createdAt: number;
  closedAt?: number;
  /** The stage's win probability from `process.toml`, if set. */
  stageProbability?: number;

  constructor(
    public id: number,
    public stage: string,
    init: {
      owner?: string;
      status?: Status;
      createdAt?: number;
      closedAt?: number;
      stageProbability?: number;
      fields?: Record<string, Value>;
    } = {},
  ) {
    super();
    this.owner = init.owner;
    this.status = init.status ?? "open";
    this.createdAt = init.createdAt ?? 0;
    this.closedAt = init.closedAt;
    this.stageProbability = init.stageProbability;
    this.fields_ = init.fields ? entriesOf(init.fields) : [];
  }

}

/** A stage change. */
export interface Transition {
  prospect: number;
  from?: string;
  to: string;
  at: number;
  /** `created`, `advanced`, `forced`, `won`, `lost`, ... */
  kind: string;
}

/** What a metric plugin folds over. */
export class MetricInput {
  constructor(
    public now: number = 0,
    public config: Config = new Config(),
    /** @internal */
    public prospects_: ProspectSummary[] = [],
    /** @internal */
    public transitions_: Transition[] = [],
  ) {}

  /** Adds a prospect (for tests). */
  withProspect(p: ProspectSummary): this {
    this.prospects_.push(p);
    return this;
  }

  /** Adds a transition (for tests). */
  withTransition(t: Transition): this {
    this.transitions_.push(t);
    return this;
  }

  prospects(): ProspectSummary[] {
    return this.prospects_;
  }

  transitions(): Transition[] {
    return this.transitions_;
  }
}

/** One named result of a metric plugin. */
export interface MetricValue {
  /** What the number is (`forecast`). */
  name: string;
  /** Which slice it is for (`owner=maria`), empty for the total. */
  label: string;
  value: number;
}

// --- the plugin ------------------------------------------------------------

/** A plugin: what {@link definePlugin} takes and returns. */
export interface Plugin {
  /** The plugin's name, as `process.toml` refers to it. */
  name: string;
  /** One sentence on what it checks or computes. */
  description: string;
  /** What it provides [default: the functions it has]. */
  provides?: Capability[];
  /**
   * Whether `evaluate` and `checklist` read the activity log. Say `false`
   * when they read only fields and config: the daemon then leaves the log
   * out, and each call is much cheaper.
   */
  readsActivities?: boolean;
  /** An exit criterion: is it met for this prospect? */
  evaluate?(input: Input): Verdict;
  /** A methodology checklist: each item done or not, with evidence. */
  checklist?(input: Input): ChecklistItem[];
  /** A metric: named values folded from prospects and transitions. */
  metric?(input: MetricInput): MetricValue[];
}

/** Checks a plugin's shape and returns it: the entry module's default export. */
export function definePlugin<P extends Plugin>(plugin: P): P {
  if (typeof plugin.name !== "string" || plugin.name === "") {
    throw new TypeError("a plugin needs a `name` (how process.toml refers to it)");
  }
  if (!plugin.evaluate && !plugin.checklist && !plugin.metric) {
    throw new TypeError(`\`${plugin.name}\` provides nothing: give it evaluate, checklist or metric`);
  }
  return plugin;
}

/** What a plugin provides: `provides`, or the functions it has. */
export function capabilities(plugin: Plugin): Capability[] {
  if (plugin.provides) return [...plugin.provides];
  const found: Capability[] = [];
  if (plugin.evaluate) found.push("criterion");
  if (plugin.checklist) found.push("checklist");
  if (plugin.metric) found.push("metric");
  return found;
}
