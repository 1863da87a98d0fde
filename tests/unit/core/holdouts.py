"""Small holdouts of each task, with outputs whose metrics the evaluation tests work out by hand."""

from __future__ import annotations

import numpy as np

# binary: y_true and the positive-class probability
Y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05])
# multiclass: class indices and an (n, 3) probability matrix
YM = np.array([0, 1, 2, 2, 1, 0, 2, 1])
PM = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.6, 0.3],
        [0.2, 0.2, 0.6],
        [0.1, 0.5, 0.4],  # a 2 predicted as 1
        [0.3, 0.4, 0.3],
        [0.5, 0.1, 0.4],
        [0.1, 0.1, 0.8],
        [0.6, 0.3, 0.1],  # a 1 predicted as 0
    ]
)
CLASSES = ["low", "mid", "high"]
# regression: actual and predicted values
YR = np.array([3.0, 5.0, 2.0, 8.0, 6.0])
PR = np.array([2.5, 5.5, 2.0, 6.0, 7.0])
