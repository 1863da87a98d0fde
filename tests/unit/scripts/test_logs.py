"""Server logs: appended to at each start after a separator, rotated when large, private."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from mlops_stack.logs import log_tail, open_log, rotate_if_large, separator

pytestmark = pytest.mark.unit


def test_a_restart_appends_after_a_separator_naming_the_start(tmp_path):
    log = tmp_path / "mlflow.log"
    with open_log(log, "mlflow") as out:
        out.write(b"first run\n")
    with open_log(log, "mlflow") as out:
        out.write(b"second run\n")
    lines = log.read_text().splitlines()
    assert lines[1] == "first run"
    assert lines[3] == "second run"
    assert lines[0].startswith("===== mlflow started ") and lines[2].startswith("===== mlflow started ")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_separator_names_the_server_and_the_time():
    when = dt.datetime(2026, 12, 3, 17, 45, 59, tzinfo=dt.timezone.utc)
    assert (
        separator("airflow-scheduler", when)
        == "===== airflow-scheduler started 2026-12-03T17:45:59+00:00 =====\n"
    )


def test_a_large_log_is_moved_to_dot_1_before_a_start(tmp_path):
    log = tmp_path / "airflow-scheduler.log"
    log.write_bytes(b"x" * 101)
    (tmp_path / "airflow-scheduler.log.1").write_text("older generation\n")
    with open_log(log, "airflow-scheduler", max_bytes=100) as out:
        out.write(b"new\n")
    assert (tmp_path / "airflow-scheduler.log.1").read_bytes() == b"x" * 101
    assert log.read_text().splitlines()[1:] == ["new"]


def test_a_small_or_missing_log_is_not_rotated(tmp_path):
    log = tmp_path / "a.log"
    assert not rotate_if_large(log, 10)
    log.write_bytes(b"x" * 10)
    assert not rotate_if_large(log, 10)
    assert log.exists()
    assert not (tmp_path / "a.log.1").exists()


def test_an_old_world_readable_log_becomes_private(tmp_path):
    log = tmp_path / "old.log"
    log.write_text("from an older version\n")
    log.chmod(0o644)
    open_log(log, "old").close()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().startswith("from an older version\n===== old started ")


def test_log_tail_gives_the_last_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 2) == "line 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == ""
