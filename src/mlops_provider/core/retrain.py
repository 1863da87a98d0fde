"""Whether a drift check should trigger retraining, and the deterministic id of that training run.

Pure functions: the drift operator supplies the check's summary and whether a drift-triggered
training already ran within the cooldown (Airflow is asked by run id, see :func:`retrain_run_id`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class RetrainDecision:
    """Retrain or not, and a sentence saying why (logged, returned to XCom, shown in the UI)."""

    retrain: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain_run_id(model: str, day: date) -> str:
    """The run id of the training a drift check of ``day`` triggers: the same for every re-run."""
    return f"drift__{model}__{day.isoformat()}"


def cooldown_run_ids(model: str, day: date, cooldown_days: int) -> list[str]:
    """The retrain run ids a check of ``day`` looks for: ``day`` and the ``cooldown_days - 1`` before it."""
    return [retrain_run_id(model, day - timedelta(days=back)) for back in range(max(cooldown_days, 1))]


def decide_retrain(
    summary: dict[str, Any],
    *,
    force: bool = False,
    dry_run: bool = False,
    in_cooldown: bool = False,
    cooldown_days: int = 0,
) -> RetrainDecision:
    """Decide from a drift check's summary (:meth:`DriftReport.summary` plus ``status``).

    Only dataset drift (the share of drifted features) triggers training; prediction drift alone
    is reported, because a shift in scores with unchanged inputs is a label or concept question
    that retraining on the same inputs does not answer. ``force`` retrains without drift but still
    respects the cooldown; ``dry_run`` never retrains and says what would have happened.
    """
    status = summary.get("status", "checked")
    if status != "checked":
        return RetrainDecision(False, summary.get("message") or f"No drift check ran ({status}).")
    drifted = summary.get("drifted_features") or []
    if summary.get("drifted"):
        why = (
            f"Dataset drift: {len(drifted)} of {summary.get('features')} features drifted "
            f"(share {summary.get('share')} >= {summary.get('drift_share')}): {', '.join(drifted[:10])}"
        )
    elif force:
        why = "Retraining forced (force_retrain) without dataset drift"
    else:
        share = summary.get("share")
        return RetrainDecision(False, f"No dataset drift (share of drifted features {share}); nothing to do.")
    if in_cooldown:
        return RetrainDecision(
            False,
            f"{why}; but a drift-triggered training ran within the last {cooldown_days} days (cooldown).",
        )
    if dry_run:
        return RetrainDecision(False, f"{why}; dry run: training not triggered.")
    return RetrainDecision(True, why)
