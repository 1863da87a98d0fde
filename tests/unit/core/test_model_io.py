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


def _mlmodel(path):
    from mlflow.models import Model

    return Model.load(str(path))


@pytest.mark.parametrize(
    ("task", "classes", "columns"),
    [("binary", [0, 1], ["0", "1"]), ("multiclass", ["low", "mid", "high"], ["low", "mid", "high"])],
)
def test_a_classifier_serves_class_probabilities_named_by_class(tmp_path, task, classes, columns):
    import mlflow.pyfunc

    frame, _ = _frame()
    target = (frame["a"] // (40 / len(classes))).astype(int)
    model = LogisticRegression(max_iter=1000).fit(frame, target)
    save_sklearn_model(model, tmp_path / "model", input_example=frame.head(3), task=task, classes=classes)

    saved = _mlmodel(tmp_path / "model")
    assert saved.signature.outputs.input_names() == columns
    assert saved.metadata == {"mlops_task": task, "mlops_classes": columns}
    served = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    np.testing.assert_allclose(np.asarray(served.predict(frame)), model.predict_proba(frame))


def test_a_regressor_serves_its_predicted_value(tmp_path):
    import mlflow.pyfunc
    from sklearn.linear_model import Ridge

    frame, _ = _frame()
    model = Ridge().fit(frame, frame["a"] * 2.0)
    save_sklearn_model(model, tmp_path / "model", input_example=frame.head(3), task="regression", classes=[])

    saved = _mlmodel(tmp_path / "model")
    assert saved.metadata == {"mlops_task": "regression", "mlops_classes": []}
    assert saved.signature.outputs.to_dict()[0]["type"] == "tensor"
    served = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    np.testing.assert_allclose(np.asarray(served.predict(frame)), model.predict(frame))
