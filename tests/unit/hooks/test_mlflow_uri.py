from __future__ import annotations

import pytest

from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.hooks.mlflow import tracking_uri_from_connection

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("http://127.0.0.1:5000", None, None, "http://127.0.0.1:5000"),
        ("http://127.0.0.1", 5000, None, "http://127.0.0.1:5000"),
        ("https://mlflow.example.com/", None, None, "https://mlflow.example.com"),
        ("127.0.0.1", 5000, None, "http://127.0.0.1:5000"),
        ("mlflow.internal", 443, "https", "https://mlflow.internal:443"),
        ("http://127.0.0.1:5000", 6000, None, "http://127.0.0.1:5000"),
    ],
)
def test_tracking_uri_from_connection_fields(host, port, schema, expected):
    assert tracking_uri_from_connection(host, port, schema) == expected


@pytest.mark.parametrize("host", ["", None, "file:///tmp/mlruns", "sqlite:///mlflow.db", "ftp://host"])
def test_tracking_uri_rejects_missing_host_and_non_http_stores(host):
    with pytest.raises(InvalidConfigurationError, match="mlflow connection"):
        tracking_uri_from_connection(host, None)
