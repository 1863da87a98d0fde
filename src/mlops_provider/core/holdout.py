"""A challenger and the champion scored on one holdout: their metrics, the breakdown, the gate. Pure.

:class:`HoldoutScores` gathers what the evaluate task computes from the two models' outputs (see
:mod:`mlops_provider.core.evaluation` for what an output is per task) so the operator only loads the
models and the rows, and writes the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlops_provider.core.promotion import GateDecision, GatePolicy


@dataclass(frozen=True)
class HoldoutScores:
    """The holdout's target, both outputs, both metric sets (champion's None without a champion)
    and the task's breakdown of the challenger (confusion, per class or residuals)."""

    task: str
    y: Any
    challenger_output: Any
    champion_output: Any
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    details: dict[str, Any]
    classes: Sequence[Any] = ()

    @classmethod
    def of(
        cls, task: str, y: Any, challenger_output: Any, champion_output: Any, classes: Sequence[Any] = ()
    ) -> HoldoutScores:
        """Score ``challenger_output`` and ``champion_output`` (None: no champion) against ``y``."""
        from mlops_provider.core.evaluation import compute_metrics, evaluation_details

        return cls(
            task=task,
            y=y,
            challenger_output=challenger_output,
            champion_output=champion_output,
            challenger_metrics=compute_metrics(task, y, challenger_output),
            champion_metrics=None if champion_output is None else compute_metrics(task, y, champion_output),
            details=evaluation_details(task, y, challenger_output, classes=classes),
            classes=classes,
        )

    def decide(self, policy: GatePolicy, champion_version: str | None, force: bool) -> GateDecision:
        """The gate's decision on these scores (:func:`~mlops_provider.core.promotion.decide_promotion`)."""
        from mlops_provider.core.promotion import decide_promotion

        return decide_promotion(
            self.challenger_metrics,
            self.champion_metrics,
            champion_version=champion_version,
            policy=policy,
            force=force,
        )

    def plots(self) -> dict[str, bytes]:
        """The task's plots of the challenger, the champion drawn as reference (PNG bytes by file name)."""
        from mlops_provider.core.evaluation_plots import evaluation_plots

        return evaluation_plots(
            self.task, self.y, self.challenger_output, reference=self.champion_output, classes=self.classes
        )
