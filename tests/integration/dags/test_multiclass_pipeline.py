"""A multiclass model through its generated training and drift DAGs (dag.test(), real MLflow, real fits).

No multiclass example ships, so the configuration is written to a temporary folder: the churn data's
contract type (three classes) predicted from the other features, and built with ``build_pipelines``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from include.example_data import churn
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from tests.conftest import REPO_ROOT
from tests.support.dags import pipeline_env

pytestmark = pytest.mark.integration

DATASET = "contracts"
MODEL = "contract_classifier"
CLASSES = ["month_to_month", "one_year", "two_year"]
FIRST_DAY = date(2026, 8, 3)
DAYS = 8  # fit 5, select on 1, hold out 2
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
ROWS = 2_000


def _write_configuration(folder) -> None:
    """The churn dataset file with contract_type as a three-class target, and a model trained on it."""
    dataset = yaml.safe_load((REPO_ROOT / "include" / "datasets" / "churn.yaml").read_text())
    dataset.update(
        name=DATASET,
        target={"column": "contract_type", "classes": CLASSES},
        expectations=str(REPO_ROOT / "include" / "expectations" / "churn.json"),
    )
    dataset["features"]["categorical"].remove("contract_type")
    model = {
        "name": MODEL,
        "dataset": f"../datasets/{DATASET}.yaml",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 500},
        "param_grid": {"C": [0.01, 1.0]},
        "window_days": DAYS,
        "holdout_days": 2,
        "gate": {"minimums": {"f1_macro": 0.4, "log_loss": 1.0}},
    }
    for kind, name, content in (("datasets", DATASET, dataset), ("models", MODEL, model)):
        (folder / kind).mkdir(parents=True)
        (folder / kind / f"{name}.yaml").write_text(yaml.safe_dump(content))


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_server, airflow_db):
    """The configuration's DAGs (the DAG folder for the module), DAYS validated partitions, mlflow_default."""
    from mlops_provider.pipelines import INVALID_DAG_ID, build_pipelines

    base = tmp_path_factory.mktemp("multiclass")
    _write_configuration(base / "config")
    # dag.test() runs DAGs that a configured DAG bundle holds: a second bundle, whose one file points
    # the factory at the configuration.
    (base / "dags").mkdir()
    (base / "dags" / "pipelines.py").write_text(
        "# Airflow DAGs (the DAG processor's safe mode reads files that name both)\n"
        "from mlops_provider.pipelines import build_pipelines\n"
        f"globals().update(build_pipelines({str(base / 'config')!r}))\n"
    )
    with pipeline_env(base / "data", mlflow_server, dag_folder=base / "dags"):
        storage = DatasetStorageHook(root_uri=f"file://{base / 'data'}")
        for offset in range(DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            storage.write_partition(DATASET, "validated", day, churn.generate_day(day, ROWS))
        dags = build_pipelines(base / "config")
        assert INVALID_DAG_ID not in dags, dags[INVALID_DAG_ID].problems
        yield SimpleNamespace(storage=storage, hook=MLflowHook(), dags=dags)


def _run(env, dag_id: str, conf: dict):
    day = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    run = env.dags[dag_id].test(logical_date=day, run_conf=conf)
    assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return run


def test_training_registers_a_multiclass_champion_that_serves_class_probabilities(env, tmp_path):
    import mlflow.pyfunc

    _run(env, f"mlops_train__{MODEL}", {"reason": "multiclass integration test"})
    hook = env.hook
    champion = hook.get_version_by_alias(MODEL, "champion")
    assert champion is not None and champion.tags["mlops.gate.decision"] == "promoted"
    assert "multiclass classification of 3 classes" in champion.description

    run = hook.client.get_run(champion.run_id)
    assert run.data.tags["mlops.task"] == "multiclass"
    metrics = run.data.metrics
    assert {"holdout_f1_macro", "holdout_roc_auc_ovr", "holdout_log_loss", "selection_f1_macro"} <= set(
        metrics
    )
    assert metrics["holdout_roc_auc_ovr"] > 0.7  # tenure says a lot about the contract
    plots = {a.path for a in hook.client.list_artifacts(champion.run_id, "evaluation")}
    assert {"evaluation/confusion.png", "evaluation/per_class.png"} <= plots
    summary = json.loads(
        hook.download_artifacts(champion.run_id, "evaluation/evaluation.json", tmp_path).read_text()
    )
    assert summary["confusion"]["classes"] == CLASSES
    assert [row["class"] for row in summary["per_class"]] == CLASSES

    frame = churn.generate_day(LAST_DAY + timedelta(days=1), 200).to_pandas()
    mlflow.set_tracking_uri(hook.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
        proba = np.asarray(served.predict(frame))
    finally:
        mlflow.set_tracking_uri(None)
    assert proba.shape == (200, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert served.metadata.signature.outputs.input_names() == CLASSES
    assert served.metadata.metadata == {"mlops_task": "multiclass", "mlops_classes": CLASSES}


def test_drift_check_compares_the_predicted_classes(env):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = _run(env, f"mlops_drift__{MODEL}", {"dry_run": True})
    with create_session() as session:
        row = session.query(XComModel).filter_by(run_id=run.run_id, task_id="check", key="return_value").one()
        summary = XComModel.deserialize_value(row)
    assert summary["status"] == "checked"
    assert summary["prediction"]["metric"] == "jensen_shannon"  # the predicted class, as a category
    report = json.loads((env.storage.report_path(DATASET, "drift", LAST_DAY) / "report.json").read_text())
    prediction = report["report"]["prediction"]
    assert prediction["kind"] == "categorical"
    assert set(prediction["distribution"]["labels"]) <= {*CLASSES, "(missing)", "(new)"}
