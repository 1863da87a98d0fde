"""The retrain decision of the drift DAG: drift, force, cooldown, dry run, no check."""

from __future__ import annotations

from datetime import date

import pytest

from mlops_provider.core.retrain import RULES, cooldown_run_ids, decide_retrain, retrain_rules, retrain_run_id

pytestmark = pytest.mark.unit

DRIFTED = {"status": "checked", "drifted": True, "share": 0.6, "drift_share": 0.5, "features": 10,
           "drifted_features": ["a", "b", "c", "d", "e", "f"]}  # fmt: skip
CLEAN = {"status": "checked", "drifted": False, "share": 0.1, "drift_share": 0.5, "features": 10,
         "drifted_features": ["a"]}  # fmt: skip


def test_dataset_drift_retrains_and_names_the_features():
    decision = decide_retrain(DRIFTED)
    assert decision.retrain is True
    assert "6 of 10 features" in decision.reason and "a, b, c" in decision.reason


def test_no_drift_does_not_retrain_unless_forced():
    assert decide_retrain(CLEAN).retrain is False
    assert "No dataset drift" in decide_retrain(CLEAN).reason
    assert decide_retrain(CLEAN, force=True).retrain is True


def test_cooldown_and_dry_run_hold_back_even_real_drift():
    cooling = decide_retrain(DRIFTED, in_cooldown=True, cooldown_days=7)
    assert cooling.retrain is False and "within the last 7 days" in cooling.reason
    assert decide_retrain(CLEAN, force=True, in_cooldown=True).retrain is False
    dry = decide_retrain(DRIFTED, dry_run=True)
    assert dry.retrain is False and "dry run" in dry.reason and "Dataset drift" in dry.reason


def test_no_check_never_retrains_and_says_why():
    decision = decide_retrain({"status": "no_champion", "message": "No champion yet"}, force=True)
    assert decision == decision.__class__(False, "No champion yet")


def test_run_ids_are_deterministic_and_cover_the_cooldown():
    assert retrain_run_id("churn_classifier", date(2026, 5, 3)) == "drift__churn_classifier__2026-05-03"
    assert cooldown_run_ids("m", date(2026, 5, 3), 3) == [
        "drift__m__2026-05-03", "drift__m__2026-05-02", "drift__m__2026-05-01",
    ]  # fmt: skip
    assert cooldown_run_ids("m", date(2026, 5, 3), 0) == ["drift__m__2026-05-03"]


PREDICTION = {"drifted": True, "metric": "wasserstein_norm", "score": 0.4}
DEGRADED = {"metric": "roc_auc", "value": 0.61, "champion_holdout": 0.8, "minimum": 0.7, "degraded": True}


def test_prediction_drift_retrains_unless_the_policy_turns_that_rule_off():
    decision = decide_retrain({**CLEAN, "prediction": PREDICTION})
    assert decision.retrain is True and decision.rules == ("prediction",)
    assert "Prediction drift: prediction wasserstein_norm 0.4" in decision.reason
    off = {**CLEAN, "prediction": PREDICTION, "policy": {"prediction_drift": False}}
    assert decide_retrain(off).retrain is False


def test_degraded_realised_performance_retrains_unless_the_policy_turns_that_rule_off():
    decision = decide_retrain({**CLEAN, "performance": DEGRADED})
    assert decision.retrain is True and decision.rules == ("performance",)
    assert "realised roc_auc 0.61 (champion holdout 0.8, minimum 0.7): degraded" in decision.reason
    assert decide_retrain({**CLEAN, "performance": {**DEGRADED, "degraded": False}}).retrain is False
    assert (
        decide_retrain({**CLEAN, "performance": DEGRADED, "policy": {"performance": False}}).retrain is False
    )


def test_every_rule_that_fires_is_named_and_each_rule_is_listed():
    summary = {**DRIFTED, "weighting": "importance", "prediction": PREDICTION, "performance": DEGRADED}
    decision = decide_retrain(summary)
    assert decision.rules == ("feature_share", "prediction", "performance")
    assert "importance-weighted share 0.6 (threshold 0.5)" in decision.reason
    assert [r["rule"] for r in retrain_rules(CLEAN)] == list(RULES)
    assert [r["fired"] for r in retrain_rules(CLEAN)] == [False, False, False]
    with pytest.raises(ValueError, match="weighting: must be one of importance, uniform"):
        retrain_rules({**CLEAN, "policy": {"weighting": "votes"}})
