"""The MLflow extra links (links/mlflow.py): each opens the URL its task pushed, under its own XCom key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.execution_time.xcom import XCom

from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.links.mlflow import (
    MODEL_VERSION_URL_KEY,
    RUN_URL_KEY,
    MLflowModelVersionLink,
    MLflowRunLink,
)
from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
from mlops_provider.operators.registry import MLflowRegisterModelOperator, MLflowRollbackChampionOperator

pytestmark = pytest.mark.unit

TI_KEY = SimpleNamespace(dag_id="d", task_id="t", run_id="r", try_number=1, map_index=-1)
RUN_URL = "http://mlflow:5000/#/experiments/3/runs/abc"
VERSION_URL = "http://mlflow:5000/#/models/churn/versions/2"


@pytest.fixture
def pushed(monkeypatch) -> dict[str, str]:
    """The XComs of the task instance ``TI_KEY`` by key; any other task instance has none."""
    values: dict[str, str] = {}

    def get_value(*, ti_key, key):
        return values.get(key) if ti_key is TI_KEY else None

    monkeypatch.setattr(XCom, "get_value", get_value)
    return values


@pytest.mark.parametrize(
    ("link", "key", "url"),
    [(MLflowRunLink(), RUN_URL_KEY, RUN_URL), (MLflowModelVersionLink(), MODEL_VERSION_URL_KEY, VERSION_URL)],
)
def test_a_link_opens_the_url_its_task_pushed_and_is_empty_without_one(pushed, link, key, url):
    assert link.get_link(operator=None, ti_key=TI_KEY) == ""

    pushed[key] = url
    assert link.get_link(operator=None, ti_key=TI_KEY) == url
    other = SimpleNamespace(**{**vars(TI_KEY), "run_id": "other"})
    assert link.get_link(operator=None, ti_key=other) == ""


def test_each_link_reads_only_its_own_key(pushed):
    pushed[RUN_URL_KEY] = RUN_URL
    assert MLflowModelVersionLink().get_link(operator=None, ti_key=TI_KEY) == ""
    pushed[MODEL_VERSION_URL_KEY] = VERSION_URL
    assert MLflowRunLink().get_link(operator=None, ti_key=TI_KEY) == RUN_URL


def test_the_buttons_keep_their_names():
    # The UI and serialized DAGs know a button by its name: renaming one orphans the stored links.
    assert (MLflowRunLink().name, MLflowModelVersionLink().name) == ("MLflow run", "MLflow model version")


@pytest.mark.parametrize(
    ("operator", "link"),
    [
        (MLflowEvaluateChallengerOperator, MLflowRunLink),
        (MLflowRegisterModelOperator, MLflowModelVersionLink),
        (MLflowRollbackChampionOperator, MLflowModelVersionLink),
    ],
)
def test_the_operators_that_push_a_url_carry_its_link(operator, link):
    assert [type(each) for each in operator.operator_extra_links] == [link]


@pytest.mark.parametrize(
    ("extra", "ui"),
    [
        ({}, "http://mlflow:5000"),
        ({"ui_url": "https://mlflow.example.com/team-a/"}, "https://mlflow.example.com/team-a"),
    ],
)
def test_the_links_open_the_public_ui_url_the_hook_builds(pushed, airflow_connection, extra, ui):
    conn_id = airflow_connection("mlflow_links", conn_type="mlflow", host="http://mlflow:5000", extra=extra)
    hook = MLflowHook(mlflow_conn_id=conn_id)
    pushed[RUN_URL_KEY] = hook.run_url("7", "run 1")
    pushed[MODEL_VERSION_URL_KEY] = hook.model_version_url("churn model", "3")

    assert MLflowRunLink().get_link(operator=None, ti_key=TI_KEY) == f"{ui}/#/experiments/7/runs/run%201"
    assert (
        MLflowModelVersionLink().get_link(operator=None, ti_key=TI_KEY)
        == f"{ui}/#/models/churn%20model/versions/3"
    )
    assert hook.tracking_uri == "http://mlflow:5000"  # API calls still go to the tracking server
