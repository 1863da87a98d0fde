from __future__ import annotations

import dataclasses
import pickle
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from include.example_data.churn import generate_day
from mlops_provider.core.datasets import load_dataset_config
from mlops_provider.core.evaluation import classification_metrics
from mlops_provider.core.models import load_model_config
from mlops_provider.core.training import (
    build_pipeline,
    features_and_target,
    fit_candidate,
    model_output,
    permutation_importance,
    plan_split,
    reference_sample,
    row_parts,
    row_split_seed,
    split_days,
)
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

MODEL = load_model_config(REPO_ROOT / "include" / "models" / "churn.yaml")
DATASET = load_dataset_config(REPO_ROOT / "include" / "datasets" / "churn.yaml")
START = date(2024, 3, 1)


def days(n: int, start: date = START) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def frame(day_list: list[date], rows: int = 3000, **to_pandas) -> pd.DataFrame:
    return pa.concat_tables([generate_day(d, rows) for d in day_list]).to_pandas(**to_pandas)


@pytest.fixture(scope="module")
def fitted():
    train, holdout = split_days(days(6), 2)
    X, y = features_and_target(frame(train), DATASET)
    pipeline = fit_candidate(build_pipeline(DATASET, MODEL, {"C": 1.0}), X, y)
    return pipeline, holdout


def test_permutation_importance_finds_what_the_model_relies_on_reproducibly(fitted):
    pipeline, holdout = fitted
    X, y = features_and_target(frame(holdout), DATASET)
    importance = permutation_importance(pipeline, X, y, MODEL.task, random_state=1)
    assert list(importance) == list(X.columns)
    assert sum(importance.values()) == pytest.approx(1.0) and min(importance.values()) >= 0
    assert importance == permutation_importance(pipeline, X, y, MODEL.task, random_state=1)
    assert max(importance.values()) > 0.2
    # Shuffling a column that holds one value changes no prediction: importance 0.
    constant = X.assign(tenure_months=X["tenure_months"].median())
    assert permutation_importance(pipeline, constant, y, MODEL.task, random_state=1)["tenure_months"] == 0


def test_split_days_holds_out_the_most_recent_days_whatever_the_input_order():
    given = [days(5)[i] for i in (3, 0, 4, 1, 2, 4)]
    train, holdout = split_days(given, 2)
    assert train == days(3)
    assert holdout == days(5)[3:]


def test_split_days_needs_one_training_day_more_than_the_holdout():
    assert split_days(days(3), 2) == (days(1), days(3)[1:])
    with pytest.raises(
        ValueError, match=r"Found 2 day\(s\) of data, need at least 3 \(2 holdout \+ 1 training\)"
    ):
        split_days(days(2), 2)
    with pytest.raises(ValueError, match="holdout_days must be at least 1"):
        split_days(days(3), 0)


def test_plan_split_without_a_change_window_is_the_time_based_split():
    plan = plan_split(days(8), holdout_days=3, selection_days=1)
    assert plan.rule == "time" and plan.change_days == ()
    assert [s.day for s in plan.fit] == days(4)
    assert [s.day for s in plan.selection] == [days(8)[4]]
    assert [s.day for s in plan.holdout] == days(8)[5:]
    assert all(s.part is None for s in plan.fit + plan.selection + plan.holdout)


def test_plan_split_with_a_change_window_fits_on_post_change_rows_and_holds_out_only_post_change_rows():
    window = days(10)
    plan = plan_split(window, holdout_days=5, change_window=(window[7], window[9]))

    assert plan.rule == "post_change" and plan.change_days == tuple(window[7:])
    # Every pre-change day is fitted on whole; each post-change day contributes its fit part.
    assert [(s.day, s.part) for s in plan.fit] == [(d, None) for d in window[:7]] + [
        (d, "fit") for d in window[7:]
    ]
    assert [(s.day, s.part) for s in plan.selection] == [(d, "selection") for d in window[7:]]
    assert [(s.day, s.part) for s in plan.holdout] == [(d, "holdout") for d in window[7:]]


def test_plan_split_change_window_keeps_later_days_in_fit_and_needs_a_post_change_day():
    window = days(6)
    plan = plan_split(window, holdout_days=5, change_window=(window[2], window[3]))
    assert [(s.day, s.part) for s in plan.fit] == [
        (window[0], None), (window[1], None), (window[2], "fit"), (window[3], "fit"),
        (window[4], None), (window[5], None),
    ]  # fmt: skip
    assert {s.day for s in plan.holdout} == {window[2], window[3]}
    # Only post-change days are needed (the time rule would need holdout_days + 2 days).
    assert plan_split(window[3:4], holdout_days=5, change_window=(window[3], window[5])).change_days == (
        window[3],
    )
    later = window[5] + timedelta(days=1)
    with pytest.raises(ValueError, match="No partition of the training window"):
        plan_split(window, holdout_days=2, change_window=(later, later + timedelta(days=2)))
    with pytest.raises(ValueError, match="starts after it ends"):
        plan_split(window, holdout_days=2, change_window=(window[3], window[2]))


def test_row_parts_share_each_class_and_cover_every_row_once():
    labels = np.array(["yes"] * 203 + ["no"] * 797 + [None] * 10, dtype=object)
    shares = {"fit": 0.5, "selection": 0.2, "holdout": 0.3}
    parts = row_parts(len(labels), seed=row_split_seed(42, START), strata=labels, shares=shares)

    assert parts.shape == (len(labels),) and set(np.unique(parts).tolist()) == {0, 1, 2}
    for value, size in (("yes", 203), ("no", 797)):
        counts = np.bincount(parts[labels == value], minlength=3)
        assert np.abs(counts - size * np.array([0.5, 0.2, 0.3])).max() <= 1, (value, counts)
    assert np.bincount(parts[np.equal(labels, None)], minlength=3).tolist() == [5, 2, 3]
    # Shuffled, not in blocks: the first rows of a class land in every part.
    assert len(set(parts[:100].tolist())) == 3


def test_row_parts_are_reproducible_per_seed_and_change_with_the_day():
    one = row_parts(5000, seed=row_split_seed(42, START))
    assert np.array_equal(one, row_parts(5000, seed=row_split_seed(42, START)))
    other_day = row_parts(5000, seed=row_split_seed(42, START + timedelta(days=1)))
    assert not np.array_equal(one, other_day)
    assert np.bincount(one).tolist() == [2500, 1000, 1500]
    with pytest.raises(ValueError, match="strata has 3 values for 4 rows"):
        row_parts(4, seed=1, strata=[0, 1, 0])
    with pytest.raises(ValueError, match="must be positive"):
        row_parts(4, seed=1, shares={"fit": 1.0, "holdout": 0.0})


def test_features_and_target_orders_features_and_maps_the_positive_class():
    data = frame(days(1), rows=200)
    X, y = features_and_target(data, DATASET)
    assert list(X.columns) == DATASET.feature_columns
    assert y.dtype == np.int64
    assert y.tolist() == data["churned"].tolist()


def test_string_target_classes_map_the_second_class_to_one():
    dataset = dataclasses.replace(DATASET, target_classes=["stay", "leave"])
    data = frame(days(1), rows=50)
    data["churned"] = data["churned"].map({0: "stay", 1: "leave"})
    _, y = features_and_target(data, dataset)
    assert y.tolist() == (data["churned"] == "leave").astype(int).tolist()


def test_features_and_target_rejects_bad_targets_and_missing_columns():
    data = frame(days(1), rows=50)
    data.loc[3, "churned"] = 2
    with pytest.raises(
        ValueError, match=r"1 row\(s\) have a target 'churned' that is null or not one of \[0, 1\]"
    ):
        features_and_target(data, DATASET)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['region'\]"):
        features_and_target(data.drop(columns=["region"]), DATASET)
    with pytest.raises(ValueError, match="has 3 target classes, which does not fit a binary model"):
        features_and_target(data, dataclasses.replace(DATASET, target_classes=[0, 1, 2]), "binary")


def test_build_pipeline_applies_params_and_the_model_random_state():
    pipeline = build_pipeline(DATASET, MODEL, {"C": 0.1})
    estimator = pipeline.named_steps["model"]
    assert estimator.C == 0.1
    assert estimator.max_iter == 1000  # fixed params from the YAML
    assert estimator.random_state == MODEL.random_state
    assert build_pipeline(DATASET, MODEL, {"random_state": 7}).named_steps["model"].random_state == 7
    kinds = {name: cols for name, _, cols in pipeline.named_steps["preprocess"].transformers}
    assert kinds == DATASET.features


def test_fitted_pipeline_beats_chance_on_later_days(fitted):
    pipeline, holdout = fitted
    X, y = features_and_target(frame(holdout), DATASET)
    scores = classification_metrics(y, model_output(pipeline, X, "binary"))
    assert scores["roc_auc"] > 0.75
    assert scores["log_loss"] < 0.45


def test_fitted_pipeline_predicts_raw_rows_with_unseen_categories_and_nulls(fitted):
    pipeline, holdout = fitted
    raw = frame(holdout[:1], rows=20)  # whole rows: keys, timestamps, target are ignored
    raw.loc[0, "region"] = "atlantis"
    raw.loc[1, "contract_type"] = None
    raw.loc[2, "paperless_billing"] = None
    raw.loc[3, "total_charges"] = None
    proba = model_output(pipeline, raw, "binary")
    assert proba.shape == (20,)
    assert np.isfinite(proba).all()
    assert ((proba > 0) & (proba < 1)).all()


@pytest.mark.parametrize(
    "types_mapper",
    [
        pd.ArrowDtype,
        {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}.get,
    ],
    ids=["arrow", "nullable"],
)
def test_features_and_target_brings_pd_na_frames_to_what_the_pipeline_takes(fitted, types_mapper):
    pipeline, holdout = fitted
    table = generate_day(holdout[0], 300)
    plain, y_plain = features_and_target(table.to_pandas(), DATASET)
    other, y_other = features_and_target(table.to_pandas(types_mapper=types_mapper), DATASET)
    assert other["paperless_billing"].isna().sum() == plain["paperless_billing"].isna().sum() > 0
    np.testing.assert_array_equal(y_other, y_plain)
    np.testing.assert_allclose(
        model_output(pipeline, other, "binary"), model_output(pipeline, plain, "binary")
    )


def test_fitted_pipeline_holds_only_types_skops_may_trust(fitted):
    from mlops_provider.core.model_io import trusted_types

    pipeline, _ = fitted
    assert all(name.startswith(("sklearn.", "numpy.", "builtins.")) for name in trusted_types(pipeline))


def test_fitted_pipeline_survives_pickling(fitted):
    pipeline, holdout = fitted
    X, _ = features_and_target(frame(holdout[:1], rows=100), DATASET)
    np.testing.assert_array_equal(
        model_output(pickle.loads(pickle.dumps(pipeline)), X, "binary"), model_output(pipeline, X, "binary")
    )


def test_fit_candidate_needs_every_class():
    X, y = features_and_target(frame(days(1), rows=100), DATASET)
    with pytest.raises(ValueError, match=r"only class\(es\) \[0\] of \[0, 1\]"):
        fit_candidate(build_pipeline(DATASET, MODEL, {}), X, np.zeros_like(y))


def test_reference_sample_is_seeded_and_ordered():
    data = frame(days(1), rows=500)
    sample = reference_sample(data, 100, random_state=1)
    assert len(sample) == 100
    assert sample.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, reference_sample(data, 100, random_state=1))
    assert reference_sample(data, 1000, random_state=1) is data


# ------------------------------------------------------------------ multiclass and regression

CONTRACTS = ["month_to_month", "one_year", "two_year"]


def _without(dataset, column):
    features = {kind: [c for c in cols if c != column] for kind, cols in dataset.features.items()}
    return dataclasses.replace(dataset, features=features)


MULTICLASS = dataclasses.replace(
    _without(DATASET, "contract_type"), target="contract_type", target_classes=CONTRACTS
)
REGRESSION = dataclasses.replace(
    _without(DATASET, "monthly_charges"), target="monthly_charges", target_classes=[]
)


def test_features_and_target_encode_the_target_per_task():
    data = frame(days(1), rows=300)
    X, y = features_and_target(data, MULTICLASS)
    assert "contract_type" not in X.columns
    assert y.dtype == np.int64
    assert y.tolist() == [CONTRACTS.index(v) for v in data["contract_type"]]
    X, y = features_and_target(data, REGRESSION)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, data["monthly_charges"].to_numpy())
    # The task defaults to the dataset's; Arrow-backed targets map alike.
    _, y_arrow = features_and_target(
        generate_day(days(1)[0], 300).to_pandas(types_mapper=pd.ArrowDtype), MULTICLASS
    )
    np.testing.assert_array_equal(y_arrow, features_and_target(data, MULTICLASS, "multiclass")[1])


def test_features_and_target_refuse_unknown_classes_and_non_numeric_regression_targets():
    data = frame(days(1), rows=50)
    data.loc[2, "contract_type"] = "lifetime"
    with pytest.raises(
        ValueError, match=r"1 row\(s\) have a target 'contract_type' that is null or not one of"
    ):
        features_and_target(data, MULTICLASS)
    data.loc[[4, 5], "monthly_charges"] = np.nan
    with pytest.raises(
        ValueError, match=r"2 row\(s\) have a target 'monthly_charges' that is null or not a finite"
    ):
        features_and_target(data, REGRESSION)
    with pytest.raises(ValueError, match="The target 'region' is not numeric"):
        features_and_target(
            data, dataclasses.replace(_without(DATASET, "region"), target="region", target_classes=[])
        )
    with pytest.raises(ValueError, match="does not fit a multiclass model"):
        features_and_target(data, DATASET, "multiclass")


def _model(dataset, task, estimator, **params):
    return dataclasses.replace(MODEL, task=task, estimator=estimator, params=params, param_grid={})


def test_multiclass_pipeline_outputs_class_probabilities_in_target_class_order():
    train, holdout = split_days(days(4), 1)
    X, y = features_and_target(frame(train, rows=2000), MULTICLASS)
    model = _model(MULTICLASS, "multiclass", "sklearn.linear_model.LogisticRegression", max_iter=500)
    pipeline = fit_candidate(build_pipeline(MULTICLASS, model, {}), X, y, classes=CONTRACTS)
    X_h, y_h = features_and_target(frame(holdout, rows=2000), MULTICLASS)
    proba = model_output(pipeline, X_h, "multiclass")
    assert proba.shape == (len(X_h), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Tenure says a lot about the contract: far better than always predicting the largest class.
    assert (proba.argmax(axis=1) == y_h).mean() > np.bincount(y_h).max() / len(y_h) + 0.05
    with pytest.raises(ValueError, match="not the class indices of a binary target"):
        model_output(pipeline, X_h, "binary")
    with pytest.raises(ValueError, match=r"holds only class\(es\) \['month_to_month', 'one_year'\] of"):
        fit_candidate(build_pipeline(MULTICLASS, model, {}), X[y < 2], y[y < 2], classes=CONTRACTS)


def test_regression_pipeline_predicts_the_target():
    train, holdout = split_days(days(3), 1)
    X, y = features_and_target(frame(train, rows=2000), REGRESSION)
    model = _model(REGRESSION, "regression", "sklearn.linear_model.Ridge")
    pipeline = fit_candidate(build_pipeline(REGRESSION, model, {"alpha": 1.0}), X, y, classes=())
    X_h, y_h = features_and_target(frame(holdout, rows=2000), REGRESSION)
    predicted = model_output(pipeline, X_h, "regression")
    assert predicted.shape == (len(X_h),) and predicted.dtype == np.float64
    # The internet service sets the charges' level: most of their variance is explained.
    assert 1 - np.mean((y_h - predicted) ** 2) / np.var(y_h) > 0.6
