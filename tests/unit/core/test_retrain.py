"""The retrain decision of the drift DAG: drift, force, cooldown, dry run, no check."""

from __future__ import annotations

from datetime import date

import pytest

from mlops_provider.core.retrain import cooldown_run_ids, decide_retrain, retrain_run_id

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
