"""The glue between the bindings componentize-py generates for the WIT
interface and the SDK's views. Imported only inside a built component
(by the entry module ``stagecoach plugins build`` writes), never natively.

What it does besides converting: ``print()`` and ``sys.stderr`` go to the
daemon's log (stub WASI would trap on them), and an exception becomes a
readable failure reason (its type, message and the plugin's line that
raised it) instead of a bare ``unreachable`` trap.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports import types as t

import stagecoach_plugin as sdk
from stagecoach_plugin._pool import decode_input, decode_metric_input, pack_input

_LEVELS = {
    sdk.Level.DEBUG: host.Level.DEBUG,
    sdk.Level.INFO: host.Level.INFO,
    sdk.Level.WARN: host.Level.WARN,
    sdk.Level.ERROR: host.Level.ERROR,
}

# The host keeps at most this much of one line.
_MAX_LINE = 4096


def _host_log(level: sdk.Level, message: str) -> None:
    for b in message.encode("utf-8", "replace")[:_MAX_LINE]:
        host.log_byte(b)
    host.log_end(_LEVELS[level])


sdk._sink = _host_log


class _LogWriter:
    """A text stream whose lines go to the daemon's log."""

    def __init__(self, level: sdk.Level):
        self.level = level
        self.pending = ""

    def write(self, s: str) -> int:
        self.pending += s
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            _host_log(self.level, line)
        return len(s)

    def flush(self) -> None:
        pass

    def end_call(self) -> None:
        if self.pending:
            _host_log(self.level, self.pending)
            self.pending = ""

    def isatty(self) -> bool:
        return False


_stdout = _LogWriter(sdk.Level.INFO)
_stderr = _LogWriter(sdk.Level.WARN)
sys.stdout = _stdout
sys.stderr = _stderr


def _input(raw: t.Input) -> sdk.Input:
    return decode_input(raw.text, raw.packed)


def _metric_input(raw: t.MetricInput) -> sdk.MetricInput:
    return decode_metric_input(raw.text, raw.packed)


def _reason(e: BaseException) -> str:
    """An exception as a failure reason a plugin author can act on."""
    if isinstance(e, sdk.PluginError):
        return str(e)
    where = ""
    # Without looking source lines up: that reads files, and a plugin has
    # no filesystem (the stubbed call would trap).
    summary = traceback.StackSummary.extract(
        traceback.walk_tb(e.__traceback__), lookup_lines=False
    )
    frames = [
        f for f in summary if os.path.basename(os.path.dirname(f.filename)) != "stagecoach_plugin"
    ]
    if frames:
        f = frames[-1]
        where = f" ({os.path.basename(f.filename)}, line {f.lineno}, in {f.name})"
    message = str(e)
    return f"{type(e).__name__}: {message}{where}" if message else f"{type(e).__name__}{where}"


def _call(fn, check):
    try:
        out = fn()
        return check(out)
    except Err:
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes a reason
        raise Err(_reason(e)) from None
    finally:
        _stdout.end_call()
        _stderr.end_call()


def _verdict(v) -> t.Verdict:
    if not isinstance(v, sdk.Verdict):
        raise sdk.PluginError(f"`evaluate` returned {type(v).__name__}, not a Verdict")
    return t.Verdict(v.met, v.reason)


def _items(items) -> list:
    out = []
    for i in items:
        if not isinstance(i, sdk.ChecklistItem):
            raise sdk.PluginError(f"`checklist` returned {type(i).__name__}, not a ChecklistItem")
        out.append(t.ChecklistItem(i.id, i.label, i.done, i.evidence))
    return out


def _values(values) -> list:
    out = []
    for v in values:
        if not isinstance(v, sdk.MetricValue):
            raise sdk.PluginError(f"`metric` returned {type(v).__name__}, not a MetricValue")
        out.append(t.MetricValue(v.name, v.label, v.value))
    return out


_CAPS = {
    sdk.Capability.CRITERION: t.Capability.CRITERION,
    sdk.Capability.CHECKLIST: t.Capability.CHECKLIST,
    sdk.Capability.METRIC: t.Capability.METRIC,
}


def find_plugin(module) -> type:
    """The one :class:`stagecoach_plugin.Plugin` subclass ``module`` defines."""
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, sdk.Plugin)
        and v is not sdk.Plugin
        and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TypeError(
            f"`{module.__name__}` must define exactly one subclass of stagecoach_plugin.Plugin "
            f"(found {names})"
        )
    cls = found[0]
    if not cls.name:
        raise TypeError(f"`{cls.__name__}` needs a `name` (how process.toml refers to it)")
    return cls


def _warm_up(plugin) -> None:
    """Runs a separate instance of the plugin on made-up inputs once, at
    build time. CPython specialises each instruction on its first runs and
    makes a class's attribute layout with its first instance; done here,
    that work is in the memory every call starts from instead of in every
    call. Whatever the plugin answers, raises or logs here is dropped; what
    it keeps in module globals would stay (plugins are meant to keep no
    state between calls)."""
    sink, out, err = sdk._sink, sys.stdout, sys.stderr
    sdk._sink = lambda level, message: None
    sys.stdout = sys.stderr = _Discard()
    try:
        for name in ("Zoe", "Zoë"):
            p = sdk.Prospect("stage", id=1, name=name, company="c", owner="o", fields={
                "text": "x", "number": 1.5, "yes": True, "no": False,
            })
            p.with_activity("replied", sdk.Actor.PROSPECT, 1, {"note": name, "n": 2})
            p.with_activity("email_sent", sdk.Actor.REP, 2)
            config = sdk.Config({"text": "a, b", "number": 1, "yes": True})
            text, packed = pack_input(p, 3, config)
            for call, check in ((plugin.evaluate, _verdict), (plugin.checklist, _items)):
                try:
                    check(call(decode_input(text, packed)))
                except Exception:  # noqa: BLE001 - a plugin may refuse made-up input
                    pass
    finally:
        sdk._sink, sys.stdout, sys.stderr = sink, out, err
        _stdout.pending = _stderr.pending = ""


class _Discard:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def export(module) -> type:
    """The class componentize-py exports: the interface's ``Plugin``,
    implemented by the plugin ``module`` defines."""
    cls = find_plugin(module)
    plugin = cls()

    class Plugin(exports.Plugin):
        def describe(self) -> t.Info:
            return t.Info(
                cls.name,
                cls.description,
                [_CAPS[c] for c in cls.capabilities()],
                cls.reads_activities,
            )

        def evaluate(self, input: t.Input) -> t.Verdict:
            return _call(lambda: plugin.evaluate(_input(input)), _verdict)

        def checklist(self, input: t.Input) -> list:
            return _call(lambda: plugin.checklist(_input(input)), _items)

        def metric(self, input: t.MetricInput) -> list:
            return _call(lambda: plugin.metric(_metric_input(input)), _values)

    _warm_up(cls())
    # This runs once, at build time, and the memory it leaves is what every
    # call starts from (componentize-py snapshots it). Moving every object
    # alive now into the collector's permanent generation means a call's
    # collections look only at what that call allocated, instead of walking
    # (and writing to, page by page) the whole interpreter's heap.
    gc.collect()
    gc.freeze()
    return Plugin
