"""Model configuration: one YAML file per model in ``include/models/``, next to its dataset's file.

::

    name: churn_classifier                        # registered model name
    dataset: ../datasets/churn.yaml               # relative to this file's folder
    task: binary                                  # binary | multiclass | regression (default: the dataset's)
    estimator: sklearn.linear_model.LogisticRegression
    params: {max_iter: 500}                       # fixed estimator parameters
    param_grid: {C: [0.05, 1.0], class_weight: [null, balanced]}
    preprocessing:
      numeric: {impute: median, scale: true}
      categorical: {impute: constant, fill_value: missing, min_frequency: 0.01}
      boolean: {impute: most_frequent}
    window_days: 30                               # calendar days of validated partitions
    holdout_days: 5                               # the most recent partitions are the holdout
    selection_metric: roc_auc                     # default per task: roc_auc, f1_macro, rmse
    gate: {minimums: {roc_auc: 0.6}, margin: 0.002}
    random_state: 42
    reference_sample_rows: 10000

The task decides the estimator kind (a classifier with ``predict_proba``, or a regressor) and the
metrics that ``selection_metric`` and the gate may name (``core.evaluation.METRICS_BY_TASK``). Without
``task``, two target classes mean binary, more multiclass, none regression.

Loading validates the whole file (and the dataset file it names) and lists every problem at once.
No Airflow here; scikit-learn is imported only to check the estimator, inside the functions.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.config_keys import ConfigError
from mlops_provider.core.config_schema import schema_problems
from mlops_provider.core.datasets import (
    FEATURE_KINDS,
    DatasetConfigError,
    load_dataset_config,
    read_config_mapping,
)
from mlops_provider.core.evaluation import (
    DEFAULT_SELECTION_METRIC,
    METRICS,
    is_finite_number,
    task_metrics,
)
from mlops_provider.core.pipeline_config import (
    DRIFT_SETTINGS_DEFAULTS,
    ROLLBACK_DEFAULTS,
    TRAINING_DEFAULTS,
    DagSettings,
    DriftSettings,
    dag_settings,
    drift_settings,
)
from mlops_provider.core.promotion import GatePolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlops_provider.core.datasets import DatasetConfig

MAX_CANDIDATES = 64
_NUMERIC_TYPES = ("int32", "int64", "float32", "float64")
_IMPUTE = {
    "numeric": ("mean", "median", "most_frequent", "constant"),
    "categorical": ("most_frequent", "constant"),
    "boolean": ("most_frequent", "constant"),
}
_PREPROCESSING_KEYS = {
    "numeric": {"impute", "fill_value", "scale"},
    "categorical": {"impute", "fill_value", "min_frequency", "max_categories"},
    "boolean": {"impute", "fill_value"},
}


class ModelConfigError(ConfigError):
    """A model configuration file is missing or malformed; the message names every problem."""


@dataclass(frozen=True)
class ColumnPreprocessing:
    """How one kind of feature column is prepared inside the model's ``ColumnTransformer``.

    :param impute: ``SimpleImputer`` strategy (mean/median only for numeric columns).
    :param fill_value: the value for ``impute: constant`` (default 0 for numeric and boolean
        columns, ``"missing"`` for categorical ones: missingness becomes its own category).
    :param scale: standardise numeric columns (``StandardScaler``).
    :param min_frequency: categories rarer than this (a count >= 1 or a share in (0, 1)) are merged
        into one "infrequent" column; categories unseen in training map to it as well.
    :param max_categories: at most this many one-hot columns per categorical feature.
    """

    impute: str
    fill_value: Any = None
    scale: bool = False
    min_frequency: int | float | None = None
    max_categories: int | None = None


DEFAULT_PREPROCESSING = {
    "numeric": ColumnPreprocessing(impute="median", scale=True),
    "categorical": ColumnPreprocessing(impute="constant", fill_value="missing"),
    "boolean": ColumnPreprocessing(impute="most_frequent"),
}


@dataclass(frozen=True)
class ModelConfig:
    """A validated model configuration (see the module docstring for the file format)."""

    name: str
    dataset: str
    dataset_config_path: Path
    estimator: str
    params: dict[str, Any]
    param_grid: dict[str, list]
    preprocessing: dict[str, ColumnPreprocessing]
    window_days: int
    holdout_days: int
    selection_metric: str
    gate: GatePolicy
    task: str = "binary"
    random_state: int = 0
    reference_sample_rows: int = 10_000
    description: str = ""
    training: DagSettings = TRAINING_DEFAULTS
    drift: DriftSettings = DRIFT_SETTINGS_DEFAULTS
    rollback: DagSettings = ROLLBACK_DEFAULTS
    config_path: Path | None = field(default=None, compare=False)

    def load_dataset_config(self) -> DatasetConfig:
        """The configuration of the dataset this model is trained on."""
        return load_dataset_config(self.dataset_config_path)

    def candidates(self, override: dict | None = None) -> list[dict[str, Any]]:
        """The parameter candidates to train: :func:`expand_grid` of the grid and a run's override."""
        return expand_grid(self.param_grid, override, estimator=self.estimator)


def load_estimator_class(import_path: str, task: str | None) -> type:
    """Import a scikit-learn estimator class by its dotted path (``sklearn.<module>.<Class>``).

    :param task: the kind it must be: ``binary`` and ``multiclass`` need a classifier with
        ``predict_proba`` (metrics, plots and the signature use probabilities), ``regression`` a
        regressor; None checks only that it is an estimator (to read its parameter names).
    :raises ValueError: not under ``sklearn.``, not importable, or not of the task's kind.
    """
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if not isinstance(import_path, str) or not re.fullmatch(r"sklearn(\.[A-Za-z_]\w*)+", import_path):
        raise ValueError(
            f"Estimator {import_path!r} must be the import path of a scikit-learn class, "
            "e.g. 'sklearn.linear_model.LogisticRegression'."
        )
    module_name, _, class_name = import_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise ValueError(f"Estimator {import_path!r} cannot be imported.") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ValueError(f"Estimator {import_path!r} is not a scikit-learn estimator class.")
    try:
        instance = cls()
    except TypeError:
        raise ValueError(f"Estimator {import_path!r} cannot be built without arguments.") from None
    if task == "regression" and not is_regressor(instance):
        raise ValueError(f"Estimator {import_path!r} is not a regressor, which a regression model needs.")
    if task in ("binary", "multiclass") and not (
        is_classifier(instance) and hasattr(instance, "predict_proba")
    ):
        raise ValueError(
            f"Estimator {import_path!r} is not a classifier with predict_proba, which a {task} model needs."
        )
    return cls


def _json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _grid_problems(grid: Any, label: str, accepted: set[str] | None) -> list[str]:
    """Problems of a ``{param: value or [values]}`` mapping, each a sentence naming ``label``."""
    if not isinstance(grid, dict):
        return [f"{label} must map parameter names to lists of values"]
    problems = []
    for name, values in grid.items():
        if accepted is not None and name not in accepted:
            problems.append(
                f"{label} names {name!r}, which the estimator does not accept "
                f"(known: {', '.join(sorted(accepted))})"
            )
        listed = values if isinstance(values, list) else [values]
        if not listed:
            problems.append(f"{label}.{name} is an empty list")
        elif not all(_json_scalar(v) for v in listed):
            problems.append(f"{label}.{name} must be a JSON scalar or a list of them, not {values!r}")
    return problems


def _params_problems(params: dict, accepted: set[str] | None) -> list[str]:
    """Fixed parameters may hold any JSON value (a list, a class_weight mapping), but known names only."""
    problems = []
    for name, value in params.items():
        if accepted is not None and name not in accepted:
            problems.append(f"params names {name!r}, which the estimator does not accept")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            problems.append(f"params.{name} must be a JSON value, not {value!r}")
    return problems


def _accepted_params(estimator: str | type | None, task: str | None = None) -> set[str] | None:
    if estimator is None:
        return None
    cls = load_estimator_class(estimator, task) if isinstance(estimator, str) else estimator
    return set(cls().get_params())


def expand_grid(
    param_grid: dict, override: dict | None = None, *, estimator: str | type | None = None
) -> list[dict[str, Any]]:
    """All parameter combinations of ``param_grid``, in a deterministic order.

    ``override`` (a run's conf) replaces the grid's values for the parameters it names and may add
    parameters; a scalar stands for a one-element list. Its names are checked against
    ``estimator().get_params()`` when ``estimator`` (import path or class) is given (always give it
    for user input; :meth:`ModelConfig.candidates` does). Candidates are ordered by parameter name,
    then by the order of the values; each candidate is a JSON-safe dict.

    :raises ValueError: names the estimator does not accept, values that are not JSON scalars (or
        lists of them), empty value lists, or more than :data:`MAX_CANDIDATES` candidates.
    """
    problems = _grid_problems(param_grid, "param_grid", None)
    if override is not None:
        problems += _grid_problems(override, "override", _accepted_params(estimator))
    if problems:
        raise ValueError("Invalid parameter grid: " + "; ".join(problems) + ".")
    merged = {**param_grid, **(override or {})}
    names = sorted(merged)
    value_lists = [merged[n] if isinstance(merged[n], list) else [merged[n]] for n in names]
    count = math.prod(len(values) for values in value_lists)
    if count > MAX_CANDIDATES:
        raise ValueError(
            f"Invalid parameter grid: {count} candidates, at most {MAX_CANDIDATES} are allowed "
            f"({' x '.join(f'{n}: {len(v)}' for n, v in zip(names, value_lists, strict=True))})."
        )
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*value_lists)]


def load_model_config(
    path: str | Path,
    *,
    check_estimator: bool = True,
    known_datasets: Mapping[Path, DatasetConfig] | None = None,
) -> ModelConfig:
    """Read and validate a model YAML file (and the dataset file it names).

    :param check_estimator: import the estimator and check its parameters (scikit-learn is
        imported); ``False`` checks everything else, for the DAG factory at parse time.
    :param known_datasets: dataset configurations already loaded, by resolved path: the model's
        dataset is taken from here instead of being read again.
    :raises ModelConfigError: the file is missing, not YAML, or inconsistent (every problem found
        is listed in the message).
    """
    path = Path(path)
    raw = read_config_mapping(path, ModelConfigError, "model")
    return parse_model_config(
        raw,
        base_dir=path.parent,
        config_path=path,
        check_estimator=check_estimator,
        known_datasets=known_datasets,
    )


def parse_model_config(
    raw: dict,
    *,
    base_dir: Path,
    config_path: Path | None = None,
    check_estimator: bool = True,
    known_datasets: Mapping[Path, DatasetConfig] | None = None,
) -> ModelConfig:
    """Validate a model configuration given as a dict (the parsed YAML); see :func:`load_model_config`."""
    where = f"{config_path}: " if config_path else ""
    problems = schema_problems("model", raw)
    if problems:
        raise ModelConfigError(f"{where}invalid model configuration: " + "; ".join(problems), problems)

    # The schema guarantees the structure (types, ranges, known keys); what follows checks what it
    # cannot: the dataset file, the estimator, the task's metrics and how the keys relate.
    name = raw["name"]
    dataset = None
    dataset_path = (base_dir / raw["dataset"]).resolve()
    try:
        dataset = (known_datasets or {}).get(dataset_path) or load_dataset_config(dataset_path)
    except DatasetConfigError as err:
        problems.append(f"'dataset': {err}")

    task = _parse_task(raw.get("task"), dataset, problems)
    accepted: set[str] | None = None
    try:
        accepted = _accepted_params(raw.get("estimator"), task) if check_estimator else None
    except ValueError as err:
        problems.append(f"'estimator': {err}")
    params = raw.get("params") or {}
    problems += _params_problems(params, accepted)
    param_grid = raw.get("param_grid") or {}
    problems += _grid_problems(param_grid, "param_grid", accepted)
    both = sorted(set(params) & set(param_grid))
    if both:
        problems.append(f"{both} appear in both 'params' and 'param_grid'; keep each in one place")
    param_grid = {k: v if isinstance(v, list) else [v] for k, v in param_grid.items()}
    count = math.prod(len(v) for v in param_grid.values())
    if count > MAX_CANDIDATES:
        problems.append(f"'param_grid' has {count} candidates, at most {MAX_CANDIDATES} are allowed")

    preprocessing = _parse_preprocessing(raw.get("preprocessing") or {}, dataset, problems)
    window_days, holdout_days = raw["window_days"], raw["holdout_days"]
    if holdout_days >= window_days:
        problems.append(
            f"'holdout_days' ({holdout_days}) must be smaller than 'window_days' ({window_days}) "
            "so that training keeps at least one day"
        )

    metrics, kind = _task_metrics(task)
    selection_metric = raw.get("selection_metric", DEFAULT_SELECTION_METRIC[task or "binary"])
    if selection_metric not in metrics:
        problems.append(
            f"'selection_metric' must be one of the {kind}metrics {', '.join(metrics)}, "
            f"not {selection_metric!r}"
        )
        selection_metric = DEFAULT_SELECTION_METRIC[task or "binary"]
    gate = _parse_gate(raw.get("gate") or {}, selection_metric, task, problems)
    random_state = raw.get("random_state", 0)
    reference_rows = raw.get("reference_sample_rows", 10_000)

    try:
        training, drift = dag_settings(raw, "training", TRAINING_DEFAULTS), drift_settings(raw)
        rollback = dag_settings(raw, None, ROLLBACK_DEFAULTS)
    except ValueError as err:
        problems.append(str(err))
    # An unreadable dataset (and so no task) is always among the problems.
    if problems or dataset is None or task is None:
        raise ModelConfigError(f"{where}invalid model configuration: " + "; ".join(problems), problems)
    return ModelConfig(
        name=name,
        dataset=dataset.name,
        dataset_config_path=dataset_path,
        estimator=raw["estimator"],
        params=dict(params),
        param_grid=param_grid,
        preprocessing=preprocessing,
        window_days=window_days,
        holdout_days=holdout_days,
        selection_metric=selection_metric,
        gate=gate,
        task=task,
        random_state=random_state,
        reference_sample_rows=reference_rows,
        description=str(raw.get("description", "")),
        training=training,
        drift=drift,
        rollback=rollback,
        config_path=config_path,
    )


def _parse_preprocessing(
    raw: Any, dataset: DatasetConfig | None, problems: list[str]
) -> dict[str, ColumnPreprocessing]:
    if not isinstance(raw, dict):
        problems.append("'preprocessing' must map numeric/categorical/boolean to settings")
        return dict(DEFAULT_PREPROCESSING)
    unknown = set(raw) - set(FEATURE_KINDS)
    if unknown:
        problems.append(f"'preprocessing' has unknown kinds {sorted(unknown)}")
    if dataset is not None:
        unused = sorted(k for k in raw if k in FEATURE_KINDS and not dataset.features.get(k))
        if unused:
            problems.append(f"'preprocessing' configures {unused}, but the dataset has no such features")
    result = {}
    for kind in FEATURE_KINDS:
        settings = raw.get(kind) or {}
        label = f"preprocessing.{kind}"
        if not isinstance(settings, dict):
            problems.append(f"'{label}' must be a mapping")
            settings = {}
        extra = set(settings) - _PREPROCESSING_KEYS[kind]
        if extra:
            problems.append(
                f"'{label}' has unknown settings {sorted(extra)} "
                f"(known: {', '.join(sorted(_PREPROCESSING_KEYS[kind]))})"
            )
        default = DEFAULT_PREPROCESSING[kind]
        impute = settings.get("impute", default.impute)
        if impute not in _IMPUTE[kind]:
            problems.append(f"'{label}.impute' must be one of {', '.join(_IMPUTE[kind])}, not {impute!r}")
        fill_value = settings.get("fill_value", default.fill_value)
        if fill_value is not None and not _json_scalar(fill_value):
            problems.append(f"'{label}.fill_value' must be a scalar, not {fill_value!r}")
        scale = settings.get("scale", default.scale)
        if not isinstance(scale, bool):
            problems.append(f"'{label}.scale' must be true or false, not {scale!r}")
        min_frequency = settings.get("min_frequency")
        if min_frequency is not None and not (
            (isinstance(min_frequency, int) and not isinstance(min_frequency, bool) and min_frequency >= 1)
            or (isinstance(min_frequency, float) and 0 < min_frequency < 1)
        ):
            problems.append(
                f"'{label}.min_frequency' must be a count >= 1 or a share in (0, 1), not {min_frequency!r}"
            )
        max_categories = settings.get("max_categories")
        if max_categories is not None and (
            isinstance(max_categories, bool) or not isinstance(max_categories, int) or max_categories < 2
        ):
            problems.append(f"'{label}.max_categories' must be an integer >= 2, not {max_categories!r}")
        result[kind] = ColumnPreprocessing(
            impute=impute,
            fill_value=fill_value,
            scale=scale,
            min_frequency=min_frequency,
            max_categories=max_categories,
        )
    return result


def _parse_task(raw: str | None, dataset: DatasetConfig | None, problems: list[str]) -> str | None:
    """The model's task: as configured, else the dataset's; checked against the dataset's target.

    None when the file names no task and the dataset could not be read (already a problem).
    """
    if dataset is None:
        return raw
    task = raw or dataset.task_kind
    classes = dataset.target_classes
    listed = f"dataset {dataset.name!r} lists {len(classes)} target classes" + (
        f" ({', '.join(map(str, classes))})" if classes else ""
    )
    if task == "binary" and len(classes) != 2:
        hint = "use task: multiclass" if len(classes) > 2 else "list the two classes under target.classes"
        problems.append(f"'task' binary needs exactly 2 target classes, but {listed}; {hint}")
    elif task == "multiclass" and len(classes) < 3:
        hint = "use task: binary" if len(classes) == 2 else "list the classes under target.classes"
        problems.append(f"'task' multiclass needs at least 3 target classes, but {listed}; {hint}")
    elif task == "regression" and dataset.schema.get(dataset.target) not in _NUMERIC_TYPES:
        problems.append(
            f"'task' regression needs a numeric target, but {dataset.target!r} of dataset "
            f"{dataset.name!r} is {dataset.schema.get(dataset.target)} (a regression model ignores "
            "target.classes)"
        )
    return task


def _task_metrics(task: str | None) -> tuple[dict[str, Any], str]:
    """The metrics a file may name for ``task`` and the words for messages; all of them without a task."""
    return (task_metrics(task), f"{task} ") if task else (METRICS, "")


def _parse_gate(raw: Any, selection_metric: str, task: str | None, problems: list[str]) -> GatePolicy:
    metrics, kind = _task_metrics(task)
    if not isinstance(raw, dict):
        problems.append("'gate' must be a mapping with 'minimums' and 'margin'")
        return GatePolicy(metric=selection_metric)
    unknown = set(raw) - {"metric", "minimums", "margin"}
    if unknown:
        problems.append(f"'gate' has unknown keys {sorted(unknown)} (known: metric, minimums, margin)")
    metric = raw.get("metric", selection_metric)
    if metric not in metrics:
        problems.append(
            f"'gate.metric' must be one of the {kind}metrics {', '.join(metrics)}, not {metric!r}"
        )
        metric = selection_metric
    minimums = raw.get("minimums") or {}
    if not isinstance(minimums, dict):
        problems.append("'gate.minimums' must map metric names to numbers")
        minimums = {}
    valid = {}
    for name, bound in minimums.items():
        if name not in metrics:
            problems.append(
                f"'gate.minimums' names unknown metric {name!r} for a {kind}model "
                f"(known: {', '.join(metrics)})"
            )
        elif not is_finite_number(bound):
            problems.append(f"'gate.minimums.{name}' must be a number, not {bound!r}")
        else:
            valid[name] = float(bound)
    margin = raw.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < math.inf:
        problems.append(f"'gate.margin' must be a number >= 0, not {margin!r}")
        margin = 0.0
    return GatePolicy(metric=metric, minimums=valid, margin=float(margin))
