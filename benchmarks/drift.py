"""Daily drift check time and peak memory, next to a plain scipy loop over the same data.

Writes a reference and a current day of 1,000,000 rows x 25 columns (20 numeric, 5 categorical
strings; 4 numeric and 1 categorical column drift in the current day) as Parquet, then runs each
step in a fresh interpreter so its peak RSS belongs to it alone:

- profile:   read the reference Parquet, ``build_reference_profile``, write it (done once per model
             version at training time, shown separately, not part of the daily check);
- check:     the daily check: ``ReferenceProfile.read`` + read the current Parquet +
             ``compare_to_reference`` (the default policy: importance-weighted share, features
             drifting when large and significant) + full JSON report + HTML report, both written;
- check-all: the same with KS and Wasserstein on every current row instead of a 100,000-row sample;
- scipy:     read both Parquet files, then ``scipy.stats.ks_2samp`` per numeric column and
             ``scipy.stats.chi2_contingency`` on the category counts of each categorical column.

Goals: check >= 3x faster than the scipy loop, and its peak RSS no higher than the loop's.

    python benchmarks/drift.py [--rows 1000000] [--workdir DIR] [--keep]
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_SPEEDUP = 3.0
NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORIES = {
    "plan": ["basic", "plus", "pro", "team"],
    "channel": ["web", "app", "store", "phone", "partner"],
    "region": ["north", "south", "east", "west"],
    "segment": [f"s{i}" for i in range(12)],
    "device": ["ios", "android", "desktop"],
}
DRIFTED = {
    "x00": "mean +0.5 sd",
    "x01": "variance x2",
    "x02": "20 % missing",
    "x03": "mean +0.2 sd",
    "plan": "shares",
}
# What permutation importance would store for a model leaning on a few columns (the drift policy's
# default weighting): x00, x01 and plan carry half of it, the other 22 columns share the rest.
IMPORTANCE = {
    **{name: 0.5 / 22 for name in NUMERIC + list(CATEGORIES)},
    "x00": 0.25,
    "x01": 0.15,
    "plan": 0.1,
}


def write_day(path: Path, rows: int, *, seed: int, drift: bool) -> None:
    """Write one day of the 25-column schema as Parquet, vectorised."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {}
    for i, name in enumerate(NUMERIC):
        values = rng.normal(50 + i, 10, rows) if i % 2 else rng.gamma(2.0 + i % 5, 8.0, rows)
        columns[name] = values
    for name, values in CATEGORIES.items():
        weights = np.linspace(2, 1, len(values))
        if drift and name == "plan":
            weights = weights[::-1]
        columns[name] = pa.array(np.asarray(values)[rng.choice(len(values), rows, p=weights / weights.sum())])
    if drift:
        for name in ("x00", "x03"):
            sd = columns[name].std()
            columns[name] = columns[name] + (0.5 if name == "x00" else 0.2) * sd
        mean = columns["x01"].mean()
        columns["x01"] = mean + (columns["x01"] - mean) * np.sqrt(2)
        columns["x02"] = np.where(rng.random(rows) < 0.2, np.nan, columns["x02"])
    pq.write_table(pa.table(columns), path)


def child(step: str, workdir: str) -> dict:
    """Run one step in this (fresh) process and return its figures."""
    started = time.perf_counter()
    work = Path(workdir)
    figures: dict = {}
    if step == "profile":
        import pyarrow.parquet as pq

        from mlops_provider.core.profile import build_reference_profile

        reference = pq.read_table(work / "reference.parquet").to_pandas()
        profile = build_reference_profile(
            reference, numeric=NUMERIC, categorical=list(CATEGORIES), importance=IMPORTANCE
        )
        paths = profile.write(work / "profile")
        figures = {"profile_bytes": sum(p.stat().st_size for p in paths)}
    elif step in ("check", "check-all"):
        import pyarrow.parquet as pq

        from mlops_provider.core.drift import compare_to_reference
        from mlops_provider.core.drift_report import render_drift_html
        from mlops_provider.core.profile import ReferenceProfile

        profile = ReferenceProfile.read(work / "profile")
        current = pq.read_table(work / "current.parquet").to_pandas()
        loaded = time.perf_counter()
        sample = len(current) if step == "check-all" else None
        report = compare_to_reference(profile, current, current_sample_rows=sample)
        compared = time.perf_counter()
        (work / f"{step}.json").write_text(json.dumps(report.to_dict(), allow_nan=False))
        page = render_drift_html(report, title="Drift benchmark", context={"rows": len(current)})
        (work / f"{step}.html").write_text(page)
        figures = {
            "load_s": loaded - started,
            "compare_s": compared - loaded,
            "report_s": time.perf_counter() - compared,
            "html_bytes": len(page),
            "summary": report.summary(),
        }
    elif step == "scipy":
        import numpy as np
        import pyarrow.parquet as pq
        from scipy import stats

        reference = pq.read_table(work / "reference.parquet").to_pandas()
        current = pq.read_table(work / "current.parquet").to_pandas()
        loaded = time.perf_counter()
        drifted = []
        for name in NUMERIC:
            ref, cur = reference[name].dropna().to_numpy(), current[name].dropna().to_numpy()
            if stats.ks_2samp(ref, cur).pvalue < 0.05:
                drifted.append(name)
        for name in CATEGORIES:
            counts = [reference[name].value_counts(), current[name].value_counts()]
            keys = sorted(set(counts[0].index) | set(counts[1].index))
            table = np.array([[c.get(k, 0) for k in keys] for c in counts])
            if stats.chi2_contingency(table).pvalue < 0.05:
                drifted.append(name)
        figures = {"load_s": loaded - started, "compare_s": time.perf_counter() - loaded, "drifted": drifted}
    figures["seconds"] = time.perf_counter() - started
    figures["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return figures


def run_step(step: str, workdir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(workdir)],
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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="where data is written (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child), default=str))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlops-bench-drift-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        write_day(workdir / "reference.parquet", args.rows, seed=1, drift=False)
        write_day(workdir / "current.parquet", args.rows, seed=2, drift=True)
        print(
            f"wrote reference and current: {args.rows:,} rows x {len(NUMERIC) + len(CATEGORIES)} columns "
            f"({len(NUMERIC)} numeric, {len(CATEGORIES)} categorical) in {time.perf_counter() - t0:.1f} s; "
            f"drift injected in {', '.join(f'{k} ({v})' for k, v in DRIFTED.items())}",
            flush=True,
        )
        steps = {step: run_step(step, workdir) for step in ("profile", "check", "check-all", "scipy")}
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'step':<10} {'seconds':>8} {'load s':>7} {'compare s':>10} {'report s':>9} {'peak RSS MiB':>13}")
    for step, figures in steps.items():
        print(
            f"{step:<10} {figures['seconds']:>8.2f} {figures.get('load_s', float('nan')):>7.2f} "
            f"{figures.get('compare_s', float('nan')):>10.2f} {figures.get('report_s', float('nan')):>9.2f} "
            f"{figures['peak_rss'] / 2**20:>13,.0f}"
        )
    check, scipy_loop = steps["check"], steps["scipy"]
    summary = check["summary"]
    print(
        f"profile (training time, not in the check): {steps['profile']['profile_bytes'] / 2**20:.1f} MiB "
        f"on disk; HTML report {check['html_bytes'] / 1024:.0f} KiB"
    )
    print(
        f"check drifted: {summary['drifted_features']} ({summary['weighting']}-weighted share "
        f"{summary['share']}, uniform {summary['uniform_share']}, threshold {summary['drift_share']}: "
        f"dataset drifted: {summary['drifted']})"
    )
    print(f"scipy p < 0.05: {scipy_loop['drifted']}")
    for step in ("check", "check-all"):
        speedup = scipy_loop["seconds"] / steps[step]["seconds"]
        rss = steps[step]["peak_rss"] / scipy_loop["peak_rss"]
        print(
            f"{step}: {speedup:.1f}x faster than the scipy loop (goal >= {GOAL_SPEEDUP:.0f}x): "
            f"{'met' if speedup >= GOAL_SPEEDUP else 'MISSED'}; peak RSS {rss:.2f}x the loop's "
            f"(goal <= 1): {'met' if rss <= 1 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
