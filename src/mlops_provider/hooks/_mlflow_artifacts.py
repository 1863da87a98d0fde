"""Move run artifacts with the connection's credentials.

A tracking server that proxies artifacts (``mlflow server --artifacts-destination ...``, the default)
gives runs ``mlflow-artifacts:/...`` URIs. MLflow's own client for them reads credentials from the
environment only, which a task must not touch, so uploads and downloads to the proxy go through its
REST endpoints here, with the same credentials as the tracking calls. Any other artifact URI
(``s3://``, ``file://`` when the server does not proxy) is handled by MLflow's artifact repositories,
which reach the store directly with the worker's own storage credentials.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

if TYPE_CHECKING:
    from mlflow import MlflowClient

_PROXY_SCHEME = "mlflow-artifacts"
_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"


def proxied_root(artifact_uri: str) -> str | None:
    """The path of ``artifact_uri`` below the proxy's artifact root, or None if it is not proxied."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != _PROXY_SCHEME:
        return None
    return parsed.path.strip("/")


def _safe_relative(path: str) -> str:
    """Reject artifact paths that would climb out of the run's folder."""
    normal = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if normal in ("", ".") or normal.startswith(".."):
        raise ValueError(f"Unsafe artifact path {path!r}")
    return normal


class ArtifactTransport:
    """Upload and download the artifacts of runs, authenticated like the tracking client."""

    def __init__(self, client: MlflowClient, tracking_uri: str, credentials: dict[str, Any]) -> None:
        self._client = client
        self._tracking_uri = tracking_uri
        self._credentials = credentials

    def _request(self, method: str, path: str, **kwargs: Any):
        from mlflow.utils.rest_utils import MlflowHostCreds, augmented_raise_for_status, http_request

        creds = MlflowHostCreds(host=self._tracking_uri, **self._credentials)
        response = http_request(creds, f"{_ENDPOINT}/{quote(path)}" if path else _ENDPOINT, method, **kwargs)
        augmented_raise_for_status(response)
        return response

    def _root(self, run_id: str) -> str | None:
        return proxied_root(self._client.get_run(run_id).info.artifact_uri)

    def upload_dir(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> list[str]:
        """Upload every file below ``local_dir`` to ``artifact_path`` of the run; return their paths."""
        root = self._root(run_id)
        if root is None:
            self._client.log_artifacts(run_id, str(local_dir), artifact_path)
            return sorted(str(p.relative_to(local_dir)) for p in local_dir.rglob("*") if p.is_file())
        uploaded = []
        for file in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            relative = file.relative_to(local_dir).as_posix()
            target = _safe_relative(posixpath.join(artifact_path or "", relative))
            with file.open("rb") as body:
                self._request("PUT", f"{root}/{target}", data=body)
            uploaded.append(relative)
        return uploaded

    def upload_bytes(self, run_id: str, artifact_file: str, payload: bytes) -> None:
        """Write one artifact file of the run from memory."""
        import tempfile

        target = _safe_relative(artifact_file)
        with tempfile.TemporaryDirectory(prefix="mlops-artifact-") as tmp:
            local = Path(tmp) / target
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(payload)
            self.upload_dir(run_id, Path(tmp))

    def download(self, run_id: str, artifact_path: str, dst_dir: Path) -> Path:
        """Download a file or folder of the run's artifacts into ``dst_dir``; return its local path."""
        source = _safe_relative(artifact_path)
        root = self._root(run_id)
        if root is None:
            return Path(self._client.download_artifacts(run_id, source, str(dst_dir)))
        for relative in self._list_files(root, source):
            local = dst_dir / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            response = self._request("GET", f"{root}/{relative}", stream=True)
            with local.open("wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
        return dst_dir / source

    def _list_files(self, root: str, path: str) -> list[str]:
        """Every file at or below ``path`` (relative to the run's artifact root)."""
        listing = self._request("GET", "", params={"path": f"{root}/{path}"}).json().get("files", [])
        if not listing:
            return [path]  # a single file lists as nothing; a missing one fails on GET
        files: list[str] = []
        for entry in listing:
            child = _safe_relative(posixpath.join(path, posixpath.basename(entry["path"])))
            files.extend(self._list_files(root, child) if entry.get("is_dir") else [child])
        return files
