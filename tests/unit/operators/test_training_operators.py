"""MLflowPrepareTrainingOperator and SklearnTrainCandidateOperator, run as in a task against a fake hook.

``execute`` runs with a minimal context on real local-file storage under a tmp ``data_root`` (six
small days of the churn example) and an in-memory :class:`FakeMLflowHook` injected at the hook
boundary (``ModelOperator.mlflow_hook``); the fit is real (a two-candidate logistic regression).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import yaml

from include.example_data import churn
from mlops_provider.core import registry_names as names
from mlops_provider.core.training import POST_CHANGE_RULE, TIME_RULE
from mlops_provider.exceptions import InsufficientDataError
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.links.mlflow import RUN_URL_KEY
from mlops_provider.operators._model import ModelOperator
from mlops_provider.operators.training import (
    PLAN_KEY,
    MLflowPrepareTrainingOperator,
    SklearnTrainCandidateOperator,
    end_training_run_on_failure,
)
from tests.conftest import REPO_ROOT
from tests.unit.operators.fake_mlflow import FakeMLflowHook

pytestmark = pytest.mark.unit

MODEL = "churn_classifier"
DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(6)]
ROWS = 400
AIRFLOW_RUN = "manual__2026-03-06"


def write_model_config(folder, **overrides) -> str:
    """The shipped churn model file, made small (2 candidates, 2 holdout days, a 300-row reference)."""
    config = yaml.safe_load((REPO_ROOT / "include" / "models" / "churn.yaml").read_text())
    config.update(
        dataset=str(REPO_ROOT / "include" / "datasets" / "churn.yaml"),
        param_grid={"C": [0.1, 1.0]},
        window_days=8,
        holdout_days=2,
        reference_sample_rows=300,
        **overrides,
    )
    path = folder / "churn_model.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def publish(storage: DatasetStorageHook, days=DAYS, rows: int = ROWS, **generate) -> None:
    """Publish ``days`` of the churn example as validated partitions."""
    for day in days:
        storage.write_partition("churn", "validated", day, churn.generate_day(day, rows, **generate))


class Task:
    """A minimal task context; the task instance records the XComs pushed."""

    def __init__(self, task_id: str, *, map_index: int = -1, try_number: int = 1, run_id: str = AIRFLOW_RUN):
        self.xcom: dict[str, object] = {}
        self.ti = SimpleNamespace(
            dag_id=f"mlops_train__{MODEL}", run_id=run_id, task_id=task_id, try_number=try_number,
            map_index=map_index, xcom_push=lambda key, value: self.xcom.__setitem__(key, value),
        )  # fmt: skip
        self.context = {"ti": self.ti, "logical_date": datetime(2026, 3, 6, tzinfo=timezone.utc)}


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeMLflowHook:
    hook = FakeMLflowHook(tmp_path / "mlflow")
    monkeypatch.setattr(ModelOperator, "mlflow_hook", lambda self: hook)
    return hook


@pytest.fixture(autouse=True)
def saved_models(monkeypatch) -> list[dict]:
    """MLflow's model writer replaced (its import alone costs seconds; the integration tests run it):
    each call is recorded (model, task, classes, input example) and writes an ``MLmodel`` file
    naming the task and classes."""
    from mlops_provider.core import model_io

    saved: list[dict] = []

    def save(model, path, *, input_example, task="binary", classes=(0, 1)):
        saved.append({"model": model, "task": task, "classes": list(classes), "example": input_example})
        path.mkdir(parents=True)
        (path / "MLmodel").write_text(yaml.safe_dump({"mlops_task": task, "mlops_classes": list(classes)}))

    monkeypatch.setattr(model_io, "save_sklearn_model", save)
    return saved


@pytest.fixture
def storage(tmp_path) -> DatasetStorageHook:
    storage = DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}")
    publish(storage)
    return storage


@pytest.fixture
def config(tmp_path) -> str:
    return write_model_config(tmp_path)


def prepare(config: str, storage: DatasetStorageHook, **kwargs) -> MLflowPrepareTrainingOperator:
    return MLflowPrepareTrainingOperator(
        task_id="prepare", model_config=config, data_root=storage.uri_of(storage.root), **kwargs
    )


def planned(config: str, storage: DatasetStorageHook, run_id: str = AIRFLOW_RUN, **kwargs) -> dict:
    task = Task("prepare", run_id=run_id)
    prepare(config, storage, **kwargs).execute(task.context)
    return task.xcom[PLAN_KEY]


def train(
    config: str, storage: DatasetStorageHook, plan: dict, index: int = 0
) -> SklearnTrainCandidateOperator:
    return SklearnTrainCandidateOperator(
        task_id="train", model_config=config, data_root=storage.uri_of(storage.root),
        plan=plan, candidate=plan["candidates"][index],
    )  # fmt: skip


# -- prepare -----------------------------------------------------------------------------------------


def test_prepare_plans_the_time_split_and_opens_the_training_run(fake, storage, config):
    task = Task("prepare")

    candidates = prepare(config, storage).execute(task.context)

    plan = task.xcom[PLAN_KEY]
    assert (
        candidates
        == plan["candidates"]
        == [{"index": 0, "params": {"C": 0.1}}, {"index": 1, "params": {"C": 1.0}}]
    )
    assert plan["window"] == {"start": "2026-02-27", "end": "2026-03-06", "days": 8}
    assert plan["split"] == {"rule": TIME_RULE, "change_days": []}
    assert [e["ds"] for e in plan["fit"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [e["ds"] for e in plan["selection"]] == ["2026-03-04"]
    assert [e["ds"] for e in plan["holdout"]] == ["2026-03-05", "2026-03-06"]
    first = plan["fit"][0]
    assert first == {
        "ds": "2026-03-01",
        "uri": storage.partition_uri("churn", "validated", DAYS[0]),
        "sha256": storage.read_manifest("churn", "validated", DAYS[0]).sha256,
        "rows": ROWS,
    }
    assert plan["experiment_id"] == fake.experiments[names.training_experiment(MODEL)]
    run = fake.run(plan["parent_run_id"])
    assert run.run_name == f"train {AIRFLOW_RUN}"
    assert {k: run.tags[k] for k in (names.ROLE_TAG, names.MODEL_TAG, names.AIRFLOW_RUN_ID_TAG)} == {
        names.ROLE_TAG: names.ROLE_TRAINING,
        names.MODEL_TAG: MODEL,
        names.AIRFLOW_RUN_ID_TAG: AIRFLOW_RUN,
    }
    assert run.tags[names.AIRFLOW_TASK_ID_TAG] == "prepare" and run.tags[names.AIRFLOW_TRY_NUMBER_TAG] == "1"
    assert run.params == {
        "window_start": "2026-02-27",
        "window_end": "2026-03-06",
        "window_days": "8",
        "grid_size": "2",
        "split_rule": TIME_RULE,
    }
    assert task.xcom[RUN_URL_KEY] == fake.run_url(plan["experiment_id"], plan["parent_run_id"])


def test_a_retried_prepare_reuses_the_training_run_of_its_dag_run(fake, storage, config):
    first = Task("prepare")
    prepare(config, storage).execute(first.context)
    retry = Task("prepare", try_number=2)
    prepare(config, storage).execute(retry.context)

    assert retry.xcom[PLAN_KEY]["parent_run_id"] == first.xcom[PLAN_KEY]["parent_run_id"]
    assert len(fake.runs) == 1
    assert fake.run(first.xcom[PLAN_KEY]["parent_run_id"]).tags[names.AIRFLOW_TRY_NUMBER_TAG] == "1"


def test_a_change_window_splits_the_changed_days_by_row(fake, storage, config):
    plan = planned(config, storage, change_window={"start": "2026-03-05", "end": "2026-03-06"})

    assert plan["split"]["rule"] == POST_CHANGE_RULE
    assert plan["split"]["change_days"] == ["2026-03-05", "2026-03-06"]
    assert plan["split"]["stratify_by"] == "churned" and plan["split"]["seed"] == 42
    assert [(e["ds"], e.get("split", {}).get("part")) for e in plan["fit"]] == [
        ("2026-03-01", None), ("2026-03-02", None), ("2026-03-03", None), ("2026-03-04", None),
        ("2026-03-05", "fit"), ("2026-03-06", "fit"),
    ]  # fmt: skip
    assert [(e["ds"], e["split"]["part"]) for e in plan["holdout"]] == [
        ("2026-03-05", "holdout"),
        ("2026-03-06", "holdout"),
    ]


def test_too_few_days_fail_before_any_run_is_opened(fake, tmp_path, config):
    storage = DatasetStorageHook(root_uri=f"file://{tmp_path / 'sparse'}")
    publish(storage, DAYS[:3])

    with pytest.raises(
        InsufficientDataError, match="holds 3 validated partitions of 'churn'; training needs at least 4"
    ):
        prepare(config, storage).execute(Task("prepare").context)
    assert fake.runs == {}


def test_the_failure_callback_ends_the_dag_runs_training_run_failed(fake, storage, config):
    plan = planned(config, storage)
    other = planned(config, storage, run_id="manual__other")
    task = SimpleNamespace(model_config=config, mlflow_hook=lambda: fake)

    end_training_run_on_failure({"task": task, "ti": SimpleNamespace(run_id=AIRFLOW_RUN)})

    assert fake.run(plan["parent_run_id"]).status == "FAILED"
    assert fake.run(other["parent_run_id"]).status == "RUNNING"


# -- train a candidate -------------------------------------------------------------------------------


def test_a_candidate_is_a_nested_run_with_metrics_model_reference_and_lineage(
    fake, storage, config, saved_models
):
    plan = planned(config, storage)
    task = Task("train", map_index=1)

    result = train(config, storage, plan, index=1).execute(task.context)

    run = fake.run(result["run_id"])
    assert result["id"] == 1 and result["params"] == {"C": 1.0}
    assert run.status == "FINISHED" and run.run_name == "candidate 1"
    assert run.tags[names.PARENT_RUN_ID_TAG] == plan["parent_run_id"]
    assert run.tags[names.ROLE_TAG] == names.ROLE_CANDIDATE and run.tags[names.TASK_TAG] == "binary"
    assert run.tags[names.AIRFLOW_MAP_INDEX_TAG] == "1" and run.tags[names.AIRFLOW_TRY_NUMBER_TAG] == "1"
    assert run.params["C"] == "1.0" and run.params["max_iter"] == "1000"
    assert 0.5 < result["metrics"]["roc_auc"] <= 1
    assert run.metric("selection_roc_auc") == pytest.approx(result["metrics"]["roc_auc"])
    [saved] = saved_models
    assert (saved["task"], saved["classes"], len(saved["example"])) == ("binary", [0, 1], 5)
    assert saved["model"].predict_proba(saved["example"]).shape == (5, 2)
    assert yaml.safe_load(fake.artifact(run.run_id, f"{names.MODEL_ARTIFACT_PATH}/MLmodel").read_text()) == {
        "mlops_task": "binary",
        "mlops_classes": [0, 1],
    }
    assert any(fake.artifact(run.run_id, names.REFERENCE_ARTIFACT_PATH).iterdir())
    lineage = plan["fit"] + plan["selection"]
    assert [(i["ds"], i["sha256"], i["context"]) for i in run.inputs] == [
        (e["ds"], e["sha256"], "training") for e in lineage
    ]
    assert run.tags[names.PARTITIONS_TAG] == "churn@" + ",".join(
        f"{e['ds']}:{e['sha256'][:12]}" for e in lineage
    )
    assert task.xcom[RUN_URL_KEY] == fake.run_url(plan["experiment_id"], run.run_id)


def test_a_day_split_by_row_is_recorded_once_in_the_lineage(fake, storage, config):
    plan = planned(config, storage, change_window={"start": "2026-03-06", "end": "2026-03-06"})

    result = train(config, storage, plan).execute(Task("train", map_index=0).context)

    days = [i["ds"] for i in fake.run(result["run_id"]).inputs]
    assert days == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"]


@pytest.mark.parametrize(
    ("error", "status"),
    [(ValueError("the fit broke"), "FAILED"), (KeyboardInterrupt(), "KILLED")],
)
def test_a_failed_try_ends_its_candidate_run_and_the_retry_reuses_it(
    fake, storage, config, monkeypatch, error, status
):
    plan = planned(config, storage)
    operator = train(config, storage, plan)
    outcomes = iter([error, {"roc_auc": 0.7}])

    def fit_and_log(*args):
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(operator, "_fit_and_log", fit_and_log)

    with pytest.raises(type(error)):
        operator.execute(Task("train", map_index=0).context)
    [failed] = [r for r in fake.runs.values() if r.tags.get(names.ROLE_TAG) == names.ROLE_CANDIDATE]
    assert failed.status == status

    result = operator.execute(Task("train", map_index=0, try_number=2).context)

    assert result["run_id"] == failed.run_id and result["metrics"] == {"roc_auc": 0.7}
    assert failed.status == "FINISHED" and failed.tags[names.AIRFLOW_TRY_NUMBER_TAG] == "2"
