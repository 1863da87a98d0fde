from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from mlops_provider.core.performance import (
    assess_performance,
    days_since,
    labelled_days,
    no_performance,
    performance_text,
)

pytestmark = pytest.mark.unit

DAYS = ["2026-07-10", "2026-07-11"]


def binary(auc_signal: float, rows: int = 4000, seed: int = 0):
    """Labels and scores whose ROC AUC grows with ``auc_signal``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    score = 1 / (1 + np.exp(-(auc_signal * (2 * y - 1) + rng.normal(size=rows))))
    return y, score


def test_labelled_days_end_the_label_delay_before_the_check():
    assert labelled_days(date(2026, 7, 12), label_delay_days=1, performance_days=3) == (
        date(2026, 7, 9),
        date(2026, 7, 11),
    )
    assert labelled_days(date(2026, 7, 12), label_delay_days=0, performance_days=1) == (
        date(2026, 7, 12),
        date(2026, 7, 12),
    )
    with pytest.raises(ValueError, match="label_delay_days must be >= 0"):
        labelled_days(date(2026, 7, 12), label_delay_days=-1, performance_days=3)
    with pytest.raises(ValueError, match="performance_days >= 1"):
        labelled_days(date(2026, 7, 12), label_delay_days=1, performance_days=0)


def test_a_champion_as_good_as_its_holdout_is_not_degraded():
    y, score = binary(0.73)
    result = assess_performance(
        "binary", y, score, metric="roc_auc", champion_holdout=0.85, minimum=0.6, margin=0.05, days=DAYS
    )
    assert result["metric"] == "roc_auc" and 0.83 < result["value"] < 0.9
    assert result["degraded"] is False and "holds up" in result["reason"]
    assert result["rows"] == 4000 and result["days"] == DAYS
    assert set(result["metrics"]) >= {"roc_auc", "log_loss", "f1"}
    assert json.loads(json.dumps(result)) == result  # JSON-safe (XCom)


def test_worse_than_its_own_holdout_by_more_than_the_margin_is_degraded():
    y, score = binary(0.29)  # ROC AUC ~0.66
    result = assess_performance(
        "binary", y, score, metric="roc_auc", champion_holdout=0.85, minimum=0.6, margin=0.05, days=DAYS
    )
    assert result["degraded"] is True
    assert "worse than the champion's holdout" in result["reason"] and "minimum" not in result["reason"]
    within = assess_performance(
        "binary", y, score, metric="roc_auc", champion_holdout=result["value"] + 0.04, minimum=None,
        margin=0.05, days=DAYS,
    )  # fmt: skip
    assert within["degraded"] is False


def test_below_the_gate_minimum_is_degraded_also_for_metrics_where_lower_is_better():
    y, score = binary(0.1)
    result = assess_performance(
        "binary", y, score, metric="roc_auc", champion_holdout=None, minimum=0.6, margin=0.05, days=DAYS
    )
    assert result["degraded"] is True and "misses the gate's minimum" in result["reason"]

    rng = np.random.default_rng(1)
    truth = rng.normal(100, 10, 500)
    off = assess_performance(
        "regression", truth, truth + rng.normal(0, 30, 500), metric="rmse", champion_holdout=10.0,
        minimum=50.0, margin=5.0, days=DAYS,
    )  # fmt: skip
    assert 25 < off["value"] < 35 and off["degraded"] is True and "worse than" in off["reason"]
    good = assess_performance(
        "regression", truth, truth + rng.normal(0, 10, 500), metric="rmse", champion_holdout=10.0,
        minimum=50.0, margin=5.0, days=DAYS,
    )  # fmt: skip
    assert good["degraded"] is False


def test_an_undefined_metric_is_not_degraded_and_nothing_to_score_says_so():
    result = assess_performance(
        "binary", np.ones(50, dtype=int), np.full(50, 0.3), metric="roc_auc", champion_holdout=0.8,
        minimum=0.6, margin=0.0, days=DAYS,
    )  # fmt: skip
    assert result["value"] is None and result["degraded"] is False and "undefined" in result["reason"]
    empty = no_performance("roc_auc", champion_holdout=0.8, minimum=None, margin=0.02)
    assert empty["degraded"] is False and empty["rows"] == 0 and empty["days"] == []
    assert performance_text(empty) == "No labelled rows to score."


def test_performance_text_and_days_since_read_well():
    y, score = binary(0.29)
    result = assess_performance(
        "binary", y, score, metric="roc_auc", champion_holdout=0.85, minimum=0.6, margin=0.05, days=DAYS
    )
    text = performance_text(result)
    assert text.startswith("roc_auc 0.") and "4,000 rows (2026-07-10..2026-07-11)" in text
    assert "DEGRADED" in text
    assert days_since(date(2026, 7, 11), date(2026, 7, 1)) == 10
    assert days_since(date(2026, 7, 11), None) == 0
