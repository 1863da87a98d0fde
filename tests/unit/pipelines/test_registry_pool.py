"""The generated DAGs serialise registry writes and end their MLflow runs on failure."""

from __future__ import annotations

import re

import pytest

from mlops_provider.operators.registry import REGISTRY_POOL
from mlops_provider.operators.training import end_training_run_on_failure
from mlops_provider.pipelines import build_pipelines
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def test_register_and_rollback_share_the_one_slot_registry_pool():
    dags = build_pipelines(REPO_ROOT / "include")
    train, rollback = dags["mlops_train__churn_classifier"], dags["mlops_rollback__churn_classifier"]

    assert train.get_task("register").pool == REGISTRY_POOL
    assert rollback.get_task("rollback").pool == REGISTRY_POOL
    assert {task.pool for task in train.tasks if task.task_id != "register"} == {"default_pool"}


def test_every_training_task_ends_the_parent_run_when_it_fails_for_good():
    train = build_pipelines(REPO_ROOT / "include")["mlops_train__churn_classifier"]
    for task in train.tasks:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert end_training_run_on_failure in callbacks, task.task_id


def test_the_stack_compose_and_astro_settings_create_the_pool():
    stack = (REPO_ROOT / "scripts" / "mlops_stack" / "servers.py").read_text()
    assert re.search(rf'^REGISTRY_POOL = "{REGISTRY_POOL}"$', stack, re.M)
    assert "pools set {REGISTRY_POOL} 1" in stack
    assert f"airflow pools set {REGISTRY_POOL} 1 " in (REPO_ROOT / "docker-compose.yaml").read_text()
    assert f"pool_name: {REGISTRY_POOL}" in (REPO_ROOT / "airflow_settings.yaml").read_text()
