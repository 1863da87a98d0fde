"""What every generated DAG shares: its schedule, start date and retry policy from the settings."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Asset

    from mlops_provider.core.pipeline_config import DagSettings

BASE_TAGS = ("mlops",)


def date_param(title: str, description: str) -> Any:
    """An optional ``YYYY-MM-DD`` Param (empty: the run's own date)."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date", title=title, description=description)


def default_args(settings: DagSettings) -> dict[str, Any]:
    """Owner and retries with exponential backoff (30 s doubling up to 10 min) for transient errors.

    Non-retryable failures (bad data, invalid config, failed gate) raise ``AirflowFailException``
    subclasses and skip the retries.
    """
    return {
        "owner": settings.owner,
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    }


def dag_arguments(
    settings: DagSettings,
    *,
    tags: tuple[str, ...],
    schedule: Asset | None = None,
    on_failure_callback: Callable[[Any], None] | None = None,
) -> dict:
    """Keyword arguments of ``DAG`` for ``settings``: a cron timetable in the settings' time zone,
    or ``schedule`` (an asset) when given; tags are the pipeline's own, then the file's;
    ``on_failure_callback`` for every task when given. The DAG is not auto-registered: the factory
    returns the DAGs that a DAG file exposes.

    :raises ValueError: an invalid cron expression or preset (the message names it).
    """
    import pendulum
    from airflow.sdk import CronDataIntervalTimetable

    timetable: Any = schedule
    if timetable is None and settings.schedule is not None:
        try:
            timetable = CronDataIntervalTimetable(settings.schedule, timezone=settings.timezone)
            timetable.validate()
        except Exception as err:  # Airflow raises its own error types, which differ between versions
            raise ValueError(f"invalid schedule {settings.schedule!r}: {err}") from None
    start = settings.start_date
    task_defaults = default_args(settings)
    if on_failure_callback is not None:
        task_defaults["on_failure_callback"] = on_failure_callback
    return {
        # Only the DAGs the factory returns exist: a file whose third DAG fails adds none.
        "auto_register": False,
        "schedule": timetable,
        "start_date": pendulum.datetime(start.year, start.month, start.day, tz=settings.timezone),
        "catchup": settings.catchup,
        "max_active_runs": settings.max_active_runs,
        "default_args": task_defaults,
        "tags": list(dict.fromkeys((*BASE_TAGS, *tags, *settings.tags))),
    }
