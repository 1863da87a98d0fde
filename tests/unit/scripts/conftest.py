"""The local stack's package (``scripts/mlops_stack``) on sys.path for its unit tests."""

from __future__ import annotations

import os

import pytest

import tests.support  # noqa: F401  (puts scripts/ on sys.path)


@pytest.fixture(autouse=True)
def _keep_umask():
    """The command line sets umask 077 for everything the stack creates; give the test process its own back."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


@pytest.fixture
def recorded_state(tmp_path) -> dict:
    """What stack.json records of a stack with its state in ``tmp_path`` (as describe and the summary read it)."""
    return {
        "home": str(tmp_path),
        "urls": {"airflow": "http://127.0.0.1:8080", "mlflow": "http://127.0.0.1:5000"},
        "user": "admin",
        "passwords_file": str(tmp_path / "passwords.json"),
        "data_root": (tmp_path / "data").as_uri(),
    }
