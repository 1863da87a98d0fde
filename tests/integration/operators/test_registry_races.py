"""Register and rollback against a real MLflow server, with the faults found by injection.

- a rollback that lands between register's champion re-check and its alias move;
- a client that re-sends the create of a model version (its first response lost);
- two rollbacks of one version (the audit keeps both; the version's tags show the latest).

The operators run their ``execute`` in-process with the model configuration replaced by a stub, so
each case costs a few registry calls instead of a training run.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_provider.hooks._mlflow_registry import RegistryRaceError
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.operators import registry
from mlops_provider.operators.registry import MLflowRegisterModelOperator, MLflowRollbackChampionOperator
from tests.support.services import free_port

pytestmark = pytest.mark.integration

METRICS = {"roc_auc": 0.8, "log_loss": 0.4}


@pytest.fixture
def env(mlflow_server, airflow_connection, monkeypatch):
    conn_id = airflow_connection("mlflow_races", conn_type="mlflow", host=mlflow_server)
    hook = MLflowHook(mlflow_conn_id=conn_id)
    name = f"race_{free_port()}"
    model = SimpleNamespace(name=name, description="Predicts churn (test).", task="binary")
    monkeypatch.setattr(
        registry, "load_model_config", lambda path: (model, SimpleNamespace(target_classes=[0, 1]))
    )
    experiment_id = hook.get_or_create_experiment(f"mlops/{name}")
    return SimpleNamespace(hook=hook, conn_id=conn_id, name=name, experiment_id=experiment_id)


def _context(run_id: str, task_id: str = "register", try_number: int = 1) -> dict:
    ti = SimpleNamespace(
        dag_id=f"dag_{task_id}", run_id=run_id, task_id=task_id, try_number=try_number, map_index=-1,
        xcom_push=lambda key, value: None,
    )  # fmt: skip
    return {"ti": ti, "dag_run": SimpleNamespace(run_type="manual")}


def _training(env, airflow_run: str, champion: str | None) -> MLflowRegisterModelOperator:
    """A register task for a fresh candidate run whose gate said "promote" against ``champion``."""
    hook = env.hook
    parent = hook.find_or_create_run(
        env.experiment_id, tags={"airflow.run_id": airflow_run, "mlops.role": "training"},
        match=("airflow.run_id", "mlops.role"), run_name=f"train {airflow_run}",
    )  # fmt: skip
    candidate = hook.client.create_run(env.experiment_id, tags={"mlflow.parentRunId": parent}).info.run_id
    hook.upload_artifact_bytes(candidate, "model/MLmodel", b"flavors: {}\n")
    window = {"start": "2026-01-01", "end": "2026-01-10", "days": 10}
    plan = {"experiment_id": env.experiment_id, "parent_run_id": parent, "window": window,
            "fit": [], "selection": [], "holdout": []}  # fmt: skip
    decision = {"promote": True, "reason": "better", "challenger_metrics": METRICS,
                "champion_version": champion, "champion_metrics": METRICS if champion else None,
                "metric": "roc_auc", "margin": 0.0}  # fmt: skip
    evaluation = {"challenger": {"run_id": candidate, "metrics": METRICS, "params": {"C": 1.0}},
                  "decision": decision}  # fmt: skip
    return MLflowRegisterModelOperator(
        task_id="register", model_config="stub", plan=plan, evaluation=evaluation, reason="test",
        mlflow_conn_id=env.conn_id,
    )  # fmt: skip


def _rollback(env, version: str, reason: str) -> MLflowRollbackChampionOperator:
    return MLflowRollbackChampionOperator(
        task_id="rollback", model_config="stub", version=version, reason=reason, mlflow_conn_id=env.conn_id
    )


def test_promotion_ends_the_parent_run_with_the_challengers_metrics_and_audits_it(env):
    operator = _training(env, "run_1", None)
    summary = operator.execute(_context("run_1"))

    assert summary["promoted"] is True and summary["version"] == "1"
    hook = env.hook
    assert hook.client.get_registered_model(env.name).description == "Predicts churn (test)."
    parent = hook.client.get_run(operator.plan["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["holdout_roc_auc"] == pytest.approx(0.8)
    assert parent.data.tags["mlops.challenger_run_id"] == operator.evaluation["challenger"]["run_id"]
    assert parent.data.tags["mlops.model_version"] == "1"
    [record] = hook.registry.audit_records(env.name)
    assert (record["action"], record["version"], record["from_version"]) == ("promote", "1", None)

    again = operator.execute(_context("run_1", try_number=2))  # a retry: nothing new
    assert again["promoted"] is True and again["created"] is False
    assert len(hook.registry.audit_records(env.name)) == 1


def test_a_rollback_between_recheck_and_move_is_neither_overwritten_nor_misrecorded(env, monkeypatch):
    hook = env.hook
    _training(env, "run_a", None).execute(_context("run_a"))
    _training(env, "run_b", None).execute(_context("run_b"))  # v2 registered; champion stays v1
    assert hook.get_version_by_alias(env.name, "champion").version == "1"
    register = _training(env, "run_c", "1")  # v3, gated against champion v1

    # The seam: register's client moves champion only after a rollback to v2 has completed, i.e.
    # after register's re-check (champion == v1) and before its own move.
    register_hook = MLflowHook(mlflow_conn_id=env.conn_id)
    original = register_hook.client.set_registered_model_alias
    injected = []

    def rollback_first(name, alias, version):
        if alias == "champion" and not injected:
            injected.append(_rollback(env, "2", "v1 misbehaves").execute(_context("rb_1", "rollback")))
        return original(name, alias, version)

    monkeypatch.setattr(register_hook.client, "set_registered_model_alias", rollback_first)
    monkeypatch.setattr(MLflowRegisterModelOperator, "mlflow_hook", lambda operator: register_hook)
    with pytest.raises(RegistryRaceError, match="Lost a race"):
        register.execute(_context("run_c"))

    assert injected and injected[0]["champion"] == "2"
    assert hook.get_version_by_alias(env.name, "champion").version == "2"
    assert "mlops.previous_champion" not in hook.client.get_model_version(env.name, "3").tags
    assert [r["action"] for r in hook.registry.audit_records(env.name)] == ["promote", "rollback"]

    retried = register.execute(_context("run_c", try_number=2))  # the retry sees the new champion
    assert retried["promoted"] is False and "changed from version 1 to version 2" in retried["reason"]
    assert hook.get_version_by_alias(env.name, "champion").version == "2"
    assert [r["action"] for r in hook.registry.audit_records(env.name)] == ["promote", "rollback"]


def test_a_resent_version_create_moves_challenger_to_one_version_every_time(env, monkeypatch):
    hook = MLflowHook(mlflow_conn_id=env.conn_id)
    register = _training(env, "run_dup", None)
    original = hook.client.create_model_version

    def resent(*args, **kwargs):
        original(*args, **kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(hook.client, "create_model_version", resent)
    monkeypatch.setattr(MLflowRegisterModelOperator, "mlflow_hook", lambda operator: hook)
    first = register.execute(_context("run_dup"))
    second = register.execute(_context("run_dup", try_number=2))

    assert first["version"] == second["version"] == "1"
    assert hook.get_version_by_alias(env.name, "challenger").version == "1"
    assert hook.client.get_model_version(env.name, "2").tags["mlops.duplicate_of"] == "1"


def test_every_rollback_of_a_version_stays_in_the_audit(env):
    hook = env.hook
    for run in ("r1", "r2"):
        _training(env, run, None).execute(_context(run))
    for run, version, reason in (("rb1", "2", "first"), ("rb2", "1", "back"), ("rb3", "2", "again")):
        _rollback(env, version, reason).execute(_context(run, "rollback"))

    rollbacks = [r for r in hook.registry.audit_records(env.name) if r["action"] == "rollback"]
    assert [(r["version"], r["from_version"], r["reason"]) for r in rollbacks] == [
        ("2", "1", "first"),
        ("1", "2", "back"),
        ("2", "1", "again"),
    ]
    assert hook.client.get_model_version(env.name, "2").tags["mlops.rollback.reason"] == "again"
