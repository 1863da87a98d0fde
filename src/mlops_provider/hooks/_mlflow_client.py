"""Build an ``MlflowClient`` whose REST stores carry explicit credentials.

MLflow reads credentials only from environment variables or ``~/.mlflow/credentials``; we may do
neither. Its REST stores, however, take a ``get_host_creds`` callable, so we bind the tracking and
registry stores of one client to credentials from the Airflow connection. The two small subclasses
below override only the ``store`` property that MLflow itself uses to resolve stores (checked
against mlflow 3.17 by tests/integration/hooks/test_mlflow.py with a real server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient


def build_client(tracking_uri: str, registry_uri: str, credentials: dict[str, Any]) -> MlflowClient:
    """Return an ``MlflowClient`` for the URIs, authenticated with ``credentials`` if any.

    ``credentials`` are keyword arguments of ``mlflow.utils.rest_utils.MlflowHostCreds``
    (username/password, token, ignore_tls_verification).
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    if credentials:
        _bind_credentials(client, tracking_uri, registry_uri, credentials)
    return client


def probe(tracking_uri: str, credentials: dict[str, Any], timeout: float = 10.0) -> None:
    """Make one authenticated API call without MLflow's retries; raise if it fails."""
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request, verify_rest_response

    endpoint = "/api/2.0/mlflow/experiments/search"
    response = http_request(
        MlflowHostCreds(host=tracking_uri, **credentials),
        endpoint,
        "POST",
        max_retries=0,
        timeout=timeout,
        json={"max_results": 1},
    )
    verify_rest_response(response, endpoint)


def _bind_credentials(
    client: MlflowClient, tracking_uri: str, registry_uri: str, credentials: dict[str, Any]
) -> None:
    from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
    from mlflow.store.tracking.rest_store import RestStore as TrackingRestStore
    from mlflow.tracking._model_registry.client import ModelRegistryClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient
    from mlflow.utils.rest_utils import MlflowHostCreds

    def creds_for(uri: str):
        return lambda: MlflowHostCreds(host=uri, **credentials)

    class _Tracking(TrackingServiceClient):
        _bound_store = TrackingRestStore(creds_for(tracking_uri))

        @property
        def store(self):
            return self._bound_store

    class _Registry(ModelRegistryClient):
        _bound_store = RegistryRestStore(creds_for(registry_uri))

        @property
        def store(self):
            return self._bound_store

    client._tracking_client = _Tracking(tracking_uri)
    # MlflowClient creates its registry client lazily on first use; setting the slot first binds ours.
    client._registry_client_lazy = _Registry(registry_uri, tracking_uri)  # type: ignore[attr-defined]
