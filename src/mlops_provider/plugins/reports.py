"""Serve stored reports (validation, drift) to the browser through the Airflow API server.

A report lives under the data root (``file://`` or ``s3://``, see ``DatasetStorageHook.report_path``),
which a browser cannot open. ``MLOpsPlugin`` mounts a small FastAPI app at ``/mlops`` in the API server::

    GET /mlops/reports/{dataset}/{kind}/{ds}/{name}

``kind`` is ``validation`` or ``drift``, ``ds`` a calendar date ``YYYY-MM-DD``, ``name`` ``report.html``
(served as ``text/html``) or ``result.json`` (``application/json``). Every parameter is checked before a
path is built from it (``links.reports.validate_report_address``); anything else, and a report that
does not exist, is a 404. The address is owned by ``mlops_provider.links.reports`` (``report_url()``, the
operators' extra links); this module only serves it, and nothing in the provider imports it.

Authentication and authorization. Airflow does not authenticate plugin apps: it attaches them with
``app.mount()``, and a mounted app inherits none of the core API's router dependencies. So every route
here depends on ``airflow.api_fastapi.core_api.security.get_user``, the dependency the core API itself
uses. It accepts the JWT either as ``Authorization: Bearer <token>`` (a token from ``POST /auth/token``)
or as the ``_token`` cookie the Airflow UI holds after login; the cookie is what a browser sends when the
user clicks an extra link, since links open as plain navigations with no header. No or an expired token
gives 401, an invalid one 403. The user must then be allowed to read DAGs in general
(``is_authorized_dag(method="GET")`` without a DAG id: the Viewer role with the simple auth manager, the
global "DAGs" read permission with FAB), because a report is not tied to a single DAG the caller could
name. ``requires_access_dag`` is not used on purpose: it takes a ``dag_id`` from the query string, which
would let a user allowed to read one DAG read every report. Anything else gives 403.

Reports are HTML written from data, so they are served with a Content-Security-Policy that allows no
script, no external resource and no form (inline styles and ``data:`` images only) and with
``X-Content-Type-Options: nosniff``: a value that slipped into a report unescaped cannot run in the
Airflow origin.

Every Airflow component (scheduler, workers, DAG processor) imports this module at start-up, but only
the API server serves the app: FastAPI and Airflow's API security module (~4 s of imports) are imported
when the first request arrives, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # Airflow versions whose task SDK does not export the plugin base class
    from airflow.plugins_manager import AirflowPlugin  # type: ignore[assignment]  # same class, other module

from mlops_provider.links.reports import REPORT_MEDIA_TYPES, URL_PREFIX, validate_report_address

if TYPE_CHECKING:
    from fastapi import FastAPI

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A report is replaced when its date is re-run, and it is private to authenticated users.
    "Cache-Control": "private, no-cache",
}


def create_app() -> FastAPI:
    """Build the FastAPI app that serves the reports (see the module docstring)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException, Response, status

    from mlops_provider.hooks.storage import DatasetStorageHook

    # FastAPI resolves string annotations (``from __future__ import annotations``) in the module's
    # globals, where these lazily imported names do not exist: dependencies are given as defaults.
    authenticated_user = Depends(get_user)

    def require_dag_read(user=authenticated_user) -> None:
        if not get_auth_manager().is_authorized_dag(method="GET", user=user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: reading reports needs DAG read access")

    app = FastAPI(
        title="MLOps reports",
        description="Validation and drift reports stored by airflow-provider-mlops.",
        dependencies=[Depends(require_dag_read)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    # A plain ``def``: FastAPI runs it in its thread pool, so a slow S3 read never blocks the event loop.
    @app.get("/reports/{dataset}/{kind}/{ds}/{name}", response_class=Response)
    def get_report(dataset: str, kind: str, ds: str, name: str):
        try:
            dataset, kind, ds, name = validate_report_address(dataset, kind, ds, name)
        except ValueError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
        path = DatasetStorageHook().report_path(dataset, kind, ds) / name
        try:
            payload = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"Report not found: {dataset}/{kind}/{ds}/{name}"
            ) from None
        return Response(content=payload, media_type=REPORT_MEDIA_TYPES[name], headers=SECURITY_HEADERS)

    return app


class _LazyApp:
    """An ASGI app that builds ``create_app()`` on its first request (see the module docstring)."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


class MLOpsPlugin(AirflowPlugin):
    """Serves the provider's stored reports in the API server under ``/mlops``."""

    name = "mlops"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "MLOps reports"}]
