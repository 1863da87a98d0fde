"""How the generated DAGs run: schedule, start date, catchup, concurrency, retries, owner, tags.

Each dataset file may hold an ``ingest:`` block, each model file ``training:`` and ``drift:`` blocks
(the drift block also holds the drift policy: window, cooldown, thresholds), and both may set
``owner`` and ``tags`` for all their DAGs. The JSON Schemas check types and ranges; this module fills
in the defaults and turns the blocks into plain settings the DAG factory reads. No Airflow here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_OWNER = "mlops"
DEFAULT_START_DATE = dt.date(2026, 1, 1)
#: ``training.schedule`` value that runs training whenever its dataset publishes a validated partition.
ON_NEW_DATA = "on_new_data"


@dataclass(frozen=True)
class DagSettings:
    """The settings of one generated DAG.

    :param schedule: a cron expression or preset (``@daily``); ``None``: runs only when triggered;
        :data:`ON_NEW_DATA` (training only): on each validated partition of the model's dataset.
    :param timezone: IANA time zone the schedule is read in.
    """

    schedule: str | None
    timezone: str = "UTC"
    start_date: dt.date = DEFAULT_START_DATE
    catchup: bool = False
    max_active_runs: int = 1
    retries: int = 2
    owner: str = DEFAULT_OWNER
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftSettings:
    """The drift DAG's settings and its policy (defaults of the run's Params)."""

    dag: DagSettings
    window_days: int = 3
    cooldown_days: int = 7
    thresholds: dict[str, Any] = field(default_factory=dict, hash=False)
    #: When to retrain (``core.drift.DriftPolicy`` keys: weighting, prediction_drift, performance).
    policy: dict[str, Any] = field(default_factory=dict, hash=False)
    #: Realised performance: labels arrive this many days late; scored over this many days;
    #: degraded when worse than the champion's holdout score by more than the margin.
    label_delay_days: int = 1
    performance_days: int = 3
    performance_margin: float = 0.02


INGEST_DEFAULTS = DagSettings(schedule="@daily", max_active_runs=4, retries=3)
TRAINING_DEFAULTS = DagSettings(schedule=None, max_active_runs=1, retries=2)
DRIFT_DEFAULTS = DagSettings(schedule="30 1 * * *", max_active_runs=1, retries=2)
ROLLBACK_DEFAULTS = DagSettings(schedule=None, max_active_runs=1, retries=0)
DRIFT_SETTINGS_DEFAULTS = DriftSettings(dag=DRIFT_DEFAULTS)


def _date(value: Any, default: dt.date) -> dt.date:
    if value is None:
        return default
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def dag_settings(raw: dict[str, Any], block: str | None, defaults: DagSettings) -> DagSettings:
    """The settings of one DAG from a schema-checked file: ``raw[block]`` over ``defaults``.

    ``owner`` and ``tags`` come from the top level of the file (they apply to all its DAGs).
    :raises ValueError: a time zone that is not an IANA name.
    """
    settings = (raw.get(block) or {}) if block else {}
    timezone = str(settings.get("timezone", defaults.timezone))
    check_timezone(timezone, f"'{block}.timezone'")
    return replace(
        defaults,
        schedule=settings.get("schedule", defaults.schedule),
        timezone=timezone,
        start_date=_date(settings.get("start_date"), defaults.start_date),
        catchup=bool(settings.get("catchup", defaults.catchup)),
        max_active_runs=int(settings.get("max_active_runs", defaults.max_active_runs)),
        retries=int(settings.get("retries", defaults.retries)),
        owner=str(raw.get("owner", defaults.owner)),
        tags=tuple(dict.fromkeys(str(t) for t in raw.get("tags", ()))),
    )


def drift_settings(raw: dict[str, Any]) -> DriftSettings:
    """The ``drift:`` block of a schema-checked model file, with defaults."""
    block = raw.get("drift") or {}
    return DriftSettings(
        dag=dag_settings(raw, "drift", DRIFT_DEFAULTS),
        window_days=int(block.get("window_days", 3)),
        cooldown_days=int(block.get("cooldown_days", 7)),
        thresholds=dict(block.get("thresholds") or {}),
        policy=dict(block.get("policy") or {}),
        label_delay_days=int(block.get("label_delay_days", 1)),
        performance_days=int(block.get("performance_days", 3)),
        performance_margin=float(block.get("performance_margin", 0.02)),
    )


def check_timezone(name: str, label: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise ``ValueError`` naming ``label``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{label} {name!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
    return name
