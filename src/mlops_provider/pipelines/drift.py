"""The drift check DAG of one model: ``mlops_drift__<model>``, which triggers ``mlops_train__<model>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

from mlops_provider.core.registry_names import retrain_run_id
from mlops_provider.operators.drift import DriftRetrainBranchOperator, MLflowDriftCheckOperator
from mlops_provider.operators.retrain import RetrainTriggerOperator
from mlops_provider.pipelines._dag import dag_arguments, date_param
from mlops_provider.pipelines.ids import drift_dag_id, train_dag_id

if TYPE_CHECKING:
    from mlops_provider.core.models import ModelConfig

CHECK = "ti.xcom_pull(task_ids='check')"
#: ``core.drift.WEIGHTINGS``, spelled here so parsing a DAG does not import numpy (a test keeps them equal)
POLICY_WEIGHTINGS = ("importance", "uniform")

DOC = """
### `{dag_id}`: drift check of `{model}`'s champion, retraining when the data has really moved

1. **check**: compares the last `window_days` days (default {window_days}) of validated partitions of
   `{dataset}` with the reference profile stored with the **current champion** (found through the
   registry, so the comparison follows promotions): per feature KS / normalised Wasserstein / PSI
   (numeric) and chi-square / PSI / Jensen-Shannon (categorical), effect-size thresholds, plus drift
   of the champion's predictions. It also scores the champion's **realised performance** on the
   newest labelled days (`label_delay_days`, `performance_days`: degraded below the gate's minimum or
   worse than its holdout score by more than `performance_margin`). The report is stored as JSON and
   HTML (button *Drift report*); the scores are logged to the champion's monitoring run in MLflow.
2. **decide**: retrain when a rule of the `policy` fires: the share of drifted features weighted by
   their importance to the model (or uniformly) reaches `drift_share`, the predictions drift, or the
   realised performance is degraded; or when `force_retrain` is set; unless `dry_run` is set or
   a drift-triggered training ran within `cooldown_days` (default {cooldown_days}).
3. **trigger_retrain**: triggers `{train_dag}` with the run id `{retrain_run_id}` (a re-run of
   the same day never trains twice) and `conf = {{reason, drifted_features, report_uri, window}}`.

With no champion yet, or no validated data in the window, the check says so and the run ends.
The defaults of window, cooldown and thresholds come from the `drift:` block of `{config}`;
a run's conf overrides them.
"""


def drift_params(model: ModelConfig) -> dict[str, Param]:
    """The Params of a drift check, with the model file's drift policy as defaults."""
    policy = model.drift
    return {
        "check_date": date_param("Check date", "Last day of the window (YYYY-MM-DD). Empty: the run's date."),
        "window_days": Param(
            policy.window_days,
            type="integer",
            minimum=1,
            maximum=90,
            title="Window (days)",
            description="Days of validated partitions compared with the reference.",
        ),
        "thresholds": Param(
            policy.thresholds or None,
            type=["null", "object"],
            title="Threshold overrides",
            description='e.g. {"psi": 0.25, "wasserstein": 0.15, "drift_share": 0.3}',
            additionalProperties={"type": ["number", "object"]},
        ),
        "policy": Param(
            policy.policy or None,
            type=["null", "object"],
            title="Retrain policy overrides",
            description=(
                "Over the model file's drift.policy, e.g. "
                '{"weighting": "uniform", "prediction_drift": false, "performance": true}'
            ),
            additionalProperties=False,
            properties={
                "weighting": {"enum": list(POLICY_WEIGHTINGS)},
                "prediction_drift": {"type": "boolean"},
                "performance": {"type": "boolean"},
            },
        ),
        "cooldown_days": Param(
            policy.cooldown_days,
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
            description="Trigger training even without drift (cooldown applies).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Check and decide, but never trigger training.",
        ),
    }


def build_drift_dag(model: ModelConfig) -> DAG:
    """The drift check DAG of ``model`` (see :data:`DOC`)."""
    dag_id = drift_dag_id(model.name)
    train = train_dag_id(model.name)
    config = str(model.config_path)
    with DAG(
        dag_id=dag_id,
        description=f"Drift check of {model.name}'s inputs and predictions; triggers {train} on drift",
        render_template_as_native_obj=True,
        params=drift_params(model),
        doc_md=DOC.format(
            dag_id=dag_id,
            model=model.name,
            dataset=model.dataset,
            window_days=model.drift.window_days,
            cooldown_days=model.drift.cooldown_days,
            train_dag=train,
            retrain_run_id=retrain_run_id(model.name, "<ds>"),
            config=config,
        ),
        **dag_arguments(model.drift.dag, tags=("monitoring", "drift", model.name)),
    ) as dag:
        check = MLflowDriftCheckOperator(
            task_id="check",
            model_config=config,
            check_date="{{ params.check_date or '' }}",
            window_days="{{ params.window_days }}",
            thresholds="{{ params.thresholds }}",
            policy="{{ params.policy }}",
            doc_md="Compare recent validated data and the champion's predictions with its reference.",
        )
        decide = DriftRetrainBranchOperator(
            task_id="decide",
            drift=check.output,
            retrain_task_id="trigger_retrain",
            skip_task_id="no_retrain",
            train_dag_id=train,
            force_retrain="{{ params.force_retrain }}",
            dry_run="{{ params.dry_run }}",
            cooldown_days="{{ params.cooldown_days }}",
        )
        trigger = RetrainTriggerOperator(
            task_id="trigger_retrain",
            trigger_dag_id=train,
            trigger_run_id=retrain_run_id(model.name, f"{{{{ {CHECK}['ds'] }}}}"),
            conf={
                "end_date": f"{{{{ {CHECK}['ds'] }}}}",
                "reason": "{{ ti.xcom_pull(task_ids='decide', key='retrain_decision')['reason'][:500] }}",
                "drifted_features": f"{{{{ {CHECK}['drifted_features'] }}}}",
                "report_uri": f"{{{{ {CHECK}['report_uri'] }}}}",
                "window": f"{{{{ {CHECK}['window'] }}}}",
            },
        )
        check >> decide >> [trigger, EmptyOperator(task_id="no_retrain")]
    return dag
