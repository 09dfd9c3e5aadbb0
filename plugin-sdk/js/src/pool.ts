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
  type ActivityColumns,
  type Actor,
  type PackedActivities,
  type PackedEntries,
  type Status,
  type Transition,
  type Value,
} from "./index";

/** An absent optional span's start. */
export const NO_SPAN = 0xffffffff;

const ENTRY = 24;
const PROSPECT = 64;
const TRANSITION = 40;
const STATUS: Status[] = ["open", "won", "lost"];
const TWO_32 = 4294967296;

/**
 * Reads of the packed bytes through typed-array views (the layout is
 * little-endian, as wasm is, and every field is aligned to its size): an
 * index into a typed array is one interpreter step, where a `DataView`
 * call costs QuickJS a builtin call each.
 */
export class Bytes {
  // `declare`d, these fields are set by assignment only: an ES2022 class
  // field is defined on every new object, one more step each (QuickJS).
  /** @internal The bytes. */
  declare b: Uint8Array;
  /** @internal The same bytes as 32-bit words. */
  declare w: Uint32Array;
  private declare f: Float64Array | undefined;
  constructor(bytes: Uint8Array | ArrayLike<number>) {
    let b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    // Views need an aligned start; the host's bytes always have one.
    if (b.byteOffset % 8 !== 0) b = b.slice();
    this.b = b;
    this.w = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  }
  u8(at: number): number {
    return this.b[at];
  }
  u32(at: number): number {
    return this.w[at >> 2];
  }
  /** A u64 as a number (exact below 2^53). */
  u64(at: number): number {
    const k = at >> 2;
    return this.w[k] + this.w[k + 1] * TWO_32;
  }
  /** An s64 as a number (exact within ±2^53). */
  i64(at: number): number {
    const k = at >> 2;
    return this.w[k] + (this.w[k + 1] | 0) * TWO_32;
  }
  f64(at: number): number {
    if (this.f === undefined) {
      this.f = new Float64Array(this.b.buffer, this.b.byteOffset, this.b.byteLength >> 3);
    }
    return this.f[at >> 3];
  }
}

/** The input's text, read by UTF-8 byte offsets, and its packed entries. */
export class Pool {
  /**
   * For each non-ASCII character, where it ends: in bytes, then in UTF-16
   * units (pairs). The host sends it; text without it is scanned once.
   */
  private declare map: ArrayLike<number>;
  /** @internal The text is all ASCII: byte offsets are string indexes. */
  declare ascii: boolean;

  constructor(
    /** @internal */
    public text: string,
    /** @internal */
    public bytes: Bytes = new Bytes(new Uint8Array(0)),
    /** @internal Where the entries start in the bytes. */
    public entriesAt = 0,
    /** The host says the text is all ASCII: byte offsets are indexes. */
    ascii = false,
    /** The host's map of non-ASCII characters: its byte offset and count. */
    mapAt = -1,
    mapCount = 0,
  ) {
    this.ascii = ascii;
    if (ascii) {
      this.map = [];
    } else if (mapAt >= 0) {
      const at = mapAt >> 2;
      this.map = this.bytes.w.subarray(at, at + 2 * mapCount);
    } else {
      // The regular expression engine finds the non-ASCII characters; only
      // those cost a step of this loop.
      const ends: number[] = [];
      const re = /[^\x00-\x7f]/gu;
      let extra = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const c = m[0].codePointAt(0)!;
        extra += (c < 0x800 ? 2 : c < 0x10000 ? 3 : 4) - m[0].length;
        ends.push(m.index + m[0].length + extra, m.index + m[0].length);
      }
      this.map = ends;
      this.ascii = ends.length === 0;
    }
  }

  /** The string index of byte offset `b` (a character boundary). */
  index(b: number): number {
    const map = this.map;
    // Before the first non-ASCII character (where names usually are).
    if (map.length === 0 || b < map[0]) return b;
    let lo = 0;
    let hi = map.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (map[2 * mid] <= b) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return b;
    const k = 2 * (lo - 1);
    return map[k + 1] + (b - map[k]);
  }

  /** `len` bytes of the text from byte `start`. */
  get(start: number, len: number): string {
    if (this.ascii) return this.text.slice(start, start + len);
    return this.text.slice(this.index(start), this.index(start + len));
  }

  /** An optional span: none when absent. */
  opt(start: number, len: number): string | undefined {
    return start === NO_SPAN ? undefined : this.get(start, len);
  }

  /** The span at byte `at` of the packed bytes. */
  span(at: number): string {
    const w = this.bytes.w;
    const k = at >> 2;
    return this.get(w[k], w[k + 1]);
  }

  /** The optional span at byte `at` of the packed bytes. */
  optSpan(at: number): string | undefined {
    const w = this.bytes.w;
    const k = at >> 2;
    return this.opt(w[k], w[k + 1]);
  }

  /** The value of the entry at byte `at` of the packed bytes. */
  value(at: number): Value {
    const bytes = this.bytes;
    const tag = bytes.b[at + 8];
    if (tag === 0) {
      const k = at >> 2;
      return this.get(bytes.w[k + 4], bytes.w[k + 5]);
    }
    return tag === 1 ? bytes.f64(at + 16) : bytes.b[at + 16] !== 0;
  }

  /** Entries `start` .. `start + count` as [name, value] pairs. */
  run(start: number, count: number): Array<[string, Value]> {
    const w = this.bytes.w;
    const out: Array<[string, Value]> = new Array(count);
    let at = this.entriesAt + ENTRY * start;
    for (let i = 0; i < count; i++, at += ENTRY) {
      const k = at >> 2;
      out[i] = [this.get(w[k], w[k + 1]), this.value(at)];
    }
    return out;
  }

  /** Entries `start` .. `start + count`, read by name where they are. */
  entries(start: number, count: number): PackedEntries {
    return new Run(this, start, count);
  }
}

/** A run of the host's packed entries (fields, config, an activity's data). */
class Run implements PackedEntries {
  constructor(
    private pool: Pool,
    private start: number,
    private count: number,
  ) {}

  /**
   * The value of the first entry named `name`: names of another length are
   * passed over without a string made for them (making every entry's pair
   * cost QuickJS ~12k fuel each), in one loop per case without a call per
   * entry (a call is the dearest step in QuickJS).
   */
  find(name: string): Value | undefined {
    const pool = this.pool;
    const { text } = pool;
    const w = pool.bytes.w;
    const n = name.length;
    let at = pool.entriesAt + ENTRY * this.start;
    if (pool.ascii) {
      for (let i = 0; i < this.count; i++, at += ENTRY) {
        const k = at >> 2;
        if (w[k + 1] === n && text.startsWith(name, w[k])) return pool.value(at);
      }
      return undefined;
    }
    for (let i = 0; i < this.count; i++, at += ENTRY) {
      const k = at >> 2;
      // UTF-8 is never shorter than UTF-16.
      if (w[k + 1] < n) continue;
      const s = pool.index(w[k]);
      if (pool.index(w[k] + w[k + 1]) - s === n && text.startsWith(name, s)) return pool.value(at);
    }
    return undefined;
  }

  all(): Array<[string, Value]> {
    return this.pool.run(this.start, this.count);
  }
}

/**
 * A prospect's activities as the host packs them, one column per field:
 * typed-array views over the bytes, no object per activity until the plugin
 * asks for one.
 */
class Packed implements PackedActivities {
  private declare cols: ActivityColumns | undefined;
  constructor(
    private pool: Pool,
    readonly n: number,
    /** The header's offset of the kinds table; the column offsets follow it. */
    private header: number,
  ) {}

  columns(): ActivityColumns {
    if (this.cols === undefined) {
      const { b, w } = this.pool.bytes;
      const h = this.header >> 2;
      const table = w[h] >> 2;
      const kinds: string[] = new Array(w[h + 1]);
      for (let i = 0; i < kinds.length; i++) kinds[i] = this.pool.get(w[table + 2 * i], w[table + 2 * i + 1]);
      const kind = w[h + 2] >> 2;
      const at = w[h + 3] >> 2;
      const actor = w[h + 4];
      this.cols = {
        n: this.n,
        kinds,
        kind: w.subarray(kind, kind + this.n),
        actor: b.subarray(actor, actor + this.n),
        at: (i) => w[at + 2 * i] + (w[at + 2 * i + 1] | 0) * TWO_32,
      };
    }
    return this.cols;
  }

  activity(i: number): Activity {
    const c = this.columns();
    const w = this.pool.bytes.w;
    const h = this.header >> 2;
    const start = w[(w[h + 5] >> 2) + i];
    const count = w[(w[h + 6] >> 2) + i];
    const actor: Actor = c.actor[i] === 0 ? "prospect" : "rep";
    return new Activity(c.kinds[c.kind[i]], actor, c.at(i), () => this.pool.run(start, count));
  }

  all(): Activity[] {
    const out: Activity[] = new Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = this.activity(i);
    return out;
  }
}

/**
 * The prospect's own values read from the host's bytes when a plugin asks
 * for them, not all made up front (a property set costs QuickJS ~1.2k fuel
 * and a span ~4k; most rules read one or two of them): getters on a
 * prototype the daemon's prospects share. Assigning one makes it an
 * ordinary property, as on a prospect a test builds.
 */
const PACKED_PROSPECT: Prospect = Object.create(Prospect.prototype);
{
  type Packed = Prospect & { pool_: Pool };
  const read: Record<string, (p: Pool, b: Bytes) => unknown> = {
    id: (_, b) => b.u64(0),
    name: (p) => p.span(32),
    company: (p) => p.optSpan(48),
    owner: (p) => p.optSpan(56),
    stage: (p) => p.span(40),
    status: (_, b) => STATUS[b.u8(120)],
    createdAt: (_, b) => b.i64(16),
    stageEnteredAt: (_, b) => b.i64(24),
    activitiesTruncated: (_, b) => b.u8(121) !== 0,
  };
  for (const key of Object.keys(read)) {
    const f = read[key];
    Object.defineProperty(PACKED_PROSPECT, key, {
      enumerable: true,
      get(this: Packed) {
        return f(this.pool_, this.pool_.bytes);
      },
      set(this: Packed, value: unknown) {
        Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
      },
    });
  }
}

/** An exit criterion's or checklist's input, from the host's text and packed bytes. */
export function decodeInput(text: string, packed: Uint8Array | ArrayLike<number>): Input {
  const b = new Bytes(packed);
  const pool = new Pool(text, b, b.u32(80), (b.u8(122) & 1) !== 0, b.u32(128), b.u32(132));
  // Made without its constructor, which is the test builders' (every
  // object and default costs QuickJS fuel on every call).
  const prospect = Object.create(PACKED_PROSPECT) as Prospect & { pool_: Pool };
  prospect.pool_ = pool;
  prospect.fields_ = undefined;
  prospect.packedFields_ = pool.entries(b.u32(64), b.u32(68));
  // Activities are read only when the plugin asks, from the host's columns.
  prospect.activities_ = undefined;
  const n = b.u32(88);
  prospect.packed_ = n > 0 ? new Packed(pool, n, 92) : undefined;
  return new Input(prospect, b.i64(8), Config.of_(pool.entries(b.u32(72), b.u32(76))));
}

/** A metric's input, from the host's text and packed bytes. */
export function decodeMetricInput(text: string, packed: Uint8Array | ArrayLike<number>): MetricInput {
  const b = new Bytes(packed);
  const pool = new Pool(text, b, b.u32(16), (b.u8(40) & 1) !== 0, b.u32(48), b.u32(52));
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
    s.fields_ = undefined;
    s.packedFields_ = pool.entries(b.u32(at + 48), b.u32(at + 52));
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
  return new MetricInput(b.i64(0), Config.of_(pool.entries(b.u32(8), b.u32(12))), prospects, transitions);
}
