/**
 * The input as the host sends it (interface 0.4.0): one string, `text`,
 * and the records packed into bytes, `packed`, in the layout
 * `plugin-sdk/wit/types.wit` documents. Spans are UTF-8 byte offsets into
 * the text (QuickJS has no `TextEncoder`, so they become string indexes
 * here); records are read in place, only when a plugin asks for them.
 */

import {
  Activity,
  Config,
  Input,
  MetricInput,
  Prospect,
  ProspectSummary,
  type Actor,
  type Status,
  type Transition,
  type Value,
} from "./index";

/** An absent optional span's start. */
export const NO_SPAN = 0xffffffff;

const ENTRY = 24;
const ACTIVITY = 32;
const PROSPECT = 64;
const TRANSITION = 40;
const STATUS: Status[] = ["open", "won", "lost"];
const TWO_32 = 4294967296;

/** Little-endian reads of the packed bytes. */
export class Bytes {
  private view: DataView;
  constructor(bytes: Uint8Array | ArrayLike<number>) {
    const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8(at: number): number {
    return this.view.getUint8(at);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  /** A u64 as a number (exact below 2^53). */
  u64(at: number): number {
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * TWO_32;
  }
  /** An s64 as a number (exact within ±2^53). */
  i64(at: number): number {
    return this.view.getUint32(at, true) + this.view.getInt32(at + 4, true) * TWO_32;
  }
  f64(at: number): number {
    return this.view.getFloat64(at, true);
  }
}

/** The input's text, read by UTF-8 byte offsets, and its packed entries. */
export class Pool {
  // For each non-ASCII character: where it starts in bytes and in UTF-16
  // units, and its length in each. Empty for ASCII text.
  private bytePos: number[] = [];
  private unitPos: number[] = [];
  private byteLen: number[] = [];
  private unitLen: number[] = [];

  constructor(
    private text: string,
    /** @internal */
    public bytes: Bytes = new Bytes(new Uint8Array(0)),
    private entriesAt = 0,
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

  /** `len` bytes of the text from byte `start`. */
  get(start: number, len: number): string {
    if (this.bytePos.length === 0) return this.text.slice(start, start + len);
    return this.text.slice(this.index(start), this.index(start + len));
  }

  /** An optional span: none when absent. */
  opt(start: number, len: number): string | undefined {
    return start === NO_SPAN ? undefined : this.get(start, len);
  }

  /** The span at byte `at` of the packed bytes. */
  span(at: number): string {
    return this.get(this.bytes.u32(at), this.bytes.u32(at + 4));
  }

  /** The optional span at byte `at` of the packed bytes. */
  optSpan(at: number): string | undefined {
    return this.opt(this.bytes.u32(at), this.bytes.u32(at + 4));
  }

  /** Entries `start` .. `start + count` as [name, value] pairs. */
  run(start: number, count: number): Array<[string, Value]> {
    const b = this.bytes;
    const out: Array<[string, Value]> = [];
    let at = this.entriesAt + ENTRY * start;
    for (let i = 0; i < count; i++, at += ENTRY) {
      const tag = b.u8(at + 8);
      const value = tag === 0 ? this.span(at + 16) : tag === 1 ? b.f64(at + 16) : b.u8(at + 16) !== 0;
      out.push([this.span(at), value]);
    }
    return out;
  }
}

/** An exit criterion's or checklist's input, from the host's text and packed bytes. */
export function decodeInput(text: string, packed: Uint8Array | ArrayLike<number>): Input {
  const b = new Bytes(packed);
  const pool = new Pool(text, b, b.u32(80));
  const prospect = new Prospect(pool.span(40), {
    id: b.u64(0),
    name: pool.span(32),
    company: pool.optSpan(48),
    owner: pool.optSpan(56),
    status: STATUS[b.u8(96)],
    createdAt: b.i64(16),
    stageEnteredAt: b.i64(24),
    activitiesTruncated: b.u8(97) !== 0,
  });
  prospect.fields_ = pool.run(b.u32(64), b.u32(68));
  // Activities are read, and become views, only when the plugin asks.
  prospect.activities_ = undefined;
  const at = b.u32(88);
  const count = b.u32(92);
  prospect.load_ = () => {
    const out: Activity[] = [];
    for (let i = 0, a = at; i < count; i++, a += ACTIVITY) {
      const data = b.u32(a + 16);
      const n = b.u32(a + 20);
      const actor: Actor = b.u8(a + 24) === 0 ? "prospect" : "rep";
      out.push(new Activity(pool.span(a), actor, b.i64(a + 8), () => pool.run(data, n)));
    }
    return out;
  };
  return new Input(prospect, b.i64(8), Config.of_(pool.run(b.u32(72), b.u32(76))));
}

/** A metric's input, from the host's text and packed bytes. */
export function decodeMetricInput(text: string, packed: Uint8Array | ArrayLike<number>): MetricInput {
  const b = new Bytes(packed);
  const pool = new Pool(text, b, b.u32(16));
  const prospects: ProspectSummary[] = [];
  for (let i = 0, at = b.u32(24); i < b.u32(28); i++, at += PROSPECT) {
    const flags = b.u8(at + 57);
    const s = new ProspectSummary(b.u64(at), pool.span(at + 32), {
      owner: pool.optSpan(at + 40),
      status: STATUS[b.u8(at + 56)],
      createdAt: b.i64(at + 8),
      closedAt: flags & 1 ? b.i64(at + 16) : undefined,
      stageProbability: flags & 2 ? b.f64(at + 24) : undefined,
    });
    s.fields_ = pool.run(b.u32(at + 48), b.u32(at + 52));
    prospects.push(s);
  }
  const transitions: Transition[] = [];
  for (let i = 0, at = b.u32(32); i < b.u32(36); i++, at += TRANSITION) {
    transitions.push({
      prospect: b.u64(at),
      from: pool.optSpan(at + 16),
      to: pool.span(at + 24),
      at: b.i64(at + 8),
      kind: pool.span(at + 32),
    });
  }
  return new MetricInput(b.i64(0), Config.of_(pool.run(b.u32(8), b.u32(12))), prospects, transitions);
}
