/**
 * The input's text and entries as the host sends them: one string, and
 * spans of it given in UTF-8 bytes (the WIT interface's layout). QuickJS
 * has no `TextEncoder`, so byte offsets become string indexes here.
 */

import type * as wit from "stagecoach:plugin/types@0.3.0";

import type { Value } from "./index";

/** The input's text, read by UTF-8 byte offsets. */
export class Pool {
  // For each non-ASCII character: where it starts in bytes and in UTF-16
  // units, and its length in each. Empty for ASCII text.
  private bytePos: number[] = [];
  private unitPos: number[] = [];
  private byteLen: number[] = [];
  private unitLen: number[] = [];

  constructor(
    private text: string,
    private entries: wit.Entry[] = [],
  ) {
    // The regular expression engine finds the non-ASCII characters; only
    // those cost a step of this loop.
    const re = /[^\x00-\x7f]/gu;
    let extra = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const c = m[0].codePointAt(0)!;
      const bytes = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      this.bytePos.push(m.index + extra);
      this.unitPos.push(m.index);
      this.byteLen.push(bytes);
      this.unitLen.push(m[0].length);
      extra += bytes - m[0].length;
    }
  }

  /** The string index of byte offset `b` (a character boundary). */
  private index(b: number): number {
    let lo = 0;
    let hi = this.bytePos.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.bytePos[mid] < b) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return b;
    const k = lo - 1;
    return this.unitPos[k] + this.unitLen[k] + (b - this.bytePos[k] - this.byteLen[k]);
  }

  get(s: wit.Span): string {
    if (this.bytePos.length === 0) return this.text.slice(s.start, s.start + s.len);
    return this.text.slice(this.index(s.start), this.index(s.start + s.len));
  }

  opt(s: wit.Span | undefined | null): string | undefined {
    return s == null ? undefined : this.get(s);
  }

  run(r: wit.Range): Array<[string, Value]> {
    const out: Array<[string, Value]> = [];
    for (let i = r.start; i < r.start + r.len; i++) {
      const e = this.entries[i];
      const v = e.value;
      out.push([this.get(e.name), v.tag === "text" ? this.get(v.val) : v.val]);
    }
    return out;
  }
}
