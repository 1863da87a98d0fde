"""A team's own configuration folder: two datasets and two models of different task types, end to end.

The folder holds a binary classifier (the churn files) and a regression (the bike-rental files),
renamed so that nothing here is the shipped example. A DAG file in a temporary DAG folder points the
factory at it, as a user of the installed provider would. Each pipeline runs with ``dag.test()``
against a real MLflow server and real storage; then one model's files are removed and the other
pipeline is untouched; then a broken file becomes one import error naming it.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from include.example_data import bike_rentals, churn
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.pipelines import drift_dag_id, ingest_dag_id, train_dag_id
from tests.conftest import REPO_ROOT
from tests.support.dags import parse_dags, pipeline_env, run_dag

pytestmark = pytest.mark.integration

FIRST_DAY = date(2026, 9, 1)
DAYS = 4
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
# name in the folder -> (shipped dataset file, shipped model file, new dataset name, new model name)
PIPELINES = {
    "subscribers": ("churn.yaml", "churn.yaml", "subscribers", "subscriber_churn"),
    "rentals": ("bike_rentals.yaml", "bike_rentals.yaml", "rentals", "rental_demand"),
}


def _write_configuration(include, shipped_dataset, shipped_model, dataset, model) -> None:
    source = REPO_ROOT / "include"
    text = (source / "datasets" / shipped_dataset).read_text()
    old_name = text.split("\nname: ", 1)[1].split("\n", 1)[0]
    (include / "datasets" / f"{dataset}.yaml").write_text(
        text.replace(f"\nname: {old_name}\n", f"\nname: {dataset}\n")
    )
    text = (source / "models" / shipped_model).read_text()
    old_model = text.split("\nname: ", 1)[1].split("\n", 1)[0]
    lines = []
    for line in text.replace(f"\nname: {old_model}\n", f"\nname: {model}\n").splitlines():
        key = line.split(":", 1)[0]
        if key == "dataset":
            line = f"dataset: ../datasets/{dataset}.yaml"
        elif key == "window_days":
            line = f"window_days: {DAYS}"
        elif key == "holdout_days":
            line = "holdout_days: 1"
        lines.append(line)
    (include / "models" / f"{model}.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def team(tmp_path_factory, airflow_db, mlflow_server):
    """The folder, its DAG folder, storage and MLflow, with one landed day per dataset."""
    home = tmp_path_factory.mktemp("team")
    include = home / "include"
    for folder in ("datasets", "models"):
        (include / folder).mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "include" / "expectations", include / "expectations")
    for shipped_dataset, shipped_model, dataset, model in PIPELINES.values():
        _write_configuration(include, shipped_dataset, shipped_model, dataset, model)
    dags = home / "dags"
    dags.mkdir()
    (dags / "team_pipelines.py").write_text(
        '"""The team\'s airflow DAGs."""\nfrom mlops_provider.pipelines import build_pipelines\n\n'
        f"globals().update(build_pipelines({str(include)!r}))\n"
    )
    root = f"file://{home / 'data'}"
    with pipeline_env(home / "data", mlflow_server, dag_folder=dags):
        churn.write_days(f"{home / 'data'}/landing/churn", FIRST_DAY, 1, rows_per_day=2_000, exact_rows=True)
        bike_rentals.write_days(f"{home / 'data'}/landing/bike_rentals", FIRST_DAY, 1, station_count=120)
        yield SimpleNamespace(
            include=include, dags=dags, storage=DatasetStorageHook(root_uri=root), hook=MLflowHook()
        )


def test_the_folder_gives_one_set_of_dags_per_file(team):
    bag = parse_dags(team.dags)
    assert bag.import_errors == {}
    expected = {ingest_dag_id("subscribers"), ingest_dag_id("rentals")}
    for model in ("subscriber_churn", "rental_demand"):
        expected |= {train_dag_id(model), drift_dag_id(model), f"mlops_rollback__{model}"}
    assert set(bag.dags) == expected


@pytest.mark.parametrize("dataset", ["subscribers", "rentals"])
def test_each_dataset_is_ingested_and_validated(team, dataset):
    result = run_dag(ingest_dag_id(dataset), FIRST_DAY.isoformat(), dag_folder=team.dags)

    assert result.state == "success", result
    manifest = team.storage.read_manifest(dataset, "validated", FIRST_DAY)
    assert manifest is not None and manifest.row_count > 1_000
    assert manifest.produced_by["dag_id"] == ingest_dag_id(dataset)


def _publish_more_days(team) -> None:
    for offset in range(1, DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        team.storage.write_partition("subscribers", "validated", day, churn.generate_day(day, 2_000))
        team.storage.write_partition(
            "rentals", "validated", day, bike_rentals.generate_day(day, station_count=120)
        )


@pytest.mark.parametrize(
    ("model", "task", "metrics"),
    [
        ("subscriber_churn", "binary", {"roc_auc", "log_loss"}),
        ("rental_demand", "regression", {"rmse", "r2", "mae"}),
    ],
)
def test_each_model_is_trained_registered_and_checked_for_drift(team, model, task, metrics):
    if team.storage.read_manifest("rentals", "validated", LAST_DAY) is None:
        _publish_more_days(team)

    trained = run_dag(
        train_dag_id(model), LAST_DAY.isoformat(), conf={"reason": "team folder"}, dag_folder=team.dags
    )

    assert trained.state == "success", trained
    versions = team.hook.client.search_model_versions(f"name='{model}'")
    assert [v.version for v in versions] == ["1"]
    run = team.hook.client.get_run(versions[0].run_id)
    logged = set(run.data.metrics)
    assert all(any(name.endswith(metric) for name in logged) for metric in metrics), sorted(logged)
    assert versions[0].tags.get("mlops.task", task) == task

    checked = run_dag(drift_dag_id(model), LAST_DAY.isoformat(), conf={"dry_run": True}, dag_folder=team.dags)
    assert checked.state == "success", checked
    assert checked.task_states["check"] == "success"


def test_removing_one_models_files_leaves_the_other_pipeline_untouched(team):
    before = team.storage.read_manifest("subscribers", "validated", FIRST_DAY)
    champion = team.hook.get_version_by_alias("subscriber_churn", "champion")
    (team.include / "models" / "rental_demand.yaml").unlink()
    (team.include / "datasets" / "rentals.yaml").unlink()

    bag = parse_dags(team.dags)

    assert bag.import_errors == {}
    assert {d for d in bag.dags if "rental" in d} == set()
    assert {ingest_dag_id("subscribers"), train_dag_id("subscriber_churn")} <= set(bag.dags)
    assert team.storage.read_manifest("subscribers", "validated", FIRST_DAY) == before
    assert team.hook.get_version_by_alias("subscriber_churn", "champion") == champion
    result = run_dag(ingest_dag_id("subscribers"), FIRST_DAY.isoformat(), dag_folder=team.dags)
    assert result.state == "success", result


def test_a_broken_file_is_one_import_error_naming_it_and_the_rest_still_loads(team):
    broken = team.include / "models" / "broken.yaml"
    broken.write_text(
        "name: broken\ndataset: ../datasets/subscribers.yaml\nestimator: sklearn.linear_model.Ridge\n"
        "windows_days: 3\nholdout_days: 1\n"
    )
    try:
        bag = parse_dags(team.dags)
    finally:
        broken.unlink()

    (error,) = bag.import_errors.values()
    assert str(broken) in error
    assert "unknown key 'windows_days' in the top level (did you mean 'window_days'?)" in error
    assert "'window_days' is a required property" in error
    assert {ingest_dag_id("subscribers"), train_dag_id("subscriber_churn")} <= set(bag.dags)
