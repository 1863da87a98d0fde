"""The regression example end to end with dag.test(): bike_rentals ingested and validated, bike_demand
trained and registered (regression metrics, plots, signature), a worse run rejected, drift checked.

The tests of this module share one data root and one registry history, in order.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from include.example_data import bike_rentals as bikes
from mlops_provider.core.evaluation import regression_metrics, task_metrics
from mlops_provider.core.training import features_and_target
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators._model import load_model_config, read_recorded_partitions
from tests.conftest import REPO_ROOT
from tests.support.dags import pipeline_env, run_dag

pytestmark = pytest.mark.integration

DATASET = "bike_rentals"
MODEL = "bike_demand"
MODEL_CONFIG = REPO_ROOT / "include" / "models" / "bike_rentals.yaml"
STATIONS = 80  # ~1,860 rows a day: inside the suite's bounds
FIRST_DAY = date(2026, 4, 6)  # a Monday in spring
TRAIN_DAYS = 10  # fit 6, select on 1, hold out 3
LAST_TRAIN_DAY = FIRST_DAY + timedelta(days=TRAIN_DAYS - 1)
INGESTED = 2  # the first days go through mlops_ingest__bike_rentals; the others are published directly
DRIFT_DAYS = 7  # the model's drift window
LAST_DRIFTED = LAST_TRAIN_DAY + timedelta(days=DRIFT_DAYS)
DRIFT = bikes.DriftPlan(LAST_TRAIN_DAY + timedelta(days=1), ["heatwave", "rainy_season", "new_district"])


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_server, airflow_db):
    """Landing files for the first days, validated partitions for the rest, mlflow_default -> the server."""
    root = tmp_path_factory.mktemp("regression") / "data"
    with pipeline_env(root, mlflow_server):
        bikes.write_days(root / "landing" / DATASET, FIRST_DAY, INGESTED, station_count=STATIONS)
        storage = DatasetStorageHook(root_uri=f"file://{root}")
        for offset in range(INGESTED, TRAIN_DAYS + DRIFT_DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            storage.write_partition(DATASET, "validated", day, bikes.generate_day(day, STATIONS, drift=DRIFT))
        yield SimpleNamespace(storage=storage, hook=MLflowHook())


def _train(conf: dict | None = None):
    result = run_dag(
        f"mlops_train__{MODEL}",
        LAST_TRAIN_DAY.isoformat(),
        conf={"window_days": TRAIN_DAYS, "reason": "regression example test", **(conf or {})},
    )
    assert result.state == "success", result
    return result


def _drift_summary(result) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=f"mlops_drift__{MODEL}", run_id=result.run_id, task_id="check", key="return_value"
            )
            .one()
        )
        return XComModel.deserialize_value(row)


def test_ingest_validates_and_publishes_the_landing_files(env):
    for offset in range(INGESTED):
        day = FIRST_DAY + timedelta(days=offset)
        result = run_dag(f"mlops_ingest__{DATASET}", day.isoformat())
        assert result.state == "success", result
        manifest = env.storage.read_manifest(DATASET, "validated", day)
        assert manifest.row_count == bikes.generate_day(day, STATIONS).num_rows
        report = env.storage.report_path(DATASET, "validation", day)
        assert json.loads((report / "result.json").read_text())["result"]["success"] is True
    assert env.storage.list_partitions(DATASET, "quarantine") == []


def test_training_registers_a_regression_champion(env, tmp_path):
    _train()
    hook, client = env.hook, env.hook.client
    champion = hook.get_version_by_alias(MODEL, "champion")
    assert champion is not None and champion.version == "1"
    assert champion.tags["mlops.gate.decision"] == "promoted"
    assert "**Task:** regression" in champion.description and "| rmse |" in champion.description

    run = client.get_run(champion.run_id)
    assert run.data.tags["mlops.task"] == "regression"
    names = set(task_metrics("regression"))
    assert {f"holdout_{n}" for n in names} | {f"selection_{n}" for n in names} <= set(run.data.metrics)
    assert not any("roc_auc" in name for name in run.data.metrics)
    assert run.data.metrics["holdout_r2"] > 0.4 and run.data.metrics["holdout_rmse"] < 8.0
    plots = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {"evaluation/predicted_vs_actual.png", "evaluation/residuals.png"} <= plots
    summary = json.loads(
        hook.download_artifacts(champion.run_id, "evaluation/evaluation.json", tmp_path).read_text()
    )
    assert summary["task"] == "regression" and set(summary["residuals"]) >= {"mean", "p05", "p95"}


def test_the_served_champion_predicts_values_that_reproduce_its_holdout_metrics(env):
    import mlflow.pyfunc

    champion = env.hook.get_version_by_alias(MODEL, "champion")
    model, dataset = load_model_config(str(MODEL_CONFIG))
    holdout = [LAST_TRAIN_DAY - timedelta(days=i) for i in range(model.holdout_days)][::-1]
    parts = [
        {"ds": d.isoformat(), "sha256": env.storage.read_manifest(DATASET, "validated", d).sha256}
        for d in holdout
    ]
    X, y = features_and_target(read_recorded_partitions(env.storage, DATASET, parts), dataset)

    mlflow.set_tracking_uri(env.hook.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        predicted = np.asarray(served.predict(X))
    finally:
        mlflow.set_tracking_uri(None)
    assert predicted.shape == (len(X),)
    assert served.metadata.metadata == {"mlops_task": "regression", "mlops_classes": []}
    assert not served.metadata.signature.outputs.has_input_names()  # one value: the predicted rentals
    logged = env.hook.client.get_run(champion.run_id).data.metrics
    for name, value in regression_metrics(y, predicted).items():
        assert value == pytest.approx(logged[f"holdout_{name}"], rel=1e-9), name


def test_a_worse_regressor_is_registered_but_not_promoted(env):
    _train({"grid": {"learning_rate": [0.0005]}})  # barely moves from the mean in 60 rounds

    assert env.hook.get_version_by_alias(MODEL, "champion").version == "1"
    challenger = env.hook.get_version_by_alias(MODEL, "challenger")
    assert challenger.version == "2" and challenger.tags["mlops.gate.decision"] == "rejected"
    assert "fails the minimums" in challenger.tags["mlops.gate.reason"]
    assert "r2" in challenger.tags["mlops.gate.reason"]


def test_drift_check_compares_features_and_predicted_values(env):
    clean = run_dag(f"mlops_drift__{MODEL}", LAST_TRAIN_DAY.isoformat(), conf={"dry_run": True})
    assert clean.state == "success", clean
    summary = _drift_summary(clean)
    assert summary["status"] == "checked" and summary["drifted"] is False
    assert summary["prediction"]["metric"] == "wasserstein_norm"  # the predicted value, as numbers

    drifted = run_dag(f"mlops_drift__{MODEL}", LAST_DRIFTED.isoformat(), conf={"dry_run": True})
    assert drifted.state == "success", drifted
    assert drifted.task_states["trigger_retrain"] == "skipped"  # a dry run
    summary = _drift_summary(drifted)
    assert summary["drifted"] is True
    assert {"temperature_c", "humidity", "district", "weather"} <= set(summary["drifted_features"])
    assert "docks" not in summary["drifted_features"]  # station attributes stay put
    report = json.loads((env.storage.report_path(DATASET, "drift", LAST_DRIFTED) / "report.json").read_text())
    assert report["report"]["prediction"]["kind"] == "numeric"
