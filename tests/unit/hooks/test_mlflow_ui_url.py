"""MLflowHook.ui_url: the public MLflow UI address every link and logged URL is built on."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.hooks.mlflow import MLflowHook, ui_url_from_extra

pytestmark = pytest.mark.unit

TRACKING = "http://mlflow:5000"


@pytest.fixture
def hook_for(monkeypatch):
    """``hook_for(host=..., **extra)``: an MLflowHook on an in-memory ``mlflow`` connection (env secret)."""

    def make(host: str = TRACKING, **extra: object) -> MLflowHook:
        conn = Connection(
            conn_id="mlflow_ui", conn_type="mlflow", host=host, extra=json.dumps(extra) if extra else None
        )
        monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_UI", conn.as_json())
        return MLflowHook(mlflow_conn_id="mlflow_ui")

    return make


def test_without_ui_url_links_point_at_the_tracking_uri(hook_for):
    hook = hook_for()
    assert hook.ui_url == TRACKING
    assert hook.run_url("3", "abc") == "http://mlflow:5000/#/experiments/3/runs/abc"
    assert hook.model_version_url("churn", "2") == "http://mlflow:5000/#/models/churn/versions/2"


@pytest.mark.parametrize("empty", ["", "   ", None])
def test_an_empty_ui_url_means_the_tracking_uri(hook_for, empty):
    assert hook_for(ui_url=empty).ui_url == TRACKING


def test_ui_url_is_used_for_links_and_the_tracking_uri_for_api_calls(hook_for):
    hook = hook_for(ui_url="https://mlflow.example.com/team-a/")

    assert hook.ui_url == "https://mlflow.example.com/team-a"
    assert hook.tracking_uri == TRACKING == hook.registry_uri
    assert hook.run_url("7", "run 1") == "https://mlflow.example.com/team-a/#/experiments/7/runs/run%201"
    assert (
        hook.model_version_url("churn model", "3")
        == "https://mlflow.example.com/team-a/#/models/churn%20model/versions/3"
    )


def test_the_default_drops_credentials_of_the_tracking_uri(hook_for):
    hook = hook_for(host="https://bot:s3cret@mlflow.internal:8443")
    assert hook.tracking_uri == "https://bot:s3cret@mlflow.internal:8443"  # API calls keep them
    assert hook.ui_url == "https://mlflow.internal:8443"
    assert "s3cret" not in hook.run_url("1", "r")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://localhost:5000", "http://localhost:5000"),
        (" https://mlflow.example.com/ ", "https://mlflow.example.com"),
        ("HTTPS://mlflow.example.com/ui", "HTTPS://mlflow.example.com/ui"),
        ("http://[::1]:5000/", "http://[::1]:5000"),
    ],
)
def test_valid_ui_urls_are_kept_without_the_trailing_slash(value, expected):
    assert ui_url_from_extra(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("mlflow.example.com", "http\\(s\\) URL with a host"),
        ("ftp://mlflow.example.com", "http\\(s\\) URL with a host"),
        ("file:///srv/mlruns", "http\\(s\\) URL with a host"),
        ("http://", "http\\(s\\) URL with a host"),
        ("https://user:hunter22@mlflow.example.com", "credentials"),
        ("https://token@mlflow.example.com", "credentials"),
        ("https://mlflow.example.com/?o=1", "no query, fragment or spaces"),
        ("https://mlflow.example.com/#/experiments", "no query, fragment or spaces"),
        ("https://mlflow example.com", "no query, fragment or spaces"),
        ("http://mlflow:50x0", "not a valid URL"),
        ("http://[::1", "not a valid URL"),
        (5000, "http\\(s\\) URL with a host"),
    ],
)
def test_invalid_ui_urls_are_refused_without_echoing_them(value, problem):
    with pytest.raises(InvalidConfigurationError, match=f"extra ui_url .*{problem}") as raised:
        ui_url_from_extra(value)
    assert "hunter22" not in str(raised.value)


def test_a_bad_ui_url_fails_the_hook_before_any_mlflow_call(hook_for):
    hook = hook_for(ui_url="https://user:hunter22@mlflow.example.com")

    with pytest.raises(InvalidConfigurationError, match="credentials"):
        hook.get_conn()
    assert hook.test_connection() == (
        False,
        "The mlflow connection's extra ui_url must not carry credentials (user:password@).",
    )
