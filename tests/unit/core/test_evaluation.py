from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_provider.core.evaluation import (
    DEFAULT_SELECTION_METRIC,
    METRICS,
    METRICS_BY_TASK,
    TASKS,
    best_candidate,
    class_confusion,
    classification_metrics,
    compute_metrics,
    confusion,
    evaluation_details,
    improvement,
    multiclass_metrics,
    per_class_metrics,
    regression_metrics,
    task_metrics,
    validate_metric,
)
from tests.unit.core.holdouts import CLASSES, PM, PR, YM, YR, P, Y

pytestmark = pytest.mark.unit


def test_metrics_know_their_task_and_direction():
    assert TASKS == ("binary", "multiclass", "regression")
    binary = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss"}
    assert set(task_metrics("binary")) == binary
    lower = {name for name, m in METRICS.items() if not m.greater_is_better}
    assert lower == {"log_loss", "rmse", "mae", "median_ae"}
    # A name two tasks share (accuracy, log_loss) is one metric in METRICS.
    assert all(METRICS[name] == m for metrics in METRICS_BY_TASK.values() for name, m in metrics.items())
    assert all(DEFAULT_SELECTION_METRIC[task] in task_metrics(task) for task in TASKS)
    assert improvement("roc_auc", 0.8, 0.7) == pytest.approx(0.1)
    assert improvement("log_loss", 0.3, 0.4) == pytest.approx(0.1)
    assert improvement("rmse", 2.0, 2.5) == pytest.approx(0.5)
    assert validate_metric("r2", "regression") == "r2"
    with pytest.raises(ValueError, match="Unknown metric 'roc_auc' for regression models"):
        validate_metric("roc_auc", "regression")
    with pytest.raises(ValueError, match="Unknown task 'ranking'"):
        task_metrics("ranking")


def test_classification_metrics_by_hand():
    scores = classification_metrics(Y, P)
    # predicted positive at >= 0.5: rows 3, 5, 6 -> tp=2 (3, 5), fp=1 (6), fn=1 (2), tn=4
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    # positives 0.35, 0.8, 0.9 against negatives 0.1, 0.4, 0.2, 0.6, 0.05: 3 + 5 + 5 of 15 pairs ordered right
    assert scores["roc_auc"] == pytest.approx(13 / 15)
    expected_log_loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert scores["log_loss"] == pytest.approx(expected_log_loss)
    assert 0 < scores["pr_auc"] <= 1
    assert set(scores) == set(task_metrics("binary"))
    assert all(isinstance(v, float) for v in scores.values())


def test_threshold_moves_the_label_metrics_only():
    low = classification_metrics(Y, P, threshold=0.3)
    assert low["recall"] == 1.0
    assert low["roc_auc"] == classification_metrics(Y, P)["roc_auc"]
    assert confusion(Y, P, threshold=0.3) == {"tn": 3, "fp": 2, "fn": 0, "tp": 3}


def test_confusion_counts():
    assert confusion(Y, P) == {"tn": 4, "fp": 1, "fn": 1, "tp": 2}


def test_two_column_probabilities_use_the_positive_column():
    assert classification_metrics(Y, np.column_stack([1 - P, P])) == classification_metrics(Y, P)


def test_one_class_holdout_leaves_auc_undefined_not_crashing():
    scores = classification_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.7, 0.3]))
    assert math.isnan(scores["roc_auc"])
    assert math.isnan(scores["pr_auc"])
    assert scores["precision"] == 0.0
    assert scores["accuracy"] == 0.75


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([0, 1], [0.1, 0.2, 0.3], "equal length"),
        ([], [], "empty holdout"),
        ([0, 1], [0.1, 1.2], r"probabilities in \[0, 1\]"),
        ([0, 1], [0.1, float("nan")], "finite probabilities"),
    ],
)
def test_inputs_are_validated(y, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.array(y), np.array(p))


def candidate(id_, **metrics):
    return {"id": id_, "params": {"C": id_}, "metrics": metrics}


def test_best_candidate_by_a_greater_is_better_metric():
    candidates = [candidate(0, roc_auc=0.7), candidate(1, roc_auc=0.82), candidate(2, roc_auc=0.8)]
    assert best_candidate(candidates, "roc_auc")["id"] == 1


def test_best_candidate_by_log_loss_takes_the_smallest():
    candidates = [candidate(0, log_loss=0.5), candidate(1, log_loss=0.3), candidate(2, log_loss=0.4)]
    assert best_candidate(candidates, "log_loss")["id"] == 1


def test_ties_go_to_the_smallest_id_whatever_the_order():
    candidates = [candidate(3, roc_auc=0.8), candidate(1, roc_auc=0.8 + 1e-15), candidate(2, roc_auc=0.7)]
    assert best_candidate(candidates, "roc_auc")["id"] == 1
    assert best_candidate(list(reversed(candidates)), "roc_auc")["id"] == 1
    assert best_candidate([candidate("b", f1=0.5), candidate("a", f1=0.5)], "f1")["id"] == "a"


def test_candidates_without_a_usable_value_are_skipped():
    candidates = [candidate(0, roc_auc=math.nan), candidate(1), candidate(2, roc_auc=0.6)]
    assert best_candidate(candidates, "roc_auc")["id"] == 2
    with pytest.raises(ValueError, match="No candidate has a finite 'roc_auc' among 2 candidate"):
        best_candidate(candidates[:2], "roc_auc")


def test_best_candidate_validates_metric_and_ids():
    with pytest.raises(ValueError, match="Unknown metric 'auc'"):
        best_candidate([candidate(0, roc_auc=0.7)], "auc")
    with pytest.raises(ValueError, match="Every candidate needs an 'id'"):
        best_candidate([{"metrics": {"roc_auc": 0.7}}], "roc_auc")
    assert best_candidate([{"run": "x", "metrics": {"f1": 0.1}}], "f1", id_key="run")["run"] == "x"


# --------------------------------------------------------------------- multiclass and regression


def test_multiclass_metrics_by_hand():
    scores = multiclass_metrics(YM, PM)
    assert set(scores) == set(task_metrics("multiclass"))
    assert scores["accuracy"] == pytest.approx(6 / 8)
    # per class: precision 2/3, 2/3, 1; recall 1, 2/3, 2/3
    f1 = [2 * p * r / (p + r) for p, r in ((2 / 3, 1), (2 / 3, 2 / 3), (1, 2 / 3))]
    assert scores["f1_macro"] == pytest.approx(np.mean(f1))
    assert scores["f1_weighted"] == pytest.approx(np.average(f1, weights=[2, 3, 3]))
    assert scores["balanced_accuracy"] == scores["recall_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log(PM[np.arange(8), YM])))
    assert 0.5 < scores["roc_auc_ovr"] <= 1
    assert compute_metrics("multiclass", YM, PM) == scores


def test_multiclass_breakdown_confusion_and_per_class():
    assert class_confusion(YM, PM) == [[2, 0, 0], [1, 2, 0], [0, 1, 2]]
    rows = per_class_metrics(YM, PM, CLASSES)
    assert [r["class"] for r in rows] == CLASSES
    assert [r["support"] for r in rows] == [2, 3, 3]
    assert rows[0]["recall"] == 1.0 and rows[2]["precision"] == 1.0
    details = evaluation_details("multiclass", YM, PM, classes=CLASSES)
    assert details["confusion"] == {"classes": CLASSES, "matrix": [[2, 0, 0], [1, 2, 0], [0, 1, 2]]}
    assert details["per_class"] == rows
    assert evaluation_details("binary", Y, P) == {"confusion": confusion(Y, P)}


def test_multiclass_holdout_with_one_class_leaves_auc_undefined():
    scores = multiclass_metrics(np.zeros(3, dtype=int), PM[:3])
    assert math.isnan(scores["roc_auc_ovr"])
    assert scores["balanced_accuracy"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 3], PM[:3], r"class indices 0..2"),
        ([0, 1], PM[:3], "equal length"),
        ([0, 1, 2], PM[:3, 0], "classes >= 2"),
        ([0, 1, 2], PM[:3] * 2, r"probabilities in \[0, 1\]"),
    ],
)
def test_multiclass_inputs_are_validated(y, p, message):
    with pytest.raises(ValueError, match=message):
        multiclass_metrics(np.array(y), np.array(p))


def test_regression_metrics_by_hand():
    scores = regression_metrics(YR, PR)
    errors = np.array([0.5, 0.5, 0.0, 2.0, 1.0])
    assert scores == pytest.approx(
        {
            "rmse": math.sqrt(np.mean(errors**2)),
            "mae": errors.mean(),
            "median_ae": 0.5,
            "r2": 1 - np.sum(errors**2) / np.sum((YR - YR.mean()) ** 2),
        }
    )
    assert set(scores) == set(task_metrics("regression"))
    assert compute_metrics("regression", YR, PR) == scores
    assert math.isnan(regression_metrics([4.0, 4.0], [4.0, 5.0])["r2"])
    residuals = evaluation_details("regression", YR, PR)["residuals"]
    assert residuals["mean"] == pytest.approx(np.mean(YR - PR))
    assert residuals["max_abs"] == 2.0


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1.0, 2.0], [1.0], "equal length"),
        ([], [], "empty holdout"),
        ([1.0, float("nan")], [1.0, 2.0], "finite numbers"),
        (["a", "b"], [1.0, 2.0], "must be numbers"),
    ],
)
def test_regression_inputs_are_validated(y, p, message):
    with pytest.raises(ValueError, match=message):
        regression_metrics(y, p)


def test_compute_metrics_refuses_unknown_tasks():
    with pytest.raises(ValueError, match="Unknown task"):
        compute_metrics("ranking", Y, P)
