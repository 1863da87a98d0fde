"""Training core: the time-based split, features and target, and the model pipeline with its preprocessing.

One code path serves the three task types (``binary``, ``multiclass``, ``regression``): the target
is encoded per task by :func:`features_and_target`, and :func:`model_output` is what a fitted model
says in the form :mod:`mlops_provider.core.evaluation` scores and the drift profile records.

The fitted model is one scikit-learn ``Pipeline`` (``ColumnTransformer`` -> estimator) that takes raw
feature columns as partitions store them (a frame from ``pyarrow.Table.to_pandas()``: ``str`` columns
with NaN for null, booleans as object with ``None`` when a day has nulls, nullable integers as floats),
so a served model transforms its input the way training did. The pipeline holds only scikit-learn and
numpy objects (booleans are cast with ``numpy.asarray``), so skops can load it with a trust list of
scikit-learn/numpy types and unpickling never needs this package. Frames with pandas' ``pd.NA``
dtypes (Arrow-backed or nullable) are brought to that form by :func:`features_and_target`.

No Airflow, no MLflow; pandas, numpy and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date

    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.models import ColumnPreprocessing, ModelConfig


def split_days(days: Iterable[date], holdout_days: int) -> tuple[list[date], list[date]]:
    """Split days into (training, holdout): the ``holdout_days`` most recent days are the holdout.

    Counts partitions, not calendar days, so a gap never leaves the holdout empty.

    :raises ValueError: fewer than ``holdout_days + 1`` distinct days (training needs at least one).
    """
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be at least 1, not {holdout_days}.")
    unique = sorted(set(days))
    if len(unique) <= holdout_days:
        raise ValueError(
            f"Found {len(unique)} day(s) of data, need at least {holdout_days + 1} "
            f"({holdout_days} holdout + 1 training)."
        )
    return unique[:-holdout_days], unique[-holdout_days:]


def features_and_target(
    frame: pd.DataFrame, dataset: DatasetConfig, task: str | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature columns (in ``dataset.feature_columns`` order) and the target, encoded for ``task``.

    Classification (``binary``, ``multiclass``): the index of each row's class in
    ``dataset.target_classes`` (int64; for binary ``target_classes[1]`` is the positive class, 1).
    Regression: the target as float64. ``task`` defaults to the dataset's (:attr:`task_kind`).

    :raises ValueError: missing columns, a task the dataset's classes do not fit, or target values
        that are null, not one of the classes (classification) or not finite numbers (regression).
    """
    import numpy as np

    task = task or dataset.task_kind
    classes = list(dataset.target_classes)
    fits = {"binary": len(classes) == 2, "multiclass": len(classes) >= 3, "regression": True}
    if not fits.get(task, False):
        raise ValueError(
            f"Dataset {dataset.name!r} has {len(classes)} target classes, which does not fit a {task} "
            "model (binary: 2, multiclass: 3 or more)."
        )
    columns = [*dataset.feature_columns, dataset.target]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The data lacks column(s) {missing} of dataset {dataset.name!r}.")
    target = frame[dataset.target]
    if task == "regression":
        try:
            y = target.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"The target {dataset.target!r} is not numeric ({target.dtype}).") from None
        known = np.isfinite(y)
        expected = "a finite number"
    else:
        y = _class_indices(target, classes)
        known = y >= 0
        expected = f"one of {classes}"
    if not known.all():
        bad = target[~known]
        examples = sorted({str(v) for v in bad.head(50)})[:5]
        raise ValueError(
            f"{len(bad)} row(s) have a target {dataset.target!r} that is null or not {expected} "
            f"(e.g. {', '.join(examples)})."
        )
    return _without_pd_na(frame[dataset.feature_columns], dataset), y


def _class_indices(target: pd.Series, classes: list[Any]) -> np.ndarray:
    """Each value's index in ``classes`` (int64), -1 for null or unknown values; whole-column ops."""
    import numpy as np
    import pandas as pd

    if isinstance(target.dtype, pd.api.extensions.ExtensionDtype) and target.dtype.na_value is pd.NA:
        target = target.astype(object).where(target.notna(), None)
    return pd.Categorical(target, categories=classes).codes.astype(np.int64)


def _without_pd_na(X: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """``X`` with every ``pd.NA``-based column (Arrow-backed, nullable) in the NaN-based form.

    scikit-learn cannot compare ``pd.NA``; strings become pandas' ``str`` dtype (NaN for null), numbers
    and booleans float64 (NaN for null). Plain ``to_pandas()`` frames are returned as they are.
    """
    import numpy as np
    import pandas as pd

    categorical = set(dataset.features.get("categorical", []))
    converted = {
        name: column.astype("str")
        if name in categorical
        else column.to_numpy(dtype=np.float64, na_value=np.nan)
        for name, column in X.items()
        if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and column.dtype.na_value is pd.NA
    }
    return X.assign(**converted) if converted else X


def _as_float() -> Any:
    """A transformer casting its input to float64 (``None`` and NaN become NaN; True/False 1.0/0.0)."""
    import numpy as np
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(np.asarray, kw_args={"dtype": "float64"}, feature_names_out="one-to-one")


def _branch(kind: str, settings: ColumnPreprocessing) -> Pipeline:
    """The preprocessing of one feature kind: impute then one-hot encode, or cast, impute and scale."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    imputer = SimpleImputer(strategy=settings.impute, keep_empty_features=True)
    if settings.impute == "constant":
        imputer.set_params(fill_value=settings.fill_value if settings.fill_value is not None else 0)
    if kind == "categorical":
        steps = [("impute", imputer)]
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=settings.min_frequency,
            max_categories=settings.max_categories,
            sparse_output=False,
        )
        steps.append(("encode", encoder))
    else:
        # Booleans become 0.0/1.0 and nullable integers floats, with NaN for every kind of null.
        steps = [("cast", _as_float()), ("impute", imputer)]
        if settings.scale:
            steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def build_pipeline(dataset: DatasetConfig, model: ModelConfig, params: dict[str, Any]) -> Pipeline:
    """The unfitted model: ``ColumnTransformer`` over the dataset's features -> the estimator.

    The estimator gets ``model.params`` updated by ``params`` (one grid candidate), plus
    ``random_state=model.random_state`` if it accepts one and none was given. Columns that are not
    features (keys, timestamps, the target) are dropped, so the model accepts whole raw rows.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from mlops_provider.core.models import load_estimator_class

    transformers = [
        (kind, _branch(kind, model.preprocessing[kind]), list(columns))
        for kind, columns in dataset.features.items()
        if columns
    ]
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    estimator = load_estimator_class(model.estimator, model.task)()
    settings = {**model.params, **params}
    if "random_state" in estimator.get_params() and "random_state" not in settings:
        settings["random_state"] = model.random_state
    estimator.set_params(**settings)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def fit_candidate(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, *, classes: Sequence[Any] = (0, 1)
) -> Pipeline:
    """Fit ``pipeline`` on features ``X`` and target ``y`` (from :func:`features_and_target`); return it.

    :param classes: the target classes; a classifier must see every one of them in training, so
        its probability columns are the classes in this order. Ignored for a regressor.
    :raises ValueError: a classifier's training data lacks a class.
    """
    import numpy as np
    from sklearn.base import is_classifier

    if is_classifier(pipeline):
        found = set(np.unique(y).tolist())
        if any(i not in found for i in range(len(classes))):
            held = [c for i, c in enumerate(classes) if i in found]
            raise ValueError(
                f"The training data holds only class(es) {held} of {list(classes)}; "
                "every target class needs training rows."
            )
    return pipeline.fit(X, y)


def model_output(model: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """What a fitted model says about each row of ``X``, in the form ``core.evaluation`` scores.

    binary: the positive-class probability, shape (n,); multiclass: the class probabilities,
    shape (n, k), column i for ``target_classes[i]``; regression: the predicted value, shape (n,).

    :raises ValueError: a classifier whose classes are not the indices 0..k-1 of the target classes.
    """
    import numpy as np

    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    classes = [int(c) for c in model.classes_]
    if classes != list(range(len(classes))) or (task == "binary") != (len(classes) == 2):
        raise ValueError(
            f"The model's classes {classes} are not the class indices of a {task} target; "
            "was it trained for another task?"
        )
    proba = model.predict_proba(X)
    return proba[:, 1] if task == "binary" else proba


def reference_sample(frame: pd.DataFrame, rows: int, *, random_state: int) -> pd.DataFrame:
    """A seeded random sample of at most ``rows`` rows in their original order (drift reference)."""
    if rows >= len(frame):
        return frame
    return frame.sample(n=rows, random_state=random_state).sort_index()
