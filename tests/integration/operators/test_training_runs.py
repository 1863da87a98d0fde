"""MLflow runs of the training tasks end with the right status, against a real MLflow server.

The fit itself is replaced (it is covered by the DAG tests); what is checked is the run handling:
a failing try ends its candidate run FAILED, the retry reuses that run and ends it FINISHED, and
the failure callback ends the DAG run's parent run FAILED.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_provider.core import training as core_training
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.operators import training
from mlops_provider.operators.training import SklearnTrainCandidateOperator, end_training_run_on_failure
from tests.conftest import REPO_ROOT
from tests.support.services import free_port

pytestmark = pytest.mark.integration

MODEL_CONFIG = str(REPO_ROOT / "include" / "models" / "churn.yaml")


@pytest.fixture
def hook(mlflow_server, airflow_connection) -> MLflowHook:
    return MLflowHook(
        mlflow_conn_id=airflow_connection("mlflow_runs", conn_type="mlflow", host=mlflow_server)
    )


def _parent(hook: MLflowHook, airflow_run: str) -> tuple[str, str]:
    experiment_id = hook.get_or_create_experiment("mlops/churn_classifier")
    tags = {"airflow.run_id": airflow_run, "mlops.role": "training"}
    return experiment_id, hook.find_or_create_run(experiment_id, tags=tags, match=tuple(tags), run_name="t")


def test_the_failure_callback_ends_the_parent_run_failed(hook):
    airflow_run = f"manual__{free_port()}"
    _, parent = _parent(hook, airflow_run)
    task = SimpleNamespace(model_config=MODEL_CONFIG, mlflow_hook=lambda: hook)

    end_training_run_on_failure({"task": task, "ti": SimpleNamespace(run_id=airflow_run)})

    assert hook.client.get_run(parent).info.status == "FAILED"


def test_a_failed_try_ends_its_candidate_run_and_the_retry_reuses_it(hook, monkeypatch):
    airflow_run = f"manual__{free_port()}"
    experiment_id, parent = _parent(hook, airflow_run)
    plan = {"experiment_id": experiment_id, "parent_run_id": parent, "fit": [], "selection": []}
    operator = SklearnTrainCandidateOperator(
        task_id="train", model_config=MODEL_CONFIG, plan=plan, candidate={"index": 0, "params": {}}
    )
    monkeypatch.setattr(operator, "mlflow_hook", lambda: hook)
    monkeypatch.setattr(operator, "storage_hook", lambda: None)
    monkeypatch.setattr(training, "read_recorded_partitions", lambda *args: None)
    monkeypatch.setattr(core_training, "features_and_target", lambda *args: (None, None))
    outcomes = iter([ValueError("the fit broke"), {"roc_auc": 0.7}])

    def fit_and_log(*args):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(operator, "_fit_and_log", fit_and_log)

    def context(try_number: int) -> dict:
        ti = SimpleNamespace(
            dag_id="mlops_train__churn_classifier", run_id=airflow_run, task_id="train",
            try_number=try_number, map_index=0, xcom_push=lambda key, value: None,
        )  # fmt: skip
        return {"ti": ti}

    with pytest.raises(ValueError, match="the fit broke"):
        operator.execute(context(1))
    [failed] = hook.client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert failed.info.status == "FAILED"

    result = operator.execute(context(2))

    [run] = hook.client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert run.info.run_id == failed.info.run_id == result["run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.tags["airflow.try_number"] == "2"
