"""Save a fitted scikit-learn pipeline as an MLflow model folder, quickly and safely.

- The pip requirements are given explicitly (pinned to what is installed), which keeps MLflow from
  inferring them by importing the model in a subprocess (13-22 s per model here; this takes ~0.2 s).
- The model is serialised with skops, which loads only the types it is told to trust. We trust the
  types the fitted pipeline itself contains, and only if they come from scikit-learn, numpy or scipy;
  anything else is refused here rather than trusted blindly.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    import pandas as pd

# Distributions the saved model needs to be loaded and served.
_REQUIREMENTS = ("mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy", "scipy", "pyarrow")
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


@contextmanager
def quiet_skops() -> Iterator[None]:
    """Silence warnings while skops (de)serialises.

    skops looks type names up with ``getattr`` across every loaded module, which trips the
    deprecation shims of unrelated packages: over 1,000 warnings per model with Airflow loaded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def pinned_requirements() -> list[str]:
    """``name==version`` for each distribution the model needs, as installed in this environment."""
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def trusted_types(model: object) -> list[str]:
    """The types skops must trust to load ``model``; refuse types from other packages."""
    with quiet_skops():
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [name for name in untrusted if not name.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise TypeError(f"The model contains types outside scikit-learn/numpy/scipy: {', '.join(foreign)}")
    return untrusted


def save_sklearn_model(
    model: Any,
    path: Path,
    *,
    input_example: pd.DataFrame,
    task: str = "binary",
    classes: Sequence[Any] = (0, 1),
) -> None:
    """Write ``model`` as an MLflow model folder at ``path``, with a signature that says what it returns.

    The pyfunc flavour of a classifier (``binary``, ``multiclass``) returns ``predict_proba``: one
    column per class, in the order of ``classes`` (the dataset's target classes), which the output
    signature names; a regressor returns ``predict``. The input signature comes from
    ``input_example``, so serving validates inputs against the training columns. The task and the
    class names are also in the MLmodel file's metadata (``mlops_task``, ``mlops_classes``).
    """
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    if task == "regression":
        predict_fn, output, names = "predict", model.predict(input_example), []
    else:
        names = [str(c) for c in classes]
        predict_fn = "predict_proba"
        output = pd.DataFrame(model.predict_proba(input_example), columns=names)
    with quiet_skops():
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=trusted_types(model),
            signature=infer_signature(input_example, output),
            input_example=input_example,
            pip_requirements=pinned_requirements(),
            pyfunc_predict_fn=predict_fn,
            metadata={"mlops_task": task, "mlops_classes": names},
        )
