"""Operator extra links to MLflow: the run and the registered model version a task worked on.

The operator pushes the URL to XCom when it knows it; the link reads it back, so the button works
for any tracking server and costs no MLflow call when the UI renders it. The URLs are built by
``MLflowHook.run_url`` / ``model_version_url`` on the connection's public UI address (extra ``ui_url``,
else the tracking URI), which a person's browser reaches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_KEY = "mlflow_run_url"
MODEL_VERSION_URL_KEY = "mlflow_model_version_url"


class _XComUrlLink(BaseOperatorLink):
    xcom_key: str

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class MLflowRunLink(_XComUrlLink):
    """Opens the task's MLflow run."""

    name = "MLflow run"
    xcom_key = RUN_URL_KEY


class MLflowModelVersionLink(_XComUrlLink):
    """Opens the registered model version the task registered or promoted."""

    name = "MLflow model version"
    xcom_key = MODEL_VERSION_URL_KEY
