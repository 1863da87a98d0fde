"""Score binary classifiers: metrics, the best of several candidates, and evaluation plots as PNG bytes.

Pure functions over arrays (``y_true`` in {0, 1}, ``proba`` the positive-class probability); no
Airflow, no MLflow. numpy, scikit-learn and matplotlib are imported inside the functions, so the
operators may import this module (and :data:`METRICS`) at parse time. Plots draw on a private
``matplotlib.figure.Figure`` (Agg canvas), so neither pyplot's global state nor the backend changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from matplotlib.figure import Figure

# Two scores closer than this are a tie (same holdout, different float summation order).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Metric:
    """A classification metric: its display label and whether a larger value is better."""

    label: str
    greater_is_better: bool = True


METRICS: dict[str, Metric] = {
    "roc_auc": Metric("ROC AUC"),
    "pr_auc": Metric("PR AUC (average precision)"),
    "f1": Metric("F1"),
    "precision": Metric("Precision"),
    "recall": Metric("Recall"),
    "accuracy": Metric("Accuracy"),
    "log_loss": Metric("Log loss", greater_is_better=False),
}


def validate_metric(name: str) -> str:
    """Return ``name`` if it is one of :data:`METRICS`, else raise ``ValueError``."""
    if name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}: expected one of {', '.join(METRICS)}.")
    return name


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` on ``metric`` (negative when worse; log loss falls)."""
    difference = float(new) - float(old)
    return difference if METRICS[validate_metric(metric)].greater_is_better else -difference


def is_finite_number(value: Any) -> bool:
    """A usable metric value: an int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
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


def classification_metrics(y_true: Any, proba: Any, *, threshold: float = 0.5) -> dict[str, float]:
    """All :data:`METRICS` for positive-class probabilities ``proba`` against 0/1 labels ``y_true``.

    Rows with ``proba >= threshold`` are predicted positive (for F1, precision, recall, accuracy).
    ROC AUC and PR AUC are NaN when the holdout has only one class (they are undefined there);
    precision, recall and F1 are 0 when their denominator is 0.
    """
    from sklearn import metrics as skm

    y, p = _checked(y_true, proba)
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


def confusion(y_true: Any, proba: Any, *, threshold: float = 0.5) -> dict[str, int]:
    """Counts of true/false negatives/positives at ``threshold``: ``{"tn", "fp", "fn", "tp"}``."""
    from sklearn.metrics import confusion_matrix

    y, p = _checked(y_true, proba)
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


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


# ------------------------------------------------------------------------------------------ plots


def _figure(title: str) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 4.5), dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.set_title(title)
    return figure, axes


def _png(figure: Figure) -> bytes:
    """The figure as PNG bytes (a ``Figure`` saves through the Agg canvas; nothing global to close)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()


def _curves(proba: Any, reference: Any, label: str, reference_label: str) -> list[tuple[str, Any]]:
    curves = [(label, proba)]
    if reference is not None:
        curves.append((reference_label, reference))
    return curves


def plot_roc_png(
    y_true: Any,
    proba: Any,
    *,
    reference: Any = None,
    label: str = "challenger",
    reference_label: str = "champion",
) -> bytes:
    """ROC curve of ``proba`` (and of ``reference``, e.g. the champion on the same holdout) as PNG."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _figure("ROC curve")
    for name, scores in _curves(proba, reference, label, reference_label):
        y, p = _checked(y_true, scores)
        fpr, tpr, _ = roc_curve(y, p)
        auc = roc_auc_score(y, p) if len(set(y.tolist())) == 2 else math.nan
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    axes.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right")
    return _png(figure)


def plot_calibration_png(
    y_true: Any,
    proba: Any,
    *,
    reference: Any = None,
    label: str = "challenger",
    reference_label: str = "champion",
    bins: int = 10,
) -> bytes:
    """Reliability diagram (observed positive rate per predicted-probability quantile bin) as PNG."""
    from sklearn.calibration import calibration_curve

    figure, axes = _figure("Calibration")
    for name, scores in _curves(proba, reference, label, reference_label):
        y, p = _checked(y_true, scores)
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=name)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    axes.set(xlabel="Mean predicted probability", ylabel="Observed positive rate", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left")
    return _png(figure)


def plot_confusion_png(y_true: Any, proba: Any, *, threshold: float = 0.5) -> bytes:
    """Confusion matrix at ``threshold`` (counts and share of all rows) as PNG."""
    counts = confusion(y_true, proba, threshold=threshold)
    cells = [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]]
    total = sum(counts.values())
    figure, axes = _figure(f"Confusion matrix (threshold {threshold:g})")
    image = axes.imshow(cells, cmap="Blues")
    figure.colorbar(image, ax=axes)
    peak = max(max(row) for row in cells)
    for row in range(2):
        for col in range(2):
            value = cells[row][col]
            colour = "white" if value > peak / 2 else "black"
            text = f"{value:,}\n{value / total:.1%}"
            axes.text(col, row, text, ha="center", va="center", color=colour)
    axes.set(xticks=[0, 1], yticks=[0, 1], xlabel="Predicted", ylabel="Actual")
    axes.set_xticklabels(["negative", "positive"])
    axes.set_yticklabels(["negative", "positive"])
    return _png(figure)
