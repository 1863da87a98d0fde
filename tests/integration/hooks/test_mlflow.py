"""MLflowHook against a real MLflow tracking server (SQLite backend) started by a fixture."""

from __future__ import annotations

import os

import pytest

from mlops_provider.hooks.mlflow import MLflowHook
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def test_client_talks_to_the_tracking_server_and_registry(mlflow_server, airflow_connection):
    conn_id = airflow_connection("mlflow_test", conn_type="mlflow", host=mlflow_server)
    hook = MLflowHook(mlflow_conn_id=conn_id)
    client = hook.get_conn()

    assert client is hook.get_conn()
    assert hook.tracking_uri == mlflow_server == hook.registry_uri
    experiment_id = client.create_experiment(f"hook-test-{free_port()}")
    run = client.create_run(experiment_id, tags={"airflow.dag_id": "test"})
    client.log_metric(run.info.run_id, "auc", 0.75)
    assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.75}
    model = client.create_registered_model(f"model-{free_port()}")
    assert client.get_registered_model(model.name).name == model.name


def test_host_and_port_fields_form_the_uri(mlflow_server, airflow_connection):
    host, port = mlflow_server.removeprefix("http://").split(":")
    conn_id = airflow_connection("mlflow_parts", conn_type="mlflow", host=host, port=int(port))
    assert MLflowHook(mlflow_conn_id=conn_id).test_connection() == (
        True,
        f"Connected to MLflow at {mlflow_server}",
    )


def test_test_connection_reports_an_unreachable_server(airflow_connection):
    conn_id = airflow_connection("mlflow_down", conn_type="mlflow", host=f"http://127.0.0.1:{free_port()}")
    ok, message = MLflowHook(mlflow_conn_id=conn_id).test_connection()
    assert ok is False
    assert "did not answer" in message


def test_airflow_connection_test_resolves_our_hook_by_connection_type(mlflow_server):
    """The path the UI's "Test" button takes: Connection.test_connection() -> hook by conn_type."""
    from airflow.sdk import Connection

    conn = Connection(conn_id="mlflow_ui_test", conn_type="mlflow", host=mlflow_server)
    assert conn.test_connection() == (True, f"Connected to MLflow at {mlflow_server}")


def test_token_is_sent_without_touching_the_environment(mlflow_server, airflow_connection):
    conn_id = airflow_connection(
        "mlflow_token", conn_type="mlflow", host=mlflow_server, password="s3cr3t-token"
    )
    environ_before = dict(os.environ)
    hook = MLflowHook(mlflow_conn_id=conn_id)
    tracking_creds = hook.client._tracking_client.store.get_host_creds()
    registry_creds = hook.client._get_registry_client().store.get_host_creds()

    assert tracking_creds.token == registry_creds.token == "s3cr3t-token"
    assert hook.test_connection()[0] is True  # the open server ignores the header
    assert dict(os.environ) == environ_before


def test_basic_auth_credentials_from_the_connection_are_used(mlflow_auth_server, airflow_connection):
    uri, user, password = mlflow_auth_server
    conn_id = airflow_connection("mlflow_auth", conn_type="mlflow", host=uri, login=user, password=password)
    hook = MLflowHook(mlflow_conn_id=conn_id)

    assert hook.test_connection() == (True, f"Connected to MLflow at {uri}")
    client = hook.get_conn()
    experiment_id = client.create_experiment(f"auth-test-{free_port()}")
    assert client.get_experiment(experiment_id).name.startswith("auth-test-")
    model = client.create_registered_model(f"auth-model-{free_port()}")
    assert client.get_registered_model(model.name).name == model.name


@pytest.mark.parametrize("fields", [{"login": "admin", "password": "wrong"}, {}], ids=["wrong", "none"])
def test_basic_auth_server_refuses_bad_or_missing_credentials(mlflow_auth_server, airflow_connection, fields):
    uri, _, _ = mlflow_auth_server
    conn_id = airflow_connection("mlflow_bad", conn_type="mlflow", host=uri, **fields)
    ok, message = MLflowHook(mlflow_conn_id=conn_id).test_connection()
    assert ok is False
    assert "401" in message or "Unauthorized" in message or "credentials" in message.lower()


def test_links_use_the_ui_url_while_api_calls_reach_the_tracking_server(mlflow_server, airflow_connection):
    """A public UI address (here the same server under another name) is what the links open."""
    import urllib.request

    ui_url = mlflow_server.replace("127.0.0.1", "localhost")
    conn_id = airflow_connection(
        "mlflow_ui", conn_type="mlflow", host=mlflow_server, extra={"ui_url": ui_url}
    )
    hook = MLflowHook(mlflow_conn_id=conn_id)

    experiment_id, run_id = hook.open_run(
        f"ui-url-{free_port()}", tags={"k": "v"}, match=("k",), run_name="ui-url"
    )
    assert hook.client.get_run(run_id).info.experiment_id == experiment_id  # API calls: tracking URI
    url = hook.run_url(experiment_id, run_id)
    assert url == f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(url, timeout=30) as page:  # the fragment stays in the browser
        assert page.status == 200
        assert "text/html" in page.headers["Content-Type"]
