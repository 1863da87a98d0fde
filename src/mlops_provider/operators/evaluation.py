"""MLflowEvaluateChallengerOperator: pick the best candidate, score it and the champion on one holdout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.core.registry_names import (
    CHAMPION_HOLDOUT_METRIC_PREFIX,
    EVALUATION_ARTIFACT_PATH,
    GATE_PROMOTE,
    GATE_REJECT,
    HOLDOUT_METRIC_PREFIX,
)
from mlops_provider.core.registry_records import evaluation_tags
from mlops_provider.links.mlflow import RUN_URL_KEY, MLflowRunLink
from mlops_provider.operators._model import (
    ModelOperator,
    as_bool,
    load_model_config,
    read_recorded_partitions,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context
    from mlflow.entities.model_registry import ModelVersion

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.holdout import HoldoutScores
    from mlops_provider.core.models import ModelConfig
    from mlops_provider.core.promotion import GateDecision
    from mlops_provider.hooks.mlflow import MLflowHook

# Up to this many classes the per-class breakdown is part of the returned summary (XCom).
XCOM_CLASSES = 20


class MLflowEvaluateChallengerOperator(ModelOperator):
    """Choose the challenger and gate it against the current champion on the same holdout days.

    The candidate with the best selection metric becomes the challenger. The champion is read from
    the registry when evaluation begins (its version is what promotion later compares and sets).
    Both are scored on the plan's holdout rows (whole days, or the held-out part of each post-change
    day of a drift-triggered run: see ``read_recorded_partitions``) with the task's metrics; the
    challenger's run gets ``holdout_<metric>`` metrics, the task's plots (PNG, see
    :func:`~mlops_provider.core.evaluation_plots.evaluation_plots`: ROC / calibration / confusion for
    binary, confusion / per class for multiclass, predicted vs actual / residuals for regression)
    and ``evaluation.json``; the parent run is tagged with the challenger and the gate's verdict.

    :param plan: the plan of the prepare task (its XCom ``plan``).
    :param candidates: the return values of the mapped train tasks.
    :param force_promote: skip the comparison with the champion (minimums still apply). (templated)
    :return: challenger, champion, both metric sets, the task's breakdown (confusion, per class or
        residuals; only in ``evaluation.json`` beyond :data:`XCOM_CLASSES` classes) and the gate
        decision (JSON-safe).
    """

    template_fields: Sequence[str] = ("model_config", "plan", "candidates", "force_promote")
    operator_extra_links = (MLflowRunLink(),)
    ui_color = "#eef8e8"

    def __init__(
        self, *, plan: Any, candidates: Any, force_promote: bool | str = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.candidates = candidates
        self.force_promote = force_promote

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.evaluation import best_candidate

        model, dataset = load_model_config(self.model_config)
        best = best_candidate(list(self.candidates), model.selection_metric)
        run_id = best["run_id"]
        hook = self.mlflow_hook()
        champion = hook.registry.champion(model.name)
        scores = self._score_holdout(hook, model, dataset, run_id, champion)
        decision = scores.decide(
            model.gate, champion.version if champion else None, as_bool(self.force_promote)
        )
        hook.log_metrics(run_id, scores.challenger_metrics, prefix=HOLDOUT_METRIC_PREFIX)
        if scores.champion_metrics:
            hook.log_metrics(run_id, scores.champion_metrics, prefix=CHAMPION_HOLDOUT_METRIC_PREFIX)
        summary = self._summary(model.name, best, champion, scores, decision)
        self._upload_evaluation(hook, run_id, scores, summary)
        # The parent run records the gate's verdict; the challenger's own run gets the final one
        # (after the compare-and-set) from the register task.
        verdict = GATE_PROMOTE if decision.promote else GATE_REJECT
        hook.set_run_tags(self.plan["parent_run_id"], evaluation_tags(verdict, decision.reason, run_id))

        context["ti"].xcom_push(key=RUN_URL_KEY, value=hook.run_url(self.plan["experiment_id"], run_id))
        self.log.info(
            "Challenger run %s on %d holdout rows: %s", run_id, len(scores.y), scores.challenger_metrics
        )
        self.log.info("Gate (%s): %s", verdict, decision.reason)
        if len(dataset.target_classes) > XCOM_CLASSES:  # a k x k matrix is no XCom value
            return {key: value for key, value in summary.items() if key not in scores.details}
        return summary

    def _score_holdout(
        self,
        hook: MLflowHook,
        model: ModelConfig,
        dataset: DatasetConfig,
        run_id: str,
        champion: ModelVersion | None,
    ) -> HoldoutScores:
        """Score the challenger (run ``run_id``) and the champion (if any) on the plan's holdout rows."""
        from mlops_provider.core.holdout import HoldoutScores
        from mlops_provider.core.training import features_and_target, model_output

        holdout = read_recorded_partitions(self.storage_hook(), dataset.name, self.plan["holdout"])
        X, y = features_and_target(holdout, dataset, model.task)
        challenger_output = model_output(hook.load_run_sklearn_model(run_id), X, model.task)
        champion_output = None
        if champion is not None:
            champion_model = hook.load_sklearn_model(model.name, version=champion.version)
            champion_output = model_output(champion_model, X, model.task)
        return HoldoutScores.of(model.task, y, challenger_output, champion_output, dataset.target_classes)

    def _summary(
        self,
        name: str,
        best: dict[str, Any],
        champion: ModelVersion | None,
        scores: HoldoutScores,
        decision: GateDecision,
    ) -> dict[str, Any]:
        """The evaluation's JSON-safe summary (``evaluation.json``, the return value)."""
        plan = self.plan
        return {
            "model": name,
            "task": scores.task,
            "challenger": {**best, "metrics": scores.challenger_metrics},
            "champion": None
            if champion is None
            else {"version": champion.version, "run_id": champion.run_id, "metrics": scores.champion_metrics},
            "holdout": [part["ds"] for part in plan["holdout"]],
            "split_rule": plan.get("split", {}).get("rule", "time"),
            "holdout_rows": len(scores.y),
            **scores.details,
            "decision": decision.to_dict(),
        }

    @staticmethod
    def _upload_evaluation(
        hook: MLflowHook, run_id: str, scores: HoldoutScores, summary: dict[str, Any]
    ) -> None:
        """Upload the task's plots and ``evaluation.json`` to the challenger's run (``evaluation/``)."""
        import json

        plots = scores.plots()
        plots["evaluation.json"] = json.dumps(summary, indent=2, default=str).encode()
        for name, payload in plots.items():
            hook.upload_artifact_bytes(run_id, f"{EVALUATION_ARTIFACT_PATH}/{name}", payload)
