"""mlops_train and mlops_rollback end to end with dag.test(): real MLflow server, real storage, real fits.

The tests of this module share one registry history, in order: the first run creates a champion,
a second, worse run leaves it in place, then the rollback DAG moves it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from include.example_data import churn
from mlops_provider.core.evaluation import classification_metrics
from mlops_provider.core.training import features_and_target
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators._model import load_model_config, read_recorded_partitions
from mlops_provider.operators.registry import MLflowRegisterModelOperator
from tests.conftest import REPO_ROOT
from tests.support.dags import pipeline_env, run_dag

pytestmark = pytest.mark.integration

MODEL = "churn_classifier"
MODEL_CONFIG = REPO_ROOT / "include" / "models" / "churn.yaml"
FIRST_DAY = date(2026, 5, 1)
DAYS = 12
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
ROWS = 2_000
CONF = {"window_days": DAYS, "reason": "integration test"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_server, airflow_db):
    """A data root with DAYS validated churn partitions and mlflow_default -> the test server."""
    root = tmp_path_factory.mktemp("train") / "data"
    with pipeline_env(root, mlflow_server):
        storage = DatasetStorageHook(root_uri=f"file://{root}")
        for offset in range(DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            storage.write_partition("churn", "validated", day, churn.generate_day(day, ROWS))
        yield SimpleNamespace(storage=storage, hook=MLflowHook(), results={})


def _run(trained, key, conf):
    result = run_dag("mlops_train__churn_classifier", LAST_DAY.isoformat(), conf={**CONF, **conf})
    assert result.state == "success", result
    trained.results[key] = result
    return result


def test_first_run_registers_and_promotes_a_champion_with_full_lineage(trained, tmp_path):
    result = _run(trained, "first", {})
    assert result.task_states["register"] == "success"
    assert sum(1 for task in result.task_states if task.startswith("train")) >= 1

    client = trained.hook.client
    champion = trained.hook.get_version_by_alias(MODEL, "champion")
    assert champion is not None and champion.version == "1"
    assert trained.hook.get_version_by_alias(MODEL, "challenger").version == "1"
    assert champion.tags["mlops.gate.decision"] == "promoted"
    assert "# " in champion.description and "roc_auc" in champion.description  # the model card

    run = client.get_run(champion.run_id)
    assert run.data.tags["airflow.dag_id"] == "mlops_train__churn_classifier"
    assert run.data.tags["airflow.run_id"] == result.run_id
    assert run.data.tags["mlops.role"] == "candidate"
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["mlops.role"] == "training"
    assert parent.data.tags["mlops.challenger_run_id"] == champion.run_id
    # The parent run reads well: ended, with the chosen candidate's metrics and a link to its version.
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["holdout_roc_auc"] == pytest.approx(run.data.metrics["holdout_roc_auc"])
    assert parent.data.tags["mlops.model_version"] == "1"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    registered = client.get_registered_model(MODEL)
    assert registered.description == load_model_config(str(MODEL_CONFIG))[0].description
    assert [(r["action"], r["version"]) for r in trained.hook.registry.audit_records(MODEL)] == [
        ("promote", "1")
    ]
    siblings = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(siblings) == 4  # the configured grid
    assert all(s.info.status == "FINISHED" for s in siblings)

    # Lineage: the fit + selection partitions (the holdout stays unseen), with their sha256.
    trained_on = [d.dataset.name for d in run.inputs.dataset_inputs]
    assert trained_on == [f"churn/ds={FIRST_DAY + timedelta(days=i)}" for i in range(DAYS - 5)]
    for entry in run.inputs.dataset_inputs:
        ds = entry.dataset.name.split("ds=")[1]
        assert (
            json.loads(entry.dataset.source)["sha256"]
            == trained.storage.read_manifest("churn", "validated", ds).sha256
        )
    assert run.data.tags["mlops.partitions"].startswith("churn@")

    metrics = run.data.metrics
    for name in ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss"):
        assert f"holdout_{name}" in metrics and f"selection_{name}" in metrics
    assert metrics["holdout_roc_auc"] > 0.7
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {"model", "reference", "evaluation", "model_card.md"} <= artifacts
    evaluation_files = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {
        "evaluation/roc.png",
        "evaluation/calibration.png",
        "evaluation/confusion.png",
    } <= evaluation_files
    roc = trained.hook.download_artifacts(champion.run_id, "evaluation/roc.png", tmp_path)
    assert roc.read_bytes().startswith(b"\x89PNG")


def test_champion_loaded_from_the_registry_reproduces_its_holdout_metrics(trained):
    import mlflow.pyfunc

    champion = trained.hook.get_version_by_alias(MODEL, "champion")
    model, dataset = load_model_config(str(MODEL_CONFIG))
    holdout_days = [LAST_DAY - timedelta(days=i) for i in range(model.holdout_days)][::-1]
    parts = [
        {"ds": d.isoformat(), "sha256": trained.storage.read_manifest("churn", "validated", d).sha256}
        for d in holdout_days
    ]
    X, y = features_and_target(read_recorded_partitions(trained.storage, "churn", parts), dataset)

    mlflow.set_tracking_uri(trained.hook.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        proba = np.asarray(served.predict(X))[:, 1]
    finally:
        mlflow.set_tracking_uri(None)
    logged = trained.hook.client.get_run(champion.run_id).data.metrics
    for name, value in classification_metrics(y, proba).items():
        assert value == pytest.approx(logged[f"holdout_{name}"], abs=1e-9), name


def test_second_worse_run_registers_a_challenger_but_keeps_the_champion(trained):
    result = _run(trained, "second", {"grid": {"C": [1e-7]}})  # almost no signal survives this penalty

    assert result.task_states["register"] == "success"
    hook = trained.hook
    assert hook.get_version_by_alias(MODEL, "champion").version == "1"
    challenger = hook.get_version_by_alias(MODEL, "challenger")
    assert challenger.version == "2"
    assert challenger.tags["mlops.gate.decision"] == "rejected"
    reason = challenger.tags["mlops.gate.reason"]
    assert "fails the minimums" in reason and "log_loss" in reason
    run = hook.client.get_run(challenger.run_id)
    assert run.data.tags["mlops.gate.decision"] == "rejected"
    assert run.data.tags["mlops.gate.reason"] == reason


def test_retried_register_task_creates_no_second_version(trained):
    """Run the register step of the second run again, as a retry would (try 2, same inputs)."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    result = trained.results["second"]
    with create_session() as session:
        values = {
            task: XComModel.deserialize_value(
                session.query(XComModel)
                .filter_by(
                    dag_id="mlops_train__churn_classifier", run_id=result.run_id, task_id=task, key=key
                )
                .one()
            )
            for task, key in (("prepare", "plan"), ("evaluate", "return_value"))
        }
        assert session.query(DagRun).filter_by(run_id=result.run_id).count() == 1
        assert session.query(TaskInstance).filter_by(run_id=result.run_id, task_id="register").count() == 1
    versions_before = trained.hook.client.search_model_versions(f"name = '{MODEL}'")

    pushed = {}
    ti = SimpleNamespace(
        dag_id="mlops_train__churn_classifier", run_id=result.run_id, task_id="register", try_number=2, map_index=-1,
        xcom_push=lambda key, value: pushed.update({key: value}),
    )  # fmt: skip
    operator = MLflowRegisterModelOperator(
        task_id="register",
        model_config=str(MODEL_CONFIG),
        plan=values["prepare"],
        evaluation=values["evaluate"],
    )
    summary = operator.execute({"ti": ti, "dag_run": SimpleNamespace(run_type="manual")})

    assert summary["version"] == "2" and summary["created"] is False and summary["promoted"] is False
    assert len(trained.hook.client.search_model_versions(f"name = '{MODEL}'")) == len(versions_before)
    assert pushed["mlflow_model_version_url"].endswith(f"/#/models/{MODEL}/versions/2")


def test_rollback_points_champion_to_a_named_version_with_who_and_why(trained):
    result = run_dag(
        "mlops_rollback__churn_classifier", None, conf={"version": 2, "reason": "v1 misbehaves in production"}
    )

    assert result.state == "success", result
    version = trained.hook.get_version_by_alias(MODEL, "champion")
    assert version.version == "2"
    assert version.tags["mlops.rollback.reason"] == "v1 misbehaves in production"
    assert version.tags["mlops.rollback.from_version"] == "1"
    assert version.tags["mlops.rollback.by"]
    assert version.tags["mlops.rollback.airflow_run_id"] == result.run_id

    missing = run_dag(
        "mlops_rollback__churn_classifier", None, conf={"version": 99, "reason": "no such version"}
    )
    assert missing.state == "failed" and missing.task_states["rollback"] == "failed"
    assert trained.hook.get_version_by_alias(MODEL, "champion").version == "2"

    back = run_dag("mlops_rollback__churn_classifier", None, conf={"version": 1, "reason": "restore"})
    assert back.state == "success"
    assert trained.hook.get_version_by_alias(MODEL, "champion").version == "1"
    again = run_dag("mlops_rollback__churn_classifier", None, conf={"version": 2, "reason": "v2 again"})
    assert again.state == "success"
    rollbacks = [r for r in trained.hook.registry.audit_records(MODEL) if r["action"] == "rollback"]
    assert [(r["version"], r["reason"]) for r in rollbacks] == [
        ("2", "v1 misbehaves in production"),
        ("1", "restore"),
        ("2", "v2 again"),
    ]
    back = run_dag("mlops_rollback__churn_classifier", None, conf={"version": 1, "reason": "restore again"})
    assert back.state == "success"


def test_too_few_partitions_fail_with_a_clear_reason(trained):
    result = run_dag("mlops_train__churn_classifier", (FIRST_DAY + timedelta(days=3)).isoformat(), conf=CONF)
    assert result.state == "failed"
    assert result.task_states["prepare"] == "failed"
    assert result.task_states["register"] in ("upstream_failed", "None")


@pytest.mark.parametrize(
    "conf",
    [
        {"window_days": 1},
        {"grid": {"C": "not-a-list"}},
        {"force_promote": "yes"},
        {"report_uri": "http://elsewhere/x"},
    ],
)
def test_invalid_conf_is_refused_before_anything_runs(conf, airflow_db):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        run_dag("mlops_train__churn_classifier", LAST_DAY.isoformat(), conf=conf)


def test_a_conf_key_that_is_not_a_param_fails_the_first_task(trained):
    client = trained.hook.client
    before = {(v.version, tuple(sorted(v.aliases))) for v in client.search_model_versions(f"name='{MODEL}'")}

    result = run_dag("mlops_train__churn_classifier", LAST_DAY.isoformat(), conf={"windows_days": 5})

    assert result.state == "failed"
    assert result.task_states["prepare"] == "failed"
    assert "train" not in result.task_states or result.task_states["train"] != "success"
    after = {(v.version, tuple(sorted(v.aliases))) for v in client.search_model_versions(f"name='{MODEL}'")}
    assert after == before  # no version registered, no alias moved


def test_training_on_new_data_is_configured_per_model(tmp_path, airflow_db):
    import shutil

    from airflow.sdk import Asset

    from mlops_provider.pipelines import build_pipelines, train_dag_id
    from tests.support.dags import load_dag

    assert load_dag("mlops_train__churn_classifier").schedule is None
    shutil.copytree(REPO_ROOT / "include", tmp_path / "include", ignore=shutil.ignore_patterns("*.py"))
    model_file = tmp_path / "include" / "models" / "churn.yaml"
    model_file.write_text(model_file.read_text() + "\ntraining: {schedule: on_new_data}\n")
    schedule = build_pipelines(tmp_path / "include")[train_dag_id("churn_classifier")].schedule
    assert isinstance(schedule, Asset) and schedule.name == "mlops.churn.validated"


def _xcom(run_id: str, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id="mlops_train__churn_classifier", run_id=run_id, task_id=task_id, key=key)
            .one()
        )
        return XComModel.deserialize_value(row)


def test_a_run_with_a_drift_window_fits_on_post_change_rows_and_holds_out_only_post_change_rows(trained):
    change = [LAST_DAY - timedelta(days=2), LAST_DAY - timedelta(days=1), LAST_DAY]
    window = {"start": change[0].isoformat(), "end": change[-1].isoformat()}
    result = _run(trained, "drift", {"window": window, "reason": "Dataset drift (test)"})

    plan = _xcom(result.run_id, "prepare", "plan")
    post_change = [d.isoformat() for d in change]
    assert plan["split"]["rule"] == "post_change" and plan["split"]["change_days"] == post_change
    # Fit: every pre-change day whole, plus the fit part of each post-change day.
    assert [(p["ds"], p.get("split", {}).get("part")) for p in plan["fit"]] == [
        ((FIRST_DAY + timedelta(days=i)).isoformat(), None) for i in range(DAYS - 3)
    ] + [(ds, "fit") for ds in post_change]
    assert [(p["ds"], p["split"]["part"]) for p in plan["holdout"]] == [(ds, "holdout") for ds in post_change]
    assert [(p["ds"], p["split"]["part"]) for p in plan["selection"]] == [
        (ds, "selection") for ds in post_change
    ]
    assert len(json.dumps(plan)) < 16_000  # references and seeds, never data

    evaluation = _xcom(result.run_id, "evaluate")
    assert evaluation["split_rule"] == "post_change" and evaluation["holdout"] == post_change
    fit = read_recorded_partitions(trained.storage, "churn", plan["fit"])
    holdout = read_recorded_partitions(trained.storage, "churn", plan["holdout"])
    assert evaluation["holdout_rows"] == len(holdout) == pytest.approx(0.3 * 3 * ROWS, abs=3)
    assert set(holdout["snapshot_ts"].dt.date.astype(str)) == set(post_change)  # post-change only

    def rows(frame):  # customer ids repeat across days, not within one
        return set(zip(frame["snapshot_ts"].dt.date.astype(str), frame["customer_id"], strict=True))

    fitted_post_change = {row for row in rows(fit) if row[0] in post_change}
    assert len(fitted_post_change) == pytest.approx(0.5 * 3 * ROWS, abs=3)
    assert not fitted_post_change & rows(holdout)

    # Challenger and champion are scored on those same rows: the champion's score is reproducible.
    champion = evaluation["champion"]
    _, dataset = load_model_config(str(MODEL_CONFIG))
    X, y = features_and_target(holdout, dataset)
    proba = trained.hook.load_sklearn_model(MODEL, version=champion["version"]).predict_proba(X)[:, 1]
    assert classification_metrics(y, proba)["roc_auc"] == pytest.approx(
        champion["metrics"]["roc_auc"], abs=1e-12
    )
    # The candidate run records each post-change day once in its lineage.
    run = trained.hook.client.get_run(evaluation["challenger"]["run_id"])
    names = [d.dataset.name for d in run.inputs.dataset_inputs]
    assert names == [f"churn/ds={FIRST_DAY + timedelta(days=i)}" for i in range(DAYS)]
