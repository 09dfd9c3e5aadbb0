/**
 * `icp-fit` in TypeScript: an exit criterion scoring the prospect against
 * the ideal customer profile given in its config (the same rule, and the
 * same reasons byte for byte, as the Rust plugin in plugins/icp-fit).
 *
 * Config (every check is optional; only configured checks count):
 * - `min_employees`: the `employees` field is at least this;
 * - `min_budget`: the `budget` field is at least this;
 * - `industries`: the `industry` field is one of these (comma-separated);
 * - `countries`: the `country` field is one of these (comma-separated);
 * - `min_score`: the share of checks that must pass, 0-1 (default 1).
 */

import { definePlugin, num, PluginError } from "stagecoach-plugin";

/**
 * Rust's `eq_ignore_ascii_case`: only ASCII letters fold (`É` ≠ `é`).
 * A loop over character codes: a `replace` with a callback cost QuickJS
 * about 30k fuel per string.
 */
function sameAsciiCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}

export default definePlugin({
  name: "icp-fit",
  description: "Scores the prospect's fields against the ideal customer profile in its config.",
  readsActivities: false,

  evaluate({ prospect: p, config: c }) {
    const passed: string[] = [];
    const failed: string[] = [];
    // One call per check rather than `for...of` over pairs: destructuring
    // in a loop goes through QuickJS's iterator protocol, several times
    // the fuel of a call (see the README's "Where the interpreters' fuel went").
    const atLeast = (config: string, field: string): void => {
      const min = c.number(config);
      if (min === undefined) return;
      const value = p.number(field);
      if (value === undefined) failed.push(`\`${field}\` not set`);
      else if (value >= min) passed.push(`${field} ${num(value)} ≥ ${num(min)}`);
      else failed.push(`${field} ${num(value)} < ${num(min)}`);
    };
    const oneOf = (config: string, field: string): void => {
      const allowed = c.items(config);
      if (allowed.length === 0) return;
      const value = p.text(field);
      if (value === undefined) failed.push(`\`${field}\` not set`);
      else if (allowed.some((a) => sameAsciiCase(a, value))) passed.push(`${field} ${value}`);
      else failed.push(`${field} ${value} not in ${allowed.join(", ")}`);
    };
    atLeast("min_employees", "employees");
    atLeast("min_budget", "budget");
    oneOf("industries", "industry");
    oneOf("countries", "country");
    const total = passed.length + failed.length;
    if (total === 0) {
      throw new PluginError(
        "icp-fit has no checks configured; set `min_employees`, `min_budget`, `industries` or `countries`",
      );
    }
    const minScore = c.number("min_score") ?? 1;
    const reason = `ICP score ${passed.length}/${total} (${passed.concat(failed).join("; ")})`;
    return { met: passed.length / total + 1e-9 >= minScore, reason };
  },
});
