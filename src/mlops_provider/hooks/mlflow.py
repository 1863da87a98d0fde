"""MLflowHook: an Airflow ``mlflow`` connection turned into a configured ``MlflowClient``.

The client is built from the connection alone, with the tracking and registry URIs and the
credentials passed explicitly: nothing is read from or written to ``os.environ``.
mlflow is imported only when a client is built (it costs ~2 s).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_provider.exceptions import InvalidConfigurationError

if TYPE_CHECKING:
    from mlflow import MlflowClient

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


class MLflowHook(BaseHook):
    """Interact with an MLflow tracking server and model registry.

    :param mlflow_conn_id: id of a connection of type ``mlflow``. Host holds the tracking URI;
        Login and Password give basic auth, Password alone is sent as a bearer token; the extra
        ``registry_uri`` names a separate registry and ``insecure_tls`` skips TLS verification.
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

        return build_client(self.tracking_uri, self.registry_uri, self._credentials())

    def get_conn(self) -> MlflowClient:
        """Return the configured ``MlflowClient``."""
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        """Check, in one call without retries, that the server answers and accepts the credentials."""
        from mlops_provider.hooks._mlflow_client import probe

        try:
            probe(self.tracking_uri, self._credentials())
        except Exception as err:
            return False, f"MLflow at {self.tracking_uri} did not answer: {err}"
        return True, f"Connected to MLflow at {self.tracking_uri}"
