"""One small HTTP client for the stack (JSON, no proxy) and the Airflow REST client built on it.

:func:`http` is one request: (status, decoded JSON or text), status 0 when nothing answered.
:class:`AirflowClient` logs in with ``POST /auth/token``, caches the token, renews it once on 401 and
raises :class:`ApiError` on an unexpected status. The demo and the tests (``tests/support``) use it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from mlops_stack.errors import StackError

if TYPE_CHECKING:
    from collections.abc import Mapping

# Requests to the stack never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ApiError(StackError):
    """An Airflow REST call answered with an unexpected status (or not at all)."""


def http(
    method: str, url: str, body: object | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One request, ``body`` sent as JSON and ``token`` as a bearer token: (status, decoded JSON, else
    text); status 0 and None if nothing answered.
    """
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def quote(segment: str) -> str:
    """One URL path segment (run ids contain ``:`` and ``+``)."""
    return urllib.parse.quote(segment, safe="")


class AirflowClient:
    """Airflow's REST API at ``base_url`` as ``user`` (simple auth manager): JSON in, JSON out."""

    def __init__(self, base_url: str, user: str, password: str, *, timeout: float = 60) -> None:
        self.base_url = base_url
        self.user = user
        self.password = password
        self.timeout = timeout
        self._token: str | None = None

    def token(self, *, refresh: bool = False) -> str:
        """A JWT from ``POST /auth/token``, cached; ``refresh`` asks for a new one."""
        if self._token is None or refresh:
            status, body = http(
                "POST",
                f"{self.base_url}/auth/token",
                {"username": self.user, "password": self.password},
                timeout=self.timeout,
            )
            if status not in (200, 201) or not isinstance(body, dict):
                raise ApiError(
                    f"cannot log in to Airflow as {self.user}: POST /auth/token -> {status}: {body}"
                )
            self._token = body["access_token"]
        return self._token

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """An authenticated call: (status, decoded body); the token is renewed once on 401."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        wait = self.timeout if timeout is None else timeout
        status, answer = http(method, url, body, self.token(), wait)
        if status == 401:
            status, answer = http(method, url, body, self.token(refresh=True), wait)
        return status, answer

    def api(
        self,
        method: str,
        path: str,
        body: object | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        expect: tuple[int, ...] | None = None,
    ) -> Any:
        """An authenticated call that must answer one of ``expect`` (default: any 2xx); returns the body.

        Raises :class:`ApiError` naming the call, the status and the answer otherwise.
        """
        status, answer = self.request(method, path, body, params=params)
        if not (status in expect if expect else 200 <= status < 300):
            shown = f" {dict(params)}" if params else ""
            raise ApiError(f"Airflow {method} {path}{shown} -> {status or 'no answer'}: {answer}")
        return answer

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG (``PATCH /api/v2/dags/{dag_id}``)."""
        dag = self.api("PATCH", f"/api/v2/dags/{quote(dag_id)}", {"is_paused": paused})
        if dag.get("is_paused") is not paused:
            raise ApiError(f"{dag_id}: is_paused is {dag.get('is_paused')}, not {paused}")

    def open_backfills(self, dag_id: str) -> list[int]:
        """Ids of the DAG's backfills that have not completed."""
        body = self.api("GET", "/api/v2/backfills", params={"dag_id": dag_id, "limit": 100})
        return [b["id"] for b in body["backfills"] if not b["completed_at"]]

    def cancel_backfills(self, ids: list[int]) -> None:
        """Cancel backfills; 404/409 (already gone or completed: the API can answer from a stale SQLite
        snapshot) are fine.
        """
        for backfill_id in ids:
            self.api("PUT", f"/api/v2/backfills/{backfill_id}/cancel", expect=(200, 404, 409))
