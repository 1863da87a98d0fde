"""
### `mlops_drift`: daily drift check of the champion, retraining when the data has really moved

1. **check**: compares the last `window_days` days of validated partitions with the reference
   profile stored with the **current champion** (found through the registry, so the comparison
   follows promotions): per feature KS / normalised Wasserstein / PSI (numeric) and chi-square /
   PSI / Jensen-Shannon (categorical), effect-size thresholds, plus drift of the champion's scores.
   The report is stored as JSON and HTML (button *Drift report*) and the per-feature scores are
   logged to the champion's monitoring run in MLflow (experiment `mlops/<model>/monitoring`).
2. **decide**: retrain on dataset drift (share of drifted features), or when `force_retrain` is set,
   unless `dry_run` is set or a drift-triggered training ran within `cooldown_days`.
3. **trigger_retrain**: triggers `mlops_train` with the run id `drift__<model>__<ds>` (a re-run of
   the same day never trains twice) and `conf = {reason, drifted_features, report_uri, window}`.

With no champion yet, or no validated data in the window, the check says so and the run ends.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.dag_defaults import config_name_param, default_args
from mlops_provider.operators.drift import DriftRetrainBranchOperator, MLflowDriftCheckOperator

MODELS_DIR = Path(__file__).resolve().parent.parent / "include" / "models"
CHECK = "ti.xcom_pull(task_ids='check')"

with DAG(
    dag_id="mlops_drift",
    description="Daily drift check of the champion's inputs and scores; triggers retraining on drift",
    schedule=CronDataIntervalTimetable("30 1 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args=default_args(retries=2),
    params={
        "model": config_name_param("model", MODELS_DIR),
        "check_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Check date",
            description="Last day of the window (YYYY-MM-DD). Empty: the run's date.",
        ),
        "window_days": Param(
            3,
            type="integer",
            minimum=1,
            maximum=90,
            title="Window (days)",
            description="Days of validated partitions compared with the reference.",
        ),
        "thresholds": Param(
            None,
            type=["null", "object"],
            title="Threshold overrides",
            description='e.g. {"psi": 0.25, "wasserstein": 0.15, "drift_share": 0.3}',
            additionalProperties={"type": "number"},
        ),
        "cooldown_days": Param(
            7,
            type="integer",
            minimum=0,
            maximum=365,
            title="Cooldown (days)",
            description="No drift-triggered training if one ran within this many days.",
        ),
        "force_retrain": Param(
            False,
            type="boolean",
            title="Force retraining",
            description="Trigger mlops_train even without drift (cooldown applies).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Check and decide, but never trigger training.",
        ),
    },
    tags=["mlops", "monitoring", "drift"],
    doc_md=__doc__,
) as dag:
    check = MLflowDriftCheckOperator(
        task_id="check",
        model_config=f"{MODELS_DIR}/{{{{ params.model }}}}.yaml",
        check_date="{{ params.check_date or '' }}",
        window_days="{{ params.window_days }}",
        thresholds="{{ params.thresholds }}",
        doc_md="Compare recent validated data and the champion's scores with its reference profile.",
    )
    decide = DriftRetrainBranchOperator(
        task_id="decide",
        drift=check.output,
        retrain_task_id="trigger_retrain",
        skip_task_id="no_retrain",
        force_retrain="{{ params.force_retrain }}",
        dry_run="{{ params.dry_run }}",
        cooldown_days="{{ params.cooldown_days }}",
    )
    trigger = TriggerDagRunOperator(
        task_id="trigger_retrain",
        trigger_dag_id="mlops_train",
        trigger_run_id=f"drift__{{{{ {CHECK}['model'] }}}}__{{{{ {CHECK}['ds'] }}}}",
        logical_date=None,
        conf={
            "model": "{{ params.model }}",
            "end_date": f"{{{{ {CHECK}['ds'] }}}}",
            "reason": "{{ ti.xcom_pull(task_ids='decide', key='retrain_decision')['reason'][:500] }}",
            "drifted_features": f"{{{{ {CHECK}['drifted_features'] }}}}",
            "report_uri": f"{{{{ {CHECK}['report_uri'] }}}}",
            "window": f"{{{{ {CHECK}['window'] }}}}",
        },
        skip_when_already_exists=True,
        wait_for_completion=False,
    )
    check >> decide >> [trigger, EmptyOperator(task_id="no_retrain")]
