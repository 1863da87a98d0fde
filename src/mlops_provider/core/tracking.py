"""What the pipelines record on MLflow runs: the tags that find a run again, lineage, series values.

Pure and cheap (the registry vocabulary and the standard library only). Operators decide here what to
record; :class:`~mlops_provider.hooks.mlflow.MLflowHook` records it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, TypedDict

from mlops_provider.core import registry_names as names

PARTITIONS_TAG_LIMIT = 7900  # characters of the partitions tag (MLflow keeps at most 8,000 per tag value)


class RunSpec(TypedDict):
    """A run found again by its tags (``MLflowHook.open_run`` / ``find_or_create_run`` keywords):
    the tags it is created with, the names of those that identify it, and its display name."""

    tags: dict[str, str]
    match: tuple[str, ...]
    run_name: str


def airflow_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """The tags ``airflow.<key>`` naming the Airflow task that wrote a run (``run_lineage`` keys)."""
    return {f"{names.AIRFLOW_TAG_PREFIX}{key}": str(value) for key, value in lineage.items()}


def training_run_key(airflow_run_id: str) -> dict[str, str]:
    """The tags that identify the training (parent) run of the Airflow DAG run ``airflow_run_id``."""
    return {names.AIRFLOW_RUN_ID_TAG: airflow_run_id, names.ROLE_TAG: names.ROLE_TRAINING}


def training_run(model: str, lineage: dict[str, Any]) -> RunSpec:
    """The training run of one DAG run of ``model`` (one per Airflow run id, whatever the try)."""
    key = training_run_key(lineage["run_id"])
    return RunSpec(
        tags={**airflow_tags(lineage), **key, names.MODEL_TAG: model},
        match=tuple(key),
        run_name=f"train {lineage['run_id']}",
    )


def candidate_run(parent_run_id: str, lineage: dict[str, Any], task: str) -> RunSpec:
    """The nested run of one candidate (one per map index below the parent, whatever the try)."""
    return RunSpec(
        tags={
            **airflow_tags(lineage),
            names.PARENT_RUN_ID_TAG: parent_run_id,
            names.ROLE_TAG: names.ROLE_CANDIDATE,
            names.TASK_TAG: task,
        },
        match=(names.PARENT_RUN_ID_TAG, names.AIRFLOW_MAP_INDEX_TAG, names.ROLE_TAG),
        run_name=f"candidate {lineage['map_index']}",
    )


def monitoring_run(model: str, version: str) -> RunSpec:
    """The run collecting the drift checks of one version of ``model`` (one per version)."""
    return RunSpec(
        tags={
            names.ROLE_TAG: names.ROLE_MONITORING,
            names.MODEL_TAG: model,
            names.MODEL_VERSION_TAG: str(version),
        },
        match=(names.ROLE_TAG, names.MODEL_VERSION_TAG),
        run_name=f"drift of {model} v{version}",
    )


def distinct_partitions(partitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Partition entries once per day, in first-seen order (a day split by row is in several parts)."""
    return list({part["ds"]: part for part in partitions}.values())


def partitions_tag(dataset: str, partitions: list[dict[str, Any]]) -> str:
    """The compact lineage tag ``<dataset>@<ds>:<sha256[:12]>,...`` (clipped to MLflow's tag limit)."""
    compact = ",".join(f"{part['ds']}:{part['sha256'][:12]}" for part in partitions)
    return f"{dataset}@{compact}"[:PARTITIONS_TAG_LIMIT]


def training_end(window_tag: str, start_time_ms: int | None) -> date:
    """The last day a model version was trained on: the end of its ``mlops.window`` tag
    (``start..end``), else the day its training run started."""
    if ".." in window_tag:
        return date.fromisoformat(window_tag.split("..")[-1])
    return datetime.fromtimestamp((start_time_ms or 0) / 1000, tz=timezone.utc).date()


def day_timestamp_ms(day: date) -> int:
    """Midnight UTC of ``day`` in ms since the epoch: the timestamp of a daily series value."""
    return int(datetime.combine(day, time(), tzinfo=timezone.utc).timestamp() * 1000)


def drift_scores(report: Any) -> dict[str, float]:
    """The values a drift check logs: ``drift_share``, ``drift.<feature>.<metric>`` of each feature and
    ``drift.prediction.<metric>`` (a :class:`~mlops_provider.core.drift.DriftReport`)."""
    scores = {"drift_share": report.share}
    scores.update({f"drift.{f.name}.{f.metric}": f.score for f in report.features})
    if report.prediction is not None:
        scores[f"drift.prediction.{report.prediction.metric}"] = report.prediction.score
    return scores


def performance_series(performance: dict[str, Any]) -> dict[str, float]:
    """The values a realised-performance assessment logs (``core.performance.assess_performance``):
    its metrics, ``degraded`` (0/1) and the scored ``rows``."""
    return {
        **performance["metrics"],
        "degraded": float(performance["degraded"]),
        "rows": performance["rows"],
    }
