"""Realised performance: how the champion scores on the newest labelled days, and whether it degraded.

Labels may arrive later than features: a check of day D scores the ``performance_days`` days
ending ``label_delay_days`` before D. The verdict compares the gate metric with the gate's minimum
and with the champion's own holdout score (worse by more than a margin: degraded). The result is
the small dict the drift check puts into its summary as ``performance``.

Pure functions; no Airflow, no MLflow. numpy and scikit-learn run inside ``core.evaluation``.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from mlops_provider.core.evaluation import compute_metrics, improvement, is_finite_number


def labelled_days(check_day: date, *, label_delay_days: int, performance_days: int) -> tuple[date, date]:
    """The first and last day whose labels have arrived by ``check_day`` (inclusive).

    :raises ValueError: a negative delay or fewer than one day.
    """
    if label_delay_days < 0 or performance_days < 1:
        raise ValueError(
            f"label_delay_days must be >= 0 and performance_days >= 1, not {label_delay_days} "
            f"and {performance_days}."
        )
    end = check_day - timedelta(days=label_delay_days)
    return end - timedelta(days=performance_days - 1), end


def days_since(day: date, since: date | None) -> int:
    """A readable step for a monitoring time series: days from ``since`` (training end) to ``day``."""
    return 0 if since is None else (day - since).days


def _finite(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def assess_performance(
    task: str,
    y_true: Any,
    output: Any,
    *,
    metric: str,
    champion_holdout: float | None,
    minimum: float | None,
    margin: float,
    days: list[str],
) -> dict[str, Any]:
    """Score the champion's ``output`` on labelled rows and decide whether it has degraded.

    Degraded: ``metric`` is below ``minimum`` (above it for metrics where lower is better) or
    worse than ``champion_holdout`` by more than ``margin`` (in the metric's units). An undefined
    value (e.g. ROC AUC on one class) is not degraded. Arguments as in
    :func:`~mlops_provider.core.evaluation.compute_metrics`.

    :return: ``{"metric", "value", "champion_holdout", "minimum", "margin", "degraded", "reason",
        "days", "rows", "metrics"}``, JSON-safe (non-finite numbers are None).
    """
    metrics = compute_metrics(task, y_true, output)
    value = metrics[metric]
    reasons = []
    if math.isfinite(value):
        if minimum is not None and improvement(metric, value, minimum) < 0:
            reasons.append(f"{metric} {value:.4g} misses the gate's minimum {minimum:.4g}")
        if champion_holdout is not None and improvement(metric, value, champion_holdout) < -margin:
            reasons.append(
                f"{metric} {value:.4g} is worse than the champion's holdout {champion_holdout:.4g} "
                f"by more than {margin:.4g}"
            )
    reason = "; ".join(reasons) or (
        f"{metric} {value:.4g} holds up" if math.isfinite(value) else f"{metric} is undefined on these rows"
    )
    return {
        **no_performance(metric, champion_holdout=champion_holdout, minimum=minimum, margin=margin),
        "value": _finite(value),
        "degraded": bool(reasons),
        "reason": reason,
        "days": list(days),
        "rows": len(y_true),
        "metrics": {name: _finite(v) for name, v in metrics.items()},
    }


def no_performance(
    metric: str,
    *,
    champion_holdout: float | None,
    minimum: float | None,
    margin: float,
    reason: str = "No labelled rows to score.",
) -> dict[str, Any]:
    """The ``performance`` entry of a check that had nothing to score: never degraded."""
    return {
        "metric": metric,
        "value": None,
        "champion_holdout": _finite(champion_holdout),
        "minimum": _finite(minimum),
        "margin": margin,
        "degraded": False,
        "reason": reason,
        "days": [],
        "rows": 0,
        "metrics": {},
    }


def performance_text(performance: dict[str, Any]) -> str:
    """One line for a report header: value, rows and days, the baselines and the verdict."""
    if performance.get("value") is None:
        return performance.get("reason") or "not measured"
    days = performance["days"]
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    verdict = "DEGRADED" if performance["degraded"] else "ok"
    return (
        f"{performance['metric']} {performance['value']:.4g} on {performance['rows']:,} rows ({span}); "
        f"champion holdout {performance['champion_holdout']}, minimum {performance['minimum']}, "
        f"margin {performance['margin']}: {verdict} ({performance['reason']})"
    )
