"""The plots of an evaluation on a holdout, as PNG bytes: ROC, calibration and confusion (binary),
confusion and F1 per class (multiclass), predicted vs actual and residuals (regression).

Pure functions over arrays, like :mod:`mlops_provider.core.evaluation` whose checks and breakdowns
they draw. numpy, scikit-learn and matplotlib are imported inside the functions. Plots draw on a
private ``matplotlib.figure.Figure`` (Agg canvas), so neither pyplot's global state nor the backend
changes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlops_provider.core.evaluation import (
    checked_binary,
    checked_regression,
    class_confusion,
    confusion,
    per_class_metrics,
    task_metrics,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from matplotlib.figure import Figure

# Points drawn in a scatter plot; a seeded sample of the holdout beyond that (plots stay ~100 KB).
SCATTER_POINTS = 5_000
# Class confusion matrices with more classes than this are drawn without a number in each cell.
ANNOTATED_CLASSES = 12


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
        y, p = checked_binary(y_true, scores)
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
        y, p = checked_binary(y_true, scores)
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=name)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    axes.set(xlabel="Mean predicted probability", ylabel="Observed positive rate", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left")
    return _png(figure)


def _confusion_png(cells: list[list[int]], labels: list[str], title: str) -> bytes:
    """A confusion matrix (rows actual, columns predicted) with counts and shares of all rows."""
    total = max(sum(map(sum, cells)), 1)
    peak = max(max(row) for row in cells)
    k = len(labels)
    figure, axes = _figure(title)
    image = axes.imshow(cells, cmap="Blues")
    figure.colorbar(image, ax=axes)
    if k <= ANNOTATED_CLASSES:
        for row in range(k):
            for col in range(k):
                value = cells[row][col]
                colour = "white" if value > peak / 2 else "black"
                text = f"{value:,}\n{value / total:.1%}"
                axes.text(col, row, text, ha="center", va="center", color=colour, fontsize=10 if k < 5 else 7)
    short = [name if len(name) <= 12 else name[:11] + "…" for name in labels]
    axes.set(xticks=range(k), yticks=range(k), xlabel="Predicted", ylabel="Actual")
    axes.set_xticklabels(short, rotation=0 if k < 5 else 45, ha="center" if k < 5 else "right")
    axes.set_yticklabels(short)
    return _png(figure)


def plot_confusion_png(y_true: Any, proba: Any, *, threshold: float = 0.5) -> bytes:
    """Confusion matrix of a binary model at ``threshold`` (counts and share of all rows) as PNG."""
    counts = confusion(y_true, proba, threshold=threshold)
    cells = [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]]
    return _confusion_png(cells, ["negative", "positive"], f"Confusion matrix (threshold {threshold:g})")


def plot_class_confusion_png(y_true: Any, proba: Any, classes: Sequence[Any]) -> bytes:
    """Confusion matrix of a multiclass model (most probable class predicted) as PNG."""
    cells = class_confusion(y_true, proba)
    if len(classes) != len(cells):
        raise ValueError(f"{len(classes)} class names were given for {len(cells)} probability columns.")
    return _confusion_png(cells, [str(c) for c in classes], "Confusion matrix")


def plot_per_class_png(
    y_true: Any,
    proba: Any,
    classes: Sequence[Any],
    *,
    reference: Any = None,
    label: str = "challenger",
    reference_label: str = "champion",
) -> bytes:
    """F1 of each class of a multiclass model (and of ``reference`` on the same holdout) as PNG bars."""
    import numpy as np

    curves = _curves(proba, reference, label, reference_label)
    figure, axes = _figure("F1 per class")
    x = np.arange(len(classes))
    width = 0.8 / len(curves)
    for i, (name, scores) in enumerate(curves):
        f1 = [row["f1"] for row in per_class_metrics(y_true, scores, classes)]
        axes.bar(x + (i - (len(curves) - 1) / 2) * width, f1, width, label=name)
    axes.set(xticks=x, ylim=(0, 1.15), ylabel="F1", xlabel="Class")
    axes.set_xticklabels([str(c)[:12] for c in classes], rotation=0 if len(classes) < 6 else 45)
    axes.legend(loc="upper right", ncols=2)
    return _png(figure)


def _sample_rows(rows: int) -> np.ndarray:
    """Indices of at most :data:`SCATTER_POINTS` rows, seeded, so every plot of a holdout is the same."""
    import numpy as np

    if rows <= SCATTER_POINTS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, SCATTER_POINTS, replace=False))


def plot_predicted_vs_actual_png(
    y_true: Any,
    predicted: Any,
    *,
    reference: Any = None,
    label: str = "challenger",
    reference_label: str = "champion",
) -> bytes:
    """Predicted against actual values of a regression model (a seeded sample of rows) as PNG."""
    figure, axes = _figure("Predicted vs actual")
    low, high = math.inf, -math.inf
    for name, values in _curves(predicted, reference, label, reference_label):
        y, p = checked_regression(y_true, values)
        rows = _sample_rows(len(y))
        axes.scatter(y[rows], p[rows], s=4, alpha=0.35, linewidths=0, label=name)
        low, high = min(low, y.min(), p.min()), max(high, y.max(), p.max())
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="perfect")
    axes.set(xlabel="Actual", ylabel="Predicted")
    axes.legend(loc="upper left", markerscale=3)
    return _png(figure)


def plot_residuals_png(
    y_true: Any,
    predicted: Any,
    *,
    reference: Any = None,
    label: str = "challenger",
    reference_label: str = "champion",
    bins: int = 50,
) -> bytes:
    """Histogram of the residuals (actual - predicted) of a regression model, on shared bins, as PNG."""
    import numpy as np

    curves = [
        (name, np.subtract(*checked_regression(y_true, values)))
        for name, values in _curves(predicted, reference, label, reference_label)
    ]
    everything = np.concatenate([residuals for _, residuals in curves])
    low, high = np.quantile(everything, [0.001, 0.999])
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    figure, axes = _figure("Residuals (actual - predicted)")
    for name, residuals in curves:
        axes.hist(
            np.clip(residuals, edges[0], edges[-1]), bins=edges, histtype="step", linewidth=1.5, label=name
        )
    axes.axvline(0.0, linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="Residual", ylabel="Rows")
    axes.legend(loc="upper right")
    return _png(figure)


def evaluation_plots(
    task: str, y_true: Any, output: Any, *, reference: Any = None, classes: Sequence[Any] = ()
) -> dict[str, bytes]:
    """The evaluation plots of a model's ``output`` on a holdout, by file name (PNG bytes).

    ``reference`` is another model's output on the same holdout (the champion), drawn alongside
    where the plot compares. binary: ``roc.png``, ``calibration.png``, ``confusion.png``;
    multiclass: ``confusion.png``, ``per_class.png``; regression: ``predicted_vs_actual.png``,
    ``residuals.png``.
    """
    task_metrics(task)
    if task == "binary":
        return {
            "roc.png": plot_roc_png(y_true, output, reference=reference),
            "calibration.png": plot_calibration_png(y_true, output, reference=reference),
            "confusion.png": plot_confusion_png(y_true, output),
        }
    if task == "multiclass":
        return {
            "confusion.png": plot_class_confusion_png(y_true, output, classes),
            "per_class.png": plot_per_class_png(y_true, output, classes, reference=reference),
        }
    return {
        "predicted_vs_actual.png": plot_predicted_vs_actual_png(y_true, output, reference=reference),
        "residuals.png": plot_residuals_png(y_true, output, reference=reference),
    }
