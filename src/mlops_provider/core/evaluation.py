"""Score models of the three task types: metrics and the best of several candidates.

A model's *output* on a holdout depends on its task (see :data:`TASKS`):

* ``binary``: the positive-class probability, shape (n,); ``y_true`` in {0, 1};
* ``multiclass``: the class probabilities, shape (n, k); ``y_true`` the class index in 0..k-1;
* ``regression``: the predicted value, shape (n,); ``y_true`` the numeric target.

Pure functions over arrays; no Airflow, no MLflow. numpy and scikit-learn are imported inside the
functions, so the operators may import this module (and :data:`METRICS`) at parse time. The plots
of an evaluation are in :mod:`mlops_provider.core.evaluation_plots`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

# Two scores closer than this are a tie (same holdout, different float summation order).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Metric:
    """A metric: its display label and whether a larger value is better."""

    label: str
    greater_is_better: bool = True


METRICS_BY_TASK: dict[str, dict[str, Metric]] = {
    "binary": {
        "roc_auc": Metric("ROC AUC"),
        "pr_auc": Metric("PR AUC (average precision)"),
        "f1": Metric("F1"),
        "precision": Metric("Precision"),
        "recall": Metric("Recall"),
        "accuracy": Metric("Accuracy"),
        "log_loss": Metric("Log loss", greater_is_better=False),
    },
    "multiclass": {
        "f1_macro": Metric("F1 (macro average)"),
        "f1_weighted": Metric("F1 (weighted by support)"),
        "precision_macro": Metric("Precision (macro average)"),
        "recall_macro": Metric("Recall (macro average)"),
        "balanced_accuracy": Metric("Balanced accuracy"),
        "accuracy": Metric("Accuracy"),
        "roc_auc_ovr": Metric("ROC AUC (one-vs-rest, macro average)"),
        "log_loss": Metric("Log loss", greater_is_better=False),
    },
    "regression": {
        "rmse": Metric("Root mean squared error", greater_is_better=False),
        "mae": Metric("Mean absolute error", greater_is_better=False),
        "median_ae": Metric("Median absolute error", greater_is_better=False),
        "r2": Metric("R squared"),
    },
}
TASKS = tuple(METRICS_BY_TASK)
# Every metric of every task by name (a name shared by two tasks means the same thing in both).
METRICS: dict[str, Metric] = {name: m for metrics in METRICS_BY_TASK.values() for name, m in metrics.items()}
# What picks the best candidate when a model file names no ``selection_metric``.
DEFAULT_SELECTION_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}


def task_metrics(task: str) -> dict[str, Metric]:
    """The metrics computed for models of ``task``; ``ValueError`` for an unknown task."""
    if task not in METRICS_BY_TASK:
        raise ValueError(f"Unknown task {task!r}: expected one of {', '.join(TASKS)}.")
    return METRICS_BY_TASK[task]


def validate_metric(name: str, task: str | None = None) -> str:
    """Return ``name`` if it is a metric (of ``task``, when given), else raise ``ValueError``."""
    known = METRICS if task is None else task_metrics(task)
    if name not in known:
        where = "" if task is None else f" for {task} models"
        raise ValueError(f"Unknown metric {name!r}{where}: expected one of {', '.join(known)}.")
    return name


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` on ``metric`` (negative when worse; log loss falls)."""
    difference = float(new) - float(old)
    return difference if METRICS[validate_metric(metric)].greater_is_better else -difference


def is_finite_number(value: Any) -> TypeGuard[float]:
    """A usable metric value: an int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def checked_binary(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as 0/1 integers and ``proba`` as the positive-class probability, validated."""
    import numpy as np

    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"y_true and proba must be 1-d of equal length, not {y.shape} and {p.shape}.")
    if len(y) == 0:
        raise ValueError("Cannot evaluate on an empty holdout.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1 (map the target with features_and_target).")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("proba must be finite probabilities in [0, 1].")
    return y.astype(np.int64), p


def checked_multiclass(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as class indices and ``proba`` as an (n, k) probability matrix, validated."""
    import numpy as np

    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    if y.ndim != 1 or p.ndim != 2 or len(y) != len(p) or p.shape[1] < 2:
        raise ValueError(
            f"y_true must be 1-d and proba (rows, classes >= 2) of equal length, not {y.shape} and {p.shape}."
        )
    if len(y) == 0:
        raise ValueError("Cannot evaluate on an empty holdout.")
    if not np.isin(y, np.arange(p.shape[1])).all():
        raise ValueError(
            f"y_true must hold class indices 0..{p.shape[1] - 1} (map the target with features_and_target)."
        )
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("proba must be finite probabilities in [0, 1].")
    return y.astype(np.int64), p


def checked_regression(y_true: Any, predicted: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``predicted`` as finite float64 arrays of equal length, validated."""
    import numpy as np

    try:
        y = np.asarray(y_true, dtype=float)
        p = np.asarray(predicted, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("y_true and predicted must be numbers.") from None
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"y_true and predicted must be 1-d of equal length, not {y.shape} and {p.shape}.")
    if len(y) == 0:
        raise ValueError("Cannot evaluate on an empty holdout.")
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("y_true and predicted must be finite numbers.")
    return y, p


# ---------------------------------------------------------------------------------------- metrics


def compute_metrics(task: str, y_true: Any, output: Any) -> dict[str, float]:
    """Every metric of ``task`` for a model's ``output`` on a holdout (see the module docstring)."""
    functions = {
        "binary": classification_metrics,
        "multiclass": multiclass_metrics,
        "regression": regression_metrics,
    }
    task_metrics(task)
    return functions[task](y_true, output)


def classification_metrics(y_true: Any, proba: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """Every binary metric for positive-class probabilities ``proba`` against 0/1 labels ``y_true``.

    Rows with ``proba >= threshold`` are predicted positive (for F1, precision, recall, accuracy).
    ROC AUC and PR AUC are NaN when the holdout has only one class (they are undefined there);
    precision, recall and F1 are 0 when their denominator is 0.
    """
    from sklearn import metrics as skm

    y, p = checked_binary(y_true, proba)
    predicted = (p >= threshold).astype(int)
    both_classes = len(set(y.tolist())) == 2
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else math.nan,
        "pr_auc": float(skm.average_precision_score(y, p)) if both_classes else math.nan,
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
    }


def multiclass_metrics(y_true: Any, proba: Any) -> dict[str, float]:
    """Every multiclass metric for class probabilities ``proba`` (n, k) against class indices ``y_true``.

    The predicted class is the most probable one. Macro averages weigh alike every class that is in
    the holdout or predicted; balanced accuracy is the mean recall of the classes in the holdout.
    ``roc_auc_ovr`` averages each holdout class's one-vs-rest ROC AUC (NaN with a single class).
    """
    import numpy as np
    from sklearn import metrics as skm

    y, p = checked_multiclass(y_true, proba)
    predicted = p.argmax(axis=1)
    present = np.unique(y)
    aucs = [skm.roc_auc_score(y == c, p[:, c]) for c in present] if len(present) > 1 else []
    return {
        "f1_macro": float(skm.f1_score(y, predicted, average="macro", zero_division=0)),
        "f1_weighted": float(skm.f1_score(y, predicted, average="weighted", zero_division=0)),
        "precision_macro": float(skm.precision_score(y, predicted, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y, predicted, average="macro", zero_division=0)),
        "balanced_accuracy": float(
            skm.recall_score(y, predicted, labels=present, average="macro", zero_division=0)
        ),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "roc_auc_ovr": float(np.mean(aucs)) if aucs else math.nan,
        "log_loss": float(skm.log_loss(y, p, labels=np.arange(p.shape[1]))),
    }


def regression_metrics(y_true: Any, predicted: Any) -> dict[str, float]:
    """Every regression metric for ``predicted`` values against the numeric ``y_true``.

    ``r2`` is NaN when the holdout's target is constant (R squared is undefined there).
    """
    import numpy as np

    y, p = checked_regression(y_true, predicted)
    errors = np.abs(y - p)
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(errors.mean()),
        "median_ae": float(np.median(errors)),
        "r2": 1.0 - float(np.sum(errors**2)) / total if total > 0 else math.nan,
    }


def confusion(y_true: Any, proba: Any, *, threshold: float = 0.5) -> dict[str, int]:
    """Counts of true/false negatives/positives at ``threshold``: ``{"tn", "fp", "fn", "tp"}``."""
    from sklearn.metrics import confusion_matrix

    y, p = checked_binary(y_true, proba)
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def class_confusion(y_true: Any, proba: Any) -> list[list[int]]:
    """The k x k confusion matrix of a multiclass model: ``[actual][predicted]`` row counts."""
    import numpy as np

    y, p = checked_multiclass(y_true, proba)
    k = p.shape[1]
    counts = np.bincount(y * k + p.argmax(axis=1), minlength=k * k).reshape(k, k)
    return counts.tolist()


def per_class_metrics(y_true: Any, proba: Any, classes: Sequence[Any]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support (holdout rows) of each class of a multiclass model."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    y, p = checked_multiclass(y_true, proba)
    if len(classes) != p.shape[1]:
        raise ValueError(f"{len(classes)} class names were given for {p.shape[1]} probability columns.")
    precision, recall, f1, support = precision_recall_fscore_support(
        y, p.argmax(axis=1), labels=np.arange(p.shape[1]), zero_division=0
    )
    return [
        {"class": str(name), "precision": float(pr), "recall": float(rc), "f1": float(f), "support": int(s)}
        for name, pr, rc, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]


def residual_summary(y_true: Any, predicted: Any) -> dict[str, float]:
    """Mean, std and quantiles of the residuals ``y_true - predicted`` of a regression model."""
    import numpy as np

    y, p = checked_regression(y_true, predicted)
    residuals = y - p
    q05, q50, q95 = np.quantile(residuals, [0.05, 0.5, 0.95])
    return {
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "p05": float(q05),
        "p50": float(q50),
        "p95": float(q95),
        "max_abs": float(np.abs(residuals).max()),
    }


def evaluation_details(task: str, y_true: Any, output: Any, *, classes: Sequence[Any] = ()) -> dict:
    """The small JSON-safe breakdown of a holdout evaluation that metrics do not show.

    binary: ``confusion`` (tn/fp/fn/tp at 0.5); multiclass: ``confusion`` (``classes`` and the
    ``matrix`` of :func:`class_confusion`) and ``per_class``; regression: ``residuals``.
    """
    task_metrics(task)
    if task == "binary":
        return {"confusion": confusion(y_true, output)}
    if task == "multiclass":
        return {
            "confusion": {"classes": [str(c) for c in classes], "matrix": class_confusion(y_true, output)},
            "per_class": per_class_metrics(y_true, output, classes),
        }
    return {"residuals": residual_summary(y_true, output)}


def _sort_id(value: Any) -> tuple:
    """Order ids of mixed types deterministically: numbers first (by value), then strings."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))


def best_candidate(candidates: Sequence[dict], metric: str, *, id_key: str = "id") -> dict:
    """The candidate with the best ``candidate["metrics"][metric]``.

    Each candidate is a dict with at least ``metrics`` (name -> value) and ``id_key``. Candidates
    whose metric is missing or NaN are skipped. Ties (within :data:`TIE_TOLERANCE`) go to the
    smallest id (numbers before strings), so the choice never depends on the order of ``candidates``.

    :raises ValueError: unknown metric, a candidate without an id, or no candidate with a usable value.
    """
    validate_metric(metric)
    scored = []
    for candidate in candidates:
        if id_key not in candidate:
            raise ValueError(f"Every candidate needs an {id_key!r}; got keys {sorted(candidate)}.")
        value = (candidate.get("metrics") or {}).get(metric)
        if is_finite_number(value):
            scored.append((float(value), candidate))
    if not scored:
        raise ValueError(f"No candidate has a finite {metric!r} among {len(candidates)} candidate(s).")
    pick = max if METRICS[metric].greater_is_better else min
    best_value = pick(value for value, _ in scored)
    tied = [c for value, c in scored if abs(value - best_value) <= TIE_TOLERANCE]
    return min(tied, key=lambda c: _sort_id(c[id_key]))
