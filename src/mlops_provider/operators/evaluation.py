"""MLflowEvaluateChallengerOperator: pick the best candidate, score it and the champion on one holdout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

# Up to this many classes the per-class breakdown is part of the returned summary (XCom).
XCOM_CLASSES = 20


class MLflowEvaluateChallengerOperator(ModelOperator):
    """Choose the challenger and gate it against the current champion on the same holdout days.

    The candidate with the best selection metric becomes the challenger. The champion is read from
    the registry when evaluation begins (its version is what promotion later compares and sets).
    Both are scored on the plan's holdout rows (whole days, or the held-out part of each post-change
    day of a drift-triggered run: see ``read_recorded_partitions``) with the task's metrics; the
    challenger's run gets ``holdout_<metric>`` metrics, the task's plots (PNG, see
    :func:`~mlops_provider.core.evaluation.evaluation_plots`: ROC / calibration / confusion for
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
        import json

        from mlops_provider.core.evaluation import (
            best_candidate,
            compute_metrics,
            evaluation_details,
            evaluation_plots,
        )
        from mlops_provider.core.promotion import decide_promotion
        from mlops_provider.core.training import features_and_target, model_output

        model, dataset = load_model_config(self.model_config)
        plan = self.plan
        candidates = list(self.candidates)
        best = best_candidate(candidates, model.selection_metric)
        hook = self.mlflow_hook()

        champion = hook.get_version_by_alias(model.name, "champion")
        task, classes = model.task, dataset.target_classes
        X, y = features_and_target(
            read_recorded_partitions(self.storage_hook(), dataset.name, plan["holdout"]), dataset, task
        )
        challenger_output = model_output(hook.load_run_sklearn_model(best["run_id"]), X, task)
        challenger_metrics = compute_metrics(task, y, challenger_output)
        details = evaluation_details(task, y, challenger_output, classes=classes)
        champion_metrics = champion_output = None
        if champion is not None:
            champion_model = hook.load_sklearn_model(model.name, version=champion.version)
            champion_output = model_output(champion_model, X, task)
            champion_metrics = compute_metrics(task, y, champion_output)
        force = as_bool(self.force_promote)
        decision = decide_promotion(
            challenger_metrics,
            champion_metrics,
            champion_version=champion.version if champion else None,
            policy=model.gate,
            force=force,
        )

        run_id = best["run_id"]
        hook.log_metrics(run_id, challenger_metrics, prefix="holdout_")
        if champion_metrics:
            hook.log_metrics(run_id, champion_metrics, prefix="champion_holdout_")
        summary = {
            "model": model.name,
            "task": task,
            "challenger": {**best, "metrics": challenger_metrics},
            "champion": {"version": champion.version, "run_id": champion.run_id, "metrics": champion_metrics}
            if champion
            else None,
            "holdout": [part["ds"] for part in plan["holdout"]],
            "split_rule": plan.get("split", {}).get("rule", "time"),
            "holdout_rows": len(y),
            **details,
            "decision": decision.to_dict(),
        }
        plots = evaluation_plots(task, y, challenger_output, reference=champion_output, classes=classes)
        plots["evaluation.json"] = json.dumps(summary, indent=2, default=str).encode()
        for name, payload in plots.items():
            hook.upload_artifact_bytes(run_id, f"evaluation/{name}", payload)
        # The parent run records the gate's verdict; the challenger's own run gets the final one
        # (after the compare-and-set) from the register task.
        verdict = "promote" if decision.promote else "reject"
        parent = plan["parent_run_id"]
        hook.client.set_tag(parent, "mlops.gate.decision", verdict)
        hook.client.set_tag(parent, "mlops.gate.reason", decision.reason[:5000])
        hook.client.set_tag(parent, "mlops.challenger_run_id", run_id)

        context["ti"].xcom_push(key=RUN_URL_KEY, value=hook.run_url(plan["experiment_id"], run_id))
        self.log.info("Challenger run %s on %d holdout rows: %s", run_id, len(y), challenger_metrics)
        self.log.info("Gate (%s): %s", verdict, decision.reason)
        if len(classes) > XCOM_CLASSES:  # a k x k matrix is no XCom value; evaluation.json has it
            return {key: value for key, value in summary.items() if key not in details}
        return summary
