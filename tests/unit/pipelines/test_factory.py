"""build_pipelines: one set of DAGs per configuration file, broken files reported, nothing heavy loaded."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from mlops_provider.pipelines import INVALID_DAG_ID, build_pipelines
from mlops_provider.pipelines.factory import read_pipelines
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CHURN_DAGS = {
    "mlops_ingest__churn",
    "mlops_train__churn_classifier",
    "mlops_drift__churn_classifier",
    "mlops_rollback__churn_classifier",
}


@pytest.fixture
def config_dir(tmp_path):
    """A folder holding a copy of the churn example's configuration (dataset, model, expectations)."""
    target = tmp_path / "include"
    for relative in ("datasets/churn.yaml", "models/churn.yaml", "expectations/churn.json"):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "include" / relative, target / relative)
    return target


def add_second_pipeline(config_dir, name: str = "orders", **extra) -> None:
    """A second dataset (daily orders, amount regression target) and a model trained on it."""
    (config_dir / "datasets" / f"{name}.yaml").write_text(
        textwrap.dedent(
            f"""
            name: {name}
            source: {{uri: "{{{{ data_root }}}}/landing/{name}/{{{{ ds }}}}.csv", format: csv}}
            schema: {{order_id: string, ts: timestamp, items: int64, channel: string, amount: float64}}
            keys: [order_id]
            timestamp: ts
            timezone: Europe/Paris
            target: {{column: amount}}
            features: {{numeric: [items], categorical: [channel]}}
            expectations: ../expectations/churn.json
            owner: shop-data
            tags: [shop]
            ingest: {{schedule: "0 3 * * *", catchup: true, max_active_runs: 2, start_date: 2026-11-01}}
            """
        )
    )
    (config_dir / "models" / f"{name}_amount.yaml").write_text(
        textwrap.dedent(
            f"""
            name: {name}_amount
            dataset: ../datasets/{name}.yaml
            estimator: sklearn.linear_model.Ridge
            window_days: 14
            holdout_days: 2
            training: {{schedule: on_new_data}}
            drift: {{schedule: "@weekly", window_days: 7, cooldown_days: 3, thresholds: {{psi: 0.3}}, policy: {{weighting: uniform, prediction_drift: false}}}}
            """
        )
        + extra.get("model_extra", "")
    )


def test_the_shipped_configuration_gives_a_set_of_pipelines_per_file():
    dags = build_pipelines(REPO_ROOT / "include")
    assert set(dags) >= CHURN_DAGS
    assert INVALID_DAG_ID not in dags
    datasets = len(list((REPO_ROOT / "include" / "datasets").glob("*.yaml")))
    models = len(list((REPO_ROOT / "include" / "models").glob("*.yaml")))
    assert len(dags) == datasets + 3 * models


def test_every_setting_comes_from_the_file(config_dir):
    add_second_pipeline(config_dir)
    dags = build_pipelines(config_dir)

    assert set(dags) == CHURN_DAGS | {
        "mlops_ingest__orders",
        "mlops_train__orders_amount",
        "mlops_drift__orders_amount",
        "mlops_rollback__orders_amount",
    }
    ingest = dags["mlops_ingest__orders"]
    assert ingest.timetable.expression == "0 3 * * *"
    assert (ingest.catchup, ingest.max_active_runs, ingest.start_date.date().isoformat()) == (
        True,
        2,
        "2026-11-01",
    )
    assert ingest.default_args["owner"] == "shop-data"
    assert {"mlops", "ingest", "orders", "shop"} <= set(ingest.tags)
    (outlet,) = ingest.get_task("validate").outlets
    assert outlet.name == "mlops.orders.validated"  # declared when parsed, no alias

    train = dags["mlops_train__orders_amount"]
    assert train.schedule.name == "mlops.orders.validated"  # training.schedule: on_new_data
    drift = dags["mlops_drift__orders_amount"]
    # The file says @weekly: Airflow 3.3 expands the preset to its cron expression, 3.2 keeps it.
    assert drift.timetable.expression in {"0 0 * * 0", "@weekly"}
    assert drift.params["window_days"] == 7 and drift.params["cooldown_days"] == 3
    assert drift.params["thresholds"] == {"psi": 0.3}
    assert drift.params["policy"] == {"weighting": "uniform", "prediction_drift": False}
    assert drift.get_task("check").policy == "{{ params.policy }}"
    assert drift.get_task("trigger_retrain").trigger_dag_id == "mlops_train__orders_amount"
    assert drift.get_task("decide").train_dag_id == "mlops_train__orders_amount"
    assert dags["mlops_train__churn_classifier"].schedule is None  # the churn model is unchanged


def test_the_policy_param_spells_the_weightings_core_drift_knows():
    from mlops_provider.core.drift import WEIGHTINGS
    from mlops_provider.pipelines.drift import POLICY_WEIGHTINGS

    assert POLICY_WEIGHTINGS == WEIGHTINGS


def test_removing_a_file_removes_its_dags_and_nothing_else(config_dir):
    add_second_pipeline(config_dir)
    (config_dir / "models" / "orders_amount.yaml").unlink()
    assert set(build_pipelines(config_dir)) == CHURN_DAGS | {"mlops_ingest__orders"}
    for path in (config_dir / "models" / "churn.yaml", config_dir / "datasets" / "churn.yaml"):
        path.unlink()
    assert set(build_pipelines(config_dir)) == {"mlops_ingest__orders"}  # works without the example


def test_an_empty_folder_has_no_pipelines(tmp_path):
    assert build_pipelines(tmp_path) == {}


def test_a_broken_file_is_named_with_every_problem_and_the_rest_still_loads(config_dir):
    add_second_pipeline(config_dir)
    bad = config_dir / "datasets" / "orders.yaml"
    bad.write_text(
        bad.read_text().replace("keys:", "key_columns:").replace("timezone: Europe/Paris", "timezone: Mars")
    )

    pipelines = read_pipelines(config_dir)

    assert set(pipelines.dags) == CHURN_DAGS  # the model of the broken dataset is left out too
    assert set(pipelines.problems) == {str(bad), str(config_dir / "models" / "orders_amount.yaml")}
    problems = pipelines.problems[str(bad)]
    assert any("unknown key 'key_columns'" in p and "did you mean 'keys'" in p for p in problems)
    model_problems = " ".join(pipelines.problems[str(config_dir / "models" / "orders_amount.yaml")])
    assert "orders.yaml" in model_problems
    dags = build_pipelines(config_dir)
    assert INVALID_DAG_ID in dags
    with pytest.raises(ValueError, match="2 configuration file") as caught:
        dags[INVALID_DAG_ID].validate()
    assert str(bad) in str(caught.value) and "key_columns" in str(caught.value)


@pytest.mark.parametrize(
    ("model_extra", "message"),
    [
        ("drift: {schedule: 'every day'}\n", "invalid schedule 'every day'"),
        ("training: {timezone: Moon/Base}\n", "'training.timezone' 'Moon/Base' is not an IANA time zone"),
        ("gate: {margins: 0.1}\n", "unknown key 'margins' in 'gate' (did you mean 'margin'?)"),
    ],
)
def test_problems_of_a_model_file(config_dir, model_extra, message):
    add_second_pipeline(config_dir, model_extra=model_extra)
    model_file = config_dir / "models" / "orders_amount.yaml"
    text = model_file.read_text()
    if model_extra.startswith(("drift", "training")):  # replace the block, keys must be unique
        key = model_extra.split(":")[0]
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + "\n"
        model_file.write_text(text + model_extra)
    problems = read_pipelines(config_dir).problems[str(model_file)]
    assert any(message in p for p in problems), problems


def test_two_files_with_one_name_are_refused(config_dir):
    shutil.copy(config_dir / "models" / "churn.yaml", config_dir / "models" / "churn_copy.yaml")
    pipelines = read_pipelines(config_dir)
    assert set(pipelines.dags) == CHURN_DAGS
    (problem,) = pipelines.problems[str(config_dir / "models" / "churn_copy.yaml")]
    assert "already generated by another file" in problem


def test_a_model_whose_dataset_is_not_in_the_folder_is_refused(config_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(config_dir / "datasets", elsewhere / "datasets")
    shutil.copytree(config_dir / "expectations", elsewhere / "expectations")
    model = config_dir / "models" / "churn.yaml"
    model.write_text(
        model.read_text().replace("../datasets/churn.yaml", str(elsewhere / "datasets" / "churn.yaml"))
    )
    (problem,) = read_pipelines(config_dir).problems[str(model)]
    assert "not a valid dataset file of this folder" in problem


def test_building_the_pipelines_loads_no_heavy_package(config_dir):
    add_second_pipeline(config_dir)
    probe = (
        "import sys\n"
        "from mlops_provider.pipelines import build_pipelines\n"
        f"dags = build_pipelines({str(config_dir)!r})\n"
        "assert 'mlops_ingest__orders' in dags and 'mlops_invalid_configuration' not in dags, sorted(dags)\n"
        "heavy = ('pandas', 'sklearn', 'scipy', 'mlflow', 'great_expectations', 'boto3', 'pyarrow', 'numpy',\n"
        "         'airflow.providers.standard.operators.trigger_dagrun')\n"
        "print(','.join(sorted(h for h in heavy if h in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1:] in ([], [""])
