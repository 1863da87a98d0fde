"""A run's conf may set only the DAG's Params: the first task of every generated DAG refuses the rest.

Airflow merges any conf key into the params, so a typo would silently run with the defaults; the
provider's operators check the conf in ``pre_execute``, before any work (``operators._common``).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.operators._common import refuse_unknown_conf
from mlops_provider.pipelines import build_pipelines
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dags() -> dict:
    """The DAGs generated from the shipped configurations (include/), by id."""
    return build_pipelines(REPO_ROOT / "include")


def run_context(task, conf: dict | None) -> dict:
    return {"task": task, "dag_run": SimpleNamespace(conf=conf)}


def test_the_first_task_refuses_a_conf_key_the_dag_does_not_declare(dags):
    assert {dag_id.split("__")[0] for dag_id in dags} == {
        "mlops_ingest",
        "mlops_train",
        "mlops_drift",
        "mlops_rollback",
    }
    for dag_id, dag in dags.items():
        (first,) = dag.roots
        declared = sorted(dag.params)
        typo = declared[0] + "s"

        with pytest.raises(
            InvalidConfigurationError, match=f"unknown key '{typo}' in the run's conf"
        ) as refused:
            first.pre_execute(run_context(first, {declared[0]: None, typo: 1}))

        message = str(refused.value)
        assert f"(did you mean '{declared[0]}'?)" in message, dag_id
        assert "known keys: " + ", ".join(declared) in message, dag_id
        assert message.endswith("Trigger the DAG again with the Params it declares."), dag_id


def test_the_first_task_accepts_declared_keys_and_no_conf(dags):
    for dag in dags.values():
        (first,) = dag.roots
        first.pre_execute(run_context(first, dict.fromkeys(dag.params)))
        first.pre_execute(run_context(first, None))
        first.pre_execute({"task": first})  # a run started without a DagRun conf at all


def test_every_unknown_key_is_named_once(dags):
    task = dags["mlops_ingest__churn"].roots[0]

    with pytest.raises(InvalidConfigurationError) as refused:
        refuse_unknown_conf(
            run_context(task, {"partition_dates": "2026-03-01", "zzz": 1, "source_uri": None})
        )

    message = str(refused.value)
    assert message.count("unknown key") == 2
    assert "'partition_dates'" in message and "'zzz'" in message
    assert "unknown key 'source_uri'" not in message
