"""mlops_drift end to end with dag.test(): real champion in a real (basic-auth) MLflow, real storage.

In order: no champion yet (clean skip), then a champion is trained with mlops_train; clean days
trigger nothing; drifted days trigger exactly one mlops_train run with the documented conf; a re-run
of the same day triggers none.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from types import SimpleNamespace

import pytest

from include.example_data import churn
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from tests.support.dags import run_dag

pytestmark = pytest.mark.integration

MODEL = "churn_classifier"
FIRST_DAY = date(2026, 7, 1)
CLEAN_DAYS = 12
LAST_CLEAN = FIRST_DAY + timedelta(days=CLEAN_DAYS - 1)
DRIFT_DAYS = 3
LAST_DRIFTED = LAST_CLEAN + timedelta(days=DRIFT_DAYS)
ROWS = 2_000
DRIFT = churn.DriftPlan.parse(
    LAST_CLEAN + timedelta(days=1),
    [
        "monthly_charges:shift=0.8",
        "tenure_months:scale=1.6",
        "support_tickets:shift=1.0",
        "total_charges:shift=0.8",
        "contract_type:share=two_year=0.7",
        "region:new=central@0.3",
    ],
)


@pytest.fixture(scope="module")
def env(tmp_path_factory, mlflow_auth_server, airflow_db):
    """Clean days then drifted days of validated churn data; mlflow_default -> the auth server."""
    uri, user, password = mlflow_auth_server
    root = tmp_path_factory.mktemp("drift") / "data"
    connection = {"conn_type": "mlflow", "host": uri, "login": user, "password": password}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__MLOPS__DATA_ROOT", f"file://{root}")
        patch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(connection))
        storage = DatasetStorageHook(root_uri=f"file://{root}")
        for offset in range(CLEAN_DAYS + DRIFT_DAYS):
            day = FIRST_DAY + timedelta(days=offset)
            storage.write_partition("churn", "validated", day, churn.generate_day(day, ROWS, drift=DRIFT))
        yield SimpleNamespace(storage=storage, hook=MLflowHook())


def _train_runs() -> list:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = (
            session.query(DagRun)
            .filter(DagRun.dag_id == "mlops_train__churn_classifier", DagRun.run_id.like("drift__%"))
            .all()
        )
        return [SimpleNamespace(run_id=r.run_id, conf=dict(r.conf or {}), state=str(r.state)) for r in runs]


def _xcom(result, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id="mlops_drift__churn_classifier", run_id=result.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def test_without_a_champion_the_check_says_so_and_ends(env):
    assert env.hook.get_version_by_alias(MODEL, "champion") is None
    result = run_dag("mlops_drift__churn_classifier", LAST_CLEAN.isoformat())

    assert result.state == "success", result
    assert result.task_states["trigger_retrain"] == "skipped"
    summary = _xcom(result, "check")
    assert summary["status"] == "no_champion" and "No champion" in summary["message"]
    assert _train_runs() == []


def test_clean_days_trigger_no_training(env):
    trained = run_dag(
        "mlops_train__churn_classifier", LAST_CLEAN.isoformat(), conf={"window_days": CLEAN_DAYS}
    )
    assert trained.state == "success", trained
    assert env.hook.get_version_by_alias(MODEL, "champion") is not None

    result = run_dag("mlops_drift__churn_classifier", LAST_CLEAN.isoformat())

    assert result.state == "success", result
    assert result.task_states["no_retrain"] == "success"
    assert result.task_states["trigger_retrain"] == "skipped"
    summary = _xcom(result, "check")
    assert summary["status"] == "checked" and summary["drifted"] is False
    assert "No dataset drift" in _xcom(result, "decide", "retrain_decision")["reason"]
    assert _train_runs() == []


def test_drifted_days_trigger_exactly_one_training_with_the_documented_conf(env):
    result = run_dag("mlops_drift__churn_classifier", LAST_DRIFTED.isoformat())

    assert result.state == "success", result
    assert result.task_states["trigger_retrain"] == "success"
    summary = _xcom(result, "check")
    assert summary["drifted"] is True
    assert {"monthly_charges", "tenure_months", "contract_type", "region"} <= set(summary["drifted_features"])
    assert "has_partner" not in summary["drifted_features"]  # untouched columns stay quiet
    # The policy: the champion's stored importance weighs the share; the decision names the rules.
    assert summary["weighting"] == "importance" and summary["policy"]["weighting"] == "importance"
    assert sum(summary["weights"].values()) == pytest.approx(1.0, abs=0.01)
    assert "feature_share" in _xcom(result, "decide", "retrain_decision")["rules"]

    runs = _train_runs()
    assert [r.run_id for r in runs] == [f"drift__{MODEL}__{LAST_DRIFTED}"]
    conf = runs[0].conf
    assert conf["reason"].startswith("Dataset drift")
    assert conf["drifted_features"] == summary["drifted_features"]
    assert conf["report_uri"] == summary["report_uri"]
    start = LAST_DRIFTED - timedelta(days=2)
    assert conf["window"] == {"start": start.isoformat(), "end": LAST_DRIFTED.isoformat()}

    report = env.storage.report_path("churn", "drift", LAST_DRIFTED)
    assert json.loads((report / "report.json").read_text())["report"]["drifted"] is True
    assert "<svg" in (report / "report.html").read_text()

    # Realised performance: the champion scored on the newest labelled days (label delay 1, 3 days).
    performance = summary["performance"]
    scored = [(LAST_DRIFTED - timedelta(days=back)).isoformat() for back in (3, 2, 1)]
    assert performance["days"] == scored and performance["rows"] == 3 * ROWS
    assert performance["metric"] == "roc_auc" and performance["minimum"] == 0.6
    assert performance["margin"] == 0.02 and isinstance(performance["degraded"], bool)
    champion = env.hook.get_version_by_alias(MODEL, "champion")
    holdout = env.hook.client.get_run(champion.run_id).data.metrics["holdout_roc_auc"]
    assert performance["champion_holdout"] == pytest.approx(holdout)
    assert performance["degraded"] is (performance["value"] < holdout - 0.02 or performance["value"] < 0.6)
    stored = json.loads((report / "report.json").read_text())
    assert stored["performance"] == performance
    assert "realised performance" in (report / "report.html").read_text()

    monitoring = env.hook.client.get_experiment_by_name(f"mlops/{MODEL}/monitoring")
    [run] = env.hook.client.search_runs(
        [monitoring.experiment_id], filter_string="tags.`mlops.role` = 'monitoring'"
    )
    realised = env.hook.client.get_metric_history(run.info.run_id, "performance.roc_auc")
    trained_until = date.fromisoformat(champion.tags["mlops.window"].split("..")[1])
    last_scored = [LAST_CLEAN - timedelta(days=1), LAST_DRIFTED - timedelta(days=1)]
    assert [m.step for m in realised] == [(d - trained_until).days for d in last_scored]
    assert [m.timestamp for m in realised] == [
        int(datetime.combine(d, time(), tzinfo=timezone.utc).timestamp() * 1000) for d in last_scored
    ]
    assert realised[-1].value == pytest.approx(performance["value"])
    assert env.hook.client.get_run(run.info.run_id).info.status == "FINISHED"
    history = env.hook.client.get_metric_history(run.info.run_id, "drift_share")
    # Days from the champion's training end to each check day: the axis of the performance series.
    assert [m.step for m in history] == [(d - trained_until).days for d in (LAST_CLEAN, LAST_DRIFTED)]
    midnight = [datetime.combine(d, time(), tzinfo=timezone.utc) for d in (LAST_CLEAN, LAST_DRIFTED)]
    assert [m.timestamp for m in history] == [int(d.timestamp() * 1000) for d in midnight]
    assert run.info.status == "FINISHED"


def test_rerun_of_the_same_day_triggers_no_second_training(env):
    result = run_dag("mlops_drift__churn_classifier", LAST_DRIFTED.isoformat())

    assert result.state == "success", result
    assert result.task_states["trigger_retrain"] == "skipped"
    assert "cooldown" in _xcom(result, "decide", "retrain_decision")["reason"]
    assert len(_train_runs()) == 1


def test_dry_run_reports_drift_but_triggers_nothing(env):
    day = LAST_DRIFTED - timedelta(days=1)
    result = run_dag(
        "mlops_drift__churn_classifier", day.isoformat(), conf={"dry_run": True, "cooldown_days": 0}
    )

    assert result.state == "success", result
    assert result.task_states["trigger_retrain"] == "skipped"
    decision = _xcom(result, "decide", "retrain_decision")
    assert decision["retrain"] is False and "dry run" in decision["reason"]
    assert len(_train_runs()) == 1


def test_the_triggered_training_learns_the_drifted_days_and_beats_the_champion_on_them(env):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    [triggered] = _train_runs()  # queued by the drift check; run here with the same conf
    result = run_dag("mlops_train__churn_classifier", LAST_DRIFTED.isoformat(), conf=triggered.conf)
    assert result.state == "success", result

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id="mlops_train__churn_classifier", run_id=result.run_id, task_id="evaluate")
            .filter(XComModel.key == "return_value")
            .one()
        )
        evaluation = XComModel.deserialize_value(row)
    drifted = [(LAST_CLEAN + timedelta(days=i)).isoformat() for i in range(1, DRIFT_DAYS + 1)]
    assert evaluation["split_rule"] == "post_change" and evaluation["holdout"] == drifted
    assert evaluation["holdout_rows"] == pytest.approx(0.3 * DRIFT_DAYS * ROWS, abs=3)
    challenger = evaluation["challenger"]["metrics"]["roc_auc"]
    champion = evaluation["champion"]["metrics"]["roc_auc"]
    # Fitted on the changed days, the challenger beats the champion on held-out changed rows.
    assert challenger > champion, (challenger, champion)
