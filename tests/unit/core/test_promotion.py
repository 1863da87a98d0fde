from __future__ import annotations

import json
import math

import pytest

from mlops_provider.core.promotion import (
    GateDecision,
    GatePolicy,
    champion_unchanged,
    confirm_promotion,
    decide_promotion,
)

pytestmark = pytest.mark.unit

POLICY = GatePolicy(metric="roc_auc", minimums={"roc_auc": 0.6, "log_loss": 0.5}, margin=0.002)


def metrics(roc_auc: float, log_loss: float = 0.4) -> dict[str, float]:
    return {"roc_auc": roc_auc, "log_loss": log_loss, "f1": 0.4}


def test_no_champion_promotes_a_challenger_that_passes_the_minimums():
    decision = decide_promotion(metrics(0.81), None, champion_version=None, policy=POLICY)
    assert decision.promote is True
    assert decision.champion_version is None
    assert decision.improvement is None
    assert decision.reason.startswith("No champion exists")
    assert "roc_auc 0.8100 >= 0.6000" in decision.reason
    assert "log_loss 0.4000 <= 0.5000" in decision.reason


def test_challenger_better_by_more_than_the_margin_is_promoted():
    decision = decide_promotion(metrics(0.815), metrics(0.81), champion_version="3", policy=POLICY)
    assert decision.promote is True
    assert decision.improvement == pytest.approx(0.005)
    assert "beats champion version 3 on roc_auc by 0.0050 (0.8150 vs 0.8100; margin 0.002)" in decision.reason


def test_improvement_exactly_the_margin_is_enough_despite_float_rounding():
    # 0.8123 - 0.8103 is 0.0019999999999997797 in floating point.
    decision = decide_promotion(metrics(0.8123), metrics(0.8103), champion_version="3", policy=POLICY)
    assert decision.promote is True


def test_challenger_better_by_less_than_the_margin_is_rejected():
    decision = decide_promotion(metrics(0.811), metrics(0.81), champion_version="3", policy=POLICY)
    assert decision.promote is False
    assert decision.reason == (
        "The challenger beats champion version 3 on roc_auc by less than the margin: 0.8110 vs 0.8100 "
        "(improvement +0.0010, margin 0.002); the champion stays."
    )


def test_worse_challenger_is_rejected():
    decision = decide_promotion(metrics(0.79), metrics(0.81), champion_version="3", policy=POLICY)
    assert decision.promote is False
    assert decision.improvement == pytest.approx(-0.02)
    assert "is worse than champion version 3 on roc_auc: 0.7900 vs 0.8100 (improvement -0.0200" in (
        decision.reason
    )


@pytest.mark.parametrize("margin", [0.0, 0.002])
def test_a_tie_never_replaces_the_champion(margin):
    policy = GatePolicy(metric="roc_auc", minimums={}, margin=margin)
    decision = decide_promotion(metrics(0.81), metrics(0.81), champion_version="7", policy=policy)
    assert decision.promote is False
    assert "ties with champion version 7 on roc_auc: 0.8100 vs 0.8100" in decision.reason


def test_zero_margin_promotes_any_strict_improvement():
    policy = GatePolicy(metric="roc_auc", margin=0.0)
    decision = decide_promotion(metrics(0.8101), metrics(0.81), champion_version="1", policy=policy)
    assert decision.promote is True


def test_lower_is_better_metric_compares_the_other_way():
    policy = GatePolicy(metric="log_loss", minimums={"log_loss": 0.5}, margin=0.01)
    better = decide_promotion(metrics(0.8, 0.38), metrics(0.8, 0.40), champion_version="2", policy=policy)
    worse = decide_promotion(metrics(0.8, 0.42), metrics(0.8, 0.40), champion_version="2", policy=policy)
    assert better.promote is True
    assert better.improvement == pytest.approx(0.02)
    assert worse.promote is False
    assert worse.improvement == pytest.approx(-0.02)


def test_failed_minimums_are_all_named_with_their_numbers():
    decision = decide_promotion(metrics(0.55, 0.7), None, champion_version=None, policy=POLICY)
    assert decision.promote is False
    assert decision.failed_minimums == ("roc_auc", "log_loss")
    assert decision.reason == (
        "The challenger fails the minimums: roc_auc 0.5500 is below the minimum 0.6000; "
        "log_loss 0.7000 is above the maximum 0.5000."
    )


@pytest.mark.parametrize("value", [math.nan, None])
def test_a_missing_minimum_metric_fails(value):
    challenger = {"roc_auc": value, "log_loss": 0.4}
    decision = decide_promotion(challenger, None, champion_version=None, policy=POLICY)
    assert decision.promote is False
    assert "roc_auc is missing or not a number (needs >= 0.6000)" in decision.reason


def test_a_champion_without_a_comparable_metric_keeps_its_alias():
    decision = decide_promotion(metrics(0.9), {"roc_auc": math.nan}, champion_version="4", policy=POLICY)
    assert decision.promote is False
    assert "Cannot compare on roc_auc: the champion version 4 has no finite value" in decision.reason


def test_force_skips_the_margin_comparison():
    decision = decide_promotion(metrics(0.79), metrics(0.81), champion_version="3", policy=POLICY, force=True)
    assert decision.promote is True
    assert decision.forced is True
    assert decision.reason.startswith("Force-promote: the margin comparison is skipped")
    assert "roc_auc 0.7900 vs 0.8100 for champion version 3" in decision.reason


def test_force_does_not_skip_the_minimums():
    decision = decide_promotion(metrics(0.55), metrics(0.81), champion_version="3", policy=POLICY, force=True)
    assert decision.promote is False
    assert decision.forced is True
    assert "fails the minimums: roc_auc 0.5500 is below the minimum 0.6000" in decision.reason


def test_champion_version_needs_champion_metrics():
    with pytest.raises(ValueError, match="Champion version 3 was given without its metrics"):
        decide_promotion(metrics(0.8), None, champion_version="3", policy=POLICY)


def test_decision_dict_is_json_safe():
    decision = decide_promotion(
        {"roc_auc": 0.8, "log_loss": 0.4, "pr_auc": math.nan}, metrics(0.7), champion_version=5, policy=POLICY
    )
    data = decision.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["challenger_metrics"]["pr_auc"] is None
    assert data["champion_version"] == "5"
    assert data["promote"] is True


def test_decision_round_trips_through_its_dict():
    decision = decide_promotion(metrics(0.55), metrics(0.81), champion_version="3", policy=POLICY)
    restored = GateDecision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert restored == decision
    assert restored.failed_minimums == ("roc_auc",)


@pytest.mark.parametrize(
    ("expected", "current", "unchanged"),
    [
        (None, None, True),
        ("3", "3", True),
        (3, "3", True),
        ("3", "4", False),
        (None, "1", False),
        ("2", None, False),
    ],
)
def test_champion_unchanged(expected, current, unchanged):
    assert champion_unchanged(expected, current) is unchanged


def test_a_concurrently_changed_champion_is_not_overwritten():
    decision = decide_promotion(metrics(0.82), metrics(0.81), champion_version="3", policy=POLICY)
    confirmed = confirm_promotion(decision, "4")
    assert confirmed.promote is False
    assert confirmed.reason == (
        "The champion changed from version 3 to version 4 since evaluation began; "
        "it is not overwritten (re-run training to gate against it)."
    )
    assert confirmed.challenger_metrics == decision.challenger_metrics


def test_a_champion_appearing_during_evaluation_is_not_overwritten_even_when_forced():
    decision = decide_promotion(metrics(0.82), None, champion_version=None, policy=POLICY, force=True)
    confirmed = confirm_promotion(decision, "1")
    assert confirmed.promote is False
    assert "changed from no champion to version 1" in confirmed.reason


def test_unchanged_champion_confirms_the_decision_as_is():
    decision = decide_promotion(metrics(0.82), metrics(0.81), champion_version="3", policy=POLICY)
    assert confirm_promotion(decision, "3") is decision
    rejected = decide_promotion(metrics(0.7), metrics(0.81), champion_version="3", policy=POLICY)
    assert confirm_promotion(rejected, "9") is rejected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "auc"}, "Unknown metric 'auc'"),
        ({"metric": "roc_auc", "margin": -0.1}, "margin must be a finite number >= 0"),
        ({"metric": "roc_auc", "minimums": {"roc_auc": math.inf}}, "minimum for 'roc_auc'"),
        ({"metric": "roc_auc", "minimums": {"gini": 0.2}}, "Unknown metric 'gini'"),
    ],
)
def test_policy_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatePolicy(**kwargs)


def test_decision_is_frozen():
    decision = GateDecision(promote=False, reason="x", challenger_metrics={})
    with pytest.raises(AttributeError):
        decision.promote = True
