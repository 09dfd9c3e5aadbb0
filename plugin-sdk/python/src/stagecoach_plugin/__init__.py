"""Write Stagecoach plugins in Python: exit criteria, methodology
checklists and metrics.

A plugin is one class that derives from :class:`Plugin` and implements
``evaluate`` (an exit criterion), ``checklist`` (a methodology checklist)
or ``metric`` (a metric). ``stagecoach plugins build DIR`` turns the
package into a WebAssembly component the daemon runs; the same code runs
natively under pytest, with inputs built by :class:`Prospect`,
:class:`Config` and :class:`MetricInput`.

The views mirror the Rust SDK (``stagecoach-plugin-sdk``) name for name,
and :func:`num` formats numbers as it does, so a rule ported from Rust
gives byte-identical reasons.
"""

from __future__ import annotations

import math
from decimal import Decimal
from enum import Enum
from typing import Iterable, Iterator, Optional, Union

__all__ = [
    "INTERFACE_VERSION",
    "Activity",
    "Actor",
    "Capability",
    "ChecklistItem",
    "Config",
    "Input",
    "Level",
    "MetricInput",
    "MetricValue",
    "Plugin",
    "PluginError",
    "Prospect",
    "ProspectSummary",
    "Transition",
    "Value",
    "Verdict",
    "log",
    "met",
    "num",
    "unmet",
]

#: The plugin interface version this SDK builds against.
INTERFACE_VERSION = "0.4.0"

DAY_MS = 86_400_000.0

#: A field, config or data value: text, a number or a yes/no answer.
Value = Union[str, float, bool]


class Capability(Enum):
    """What a plugin provides."""

    CRITERION = "criterion"
    CHECKLIST = "checklist"
    METRIC = "metric"


class Actor(str, Enum):
    """Who performed an activity."""

    PROSPECT = "prospect"
    REP = "rep"


class Level(Enum):
    """Log levels for :func:`log`."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class PluginError(Exception):
    """Raise it to fail a call with exactly this message (the Rust SDK's
    ``Err(String)``). Any other exception fails the call too, reported as
    its type, message and the line that raised it."""


# --- numbers -----------------------------------------------------------------


def num(n: float) -> str:
    """A number as people write it, and as the Rust SDK's ``Num`` writes
    it: ``120``, not ``120.0``; ``0.25`` stays; never an exponent
    (``1e-07`` is ``0.0000001``)."""
    n = float(n)
    if math.isnan(n):
        return "NaN"
    if math.isinf(n):
        return "inf" if n > 0 else "-inf"
    if n == int(n) and abs(n) < 1e15:
        return str(int(n))
    return _positional(repr(n))


def _positional(shortest: str) -> str:
    """Python's shortest round-trip digits, written without an exponent
    (Rust's ``Display`` for ``f64``)."""
    if shortest.endswith(".0"):
        shortest = shortest[:-2]
    return format(Decimal(shortest), "f")


def _parse_number(text: str) -> Optional[float]:
    """Numeric text as the Rust SDK reads it (``str::parse::<f64>`` on the
    trimmed text): Python's ``float`` also takes ``1_000``, Rust does not."""
    t = text.strip()
    # Python's float also takes `1_000` and non-ASCII digits; Rust takes neither.
    if not t or "_" in t or not t.isascii():
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _number(v: Optional[Value]) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return _parse_number(v)


def _value(v: object) -> Value:
    """A builder's value as the host would send it: ints become floats."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"a value is text, a number or a bool, not {type(v).__name__}")


def _lookup(entries: list[tuple[str, Value]], name: str) -> Optional[Value]:
    for key, value in entries:
        if key == name:
            return value
    return None


# --- logging -----------------------------------------------------------------

_sink = None


def log(level: Level, message: str) -> None:
    """Writes a line to the daemon's log (to stderr when run natively).

    ``print()`` inside a built plugin goes to the daemon's log too, at info
    (``sys.stderr`` at warn)."""
    if _sink is not None:
        _sink(level, message)
    else:
        import sys

        sys.__stderr__.write(f"[{level.name.capitalize()}] {message}\n")


# --- inputs ------------------------------------------------------------------


class Activity:
    """One entry of a prospect's activity log."""

    __slots__ = ("kind", "actor", "at", "_data", "_raw")

    def __init__(
        self,
        kind: str,
        actor: Actor = Actor.PROSPECT,
        at: int = 0,
        data: Optional[dict[str, object] | list[tuple[str, Value]]] = None,
    ):
        #: What happened (``replied``, ``demo_attended``, ...).
        self.kind = kind
        #: Who did it.
        self.actor = Actor(actor)
        #: When, in UTC milliseconds.
        self.at = int(at)
        if isinstance(data, dict):
            self._data = [(k, _value(v)) for k, v in data.items()]
        else:
            self._data = list(data or [])
        self._raw = None

    def _entries(self) -> list[tuple[str, Value]]:
        if self._data is None:
            # Inside the daemon an activity's data is read on first use:
            # most rules never look at it.
            pool, start, count = self._raw
            self._data = pool.run(start, count)
            self._raw = None
        return self._data

    def datum(self, name: str) -> Optional[Value]:
        """A datum of the activity by name."""
        return _lookup(self._entries(), name)

    def data(self) -> list[tuple[str, Value]]:
        """The activity's data in order."""
        return list(self._entries())

    def __repr__(self) -> str:
        return f"Activity({self.kind!r}, {self.actor.value}, at={self.at})"


class _Fields:
    """A prospect's fields, for the views that have them."""

    _fields: list[tuple[str, Value]]

    def fields(self) -> list[tuple[str, Value]]:
        """The prospect's fields in order."""
        return list(self._fields)

    def field(self, name: str) -> Optional[Value]:
        """A field by name."""
        return _lookup(self._fields, name)

    def number(self, name: str) -> Optional[float]:
        """A field as a number (numeric text counts)."""
        return _number(self.field(name))


class Prospect(_Fields):
    """The prospect being evaluated. Build one for tests with
    ``Prospect("research", fields={"employees": 120})`` and the ``with_*``
    methods; inside the daemon the SDK builds it from the host's input."""

    def __init__(
        self,
        stage: str,
        *,
        id: int = 0,
        name: str = "",
        company: Optional[str] = None,
        owner: Optional[str] = None,
        status: str = "open",
        created_at: int = 0,
        stage_entered_at: int = 0,
        fields: Optional[dict[str, object]] = None,
        activities: Iterable[Activity] = (),
        activities_truncated: bool = False,
    ):
        self.id = id
        self.name = name
        self.company = company
        self.owner = owner
        self.stage = stage
        #: ``open``, ``won`` or ``lost``.
        self.status = status
        self.created_at = created_at
        #: When the prospect entered its current stage (UTC ms).
        self.stage_entered_at = stage_entered_at
        #: True when older activities were left out to respect the input limit.
        self.activities_truncated = activities_truncated
        self._fields = [(k, _value(v)) for k, v in (fields or {}).items()]
        self._activities = list(activities)
        # Inside the daemon: the host's activity columns (see `_pool`).
        self._packed = None

    # builders (tests)

    def with_field(self, name: str, value: object) -> "Prospect":
        """Adds a field (for tests); returns the prospect."""
        self._fields.append((name, _value(value)))
        return self

    def with_activity(
        self, kind: str, actor: Actor, at: int, data: Optional[dict[str, object]] = None
    ) -> "Prospect":
        """Adds an activity (for tests); returns the prospect."""
        self.activities().append(Activity(kind, actor, at, data))
        return self

    def with_action(self, kind: str, at: int) -> "Prospect":
        """Adds an activity by the prospect (for tests)."""
        return self.with_activity(kind, Actor.PROSPECT, at)

    def entered_stage_at(self, at: int) -> "Prospect":
        """Sets when the prospect entered its stage (for tests)."""
        self.stage_entered_at = at
        return self

    # fields


    def text(self, name: str) -> Optional[str]:
        """A field as text (``None`` for numbers and yes/no fields)."""
        v = self.field(name)
        return v if isinstance(v, str) else None

    def yes(self, name: str) -> bool:
        """True when a yes/no field is yes."""
        return self.field(name) is True

    def has_field(self, name: str) -> bool:
        """True when a field has a non-empty value."""
        v = self.field(name)
        if isinstance(v, str):
            return v.strip() != ""
        return v is not None

    # activities

    def activities(self) -> list[Activity]:
        """The most recent activities, oldest first."""
        if self._activities is None:
            # Inside the daemon the views are made on first use.
            self._activities = self._packed.all()
        return self._activities

    # The questions below are answered from columns (the kinds that occur,
    # each activity's kind as an index into them, its actor and time) with
    # the list methods `index` and `count`, which run in C: inside the
    # daemon the columns are the host's, and no activity object is made
    # unless one is returned. An object per activity cost CPython about 10k
    # fuel, most of a call over 300 activities.

    def _columns(self) -> tuple[list[str], list[int], list[int], list[int]]:
        """(kinds, kind index per activity, actor per activity (0 the
        prospect, 1 the rep), time per activity)."""
        packed = self._packed
        # The host's columns, also once the objects are made (unless a test
        # builder has added to them since).
        if packed is not None and (
            self._activities is None or len(self._activities) == packed.n
        ):
            return packed.columns()
        kinds: list[str] = []
        seen: dict[str, int] = {}
        ids = []
        for a in self._activities:
            k = seen.get(a.kind)
            if k is None:
                k = seen[a.kind] = len(kinds)
                kinds.append(a.kind)
            ids.append(k)
        actors = [0 if a.actor is Actor.PROSPECT else 1 for a in self._activities]
        return kinds, ids, actors, [a.at for a in self._activities]

    def _activity(self, i: int) -> Activity:
        if self._activities is not None:
            return self._activities[i]
        return self._packed.activity(i)

    def _where(self, kind: str) -> list[int]:
        """The indexes of the ``kind`` activities, oldest first."""
        kinds, ids = self._columns()[:2]
        if kind not in kinds:
            return []
        k = kinds.index(kind)
        out = []
        i = -1
        for _ in range(ids.count(k)):
            i = ids.index(k, i + 1)
            out.append(i)
        return out

    def _latest(self, kind: str, by_prospect: bool) -> Optional[int]:
        """The index of the latest ``kind`` activity (the last of equals)."""
        _, _, actors, ats = self._columns()
        best = None
        for i in self._where(kind):
            if (not by_prospect or actors[i] == 0) and (best is None or ats[i] >= ats[best]):
                best = i
        return best

    def activities_of(self, kind: str) -> Iterator[Activity]:
        """Activities of ``kind`` by anyone."""
        return (self._activity(i) for i in self._where(kind))

    def did(self, kind: str) -> bool:
        """True when the prospect itself did ``kind`` at least once."""
        actors = self._columns()[2]
        return any(actors[i] == 0 for i in self._where(kind))

    def has_activity(self, kind: str) -> bool:
        """True when anyone recorded ``kind`` at least once."""
        return kind in self._columns()[0]

    def count(self, kind: str) -> int:
        """How many ``kind`` activities (by anyone)."""
        kinds, ids = self._columns()[:2]
        return ids.count(kinds.index(kind)) if kind in kinds else 0

    def count_since_stage_entry(self, kind: str) -> int:
        """How many ``kind`` activities since the prospect entered its stage."""
        ats = self._columns()[3]
        since = self.stage_entered_at
        return sum(1 for i in self._where(kind) if ats[i] >= since)

    def last(self, kind: str) -> Optional[Activity]:
        """The latest ``kind`` activity (the last of equals, as in Rust)."""
        i = self._latest(kind, False)
        return None if i is None else self._activity(i)

    def days_in_stage(self, now: int) -> float:
        """Days in the current stage as of ``now``."""
        return (now - self.stage_entered_at) / DAY_MS

    def __repr__(self) -> str:
        return f"Prospect({self.stage!r}, id={self.id}, fields={self._fields!r})"


class Config:
    """A plugin's configuration: the ``config`` table of its criterion (or
    of its ``[[plugins]]`` entry) in ``process.toml``. For tests:
    ``Config({"min_employees": 50})``."""

    def __init__(self, entries: Optional[dict[str, object]] = None):
        self._entries = [(k, _value(v)) for k, v in (entries or {}).items()]

    @classmethod
    def _of(cls, entries: list[tuple[str, Value]]) -> "Config":
        c = cls()
        c._entries = entries
        return c

    def entries(self) -> list[tuple[str, Value]]:
        """Entries in file order."""
        return list(self._entries)

    def get(self, name: str) -> Optional[Value]:
        """An entry by name."""
        return _lookup(self._entries, name)

    def number(self, name: str) -> Optional[float]:
        """A number entry (text is not read as a number here, as in Rust)."""
        v = self.get(name)
        return v if isinstance(v, float) else None

    def text(self, name: str) -> Optional[str]:
        """A text entry."""
        v = self.get(name)
        return v if isinstance(v, str) else None

    def boolean(self, name: str) -> Optional[bool]:
        """A yes/no entry."""
        v = self.get(name)
        return v if isinstance(v, bool) else None

    def items(self, name: str) -> list[str]:
        """A comma-separated text entry as trimmed items (``"saas, fintech"``);
        empty when the entry is missing or not text."""
        return [s.strip() for s in (self.text(name) or "").split(",") if s.strip()]

    #: The Rust SDK's name for :meth:`items`.
    list = items

    def __repr__(self) -> str:
        return f"Config({dict(self._entries)!r})"


class Input:
    """What an exit criterion or checklist is evaluated on."""

    def __init__(self, prospect: Prospect, now: int = 0, config: Optional[Config] = None):
        self.prospect = prospect
        #: The evaluation time (UTC ms), from the host: plugins have no clock.
        self.now = now
        self.config = config if config is not None else Config()


# --- answers -----------------------------------------------------------------


class Verdict:
    """An exit criterion's answer."""

    __slots__ = ("met", "reason")

    def __init__(self, met: bool, reason: str):
        self.met = bool(met)
        #: Why, in words a sales rep understands.
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verdict) and (self.met, self.reason) == (other.met, other.reason)

    def __repr__(self) -> str:
        return f"Verdict(met={self.met}, reason={self.reason!r})"


def met(reason: str) -> Verdict:
    """Met, because ``reason``."""
    return Verdict(True, reason)


def unmet(reason: str) -> Verdict:
    """Unmet, because ``reason``."""
    return Verdict(False, reason)


class ChecklistItem:
    """One methodology checklist item."""

    __slots__ = ("id", "label", "done", "evidence")

    def __init__(self, id: str, label: str, done: bool, evidence: str):
        #: Stable id (``metrics``, ``economic-buyer``).
        self.id = id
        #: What the item asks ("Economic buyer identified").
        self.label = label
        self.done = bool(done)
        #: What shows it is done, or what is missing.
        self.evidence = evidence

    @staticmethod
    def prospect_did(id: str, label: str, p: Prospect, kind: str) -> "ChecklistItem":
        """Done when the prospect did ``kind``; the evidence says when, or
        what is missing."""
        last = p._latest(kind, True)
        if last is not None:
            at = p._columns()[3][last]
            return ChecklistItem(id, label, True, f"`{kind}` recorded (at {at} ms)")
        return ChecklistItem(id, label, False, f"no `{kind}` by the prospect yet")

    @staticmethod
    def recorded(id: str, label: str, p: Prospect, kind: str) -> "ChecklistItem":
        """Done when anyone recorded ``kind``."""
        last = p.last(kind)
        if last is not None:
            return ChecklistItem(id, label, True, f"`{kind}` recorded (at {last.at} ms)")
        return ChecklistItem(id, label, False, f"no `{kind}` recorded yet")

    @staticmethod
    def field(id: str, label: str, p: Prospect, name: str) -> "ChecklistItem":
        """Done when the field has a value (yes/no fields: when yes)."""
        v = p.field(name)
        if v is True:
            return ChecklistItem(id, label, True, f"`{name}` is yes")
        if v is False:
            return ChecklistItem(id, label, False, f"`{name}` is no")
        if isinstance(v, str) and v.strip():
            return ChecklistItem(id, label, True, f"`{name}`: {v}")
        if isinstance(v, float):
            return ChecklistItem(id, label, True, f"`{name}`: {num(v)}")
        return ChecklistItem(id, label, False, f"`{name}` is not set")

    @staticmethod
    def either(a: "ChecklistItem", b: "ChecklistItem") -> "ChecklistItem":
        """Done when either item is done (``a``'s id and label)."""
        if a.done:
            return a
        if b.done:
            return ChecklistItem(a.id, a.label, True, b.evidence)
        return a

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChecklistItem) and (
            self.id,
            self.label,
            self.done,
            self.evidence,
        ) == (other.id, other.label, other.done, other.evidence)

    def __repr__(self) -> str:
        return f"ChecklistItem({self.id!r}, done={self.done}, evidence={self.evidence!r})"


# --- metrics -----------------------------------------------------------------


class ProspectSummary(_Fields):
    """A prospect as a metric plugin sees it."""

    def __init__(
        self,
        id: int,
        stage: str,
        *,
        owner: Optional[str] = None,
        status: str = "open",
        created_at: int = 0,
        closed_at: Optional[int] = None,
        stage_probability: Optional[float] = None,
        fields: Optional[dict[str, object]] = None,
    ):
        self.id = id
        self.owner = owner
        self.stage = stage
        self.status = status
        self.created_at = created_at
        self.closed_at = closed_at
        #: The stage's win probability from ``process.toml``, if set.
        self.stage_probability = stage_probability
        self._fields = [(k, _value(v)) for k, v in (fields or {}).items()]



class Transition:
    """A stage change."""

    __slots__ = ("prospect", "from_", "to", "at", "kind")

    def __init__(self, prospect: int, from_: Optional[str], to: str, at: int, kind: str):
        self.prospect = prospect
        self.from_ = from_
        self.to = to
        self.at = at
        #: ``created``, ``advanced``, ``forced``, ``won``, ``lost``, ...
        self.kind = kind


class MetricInput:
    """What a metric plugin folds over."""

    def __init__(
        self,
        now: int = 0,
        config: Optional[Config] = None,
        prospects: Iterable[ProspectSummary] = (),
        transitions: Iterable[Transition] = (),
    ):
        self.now = now
        self.config = config if config is not None else Config()
        self._prospects = list(prospects)
        self._transitions = list(transitions)

    def with_prospect(self, p: ProspectSummary) -> "MetricInput":
        """Adds a prospect (for tests)."""
        self._prospects.append(p)
        return self

    def with_transition(self, t: Transition) -> "MetricInput":
        """Adds a transition (for tests)."""
        self._transitions.append(t)
        return self

    def prospects(self) -> list[ProspectSummary]:
        return self._prospects

    def transitions(self) -> list[Transition]:
        return self._transitions


class MetricValue:
    """One named result of a metric plugin."""

    __slots__ = ("name", "label", "value")

    def __init__(self, name: str, label: str, value: float):
        #: What the number is (``forecast``).
        self.name = name
        #: Which slice it is for (``owner=maria``), empty for the total.
        self.label = label
        self.value = float(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricValue) and (self.name, self.label, self.value) == (
            other.name,
            other.label,
            other.value,
        )

    def __repr__(self) -> str:
        return f"MetricValue({self.name!r}, {self.label!r}, {self.value!r})"


# --- the plugin --------------------------------------------------------------


class Plugin:
    """A plugin. Set ``name`` and ``description`` and implement
    ``evaluate``, ``checklist`` or ``metric``; what it provides is the
    methods it implements, unless ``provides`` says otherwise.

    Set ``reads_activities = False`` when ``evaluate`` and ``checklist``
    read only fields and config: the daemon then leaves the activity log
    out, and each call is much cheaper."""

    name: str = ""
    description: str = ""
    provides: Optional[tuple[Capability, ...]] = None
    reads_activities: bool = True

    def evaluate(self, input: Input) -> Verdict:
        """An exit criterion: is it met for this prospect?"""
        raise PluginError(f"`{self.name}` does not provide an exit criterion")

    def checklist(self, input: Input) -> list[ChecklistItem]:
        """A methodology checklist: each item done or not, with evidence."""
        raise PluginError(f"`{self.name}` does not provide a checklist")

    def metric(self, input: MetricInput) -> list[MetricValue]:
        """A metric: named values folded from prospects and transitions."""
        raise PluginError(f"`{self.name}` does not provide a metric")

    @classmethod
    def capabilities(cls) -> tuple[Capability, ...]:
        """What the plugin provides: ``provides``, or the methods it overrides."""
        if cls.provides is not None:
            return tuple(cls.provides)
        found = []
        for method, cap in (
            ("evaluate", Capability.CRITERION),
            ("checklist", Capability.CHECKLIST),
            ("metric", Capability.METRIC),
        ):
            if getattr(cls, method) is not getattr(Plugin, method):
                found.append(cap)
        return tuple(found)
