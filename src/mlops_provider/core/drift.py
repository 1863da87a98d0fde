"""Is the current data drifting from the model's reference? Per-feature statistics and verdicts.

Pure numpy / scipy over whole columns against a :class:`~mlops_provider.core.profile.ReferenceProfile`:

* numeric features and numeric predictions (a positive-class score, a regressor's value):
  Kolmogorov-Smirnov statistic and p-value, Wasserstein distance divided by the reference std, PSI
  on the reference's quantile bins plus a missing bin with the chi-square test of those counts (the
  feature's p-value is the Bonferroni-combined smaller of the two tests);
* categorical and boolean features and predicted classes (multiclass): chi-square, PSI and
  Jensen-Shannon distance on the shares of each reference category, of missing values and of new
  categories (one ``other`` bucket).

A feature drifts only when the change is both large and significant, at every sample size: an
effect size reaches its threshold (huge samples make every p-value tiny) AND the test's p-value,
Benjamini-Hochberg-adjusted over the features of one check, is below ``p_value`` (small samples
make effect sizes noisy). A column whose values all went missing drifts whatever the sample size.
The prediction is tested alone (raw p-value). The dataset drifts when the weighted share of drifted
features reaches ``drift_share``; the weights are the features' importance to the model stored in
the profile (:class:`DriftPolicy` ``weighting="importance"``) or 1 each (``"uniform"``), times
``feature_weights``.

KS and Wasserstein compare the profile's sorted reference sample with a seeded sample of the same
size of the current column (``current_sample_rows``): their sampling error is about
``sqrt(1/m + 1/n)``, bounded by the reference sample, so sorting a million current values instead
gains little precision and triples the time of a whole check (``benchmarks/drift.py``). The KS
p-value is computed for the sizes actually compared, so it stays honest. PSI, missing values, means
and category counts use every row.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_provider.core.profile import (
    CategoricalProfile,
    category_counts,
    is_labels,
    numeric_values,
    score_values,
    sorted_sample,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from mlops_provider.core.profile import NumericProfile, ReferenceProfile

PSI_FLOOR = 1e-4  # share used for an empty bin in PSI (as Evidently), so a new bin is finite
STD_FLOOR = 1e-3  # smallest reference std Wasserstein is divided by (a constant column)
EXACT_KS_ROWS = 10_000  # KS p-values as scipy's ks_2samp "auto" up to this (effective) sample size
EXACT_KS_RATIO = 10  # ... and for sizes within this factor of each other
PLOT_BINS = 30
PLOT_CATEGORIES = 20
NEW_CATEGORIES_LISTED = 20
SUMMARY_FEATURES = 100  # features named in ``summary()``; the rest are counted
MISSING_BUCKET = "(missing)"
OTHER_BUCKET = "(new)"
TAIL_BUCKET = "(new or rare)"  # when the profile kept only the most frequent categories by name


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature and the dataset count as drifted.

    :param wasserstein: numeric features: Wasserstein distance / reference std at or above this.
    :param jensen_shannon: categorical features: Jensen-Shannon distance (natural log) at or above.
    :param psi: any feature: population stability index at or above this.
    :param p_value: a feature drifts only below this Benjamini-Hochberg-adjusted p-value.
    :param drift_share: the dataset drifts when this (weighted) share of its features drifts.
    :param feature_weights: multiplier of a feature's weight in the share (default 1; 0 ignores it).
    """

    wasserstein: float = 0.1
    jensen_shannon: float = 0.1
    psi: float = 0.2
    p_value: float = 0.05
    drift_share: float = 0.3
    feature_weights: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        problems = [
            f"{f.name}: {problem}"
            for f in fields(self)
            if (problem := self._problem(f.name, getattr(self, f.name)))
        ]
        if problems:
            raise ValueError("Invalid drift thresholds: " + "; ".join(problems) + ".")
        object.__setattr__(self, "feature_weights", {k: float(v) for k, v in self.feature_weights.items()})

    @staticmethod
    def _problem(name: str, value: Any) -> str | None:
        """Why ``value`` is not valid for the threshold ``name``, or None."""
        if name == "feature_weights":
            if not isinstance(value, dict) and not hasattr(value, "items"):
                return "must map feature names to weights"
            bad = [
                k
                for k, v in value.items()
                if not isinstance(k, str)
                or isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v < 0
            ]
            return f"weights must be finite numbers >= 0 (bad: {bad})" if bad else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"must be a number, not {value!r}"
        bounds = {
            "p_value": (0.0, 1.0),
            "drift_share": (0.0, 1.0),
            "jensen_shannon": (0.0, math.sqrt(math.log(2))),
        }
        low, high = bounds.get(name, (0.0, math.inf))
        if not low < value <= high:
            return f"must be in ({low}, {high:.4g}], not {value!r}"
        return None

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> DriftThresholds:
        """The defaults with ``overrides`` applied, e.g. from a DAG Param or the ``[mlops]`` config.

        :raises ValueError: naming each unknown key or value of the wrong type or range.
        """
        return _with_overrides(cls, overrides, "drift thresholds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _with_overrides(cls: Any, overrides: Mapping[str, Any] | None, what: str) -> Any:
    """``cls`` built from ``overrides``; ValueError naming unknown keys (and, from ``cls``, bad values)."""
    overrides = dict(overrides or {})
    known = [f.name for f in fields(cls)]
    unknown = sorted(str(k) for k in overrides if k not in known)
    if unknown:
        raise ValueError(f"Unknown {what} {unknown}; known: {', '.join(known)}.")
    return cls(**overrides)


WEIGHTINGS = ("importance", "uniform")


@dataclass(frozen=True)
class DriftPolicy:
    """When a drift check calls for retraining (applied by ``core.retrain.decide_retrain``).

    Rules: the weighted share of drifted features reaches ``DriftThresholds.drift_share`` (always);
    the prediction drifts, significant and large (``prediction_drift``); the realised performance
    on recent labelled days is degraded (``performance``, read from the summary's ``performance``).

    :param weighting: ``importance``: a feature weighs its importance to the model, stored in the
        reference profile (uniform when the profile has none); ``uniform``: every feature weighs 1.
    """

    weighting: str = "importance"
    prediction_drift: bool = True
    performance: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.weighting not in WEIGHTINGS:
            problems.append(f"weighting: must be one of {', '.join(WEIGHTINGS)}, not {self.weighting!r}")
        problems += [
            f"{name}: must be true or false, not {getattr(self, name)!r}"
            for name in ("prediction_drift", "performance")
            if not isinstance(getattr(self, name), bool)
        ]
        if problems:
            raise ValueError("Invalid drift policy: " + "; ".join(problems) + ".")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> DriftPolicy:
        """The default policy with ``overrides`` applied (the model file's ``drift.policy``, a run's Param).

        :raises ValueError: naming each unknown key or invalid value.
        """
        return _with_overrides(cls, overrides, "drift policy keys")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature (or on the model's scores) and the figures behind it.

    :param kind: ``numeric`` or ``categorical``.
    :param decided_by: what settled the verdict: ``effect size and p-value`` (both passed: drifted),
        ``effect size`` (too small; or large with no test possible: drifted), ``p-value`` (large
        but not significant) or ``missing`` (every current value missing: drifted).
    :param metric: the main score's name: ``wasserstein_norm`` (numeric), ``jensen_shannon``
        (categorical) or ``psi`` (a numeric column without values on one side).
    :param reasons: one sentence per criterion that fired; empty when not drifted.
    :param statistics: every statistic, None where it cannot be computed.
    :param distribution: what the report plots: ``labels`` (categorical) or ``edges`` (numeric,
        the end bins include values beyond them) and the ``reference`` and ``current`` shares.
    """

    name: str
    kind: str
    drifted: bool
    decided_by: str
    metric: str
    score: float | None
    reasons: tuple[str, ...]
    statistics: dict[str, float | None]
    reference: dict[str, Any]
    current: dict[str, Any]
    distribution: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift check: per-feature verdicts, the prediction's, the dataset's.

    :param share: weighted share of drifted features (``weights``, normalised); ``uniform_share``
        counts each feature once.
    :param weighting: the weighting used: ``importance`` or ``uniform`` (also when the policy asked
        for importance but the profile holds none).
    """

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    drifted: bool
    share: float
    thresholds: DriftThresholds
    reference_rows: int
    current_rows: int
    weighting: str = "uniform"
    weights: dict[str, float] = field(default_factory=dict, hash=False)
    uniform_share: float | None = None
    policy: DriftPolicy = DriftPolicy()

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe dict for XCom: verdicts, share and each feature's main score.

        At most ``SUMMARY_FEATURES`` features are named (drifted first, then by score); the
        counts cover them all.
        """
        ranked = sorted(self.features, key=lambda f: (not f.drifted, -(f.score or 0.0)))[:SUMMARY_FEATURES]
        prediction = None
        if self.prediction is not None:
            p = self.prediction
            prediction = {"drifted": p.drifted, "metric": p.metric, "score": _rounded(p.score)}
        drifted = self.drifted_features
        return {
            "drifted": self.drifted,
            "share": round(self.share, 4),
            "uniform_share": _rounded(self.uniform_share),
            "drift_share": self.thresholds.drift_share,
            "weighting": self.weighting,
            "policy": self.policy.to_dict(),
            "features": len(self.features),
            "drifted_count": len(drifted),
            "drifted_features": drifted[:SUMMARY_FEATURES],
            "scores": {f.name: [f.metric, _rounded(f.score)] for f in ranked},
            "weights": {f.name: _rounded(self.weights.get(f.name)) for f in ranked},
            "prediction": prediction,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }

    def to_dict(self) -> dict[str, Any]:
        """The full report as a JSON-safe dict (NaN and infinities as None)."""
        return _json_safe(
            {
                "drifted": self.drifted,
                "share": self.share,
                "uniform_share": self.uniform_share,
                "weighting": self.weighting,
                "weights": self.weights,
                "policy": self.policy.to_dict(),
                "drifted_features": self.drifted_features,
                "reference_rows": self.reference_rows,
                "current_rows": self.current_rows,
                "thresholds": self.thresholds.to_dict(),
                "features": [f.to_dict() for f in self.features],
                "prediction": self.prediction.to_dict() if self.prediction else None,
            }
        )


def compare_to_reference(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    *,
    current_scores: np.ndarray | None = None,
    thresholds: DriftThresholds = DriftThresholds(),  # frozen: safe to share
    policy: DriftPolicy = DriftPolicy(),
    current_sample_rows: int | None = None,
    seed: int = 0,
) -> DriftReport:
    """Compare ``current`` (and the model's scores on it) with the reference ``profile``.

    :param current: the current data; it must hold every feature of the profile.
    :param current_scores: the model's prediction per row of ``current``, of the kind of the
        profile's reference predictions (see :func:`~mlops_provider.core.profile.prediction_values`:
        scores or predicted values as numbers, predicted classes as names).
    :param policy: its ``weighting`` weighs the features in the share (the other rules are
        applied by ``core.retrain``; the report carries the policy).
    :param current_sample_rows: current values per numeric column for KS and Wasserstein
        (default: the profile's sample size; the whole column when it has fewer).
    :param seed: seed of that sample.
    :raises ValueError: a feature column is missing or not numeric, ``current`` is empty, scores
        have no reference, or ``feature_weights`` names an unknown feature or sums to zero.
    """
    absent = [c for c in profile.features if c not in current.columns]
    problems = [f"columns missing from the current data: {absent}"] if absent else []
    if len(current) == 0:
        problems.append("the current data has no rows")
    unknown = sorted(set(thresholds.feature_weights) - set(profile.features))
    if unknown:
        problems.append(f"feature_weights names unknown features {unknown}")
    if current_scores is not None and profile.prediction is None:
        problems.append("current scores were given but the profile has no reference scores")
    if problems:
        raise ValueError("Cannot compare to the reference: " + "; ".join(problems) + ".")
    sample_rows = profile.sample_rows if current_sample_rows is None else current_sample_rows
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise ValueError(f"current_sample_rows must be a positive integer, not {sample_rows!r}.")
    rng = np.random.default_rng(seed)

    measured = [
        _measure_numeric(column, numeric_values(current[name], name), sample_rows, rng)
        for name, column in profile.numeric.items()
    ] + [_measure_categorical(column, current[name]) for name, column in profile.categorical.items()]
    adjusted = benjamini_hochberg([m.statistics["p_value"] for m in measured])
    features = tuple(_decide(m, p, thresholds) for m, p in zip(measured, adjusted, strict=True))

    prediction = None
    if current_scores is not None and profile.prediction is not None:
        measured_scores = _prediction_drift(
            profile.prediction, current_scores, len(current), sample_rows, rng
        )
        prediction = _decide(
            measured_scores, measured_scores.statistics["p_value"], thresholds, adjusted=False
        )

    weighting, weights = feature_weights(profile, policy, thresholds)
    share = sum(weights[f.name] for f in features if f.drifted)
    return DriftReport(
        features=features,
        prediction=prediction,
        drifted=share >= thresholds.drift_share,
        share=share,
        thresholds=thresholds,
        reference_rows=profile.rows,
        current_rows=len(current),
        weighting=weighting,
        weights=weights,
        uniform_share=sum(f.drifted for f in features) / len(features),
        policy=policy,
    )


def feature_weights(
    profile: ReferenceProfile, policy: DriftPolicy, thresholds: DriftThresholds
) -> tuple[str, dict[str, float]]:
    """The weighting used and each feature's weight in the drift share (normalised to sum 1).

    Importance from the profile when the policy asks for it and the profile holds some (else
    uniform), times ``thresholds.feature_weights``.

    :raises ValueError: every feature ends with weight 0.
    """
    importance = profile.importance if policy.weighting == "importance" else None
    if importance and sum(importance.get(name, 0.0) for name in profile.features) > 0:
        weighting, base = "importance", {name: importance.get(name, 0.0) for name in profile.features}
    else:
        weighting, base = "uniform", dict.fromkeys(profile.features, 1.0)
    raw = {name: w * thresholds.feature_weights.get(name, 1.0) for name, w in base.items()}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(
            f"Cannot compare to the reference: every feature has weight 0 ({weighting} weighting)."
        )
    return weighting, {name: w / total for name, w in raw.items()}


def _prediction_drift(
    reference: NumericProfile | CategoricalProfile,
    scores: Any,
    rows: int,
    sample_rows: int,
    rng: np.random.Generator,
) -> _Measured:
    """Measure the current predictions against the reference's, as numbers or as classes."""
    import pandas as pd

    values = score_values(scores, rows)
    if isinstance(reference, CategoricalProfile) != is_labels(values):
        kinds = ("predicted classes", "numeric scores")
        raise ValueError(
            "Cannot compare to the reference: the profile holds "
            f"{kinds[not isinstance(reference, CategoricalProfile)]} but the current predictions are "
            f"{kinds[not is_labels(values)]} (was the model trained for another task?)."
        )
    if isinstance(reference, CategoricalProfile):  # then the values are labels (checked above)
        return _measure_categorical(reference, pd.Series(values))
    return _measure_numeric(reference, values, sample_rows, rng)


# --------------------------------------------------------------------------- statistics


def ks_wasserstein(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and Wasserstein-1 distance of two sorted, non-empty samples.

    One merge of the two sorted arrays (no re-sort); the ECDF difference is kept in integer units
    of ``1 / (m * n)``, so ties and the KS maximum are exact.
    """
    m, n = reference.size, current.size
    at = np.searchsorted(current, reference, side="right") + np.arange(m)
    from_reference = np.zeros(m + n, dtype=bool)
    from_reference[at] = True
    merged = np.empty(m + n)
    merged[at] = reference
    merged[~from_reference] = current
    difference = np.cumsum(np.where(from_reference, n, -m))  # m*n * (F_ref - F_cur) after each value
    gaps = np.diff(merged)
    wasserstein = float(np.abs(difference[:-1]) @ gaps) / (m * n)
    # Inside a run of equal values the ECDFs are not yet complete: read them at its last value.
    ks = float(np.abs(difference[:-1][gaps > 0]).max(initial=0)) / (m * n)
    return ks, wasserstein


def ks_p_value(statistic: float, reference: np.ndarray, current: np.ndarray) -> float:
    """The KS test's two-sided p-value.

    As ``scipy.stats.ks_2samp(method="auto")`` for samples of at most ``EXACT_KS_ROWS`` values
    whose sizes are within a factor ``EXACT_KS_RATIO``; for other sizes up to an effective size
    ``m * n / (m + n)`` of ``EXACT_KS_ROWS`` the one-sample exact distribution at that effective size
    (ks_2samp's exact path is slow there and often overflows: 0.1 s per column for 10,000 vs 200
    values); above, Kolmogorov's limiting distribution (within ~1 % of ks_2samp's finite-n value
    where p > 1e-5, and 50 ms per column cheaper). ``reference`` and ``current`` are the samples
    actually compared, so the p-value holds for their sizes.
    """
    m, n = reference.size, current.size
    effective = m * n / (m + n)
    if effective > EXACT_KS_ROWS:
        from scipy import special

        return float(special.kolmogorov(math.sqrt(effective) * statistic))
    from scipy import stats

    if max(m, n) <= EXACT_KS_ROWS and max(m, n) <= EXACT_KS_RATIO * min(m, n):
        with warnings.catch_warnings():  # "exact calculation unsuccessful": scipy falls back itself
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(reference, current).pvalue)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index; an empty bin counts as a share of ``PSI_FLOOR``."""
    ref = np.where(reference_shares > 0, reference_shares, PSI_FLOOR)
    cur = np.where(current_shares > 0, current_shares, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log): 0 to sqrt(ln 2)."""
    p = reference_shares / reference_shares.sum()
    q = current_shares / current_shares.sum()
    middle = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log(a[nonzero] / middle[nonzero])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of the 2 x k table of counts, as ``scipy.stats.chi2_contingency``.

    Buckets empty on both sides are dropped; with one degree of freedom Yates' correction applies.
    """
    from scipy import special

    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if dof == 1:
        difference = expected - table
        table = table + np.sign(difference) * np.minimum(0.5, np.abs(difference))
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(dof, statistic))


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values over the given ones; None stays None."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    values = np.array([p_values[i] for i in present], dtype=np.float64)
    order = np.argsort(values)
    scaled = values[order] * len(values) / np.arange(1, len(values) + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    for rank, position in enumerate(order):
        adjusted[present[position]] = float(monotone[rank])
    return adjusted


# ---------------------------------------------------------------------------- internals


@dataclass
class _Measured:
    """A feature's statistics before the verdict (which needs every feature's p-value)."""

    name: str
    kind: str
    statistics: dict[str, float | None]
    values_compared: int  # the smaller sample the test saw
    emptied: bool  # the reference had values, the current data has none
    reference: dict[str, Any]
    current: dict[str, Any]
    distribution: dict[str, Any]


def _measure_numeric(
    column: NumericProfile, values: np.ndarray, sample_rows: int, rng: np.random.Generator
) -> _Measured:
    finite = np.isfinite(values)
    present = values if finite.all() else values[finite]
    missing = values.size - present.size
    # Bins (e[i-1], e[i]]: one vectorised comparison per edge beats a binary search per value.
    at_or_below = [np.count_nonzero(present <= edge) for edge in column.bin_edges]
    current_counts = np.diff([0, *at_or_below, present.size])
    reference_shares = np.array([*column.bin_counts, column.missing]) / column.rows
    current_shares = np.append(current_counts, missing) / values.size

    sample = sorted_sample(present, sample_rows, rng)
    reference = column.sample
    statistics: dict[str, float | None] = dict.fromkeys(
        ("ks", "ks_p_value", "wasserstein", "wasserstein_norm")
    )
    if sample.size and reference.size:
        ks, wasserstein = ks_wasserstein(reference, sample)
        statistics.update(
            ks=ks,
            ks_p_value=ks_p_value(ks, reference, sample),
            wasserstein=wasserstein,
            wasserstein_norm=wasserstein / max(column.std or 0.0, STD_FLOOR),
        )
    statistics["psi"] = psi(reference_shares, current_shares)
    # PSI sees missing values and bins that KS does not: its test is chi-square on the same counts.
    statistics["bins_chi2"], bins_p = chi_square(
        np.array([*column.bin_counts, column.missing]), np.append(current_counts, missing)
    )
    statistics["bins_p_value"] = bins_p
    ks_p = statistics["ks_p_value"]
    # Two tests of one feature: Bonferroni within it keeps its p-value valid before BH across features.
    statistics["p_value"] = bins_p if ks_p is None else min(1.0, 2 * min(ks_p, bins_p))
    return _Measured(
        name=column.name,
        kind="numeric",
        statistics=statistics,
        values_compared=min(reference.size, sample.size),
        emptied=present.size == 0 and column.present > 0,
        reference={"rows": column.rows, "missing": column.missing, "mean": column.mean, "std": column.std},
        current={
            "rows": int(values.size),
            "missing": int(missing),
            "mean": float(present.mean()) if present.size else None,
            "std": float(present.std()) if present.size else None,
        },
        distribution=_numeric_distribution(reference, sample),
    )


def _measure_categorical(column: CategoricalProfile, series: pd.Series) -> _Measured:
    by_key, missing = category_counts(series)
    position = {category: i for i, category in enumerate(column.categories)}
    counts = np.zeros(len(column.categories), dtype=np.int64)
    new: list[tuple[str, int]] = []
    for key, count in by_key.items():
        i = position.get(key)
        if i is None:
            new.append((key, count))
        else:
            counts[i] = count
    other = sum(count for _, count in new)
    # Buckets: every reference category, missing, then new (and the reference's tail, if truncated).
    reference_counts = np.array([*column.counts, column.missing, column.other], dtype=np.int64)
    current_counts = np.append(counts, [missing, other])
    reference_shares = reference_counts / column.rows
    current_shares = current_counts / len(series)
    chi2, p_value = chi_square(reference_counts, current_counts)
    new.sort(key=lambda item: (-item[1], item[0]))
    return _Measured(
        name=column.name,
        kind="categorical",
        statistics={
            "chi2": chi2,
            "p_value": p_value,
            "jensen_shannon": jensen_shannon(reference_shares, current_shares),
            "psi": psi(reference_shares, current_shares),
        },
        values_compared=min(column.rows, len(series)),
        emptied=missing == len(series) and column.missing < column.rows,
        reference={
            "rows": column.rows,
            "missing": column.missing,
            "categories": len(column.categories),
            "other": column.other,
        },
        current={
            "rows": len(series),
            "missing": missing,
            "new_category_rows": other,
            "new_categories": [[key, count] for key, count in new[:NEW_CATEGORIES_LISTED]],
            "new_categories_total": len(new),
        },
        distribution=_categorical_distribution(
            [*column.categories, MISSING_BUCKET, OTHER_BUCKET if not column.other else TAIL_BUCKET],
            reference_shares,
            current_shares,
        ),
    )


def _decide(
    measured: _Measured, p_adjusted: float | None, thresholds: DriftThresholds, *, adjusted: bool = True
) -> FeatureDrift:
    """The verdict: drifted when large (an effect size at its threshold) and significant."""
    stats = {**measured.statistics, "p_value_adjusted": p_adjusted}
    if measured.kind == "numeric":
        metric, limit = "wasserstein_norm", thresholds.wasserstein
        if stats["wasserstein_norm"] is None:
            metric, limit = "psi", thresholds.psi
    else:
        metric, limit = "jensen_shannon", thresholds.jensen_shannon
    test = "KS" if measured.kind == "numeric" else "chi-square"

    large = [
        f"{name} {value:.3g} >= {threshold}"
        for name, threshold in {metric: limit, "psi": thresholds.psi}.items()
        if (value := stats[name]) is not None and value >= threshold
    ]
    reasons: list[str] = []
    if measured.emptied:
        decided_by = "missing"
        reasons.append("every current value is missing")
    elif not large:
        decided_by = "effect size"
    elif p_adjusted is None:  # no test possible (no values on one side): the effect size decides
        decided_by = "effect size"
        reasons.extend(large)
    elif p_adjusted < thresholds.p_value:
        decided_by = "effect size and p-value"
        reasons.extend(large)
        reasons.append(
            f"{test} p-value {p_adjusted:.3g}{' (Benjamini-Hochberg adjusted)' if adjusted else ''} "
            f"< {thresholds.p_value} on {measured.values_compared} values"
        )
    else:
        decided_by = "p-value"  # large but not significant: noise of a small sample
    return FeatureDrift(
        name=measured.name,
        kind=measured.kind,
        drifted=bool(reasons),
        decided_by=decided_by,
        metric=metric,
        score=stats[metric],
        reasons=tuple(reasons),
        statistics=stats,
        reference=measured.reference,
        current=measured.current,
        distribution=measured.distribution,
    )


def _numeric_distribution(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Shares of both sorted samples on common equal-width bins (0.5 % tails in the end bins)."""
    samples = [s for s in (reference, current) if s.size]
    if not samples:
        return {"edges": [], "reference": [], "current": []}
    low = min(s[int(0.005 * (s.size - 1))] for s in samples)
    high = max(s[int(0.995 * (s.size - 1))] for s in samples)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, PLOT_BINS + 1)

    def shares(sample: np.ndarray) -> list[float]:
        if not sample.size:
            return [0.0] * PLOT_BINS
        cumulative = np.concatenate([[0], np.searchsorted(sample, edges[1:-1], side="right"), [sample.size]])
        return [round(float(s), 6) for s in np.diff(cumulative) / sample.size]

    return {
        "edges": [float(e) for e in edges],
        "reference": shares(reference),
        "current": shares(current),
    }


def _categorical_distribution(
    labels: list[str], reference: np.ndarray, current: np.ndarray
) -> dict[str, Any]:
    """The ``PLOT_CATEGORIES`` buckets with the largest share on either side, largest first."""
    largest = np.argsort(-np.maximum(reference, current), kind="stable")[:PLOT_CATEGORIES]
    top = [int(i) for i in largest if reference[i] > 0 or current[i] > 0]
    return {
        "labels": [labels[i] for i in top],
        "reference": [round(float(reference[i]), 6) for i in top],
        "current": [round(float(current[i]), 6) for i in top],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def _json_safe(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as Python, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
