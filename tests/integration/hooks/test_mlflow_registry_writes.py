"""Registry writes under fault injection, against a real MLflow server.

Faults: a client that performs a create twice (its first response lost, the request re-sent), a
rollback that lands between a promotion's re-check and its alias move, two writers of the audit.
"""

from __future__ import annotations

import pytest

from mlops_provider.core.registry_names import (
    CHAMPION,
    DUPLICATE_OF_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
)
from mlops_provider.hooks._mlflow_registry import ANY, ModelRegistry, RegistryRaceError
from mlops_provider.hooks.mlflow import MLflowHook
from tests.support.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(mlflow_server, airflow_connection) -> MLflowHook:
    return MLflowHook(
        mlflow_conn_id=airflow_connection("mlflow_writes", conn_type="mlflow", host=mlflow_server)
    )


def _twice(monkeypatch, client, method: str) -> None:
    """Make ``client.<method>`` perform its request twice and return the second answer."""
    original = getattr(client, method)

    def resent(*args, **kwargs):
        original(*args, **kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(client, method, resent)


def _unique(prefix: str) -> str:
    return f"{prefix}_{free_port()}"


def _model_run(hook: MLflowHook, experiment_id: str) -> str:
    run_id = hook.client.create_run(experiment_id).info.run_id
    hook.upload_artifact_bytes(run_id, "model/MLmodel", b"flavors: {}\n")
    return run_id


def test_experiments_open_in_the_model_training_view(hook):
    name = _unique("kind")
    experiment_id = hook.get_or_create_experiment(name)
    assert hook.client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND

    older = hook.client.create_experiment(_unique("untagged"))
    assert EXPERIMENT_KIND_TAG not in hook.client.get_experiment(older).tags
    assert hook.get_or_create_experiment(hook.client.get_experiment(older).name) == older
    assert hook.client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_a_resent_run_create_yields_one_run_and_archives_the_duplicate(hook, monkeypatch):
    experiment_id = hook.get_or_create_experiment(_unique("runs"))
    tags = {"airflow.run_id": "manual__1", "mlops.role": "training"}
    _twice(monkeypatch, hook.client, "create_run")

    run_id = hook.find_or_create_run(experiment_id, tags=tags, match=tuple(tags), run_name="train")

    assert hook.find_or_create_run(experiment_id, tags=tags, match=tuple(tags), run_name="train") == run_id
    active = hook.client.search_runs([experiment_id])
    assert [run.info.run_id for run in active] == [run_id]
    from mlflow.entities import ViewType

    deleted = hook.client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == 1
    assert deleted[0].data.tags[DUPLICATE_OF_TAG] == run_id
    assert deleted[0].info.status == "KILLED"


def test_a_resent_version_create_yields_the_lowest_version_every_time(hook, monkeypatch):
    experiment_id = hook.get_or_create_experiment(_unique("versions"))
    name = _unique("dup_model")
    run_id = _model_run(hook, experiment_id)
    _twice(monkeypatch, hook.client, "create_model_version")

    version, created = hook.registry.register_run_model(name, run_id)
    again, created_again = hook.registry.register_run_model(name, run_id)

    assert (version.version, created) == ("1", True)
    assert (again.version, created_again) == ("1", False)
    duplicate = hook.client.get_model_version(name, "2")
    assert duplicate.tags[DUPLICATE_OF_TAG] == "1"
    assert "Duplicate of version 1" in duplicate.description


def test_registered_model_gets_the_configured_description(hook):
    name = _unique("described")
    hook.registry.ensure_model(name, "Predicts churn.")
    assert hook.client.get_registered_model(name).description == "Predicts churn."
    hook.registry.ensure_model(name, "Predicts churn within 30 days.")
    hook.registry.ensure_model(name)
    assert hook.client.get_registered_model(name).description == "Predicts churn within 30 days."


@pytest.fixture
def three_versions(hook):
    experiment_id = hook.get_or_create_experiment(_unique("aliases"))
    name = _unique("race_model")
    for _ in range(3):
        hook.registry.register_run_model(name, _model_run(hook, experiment_id))
    hook.client.set_registered_model_alias(name, CHAMPION, "1")
    return name


def test_a_rollback_between_recheck_and_move_is_not_overwritten(hook, three_versions, monkeypatch):
    name, client = three_versions, hook.client
    original = client.set_registered_model_alias
    rollback = MLflowHook(mlflow_conn_id=hook.mlflow_conn_id)
    injected = []

    def rollback_first(model, alias, version):
        if not injected:  # the promotion has re-checked champion == 1; a rollback to 2 lands now
            injected.append(rollback.registry.move_alias(model, alias, "2", token="rollback", expected=ANY))
        return original(model, alias, version)

    monkeypatch.setattr(client, "set_registered_model_alias", rollback_first)

    with pytest.raises(RegistryRaceError, match="Lost a race"):
        hook.registry.move_alias(name, CHAMPION, "3", token="register", expected="1")

    assert injected == ["1"]
    assert hook.get_version_by_alias(name, CHAMPION).version == "2"


def test_a_changed_alias_is_not_moved(hook, three_versions):
    hook.client.set_registered_model_alias(three_versions, CHAMPION, "2")
    with pytest.raises(RegistryRaceError, match="not 1 as read before"):
        hook.registry.move_alias(three_versions, CHAMPION, "3", token="register", expected="1")
    assert hook.get_version_by_alias(three_versions, CHAMPION).version == "2"
    assert hook.registry.move_alias(three_versions, CHAMPION, "3", token="register", expected="2") == "2"
    assert hook.get_version_by_alias(three_versions, CHAMPION).version == "3"


def test_the_audit_appends_each_event_once_and_loses_none(hook, three_versions, monkeypatch):
    first = hook.registry.append_audit(three_versions, {"event_id": "a", "action": "promote", "version": "2"})
    assert (
        hook.registry.append_audit(three_versions, {"event_id": "a", "action": "promote", "version": "2"})
        == first
    )
    stale = hook.registry.audit_records(three_versions)
    hook.registry.append_audit(three_versions, {"event_id": "b", "action": "rollback", "version": "1"})
    # A second writer that read the series before "b" was written appends at the same position.
    monkeypatch.setattr(ModelRegistry, "audit_records", lambda registry, name: stale)
    hook.registry.append_audit(three_versions, {"event_id": "c", "action": "rollback", "version": "3"})
    monkeypatch.undo()
    hook.registry.append_audit(three_versions, {"event_id": "c", "action": "rollback", "version": "3"})

    records = hook.registry.audit_records(three_versions)
    assert sorted(r["event_id"] for r in records) == ["a", "b", "c"]
    assert [r["seq"] for r in records] == [1, 2, 2]
