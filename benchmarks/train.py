"""Time from trigger to promoted model with ``mlops_train``, next to the same fits as a plain script.

Publishes ``--days`` (30) days x ``--rows`` (20,000) rows of validated churn partitions
(``include.example_data.churn.generate_day``), migrates a throw-away Airflow metadata DB, then runs
each step in a fresh interpreter (so its time and peak RSS belong to it alone), all on the same data
and the 4-candidate grid of ``include/models/churn.yaml``:

- plain:     no Airflow, no MLflow: read the window's partitions with pyarrow, the same time split
             (holdout 5 days, selection 1 day), fit the 4 candidates one after the other with
             ``core.training.build_pipeline`` / ``fit_candidate``, score them on the selection day,
             pick the best and score it on the holdout (what "training a model" needs, nothing more);
- operators: the DAG's four operators' ``execute()`` called in order in one plain process (no
             scheduler, no metadata DB, no XCom), against a fresh MLflow server: the same fits plus
             everything the DAG logs (nested runs, models, lineage, reference profiles, holdout
             plots, registration and promotion);
- airflow:   ``dag.test()`` of ``mlops_train`` (conf ``window_days``, logical date = the last day)
             against another fresh MLflow server, timed from the call to its return; the one-time
             import and parse of the DAG file before it is reported apart. Afterwards the registry
             must hold a ``champion`` of ``churn_classifier``, else the benchmark fails.

Both MLflow steps start from an empty registry, so both do the same work (first champion, no
champion to score). Each operator's ``execute()`` is timed in both steps, and the airflow step's
time is split into: fitting and scoring (plain); MLflow logging and artefacts (operators - plain);
the same ``execute()`` running slower inside Airflow's process; the Airflow runtime around
``execute()`` (task runner, XCom, the in-process execution API that ``dag.test()`` starts, the
scheduling loop). The 1-minute load average is printed: on a busy machine the figures are noisy.
Goal: orchestration overhead (airflow - plain) under 25% of the plain-script time.

What is and is not counted: ``dag.test()`` runs the tasks one after the other in one process, and
the plain script fits the candidates one after the other too, so the comparison is like for like.
A deployed Airflow would also start a worker process per task (interpreter start and imports,
several seconds per task), and may run mapped fits in parallel; neither is measured here.

Each step's output (task logs included) is written to ``<workdir>/<step>.log``.

    python benchmarks/train.py [--days 30] [--rows 20000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MODEL_CONFIG = REPO_ROOT / "include" / "models" / "churn.yaml"
MODEL_NAME = "churn_classifier"
DATASET = "churn"
LAST_DAY = date(2026, 3, 31)
SELECTION_DAYS = 1  # mlops_provider.operators.training.VALIDATION_DAYS (not imported: it loads Airflow)
GOAL_OVERHEAD = 0.25


def _peak_rss() -> int:
    """Peak RSS in bytes of this process or any child it waited for, whichever is larger."""
    return 1024 * max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )


def _window(days: int) -> list[date]:
    return [LAST_DAY - timedelta(days=i) for i in range(days)][::-1]


# ---------------------------------------------------------------------------------------- steps


def publish(data_root: Path, days: int, rows: int) -> dict:
    """Publish ``days`` validated partitions of ``rows`` rows ending at LAST_DAY."""
    from include.example_data.churn import generate_day
    from mlops_provider.hooks.storage import DatasetStorageHook

    storage = DatasetStorageHook(root_uri=f"file://{data_root}")
    for day in _window(days):
        storage.write_partition(DATASET, "validated", day, generate_day(day, rows))
    return {}


def plain(data_root: Path, days: int) -> dict:
    """The same fits with no Airflow and no MLflow: read, split, fit, select, score the holdout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_provider.core.evaluation import best_candidate, classification_metrics
    from mlops_provider.core.models import load_model_config
    from mlops_provider.core.promotion import decide_promotion
    from mlops_provider.core.training import (
        build_pipeline,
        features_and_target,
        fit_candidate,
        positive_proba,
        split_days,
    )

    started, cpu = time.perf_counter(), time.process_time()
    model = load_model_config(MODEL_CONFIG)
    dataset = model.load_dataset_config()
    zone = data_root / dataset.name / "validated"
    window = [d for d in _window(days) if (zone / f"ds={d}" / "_manifest.json").exists()]
    train_days, holdout = split_days(window, model.holdout_days)
    fit_days, selection = split_days(train_days, SELECTION_DAYS)

    def read(days_: list[date]):
        tables = []
        for day in days_:
            folder = zone / f"ds={day}"
            manifest = json.loads((folder / "_manifest.json").read_text())
            tables += [pq.read_table(folder / f["name"]) for f in manifest["files"]]
        return features_and_target(pa.concat_tables(tables).to_pandas(), dataset)

    X_fit, y_fit = read(fit_days)
    X_sel, y_sel = read(selection)
    X_hold, y_hold = read(holdout)
    read_s = time.perf_counter() - started

    candidates, pipelines, fit_s = [], {}, 0.0
    for index, params in enumerate(model.candidates()):
        t0 = time.perf_counter()
        pipelines[index] = fit_candidate(build_pipeline(dataset, model, params), X_fit, y_fit)
        fit_s += time.perf_counter() - t0
        metrics = classification_metrics(y_sel, positive_proba(pipelines[index], X_sel))
        candidates.append({"id": index, "params": params, "metrics": metrics})
    best = best_candidate(candidates, model.selection_metric)
    holdout_metrics = classification_metrics(y_hold, positive_proba(pipelines[best["id"]], X_hold))
    decision = decide_promotion(holdout_metrics, None, champion_version=None, policy=model.gate)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "read_s": read_s,
        "fit_s": fit_s,
        "fit_rows": len(y_fit),
        "best": best["params"],
        "holdout_roc_auc": holdout_metrics["roc_auc"],
        "promote": decision.promote,
    }


class _TaskInstance:
    """The attributes the operators read from a task instance; XComs are kept in a dict."""

    def __init__(self, task_id: str, xcoms: dict, map_index: int = -1) -> None:
        self.dag_id, self.run_id, self.task_id = "mlops_train", "benchmark__operators", task_id
        self.try_number, self.map_index, self._xcoms = 1, map_index, xcoms

    def xcom_push(self, key: str, value: object) -> None:
        self._xcoms[(self.task_id, self.map_index, key)] = value


def operators(days: int) -> dict:
    """The DAG's four operators' ``execute()`` in order, in this process, with minimal contexts."""
    from types import SimpleNamespace

    from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
    from mlops_provider.operators.registry import MLflowRegisterModelOperator
    from mlops_provider.operators.training import (
        PLAN_KEY,
        MLflowPrepareTrainingOperator,
        SklearnTrainCandidateOperator,
    )

    xcoms: dict = {}
    logical = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    dag_run = SimpleNamespace(run_type="manual", run_after=logical, triggering_user_name="benchmark")

    def context(task_id: str, map_index: int = -1) -> dict:
        return {"ti": _TaskInstance(task_id, xcoms, map_index), "logical_date": logical, "dag_run": dag_run}

    config, tasks = str(MODEL_CONFIG), {}
    started, cpu = t0, _ = time.perf_counter(), time.process_time()
    candidates = MLflowPrepareTrainingOperator(
        task_id="prepare", model_config=config, window_end="", window_days=str(days)
    ).execute(context("prepare"))
    plan = xcoms[("prepare", -1, PLAN_KEY)]
    tasks["prepare"] = time.perf_counter() - t0
    trained = []
    for candidate in candidates:
        t0 = time.perf_counter()
        operator = SklearnTrainCandidateOperator(
            task_id="train", model_config=config, plan=plan, candidate=candidate
        )
        trained.append(operator.execute(context("train", candidate["index"])))
        tasks[f"train[{candidate['index']}]"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation = MLflowEvaluateChallengerOperator(
        task_id="evaluate", model_config=config, plan=plan, candidates=trained, force_promote=False
    ).execute(context("evaluate"))
    tasks["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = MLflowRegisterModelOperator(
        task_id="register", model_config=config, plan=plan, evaluation=evaluation, reason="benchmark"
    ).execute(context("register"))
    tasks["register"] = time.perf_counter() - t0
    if not summary["promoted"]:
        raise SystemExit(f"operators: the challenger was not promoted: {summary['reason']}")
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "tasks": tasks,
        "best": evaluation["challenger"]["params"],
        "holdout_roc_auc": evaluation["challenger"]["metrics"]["roc_auc"],
        "champion": summary["version"],
    }


def _task_key(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def _time_execute(classes: list[type], timings: dict[str, float]) -> None:
    """Make each class's ``execute`` record its duration in ``timings`` (this process only)."""
    for cls in classes:
        original = cls.execute

        def execute(self, *args, _original=original, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                ti = (args[0] if args else kwargs["context"])["ti"]
                timings[_task_key(ti.task_id, ti.map_index)] = time.perf_counter() - t0

        cls.execute = execute


def airflow(days: int) -> dict:
    """``dag.test()`` of mlops_train; the import and parse before it are timed apart.

    Each operator's ``execute()`` is timed inside the run too, so the table can tell the operators'
    own work from what the Airflow runtime adds around it.
    """
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
    from mlops_provider.operators.registry import MLflowRegisterModelOperator
    from mlops_provider.operators.training import MLflowPrepareTrainingOperator, SklearnTrainCandidateOperator

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "mlops_train.py"))
    if bag.import_errors:
        raise SystemExit(f"mlops_train does not parse: {bag.import_errors}")
    dag = bag.dags["mlops_train"]
    executed: dict[str, float] = {}
    _time_execute(
        [
            MLflowPrepareTrainingOperator,
            SklearnTrainCandidateOperator,
            MLflowEvaluateChallengerOperator,
            MLflowRegisterModelOperator,
        ],
        executed,
    )
    parsed, cpu = time.perf_counter(), time.process_time()
    logical = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=timezone.utc)
    run = dag.test(logical_date=logical, run_conf={"window_days": days, "reason": "benchmark"})
    finished, cpu = time.perf_counter(), time.process_time() - cpu

    states = {_task_key(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    if str(run.state) != "success":
        raise SystemExit(f"airflow: the DAG run ended {run.state}: {states}")

    from mlops_provider.core.models import load_model_config
    from mlops_provider.hooks.mlflow import MLflowHook

    hook = MLflowHook()
    champion = hook.get_version_by_alias(MODEL_NAME, "champion")
    if champion is None:
        raise SystemExit(f"airflow: no champion of {MODEL_NAME} after a successful run: {states}")
    data = hook.client.get_run(champion.run_id).data
    return {
        "import_parse_s": parsed - started,
        "seconds": finished - parsed,
        "cpu_s": cpu,
        "tasks": executed,
        "best": {name: data.params[name] for name in load_model_config(MODEL_CONFIG).candidates()[0]},
        "holdout_roc_auc": data.metrics["holdout_roc_auc"],
        "champion": champion.version,
    }


def child(step: str, workdir: str, days: int, rows: int) -> dict:
    """Run one step in this (fresh) process and return its figures.

    ``seconds`` is timed by the step itself: from its first action (after importing its module-level
    dependencies) to its end, so Python start-up and the Airflow import are not in it.
    """
    started = time.perf_counter()
    data_root = Path(workdir) / "data"
    if step == "publish":
        figures = publish(data_root, days, rows)
    elif step == "plain":
        figures = plain(data_root, days)
    elif step == "operators":
        figures = operators(days)
    else:
        figures = airflow(days)
    figures.setdefault("seconds", time.perf_counter() - started)
    figures["peak_rss"] = _peak_rss()
    return figures


# ----------------------------------------------------------------------------------------- main


def run_step(step: str, workdir: Path, days: int, rows: int, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(workdir), str(days), str(rows)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    (workdir / f"{step}.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"{step} failed (log: {workdir / f'{step}.log'}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def with_mlflow(step: str, workdir: Path, days: int, rows: int, env: dict[str, str]) -> dict:
    """Run ``step`` against a fresh MLflow server of its own (empty registry), stopped afterwards."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.services import free_port, start_service, wait_until_healthy

    root = workdir / f"mlflow-{step}"
    root.mkdir()
    port = free_port()
    argv = [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    service = start_service(f"mlflow-{step}", argv, env=server_env, log_dir=root, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(service, f"{uri}/health", deadline_s=180)
        conn = json.dumps({"conn_type": "mlflow", "host": uri})
        return run_step(step, workdir, days, rows, {**env, "AIRFLOW_CONN_MLFLOW_DEFAULT": conn})
    finally:
        service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per day")
    parser.add_argument("--workdir", type=Path, help="where data, DBs and logs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--child", nargs=4, metavar=("STEP", "WORKDIR", "DAYS", "ROWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        step, workdir, days, rows = args.child
        print(json.dumps(child(step, workdir, int(days), int(rows)), default=str))
        return 0

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="mlops-bench-train-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(workdir / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__MLOPS__DATA_ROOT": f"file://{workdir / 'data'}",
    }
    env.pop("AIRFLOW_CONN_MLFLOW_DEFAULT", None)
    steps: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    try:
        t0 = time.perf_counter()
        run_step("publish", workdir, args.days, args.rows, env)
        print(
            f"published {args.days} days x {args.rows:,} rows of validated {DATASET} partitions "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        t0 = time.perf_counter()
        migrate = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, cwd=workdir
        )
        if migrate.returncode != 0:
            raise SystemExit(f"airflow db migrate failed:\n{migrate.stderr[-4000:]}")
        print(f"airflow db migrate (once, not timed below): {time.perf_counter() - t0:.1f} s", flush=True)
        steps["plain"] = run_step("plain", workdir, args.days, args.rows, env)
        steps["operators"] = with_mlflow("operators", workdir, args.days, args.rows, env)
        steps["airflow"] = with_mlflow("airflow", workdir, args.days, args.rows, env)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    plain_s, ops_s, af_s = (steps[s]["seconds"] for s in ("plain", "operators", "airflow"))
    print()
    print(f"{'step':<10} {'seconds':>8} {'x plain':>8} {'CPU s':>7} {'peak RSS MiB':>13}  what")
    what = {
        "plain": f"read {steps['plain']['read_s']:.2f} s + 4 fits {steps['plain']['fit_s']:.2f} s "
        f"({steps['plain']['fit_rows']:,} rows) + scoring",
        "operators": "the 4 operators' execute(), MLflow logging, no Airflow runtime",
        "airflow": f"dag.test() call to return (import + parse before it: "
        f"{steps['airflow']['import_parse_s']:.2f} s)",
    }
    for step, figures in steps.items():
        print(
            f"{step:<10} {figures['seconds']:>8.2f} {figures['seconds'] / plain_s:>8.2f} "
            f"{figures['cpu_s']:>7.2f} {figures['peak_rss'] / 2**20:>13,.0f}  {what[step]}"
        )
    print()
    print(f"{'execute() of':<13} {'operators s':>12} {'in dag.test s':>14} {'difference s':>13}")
    ops_tasks, af_tasks = steps["operators"]["tasks"], steps["airflow"]["tasks"]
    for task in ops_tasks:
        ours, theirs = ops_tasks[task], af_tasks.get(task, float("nan"))
        print(f"{task:<13} {ours:>12.2f} {theirs:>14.2f} {theirs - ours:>13.2f}")
    ops_sum, af_sum = sum(ops_tasks.values()), sum(af_tasks.values())
    print(f"{'sum':<13} {ops_sum:>12.2f} {af_sum:>14.2f} {af_sum - ops_sum:>13.2f}")
    print()
    for step, figures in steps.items():
        best = ", ".join(f"{k}={v}" for k, v in figures["best"].items())
        champion = f", champion = version {figures['champion']}" if "champion" in figures else ""
        print(f"{step}: best {best}, holdout ROC AUC {figures['holdout_roc_auc']:.4f}{champion}")
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f}, {os.cpu_count()} CPUs")
    parts = {
        "fitting and scoring (plain script)": plain_s,
        "MLflow logging and artefacts (operators - plain)": ops_s - plain_s,
        "the same execute() slower inside Airflow's process": af_sum - ops_sum,
        "Airflow runtime around execute() (task runner, XCom, in-process API, scheduling loop)": af_s
        - af_sum,
    }
    print(f"time from trigger to promoted model (dag.test) {af_s:.2f} s:")
    for name, seconds in parts.items():
        print(f"  {seconds:>7.2f} s {seconds / af_s:>5.0%}  {name}")
    airflow_own = af_s - ops_s
    print(
        f"Airflow's own overhead (airflow - operators) {airflow_own:.2f} s = "
        f"{airflow_own / plain_s:.0%} of the plain-script time"
    )
    overhead = af_s - plain_s
    print(
        f"orchestration overhead (airflow - plain) {overhead:.2f} s = {overhead / plain_s:.0%} of the "
        f"plain-script time (goal < {GOAL_OVERHEAD:.0%}): "
        f"{'met' if overhead / plain_s < GOAL_OVERHEAD else 'MISSED'}"
    )
    plain_cpu, af_cpu = steps["plain"]["cpu_s"], steps["airflow"]["cpu_s"]
    print(
        f"the same in CPU time of the step's process (less sensitive to a busy machine; the MLflow "
        f"server's CPU is not in it): {af_cpu - plain_cpu:.2f} s = {(af_cpu - plain_cpu) / plain_cpu:.0%}"
    )
    if max(load_before, load_after) > (os.cpu_count() or 1):
        print("the load average exceeded the CPU count: other work shared the CPUs, wall times are noisy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
