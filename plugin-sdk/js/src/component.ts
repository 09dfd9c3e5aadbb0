/**
 * The glue between the WIT interface, as componentize-qjs presents it, and
 * the SDK's views. Bundled only into a built component (by the entry module
 * `stagecoach plugins build` writes), never run natively.
 *
 * Besides converting: `console.log` and friends go to the daemon's log
 * (QuickJS has no console), an exception becomes a readable failure reason
 * instead of a trap, and UTF-8 byte offsets become string indexes without
 * `TextEncoder` (QuickJS has none).
 */

import * as host from "stagecoach:plugin/host@0.4.0";
import type * as wit from "stagecoach:plugin/types@0.4.0";

import { capabilities, Level, Plugin, PluginError, setLogSink } from "./index";
import { decodeInput, decodeMetricInput } from "./pool";

// QuickJS makes some of its built-in objects (`Math` among them) the first
// time a script touches them. This module runs once, when the component is
// built, and every call starts from the memory it leaves: touching them
// here makes them part of that memory instead of work for every call (a
// call's first `Math.abs` cost about 57k fuel, measured with `stagecoach
// plugins run`).
for (const name of [
  "Math", "JSON", "Number", "String", "Array", "Object", "RegExp", "Map", "Set", "WeakMap",
  "WeakSet", "Symbol", "Reflect", "Date", "BigInt", "Boolean", "Error", "TypeError",
  "RangeError", "ArrayBuffer", "DataView", "Uint8Array", "Uint32Array", "Int32Array",
  "Float64Array", "Intl",
]) {
  void (globalThis as Record<string, unknown>)[name];
}

// The host keeps at most this much of one line.
const MAX_LINE = 4096;

function hostLog(level: Level, message: string): void {
  let n = 0;
  for (const ch of message) {
    const c = ch.codePointAt(0)!;
    const bytes =
      c < 0x80
        ? [c]
        : c < 0x800
          ? [0xc0 | (c >> 6), 0x80 | (c & 63)]
          : c < 0x10000
            ? [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)]
            : [0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)];
    if (n + bytes.length > MAX_LINE) break;
    for (const b of bytes) host.logByte(b);
    n += bytes.length;
  }
  host.logEnd(level);
}

setLogSink(hostLog);

function show(x: unknown): string {
  if (typeof x === "string") return x;
  if (x instanceof Error) return `${x.name}: ${x.message}`;
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}

const line =
  (level: Level) =>
  (...args: unknown[]): void =>
    hostLog(level, args.map(show).join(" "));

(globalThis as { console?: unknown }).console = {
  log: line("info"),
  info: line("info"),
  debug: line("debug"),
  warn: line("warn"),
  error: line("error"),
};

/** An exception as a failure reason a plugin author can act on. */
function reason(e: unknown): string {
  if (e instanceof PluginError) return e.message;
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  return `threw ${show(e)}`;
}

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    // A thrown string is the interface's error result.
    throw reason(e);
  }
}

function expect(ok: boolean, what: string): void {
  if (!ok) throw new PluginError(what);
}

/** The interface's `plugin` export, implemented by `plugin`. */
export function exportPlugin(plugin: Plugin) {
  const missing = (what: string) => () => {
    throw new PluginError(`\`${plugin.name}\` does not provide ${what}`);
  };
  const evaluate = plugin.evaluate?.bind(plugin) ?? missing("an exit criterion");
  const checklist = plugin.checklist?.bind(plugin) ?? missing("a checklist");
  const metric = plugin.metric?.bind(plugin) ?? missing("a metric");
  return {
    describe(): wit.Info {
      return {
        name: plugin.name,
        description: plugin.description ?? "",
        provides: capabilities(plugin),
        readsActivities: plugin.readsActivities ?? true,
      };
    },
    evaluate(raw: wit.Input): wit.Verdict {
      return call(() => {
        const v = evaluate(decodeInput(raw.text, raw.packed));
        expect(
          typeof v === "object" && v !== null && typeof v.met === "boolean",
          "`evaluate` must return { met, reason }",
        );
        return { met: v.met, reason: String(v.reason) };
      });
    },
    checklist(raw: wit.Input): wit.ChecklistItem[] {
      return call(() => {
        const items = checklist(decodeInput(raw.text, raw.packed));
        expect(Array.isArray(items), "`checklist` must return an array of items");
        return items.map((i) => ({
          id: String(i.id),
          label: String(i.label),
          done: Boolean(i.done),
          evidence: String(i.evidence),
        }));
      });
    },
    metric(raw: wit.MetricInput): wit.MetricValue[] {
      return call(() => {
        const values = metric(decodeMetricInput(raw.text, raw.packed));
        expect(Array.isArray(values), "`metric` must return an array of values");
        return values.map((v) => ({
          name: String(v.name),
          label: String(v.label),
          value: Number(v.value),
        }));
      });
    },
  };
}
