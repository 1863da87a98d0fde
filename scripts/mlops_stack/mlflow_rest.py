"""What the demo reads from MLflow's REST API (``/api/2.0/mlflow/...``): model versions, aliases, metrics."""

from __future__ import annotations

import urllib.parse

from mlops_stack.errors import DemoError
from mlops_stack.rest import http


class MlflowReader:
    """Read-only calls to the MLflow tracking server at ``base_url`` about registered model ``model``."""

    def __init__(self, base_url: str, model: str) -> None:
        self.base_url = base_url
        self.model = model

    def get(self, path: str, params: dict) -> dict:
        """GET ``/api/2.0/mlflow/<path>``; {} when the thing does not exist (404, RESOURCE_DOES_NOT_EXIST)."""
        url = f"{self.base_url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
        status, body = http("GET", url, timeout=60)
        if status == 404 or (status == 400 and "RESOURCE_DOES_NOT_EXIST" in str(body)):
            return {}
        if status != 200 or not isinstance(body, dict):
            raise DemoError(f"MLflow GET {path} -> {status or 'no answer'}: {body}")
        return body

    def alias_version(self, alias: str) -> str | None:
        """The version the alias points to (None if it does not exist)."""
        body = self.get("registered-models/alias", {"name": self.model, "alias": alias})
        return (body.get("model_version") or {}).get("version")

    def model_versions(self) -> list[dict]:
        """Every version of the model, oldest first."""
        body = self.get("model-versions/search", {"filter": f"name='{self.model}'", "max_results": 100})
        return sorted(body.get("model_versions", []), key=lambda v: int(v["version"]))

    def aliases(self) -> dict[str, list[str]]:
        """Version -> its aliases."""
        body = self.get("registered-models/get", {"name": self.model})
        found: dict[str, list[str]] = {}
        for entry in (body.get("registered_model") or {}).get("aliases", []):
            found.setdefault(entry["version"], []).append(entry["alias"])
        return found

    def run_metrics(self, run_id: str | None) -> dict[str, float]:
        """The latest metrics of an MLflow run ({} without one)."""
        if not run_id:
            return {}
        run = self.get("runs/get", {"run_id": run_id}).get("run") or {}
        return {m["key"]: m["value"] for m in (run.get("data") or {}).get("metrics", [])}
