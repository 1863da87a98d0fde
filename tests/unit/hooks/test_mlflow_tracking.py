"""MLflowHook's tracking calls over a recording stand-in client: what reaches MLflow, as which entities."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mlops_provider.hooks._mlflow_tracking import PARTITION_SOURCE_TYPE, RunRecord
from mlops_provider.hooks.mlflow import MLflowHook

pytestmark = pytest.mark.unit

PARTITIONS = [
    {
        "ds": "2026-03-01",
        "uri": "file:///data/churn/validated/ds=2026-03-01",
        "sha256": "a" * 64,
        "rows": 400,
    },
    {
        "ds": "2026-03-02",
        "uri": "file:///data/churn/validated/ds=2026-03-02",
        "sha256": "b" * 64,
        "rows": 380,
    },
]


class RecordingClient:
    """The ``MlflowClient`` calls the tracking methods make, recorded; ``get_run`` answers one run."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def log_inputs(self, run_id, datasets):
        self.calls.append(("log_inputs", run_id, datasets))

    def set_tag(self, run_id, key, value):
        self.calls.append(("set_tag", run_id, key, value))

    def get_run(self, run_id):
        return SimpleNamespace(
            info=SimpleNamespace(run_id=run_id, start_time=1_700_000_000_000),
            data=SimpleNamespace(metrics={"holdout_roc_auc": 0.81}, tags={"mlops.role": "candidate"}),
        )


@pytest.fixture
def hook() -> tuple[MLflowHook, RecordingClient]:
    hook, client = MLflowHook(mlflow_conn_id="unused"), RecordingClient()
    hook.__dict__["client"] = client  # the cached client, without a connection
    return hook, client


def test_partitions_are_logged_as_dataset_inputs_named_by_day_and_digested_by_sha256(hook):
    hook, client = hook

    hook.log_partition_inputs("run1", "churn", PARTITIONS)

    [(call, run_id, inputs)] = client.calls
    assert (call, run_id) == ("log_inputs", "run1")
    assert [i.dataset.name for i in inputs] == ["churn/ds=2026-03-01", "churn/ds=2026-03-02"]
    assert [i.dataset.digest for i in inputs] == ["a" * 36, "b" * 36]
    assert {i.dataset.source_type for i in inputs} == {PARTITION_SOURCE_TYPE}
    assert json.loads(inputs[1].dataset.source) == {"uri": PARTITIONS[1]["uri"], "sha256": "b" * 64}
    assert json.loads(inputs[1].dataset.profile) == {"num_rows": 380}
    assert [(t.key, t.value) for i in inputs for t in i.tags] == [("mlflow.data.context", "training")] * 2


def test_a_run_is_read_back_as_plain_data(hook):
    hook, _ = hook

    assert hook.get_run_record("run1") == RunRecord(
        "run1", 1_700_000_000_000, {"holdout_roc_auc": 0.81}, {"mlops.role": "candidate"}
    )


def test_run_tags_are_set_one_call_each_as_strings(hook):
    hook, client = hook

    hook.set_run_tags("run1", {"airflow.try_number": 2, "mlops.partitions": "churn@..."})

    assert client.calls == [
        ("set_tag", "run1", "airflow.try_number", "2"),
        ("set_tag", "run1", "mlops.partitions", "churn@..."),
    ]
