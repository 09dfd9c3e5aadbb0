"""The input as the host sends it (interface 0.4.0): one string, ``text``,
and the records packed into bytes, ``packed``, in the layout
``plugin-sdk/wit/types.wit`` documents. Spans are UTF-8 byte offsets into
the text; records are read in place, only when a plugin asks for them."""

from __future__ import annotations

import struct

import stagecoach_plugin as sdk

#: An absent optional span's start.
NO_SPAN = 0xFFFF_FFFF

#: The header of an exit criterion's or checklist's input (its reserved
#: bytes left out).
INPUT_HEADER = struct.Struct("<Qqqq" + "I" * 22 + "BB")
#: The header of a metric's input.
METRIC_HEADER = struct.Struct("<qIIIIIIII")
#: A metric input's prospect.
PROSPECT = struct.Struct("<QqqdIIIIIIBB6x")
#: A metric input's transition.
TRANSITION = struct.Struct("<QqIIIIII")

#: An entry: name span, tag, and the value's 8 bytes as two u32.
_ENTRY_ROW = struct.Struct("<IIB7xII")
_SPAN = struct.Struct("<II")
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_ENTRY = 24


class Pool:
    """Reads spans (``start``, ``len`` in UTF-8 bytes) of one text, and
    runs of the packed entries, whose text values are spans too."""

    __slots__ = ("text", "raw", "packed", "entries_at")

    def __init__(self, text: str, packed: bytes, entries_at: int):
        self.text = text
        # ASCII text: byte offsets are string indexes, no copy needed.
        self.raw = None if text.isascii() else text.encode()
        self.packed = packed
        self.entries_at = entries_at

    def get(self, start: int, length: int) -> str:
        if self.raw is None:
            return self.text[start : start + length]
        return self.raw[start : start + length].decode()

    def opt(self, start: int, length: int):
        return None if start == NO_SPAN else self.get(start, length)

    def run(self, start: int, count: int) -> list:
        """Entries ``start`` .. ``start + count`` as (name, value) pairs."""
        if count == 0:
            return []
        b = self.packed
        at = self.entries_at + _ENTRY * start
        # One C call reads every row; the loop only picks the value.
        rows = _ENTRY_ROW.iter_unpack(memoryview(b)[at : at + _ENTRY * count])
        # Slices of the text (ASCII) or of its UTF-8 bytes, without a call
        # per piece of text.
        ascii = self.raw is None
        src = self.text if ascii else self.raw
        out = []
        for ns, nl, tag, vs, vl in rows:
            if tag == 0:
                value = src[vs : vs + vl] if ascii else src[vs : vs + vl].decode()
            elif tag == 1:
                value = _F64.unpack_from(b, at + 16)[0]
            else:
                value = vs != 0
            name = src[ns : ns + nl] if ascii else src[ns : ns + nl].decode()
            out.append((name, value))
            at += _ENTRY
        return out


_STATUS = ("open", "won", "lost")


class Activities:
    """A prospect's activities as the host packs them: one column per field
    (see ``plugin-sdk/wit/types.wit``), read with ``memoryview`` casts, so
    no Python object is made per activity until the plugin asks for one."""

    __slots__ = ("pool", "n", "header", "_columns")

    def __init__(self, pool: Pool, n: int, header: tuple):
        self.pool = pool
        self.n = n
        # (kinds table, its count, kind, at, actor, data start, data count)
        self.header = header
        self._columns = None

    def columns(self) -> tuple:
        """(kinds, kind index per activity, actor per activity, time per
        activity), as ``Prospect._columns`` answers."""
        if self._columns is None:
            pool, n = self.pool, self.n
            table, table_n, kind, at, actor = self.header[:5]
            mv = memoryview(pool.packed)
            get = pool.get
            kinds = [get(s, l) for s, l in _SPAN.iter_unpack(mv[table : table + 8 * table_n])]
            self._columns = (
                kinds,
                mv[kind : kind + 4 * n].cast("I").tolist(),
                mv[actor : actor + n].tolist(),
                mv[at : at + 8 * n].cast("q").tolist(),
            )
        return self._columns

    def activity(self, i: int) -> "sdk.Activity":
        kinds, ids, actors, ats = self.columns()
        start_col, count_col = self.header[5:]
        b = self.pool.packed
        act = sdk.Activity.__new__(sdk.Activity)
        act.kind = kinds[ids[i]]
        act.actor = sdk.Actor.PROSPECT if actors[i] == 0 else sdk.Actor.REP
        act.at = ats[i]
        act._data = None
        act._raw = (self.pool, _U32.unpack_from(b, start_col + 4 * i)[0], _U32.unpack_from(b, count_col + 4 * i)[0])
        return act

    def all(self) -> list:
        return [self.activity(i) for i in range(self.n)]


def decode_input(text: str, b: bytes) -> sdk.Input:
    """An exit criterion's or checklist's input, from the host's text and
    packed bytes."""
    (
        pid,
        now,
        created_at,
        stage_entered_at,
        name_s,
        name_n,
        stage_s,
        stage_n,
        company_s,
        company_n,
        owner_s,
        owner_n,
        fields_s,
        fields_n,
        config_s,
        config_n,
        entries_at,
        _entries,
        activities_n,
        *columns,
        status,
        truncated,
    ) = INPUT_HEADER.unpack_from(b, 0)
    pool = Pool(text, b, entries_at)
    get = pool.get
    # Made without the test builders' constructor: every call and default
    # costs CPython fuel on every call.
    prospect = object.__new__(sdk.Prospect)
    prospect.__dict__.update(
        id=pid,
        name=get(name_s, name_n),
        company=None if company_s == NO_SPAN else get(company_s, company_n),
        owner=None if owner_s == NO_SPAN else get(owner_s, owner_n),
        stage=get(stage_s, stage_n),
        status=_STATUS[status],
        created_at=created_at,
        stage_entered_at=stage_entered_at,
        activities_truncated=truncated != 0,
        _fields=pool.run(fields_s, fields_n),
        # Activities are read only when the plugin asks, from the host's columns.
        _activities=None,
        _packed=Activities(pool, activities_n, tuple(columns)),
    )
    config = object.__new__(sdk.Config)
    config._entries = pool.run(config_s, config_n)
    i = object.__new__(sdk.Input)
    i.prospect, i.now, i.config = prospect, now, config
    return i


def decode_metric_input(text: str, b: bytes) -> sdk.MetricInput:
    """A metric's input, from the host's text and packed bytes."""
    (now, config_s, config_n, entries_at, _entries, p_at, p_n, t_at, t_n) = (
        METRIC_HEADER.unpack_from(b, 0)
    )
    pool = Pool(text, b, entries_at)
    get, opt = pool.get, pool.opt
    prospects = []
    rows = memoryview(b)[p_at : p_at + PROSPECT.size * p_n]
    for pid, created, closed, prob, st_s, st_n, ow_s, ow_n, f_s, f_n, status, flags in (
        PROSPECT.iter_unpack(rows)
    ):
        s = sdk.ProspectSummary(
            pid,
            get(st_s, st_n),
            owner=opt(ow_s, ow_n),
            status=_STATUS[status],
            created_at=created,
            closed_at=closed if flags & 1 else None,
            stage_probability=prob if flags & 2 else None,
        )
        s._fields = pool.run(f_s, f_n)
        prospects.append(s)
    rows = memoryview(b)[t_at : t_at + TRANSITION.size * t_n]
    transitions = [
        sdk.Transition(prospect, opt(fr_s, fr_n), get(to_s, to_n), at, get(k_s, k_n))
        for prospect, at, fr_s, fr_n, to_s, to_n, k_s, k_n in TRANSITION.iter_unpack(rows)
    ]
    return sdk.MetricInput(
        now, sdk.Config._of(pool.run(config_s, config_n)), prospects, transitions
    )


def pack_input(
    prospect: "sdk.Prospect", now: int = 0, config: "sdk.Config | None" = None
) -> tuple[str, bytes]:
    """``prospect``, ``now`` and ``config`` as the host sends them: the
    input's text and packed bytes, byte for byte what the daemon writes
    (the SDK's tests compare the two). Used to run a plugin once when its
    component is built, and by tests."""
    text: list[str] = []
    size = [0]

    def span(s: str) -> tuple[int, int]:
        start = size[0]
        n = len(s.encode())
        text.append(s)
        size[0] += n
        return start, n

    entries: list[bytes] = []

    def run(pairs, value_first: bool = False) -> tuple[int, int]:
        # The host writes an activity datum's text value before its name.
        start = len(entries)
        for name, value in pairs:
            if not value_first:
                ns, nl = span(name)
            if isinstance(value, bool):
                tail = struct.pack("<B7xB7x", 2, int(value))
            elif isinstance(value, (int, float)):
                tail = struct.pack("<B7xd", 1, float(value))
            else:
                tail = struct.pack("<B7xII", 0, *span(value))
            if value_first:
                ns, nl = span(name)
            entries.append(struct.pack("<II", ns, nl) + tail)
        return start, len(entries) - start

    def opt(s):
        return (NO_SPAN, 0) if s is None else span(s)

    p = prospect
    name = span(p.name)
    company = opt(p.company)
    owner = opt(p.owner)
    stage = span(p.stage)
    fields = run(p.fields())
    conf = run((config or sdk.Config()).entries())
    acts = p.activities()
    kinds: list[str] = []
    kind_spans: list[tuple[int, int]] = []
    ids, data = [], []
    for a in acts:
        s = span(a.kind)
        if a.kind not in kinds:
            kinds.append(a.kind)
            kind_spans.append(s)
        ids.append(kinds.index(a.kind))
        data.append(run(a.data(), value_first=True))
    n = len(acts)

    def align(x: int) -> int:
        return (x + 7) // 8 * 8

    entries_at = 136
    kinds_at = entries_at + 24 * len(entries)
    kind_at = kinds_at + 8 * len(kinds)
    at_at = align(kind_at + 4 * n)
    actor_at = at_at + 8 * n
    start_at = align(actor_at + n)
    count_at = align(start_at + 4 * n)
    map_at = align(count_at + 4 * n)
    full = "".join(text)
    units = 0
    pairs = []
    at = 0
    for c in full:
        at += len(c.encode())
        units += 2 if ord(c) > 0xFFFF else 1
        if ord(c) > 0x7F:
            pairs.append(struct.pack("<II", at, units))
    out = bytearray()
    out += struct.pack("<Qqqq", p.id, now, p.created_at, p.stage_entered_at)
    out += struct.pack("<" + "I" * 12, *name, *stage, *company, *owner, *fields, *conf)
    out += struct.pack("<II", entries_at, len(entries))
    out += struct.pack(
        "<" + "I" * 8, n, kinds_at, len(kinds), kind_at, at_at, actor_at, start_at, count_at
    )
    status = ("open", "won", "lost").index(p.status)
    truncated = 1 if p.activities_truncated else 0
    out += struct.pack("<BBB5xII", status, truncated, int(full.isascii()), map_at, len(pairs))
    out += b"".join(entries)
    out += b"".join(struct.pack("<II", *s) for s in kind_spans)
    out += struct.pack(f"<{n}I", *ids)
    out += bytes(at_at - len(out))
    out += struct.pack(f"<{n}q", *(a.at for a in acts))
    out += bytes(0 if a.actor is sdk.Actor.PROSPECT else 1 for a in acts)
    out += bytes(start_at - len(out))
    out += struct.pack(f"<{n}I", *(d[0] for d in data))
    out += bytes(count_at - len(out))
    out += struct.pack(f"<{n}I", *(d[1] for d in data))
    out += bytes(map_at - len(out))
    out += b"".join(pairs)
    return full, bytes(out)
