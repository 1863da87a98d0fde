"""The DAG ids of the generated pipelines: the one place that spells them.

One set per configuration file, named for the dataset or model it serves; the ``__`` separates the
kind from the name (names are lower-case identifiers, so ids never collide across kinds)::

    mlops_ingest__<dataset>     daily ingest + validation of a dataset
    mlops_train__<model>        train, evaluate, register (and promote) a model
    mlops_drift__<model>        drift check of the model's champion, triggers mlops_train__<model>
    mlops_rollback__<model>     point the model's champion alias back to an earlier version
"""

from __future__ import annotations

PREFIX = "mlops_"
SEPARATOR = "__"
KINDS = ("ingest", "train", "drift", "rollback")


def pipeline_dag_id(kind: str, name: str) -> str:
    """The DAG id of the ``kind`` pipeline (one of :data:`KINDS`) of dataset or model ``name``."""
    if kind not in KINDS:
        raise ValueError(f"Unknown pipeline kind {kind!r}: expected one of {', '.join(KINDS)}.")
    return f"{PREFIX}{kind}{SEPARATOR}{name}"


def ingest_dag_id(dataset: str) -> str:
    return pipeline_dag_id("ingest", dataset)


def train_dag_id(model: str) -> str:
    return pipeline_dag_id("train", model)


def drift_dag_id(model: str) -> str:
    return pipeline_dag_id("drift", model)


def rollback_dag_id(model: str) -> str:
    return pipeline_dag_id("rollback", model)
