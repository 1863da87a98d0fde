"""The churn ingest DAG backfilled through the REST API of a real stack (scheduler, LocalExecutor).

Seven days of example churn files are landed, ``mlops_ingest__churn`` (generated from
``include/datasets/churn.yaml``) is unpaused and a backfill over the seven days runs through the
scheduler. Each day must end up published to ``validated/`` exactly once, with its asset event; a
second backfill reprocessing the completed days must leave the very same partitions (same digests, no
duplicates, no stray files); a landed day outside the range stays untouched throughout.

Backfills are created with ``LiveStack.create_backfill``. The stack makes SQLite transactions that
begin with a savepoint take the write lock first, which stops Airflow's 503 "database is locked" on
backfill creation; the helper still cancels and retries one, as the demo does.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from include.example_data import churn
from mlops_provider.pipelines.ids import ingest_dag_id
from tests.support.live_stack import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.live_stack import LiveStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

DATASET = "churn"
DAG_ID = ingest_dag_id(DATASET)
ASSET = "mlops.churn.validated"
ROWS = 2_000
START = dt.date(2026, 3, 1)
DAYS = 7
DATES = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
OUTSIDE = (START + dt.timedelta(days=DAYS)).isoformat()  # landed, never in a backfill
ZONES = ("raw", "validated", "quarantine")
PARSE_DEADLINE = 180.0
BACKFILL_DEADLINE = 300.0
ASSET_DEADLINE = 120.0
TERMINAL = {"success", "failed"}


# --------------------------------------------------------------------------------------- helpers


def midnight(day: str) -> str:
    return f"{day}T00:00:00Z"


def backfill_body(reprocess: str) -> dict[str, Any]:
    """POST /api/v2/backfills body (airflow/api_fastapi/core_api/datamodels/backfills.py)."""
    return {
        "dag_id": DAG_ID,
        "from_date": midnight(DATES[0]),
        "to_date": midnight(DATES[-1]),
        "reprocess_behavior": reprocess,
        # Four days at once: the first validations of the dataset finish together. They used to
        # create the dataset's asset at run time (through an alias), and the API server then failed
        # on "UNIQUE constraint failed: asset.name, asset.uri", marking a published validate failed.
        # The asset is now declared when the DAG is parsed, and every run must succeed.
        "max_active_runs": 4,
    }


def day_of(run: dict) -> str:
    return run["logical_date"][:10]


def runs_between(stack: LiveStack, first: str, last: str, **filters: Any) -> list[dict]:
    """Runs of the DAG whose logical date falls on the days [first, last]."""
    body = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        params={
            "logical_date_gte": midnight(first),
            "logical_date_lte": f"{last}T23:59:59Z",
            "limit": 100,
            "order_by": "logical_date",
            **filters,
        },
    )
    return list(body["dag_runs"])


def partitions(data_path: Path, zone: str) -> dict[str, dict]:
    """``ds -> {"manifest": <_manifest.json>, "files": sorted names}`` of one zone, read from disk."""
    found = {}
    zone_dir = data_path / DATASET / zone
    for folder in sorted(zone_dir.glob("ds=*")) if zone_dir.exists() else []:
        manifest_path = folder / "_manifest.json"
        found[folder.name.removeprefix("ds=")] = {
            "manifest": json.loads(manifest_path.read_text()) if manifest_path.exists() else None,
            "files": sorted(p.name for p in folder.iterdir()),
        }
    return found


def report_failures(stack: LiveStack, runs: list[dict]) -> str:
    """The failed task instances of ``runs`` with the tail of their logs (printed), as one message."""
    lines = []
    for run in runs:
        if run["state"] == "success":
            continue
        run_id = run["dag_run_id"]
        tis = stack.api(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        )["task_instances"]
        states = {ti["task_id"]: f"{ti['state']} (try {ti['try_number']})" for ti in tis}
        lines.append(f"{run_id}: {run['state']}: {states}")
        stack.dump_task_logs(DAG_ID, run_id, lines=60)
    return "\n".join(lines)


def wait_for_backfill(stack: LiveStack, backfill_id: int, label: str) -> tuple[list[dict], float]:
    """Poll the backfill and its runs until it is completed and every run is terminal.

    Returns the runs and the wall time. Prints progress whenever the run states change.
    """
    began = time.monotonic()
    end = began + BACKFILL_DEADLINE
    last = None
    runs_done = None
    while True:
        # 404: not visible yet (the API may read from a stale SQLite snapshot just after creation).
        backfill = stack.api("GET", f"/api/v2/backfills/{backfill_id}", expect=(200, 404))
        backfill = backfill if "completed_at" in backfill else {"completed_at": None, **backfill}
        runs = runs_between(stack, DATES[0], DATES[-1], run_type="backfill")
        states = Counter(run["state"] for run in runs)
        progress = (dict(sorted(states.items())), bool(backfill["completed_at"]))
        if progress != last:
            print(
                f"  [{label} {time.monotonic() - began:5.1f} s] runs {progress[0]}, completed: {progress[1]}",
                flush=True,
            )
            last = progress
        done = len(runs) == DAYS and all(run["state"] in TERMINAL for run in runs)
        if done and runs_done is None:
            runs_done = time.monotonic() - began
        if done and backfill["completed_at"]:
            print(
                f"{label}: runs finished after {runs_done:.1f} s, backfill marked completed after "
                f"{time.monotonic() - began:.1f} s",
                flush=True,
            )
            return runs, time.monotonic() - began
        stack.check_running()
        if time.monotonic() > end:
            detail = report_failures(stack, runs)
            pytest.fail(
                f"{label}: not finished after {BACKFILL_DEADLINE:.0f} s: runs {dict(states)}, "
                f"backfill {backfill}\n{detail}"
            )
        time.sleep(1.0)


def run_backfill(stack: LiveStack, reprocess: str, label: str) -> tuple[list[dict], float]:
    """Create a backfill over DATES (then unpause the DAG) and wait for it; (runs, wall seconds).

    ``LiveStack.create_backfill`` pauses the DAG while creating and retries Airflow's SQLite 503s.
    """
    began = time.monotonic()
    backfill = stack.create_backfill(backfill_body(reprocess))
    print(f"\n{label}: backfill {backfill['id']} created ({reprocess=}) in {time.monotonic() - began:.1f} s")
    runs, seconds = wait_for_backfill(stack, backfill["id"], label)
    print(f"{label}: {DAYS} days in {seconds:.1f} s", flush=True)
    failed = [run for run in runs if run["state"] != "success"]
    if failed:
        pytest.fail(f"{label}: {len(failed)} of {DAYS} runs did not succeed:\n{report_failures(stack, runs)}")
    return runs, seconds


def assert_outside_day_untouched(stack: LiveStack) -> None:
    """The landed day after the range has no run, no partition in any zone and no report."""
    assert runs_between(stack, OUTSIDE, OUTSIDE) == []
    for zone in ZONES:
        assert not (stack.data_path / DATASET / zone / f"ds={OUTSIDE}").exists(), zone
    assert not list((stack.data_path / DATASET).glob(f"reports/**/ds={OUTSIDE}"))
    assert (stack.data_path / "landing" / DATASET / f"{OUTSIDE}.csv").exists()


def assert_published_once(stack: LiveStack, runs: list[dict]) -> dict[str, dict]:
    """Exactly the seven days are in ``validated/``, each one Parquet file + manifest; returns them."""
    run_of_day = {day_of(run): run["dag_run_id"] for run in runs}
    validated = partitions(stack.data_path, "validated")
    assert sorted(validated) == DATES
    for ds, part in validated.items():
        manifest = part["manifest"]
        assert manifest is not None, ds
        (data_file,) = manifest["files"]
        assert data_file["name"].startswith("part-")
        assert data_file["name"].endswith(".parquet")
        assert part["files"] == sorted([data_file["name"], "_manifest.json"]), (ds, part["files"])
        assert manifest["ds"] == ds
        assert manifest["zone"] == "validated"
        assert manifest["row_count"] == ROWS
        assert manifest["produced_by"]["dag_id"] == DAG_ID
        assert manifest["produced_by"]["run_id"] == run_of_day[ds]
        assert manifest["produced_by"]["task_id"] == "validate"
    assert sorted(partitions(stack.data_path, "raw")) == DATES
    assert partitions(stack.data_path, "quarantine") == {}
    # Nothing else in the zone: no temporary folder or file left next to the partitions.
    assert sorted(p.name for p in (stack.data_path / DATASET / "validated").iterdir()) == [
        f"ds={ds}" for ds in DATES
    ]
    return validated


def registered_asset(stack: LiveStack) -> list[dict]:
    """The stack's record of ``mlops.churn.validated`` (empty until the scheduler activated it)."""
    assets = stack.api("GET", "/api/v2/assets", params={"name_pattern": ASSET, "limit": 100})["assets"]
    return [asset for asset in assets if asset["name"] == ASSET]


def validated_events(stack: LiveStack) -> list[dict]:
    """Every asset event of ``mlops.churn.validated`` emitted by the ingest DAG.

    The asset is declared when the DAG is parsed; the scheduler activates it on a later loop (every
    10 s on the stack), so it is polled for with a deadline.
    """
    matching = wait_for(f"asset {ASSET} to be registered", lambda: registered_asset(stack), ASSET_DEADLINE)
    assert len(matching) == 1, matching
    body = stack.api(
        "GET",
        "/api/v2/assets/events",
        params={
            "asset_id": matching[0]["id"],
            "source_dag_id": DAG_ID,
            "limit": 100,
            "order_by": "timestamp",
        },
    )
    return list(body["asset_events"])


# -------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def first_backfill(live_stack: LiveStack) -> dict[str, Any]:
    """Land 8 days, backfill the first 7 (unpausing the DAG); what it produced and how long it took."""
    landing = live_stack.data_path / "landing" / DATASET
    began = time.monotonic()
    churn.write_days(landing, START, DAYS + 1, rows_per_day=ROWS, exact_rows=True)
    print(f"\nlanded {DAYS + 1} days x {ROWS} rows in {time.monotonic() - began:.1f} s under {landing}")

    began = time.monotonic()

    def parsed() -> bool:
        status, _ = live_stack.request("GET", f"/api/v2/dags/{DAG_ID}")
        return status == 200

    try:
        wait_for(
            f"the dag-processor to parse {DAG_ID}", parsed, PARSE_DEADLINE, live_stack.check_running, 1.0
        )
    except BaseException:
        print("import errors:", live_stack.request("GET", "/api/v2/importErrors"))
        raise
    print(f"{DAG_ID} parsed {time.monotonic() - began:.1f} s after the stack was up")

    # Declared when the DAG is parsed: the asset exists before any run, so concurrent first
    # validations of the dataset only add events to it (no run creates it).
    asset = wait_for(f"asset {ASSET} before any run", lambda: registered_asset(live_stack), ASSET_DEADLINE)
    assert asset[0]["uri"] == "x-mlops://churn/validated"

    dry = live_stack.api("POST", "/api/v2/backfills/dry_run", backfill_body("none"))
    assert [run["logical_date"][:10] for run in dry["backfills"]] == DATES

    runs, seconds = run_backfill(live_stack, "none", "first backfill")
    validated = partitions(live_stack.data_path, "validated")
    return {"runs": runs, "seconds": seconds, "validated": validated}


# ----------------------------------------------------------------------------------------- tests


def test_backfill_publishes_each_day_once(live_stack: LiveStack, first_backfill: dict[str, Any]) -> None:
    runs = first_backfill["runs"]
    assert [day_of(run) for run in runs] == DATES
    assert [run["state"] for run in runs] == ["success"] * DAYS
    assert {run["run_type"] for run in runs} == {"backfill"}

    validated = assert_published_once(live_stack, runs)

    # The same through the provider's own reader, which checks each file against its manifest.
    from mlops_provider.hooks.storage import DatasetStorageHook

    hook = DatasetStorageHook(root_uri=live_stack.data_root)
    assert [d.isoformat() for d in hook.list_partitions(DATASET, "validated")] == DATES
    for ds in DATES:
        assert hook.read_manifest(DATASET, "validated", ds).sha256 == validated[ds]["manifest"]["sha256"]
        assert hook.read_partition(DATASET, "validated", ds, verify=True).num_rows == ROWS
        assert hook.read_manifest(DATASET, "raw", ds).sha256 == validated[ds]["manifest"]["sha256"]

    assert_outside_day_untouched(live_stack)


def test_validated_asset_events_carry_partition_facts(
    live_stack: LiveStack, first_backfill: dict[str, Any]
) -> None:
    events = validated_events(live_stack)
    digests = {ds: part["manifest"]["sha256"] for ds, part in first_backfill["validated"].items()}
    assert events, "no asset events for " + ASSET
    for event in events:
        extra = event["extra"] or {}
        assert {"ds", "row_count", "sha256"} <= set(extra), extra
        assert extra["row_count"] == ROWS
        assert extra["sha256"] == digests[extra["ds"]], extra
        assert event["source_task_id"] == "validate"
    assert sorted({event["extra"]["ds"] for event in events}) == DATES


def test_reprocessing_completed_days_is_idempotent(
    live_stack: LiveStack, first_backfill: dict[str, Any]
) -> None:
    before = partitions(live_stack.data_path, "validated")
    assert {ds: p["manifest"]["sha256"] for ds, p in before.items()} == {
        ds: p["manifest"]["sha256"] for ds, p in first_backfill["validated"].items()
    }
    ended_before = {day_of(run): run["end_date"] for run in first_backfill["runs"]}

    runs, seconds = run_backfill(live_stack, "completed", "second backfill (reprocess completed)")
    print(
        f"\ntimings: stack boot {live_stack.boot_seconds:.1f} s, first backfill {first_backfill['seconds']:.1f} s, "
        f"second backfill {seconds:.1f} s ({DAYS} days, {ROWS} rows/day)"
    )

    # The same seven runs, each run again (no new run per day).
    assert [day_of(run) for run in runs] == DATES
    assert [run["dag_run_id"] for run in runs] == [run["dag_run_id"] for run in first_backfill["runs"]]
    assert len(runs_between(live_stack, DATES[0], DATES[-1])) == DAYS
    for run in runs:
        ended = dt.datetime.fromisoformat(run["end_date"])
        assert ended > dt.datetime.fromisoformat(ended_before[day_of(run)]), (run["dag_run_id"], ended)

    after = assert_published_once(live_stack, runs)
    for ds in DATES:
        assert after[ds]["manifest"]["sha256"] == before[ds]["manifest"]["sha256"], ds
        assert after[ds]["files"] == before[ds]["files"], ds

    # Each day's validation ran twice: two events per day, with the same digest.
    events = validated_events(live_stack)
    assert Counter(event["extra"]["ds"] for event in events) == dict.fromkeys(DATES, 2)
    for event in events:
        assert event["extra"]["sha256"] == before[event["extra"]["ds"]]["manifest"]["sha256"]

    assert_outside_day_untouched(live_stack)
