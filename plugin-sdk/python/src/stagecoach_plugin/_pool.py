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

_ENTRY_HEAD = struct.Struct("<IIB")
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
        out = []
        b = self.packed
        at = self.entries_at + _ENTRY * start
        for _ in range(count):
            ns, nl, tag = _ENTRY_HEAD.unpack_from(b, at)
            if tag == 0:
                value = self.get(*_SPAN.unpack_from(b, at + 16))
            elif tag == 1:
                value = _F64.unpack_from(b, at + 16)[0]
            else:
                value = b[at + 16] != 0
            out.append((self.get(ns, nl), value))
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
    prospect = sdk.Prospect(
        pool.get(stage_s, stage_n),
        id=pid,
        name=pool.get(name_s, name_n),
        company=pool.opt(company_s, company_n),
        owner=pool.opt(owner_s, owner_n),
        status=_STATUS[status],
        created_at=created_at,
        stage_entered_at=stage_entered_at,
        activities_truncated=truncated != 0,
    )
    prospect._fields = pool.run(fields_s, fields_n)
    # Activities are read only when the plugin asks, from the host's columns.
    prospect._activities = None
    prospect._packed = Activities(pool, activities_n, tuple(columns))
    return sdk.Input(prospect, now, sdk.Config._of(pool.run(config_s, config_n)))


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
