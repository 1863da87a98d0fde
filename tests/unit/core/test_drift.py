"""Drift statistics and verdicts: injected drift is found, noise is not, distances match scipy."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_provider.core.drift import (
    DriftThresholds,
    benjamini_hochberg,
    chi_square,
    compare_to_reference,
    ks_p_value,
    ks_wasserstein,
)
from mlops_provider.core.profile import build_reference_profile

pytestmark = pytest.mark.unit

NUMERIC = ["mean_shift", "variance", "stable_num", "turns_null", "tiny_shift"]
CATEGORICAL = ["share_change", "new_category", "stable_cat", "cat_turns_null", "flag"]
PLANS = np.array(["basic", "plus", "pro", "team"])


def frame(rows: int, seed: int, *, drift: bool = False) -> pd.DataFrame:
    """Features on ``rows`` rows; with ``drift`` some are changed, each in one known way."""
    rng = np.random.default_rng(seed)
    plan_p = [0.4, 0.3, 0.2, 0.1]
    data = {
        "mean_shift": rng.normal(10 + (0.5 * 2 if drift else 0), 2, rows),  # +0.5 sigma
        "variance": rng.normal(0, math.sqrt(1.5) if drift else 1, rows),  # variance x1.5
        "stable_num": rng.exponential(3, rows),
        "turns_null": np.full(rows, np.nan) if drift else rng.normal(5, 1, rows),
        "tiny_shift": rng.normal(0.02 if drift else 0, 1, rows),  # +0.02 sigma: negligible
        "share_change": PLANS[rng.choice(4, rows, p=[0.15, 0.3, 0.2, 0.35] if drift else plan_p)],
        "new_category": np.where(
            drift & (rng.random(rows) < 0.2), "enterprise", PLANS[rng.choice(4, rows, p=plan_p)]
        ),
        "stable_cat": PLANS[rng.choice(4, rows, p=plan_p)],
        "cat_turns_null": pd.Series(
            [None] * rows if drift else PLANS[rng.choice(4, rows, p=plan_p)], dtype="str"
        ),
        "flag": rng.random(rows) < 0.3,
    }
    return pd.DataFrame(data)


def profile_of(reference: pd.DataFrame, **kwargs):
    return build_reference_profile(reference, numeric=NUMERIC, categorical=CATEGORICAL, **kwargs)


@pytest.fixture(scope="module")
def drift_report():
    reference = frame(20_000, seed=1)
    return compare_to_reference(profile_of(reference), frame(20_000, seed=2, drift=True))


def test_injected_drift_is_flagged_and_unchanged_columns_are_not(drift_report):
    verdicts = {f.name: f.drifted for f in drift_report.features}
    assert verdicts == {
        "mean_shift": True,
        "variance": True,
        "stable_num": False,
        "turns_null": True,
        "tiny_shift": False,
        "share_change": True,
        "new_category": True,
        "stable_cat": False,
        "cat_turns_null": True,
        "flag": False,
    }
    assert drift_report.drifted  # 6 of 10 features >= 0.3
    assert drift_report.share == pytest.approx(0.6) == drift_report.uniform_share
    assert drift_report.weighting == "uniform"  # the profile holds no importance


def test_each_drift_is_explained_by_the_statistic_that_caught_it(drift_report):
    by_name = {f.name: f for f in drift_report.features}
    mean_shift = by_name["mean_shift"]
    assert mean_shift.decided_by == "effect size and p-value"
    assert "KS p-value" in mean_shift.reasons[-1] and "Benjamini-Hochberg" in mean_shift.reasons[-1]
    assert mean_shift.metric == "wasserstein_norm"
    assert mean_shift.score == pytest.approx(0.5, abs=0.03)
    # Same mean, std x1.22: W1 = 0.22 * E|Z| ~ 0.18 sigma.
    assert by_name["variance"].score == pytest.approx((math.sqrt(1.5) - 1) * math.sqrt(2 / math.pi), abs=0.02)
    assert by_name["stable_num"].score < 0.05
    assert by_name["turns_null"].decided_by == "missing"
    assert by_name["turns_null"].reasons == ("every current value is missing",)
    assert by_name["turns_null"].current["missing"] == 20_000
    assert by_name["cat_turns_null"].decided_by == "missing"
    new = by_name["new_category"]
    assert new.current["new_categories"] == [["enterprise", new.current["new_category_rows"]]]
    assert new.current["new_category_rows"] == pytest.approx(4_000, rel=0.05)
    assert new.statistics["jensen_shannon"] >= 0.1
    assert by_name["share_change"].reasons[0].startswith("jensen_shannon")
    assert by_name["flag"].statistics["jensen_shannon"] < 0.05


def test_a_negligible_shift_on_a_million_rows_is_not_flagged():
    rng = np.random.default_rng(11)
    rows = 1_000_000
    reference = pd.DataFrame({"x": rng.normal(0, 1, rows), "c": PLANS[rng.integers(0, 4, rows)]})
    current = pd.DataFrame({"x": rng.normal(0.02, 1, rows), "c": PLANS[rng.integers(0, 4, rows)]})
    profile = build_reference_profile(reference, numeric=["x"], categorical=["c"])
    report = compare_to_reference(profile, current)
    x = report.features[0]
    assert not x.drifted and not report.drifted
    assert x.decided_by == "effect size"
    assert x.score == pytest.approx(0.02, abs=0.01)
    assert x.statistics["p_value"] < 0.01  # significant, and rightly ignored at this size
    # Nor with every row in KS and Wasserstein instead of 100,000-value samples.
    full = build_reference_profile(reference, numeric=["x"], categorical=["c"], sample_rows=rows)
    exact = compare_to_reference(full, current, current_sample_rows=rows).features[0]
    assert not exact.drifted
    assert exact.score == pytest.approx(0.02, abs=0.005)
    assert exact.statistics["p_value"] < 1e-6


@pytest.mark.parametrize("rows", [300, 3_000])
def test_no_drift_data_is_called_stable_at_least_19_times_in_20(rows):
    numeric = [c for c in NUMERIC if c != "turns_null"]
    false_alarms = []
    for seed in range(20):
        reference, current = frame(rows, seed=100 + seed), frame(rows, seed=200 + seed)
        profile = build_reference_profile(reference, numeric=numeric, categorical=CATEGORICAL)
        report = compare_to_reference(profile, current)
        assert {f.decided_by for f in report.features} <= {"p-value", "effect size"}
        false_alarms.append(report.drifted)
    assert sum(false_alarms) <= 1


def test_small_samples_need_benjamini_hochberg_adjusted_significance_as_well():
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({f"x{i}": rng.normal(0, 1, 400) for i in range(4)})
    current = pd.DataFrame({f"x{i}": rng.normal(0.6 if i == 0 else 0, 1, 400) for i in range(4)})
    report = compare_to_reference(
        build_reference_profile(reference, numeric=list(reference), categorical=[]), current
    )
    raw = [f.statistics["p_value"] for f in report.features]
    assert [f.statistics["p_value_adjusted"] for f in report.features] == pytest.approx(
        list(stats.false_discovery_control(raw))
    )
    assert [f.drifted for f in report.features] == [True, False, False, False]
    assert report.features[0].decided_by == "effect size and p-value"
    assert "Benjamini-Hochberg" in report.features[0].reasons[-1]
    # A large effect that is not significant after the adjustment is noise: not drifted.
    strict = compare_to_reference(
        build_reference_profile(reference, numeric=list(reference), categorical=[]),
        current,
        thresholds=DriftThresholds(p_value=1e-20),
    )
    assert not strict.features[0].drifted and strict.features[0].decided_by == "p-value"
    assert strict.features[0].score >= 0.1 and strict.features[0].reasons == ()


def test_benjamini_hochberg_matches_scipy_and_keeps_missing_p_values_missing():
    assert benjamini_hochberg([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.04, 0.04])
    assert benjamini_hochberg([None]) == [None]
    p_values = np.random.default_rng(1).random(50) ** 3
    assert benjamini_hochberg(list(p_values)) == pytest.approx(
        list(stats.false_discovery_control(p_values)), rel=1e-12
    )


# ----------------------------------------------------------------- agreement with scipy


def textbook_psi(reference: np.ndarray, current: np.ndarray, edges: np.ndarray) -> float:
    """PSI on bins (-inf, e0], ..., (ek, inf), empty bins as 0.0001 (one bin at a time)."""
    bounds = [-np.inf, *edges, np.inf]
    total = 0.0
    for low, high in itertools.pairwise(bounds):
        r = max(np.mean((reference > low) & (reference <= high)), 0.0001)
        c = max(np.mean((current > low) & (current <= high)), 0.0001)
        total += (c - r) * math.log(c / r)
    return total


@pytest.mark.parametrize("shift", [0.0, 0.3])
@pytest.mark.parametrize("rows", [(3_000, 2_000), (30_000, 12_000)])  # exact and asymptotic KS
def test_numeric_statistics_match_scipy(shift, rows):
    rng = np.random.default_rng(21)
    reference = pd.DataFrame({"x": rng.normal(0, 1, rows[0]), "k": rng.integers(0, 8, rows[0])})
    current = pd.DataFrame({"x": rng.normal(shift, 1.2, rows[1]), "k": rng.integers(1, 9, rows[1])})
    # The profile keeps every reference value, the check every current value.
    profile = build_reference_profile(reference, numeric=["x", "k"], categorical=[], sample_rows=rows[0])
    report = compare_to_reference(profile, current, current_sample_rows=rows[1])
    for feature in report.features:
        ref = reference[feature.name].to_numpy(dtype=float)
        cur = current[feature.name].to_numpy(dtype=float)
        ks = stats.ks_2samp(ref, cur)
        got = feature.statistics
        assert got["ks"] == pytest.approx(ks.statistic, abs=1e-9)
        assert got["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-6, abs=1e-300)
        assert got["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-9)
        assert got["wasserstein_norm"] == pytest.approx(got["wasserstein"] / ref.std(), abs=1e-9)
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        edges = edges[edges < ref.max()]
        assert got["psi"] == pytest.approx(textbook_psi(ref, cur, edges), abs=1e-6)


def test_large_samples_report_the_limiting_ks_p_value():
    rng = np.random.default_rng(2)
    reference, current = np.sort(rng.normal(size=40_000)), np.sort(rng.normal(0.01, 1, size=60_000))
    ks, _ = ks_wasserstein(reference, current)
    effective = 40_000 * 60_000 / 100_000
    expected = stats.kstwobign.sf(math.sqrt(effective) * ks)
    assert ks_p_value(ks, reference, current) == pytest.approx(expected, rel=1e-9)
    # ... which is within 1 % of ks_2samp's finite-n value at this size.
    assert ks_p_value(ks, reference, current) == pytest.approx(
        stats.ks_2samp(reference, current).pvalue, rel=0.01
    )


@pytest.mark.parametrize(
    ("reference", "current"),
    [([500, 300, 0, 20], [100, 90, 30, 0]), ([700, 300], [60, 40]), ([10, 1], [3, 2])],  # 2 x 2: Yates
)
def test_chi_square_matches_scipy_including_yates_correction(reference, current):
    table = np.array([reference, current])
    expected = stats.chi2_contingency(table[:, table.sum(axis=0) > 0])
    statistic, p_value = chi_square(np.array(reference), np.array(current))
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert chi_square(np.array([5, 0]), np.array([3, 0])) == (0.0, 1.0)  # one bucket: nothing to test


def test_ks_and_wasserstein_handle_ties_and_unequal_sizes():
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = np.sort(rng.integers(0, 5, rng.integers(1, 40)).astype(float))
        b = np.sort(rng.integers(0, 7, rng.integers(1, 40)).astype(float))
        ks, w = ks_wasserstein(a, b)
        assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
        assert w == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-12)


def test_categorical_statistics_match_scipy():
    rng = np.random.default_rng(8)
    reference = pd.Series(rng.choice(["a", "b", "c", None], 5_000, p=[0.5, 0.3, 0.15, 0.05]), dtype="str")
    current = pd.Series(rng.choice(["a", "b", "d", None], 3_000, p=[0.4, 0.3, 0.2, 0.1]), dtype="str")
    profile = build_reference_profile(pd.DataFrame({"c": reference}), numeric=[], categorical=["c"])
    feature = compare_to_reference(profile, pd.DataFrame({"c": current})).features[0]

    # Buckets: the reference's categories, missing, new ("d"); built here with pandas.
    def buckets(series: pd.Series) -> np.ndarray:
        counts = series.fillna("<missing>").value_counts()
        return np.array([counts.get(k, 0) for k in ("a", "b", "c", "<missing>", "d")], dtype=float)

    ref_counts, cur_counts = buckets(reference), buckets(current)
    chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
    ref_shares, cur_shares = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    psi = sum(
        (max(c, 1e-4) - max(r, 1e-4)) * math.log(max(c, 1e-4) / max(r, 1e-4))
        for r, c in zip(ref_shares, cur_shares, strict=True)
    )
    got = feature.statistics
    assert got["chi2"] == pytest.approx(chi2.statistic, rel=1e-9)
    assert got["p_value"] == pytest.approx(chi2.pvalue, rel=1e-6, abs=1e-300)
    assert got["jensen_shannon"] == pytest.approx(distance.jensenshannon(ref_shares, cur_shares), abs=1e-9)
    assert got["psi"] == pytest.approx(psi, abs=1e-9)
    assert feature.current["missing"] == int(current.isna().sum())
    assert feature.current["new_categories"] == [["d", int((current == "d").sum())]]


# ------------------------------------------------------------- prediction, weights, output


def test_prediction_drift_compares_score_distributions():
    rng = np.random.default_rng(3)
    reference = frame(5_000, seed=3)
    profile = profile_of(reference, scores=rng.beta(2, 5, 5_000))
    current = frame(5_000, seed=4)
    stable = compare_to_reference(profile, current, current_scores=rng.beta(2, 5, 5_000))
    shifted = compare_to_reference(profile, current, current_scores=rng.beta(4, 4, 5_000))
    assert stable.prediction.name == "prediction" and not stable.prediction.drifted
    assert shifted.prediction.drifted and shifted.prediction.metric == "wasserstein_norm"
    assert shifted.summary()["prediction"]["drifted"] is True
    assert not shifted.drifted  # features unchanged: the dataset verdict is about features
    assert compare_to_reference(profile, current).prediction is None
    with pytest.raises(ValueError, match="no reference scores"):
        compare_to_reference(profile_of(reference), current, current_scores=np.zeros(5_000))


def test_prediction_drift_of_predicted_classes_compares_class_shares():
    rng = np.random.default_rng(5)
    classes = np.array(["low", "mid", "high"], dtype=object)
    reference, current = frame(5_000, seed=3), frame(5_000, seed=4)
    profile = profile_of(reference, scores=rng.choice(classes, 5_000, p=[0.5, 0.3, 0.2]))
    stable = compare_to_reference(
        profile, current, current_scores=rng.choice(classes, 5_000, p=[0.5, 0.3, 0.2])
    )
    shifted = compare_to_reference(
        profile, current, current_scores=rng.choice(classes, 5_000, p=[0.2, 0.3, 0.5])
    )
    assert stable.prediction.kind == "categorical" and not stable.prediction.drifted
    assert shifted.prediction.drifted and shifted.prediction.metric == "jensen_shannon"
    assert shifted.prediction.distribution["labels"][:2] == ["low", "high"]
    with pytest.raises(
        ValueError, match="the profile holds predicted classes but the current predictions are numeric"
    ):
        compare_to_reference(profile, current, current_scores=rng.random(5_000))
    numeric = profile_of(reference, scores=rng.random(5_000))
    with pytest.raises(
        ValueError, match="the profile holds numeric scores but the current predictions are predicted"
    ):
        compare_to_reference(numeric, current, current_scores=rng.choice(classes, 5_000))


def test_feature_weights_change_the_dataset_verdict(drift_report):
    reference, current = frame(3_000, seed=1), frame(3_000, seed=2, drift=True)
    profile = profile_of(reference)
    drifted = [
        n for n in NUMERIC + CATEGORICAL if n not in ("stable_num", "tiny_shift", "stable_cat", "flag")
    ]
    heavy = {name: 10.0 for name in ("stable_num", "tiny_shift", "stable_cat", "flag")}
    report = compare_to_reference(profile, current, thresholds=DriftThresholds(feature_weights=heavy))
    assert sorted(report.drifted_features) == sorted(drifted)
    assert report.share == pytest.approx(6 / 46)
    assert report.weights["flag"] == pytest.approx(10 / 46)
    assert not report.drifted
    with pytest.raises(ValueError, match=r"feature_weights names unknown features \['nope'\]"):
        compare_to_reference(profile, current, thresholds=DriftThresholds(feature_weights={"nope": 1}))


def test_summary_is_small_json_and_to_dict_is_complete_json(drift_report):
    summary = drift_report.summary()
    text = json.dumps(summary, allow_nan=False)
    assert len(text) < 2_000
    assert summary["drifted"] is True and summary["drifted_count"] == 6
    assert summary["drifted_features"] == [f.name for f in drift_report.features if f.drifted]
    assert summary["scores"]["mean_shift"][0] == "wasserstein_norm"
    assert list(summary["scores"])[:6] == sorted(
        summary["drifted_features"], key=lambda n: -(summary["scores"][n][1] or 0)
    )
    full = json.loads(json.dumps(drift_report.to_dict(), allow_nan=False))
    assert [f["name"] for f in full["features"]] == NUMERIC + CATEGORICAL
    assert full["thresholds"]["wasserstein"] == 0.1
    turns_null = full["features"][NUMERIC.index("turns_null")]
    assert turns_null["statistics"]["ks"] is None and turns_null["drifted"] is True


def test_the_summary_names_at_most_100_features():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({f"x{i}": rng.normal(size=200) for i in range(150)})
    report = compare_to_reference(
        build_reference_profile(reference, numeric=list(reference), categorical=[]), reference + 5
    )
    summary = report.summary()
    assert summary["drifted_count"] == 150
    assert len(summary["drifted_features"]) == len(summary["scores"]) == 100
    assert len(json.dumps(summary)) < 8_000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"wasserstein": 0.2, "drift_share": 0.4}, None),
        ({"small_sample_rows": 50}, r"Unknown drift thresholds \['small_sample_rows'\]"),
        ({"wassersten": 0.2}, r"Unknown drift thresholds \['wassersten'\]"),
        ({"psi": "0.2"}, "psi: must be a number, not '0.2'"),
        ({"psi": True}, "psi: must be a number"),
        ({"p_value": 1.5}, r"p_value: must be in \(0.0, 1]"),
        ({"drift_share": 0}, "drift_share: must be in"),
        ({"jensen_shannon": 0.9}, "jensen_shannon: must be in"),
        ({"wasserstein": float("nan")}, "wasserstein: must be a number"),
        (
            {"feature_weights": {"a": -1}},
            r"feature_weights: weights must be finite numbers >= 0 \(bad: \['a'\]\)",
        ),
    ],
)
def test_thresholds_from_overrides_validate_names_types_and_ranges(overrides, message):
    if message is None:
        thresholds = DriftThresholds.from_overrides(overrides)
        assert (thresholds.wasserstein, thresholds.drift_share) == (0.2, 0.4)
        assert thresholds.psi == DriftThresholds().psi == 0.2
        return
    with pytest.raises(ValueError, match=message):
        DriftThresholds.from_overrides(overrides)


def test_defaults_are_evidently_like():
    assert DriftThresholds.from_overrides(None) == DriftThresholds(
        wasserstein=0.1, jensen_shannon=0.1, psi=0.2, p_value=0.05, drift_share=0.3
    )


def test_bad_current_data_is_named():
    reference = frame(500, seed=1)
    profile = profile_of(reference)
    with pytest.raises(ValueError, match=r"columns missing from the current data: \['flag'\]"):
        compare_to_reference(profile, reference.drop(columns="flag"))
    with pytest.raises(ValueError, match="the current data has no rows"):
        compare_to_reference(profile, reference.iloc[:0])
    with pytest.raises(ValueError, match="Column 'mean_shift' is not numeric"):
        compare_to_reference(profile, reference.assign(mean_shift="a"))
    with pytest.raises(ValueError, match="current_sample_rows must be a positive integer, not 0"):
        compare_to_reference(profile, reference, current_sample_rows=0)


def test_missing_values_and_infinities_count_in_psi_not_in_ks():
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": rng.normal(size=5_000)})
    values = rng.normal(size=5_000)
    values[:1_500] = np.nan
    values[1_500:2_000] = np.inf
    profile = build_reference_profile(reference, numeric=["x"], categorical=[])
    feature = compare_to_reference(profile, pd.DataFrame({"x": values})).features[0]
    assert feature.current["missing"] == 2_000
    assert feature.statistics["wasserstein_norm"] < 0.1  # the present values did not move
    assert feature.drifted and feature.reasons[0].startswith("psi")  # 40 % missing did


def test_the_share_weighs_features_by_their_importance_to_the_model():
    from mlops_provider.core.drift import DriftPolicy

    reference, current = frame(3_000, seed=1), frame(3_000, seed=2, drift=True)
    current = current.assign(turns_null=reference["turns_null"], cat_turns_null=reference["cat_turns_null"])
    importance = dict.fromkeys(NUMERIC + CATEGORICAL, 0.01) | {"mean_shift": 0.9}
    profile = profile_of(reference, importance=importance)
    report = compare_to_reference(profile, current)
    assert sorted(report.drifted_features) == ["mean_shift", "new_category", "share_change", "variance"]
    assert report.weighting == "importance" and report.drifted
    assert report.share == pytest.approx(0.93 / 0.99) and report.uniform_share == pytest.approx(0.4)
    assert report.summary()["weights"]["mean_shift"] == pytest.approx(0.9 / 0.99, abs=1e-4)
    # The strongest feature alone outweighs a vote of columns: drop it and nothing else matters much.
    quiet = compare_to_reference(profile, current.assign(mean_shift=reference["mean_shift"]))
    assert not quiet.drifted and quiet.share == pytest.approx(0.03 / 0.99)
    # Uniform weighting is still available, and the report says which one it used.
    uniform = compare_to_reference(profile, current, policy=DriftPolicy(weighting="uniform"))
    assert uniform.weighting == "uniform" and uniform.share == uniform.uniform_share == pytest.approx(0.4)
    assert uniform.summary()["policy"] == {
        "weighting": "uniform",
        "prediction_drift": True,
        "performance": True,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"weighting": "votes"}, "weighting: must be one of importance, uniform"),
        ({"prediction_drift": "yes"}, "prediction_drift: must be true or false"),
        ({"share": 0.3}, r"Unknown drift policy keys \['share'\]"),
    ],
)
def test_policy_from_overrides_names_what_is_wrong(overrides, message):
    from mlops_provider.core.drift import DriftPolicy

    with pytest.raises(ValueError, match=message):
        DriftPolicy.from_overrides(overrides)
