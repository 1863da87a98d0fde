from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest

from mlops_provider.core.evaluation import (
    METRICS,
    best_candidate,
    classification_metrics,
    confusion,
    improvement,
    plot_calibration_png,
    plot_confusion_png,
    plot_roc_png,
)

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05])


def test_metrics_know_their_direction():
    assert set(METRICS) == {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss"}
    assert METRICS["log_loss"].greater_is_better is False
    assert all(m.greater_is_better for name, m in METRICS.items() if name != "log_loss")
    assert improvement("roc_auc", 0.8, 0.7) == pytest.approx(0.1)
    assert improvement("log_loss", 0.3, 0.4) == pytest.approx(0.1)


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
    assert set(scores) == set(METRICS)
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


@pytest.mark.parametrize(
    "plot",
    [
        lambda: plot_roc_png(Y, P),
        lambda: plot_roc_png(Y, P, reference=P[::-1]),
        lambda: plot_calibration_png(Y, P, reference=np.full(len(P), 0.4), bins=3),
        lambda: plot_confusion_png(Y, P, threshold=0.4),
    ],
    ids=["roc", "roc-with-champion", "calibration", "confusion"],
)
def test_plots_are_png_images(plot):
    from matplotlib.image import imread

    png = plot()
    assert png.startswith(PNG_MAGIC)
    height, width, _ = imread(io.BytesIO(png), format="png").shape
    assert (width, height) == (500, 450)


def test_plots_leave_pyplot_and_the_backend_alone():
    import matplotlib

    backend = matplotlib.get_backend()
    plot_roc_png(Y, P)
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_plots_validate_their_input():
    with pytest.raises(ValueError, match="only 0 and 1"):
        plot_roc_png([0, 3], [0.1, 0.2])
