"""RetrainTriggerOperator.execute: what it asks Airflow's TriggerDagRunOperator to trigger.

In Airflow 3 a task triggers a run by raising ``DagRunTriggerException``, which the task runner turns
into the API call; so the real ``TriggerDagRunOperator`` runs here and the request it raises is the
operator's whole contract, with no Airflow database.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import DagRunTriggerException

from mlops_provider.operators.retrain import RetrainTriggerOperator

pytestmark = pytest.mark.unit

CONF = {"end_date": "2026-03-01", "reason": "drift share 0.5 >= 0.3", "drifted_features": ["tenure_months"]}


def trigger_request(operator: RetrainTriggerOperator, context: dict) -> DagRunTriggerException:
    with pytest.raises(DagRunTriggerException) as raised:
        operator.execute(context)
    return raised.value


def test_the_training_run_is_triggered_once_by_its_run_id_without_logical_date_or_waiting():
    operator = RetrainTriggerOperator(
        task_id="trigger_retrain",
        trigger_dag_id="mlops_train__churn_classifier",
        trigger_run_id="retrain__churn_classifier__2026-03-01",
        conf=CONF,
    )

    request = trigger_request(operator, {"ti": SimpleNamespace()})

    assert request.trigger_dag_id == "mlops_train__churn_classifier"
    assert request.dag_run_id == "retrain__churn_classifier__2026-03-01"
    assert request.conf == CONF
    assert request.logical_date is None
    assert request.skip_when_already_exists is True  # a re-run of the same check never trains twice
    assert request.reset_dag_run is False
    assert request.wait_for_completion is False


def test_dag_id_run_id_and_conf_are_templated():
    operator = RetrainTriggerOperator(
        task_id="trigger_retrain",
        trigger_dag_id="mlops_train__{{ params.model }}",
        trigger_run_id="retrain__{{ params.model }}__{{ ds }}",
        conf={"end_date": "{{ ds }}", "window": "{{ params.window }}"},
    )
    context = {"ds": "2026-03-01", "params": {"model": "churn_classifier", "window": 7}}

    operator.render_template_fields(context)
    request = trigger_request(operator, context)

    assert request.trigger_dag_id == "mlops_train__churn_classifier"
    assert request.dag_run_id == "retrain__churn_classifier__2026-03-01"
    assert request.conf == {"end_date": "2026-03-01", "window": "7"}
