"""HTTP probes of the stack's servers: MLflow's ``/health`` and Airflow's ``/api/v2/monitor/health``."""

from __future__ import annotations

from mlops_stack.ports import HOST
from mlops_stack.rest import http

AIRFLOW_HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def mlflow_healthy(port: int, host: str = HOST) -> bool:
    """Whether MLflow's ``GET /health`` answers 200."""
    return http("GET", f"http://{host}:{port}/health", timeout=3)[0] == 200


def airflow_health(port: int, host: str = HOST) -> dict[str, str]:
    """Component -> status from Airflow's ``GET /api/v2/monitor/health`` ({} if it does not answer)."""
    status, body = http("GET", f"http://{host}:{port}/api/v2/monitor/health", timeout=3)
    if status != 200 or not isinstance(body, dict):
        return {}
    return {name: str((body.get(name) or {}).get("status")) for name in AIRFLOW_HEALTH_COMPONENTS}


def airflow_healthy(port: int, host: str = HOST) -> bool:
    """Whether the metadatabase, scheduler, triggerer and dag processor all report healthy."""
    health = airflow_health(port, host)
    return bool(health) and all(status == "healthy" for status in health.values())
