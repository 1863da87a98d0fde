"""MLflowDriftCheckOperator and DriftRetrainBranchOperator, run as in a task against a fake hook.

The champion is trained by the training operators themselves (six small days of the churn example,
a fake hook injected at ``ModelOperator.mlflow_hook``, MLflow's model writer replaced), so the check
reads exactly the reference profile training stores. The check then runs on three later days of
real local-file storage under a tmp ``data_root``, stable or with a shifted feature.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from include.example_data.churn import DriftPlan
from mlops_provider.core import registry_names as names
from mlops_provider.links.reports import REPORT_URL_KEY, DriftReportLink
from mlops_provider.operators.drift import DriftRetrainBranchOperator, MLflowDriftCheckOperator
from tests.unit.operators import test_training_operators as training
from tests.unit.operators.test_training_operators import MODEL, Task, planned, publish, train

if TYPE_CHECKING:
    from mlops_provider.hooks.storage import DatasetStorageHook
    from tests.unit.operators.fake_mlflow import FakeMLflowHook

pytestmark = pytest.mark.unit

CHECK_DAY = date(2026, 3, 9)
CHECKED = [CHECK_DAY - timedelta(days=back) for back in (2, 1, 0)]  # window_days=3
TRAINING_WINDOW = "2026-02-27..2026-03-06"
HOLDOUT_ROC_AUC = 0.8

# The training tests' fixtures: the fake hook, storage with DAYS published, the model file, MLflow's
# model writer replaced (autouse).
fake, storage, config, saved_models = training.fake, training.storage, training.config, training.saved_models


@pytest.fixture
def champion(fake, storage, config, saved_models) -> str:
    """Version 1 of the model, alias champion: a candidate trained on ``DAYS``; its version number."""
    plan = planned(config, storage)
    run_id = train(config, storage, plan).execute(Task("train", map_index=0).context)["run_id"]
    fake.models[run_id] = saved_models[-1]["model"]
    fake.log_metrics(run_id, {"roc_auc": HOLDOUT_ROC_AUC}, prefix="holdout_")
    version = fake.add_version(MODEL, run_id, aliases=(names.CHAMPION,))
    fake.version(MODEL, version).tags[names.WINDOW_TAG] = TRAINING_WINDOW
    return version


def check(
    config: str, storage: DatasetStorageHook, run_id: str = "scheduled__2026-03-09"
) -> tuple[dict, Task]:
    task = Task("check", run_id=run_id)
    operator = MLflowDriftCheckOperator(
        task_id="check", model_config=config, data_root=storage.uri_of(storage.root),
        check_date=CHECK_DAY.isoformat(), window_days=3,
    )  # fmt: skip
    return operator.execute(task.context), task


def monitoring_runs(fake: FakeMLflowHook) -> list:
    return [r for r in fake.runs.values() if r.tags.get(names.ROLE_TAG) == names.ROLE_MONITORING]


def test_the_extra_link_is_the_drift_report_link():
    assert [type(link) for link in MLflowDriftCheckOperator.operator_extra_links] == [DriftReportLink]


def test_without_a_champion_nothing_is_compared(fake, storage, config):
    summary, task = check(config, storage)

    assert summary == {
        "model": MODEL,
        "dataset": "churn",
        "ds": "2026-03-09",
        "window": {"start": "2026-03-07", "end": "2026-03-09"},
        "status": "no_champion",
        "drifted": False,
        "message": f"No champion of {MODEL!r} yet: nothing to compare with; train one first.",
    }
    assert task.xcom == {} and fake.runs == {}


def test_without_data_in_the_window_nothing_is_compared(fake, storage, config, champion):
    runs = set(fake.runs)

    summary, task = check(config, storage)

    assert summary["status"] == "no_data" and summary["drifted"] is False
    assert (
        summary["message"] == "No validated partition of 'churn' in 2026-03-07..2026-03-09: nothing to check."
    )
    assert task.xcom == {} and set(fake.runs) == runs


def test_a_stable_window_is_checked_reported_and_logged_to_the_monitoring_run(
    fake, storage, config, champion
):
    publish(storage, CHECKED)

    summary, task = check(config, storage)

    assert summary["status"] == "checked" and summary["drifted"] is False
    assert summary["champion_version"] == champion
    assert summary["partitions"] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert summary["performance"]["metric"] == "roc_auc"
    assert summary["performance"]["champion_holdout"] == HOLDOUT_ROC_AUC
    report = storage.report_path("churn", "drift", CHECK_DAY)
    assert summary["report_uri"] == storage.uri_of(report)
    stored = json.loads((report / "report.json").read_text())
    assert (stored["model"], stored["champion_version"], stored["window"]) == (
        MODEL,
        champion,
        "2026-03-07..2026-03-09",
    )
    assert task.xcom[REPORT_URL_KEY] == "/mlops/reports/churn/drift/2026-03-09/report.html"

    [run] = monitoring_runs(fake)
    assert run.experiment_id == fake.experiments[names.monitoring_experiment(MODEL)]
    assert run.run_name == f"drift of {MODEL} v{champion}"
    assert run.tags[names.MODEL_TAG] == MODEL and run.tags[names.MODEL_VERSION_TAG] == champion
    assert run.tags[names.AIRFLOW_LAST_RUN_ID_TAG] == "scheduled__2026-03-09"
    assert run.status == "FINISHED"
    # step: days from the champion's training end (its window tag, 2026-03-06) to the check day
    assert run.metrics["drift_share"] == [(summary["share"], 3)]
    assert run.metrics["drift.monthly_charges.wasserstein_norm"][0][1] == 3
    # the realised performance: step = days from the training end to the newest scored day
    performance = summary["performance"]
    last = date.fromisoformat(performance["days"][-1])
    assert run.metrics["performance.rows"] == [(performance["rows"], (last - date(2026, 3, 6)).days)]
    assert run.metrics["performance.roc_auc"] == [(performance["value"], (last - date(2026, 3, 6)).days)]


def test_two_shifted_features_that_matter_make_the_dataset_drift(fake, storage, config, champion):
    shift = DriftPlan.parse(CHECKED[0], ["monthly_charges:shift=2", "tenure_months:shift=2"])
    publish(storage, CHECKED, drift=shift)

    summary, _ = check(config, storage)

    assert summary["drifted"] is True and summary["weighting"] == "importance"
    assert sorted(summary["drifted_features"]) == ["monthly_charges", "tenure_months"]
    assert summary["share"] == pytest.approx(
        summary["weights"]["monthly_charges"] + summary["weights"]["tenure_months"], abs=1e-3
    )
    assert summary["prediction"]["drifted"] is True


def test_a_rerun_of_the_day_logs_to_the_same_monitoring_run(fake, storage, config, champion):
    publish(storage, CHECKED)

    check(config, storage)
    check(config, storage, run_id="manual__again")

    [run] = monitoring_runs(fake)
    assert run.tags[names.AIRFLOW_LAST_RUN_ID_TAG] == "manual__again"
    assert [step for _, step in run.metrics["drift_share"]] == [3, 3]


# -- decide ------------------------------------------------------------------------------------------

DRIFTED = {
    "status": "checked",
    "model": MODEL,
    "ds": "2026-03-09",
    "drifted": True,
    "features": 12,
    "share": 0.5,
    "drift_share": 0.3,
    "drifted_features": ["monthly_charges"],
}


class Branch:
    """The decide task's context: XComs pushed, and training runs Airflow already holds (by run id)."""

    def __init__(self, existing_runs: int = 0) -> None:
        self.xcom: dict[str, object] = {}
        self.asked: list[dict] = []

        def get_dr_count(**query):
            self.asked.append(query)
            return existing_runs

        self.context = {
            "ti": SimpleNamespace(
                xcom_push=lambda key, value: self.xcom.__setitem__(key, value), get_dr_count=get_dr_count
            )
        }


def decide(summary: dict, branch: Branch, **kwargs) -> str:
    operator = DriftRetrainBranchOperator(
        task_id="decide", drift=summary, retrain_task_id="trigger_retrain", skip_task_id="no_retrain",
        train_dag_id=f"mlops_train__{MODEL}", **kwargs,
    )  # fmt: skip
    return operator.choose_branch(branch.context)


def test_drift_outside_the_cooldown_triggers_retraining():
    branch = Branch(existing_runs=0)

    assert decide(DRIFTED, branch, cooldown_days=2) == "trigger_retrain"
    assert branch.asked == [
        {
            "dag_id": f"mlops_train__{MODEL}",
            "run_ids": [names.retrain_run_id(MODEL, "2026-03-09"), names.retrain_run_id(MODEL, "2026-03-08")],
        }
    ]
    decision = branch.xcom["retrain_decision"]
    assert decision["retrain"] is True and decision["rules"] == ["feature_share"]


@pytest.mark.parametrize(
    ("summary", "existing_runs", "kwargs", "reason"),
    [
        (DRIFTED, 1, {"cooldown_days": 7}, "cooldown"),
        (DRIFTED, 0, {"dry_run": "true"}, "dry run"),
        ({**DRIFTED, "drifted": False, "drifted_features": []}, 0, {}, "nothing to do"),
        ({"status": "no_champion", "message": "No champion yet."}, 0, {}, "No champion yet."),
    ],
)
def test_no_retraining_in_cooldown_on_dry_run_without_drift_or_without_a_check(
    summary, existing_runs, kwargs, reason
):
    branch = Branch(existing_runs)

    assert decide(summary, branch, **kwargs) == "no_retrain"
    assert branch.xcom["retrain_decision"]["retrain"] is False
    assert reason in branch.xcom["retrain_decision"]["reason"]
