"""What the registry operators write: writer tokens, version and run tags, audit records. Pure.

Every record is plain JSON-safe data keyed by the names of :mod:`mlops_provider.core.registry_names`;
the hook writes them, the operators only choose the values.
"""

from __future__ import annotations

from typing import Any

from mlops_provider.core.registry_names import (
    AIRFLOW_DAG_ID_TAG,
    AIRFLOW_RUN_ID_TAG,
    CHALLENGER_RUN_ID_TAG,
    CHALLENGER_RUN_URL_TAG,
    GATE_DECISION_TAG,
    GATE_REASON_TAG,
    MODEL_VERSION_TAG,
    MODEL_VERSION_URL_TAG,
    REASON_TAG,
    ROLLBACK_AIRFLOW_RUN_ID_TAG,
    ROLLBACK_AT_TAG,
    ROLLBACK_BY_TAG,
    ROLLBACK_FROM_VERSION_TAG,
    ROLLBACK_REASON_TAG,
    WINDOW_TAG,
)

TAG_VALUE_LIMIT = 5000
"""MLflow's limit on a tag value: longer free text (reasons) is clipped to it."""


def writer_token(action: str, dag_id: str, run_id: str) -> str:
    """Who writes: ``<action>:<dag_id>/<run_id>``, the same on every try of a task."""
    return f"{action}:{dag_id}/{run_id}"


def registration_tags(dag_id: str, run_id: str, reason: str | None, window: dict[str, str]) -> dict[str, str]:
    """The tags a registered version carries: the Airflow run, why it trained, its data window."""
    return {
        AIRFLOW_DAG_ID_TAG: dag_id,
        AIRFLOW_RUN_ID_TAG: run_id,
        REASON_TAG: (reason or "")[:TAG_VALUE_LIMIT],
        WINDOW_TAG: f"{window['start']}..{window['end']}",
    }


def evaluation_tags(verdict: str, reason: str, challenger_run_id: str) -> dict[str, str]:
    """The training parent run's tags after evaluation: the gate's first verdict and the challenger."""
    return {
        GATE_DECISION_TAG: verdict,
        GATE_REASON_TAG: reason[:TAG_VALUE_LIMIT],
        CHALLENGER_RUN_ID_TAG: challenger_run_id,
    }


def parent_run_tags(
    *, challenger_run_id: str, challenger_run_url: str, version: str, version_url: str, verdict: str
) -> dict[str, str]:
    """The training parent run's tags after registration: the chosen run, its version, the verdict."""
    return {
        CHALLENGER_RUN_ID_TAG: challenger_run_id,
        CHALLENGER_RUN_URL_TAG: challenger_run_url,
        MODEL_VERSION_TAG: version,
        MODEL_VERSION_URL_TAG: version_url,
        GATE_DECISION_TAG: verdict,
    }


def rollback_tags(
    *, reason: str, by: str, at: str, from_version: str | None, airflow_run_id: str
) -> dict[str, str]:
    """The tags a version gets when ``champion`` is rolled back to it (its latest rollback)."""
    return {
        ROLLBACK_REASON_TAG: reason[:TAG_VALUE_LIMIT],
        ROLLBACK_BY_TAG: by,
        ROLLBACK_AT_TAG: at,
        ROLLBACK_FROM_VERSION_TAG: str(from_version or ""),
        ROLLBACK_AIRFLOW_RUN_ID_TAG: airflow_run_id,
    }


def audit_record(
    action: str,
    *,
    event_id: str,
    version: str,
    from_version: str | None,
    at: str,
    by: str,
    airflow_run_id: str,
    reason: str,
) -> dict[str, Any]:
    """One audit entry (``promote`` or ``rollback``): which version, from which, when, by whom, why."""
    return {
        "event_id": event_id,
        "action": action,
        "version": version,
        "from_version": from_version,
        "at": at,
        "by": by,
        "airflow_run_id": airflow_run_id,
        "reason": reason,
    }
