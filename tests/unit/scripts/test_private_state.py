"""The state directory and its secrets are private from creation on, and the password is never shown."""

from __future__ import annotations

import json
import stat

import pytest
from mlops_stack.credentials import ensure_password, ensure_secrets, read_password
from mlops_stack.paths import Paths, make_dirs, write_private
from mlops_stack.state import describe

pytestmark = pytest.mark.unit


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_folder_of_the_state_directory_is_private(tmp_path):
    paths = Paths(tmp_path / "home")
    make_dirs(paths)
    for folder in (
        paths.home,
        paths.airflow_home,
        paths.mlflow,
        paths.mlflow / "artifacts",
        paths.logs,
        paths.data,
    ):
        assert mode(folder) == 0o700, folder


def test_secrets_are_generated_once_into_private_files(tmp_path):
    paths = Paths(tmp_path)
    password = ensure_password(paths)
    keys = ensure_secrets(paths)
    assert mode(paths.passwords) == mode(paths.secrets) == 0o600
    assert json.loads(paths.passwords.read_text()) == {"admin": password}
    assert ensure_password(paths) == read_password(paths) == password
    assert ensure_secrets(paths) == keys
    assert len(keys["jwt_secret"]) >= 64


def test_a_loosened_passwords_file_is_tightened_when_read(tmp_path):
    paths = Paths(tmp_path)
    ensure_password(paths)
    paths.passwords.chmod(0o644)
    read_password(paths)
    assert mode(paths.passwords) == 0o600


def test_write_private_replaces_a_file_with_a_0600_one(tmp_path):
    target = tmp_path / "demo.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "new")
    assert target.read_text() == "new"
    assert mode(target) == 0o600


def test_the_description_names_the_passwords_file_not_the_password(tmp_path, monkeypatch, recorded_state):
    monkeypatch.setenv("STACK_PROG", "scripts/run-stack")
    paths = Paths(tmp_path)
    password = ensure_password(paths)
    text = describe(recorded_state)
    assert password not in text
    assert f"admin, password in {paths.passwords}" in text
    assert f"scripts/run-stack airflow --home {tmp_path} <args>" in text
