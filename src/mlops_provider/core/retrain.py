"""Whether a drift check should trigger retraining, and the deterministic id of that training run.

Pure functions: the drift operator supplies the check's summary and whether a drift-triggered
training already ran within the cooldown (Airflow is asked by run id, see :func:`retrain_run_id`).
The rules are the summary's :class:`~mlops_provider.core.drift.DriftPolicy` (``policy``): the
weighted share of drifted features, prediction drift, realised performance (:func:`retrain_rules`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from mlops_provider.core import registry_names

RULES = ("feature_share", "prediction", "performance")


@dataclass(frozen=True)
class RetrainDecision:
    """Retrain or not, a sentence saying why (logged, XCom, UI) and the names of the rules that fired."""

    retrain: bool
    reason: str
    rules: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rules": list(self.rules)}


def retrain_run_id(model: str, day: date) -> str:
    """The run id of the training a drift check of ``day`` triggers: the same for every re-run
    (:func:`~mlops_provider.core.registry_names.retrain_run_id`)."""
    return registry_names.retrain_run_id(model, day.isoformat())


def cooldown_run_ids(model: str, day: date, cooldown_days: int) -> list[str]:
    """The retrain run ids a check of ``day`` looks for: ``day`` and the ``cooldown_days - 1`` before it."""
    return [retrain_run_id(model, day - timedelta(days=back)) for back in range(max(cooldown_days, 1))]


def retrain_rules(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each rule of the summary's policy: ``{"rule", "enabled", "fired", "detail"}``, in :data:`RULES` order.

    * ``feature_share``: the (importance- or uniformly) weighted share of drifted features reached
      ``drift_share`` (``summary["drifted"]``); always enabled.
    * ``prediction``: the prediction drifted, large and significant (``summary["prediction"]``).
    * ``performance``: ``summary["performance"]["degraded"]`` (realised performance on labelled days).

    :raises ValueError: the summary's ``policy`` is invalid.
    """
    from mlops_provider.core.drift import DriftPolicy  # numpy: paid when a decision is made, not on import

    policy = DriftPolicy.from_overrides(summary.get("policy"))
    drifted = summary.get("drifted_features") or []
    prediction = summary.get("prediction") or {}
    performance = summary.get("performance") or {}
    return [
        {
            "rule": "feature_share",
            "enabled": True,
            "fired": bool(summary.get("drifted")),
            "detail": (
                f"{len(drifted)} of {summary.get('features')} features drifted, "
                f"{summary.get('weighting', 'uniform')}-weighted share {summary.get('share')} "
                f"(threshold {summary.get('drift_share')})"
                + (f": {', '.join(drifted[:10])}" if drifted else "")
            ),
        },
        {
            "rule": "prediction",
            "enabled": policy.prediction_drift,
            "fired": policy.prediction_drift and bool(prediction.get("drifted")),
            "detail": (
                f"prediction {prediction.get('metric')} {prediction.get('score')}, "
                f"{'drifted (large and significant)' if prediction.get('drifted') else 'stable'}"
                if prediction
                else "no prediction drift measured"
            ),
        },
        {
            "rule": "performance",
            "enabled": policy.performance,
            "fired": policy.performance and bool(performance.get("degraded")),
            "detail": (
                f"realised {performance.get('metric')} {performance.get('value')} (champion holdout "
                f"{performance.get('champion_holdout')}, minimum {performance.get('minimum')}): "
                f"{'degraded' if performance.get('degraded') else 'holding'}"
                if performance
                else "no realised performance measured"
            ),
        },
    ]


def describe_rules(summary: dict[str, Any]) -> str:
    """The rules of :func:`retrain_rules` as one line for the report: which fired, which are off."""
    states = {(True, True): "FIRED", (True, False): "not fired", (False, False): "off"}
    return "; ".join(
        f"{r['rule']} {states[r['enabled'], r['fired']]} ({r['detail']})" for r in retrain_rules(summary)
    )


def decide_retrain(
    summary: dict[str, Any],
    *,
    force: bool = False,
    dry_run: bool = False,
    in_cooldown: bool = False,
    cooldown_days: int = 0,
) -> RetrainDecision:
    """Decide from a drift check's summary (:meth:`DriftReport.summary` plus ``status``, ``performance``).

    Retrains when an enabled rule of the summary's policy fires (:func:`retrain_rules`). ``force``
    retrains without one but still respects the cooldown; ``dry_run`` never retrains and says what
    would have happened.
    """
    status = summary.get("status", "checked")
    if status != "checked":
        return RetrainDecision(False, summary.get("message") or f"No drift check ran ({status}).")
    rules = retrain_rules(summary)
    fired = [r for r in rules if r["fired"]]
    names = tuple(r["rule"] for r in fired)
    titles = {
        "feature_share": "Dataset drift",
        "prediction": "Prediction drift",
        "performance": "Performance",
    }
    if fired:
        why = "; ".join(f"{titles[r['rule']]}: {r['detail']}" for r in fired)
    elif force:
        why = "Retraining forced (force_retrain) without a rule firing"
    else:
        checked = "; ".join(r["detail"] for r in rules if r["enabled"])
        return RetrainDecision(False, f"No dataset drift, no rule fired ({checked}); nothing to do.")
    if in_cooldown:
        return RetrainDecision(
            False,
            f"{why}; but a drift-triggered training ran within the last {cooldown_days} days (cooldown).",
            names,
        )
    if dry_run:
        return RetrainDecision(False, f"{why}; dry run: training not triggered.", names)
    return RetrainDecision(True, why, names)
