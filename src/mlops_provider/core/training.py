"""Training core: the data window, the time-based split, and the model pipeline with its preprocessing.

The fitted model is one scikit-learn ``Pipeline`` (``ColumnTransformer`` -> estimator) that takes raw
feature columns exactly as partitions store them (pandas frames from ``pyarrow.Table.to_pandas()``:
``str`` or Arrow-backed strings, object booleans with ``None``, float-for-nullable-int), so a served
model transforms its input the way training did. Type coercion inside the pipeline uses only pandas'
own ``DataFrame.astype``, so unpickling the model needs scikit-learn and pandas, not this package.

No Airflow, no MLflow; pandas and scikit-learn are imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
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


def features_and_target(frame: pd.DataFrame, dataset: DatasetConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature columns (in ``dataset.feature_columns`` order) and the target as 0/1.

    ``target_classes[1]`` is the positive class (1), ``target_classes[0]`` the negative one.

    :raises ValueError: missing columns, a dataset that is not binary, or target values that are
        null or not one of the two classes.
    """
    import numpy as np

    if len(dataset.target_classes) != 2:
        raise ValueError(
            f"Dataset {dataset.name!r} has {len(dataset.target_classes)} target classes; "
            "training supports binary classification only."
        )
    columns = [*dataset.feature_columns, dataset.target]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The data lacks column(s) {missing} of dataset {dataset.name!r}.")
    target = frame[dataset.target]
    negative, positive = dataset.target_classes
    known = target.isin([negative, positive]).to_numpy(dtype=bool, na_value=False)
    if not known.all():
        bad = target[~known]
        examples = sorted({str(v) for v in bad.head(50)})[:5]
        raise ValueError(
            f"{len(bad)} row(s) have a target {dataset.target!r} that is null or not one of "
            f"{[negative, positive]} (e.g. {', '.join(examples)})."
        )
    y = (target == positive).to_numpy(dtype=np.int64)
    return frame[dataset.feature_columns], y


def _astype(dtype: str) -> Any:
    """A transformer that casts its input DataFrame to ``dtype`` (pandas NA/None become NaN)."""
    import pandas as pd
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(pd.DataFrame.astype, kw_args={"dtype": dtype}, feature_names_out="one-to-one")


def _branch(kind: str, settings: ColumnPreprocessing) -> Pipeline:
    """The preprocessing of one feature kind: cast, impute, then scale or one-hot encode."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    imputer = SimpleImputer(strategy=settings.impute, keep_empty_features=True)
    if settings.impute == "constant":
        imputer.set_params(fill_value=settings.fill_value if settings.fill_value is not None else 0)
    if kind == "categorical":
        steps = [("cast", _astype("str")), ("impute", imputer)]
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=settings.min_frequency,
            max_categories=settings.max_categories,
            sparse_output=False,
        )
        steps.append(("encode", encoder))
    else:
        # Booleans become 0.0/1.0 and nullable integers floats, with NaN for every kind of null.
        steps = [("cast", _astype("float64")), ("impute", imputer)]
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
    estimator = load_estimator_class(model.estimator)()
    settings = {**model.params, **params}
    if "random_state" in estimator.get_params() and "random_state" not in settings:
        settings["random_state"] = model.random_state
    estimator.set_params(**settings)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def fit_candidate(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """Fit ``pipeline`` on features ``X`` and 0/1 target ``y``; return it (fitted in place).

    :raises ValueError: the training data holds only one class (nothing to learn).
    """
    import numpy as np

    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"The training data holds only class {classes.tolist()}; need both 0 and 1.")
    return pipeline.fit(X, y)


def positive_proba(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """The fitted pipeline's probability of the positive class (1) for each row of ``X``."""
    column = list(pipeline.classes_).index(1)
    return pipeline.predict_proba(X)[:, column]


def reference_sample(frame: pd.DataFrame, rows: int, *, random_state: int) -> pd.DataFrame:
    """A seeded random sample of at most ``rows`` rows in their original order (drift reference)."""
    if rows >= len(frame):
        return frame
    return frame.sample(n=rows, random_state=random_state).sort_index()
