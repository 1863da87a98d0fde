"""Ingest + validate throughput and peak memory, next to a plain ``pyarrow.csv.read_csv``.

For each size (default 5,000,000 and 10,000,000 rows x 20 columns) it writes one CSV day, then runs,
each in a fresh interpreter so peak RSS belongs to that step alone:

- baseline: ``pyarrow.csv.read_csv(path)`` (type inference, all cores), nothing else;
- ingest:   ``DatasetIngestPartitionOperator.execute`` (typed parse, Parquet, atomic raw partition);
- validate: ``GXValidatePartitionOperator.execute`` (read partition, 14 expectations with Great
  Expectations, reports, publish to validated/).

The operators run exactly as in a task, with a minimal task context; the dataset is configured by a
YAML file and a suite written here, as a user would add a second dataset. Goals: ingest + validate
throughput >= 50% of the baseline's; each step's peak RSS <= 2.5x the decoded (Arrow) size of the
day, and growing no faster than the data.

    python benchmarks/ingest.py [--rows 5000000 10000000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-01-15"
GOAL_THROUGHPUT = 0.5
GOAL_RSS_RATIO = 2.5

NUMERIC = [f"x{i:02d}" for i in range(12)]
CATEGORIES = {
    "plan": ["basic", "plus", "pro"],
    "channel": ["web", "app", "store", "phone"],
    "region": ["north", "south", "east", "west"],
    "segment": ["a", "b", "c", "d", "e"],
}
SCHEMA = {
    "customer_id": "string",
    "snapshot_ts": "timestamp",
    **{c: ("int64" if i % 3 == 0 else "float64") for i, c in enumerate(NUMERIC)},
    **dict.fromkeys(CATEGORIES, "string"),
    "active": "bool",
    "label": "int64",
}


def write_dataset_config(workdir: Path, rows: int) -> Path:
    """Write the benchmark dataset's YAML and its expectation suite; return the YAML's path."""
    import yaml

    suite = {
        "name": "bench",
        "expectations": [
            {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": rows // 2, "max_value": rows * 2},
            },
            {
                "type": "expect_table_columns_to_match_set",
                "kwargs": {"column_set": list(SCHEMA), "exact_match": True},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1]}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}},
            *(
                {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": c, "value_set": v}}
                for c, v in CATEGORIES.items()
            ),
            *(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": c, "min_value": -1000, "max_value": 1000},
                }
                for c in NUMERIC[:4]
            ),
        ],
        "meta": {},
    }
    (workdir / "bench_suite.json").write_text(json.dumps(suite))
    config = {
        "name": "bench",
        "source": {"uri": "unused", "format": "csv"},
        "schema": SCHEMA,
        "keys": ["customer_id"],
        "target": {"column": "label", "classes": [0, 1]},
        "features": {"numeric": NUMERIC, "categorical": list(CATEGORIES), "boolean": ["active"]},
        "expectations": "bench_suite.json",
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` rows of the 20-column schema as CSV, vectorised, in 1M-row chunks."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    start = int(datetime.fromisoformat(DAY).replace(tzinfo=timezone.utc).timestamp() * 1e6)
    with csv.CSVWriter(str(path), _arrow_schema()) as writer:
        for offset in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - offset)
            ids = pa.array(np.char.add("C", np.char.zfill((np.arange(n) + offset).astype(str), 10)))
            columns = {
                "customer_id": ids,
                "snapshot_ts": pa.array(
                    start + rng.integers(0, 86_400_000_000, n), pa.timestamp("us", "UTC")
                ),
            }
            for i, c in enumerate(NUMERIC):
                values = rng.normal(50, 20, n)
                columns[c] = pa.array(values.round().astype(np.int64) if i % 3 == 0 else values.round(4))
            for c, values in CATEGORIES.items():
                columns[c] = pa.array(np.asarray(values)[rng.integers(0, len(values), n)])
            columns["active"] = pa.array(rng.random(n) < 0.7)
            columns["label"] = pa.array((rng.random(n) < 0.2).astype(np.int64))
            writer.write_table(pa.table(columns, schema=_arrow_schema()))


def _arrow_schema():
    import pyarrow as pa

    from mlops_provider.core.datasets import arrow_type

    return pa.schema([pa.field(c, arrow_type(t)) for c, t in SCHEMA.items()])


class _TaskInstance:
    """The few attributes the operators read from a task instance; XComs are printed, not stored."""

    dag_id, run_id, task_id, try_number = "benchmark", "benchmark__2026-01-15", "step", 1

    def xcom_push(self, key: str, value: object) -> None:
        pass


def _context() -> dict:
    from collections import defaultdict
    from types import SimpleNamespace

    day = datetime.fromisoformat(DAY).replace(tzinfo=timezone.utc)
    return {
        "ti": _TaskInstance(),
        "data_interval_start": day,
        "logical_date": day,
        "outlet_events": defaultdict(SimpleNamespace),
    }


def child(step: str, csv_path: str, config_path: str, data_root: str) -> dict:
    """Run one step in this (fresh) process and return its figures."""
    started = time.perf_counter()
    figures: dict = {}
    if step == "baseline":
        from pyarrow import csv

        table = csv.read_csv(csv_path)
        figures = {"rows": table.num_rows, "arrow_bytes": table.nbytes}
    elif step == "ingest":
        from mlops_provider.operators.ingest import DatasetIngestPartitionOperator

        operator = DatasetIngestPartitionOperator(
            task_id="ingest", dataset_config=config_path, source_uri=f"file://{csv_path}", data_root=data_root
        )
        figures = operator.execute(_context())
    elif step == "validate":
        from mlops_provider.operators.validation import GXValidatePartitionOperator

        operator = GXValidatePartitionOperator(
            task_id="validate", dataset_config=config_path, data_root=data_root
        )
        result = operator.execute(_context())
        figures = {"success": result["success"], "rows": result["row_count"]}
    figures["seconds"] = time.perf_counter() - started
    figures["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return figures


def run_step(step: str, csv_path: Path, config_path: Path, data_root: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(csv_path), str(config_path), data_root],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"{step} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, help="where data is written (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=4, metavar=("STEP", "CSV", "CONFIG", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child), default=str))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlops-bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for rows in args.rows:
            csv_path = workdir / f"bench_{rows}.csv"
            t0 = time.perf_counter()
            write_csv(csv_path, rows)
            print(
                f"wrote {rows:,} rows x {len(SCHEMA)} columns: "
                f"{csv_path.stat().st_size / 2**20:,.0f} MiB CSV "
                f"in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            config = write_dataset_config(workdir, rows)
            root = f"file://{workdir / f'root_{rows}'}"
            steps = {
                step: run_step(step, csv_path, config, root) for step in ("baseline", "ingest", "validate")
            }
            results.append((rows, csv_path.stat().st_size, steps))
            csv_path.unlink()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'rows':>11} {'step':<9} {'seconds':>8} {'Mrows/s':>8} {'peak RSS MiB':>13} {'RSS / Arrow':>12}")
    for rows, _size, steps in results:
        arrow = steps["baseline"]["arrow_bytes"]
        for step, figures in steps.items():
            print(
                f"{rows:>11,} {step:<9} {figures['seconds']:>8.2f} {rows / figures['seconds'] / 1e6:>8.2f} "
                f"{figures['peak_rss'] / 2**20:>13,.0f} {figures['peak_rss'] / arrow:>12.2f}"
            )
        ours = steps["ingest"]["seconds"] + steps["validate"]["seconds"]
        share = steps["baseline"]["seconds"] / ours
        worst_rss = max(steps["ingest"]["peak_rss"], steps["validate"]["peak_rss"]) / arrow
        print(
            f"{'':>11} Arrow size {arrow / 2**20:,.0f} MiB; ingest+validate {ours:.2f} s = "
            f"{share:.0%} of baseline throughput (goal >= {GOAL_THROUGHPUT:.0%}): "
            f"{'met' if share >= GOAL_THROUGHPUT else 'MISSED'}; worst RSS {worst_rss:.2f}x Arrow "
            f"(goal <= {GOAL_RSS_RATIO}x): {'met' if worst_rss <= GOAL_RSS_RATIO else 'MISSED'}"
        )
    if len(results) > 1:
        (r1, _, s1), (r2, _, s2) = results[0], results[-1]
        for step in ("ingest", "validate"):
            growth = (s2[step]["peak_rss"] / s1[step]["peak_rss"]) / (r2 / r1)
            print(
                f"{step} RSS growth per data growth: {growth:.2f} "
                "(goal <= 1.0: grows no faster than the data)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
