"""False alarms and detection power of the drift verdict by sample size, over many seeds.

Each check compares a current day of ``rows`` rows with the reference profile of a 10,000-row
training sample (the models' default ``reference_sample_rows``), through the real
``compare_to_reference``. A check has 10 features: 4 normal, 2 gamma (skewed), 2 Poisson (integer,
ties) and 2 categorical. On clean data nothing changes; with ``shift`` the first feature's mean moves
by that many standard deviations. A feature drifts when its effect size passes the threshold AND its
Benjamini-Hochberg-adjusted p-value is below 0.05 (``core.drift``).

    python benchmarks/drift_power.py [--seeds 200] [--big-seeds 20]

prints the share of features flagged per check on clean data and the share of checks that flag a
shifted feature, by sample size (each check on its own reference).
``tests/unit/core/test_drift_power.py`` asserts the goals on fewer seeds.
"""

from __future__ import annotations

import argparse
import time

REFERENCE_ROWS = 10_000
SIZES = (200, 1_000, 10_000, 1_000_000)
NUMERIC = ["n0", "n1", "n2", "n3", "g0", "g1", "p0", "p1"]
CATEGORICAL = ["c0", "c1"]
CATEGORIES = ["a", "b", "c", "d", "e"]
SHARES = [0.35, 0.25, 0.2, 0.15, 0.05]


def day(rows: int, seed: int, *, shift: float = 0.0):
    """One day of the 10 features; ``shift``: n0's mean moves by that many sd (n0 is N(10, 2))."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns = {f"n{i}": rng.normal(10.0, 2.0, rows) for i in range(4)}
    columns["n0"] += shift * 2.0
    columns.update({f"g{i}": rng.gamma(2.0 + i, 3.0, rows) for i in range(2)})
    columns.update({f"p{i}": rng.poisson(1.5 + 3 * i, rows).astype(np.float64) for i in range(2)})
    columns.update(
        {f"c{i}": pd.Categorical.from_codes(rng.choice(5, rows, p=SHARES), CATEGORIES) for i in range(2)}
    )
    return pd.DataFrame(columns)


def verdicts(
    seed: int, scenarios: list[tuple[int, float]], reference_rows: int = REFERENCE_ROWS
) -> dict[tuple[int, float], list[bool]]:
    """Each feature's verdict (``NUMERIC + CATEGORICAL`` order) per ``(rows, shift)`` scenario.

    One reference (seeded by ``seed``) serves every scenario; each current day has its own seed.
    """
    from mlops_provider.core.drift import compare_to_reference
    from mlops_provider.core.profile import build_reference_profile

    profile = build_reference_profile(
        day(reference_rows, seed),
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        sample_rows=reference_rows,
        seed=seed,
    )
    return {
        (rows, shift): [
            f.drifted
            for f in compare_to_reference(profile, day(rows, seed + 1 + i, shift=shift), seed=seed).features
        ]
        for i, (rows, shift) in enumerate(scenarios)
    }


def rates(seeds: range, rows: int, reference_rows: int = REFERENCE_ROWS) -> dict[str, float]:
    """Over ``seeds``: clean share of features flagged and of checks with a flag; 0.5 / 0.02 sd caught."""
    scenarios = [(rows, 0.0), (rows, 0.5), (rows, 0.02)]
    runs = [verdicts(1_000 * seed, scenarios, reference_rows) for seed in seeds]
    clean = [run[rows, 0.0] for run in runs]
    return {
        "features_flagged": sum(map(sum, clean)) / (len(clean) * len(clean[0])),
        "checks_flagged": sum(map(any, clean)) / len(clean),
        "caught_0.5": sum(run[rows, 0.5][0] for run in runs) / len(runs),
        "caught_0.02": sum(run[rows, 0.02][0] for run in runs) / len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="checks per size up to 10,000 rows")
    parser.add_argument("--big-seeds", type=int, default=20, help="checks at 1,000,000 rows")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"Reference {REFERENCE_ROWS:,} rows; {len(NUMERIC) + len(CATEGORICAL)} features per check.\n")
    print("| current rows | checks | clean: features flagged | clean: checks with any flag "
          "| 0.5 sd shift caught | 0.02 sd shift caught |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for rows in SIZES:
        seeds = range(args.big_seeds if rows >= 1_000_000 else args.seeds)
        r = rates(seeds, rows)
        print(
            f"| {rows:,} | {len(seeds)} | {r['features_flagged']:.2%} | {r['checks_flagged']:.1%} "
            f"| {r['caught_0.5']:.1%} | {r['caught_0.02']:.1%} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
