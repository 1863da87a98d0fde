"""The command line: demo is the default command, the program name is STACK_PROG's, commands answer."""

from __future__ import annotations

import pytest
from mlops_stack.cli import build_parser, main, with_default_command

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["demo"]),
        (["--home", "H"], ["demo", "--home", "H"]),
        (["--help"], ["--help"]),
        (["up", "--home", "H"], ["up", "--home", "H"]),
        (["airflow", "dags", "list"], ["airflow", "dags", "list"]),
    ],
)
def test_demo_is_the_default_command(argv, expected):
    assert with_default_command(argv) == expected


def test_options_of_each_command():
    args = build_parser().parse_args(
        ["demo", "--airflow-port", "0", "--rows", "2000", "--end-date", "2026-01-31"]
    )
    assert (args.airflow_port, args.mlflow_port, args.rows, args.end_date) == (0, None, 2000, "2026-01-31")
    assert args.timeout == 300.0 and args.stop_timeout == 30.0
    args = build_parser().parse_args(["airflow", "--home", "H", "connections", "get", "mlflow_default"])
    assert args.airflow_args == ["connections", "get", "mlflow_default"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--mlflow-port", "70000"])


def test_the_program_name_comes_from_stack_prog(monkeypatch, capsys):
    monkeypatch.setenv("STACK_PROG", "scripts/run-stack")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: scripts/run-stack ")


def test_status_and_down_without_a_stack(tmp_path, capsys):
    assert main(["status", "--home", str(tmp_path)]) == 1
    assert main(["down", "--home", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"No stack running in {tmp_path}.\n" * 2


def test_reset_deletes_the_demo_state_and_keeps_the_login(tmp_path, capsys):
    for folder in ("data", "mlflow", "airflow", "logs"):
        (tmp_path / folder).mkdir()
    for name in ("demo.json", "passwords.json", "secrets.json"):
        (tmp_path / name).write_text("{}")
    assert main(["reset", "--home", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwords.json", "secrets.json", "stack.lock"]
    assert "Removed from" in capsys.readouterr().out
