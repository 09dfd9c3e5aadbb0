import pytest

from icp_fit import IcpFit
from stagecoach_plugin import Config, Input, PluginError, Prospect


def config(**extra):
    return Config({"min_employees": 50, "industries": "SaaS, fintech", "min_score": 0.5, **extra})


def evaluate(prospect, cfg):
    return IcpFit().evaluate(Input(prospect, 0, cfg))


def test_scores_configured_checks():
    fits = Prospect("prospect", fields={"employees": 200, "industry": "saas"})
    v = evaluate(fits, config())
    assert v.met
    assert v.reason == "ICP score 2/2 (employees 200 ≥ 50; industry saas)"

    half = Prospect("prospect", fields={"employees": 10, "industry": "fintech"})
    assert evaluate(half, config()).met
    strict = Config({"min_employees": 50, "industries": "SaaS, fintech"})
    assert not evaluate(half, strict).met


def test_missing_fields_fail_and_no_config_is_an_error():
    v = evaluate(Prospect("p"), config())
    assert not v.met
    assert "`employees` not set" in v.reason
    elsewhere = Prospect("p", fields={"employees": 12.5, "industry": "retail"})
    v = evaluate(elsewhere, config())
    assert not v.met
    assert v.reason == "ICP score 0/2 (employees 12.5 < 50; industry retail not in SaaS, fintech)"
    with pytest.raises(PluginError, match="no checks configured"):
        evaluate(Prospect("p"), Config())


def test_numeric_text_counts_and_only_ascii_letters_fold():
    p = Prospect("p", fields={"employees": " 75 ", "industry": "ÉNERGIE"})
    v = evaluate(p, Config({"min_employees": 50, "industries": "énergie"}))
    assert v.reason == "ICP score 1/2 (employees 75 ≥ 50; industry ÉNERGIE not in énergie)"
