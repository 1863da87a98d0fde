"""The reference profile a drift check compares current data to, built once per model version.

Training calls :func:`build_reference_profile` on the model's training data (and its scores), writes
it with :meth:`ReferenceProfile.write` and logs the two files as MLflow artifacts; a drift task
downloads them and calls :meth:`ReferenceProfile.read`. Everything a daily check needs that does not
depend on the current data is precomputed here, so a check never touches the training data:

* numeric columns (and numeric predictions): row and missing counts, mean / std / min / max of the
  whole column, quantile bin edges with the whole column's bin counts (for PSI), and a seeded
  random sample of the non-missing values, sorted (for KS and Wasserstein);
* categorical and boolean columns (and predicted classes): the count of every category (the most
  frequent ``MAX_CATEGORIES`` by name, the rest as one ``other`` count) and of missing values.

The model's prediction is profiled as :func:`prediction_values` says for its task: the positive-class
probability of a binary classifier and the predicted value of a regressor as numeric columns, the
predicted class of a multiclass classifier (its name) as a categorical column. (The predicted class
rather than each class's probability: one verdict that reads "the model now predicts class c more
often", tested like any categorical feature.)

Files (JSON + ``.npz`` without pickles; the JSON is written last and holds the sha256 of the npz)::

    drift_profile.json   format, row count, sample size, seed, one entry per column, importance
    drift_samples.npz    one sorted float64 array per numeric column: "n0", "n1", ..., "prediction"
                         (the last only for a numeric prediction)

Missing means null, NaN or +-infinity. Pure numpy / pandas, no Airflow.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

PROFILE_FORMAT = 1
PROFILE_FILE = "drift_profile.json"
SAMPLES_FILE = "drift_samples.npz"
PREDICTION = "prediction"  # the npz key and report name of the model's predictions
MAX_CATEGORIES = 1000  # categories kept by name per column; the tail is counted as ``other``
PSI_BINS = 10  # quantile bins of numeric columns (fewer when the column has ties)


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column of the reference data.

    :param rows: rows in the reference; ``missing`` of them are null, NaN or infinite.
    :param bin_edges: increasing interior edges of the PSI bins ``(-inf, e0], (e0, e1], ..., (ek, inf)``.
    :param bin_counts: non-missing values per bin (``len(bin_edges) + 1`` counts, whole column).
    :param sample: a seeded random sample of the non-missing values, sorted ascending.
    """

    name: str
    rows: int
    missing: int
    mean: float | None
    std: float | None
    minimum: float | None
    maximum: float | None
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    sample: np.ndarray = field(repr=False, compare=False)

    @property
    def present(self) -> int:
        """Non-missing values in the reference column."""
        return self.rows - self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "bin_edges": list(self.bin_edges),
            "bin_counts": list(self.bin_counts),
            "sample_size": int(self.sample.size),
        }


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical (or boolean) column of the reference data.

    :param categories: category keys (see :func:`category_key`), most frequent first.
    :param counts: rows per category, aligned with ``categories``.
    :param other: rows in categories beyond the first ``MAX_CATEGORIES`` (0 unless truncated).
    """

    name: str
    rows: int
    missing: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "missing": self.missing,
            "categories": list(self.categories),
            "counts": list(self.counts),
            "other": self.other,
        }


@dataclass(frozen=True)
class ReferenceProfile:
    """What a drift check needs to know about a model's reference (training) data."""

    rows: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | CategoricalProfile | None = None
    sample_rows: int = 100_000
    seed: int = 0
    #: each feature's importance to the model (>= 0, summing to 1), or None when not measured
    importance: dict[str, float] | None = field(default=None, compare=False)

    @property
    def features(self) -> list[str]:
        """Feature names, numeric first, each group in the order it was built."""
        return [*self.numeric, *self.categorical]

    def write(self, directory: Path) -> list[Path]:
        """Write the profile's files into ``directory`` (created if needed); return their paths.

        Each file is written under a temporary name and renamed; the JSON, which names the
        samples file and its sha256, comes last, so a reader never pairs a new JSON with old samples.
        """
        directory.mkdir(parents=True, exist_ok=True)
        columns = list(self.numeric.values())
        keys = [f"n{i}" for i in range(len(self.numeric))]
        if isinstance(self.prediction, NumericProfile):
            columns.append(self.prediction)
            keys.append(PREDICTION)
        samples_path = directory / SAMPLES_FILE
        tmp = directory / f".{SAMPLES_FILE}.tmp"
        with tmp.open("wb") as handle:
            # No pickles: the samples are numbers, and the reader loads them with allow_pickle=False.
            samples = {key: column.sample for key, column in zip(keys, columns, strict=True)}
            np.savez(handle, allow_pickle=False, **samples)
        os.replace(tmp, samples_path)

        document = {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "seed": self.seed,
            "samples": {"file": SAMPLES_FILE, "sha256": _sha256(samples_path)},
            "numeric": [
                {"name": name, "sample": key, **column.to_json()}
                for (name, column), key in zip(self.numeric.items(), keys, strict=False)
            ],
            "categorical": [{"name": name, **column.to_json()} for name, column in self.categorical.items()],
            "prediction": _prediction_json(self.prediction),
            "importance": self.importance,
        }
        profile_path = directory / PROFILE_FILE
        tmp = directory / f".{PROFILE_FILE}.tmp"
        tmp.write_text(json.dumps(document, allow_nan=False, separators=(",", ":")))
        os.replace(tmp, profile_path)
        return [profile_path, samples_path]

    @classmethod
    def read(cls, directory: Path) -> ReferenceProfile:
        """Read and check a profile written by :meth:`write`.

        :raises ValueError: a file is missing, unreadable or inconsistent; the message names the
            file and the problem.
        """
        profile_path, samples_path = directory / PROFILE_FILE, directory / SAMPLES_FILE
        try:
            document = json.loads(profile_path.read_text())
        except FileNotFoundError:
            raise ValueError(f"Invalid drift profile: {profile_path} is missing.") from None
        except (OSError, ValueError) as err:
            raise ValueError(f"Invalid drift profile: cannot read {profile_path}: {err}") from None
        try:
            return _from_document(document, samples_path)
        except FileNotFoundError:
            raise ValueError(f"Invalid drift profile: {samples_path} is missing.") from None
        except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as err:
            detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"Invalid drift profile in {directory}: {detail}") from None


def build_reference_profile(
    frame: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    scores: np.ndarray | None = None,
    sample_rows: int = 100_000,
    seed: int = 0,
    importance: dict[str, float] | None = None,
) -> ReferenceProfile:
    """Profile the reference data ``frame`` (and the model's ``scores`` on it).

    :param numeric: numeric feature columns (any integer or float dtype, nullable or Arrow-backed).
    :param categorical: categorical feature columns, booleans included (any dtype; values are
        compared by :func:`category_key`).
    :param scores: the model's prediction per row of ``frame`` (1-D, see :func:`prediction_values`):
        numbers are profiled as a numeric column, strings (class names) as a categorical one.
    :param sample_rows: non-missing values kept per numeric column for KS and Wasserstein; a column
        with fewer keeps them all.
    :param seed: seed of the sample.
    :param importance: each feature's importance to the model (``core.training.permutation_importance``),
        stored normalised to sum 1; the drift check weighs drifted features by it.
    :raises ValueError: a column is missing, listed twice, or not numeric; the frame is empty; the
        importance names other features or holds a negative or non-finite value.
    """
    _check_columns(frame, numeric, categorical)
    if len(frame) == 0:
        raise ValueError("Cannot build a drift profile from an empty reference frame.")
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise ValueError(f"sample_rows must be a positive integer, not {sample_rows!r}.")
    rng = np.random.default_rng(seed)
    numeric_profiles = {
        name: _numeric_profile(name, numeric_values(frame[name], name), sample_rows, rng) for name in numeric
    }
    categorical_profiles = {name: _categorical_profile(name, frame[name]) for name in categorical}
    prediction = None
    if scores is not None:
        values = score_values(scores, len(frame))
        prediction = (
            _categorical_profile(PREDICTION, pd.Series(values))
            if is_labels(values)
            else _numeric_profile(PREDICTION, values, sample_rows, rng)
        )
    return ReferenceProfile(
        rows=len(frame),
        numeric=numeric_profiles,
        categorical=categorical_profiles,
        prediction=prediction,
        sample_rows=sample_rows,
        seed=seed,
        importance=None if importance is None else _importance(importance, [*numeric, *categorical]),
    )


def numeric_values(series: pd.Series, name: str) -> np.ndarray:
    """The column as float64 with NaN for missing values (no copy for a float64 column)."""
    if pd.api.types.is_bool_dtype(series.dtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or series.dtype == object
    ):
        raise ValueError(f"Column {name!r} is not numeric (dtype {series.dtype}); list it as categorical.")
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"Column {name!r} is not numeric (dtype {series.dtype}).") from None


def prediction_values(task: str, output: Any, classes: Sequence[Any]) -> np.ndarray:
    """What prediction drift compares, from a model's output (``core.training.model_output``).

    binary: the positive-class probability, regression: the predicted value (float64 arrays);
    multiclass: the name (:func:`category_key`) of the most probable of ``classes`` (an object array).
    """
    if task != "multiclass":
        return np.asarray(output, dtype=np.float64)
    names = np.array([category_key(c) for c in classes], dtype=object)
    proba = np.asarray(output, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != names.size:
        raise ValueError(f"Expected class probabilities with {names.size} columns, got shape {proba.shape}.")
    return names[proba.argmax(axis=1)]


def score_values(scores: Any, rows: int) -> np.ndarray:
    """The model's predictions as a 1-D array of ``rows`` values.

    Class names (a string or object array) are returned as they are, anything else as float64.
    """
    values = np.asarray(scores)
    if not is_labels(values):
        values = values.astype(np.float64)
    if values.ndim != 1 or values.size != rows:
        raise ValueError(f"Scores must be one value per row ({rows}), got an array of shape {values.shape}.")
    return values


def is_labels(values: np.ndarray) -> bool:
    """Whether predictions are class names (a string or object array), profiled as categories."""
    return values.dtype.kind in "OUS"


def sorted_sample(values: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded random sample of at most ``rows`` of ``values`` (all of them when fewer), sorted; a copy."""
    sample = values[rng.choice(values.size, rows, replace=False)] if values.size > rows else values.copy()
    sample.sort()
    return sample


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Rows per category key and the number of missing rows, counted over the whole column."""
    counts = series.value_counts(dropna=False, sort=False)
    missing_mask = np.asarray(pd.isna(counts.index), dtype=bool)
    values = counts.to_numpy(dtype=np.int64)
    by_key: dict[str, int] = {}
    # One iteration per distinct value, not per row; distinct values may share a key (1 and 1.0).
    for value, count in zip(counts.index[~missing_mask], values[~missing_mask], strict=True):
        if count:
            key = category_key(value)
            by_key[key] = by_key.get(key, 0) + int(count)
    return by_key, int(values[missing_mask].sum())


def category_key(value: Any) -> str:
    """The string a category is stored and compared as.

    Booleans are ``"True"`` / ``"False"``; integral numbers print as integers, so an integer column
    that pandas turned into floats because of nulls keeps its categories (``1.0`` is ``"1"``).
    """
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


# ------------------------------------------------------------------------------------ internals


def _check_columns(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    listed = [*numeric, *categorical]
    problems = []
    if not listed:
        problems.append("no feature column is listed")
    missing = [c for c in listed if c not in frame.columns]
    if missing:
        problems.append(f"columns not in the frame: {missing}")
    twice = sorted({c for c in listed if listed.count(c) > 1})
    if twice:
        problems.append(f"columns listed twice: {twice}")
    if PREDICTION in listed:
        problems.append(f"{PREDICTION!r} is reserved for the model's scores")
    if problems:
        raise ValueError("Cannot build a drift profile: " + "; ".join(problems) + ".")


def _numeric_profile(
    name: str, values: np.ndarray, sample_rows: int, rng: np.random.Generator
) -> NumericProfile:
    finite = np.isfinite(values)
    present = values if finite.all() else values[finite]
    if present.size == 0:
        return NumericProfile(name, values.size, values.size, None, None, None, None, (), (0,), np.empty(0))
    quantiles = np.quantile(present, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    # Ties (integer columns, spikes) merge quantiles; the top edge would leave its bin empty.
    edges = np.unique(quantiles)
    edges = edges[edges < present.max()]
    bin_counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    sample = sorted_sample(present, sample_rows, rng)
    return NumericProfile(
        name=name,
        rows=values.size,
        missing=int(values.size - present.size),
        mean=float(present.mean()),
        std=float(present.std()),
        minimum=float(present.min()),
        maximum=float(present.max()),
        bin_edges=tuple(float(e) for e in edges),
        bin_counts=tuple(int(c) for c in bin_counts),
        sample=sample,
    )


def _categorical_profile(name: str, series: pd.Series) -> CategoricalProfile:
    by_key, missing = category_counts(series)
    ranked = sorted(by_key.items(), key=lambda item: (-item[1], item[0]))
    kept = ranked[:MAX_CATEGORIES]
    return CategoricalProfile(
        name=name,
        rows=len(series),
        missing=missing,
        categories=tuple(k for k, _ in kept),
        counts=tuple(c for _, c in kept),
        other=sum(c for _, c in ranked[MAX_CATEGORIES:]),
    )


def _prediction_json(prediction: NumericProfile | CategoricalProfile | None) -> dict[str, Any] | None:
    if isinstance(prediction, NumericProfile):
        return {"name": PREDICTION, "kind": "numeric", "sample": PREDICTION, **prediction.to_json()}
    if isinstance(prediction, CategoricalProfile):
        return {"name": PREDICTION, "kind": "categorical", **prediction.to_json()}
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_document(document: Any, samples_path: Path) -> ReferenceProfile:
    """The profile a JSON document and its samples file describe; ValueError on any inconsistency."""
    if not isinstance(document, dict):
        raise ValueError("the JSON is not an object")
    if document.get("format") != PROFILE_FORMAT:
        raise ValueError(f"unsupported format {document.get('format')!r} (expected {PROFILE_FORMAT})")
    expected_sha = document["samples"]["sha256"]
    if _sha256(samples_path) != expected_sha:
        raise ValueError(f"{samples_path.name} does not match the sha256 recorded in {PROFILE_FILE}")
    rows = _count(document["rows"], "rows")
    with np.load(samples_path, allow_pickle=False) as archive:
        samples = {key: archive[key] for key in archive.files}
    numeric: dict[str, NumericProfile] = {}
    for entry in document["numeric"]:
        column = _numeric_from_json(entry, samples, rows)
        numeric[column.name] = column
    categorical: dict[str, CategoricalProfile] = {}
    for entry in document["categorical"]:
        category_column = _categorical_from_json(entry, rows)
        categorical[category_column.name] = category_column
    if len(numeric) != len(document["numeric"]) or len(categorical) != len(document["categorical"]):
        raise ValueError("a column is listed twice")
    if set(numeric) & set(categorical):
        raise ValueError(f"columns both numeric and categorical: {sorted(set(numeric) & set(categorical))}")
    if not numeric and not categorical:
        raise ValueError("no feature column")
    prediction = document.get("prediction")
    if prediction is not None:
        kind = prediction.get("kind", "numeric")
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"prediction kind {kind!r} is neither numeric nor categorical")
        if kind == "numeric":
            prediction = _numeric_from_json(prediction, samples, rows)
        else:
            prediction = _categorical_from_json(prediction, rows)
    return ReferenceProfile(
        rows=rows,
        numeric=numeric,
        categorical=categorical,
        prediction=prediction,
        sample_rows=_count(document["sample_rows"], "sample_rows"),
        seed=int(document["seed"]),
        importance=None
        if document.get("importance") is None
        else _importance(document["importance"], [*numeric, *categorical]),
    )


def _importance(importance: Any, features: list[str]) -> dict[str, float]:
    """``importance`` checked against ``features`` (missing ones are 0) and normalised to sum 1."""
    if not isinstance(importance, dict):
        raise ValueError(f"importance must map feature names to numbers, not {type(importance).__name__}")
    unknown = sorted(str(k) for k in importance if k not in features)
    bad = sorted(
        str(k)
        for k, v in importance.items()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
    )
    if unknown or bad:
        raise ValueError(f"importance names unknown features {unknown} or has values not finite >= 0 {bad}")
    total = float(sum(importance.values()))
    return {name: (float(importance.get(name, 0.0)) / total if total > 0 else 0.0) for name in features}


def _numeric_from_json(entry: dict[str, Any], samples: dict[str, np.ndarray], rows: int) -> NumericProfile:
    name = entry["name"]
    if not isinstance(name, str):
        raise ValueError(f"column name {name!r} is not a string")
    sample = samples.get(entry["sample"])
    if sample is None:
        raise ValueError(f"column {name!r}: sample {entry['sample']!r} is not in {SAMPLES_FILE}")
    missing = _count(entry["missing"], f"{name}.missing")
    edges = tuple(float(e) for e in entry["bin_edges"])
    counts = tuple(_count(c, f"{name}.bin_counts") for c in entry["bin_counts"])
    problems = []
    if _count(entry["rows"], f"{name}.rows") != rows or missing > rows:
        problems.append("row or missing count does not match the profile")
    if sample.dtype != np.float64 or sample.ndim != 1 or sample.size != entry["sample_size"]:
        problems.append(f"sample is not {entry['sample_size']} float64 values")
    elif sample.size and not (np.isfinite(sample).all() and (np.diff(sample) >= 0).all()):
        problems.append("sample is not finite and sorted")
    if len(counts) != len(edges) + 1 or sum(counts) != rows - missing or list(edges) != sorted(set(edges)):
        problems.append("bins are inconsistent")
    if problems:
        raise ValueError(f"column {name!r}: " + "; ".join(problems))
    stats = {key: entry[key] for key in ("mean", "std", "min", "max")}
    if any(v is not None and not isinstance(v, (int, float)) for v in stats.values()):
        raise ValueError(f"column {name!r}: mean/std/min/max must be numbers")
    return NumericProfile(
        name=name,
        rows=rows,
        missing=missing,
        mean=stats["mean"],
        std=stats["std"],
        minimum=stats["min"],
        maximum=stats["max"],
        bin_edges=edges,
        bin_counts=counts,
        sample=sample,
    )


def _categorical_from_json(entry: dict[str, Any], rows: int) -> CategoricalProfile:
    name = entry["name"]
    categories = entry["categories"]
    counts = tuple(_count(c, f"{name}.counts") for c in entry["counts"])
    missing, other = _count(entry["missing"], f"{name}.missing"), _count(entry["other"], f"{name}.other")
    if not isinstance(name, str) or not all(isinstance(c, str) for c in categories):
        raise ValueError(f"column {name!r}: names and categories must be strings")
    if (
        len(counts) != len(categories)
        or len(set(categories)) != len(categories)
        or sum(counts) + missing + other != rows
        or _count(entry["rows"], f"{name}.rows") != rows
    ):
        raise ValueError(f"column {name!r}: category counts do not add up to the profile's rows")
    return CategoricalProfile(name, rows, missing, tuple(categories), counts, other)


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    return value
