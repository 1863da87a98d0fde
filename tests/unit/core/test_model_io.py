"""Saving a fitted pipeline as an MLflow model: pinned requirements, trusted types, quiet skops."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from mlops_provider.core.model_io import pinned_requirements, save_sklearn_model, trusted_types

pytestmark = pytest.mark.unit


def _frame():
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    return frame, (frame["a"] > 20).astype(int)


def test_saved_model_pins_requirements_and_loads_back_without_a_warning_flood(tmp_path):
    import airflow.sdk  # noqa: F401  (its deprecation shims are what skops used to trip over)
    import mlflow.sklearn

    frame, target = _frame()
    model = LogisticRegression().fit(frame, target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_sklearn_model(model, tmp_path / "model", input_example=frame.head(3))
    assert [w for w in caught if "skops" in str(w.filename) or "airflow" in str(w.message)] == []

    requirements = (tmp_path / "model" / "requirements.txt").read_text()
    assert all(pin in requirements for pin in pinned_requirements())
    assert any(pin.startswith("scikit-learn==") for pin in pinned_requirements())
    loaded = mlflow.sklearn.load_model(str(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))


def test_types_from_other_packages_are_refused():
    frame, target = _frame()
    model = FunctionTransformer(func=pd.DataFrame.abs).fit(frame, target)
    with pytest.raises(TypeError, match="outside scikit-learn/numpy/scipy"):
        trusted_types(model)
