"""Training core: the split (by time or post-change), features and target, the model pipeline.

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

from dataclasses import dataclass
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


#: How a run with a change window shares each post-change day's rows: seeded, stratified by class.
POST_CHANGE_SHARES: dict[str, float] = {"fit": 0.5, "selection": 0.2, "holdout": 0.3}
TIME_RULE, POST_CHANGE_RULE = "time", "post_change"


@dataclass(frozen=True)
class DaySlice:
    """The rows of one day a split uses: all of them (``part`` None) or one part of its row split."""

    day: date
    part: str | None = None


@dataclass(frozen=True)
class SplitPlan:
    """Which days (or parts of days) are fitted on, select among candidates, and are held out."""

    rule: str
    fit: tuple[DaySlice, ...]
    selection: tuple[DaySlice, ...]
    holdout: tuple[DaySlice, ...]
    change_days: tuple[date, ...] = ()


def plan_split(
    days: Iterable[date],
    *,
    holdout_days: int,
    selection_days: int = 1,
    change_window: tuple[date, date] | None = None,
) -> SplitPlan:
    """The split of a training run over the partition ``days`` of its window.

    Without ``change_window`` (scheduled and manual runs), the time rule: the ``holdout_days`` most
    recent days are the holdout, the ``selection_days`` before them select, the rest is fitted on.
    With one (``(start, end)``, inclusive: the days a drift check found changed), the post-change
    rule: each day inside the window is split by row into fit / selection / holdout with the shares
    of :data:`POST_CHANGE_SHARES` (see :func:`row_parts`); every earlier day is fitted on. So the
    model learns the new data, candidates are chosen on it, and challenger and champion are scored
    on the same post-change rows no fit has seen. Days after the window are fitted on too.

    :raises ValueError: too few days for the time rule, or no day inside ``change_window``.
    """
    unique = sorted(set(days))
    if change_window is None:
        rest, holdout = split_days(unique, holdout_days)
        fit, selection = split_days(rest, selection_days)
        return SplitPlan(TIME_RULE, _whole(fit), _whole(selection), _whole(holdout))
    start, end = change_window
    if start > end:
        raise ValueError(f"The change window starts after it ends ({start}..{end}).")
    changed = tuple(d for d in unique if start <= d <= end)
    if not changed:
        span = f"{unique[0]}..{unique[-1]}" if unique else "(no days)"
        raise ValueError(
            f"No partition of the training window {span} lies in the change window {start}..{end}: "
            "a run with a change window must end on or after its start."
        )
    return SplitPlan(
        POST_CHANGE_RULE,
        fit=_whole(d for d in unique if d < start)
        + tuple(DaySlice(d, "fit") for d in changed)
        + _whole(d for d in unique if d > end),
        selection=tuple(DaySlice(d, "selection") for d in changed),
        holdout=tuple(DaySlice(d, "holdout") for d in changed),
        change_days=changed,
    )


def _whole(days: Iterable[date]) -> tuple[DaySlice, ...]:
    return tuple(DaySlice(d) for d in days)


def row_parts(
    n: int,
    *,
    seed: Sequence[int] | int,
    strata: Any = None,
    shares: dict[str, float] = POST_CHANGE_SHARES,
) -> np.ndarray:
    """The part of each of ``n`` rows (index into ``shares``' keys): seeded, in the given shares.

    Rows are shuffled with ``numpy.random.default_rng(seed)``; within each stratum (distinct value
    of ``strata``, e.g. the raw target column, length ``n``; nulls are one stratum) each part gets
    its share to within one row, so a class keeps its rate in every part. Same inputs, same parts.

    :raises ValueError: ``strata`` of another length, or shares that are not positive.
    """
    import numpy as np
    import pandas as pd

    weights = np.asarray(list(shares.values()), dtype=np.float64)
    if not len(weights) or not (np.isfinite(weights).all() and (weights > 0).all()):
        raise ValueError(f"Row split shares must be positive numbers, not {shares!r}.")
    codes = np.zeros(n, dtype=np.int64)
    if strata is not None:
        codes = pd.factorize(np.asarray(strata, dtype=object), use_na_sentinel=False)[0]
        if len(codes) != n:
            raise ValueError(f"strata has {len(codes)} values for {n} rows.")
    ordered = np.random.default_rng(seed).permutation(n)
    ordered = ordered[np.argsort(codes[ordered], kind="stable")]  # shuffled within each stratum
    sizes = np.bincount(codes[ordered], minlength=1)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    grouped = codes[ordered]
    position = (np.arange(n) - starts[grouped] + 0.5) / sizes[grouped]
    bounds = np.cumsum(weights / weights.sum())[:-1]
    parts = np.empty(n, dtype=np.int64)
    parts[ordered] = np.searchsorted(bounds, position, side="right")
    return parts


def row_split_seed(random_state: int, day: date) -> list[int]:
    """The seed of a day's row split: the model's ``random_state`` and the day (independent per day)."""
    return [int(random_state), day.toordinal()]


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


IMPORTANCE_ROWS = 1_000  # rows of the selection data permutation importance is measured on
IMPORTANCE_REPEATS = 3  # shuffles per column


def permutation_importance(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    task: str,
    *,
    rows: int = IMPORTANCE_ROWS,
    repeats: int = IMPORTANCE_REPEATS,
    random_state: int = 0,
) -> dict[str, float]:
    """Each column's permutation importance to the fitted ``model`` on ``X``, ``y``, as shares summing to 1.

    The rise of the task's loss (log loss for classifiers, squared error for regression) when the
    column's values are shuffled, averaged over ``repeats`` seeded shuffles, clipped at 0 and
    normalised (every share 0 when no column matters). Measured on a seeded sample of at most
    ``rows`` rows with one prediction over every shuffled copy stacked: the cost of scoring
    ``rows * (1 + columns * repeats)`` rows once.

    :param y: the target as :func:`features_and_target` encodes it.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(random_state)
    y = np.asarray(y)
    if len(X) > rows:
        keep = np.sort(rng.choice(len(X), rows, replace=False))
        X, y = X.iloc[keep], y[keep]
    X = X.reset_index(drop=True)
    n, columns = len(X), list(X.columns)
    shuffled = [
        X.assign(**{name: X[name].take(rng.permutation(n)).reset_index(drop=True)})
        for name in columns
        for _ in range(repeats)
    ]
    output = model_output(model, pd.concat([X, *shuffled], ignore_index=True), task)
    targets = np.tile(y, 1 + len(shuffled))
    if task == "regression":
        loss = (output - targets) ** 2
    else:
        proba = output if task == "multiclass" else np.column_stack([1 - output, output])
        loss = -np.log(np.clip(proba[np.arange(targets.size), targets.astype(np.int64)], 1e-15, 1.0))
    rise = loss[n:].reshape(len(columns), repeats * n).mean(axis=1) - loss[:n].mean()
    rise = np.clip(np.nan_to_num(rise, nan=0.0), 0.0, None)
    total = rise.sum()
    shares = rise / total if total > 0 else rise
    return {name: float(share) for name, share in zip(columns, shares, strict=True)}
