"""Parse time of the pipelines DAG file with 1, 10 and 100 configurations, next to a trivial DAG file.

Each measurement starts a new Python process (as a DAG processor's parsing subprocess would be
cold), imports ``airflow.sdk``, then executes a DAG file. It reports:

- total: from interpreter start-up to a parsed file (what a cold parse costs);
- own: the file's execution after ``airflow.sdk`` is loaded (what the file itself adds);
- the same two as CPU time of the parsing process, which other load on the machine disturbs far
  less than wall time (the verdicts use wall time unless ``--cpu``).

The files measured: a trivial ``airflow.sdk`` DAG (the baseline), the project's ``dags/*.py``, and
a DAG file calling ``build_pipelines`` on generated folders of 1, 10 and 100 configurations (one
configuration = a dataset file and a model file trained on it: 4 DAGs). Runs are interleaved
(baseline, file, baseline, file, ...) so machine noise hits all alike; medians of ``--repeat`` runs.

Goals: the project's file and 10 configurations within 1.2x of the trivial file's total; the cost of
one extra configuration (ms, from the "own" times, over the 1-configuration folder) growing no faster
than linearly: at 100 configurations at most 1.5x what it is at 10.

    python benchmarks/parse_time.py [--repeat 7] [--sizes 1 10 100] [--cpu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.2
LINEAR_SLACK = 1.5

TRIVIAL_DAG = textwrap.dedent(
    """
    from __future__ import annotations

    import pendulum

    from airflow.sdk import dag, task


    @dag(schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
    def trivial():
        @task
        def hello() -> str:
            return "hello"

        hello()


    trivial_dag = trivial()
    """
)

PIPELINES_DAG = textwrap.dedent(
    """
    from __future__ import annotations

    from mlops_provider.pipelines import build_pipelines

    globals().update(build_pipelines({folder!r}))
    """
)

PROBE = textwrap.dedent(
    """
    import json, runpy, sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    import airflow.sdk
    t1, c1 = time.perf_counter(), time.process_time()
    namespace = runpy.run_path(sys.argv[1], run_name="dag_file")
    t2, c2 = time.perf_counter(), time.process_time()
    from airflow.sdk import DAG
    dags = [v for v in namespace.values() if isinstance(v, DAG)]
    timings = {"total": t2 - t0, "own": t2 - t1, "cpu": c2 - c0, "own_cpu": c2 - c1}
    print(json.dumps({**timings, "dags": len(dags)}))
    """
)


def measure(path: Path) -> dict:
    """Parse ``path`` once in a fresh interpreter and return its timings (seconds)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_configurations(folder: Path, count: int) -> None:
    """``count`` copies of the shipped churn dataset and model files, each under its own name."""
    include = REPO_ROOT / "include"
    shutil.copytree(include / "expectations", folder / "expectations")
    (folder / "datasets").mkdir()
    (folder / "models").mkdir()
    dataset = (include / "datasets" / "churn.yaml").read_text()
    model = (include / "models" / "churn.yaml").read_text()
    for i in range(count):
        name = f"data{i:03d}"
        (folder / "datasets" / f"{name}.yaml").write_text(dataset.replace("name: churn", f"name: {name}", 1))
        (folder / "models" / f"{name}_model.yaml").write_text(
            model.replace("name: churn_classifier", f"name: {name}_model", 1).replace(
                "../datasets/churn.yaml", f"../datasets/{name}.yaml"
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7, help="runs per file (median is reported)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 10, 100], help="configurations per folder"
    )
    parser.add_argument("--cpu", action="store_true", help="judge on CPU time instead of wall time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial_dag.py"
        trivial.write_text(TRIVIAL_DAG)
        files: dict[str, Path] = {"(baseline) trivial airflow.sdk DAG": trivial}
        for path in sorted((REPO_ROOT / "dags").glob("*.py")):
            files[str(path.relative_to(REPO_ROOT))] = path
        for size in args.sizes:
            folder = Path(tmp) / f"configs_{size}"
            write_configurations(folder, size)
            dag_file = Path(tmp) / f"pipelines_{size}.py"
            dag_file.write_text(PIPELINES_DAG.format(folder=str(folder)))
            files[f"pipelines, {size} configuration(s)"] = dag_file

        runs: dict[str, list[dict]] = {name: [] for name in files}
        for _ in range(args.repeat):
            for name, path in files.items():
                runs[name].append(measure(path))

        total_key, own_key = ("cpu", "own_cpu") if args.cpu else ("total", "own")
        medians = {
            name: {
                key: statistics.median(r[key] for r in samples) for key in ("total", "own", "cpu", "own_cpu")
            }
            for name, samples in runs.items()
        }
        base = medians["(baseline) trivial airflow.sdk DAG"][total_key]
        clock = "CPU time" if args.cpu else "wall time"
        print(f"python {sys.version.split()[0]}, {args.repeat} runs each, medians of {clock}")
        print(f"{'file':<38} {'dags':>5} {'total s':>8} {'own ms':>8} {'ratio':>6}  goal <= {GOAL_RATIO}x")
        for name, samples in runs.items():
            total, own = medians[name][total_key], medians[name][own_key] * 1000
            judged = name.startswith("dags/") or name == "pipelines, 10 configuration(s)"
            verdict = ("ok" if total / base <= GOAL_RATIO else "OVER") if judged else ""
            ratio = total / base
            print(f"{name:<38} {samples[0]['dags']:>5} {total:>8.3f} {own:>8.1f} {ratio:>6.2f}  {verdict}")

        own_ms = {size: medians[f"pipelines, {size} configuration(s)"][own_key] * 1000 for size in args.sizes}
        # Cost of one configuration over the smallest folder, at each larger size: constant when
        # parsing grows linearly, rising when it grows faster.
        first = args.sizes[0]
        per_config = {n: (own_ms[n] - own_ms[first]) / (n - first) for n in args.sizes[1:]}
        for n, cost in per_config.items():
            print(f"cost of one extra configuration, {first} -> {n}: {cost:.1f} ms")
        if len(per_config) >= 2:
            costs = list(per_config.values())
            growth = costs[-1] / max(costs[0], 1e-9)
            verdict = "linear" if growth <= LINEAR_SLACK else "FASTER THAN LINEAR"
            print(f"growth: {growth:.2f}x the per-configuration cost (goal <= {LINEAR_SLACK}x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
