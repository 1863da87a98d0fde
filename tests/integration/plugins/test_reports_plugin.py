"""The reports plugin in a real ``airflow api-server``: authentication, strict addresses, safe headers.

The server runs in its own process group on a loopback port with the simple auth manager; its users,
passwords and JWT secret exist only in its environment. Reports are written with ``DatasetStorageHook``
into the server's ``[mlops] data_root``.

The server loads the plugin through the ``airflow.plugins`` entry point when the installed distribution
declares it; otherwise through a one-line module in a temporary plugins folder.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from importlib.metadata import entry_points

import pytest

from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.links.reports import report_url
from tests.conftest import VENV_BIN
from tests.support.services import free_port, start_service, wait_until_healthy

pytestmark = pytest.mark.integration

PLUGIN_CLASS = "mlops_provider.plugins.reports:MLOpsPlugin"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
DS = "2024-01-05"
REPORT_HTML = (
    b"<!doctype html><html><head><style>td{color:red}</style></head>"
    b"<body><h1>churn validation</h1><script>alert(1)</script></body></html>"
)
RESULT_JSON = json.dumps({"success": False, "failed": ["expect_column_values_to_not_be_null"]}).encode()
SECRET = b"not a report"


@dataclass
class Server:
    base: str
    data_root: str
    tokens: dict[str, str]
    plugin_source: str


def _plugin_entry_point_installed() -> bool:
    return any(ep.value == PLUGIN_CLASS for ep in entry_points(group="airflow.plugins"))


def _request(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
):
    """Return (status, headers, body) without following Airflow's error handling into exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def server(airflow_db, airflow_env, test_home, tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("reports-plugin")
    data_root = f"file://{root / 'data'}"
    storage = DatasetStorageHook(root_uri=data_root)
    storage.write_report("churn", "validation", DS, {"report.html": REPORT_HTML, "result.json": RESULT_JSON})
    # Files next to a report that the plugin must never hand out.
    (root / "data" / "churn" / "reports" / "validation" / f"ds={DS}" / "secret.txt").write_bytes(SECRET)
    (root / "data" / "churn" / "secret.txt").write_bytes(SECRET)

    plugins_folder = root / "plugins"
    plugins_folder.mkdir()
    if _plugin_entry_point_installed():
        plugin_source = "entry point airflow.plugins"
    else:
        plugin_source = "plugins folder"
        (plugins_folder / "mlops_reports.py").write_text(
            "from mlops_provider.plugins.reports import MLOpsPlugin  # noqa: F401\n"
        )

    users = {"admin": "admin", "viewer": "viewer", "nobody": ""}
    passwords = {name: secrets.token_urlsafe(12) for name in users}
    passwords_file = root / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    passwords_file.chmod(0o600)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        airflow_env,
        AIRFLOW__CORE__AUTH_MANAGER=(
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{u}:{r}" for u, r in users.items()),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords_file),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=base,
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder),
        AIRFLOW__MLOPS__DATA_ROOT=data_root,
    )
    service = start_service(
        "api-server-reports",
        [str(VENV_BIN / "airflow"), "api-server"],
        env=env,
        log_dir=test_home / "logs",
        cwd=root,
    )
    try:
        wait_until_healthy(service, f"{base}/api/v2/monitor/health", deadline_s=120)
        tokens = {}
        for name, password in passwords.items():
            status, _, body = _request(
                f"{base}/auth/token",
                method="POST",
                headers={"Content-Type": "application/json"},
                body=json.dumps({"username": name, "password": password}).encode(),
            )
            assert status == 201, body
            tokens[name] = json.loads(body)["access_token"]
        yield Server(base=base, data_root=data_root, tokens=tokens, plugin_source=plugin_source)
    finally:
        service.stop()


def _report(server: Server, *parts: str) -> str:
    return f"{server.base}/mlops/reports/{'/'.join(parts)}"


def test_plugin_is_registered(server):
    status, _, body = _request(f"{server.base}/api/v2/plugins", headers=_bearer(server.tokens["admin"]))
    assert status == 200, body
    (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "mlops"]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/mlops"]
    if server.plugin_source == "plugins folder":
        assert plugin["source"] == "$PLUGINS_FOLDER/mlops_reports.py"
    else:
        assert PLUGIN_CLASS in plugin["source"]


@pytest.mark.parametrize(
    ("name", "payload", "content_type"),
    [
        ("report.html", REPORT_HTML, "text/html; charset=utf-8"),
        ("result.json", RESULT_JSON, "application/json"),
    ],
)
def test_report_files_with_bearer_token(server, name, payload, content_type):
    url = _report(server, "churn", "validation", DS, name)
    status, headers, body = _request(url, headers=_bearer(server.tokens["admin"]))
    assert status == 200, body
    assert body == payload
    assert headers["Content-Type"] == content_type
    assert headers["Content-Security-Policy"].startswith(CSP)
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_ui_session_cookie_is_accepted(server):
    """An extra link opens as a browser navigation: the UI's ``_token`` cookie is the only credential."""
    url = _report(server, "churn", "validation", DS, "report.html")
    status, _, body = _request(url, headers={"Cookie": f"_token={server.tokens['viewer']}"})
    assert status == 200, body
    assert body == REPORT_HTML


def test_viewer_role_may_read_reports(server):
    url = _report(server, "churn", "validation", DS, "result.json")
    status, _, body = _request(url, headers=_bearer(server.tokens["viewer"]))
    assert (status, body) == (200, RESULT_JSON)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, id="garbage-bearer"),
        pytest.param({"Cookie": "_token=not-a-jwt"}, id="garbage-cookie"),
        pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4="}, id="basic-auth"),
    ],
)
@pytest.mark.parametrize("name", ["report.html", "secret.txt"])
def test_unauthenticated_requests_are_refused(server, headers, name):
    status, _, body = _request(_report(server, "churn", "validation", DS, name), headers=headers)
    assert status in (401, 403), body
    assert REPORT_HTML not in body
    assert SECRET not in body


def test_user_without_dag_read_access_is_forbidden(server):
    url = _report(server, "churn", "validation", DS, "report.html")
    status, _, body = _request(url, headers=_bearer(server.tokens["nobody"]))
    assert status == 403, body
    assert REPORT_HTML not in body


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../x/validation/2024-01-05/report.html", id="dotdot-dataset"),
        pytest.param("..%2Fx/validation/2024-01-05/report.html", id="encoded-dotdot-dataset"),
        pytest.param("..%2Fchurn/validation/2024-01-05/report.html", id="encoded-dotdot-churn"),
        pytest.param("%2E%2E/validation/2024-01-05/report.html", id="encoded-dots"),
        pytest.param("Churn/validation/2024-01-05/report.html", id="upper-case-dataset"),
        pytest.param("churn.x/validation/2024-01-05/report.html", id="dotted-dataset"),
        pytest.param("churn%0A/validation/2024-01-05/report.html", id="newline-dataset"),
        pytest.param("churn/metrics/2024-01-05/report.html", id="unknown-kind"),
        pytest.param("churn/..%2F..%2Fraw/2024-01-05/report.html", id="encoded-dotdot-kind"),
        pytest.param("churn/validation/2024-02-30/report.html", id="impossible-date"),
        pytest.param("churn/validation/20240105/report.html", id="basic-iso-date"),
        pytest.param("churn/validation/2024-1-5/report.html", id="short-date"),
        pytest.param("churn/validation/2024-01-05%0A/report.html", id="newline-date"),
        pytest.param("churn/validation/ds=2024-01-05/report.html", id="partition-folder-name"),
        pytest.param("churn/validation/2024-01-05/secret.txt", id="other-file"),
        pytest.param("churn/validation/2024-01-05/..%2F..%2F..%2Fsecret.txt", id="encoded-dotdot-name"),
        pytest.param("churn/validation/2024-01-05/report.html%00", id="nul-suffix"),
        pytest.param("churn/validation/2024-01-05", id="folder"),
        pytest.param("churn/validation/2024-01-05/", id="folder-slash"),
    ],
)
def test_invalid_addresses_are_not_found(server, path):
    status, _, body = _request(f"{server.base}/mlops/reports/{path}", headers=_bearer(server.tokens["admin"]))
    assert status in (404, 422), body
    assert SECRET not in body
    assert REPORT_HTML not in body
    assert server.data_root.removeprefix("file://").encode() not in body


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(("churn", "validation", "2024-01-06", "report.html"), id="other-date"),
        pytest.param(("churn", "drift", DS, "report.html"), id="other-kind"),
        pytest.param(("telco", "validation", DS, "result.json"), id="other-dataset"),
    ],
)
def test_missing_report_is_not_found(server, parts):
    status, _, body = _request(_report(server, *parts), headers=_bearer(server.tokens["admin"]))
    assert status == 404, body
    detail = json.loads(body)["detail"]
    assert detail == f"Report not found: {'/'.join(parts)}"
    assert server.data_root.removeprefix("file://") not in detail


def test_report_url_opens_the_report(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"{server.base}/")
    url = report_url("churn", "validation", date(2024, 1, 5))
    assert url == f"{server.base}/mlops/reports/churn/validation/{DS}/report.html"
    status, _, body = _request(url, headers=_bearer(server.tokens["viewer"]))
    assert (status, body) == (200, REPORT_HTML)
    assert report_url("churn", "validation", DS, "result.json").endswith(f"/{DS}/result.json")

    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    assert report_url("churn", "drift", DS) == f"/mlops/reports/churn/drift/{DS}/report.html"
    with pytest.raises(ValueError, match="dataset"):
        report_url("../x", "validation", DS)
    with pytest.raises(ValueError, match="kind"):
        report_url("churn", "metrics", DS)
