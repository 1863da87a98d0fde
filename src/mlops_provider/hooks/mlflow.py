"""MLflowHook: an Airflow ``mlflow`` connection turned into a configured ``MlflowClient``.

The client is built from the connection alone, with the tracking and registry URIs and the
credentials passed explicitly: nothing is read from or written to ``os.environ``. Artifacts move
with the same credentials, and models are loaded only from this connection's registry.
mlflow is imported only when a client is built (it costs ~2 s).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from airflow.sdk import BaseHook

from mlops_provider.core.registry_names import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, MODEL_ARTIFACT_PATH
from mlops_provider.exceptions import InvalidConfigurationError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops_provider.hooks._mlflow_artifacts import ArtifactTransport
    from mlops_provider.hooks._mlflow_registry import ModelRegistry
    from mlops_provider.hooks._mlflow_tracking import RunRecord

_METRICS_PER_BATCH = 900  # MLflow accepts at most 1,000 metrics per log_batch call

_ALLOWED_SCHEMES = ("http", "https")


def tracking_uri_from_connection(host: str | None, port: int | None, schema: str | None = None) -> str:
    """Return the tracking URI that an ``mlflow`` connection's fields describe.

    ``host`` is either a full URI (``http://127.0.0.1:5000``) or a bare host name, to which ``port``
    and the scheme (``schema`` field, ``http`` by default) are added. Only http(s) servers are
    accepted: a task must talk to a tracking server, never to a local file store by accident.
    """
    if not host:
        raise InvalidConfigurationError("The mlflow connection has no Host: set it to the tracking URI.")
    host = host.strip().rstrip("/")
    if "://" in host:
        scheme = host.split("://", 1)[0].lower()
        uri = host
        if port and host.count(":") == 1:
            uri = f"{host}:{port}"
    else:
        scheme = (schema or "http").lower()
        uri = f"{scheme}://{host}" + (f":{port}" if port else "")
    if scheme not in _ALLOWED_SCHEMES:
        raise InvalidConfigurationError(
            f"The mlflow connection's tracking URI must use http or https, not {scheme!r}."
        )
    return uri


def ui_url_from_extra(value: object) -> str:
    """Return the public MLflow UI address that an ``mlflow`` connection's extra ``ui_url`` holds.

    It must be an absolute http(s) URL with a host and no credentials, query or fragment (the UI's
    pages are appended as ``/#/experiments/...``); a trailing slash is dropped. The error never
    repeats the value, which may hold a password.
    """
    url = value.strip().rstrip("/") if isinstance(value, str) else ""
    problem = None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        problem = "is not a valid URL"
    else:
        if parts.scheme.lower() not in _ALLOWED_SCHEMES or not parts.hostname:
            problem = "must be an http(s) URL with a host, such as https://mlflow.example.com"
        elif "@" in parts.netloc:
            problem = "must not carry credentials (user:password@)"
        elif parts.query or parts.fragment or any(char.isspace() for char in url):
            problem = "must have no query, fragment or spaces"
    if problem:
        raise InvalidConfigurationError(f"The mlflow connection's extra ui_url {problem}.")
    return url


def _without_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part: what a link may show of a tracking URI."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class MLflowHook(BaseHook):
    """Interact with an MLflow tracking server and model registry.

    :param mlflow_conn_id: id of a connection of type ``mlflow``. Host holds the tracking URI;
        Login and Password give basic auth, Password alone is sent as a bearer token; the extra
        ``registry_uri`` names a separate registry, ``insecure_tls`` skips TLS verification and
        ``ui_url`` is the MLflow UI address a person's browser reaches (:attr:`ui_url`).

    Tracking calls (experiments, runs, metrics, artifacts) are the hook's own methods; registry
    calls (versions, aliases, gate records, promotions, rollbacks, audit) go through :attr:`registry`.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def _connection(self):
        return self.get_connection(self.mlflow_conn_id)

    @cached_property
    def tracking_uri(self) -> str:
        conn = self._connection
        return tracking_uri_from_connection(conn.host, conn.port, conn.schema)

    @cached_property
    def registry_uri(self) -> str:
        return self._connection.extra_dejson.get("registry_uri") or self.tracking_uri

    @cached_property
    def ui_url(self) -> str:
        """The MLflow UI address for people (links, logs): the extra ``ui_url`` when set, else the
        tracking URI without credentials. API calls always go to the tracking URI."""
        value = self._connection.extra_dejson.get("ui_url")
        if value is None or (isinstance(value, str) and not value.strip()):
            return _without_credentials(self.tracking_uri)
        return ui_url_from_extra(value)

    def _credentials(self) -> dict[str, Any]:
        """Return the ``MlflowHostCreds`` keyword arguments the connection defines (maybe none)."""
        conn = self._connection
        creds: dict[str, Any] = {}
        if conn.login:
            creds.update(username=conn.login, password=conn.password)
        elif conn.password:
            creds["token"] = conn.password
        if str(conn.extra_dejson.get("insecure_tls", "")).lower() in ("true", "1"):
            creds["ignore_tls_verification"] = True
        return creds

    @cached_property
    def client(self) -> MlflowClient:
        """The ``MlflowClient`` for this connection, built once per hook."""
        from mlops_provider.hooks._mlflow_client import build_client

        self.ui_url  # noqa: B018 - a bad ui_url fails the task before its first call, not halfway
        return build_client(self.tracking_uri, self.registry_uri, self._credentials())

    def get_conn(self) -> MlflowClient:
        """Return the configured ``MlflowClient``."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Check, in one call without retries, that the server answers and accepts the credentials."""
        from mlops_provider.hooks._mlflow_client import probe

        try:
            self.ui_url  # noqa: B018 - the form's Test button reports a bad ui_url too
        except InvalidConfigurationError as err:
            return False, str(err)
        try:
            probe(self.tracking_uri, self._credentials())
        except Exception as err:
            return False, f"MLflow at {self.tracking_uri} did not answer: {err}"
        return True, f"Connected to MLflow at {self.tracking_uri}"

    # -- artifacts ---------------------------------------------------------------------------------

    @cached_property
    def _artifacts(self) -> ArtifactTransport:
        from mlops_provider.hooks._mlflow_artifacts import ArtifactTransport

        return ArtifactTransport(self.client, self.tracking_uri, self._credentials())

    def upload_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Upload the files below ``local_dir`` to ``artifact_path`` of the run."""
        self._artifacts.upload_dir(run_id, Path(local_dir), artifact_path)

    def upload_artifact_bytes(self, run_id: str, artifact_file: str, payload: bytes) -> None:
        """Write one artifact file (``reports/card.md``) of the run from memory."""
        self._artifacts.upload_bytes(run_id, artifact_file, payload)

    def download_artifacts(self, run_id: str, artifact_path: str, dst_dir: str | Path) -> Path:
        """Download a file or folder of the run's artifacts into ``dst_dir``; return its local path."""
        return self._artifacts.download(run_id, artifact_path, Path(dst_dir))

    # -- runs --------------------------------------------------------------------------------------

    def find_or_create_run(
        self, experiment_id: str, *, tags: dict[str, str], match: tuple[str, ...], run_name: str
    ) -> str:
        """The id of the run whose ``match`` tags have the values in ``tags``; created with ``tags`` if none.

        Lets a re-run task find the run an earlier try opened instead of opening another. The
        search is repeated after a create: a create the client re-sent (lost response) leaves two
        runs, the younger is ended KILLED, tagged ``mlops.duplicate_of`` and deleted.
        """
        from mlops_provider.hooks._mlflow_registry import archive_duplicate_runs, matching_runs

        key = {name: tags[name] for name in match}
        found = matching_runs(self.client, experiment_id, key)
        if not found:
            self.client.create_run(experiment_id, tags=tags, run_name=run_name)
            found = matching_runs(self.client, experiment_id, key)
        return archive_duplicate_runs(self.client, found)

    def find_runs(self, experiment_name: str, tags: dict[str, str]) -> list[str]:
        """The ids of the active runs of ``experiment_name`` carrying all ``tags`` (none if no experiment)."""
        from mlops_provider.hooks._mlflow_registry import matching_runs

        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            return []
        return [run.info.run_id for run in matching_runs(self.client, experiment.experiment_id, tags)]

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on the run (values as strings), one call per tag."""
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        self.client.set_terminated(run_id, status)

    def reopen_run(self, run_id: str) -> None:
        """Mark an ended run RUNNING again (a retried task continues the run of its earlier try)."""
        self.client.update_run(run_id, status="RUNNING")

    def open_run(
        self, experiment_name: str, *, tags: dict[str, str], match: tuple[str, ...], run_name: str
    ) -> tuple[str, str]:
        """``(experiment_id, run_id)``: :meth:`find_or_create_run` in the experiment ``experiment_name``,
        which is created if needed (:meth:`get_or_create_experiment`)."""
        experiment_id = self.get_or_create_experiment(experiment_name)
        run_id = self.find_or_create_run(experiment_id, tags=tags, match=match, run_name=run_name)
        return experiment_id, run_id

    def get_run_record(self, run_id: str) -> RunRecord:
        """The run's latest metric values, its tags and its start time."""
        from mlops_provider.hooks._mlflow_tracking import read_run

        return read_run(self.client, run_id)

    def log_partition_inputs(
        self, run_id: str, dataset: str, partitions: list[dict[str, Any]], *, context: str = "training"
    ) -> None:
        """Record ``partitions`` (``{"ds", "uri", "sha256", "rows"}`` each) of ``dataset`` as dataset
        inputs of the run, tagged with their role ``context``."""
        from mlops_provider.hooks._mlflow_tracking import partition_inputs

        self.client.log_inputs(run_id, datasets=partition_inputs(dataset, partitions, context))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log ``params`` (values as strings, clipped to MLflow's length limit) in one call."""
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(str(k), str(v)[:6000]) for k, v in params.items()])

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        *,
        prefix: str = "",
        step: int = 0,
        timestamp_ms: int | None = None,
    ) -> None:
        """Log the finite values of ``metrics`` as ``<prefix><name>`` in batches (NaN and inf skipped)."""
        import math
        import time

        from mlflow.entities import Metric

        stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        entries = [
            Metric(f"{prefix}{name}", float(value), stamp, step)
            for name, value in metrics.items()
            if value is not None and math.isfinite(value)
        ]
        for start in range(0, len(entries), _METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=entries[start : start + _METRICS_PER_BATCH])

    # -- registry ----------------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> str:
        """Return the id of the experiment ``name``, creating it if needed."""
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
            except MlflowException as err:  # created concurrently by another task
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:  # deleted again meanwhile: the create's error stands
                    raise
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the tag, or by someone else
            self.client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry of this connection: versions, aliases, gate records, audit."""
        from mlops_provider.hooks._mlflow_registry import ModelRegistry

        return ModelRegistry(self.client)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version of registered model ``name`` that ``alias`` points to, or None."""
        return self.registry.version_by_alias(name, alias)

    def load_sklearn_model(self, name: str, *, version: str | None = None, alias: str | None = None):
        """Load a registered scikit-learn model from this connection's registry (by version or alias)."""
        if (version is None) == (alias is None):
            raise ValueError("Give exactly one of version or alias")
        model_version = (
            self.get_version_by_alias(name, alias)
            if alias is not None
            else self.client.get_model_version(name, str(version))
        )
        if model_version is None:
            raise LookupError(f"Registered model {name!r} has no alias {alias!r}")
        if not model_version.run_id:
            raise LookupError(f"Version {model_version.version} of {name!r} names no run to load from")
        return self.load_run_sklearn_model(model_version.run_id)

    def load_run_sklearn_model(self, run_id: str):
        """Load the scikit-learn model logged by a run of this tracking server.

        The run's ``model`` artifacts are downloaded with the connection's credentials into a
        temporary folder and deserialised from there (skops: only the types the model declares).
        """
        import tempfile

        import mlflow.sklearn

        from mlops_provider.core.model_io import quiet_skops

        with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp, quiet_skops():
            return mlflow.sklearn.load_model(str(self.download_artifacts(run_id, MODEL_ARTIFACT_PATH, tmp)))

    # -- links -------------------------------------------------------------------------------------

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The MLflow UI page of a run, under :attr:`ui_url`."""
        return f"{self.ui_url}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}"

    def model_version_url(self, name: str, version: str) -> str:
        """The MLflow UI page of a registered model version, under :attr:`ui_url`."""
        return f"{self.ui_url}/#/models/{quote(name)}/versions/{quote(str(version))}"
