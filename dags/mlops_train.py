"""
### `mlops_train`: train, evaluate and register a model (champion / challenger)

1. **prepare**: fixes the run's inputs: the validated partitions of the window (with their sha256),
   a time-based split (the most recent `holdout_days` are the holdout, the day before them selects
   among candidates) and the parameter candidates; opens one MLflow parent run.
2. **train** (mapped, one task per candidate): fits the `Pipeline` (preprocessing + estimator) as a
   nested MLflow run with its model, lineage (partitions, Airflow run) and a reference profile.
3. **evaluate**: the best candidate becomes the challenger; challenger and current champion are
   scored on the **same** holdout; metrics, plots and the gate's verdict are logged.
4. **register**: registers the challenger (alias `challenger`, model card as description) and moves
   `champion` to it only if the gate passed and the champion did not change meanwhile.

Not time-scheduled: trigger it from the UI (Params form), through the REST API with `conf`, or let
`mlops_drift` trigger it. With `[mlops] train_on_validated_data = True` it also runs whenever
`mlops_ingest` publishes a validated partition of the dataset.

Params: `model` (`include/models/<model>.yaml`), `end_date` (last day of the window; empty: the
logical date, else the run's `run_after`), `window_days`, `grid` (a parameter grid that replaces
the configured one), `force_promote` (skip the champion comparison; minimums still apply),
`reason`. Invalid conf is refused by the REST API (HTTP 400) before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, XComArg, conf

from mlops_provider.assets import validated_data_asset
from mlops_provider.dag_defaults import config_name_param, default_args
from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
from mlops_provider.operators.registry import MLflowRegisterModelOperator
from mlops_provider.operators.training import (
    PLAN_KEY,
    MLflowPrepareTrainingOperator,
    SklearnTrainCandidateOperator,
)

MODELS_DIR = Path(__file__).resolve().parent.parent / "include" / "models"
MODEL_CONFIG = f"{MODELS_DIR}/{{{{ params.model }}}}.yaml"
# The dataset of the default model: its validated-data asset can schedule this DAG.
DEFAULT_DATASET = "churn"

with DAG(
    dag_id="mlops_train",
    description="Train candidates, gate the best against the champion, register and promote",
    schedule=validated_data_asset(DEFAULT_DATASET)
    if conf.getboolean("mlops", "train_on_validated_data", fallback=False)
    else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args=default_args(retries=2),
    params={
        "model": config_name_param("model", MODELS_DIR),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Window end",
            description="Last day of the training window (YYYY-MM-DD). Empty: the run's date.",
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
            title="Drifted features (set by mlops_drift)",
        ),
        "report_uri": Param(
            None,
            type=["null", "string"],
            maxLength=2000,
            pattern=r"^(file|s3)://\S+$",
            title="Drift report (set by mlops_drift)",
        ),
        "window": Param(
            None,
            type=["null", "object"],
            title="Drift window (set by mlops_drift)",
            properties={
                "start": {"type": "string", "format": "date"},
                "end": {"type": "string", "format": "date"},
            },
            additionalProperties=False,
        ),
    },
    tags=["mlops", "training", "mlflow"],
    doc_md=__doc__,
) as dag:
    common = {"model_config": MODEL_CONFIG}
    prepare = MLflowPrepareTrainingOperator(
        task_id="prepare",
        window_end="{{ params.end_date or '' }}",
        window_days="{{ params.window_days or '' }}",
        grid_override="{{ params.grid }}",
        doc_md="Fix the window's partitions, the split and the candidates; open the MLflow parent run.",
        **common,
    )
    plan = XComArg(prepare, key=PLAN_KEY)
    train = SklearnTrainCandidateOperator.partial(
        task_id="train",
        plan=plan,
        doc_md="Fit one candidate as a nested MLflow run (model, lineage, reference profile).",
        **common,
    ).expand(candidate=prepare.output)
    evaluate = MLflowEvaluateChallengerOperator(
        task_id="evaluate",
        plan=plan,
        candidates=train.output,
        force_promote="{{ params.force_promote }}",
        doc_md="Best candidate vs champion on the same holdout; plots, metrics, gate verdict.",
        **common,
    )
    MLflowRegisterModelOperator(
        task_id="register",
        plan=plan,
        evaluation=evaluate.output,
        reason="{{ params.reason }}",
        retries=3,
        doc_md="Register the challenger; move `champion` to it if the gate passed (compare-and-set).",
        **common,
    )
