from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from mlops_provider.core.evaluation_plots import (
    evaluation_plots,
    plot_calibration_png,
    plot_class_confusion_png,
    plot_confusion_png,
    plot_per_class_png,
    plot_predicted_vs_actual_png,
    plot_residuals_png,
    plot_roc_png,
)
from tests.unit.core.holdouts import CLASSES, PM, PR, YM, YR, P, Y

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "plot",
    [
        lambda: plot_roc_png(Y, P),
        lambda: plot_roc_png(Y, P, reference=P[::-1]),
        lambda: plot_calibration_png(Y, P, reference=np.full(len(P), 0.4), bins=3),
        lambda: plot_confusion_png(Y, P, threshold=0.4),
        lambda: plot_class_confusion_png(YM, PM, CLASSES),
        lambda: plot_class_confusion_png(np.arange(40) % 20, np.eye(20)[np.arange(40) % 20], range(20)),
        lambda: plot_per_class_png(YM, PM, CLASSES, reference=PM[::-1]),
        lambda: plot_predicted_vs_actual_png(YR, PR, reference=PR + 1),
        lambda: plot_residuals_png(YR, PR, reference=PR + 1),
        lambda: plot_residuals_png(YR, YR),
    ],
    ids=[
        "roc",
        "roc-with-champion",
        "calibration",
        "confusion",
        "class-confusion",
        "class-confusion-20-classes",
        "per-class",
        "predicted-vs-actual",
        "residuals",
        "no-residual",
    ],
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


def test_evaluation_plots_follow_the_task():
    assert set(evaluation_plots("binary", Y, P, reference=P)) == {
        "roc.png",
        "calibration.png",
        "confusion.png",
    }
    assert set(evaluation_plots("multiclass", YM, PM, classes=CLASSES)) == {"confusion.png", "per_class.png"}
    assert set(evaluation_plots("regression", YR, PR)) == {"predicted_vs_actual.png", "residuals.png"}
    with pytest.raises(ValueError, match="2 class names were given for 3 probability columns"):
        evaluation_plots("multiclass", YM, PM, classes=CLASSES[:2])
