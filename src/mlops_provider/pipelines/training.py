"""The training DAG of one model: ``mlops_train__<model>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import DAG, Param, XComArg

from mlops_provider.assets import validated_data_asset
from mlops_provider.core.pipeline_config import ON_NEW_DATA
from mlops_provider.core.registry_names import CHALLENGER, CHAMPION
from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
from mlops_provider.operators.registry import REGISTRY_POOL, MLflowRegisterModelOperator
from mlops_provider.operators.training import (
    PLAN_KEY,
    MLflowPrepareTrainingOperator,
    SklearnTrainCandidateOperator,
    end_training_run_on_failure,
)
from mlops_provider.pipelines._dag import dag_arguments, date_param
from mlops_provider.pipelines.ids import drift_dag_id, train_dag_id

if TYPE_CHECKING:
    from mlops_provider.core.models import ModelConfig

DOC = """
### `{dag_id}`: train, evaluate and register `{model}` (champion / challenger)

{description}

1. **prepare**: fixes the run's inputs: the validated partitions of `{dataset}` in the window (with
   their sha256), the split and the parameter candidates; opens one MLflow parent run. The split is
   by time (the most recent `holdout_days` are the holdout, the day before them selects among
   candidates), or, when the run carries a drift `window`, post-change: each day of that window is
   split by row (seeded, stratified by class) 50 % fit / 20 % selection / 30 % holdout, and every
   earlier day is fitted on, so the model learns the new data and is judged on it.
2. **train** (mapped, one task per candidate): fits the `Pipeline` (preprocessing + estimator) as a
   nested MLflow run with its model, lineage (partitions, Airflow run) and a reference profile.
3. **evaluate**: the best candidate becomes the challenger; challenger and current champion are
   scored on the **same** holdout rows; metrics, plots and the gate's verdict are logged.
4. **register**: registers the challenger (alias `{challenger}`, model card as description) and moves
   `{champion}` to it only if the gate passed and the champion did not change meanwhile. It runs in
   the pool `{pool}` (one slot, shared with rollbacks), gives the parent run the
   challenger's metrics and links, and ends it FINISHED. A task that fails for good ends it FAILED.

Schedule: {schedule}. Trigger it from the UI (Params form) or through the REST API with `conf`;
`{drift_dag}` triggers it on drift. A conf key that is not a Param is refused before any work.

Configured in `{config}`.
"""


def _schedule_text(schedule: str | None) -> str:
    if schedule is None:
        return "none (triggered only)"
    if schedule == ON_NEW_DATA:
        return "each time a validated partition of the dataset is published"
    return f"`{schedule}`"


def training_params() -> dict[str, Param]:
    """The Params of a training run (the keys a run's conf may set)."""
    return {
        "end_date": date_param(
            "Window end", "Last day of the training window (YYYY-MM-DD). Empty: the run's date."
        ),
        "window_days": Param(
            None,
            type=["null", "integer"],
            minimum=2,
            maximum=3660,
            title="Window (days)",
            description="Days of validated partitions to use. Empty: the model's setting.",
        ),
        "grid": Param(
            None,
            type=["null", "object"],
            title="Parameter grid override",
            description='Replaces the configured grid, e.g. {"max_iter": [100, 200]}.',
            additionalProperties={"type": "array", "minItems": 1, "maxItems": 16},
            maxProperties=16,
        ),
        "force_promote": Param(
            False,
            type="boolean",
            title="Force promotion",
            description="Promote without beating the champion (minimums still apply).",
        ),
        "reason": Param(
            "manual",
            type="string",
            minLength=1,
            maxLength=500,
            title="Reason",
            description="Why this model is trained; recorded on the registered version.",
        ),
        "drifted_features": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "maxLength": 200},
            maxItems=1000,
            title="Drifted features (set by the drift check)",
        ),
        "report_uri": Param(
            None,
            type=["null", "string"],
            maxLength=2000,
            pattern=r"^(file|s3)://\S+$",
            title="Drift report (set by the drift check)",
        ),
        "window": Param(
            None,
            type=["null", "object"],
            title="Drift window (set by the drift check)",
            properties={
                "start": {"type": "string", "format": "date"},
                "end": {"type": "string", "format": "date"},
            },
            additionalProperties=False,
        ),
    }


def build_training_dag(model: ModelConfig) -> DAG:
    """The training DAG of ``model`` (see :data:`DOC`)."""
    dag_id = train_dag_id(model.name)
    config = str(model.config_path)
    schedule = validated_data_asset(model.dataset) if model.training.schedule == ON_NEW_DATA else None
    with DAG(
        dag_id=dag_id,
        description=f"Train, gate against the champion, register and promote {model.name}",
        render_template_as_native_obj=True,
        params=training_params(),
        doc_md=DOC.format(
            dag_id=dag_id,
            model=model.name,
            description=model.description,
            dataset=model.dataset,
            schedule=_schedule_text(model.training.schedule),
            drift_dag=drift_dag_id(model.name),
            config=config,
            challenger=CHALLENGER,
            champion=CHAMPION,
            pool=REGISTRY_POOL,
        ),
        # A task that fails for good ends the DAG run's MLflow parent run FAILED.
        **dag_arguments(
            model.training,
            tags=("training", model.name),
            schedule=schedule,
            on_failure_callback=end_training_run_on_failure,
        ),
    ) as dag:
        prepare = MLflowPrepareTrainingOperator(
            task_id="prepare",
            model_config=config,
            window_end="{{ params.end_date or '' }}",
            window_days="{{ params.window_days or '' }}",
            grid_override="{{ params.grid }}",
            change_window="{{ params.window }}",
            doc_md="Fix the window's partitions, the split and the candidates; open the MLflow parent run.",
        )
        plan = XComArg(prepare, key=PLAN_KEY)
        train = SklearnTrainCandidateOperator.partial(
            task_id="train",
            model_config=config,
            plan=plan,
            doc_md="Fit one candidate as a nested MLflow run (model, lineage, reference profile).",
        ).expand(candidate=prepare.output)
        evaluate = MLflowEvaluateChallengerOperator(
            task_id="evaluate",
            model_config=config,
            plan=plan,
            candidates=train.output,
            force_promote="{{ params.force_promote }}",
            doc_md="Best candidate vs champion on the same holdout; plots, metrics, gate verdict.",
        )
        MLflowRegisterModelOperator(
            task_id="register",
            model_config=config,
            plan=plan,
            evaluation=evaluate.output,
            reason="{{ params.reason }}",
            retries=max(model.training.retries, 3),
            pool=REGISTRY_POOL,
            doc_md=f"Register the challenger; move `{CHAMPION}` to it if the gate passed (compare-and-set).",
        )
    return dag
