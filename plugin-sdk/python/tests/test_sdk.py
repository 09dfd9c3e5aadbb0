"""The Python SDK natively: what a plugin author's tests rely on, and the
parts that must match the Rust SDK exactly (numbers, numeric text,
evidence texts, byte offsets)."""

import json
import math
from pathlib import Path

import pytest

from stagecoach_plugin import (
    Activity,
    Actor,
    Capability,
    ChecklistItem,
    Config,
    Input,
    MetricInput,
    MetricValue,
    Plugin,
    PluginError,
    Prospect,
    ProspectSummary,
    Verdict,
    num,
)
from stagecoach_plugin._pool import Pool, decode_input, decode_metric_input, pack_input


@pytest.mark.parametrize(
    "n, text",
    [
        # What Rust's `Num` (its `Display` for f64) writes for each.
        (120, "120"),
        (120.0, "120"),
        (0.25, "0.25"),
        (12.5, "12.5"),
        (-3, "-3"),
        (-0.0, "0"),
        (1e-7, "0.0000001"),
        (-1.5e-10, "-0.00000000015"),
        (1e15, "1000000000000000"),
        (2.5e16, "25000000000000000"),
        (1e21, "1000000000000000000000"),
        (123456789012345.6, "123456789012345.6"),
        (0.1 + 0.2, "0.30000000000000004"),
        (math.nan, "NaN"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_numbers_are_written_as_the_rust_sdk_writes_them(n, text):
    assert num(n) == text


def test_numeric_text_is_read_as_rust_reads_it():
    p = Prospect("s", fields={"a": " 75 ", "b": "1_000", "c": "inf", "d": "", "e": "١٢", "f": "1e3", "g": True})
    assert p.number("a") == 75
    assert p.number("b") is None
    assert p.number("c") == math.inf
    assert p.number("d") is None
    assert p.number("e") is None
    assert p.number("f") == 1000
    assert p.number("g") is None
    assert p.text("a") == " 75 " and p.text("g") is None
    assert p.yes("g") and not p.has_field("d") and p.has_field("a")


def test_activity_views():
    p = (
        Prospect("research")
        .entered_stage_at(100)
        .with_action("replied", 50)
        .with_activity("replied", Actor.REP, 150)
        .with_action("replied", 200)
        .with_activity("demo", Actor.PROSPECT, 200, {"minutes": 30, "by": "Zoë"})
        .with_activity("demo", Actor.PROSPECT, 200, {"minutes": 45})
    )
    assert p.did("replied") and not p.did("call")
    assert p.count("replied") == 3
    assert p.count_since_stage_entry("replied") == 2
    # The last of equally late ones, as Rust's max_by_key.
    assert p.last("demo").datum("minutes") == 45
    assert p.last("demo").data() == [("minutes", 45.0)]
    assert p.days_in_stage(100 + 86_400_000 * 3) == 3
    only_rep = Prospect("s").with_activity("replied", Actor.REP, 1)
    assert only_rep.has_activity("replied") and not only_rep.did("replied")


def test_config_reads_typed_entries():
    c = Config({"min": 5, "list": " saas, ,fintech ", "on": True, "text": "5"})
    assert c.number("min") == 5.0
    assert c.number("text") is None  # as in Rust: config numbers are numbers
    assert c.items("list") == ["saas", "fintech"] == c.list("list")
    assert c.items("missing") == [] and c.items("min") == []
    assert c.boolean("on") is True and c.boolean("min") is None
    with pytest.raises(TypeError):
        Config({"bad": [1, 2]})


def test_checklist_items_say_what_the_rust_ones_say():
    p = (
        Prospect("s", fields={"budget": 0, "dm": False, "need": "  ", "date": "fin de T3"})
        .with_action("met", 5)
        .with_action("met", 5)
        .with_activity("shared", Actor.REP, 7)
    )
    assert ChecklistItem.field("b", "B", p, "budget").evidence == "`budget`: 0"
    assert ChecklistItem.field("d", "D", p, "dm").evidence == "`dm` is no"
    assert not ChecklistItem.field("n", "N", p, "need").done
    assert ChecklistItem.field("t", "T", p, "date").evidence == "`date`: fin de T3"
    assert ChecklistItem.prospect_did("m", "M", p, "met").evidence == "`met` recorded (at 5 ms)"
    assert ChecklistItem.prospect_did("s", "S", p, "shared").evidence == "no `shared` by the prospect yet"
    assert ChecklistItem.recorded("s", "S", p, "shared").evidence == "`shared` recorded (at 7 ms)"
    either = ChecklistItem.either(
        ChecklistItem.field("x", "X", p, "missing"), ChecklistItem.prospect_did("y", "Y", p, "met")
    )
    assert (either.id, either.label, either.done) == ("x", "X", True)


def _fixture(name):
    """What the daemon sends (written by the plugin host's own test, so the
    host's writer and this reader are held to the same bytes)."""
    d = Path(__file__).resolve().parents[2] / "testdata"
    text = (d / f"{name}.txt").read_bytes().decode("utf-8")
    return text, (d / f"{name}.bin").read_bytes(), json.loads((d / f"{name}.json").read_bytes())


def _pairs(entries):
    return [tuple(e) for e in entries]


def test_the_packed_input_reads_as_the_host_wrote_it():
    text, packed, want = _fixture("input")
    # The questions about activities, answered from the host's columns
    # (before any activity object is made), as from the objects.
    for fresh in (True, False):
        q = decode_input(text, packed).prospect
        if not fresh:
            q.activities()
        acts = want["prospect"]["activities"]
        for kind in ["demo_attended", "démo_envoyée", "replied", "email_sent", "missing"]:
            mine = [a for a in acts if a["kind"] == kind]
            assert q.count(kind) == len(mine)
            assert q.has_activity(kind) == bool(mine)
            assert q.did(kind) == any(a["actor"] == "prospect" for a in mine)
            assert [a.at for a in q.activities_of(kind)] == [a["at"] for a in mine]
            last = q.last(kind)
            assert (last.at if last else None) == (mine[-1]["at"] if mine else None)
            # The latest of equals is the later one.
            assert (last.data() if last else None) == (_pairs(mine[-1]["data"]) if mine else None)
            assert q.count_since_stage_entry(kind) == sum(
                1 for a in mine if a["at"] >= q.stage_entered_at
            )
        item = ChecklistItem.prospect_did("d", "D", q, "demo_attended")
        assert item.evidence == "`demo_attended` recorded (at -5000 ms)"
        assert not ChecklistItem.prospect_did("e", "E", q, "démo_envoyée").done
    i = decode_input(text, packed)
    p, w = i.prospect, want["prospect"]
    assert (p.id, p.name, p.company, p.owner, p.stage, p.status) == (
        int(w["id"]),
        w["name"],
        w["company"],
        w["owner"],
        w["stage"],
        w["status"],
    )
    assert (p.created_at, p.stage_entered_at, p.activities_truncated) == (
        w["created_at"],
        w["stage_entered_at"],
        w["activities_truncated"],
    )
    assert p.fields() == _pairs(w["fields"])
    assert [(a.kind, a.actor.value, a.at, a.data()) for a in p.activities()] == [
        (a["kind"], a["actor"], a["at"], _pairs(a["data"])) for a in w["activities"]
    ]
    assert (i.now, i.config.entries()) == (want["now"], _pairs(want["config"]))
    # The views over it answer as over a prospect built natively.
    assert p.number("employees") == 120.0 and p.yes("decision_maker") is False
    assert p.did("demo_attended") and not p.did("démo_envoyée")
    assert p.has_activity("démo_envoyée")
    assert p.activities()[1].datum("who") == "ça va"
    assert i.config.items("industries") == ["saas", "fintech", "☃"]


def test_the_sdk_packs_an_input_byte_for_byte_as_the_host_does():
    text, packed, want = _fixture("input")
    w = want["prospect"]
    p = Prospect(
        w["stage"],
        id=int(w["id"]),
        name=w["name"],
        company=w["company"],
        owner=w["owner"],
        status=w["status"],
        created_at=w["created_at"],
        stage_entered_at=w["stage_entered_at"],
    )
    p._fields = _pairs(w["fields"])
    for a in w["activities"]:
        p.with_activity(a["kind"], Actor(a["actor"]), a["at"], dict(a["data"]))
    config = Config(dict(want["config"]))
    assert pack_input(p, want["now"], config) == (text, packed)


def test_the_packed_metric_input_reads_as_the_host_wrote_it():
    text, packed, want = _fixture("metric")
    m = decode_metric_input(text, packed)
    assert (m.now, m.config.entries()) == (want["now"], _pairs(want["config"]))
    got = [
        (
            p.id,
            p.stage,
            p.owner,
            p.status,
            p.created_at,
            p.closed_at,
            p.stage_probability,
            p.fields(),
        )
        for p in m.prospects()
    ]
    assert got == [
        (
            int(p["id"]),
            p["stage"],
            p["owner"],
            p["status"],
            p["created_at"],
            p["closed_at"],
            p["stage_probability"],
            _pairs(p["fields"]),
        )
        for p in want["prospects"]
    ]
    assert [(t.prospect, t.from_, t.to, t.at, t.kind) for t in m.transitions()] == [
        (int(t["prospect"]), t["from"], t["to"], t["at"], t["kind"]) for t in want["transitions"]
    ]


def test_spans_are_utf8_byte_offsets():
    text = "Zoë 🚀 café budget"
    pool = Pool(text, b"", 0)
    raw = text.encode()
    for s in ["Zoë", "🚀", "café", "budget", " "]:
        b = s.encode()
        assert pool.get(raw.index(b), len(b)) == s
    assert pool.opt(0xFFFF_FFFF, 0) is None
    ascii_pool = Pool("a budget", b"", 0)
    assert ascii_pool.raw is None and ascii_pool.get(2, 6) == "budget"


def test_a_plugin_provides_what_it_implements():
    class Both(Plugin):
        name = "both"

        def evaluate(self, input):
            return Verdict(True, "ok")

        def checklist(self, input):
            return []

    assert Both.capabilities() == (Capability.CRITERION, Capability.CHECKLIST)
    with pytest.raises(PluginError, match="`both` does not provide a metric"):
        Both().metric(MetricInput())

    class Metric(Plugin):
        name = "count"

        def metric(self, input):
            return [MetricValue("open", "", sum(1 for p in input.prospects() if p.status == "open"))]

    m = MetricInput(prospects=[ProspectSummary(1, "s"), ProspectSummary(2, "s", status="won")])
    assert Metric().metric(m) == [MetricValue("open", "", 1)]
    assert Metric.capabilities() == (Capability.METRIC,)
    assert Input(Prospect("s")).config.entries() == []
    assert Activity("k").actor is Actor.PROSPECT
