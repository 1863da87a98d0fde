"""The tracking side of MLflowHook that builds or reads MLflow entities: run records, dataset inputs.

Operators hand the hook plain data (partition descriptions, tag dicts) and get plain data back
(:class:`RunRecord`); the ``mlflow.entities`` objects live here only. mlflow is imported inside the
functions, when a task runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput

PARTITION_SOURCE_TYPE = "mlops-partition"
"""``source_type`` of the dataset inputs that name a validated partition."""
INPUT_CONTEXT_TAG = "mlflow.data.context"
"""The dataset input tag MLflow's UI shows as the input's role (``training``, ``evaluation``)."""
_DIGEST_CHARS = 36  # MLflow's dataset digest column holds at most 36 characters


@dataclass(frozen=True)
class RunRecord:
    """A run read back: its latest metric values, its tags and its start time (ms since the epoch)."""

    run_id: str
    start_time_ms: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def read_run(client: MlflowClient, run_id: str) -> RunRecord:
    """The :class:`RunRecord` of ``run_id``."""
    run = client.get_run(run_id)
    return RunRecord(run_id, run.info.start_time, dict(run.data.metrics), dict(run.data.tags))


def partition_inputs(dataset: str, partitions: list[dict[str, Any]], context: str) -> list[DatasetInput]:
    """MLflow dataset inputs for ``partitions`` (``{"ds", "uri", "sha256", "rows"}`` each) of ``dataset``.

    Each input is named ``<dataset>/ds=<day>``, digested by the partition's sha256 and sourced by
    its URI and sha256; ``context`` tags its role in the run.
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [
        DatasetInput(
            dataset=Dataset(
                name=f"{dataset}/ds={part['ds']}",
                digest=part["sha256"][:_DIGEST_CHARS],
                source_type=PARTITION_SOURCE_TYPE,
                source=json.dumps({"uri": part["uri"], "sha256": part["sha256"]}),
                profile=json.dumps({"num_rows": part["rows"]}),
            ),
            tags=[InputTag(INPUT_CONTEXT_TAG, context)],
        )
        for part in partitions
    ]
