"""The quality gate: does a challenger become champion? Pure decisions over metric dicts.

Rules (``decide_promotion``), in order:

1. The challenger must pass every absolute minimum of the policy. For a metric where lower is
   better (log loss, rmse, mae) the configured value is a ceiling ("at most"), otherwise a floor
   ("at least"). Which metrics a model may name depends on its task (``core.models`` checks that).
   A missing or NaN value fails its minimum.
2. Without a champion, a challenger that passes the minimums is promoted.
3. Otherwise it must beat the champion on the policy's metric, measured on the same holdout, by at
   least ``margin`` and by more than nothing: a tie never replaces a champion.

Force-promote skips rule 3 only. The minimums stay: they are the floor below which no model may
serve (a model that learned nothing, a broken feature), and a forced run is exactly the situation
(manual retrain, champion judged on stale data) where nobody is looking at the numbers. Lowering a
minimum is a reviewed change to the model configuration, not a run-time switch.

Promotion is compare-and-set (``champion_unchanged`` / ``confirm_promotion``): the champion version
read when evaluation began must still be the champion when the alias is moved, else nothing is
overwritten. Force does not bypass that check.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.evaluation import METRICS, improvement, is_finite_number, validate_metric

# Float slack when comparing an improvement with the margin (0.8123 - 0.8103 is not exactly 0.002).
_EPSILON = 1e-12


@dataclass(frozen=True)
class GatePolicy:
    """What a challenger must achieve.

    :param metric: the metric compared with the champion (one of ``METRICS``).
    :param minimums: metric -> bound the challenger must meet: at least the value, or at most the
        value for metrics where lower is better (``log_loss``, ``rmse``, ``mae``, ``median_ae``).
    :param margin: how much better than the champion the challenger must be on ``metric``
        (absolute, in the metric's units, >= 0).
    """

    metric: str
    minimums: dict[str, float] = field(default_factory=dict)
    margin: float = 0.0

    def __post_init__(self) -> None:
        validate_metric(self.metric)
        for name, bound in self.minimums.items():
            validate_metric(name)
            if not is_finite_number(bound):
                raise ValueError(f"The minimum for {name!r} must be a finite number, not {bound!r}.")
        if not is_finite_number(self.margin) or self.margin < 0:
            raise ValueError(f"The margin must be a finite number >= 0, not {self.margin!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "minimums": dict(self.minimums), "margin": self.margin}


@dataclass(frozen=True)
class GateDecision:
    """The outcome of the gate: whether to promote and a sentence saying why.

    ``improvement`` is the challenger's advantage on ``metric`` (positive = better, whatever the
    metric's direction), None without a comparable champion.
    """

    promote: bool
    reason: str
    challenger_metrics: dict[str, float]
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None
    metric: str | None = None
    margin: float | None = None
    improvement: float | None = None
    forced: bool = False
    failed_minimums: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN becomes None) for XCom, MLflow tags and the model card."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateDecision:
        """The decision back from :meth:`to_dict` (e.g. read from XCom by the promoting task)."""
        return cls(**{**data, "failed_minimums": tuple(data.get("failed_minimums") or ())})


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(value: Any) -> str:
    return f"{value:.4f}" if is_finite_number(value) else "missing"


def _check_minimums(metrics: dict[str, float], minimums: dict[str, float]) -> list[tuple[str, str]]:
    """(metric, sentence) for every minimum the metrics fail."""
    failed = []
    for name, bound in minimums.items():
        value = metrics.get(name)
        greater = METRICS[name].greater_is_better
        if not is_finite_number(value):
            relation = ">=" if greater else "<="
            failed.append((name, f"{name} is missing or not a number (needs {relation} {_num(bound)})"))
            continue
        if greater and value < bound - _EPSILON:
            failed.append((name, f"{name} {_num(value)} is below the minimum {_num(bound)}"))
        elif not greater and value > bound + _EPSILON:
            failed.append((name, f"{name} {_num(value)} is above the maximum {_num(bound)}"))
    return failed


def _minimums_text(metrics: dict[str, float], minimums: dict[str, float]) -> str:
    if not minimums:
        return "no minimums are configured"
    parts = [
        f"{name} {_num(metrics.get(name))} {'>=' if METRICS[name].greater_is_better else '<='} {_num(bound)}"
        for name, bound in minimums.items()
    ]
    return "the challenger passes all minimums (" + ", ".join(parts) + ")"


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    *,
    champion_version: str | None,
    policy: GatePolicy,
    force: bool = False,
) -> GateDecision:
    """Decide whether the challenger (metrics on the holdout) replaces the champion (same holdout).

    ``champion`` is None when there is no champion (``champion_version`` None too). See the module
    docstring for the rules and what ``force`` skips.
    """
    version = None if champion_version is None else str(champion_version)
    if champion is None and version is not None:
        raise ValueError(f"Champion version {version} was given without its metrics on the holdout.")
    metric, margin = policy.metric, float(policy.margin)
    decision = functools.partial(
        GateDecision,
        challenger_metrics=dict(challenger),
        champion_version=version,
        champion_metrics=None if champion is None else dict(champion),
        metric=metric,
        margin=margin,
        forced=force,
    )
    failed = _check_minimums(challenger, policy.minimums)
    if failed:
        return decision(
            promote=False,
            reason="The challenger fails the minimums: " + "; ".join(text for _, text in failed) + ".",
            failed_minimums=tuple(name for name, _ in failed),
        )
    passes = _minimums_text(challenger, policy.minimums)
    if champion is None:
        return decision(promote=True, reason=f"No champion exists and {passes}.")

    new, old = challenger.get(metric), champion.get(metric)
    gain = improvement(metric, new, old) if is_finite_number(new) and is_finite_number(old) else None
    versus = f"{metric} {_num(new)} vs {_num(old)} for champion version {version}"
    if force:
        return decision(
            promote=True,
            reason=f"Force-promote: the margin comparison is skipped ({versus}) and {passes}.",
            improvement=gain,
        )
    if gain is None:
        who = "challenger" if not is_finite_number(new) else f"champion version {version}"
        return decision(
            promote=False,
            reason=f"Cannot compare on {metric}: the {who} has no finite value ({versus}); "
            "the champion stays (force-promote skips this comparison).",
        )
    if gain > _EPSILON and gain >= margin - _EPSILON:
        return decision(
            promote=True,
            reason=f"The challenger beats champion version {version} on {metric} by {gain:.4f} "
            f"({_num(new)} vs {_num(old)}; margin {margin:g}) and {passes}.",
            improvement=gain,
        )
    if abs(gain) <= _EPSILON:
        outcome = f"ties with champion version {version} on {metric}"
    elif gain < 0:
        outcome = f"is worse than champion version {version} on {metric}"
    else:
        outcome = f"beats champion version {version} on {metric} by less than the margin"
    return decision(
        promote=False,
        reason=f"The challenger {outcome}: {_num(new)} vs {_num(old)} "
        f"(improvement {gain:+.4f}, margin {margin:g}); the champion stays.",
        improvement=gain,
    )


def champion_unchanged(expected_version: str | None, current_version: str | None) -> bool:
    """The compare-and-set check: is the champion still the version read when evaluation began?

    Versions are compared as strings (MLflow returns them as strings, callers may hold ints); None
    means "no champion" and only equals None.
    """

    def norm(version: str | None) -> str | None:
        return None if version is None else str(version)

    return norm(expected_version) == norm(current_version)


def confirm_promotion(decision: GateDecision, current_version: str | None) -> GateDecision:
    """Re-check a promoting decision against the champion as it is now (just before moving aliases).

    Returns ``decision`` unchanged if it does not promote or the champion is unchanged; otherwise a
    rejection whose reason names both versions. Force does not bypass this: a newer champion was
    gated against other data and must not be overwritten silently.
    """
    if not decision.promote or champion_unchanged(decision.champion_version, current_version):
        return decision

    def name(version: str | None) -> str:
        return "no champion" if version is None else f"version {version}"

    return GateDecision(
        promote=False,
        reason=f"The champion changed from {name(decision.champion_version)} to {name(current_version)} "
        "since evaluation began; it is not overwritten (re-run training to gate against it).",
        challenger_metrics=decision.challenger_metrics,
        champion_version=decision.champion_version,
        champion_metrics=decision.champion_metrics,
        metric=decision.metric,
        margin=decision.margin,
        improvement=decision.improvement,
        forced=decision.forced,
    )
