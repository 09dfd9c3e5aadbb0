from bant import Bant
from stagecoach_plugin import Actor, Input, Prospect


def items(p):
    return Bant().checklist(Input(p))


def test_four_items_from_fields_and_actions():
    none = items(Prospect("connect"))
    assert len(none) == 4
    assert not any(i.done for i in none)
    everything = items(
        Prospect("connect")
        .with_field("budget", 20000)
        .with_action("decision_maker_met", 5)
        .with_action("requirements_shared", 6)
        .with_field("close_date", "2026-09-30")
    )
    assert all(i.done for i in everything), everything
    assert everything[0].evidence == "`budget`: 20000"
    assert everything[1].evidence == "`decision_maker_met` recorded (at 5 ms)"
    rep = items(Prospect("connect").with_activity("requirements_shared", Actor.REP, 1))
    assert not rep[2].done
    assert rep[2].evidence == "no `requirements_shared` by the prospect yet"
