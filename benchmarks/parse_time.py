"""Parse time of every DAG file, next to a trivial airflow.sdk-only DAG, in fresh interpreters.

Each measurement starts a new Python process (as a DAG processor's parsing subprocess would be
cold), imports ``airflow.sdk``, then executes the DAG file. It reports:

- total: from interpreter start-up to a parsed file (what a cold parse costs);
- own: the file's execution after ``airflow.sdk`` is loaded (what the file itself adds).

Runs are interleaved (baseline, file, baseline, file, ...) so machine noise hits both alike, and
the median of ``--repeat`` runs is printed. Goal: every DAG file's total within 1.2x of the
trivial DAG's.

    python benchmarks/parse_time.py [--repeat 7] [DAG_FILE ...]   # default: dags/*.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 1.2

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

PROBE = textwrap.dedent(
    """
    import json, runpy, sys, time
    t0 = time.perf_counter()
    import airflow.sdk
    t1 = time.perf_counter()
    namespace = runpy.run_path(sys.argv[1], run_name="dag_file")
    t2 = time.perf_counter()
    from airflow.sdk import DAG
    dags = [v for v in namespace.values() if isinstance(v, DAG)]
    print(json.dumps({"total": t2 - t0, "own": t2 - t1, "dags": len(dags)}))
    """
)


def measure(path: Path) -> dict:
    """Parse ``path`` once in a fresh interpreter and return its timings (seconds)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path, help="DAG files (default: dags/*.py)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per file (median is reported)")
    args = parser.parse_args(argv)
    files = args.files or sorted((REPO_ROOT / "dags").glob("*.py"))

    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial_dag.py"
        trivial.write_text(TRIVIAL_DAG)
        runs: dict[Path, list[dict]] = {trivial: [], **{f: [] for f in files}}
        for _ in range(args.repeat):
            for path in runs:
                runs[path].append(measure(path))

        base_total = statistics.median(r["total"] for r in runs[trivial])
        print(f"python {sys.version.split()[0]}, {args.repeat} runs each, medians")
        print(f"{'file':<34} {'dags':>4} {'total s':>8} {'own ms':>8} {'ratio':>6}  goal <= {GOAL_RATIO}x")
        worst = 0.0
        for path, samples in runs.items():
            total = statistics.median(r["total"] for r in samples)
            own = statistics.median(r["own"] for r in samples) * 1000
            ratio = total / base_total
            baseline = path == trivial
            name = "(baseline) trivial airflow.sdk DAG" if baseline else str(path.relative_to(REPO_ROOT))
            verdict = "" if path == trivial else ("ok" if ratio <= GOAL_RATIO else "OVER")
            worst = max(worst, ratio if path != trivial else 0.0)
            print(f"{name:<34} {samples[0]['dags']:>4} {total:>8.3f} {own:>8.1f} {ratio:>6.2f}  {verdict}")
        if not files:
            print("no DAG files in dags/ yet: only the baseline was measured")
        else:
            print(f"worst ratio {worst:.2f}x: {'goal met' if worst <= GOAL_RATIO else 'goal MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
