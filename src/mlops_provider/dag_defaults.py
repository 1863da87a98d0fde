"""Defaults shared by the project's DAGs: retry policy and the Params that name configuration files."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

if TYPE_CHECKING:
    from pathlib import Path

# A configuration file's name: it becomes part of a path, so nothing but a plain identifier.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


def default_args(retries: int) -> dict[str, Any]:
    """Owner and retries with exponential backoff (30 s doubling up to 10 min) for transient errors.

    Non-retryable failures (bad data, invalid config, failed gate) raise ``AirflowFailException``
    subclasses and skip the retries.
    """
    return {
        "owner": "mlops",
        "retries": retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    }


def config_name_param(kind: str, folder: Path, default: str = "churn") -> Param:
    """A Param naming one of the ``<name>.yaml`` files in ``folder`` (``kind``: model or dataset).

    The files present when the DAG is parsed are its choices (a drop-down in the trigger form), so
    the REST API refuses an unknown name with HTTP 400 instead of a run that fails later.
    """
    names = sorted(p.stem for p in folder.glob("*.yaml") if re.fullmatch(NAME_PATTERN, p.stem))
    return Param(
        default,
        type="string",
        pattern=NAME_PATTERN,
        enum=names or [default],
        title=kind.capitalize(),
        description=f"A {kind} configured in include/{kind}s/<{kind}>.yaml.",
    )
