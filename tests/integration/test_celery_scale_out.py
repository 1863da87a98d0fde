"""The generated pipelines end to end on the CeleryExecutor: two workers that share no local path.

Airflow and MLflow keep their state in PostgreSQL, Celery's broker is Redis, and the two workers each
run in an empty working directory and HOME of their own; the data root is ``s3://`` on a moto server
(through an ``aws`` connection) and MLflow's artifacts go through its server (``--serve-artifacts``).
The test lands example files, backfills the ingest DAG, trains a champion, ingests drifted days, runs
the drift check and waits for the retraining it triggers. See ``tests/support/celery_stack.py``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

import pytest
from mlops_stack.mlflow_rest import MlflowReader
from mlops_stack.plan import DATASET, DRIFT, DRIFT_SPECS, INGEST, MODEL, TRAIN, midnight

from include.example_data import churn
from mlops_provider.core.registry_names import retrain_run_id
from tests.support import celery_stack as profile
from tests.support.celery_stack import WORKER_HOST, WORKERS, CeleryStack, celery_stack, require_services
from tests.support.live_stack import wait_for
from tests.support.services import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CLEAN_DAYS = 8  # 5 holdout days + a selection day + training days
DRIFT_DAYS = 2
ROWS = 1_200  # a day; the churn suite accepts 1,000-60,000
RUN_DEADLINE = 300.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    with celery_stack(tmp_path_factory.mktemp("celery")) as running:
        print(
            f"\nCelery stack up in {running.boot_seconds:.1f} s: Airflow {running.airflow_url}, "
            f"MLflow {running.mlflow_url}, data root {running.data_root}"
        )
        yield running


def test_without_postgres_or_redis_the_profile_fails_and_says_what_to_start(monkeypatch) -> None:
    monkeypatch.setattr(profile, "PG_PORT", free_port())
    monkeypatch.setattr(profile, "REDIS_PORT", free_port())
    with pytest.raises(
        pytest.fail.Exception, match=r"(?s)PostgreSQL.*\.ci/run.*Not answering: PostgreSQL.*; Redis"
    ):
        require_services()


def land(stack: CeleryStack, tmp: Path, clean: list[dt.date], drifted: list[dt.date]) -> None:
    """Generate the example churn files and put them under ``<data root>/landing/churn/`` on S3."""
    plan = churn.DriftPlan.parse(drifted[0], list(DRIFT_SPECS))
    files = churn.write_days(
        tmp, clean[0], len(clean) + len(drifted), rows_per_day=ROWS, exact_rows=True, drift=plan
    )
    client = stack.s3_client()
    for path in files:
        client.upload_file(str(path), stack.bucket, f"mlops/landing/{DATASET}/{path.name}")


def backfill(stack: CeleryStack, days: list[dt.date]) -> list[dict]:
    """Backfill the ingest DAG over ``days`` and wait until each day's run succeeded."""
    stack.create_backfill(
        {
            "dag_id": INGEST,
            "from_date": midnight(days[0]),
            "to_date": midnight(days[-1]),
            "max_active_runs": 4,
        }
    )
    window = {"logical_date_gte": midnight(days[0]), "logical_date_lte": f"{days[-1]}T23:59:59Z"}

    def finished() -> list[dict] | None:
        runs = stack.dag_runs(INGEST, **window)["dag_runs"]
        if failed := [r for r in runs if r["state"] == "failed"]:
            stack.dump_task_logs(INGEST, failed[0]["dag_run_id"])
            pytest.fail(f"ingest runs failed: {[r['dag_run_id'] for r in failed]}")
        return runs if len(runs) >= len(days) and all(r["state"] == "success" for r in runs) else None

    return wait_for(
        f"the ingest backfill over {days[0]} .. {days[-1]}", finished, RUN_DEADLINE, stack.check_running, 2.0
    )


def test_pipelines_scale_out_on_two_celery_workers_sharing_only_s3_and_mlflow(stack: CeleryStack, tmp_path):
    began = time.monotonic()
    timings: dict[str, float] = {}
    end = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    drifted = [end - dt.timedelta(days=i) for i in reversed(range(DRIFT_DAYS))]
    clean = [drifted[0] - dt.timedelta(days=i) for i in reversed(range(1, CLEAN_DAYS + 1))]
    land(stack, tmp_path, clean, drifted)
    for dag_id in (INGEST, TRAIN, DRIFT):
        stack.wait_for_dag(dag_id)
    timings["parse"] = time.monotonic() - began

    # Ingest: a backfill over the clean days, run by both workers.
    t0 = time.monotonic()
    assert len(backfill(stack, clean)) == CLEAN_DAYS
    timings["backfill"] = time.monotonic() - t0

    # Training: the first model becomes the champion.
    t0 = time.monotonic()
    stack.set_paused(TRAIN, False)
    train_run = f"scale_out__{MODEL}__{clean[-1]}"
    conf = {"end_date": clean[-1].isoformat(), "window_days": CLEAN_DAYS, "reason": "scale-out: first model"}
    stack.api(
        "POST", f"/api/v2/dags/{TRAIN}/dagRuns", {"dag_run_id": train_run, "logical_date": None, "conf": conf}
    )
    stack.wait_for_dag_run(TRAIN, train_run, RUN_DEADLINE)
    mlflow = MlflowReader(stack.mlflow_url, MODEL)
    champion = mlflow.alias_version("champion")
    assert champion is not None
    timings["train"] = time.monotonic() - t0

    # Drift: ingest the drifted days, check the last one, wait for the retraining it triggers.
    t0 = time.monotonic()
    backfill(stack, drifted)
    drift_run = f"scale_out__drift__{end}"
    stack.api(
        "POST",
        f"/api/v2/dags/{DRIFT}/dagRuns",
        {"dag_run_id": drift_run, "logical_date": None, "conf": {"check_date": end.isoformat()}},
    )
    stack.set_paused(DRIFT, False)
    stack.wait_for_dag_run(DRIFT, drift_run, RUN_DEADLINE)
    verdict = stack.xcom(DRIFT, drift_run, "check")
    assert verdict["drifted"] is True, verdict
    retrain = retrain_run_id(MODEL, end.isoformat())
    wait_for(
        f"{TRAIN} run {retrain}",
        lambda: stack.request("GET", f"/api/v2/dags/{TRAIN}/dagRuns/{retrain}")[0] == 200,
        60,
        stack.check_running,
    )
    stack.wait_for_dag_run(TRAIN, retrain, RUN_DEADLINE)
    versions = mlflow.model_versions()
    assert len(versions) >= 2, versions
    assert mlflow.alias_version("champion") is not None
    timings["drift + retrain"] = time.monotonic() - t0
    timings["total"] = time.monotonic() - began

    # Both workers ran tasks, each writing task logs only in its own AIRFLOW_HOME.
    logs = {name: stack.worker_task_logs(name) for name in WORKERS}
    print("\ntimings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print("task logs per worker: " + ", ".join(f"{k} {len(v)}" for k, v in logs.items()))
    assert all(logs.values()), logs
    tries = [p.relative_to(stack.worker_home(n) / "airflow" / "logs") for n in WORKERS for p in logs[n]]
    assert len(tries) == len(set(tries)), "a task try logged on both workers"
    for name in WORKERS:
        assert f"{name}@{WORKER_HOST} ready" in (stack.root / "logs" / f"{name}.log").read_text()
    # Nothing local stood in for the shared services: the artifacts went through MLflow to the bucket,
    # the drift report is on S3, and no worker has a local MLflow store.
    client = stack.s3_client()
    assert client.list_objects_v2(Bucket=stack.bucket, Prefix="mlflow-artifacts/")["KeyCount"] > 0
    report = f"mlops/{DATASET}/reports/drift/ds={end}/"
    assert client.list_objects_v2(Bucket=stack.bucket, Prefix=report)["KeyCount"] > 0, report
    for name in WORKERS:
        local = [
            p for p in stack.worker_home(name).rglob("*") if p.name in ("mlruns", "mlflow.db", "mlartifacts")
        ]
        assert not local, local
    # Every task of the retraining ran on the Celery queue of this test.
    queues = {ti["queue"] for ti in stack.task_instances(TRAIN, retrain)}
    assert len(queues) == 1 and next(iter(queues)).startswith("scale_out_"), queues
