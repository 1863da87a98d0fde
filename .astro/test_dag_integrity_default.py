"""Test the validity of all DAGs. **USED BY DEV PARSE COMMAND DO NOT EDIT**

Same shape as the file ``astro dev init`` writes (parse every file under ``dags/``, one test per file,
mocked connections, variables and environment variables, exemptions in
``.astro/dag_integrity_exceptions.txt``), adapted so that it runs under Airflow 3.3 with plain pytest,
inside the Astro Runtime image or from a checkout:

- ``DagBag`` comes from ``airflow.dag_processing.dagbag`` and takes no ``include_examples``; the DAG
  folder is passed explicitly (the project's ``dags/``), so ``AIRFLOW_HOME`` need not be the project.
- Parsing needs no metadata database: no ``initdb()`` at import time.
- Connections and variables go through the Task SDK (``airflow.sdk.BaseHook`` / ``Connection`` /
  ``Variable``); those are mocked, as is the legacy ``airflow.models.Variable``. The mocks are
  classmethods (the original assigned a plain function, which breaks ``self.get_connection(...)``)
  and are active only while the DAG files are parsed, so they never leak into other tests.
- A DAG is mapped to its file through ``dag.fileloc`` (``DagBag.dags`` is keyed by dag_id), the
  exemptions file is read without trailing newlines or comments, and a missing exemptions file is
  not an error.
- An empty ``dags/`` folder yields zero parametrized cases (reported as skipped), not an error.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = PROJECT_ROOT / "dags"
EXCEPTIONS_FILE = PROJECT_ROOT / ".astro" / "dag_integrity_exceptions.txt"
NO_IMPORT_ERRORS = "No import errors"

# Parses every DAG file with Airflow itself: an integration test in this project's suite.
pytestmark = pytest.mark.integration

# Inside the Astro Runtime image AIRFLOW_HOME is the project folder. From a checkout, parse in a
# throwaway AIRFLOW_HOME rather than the developer's ~/airflow. Nothing changes if Airflow was
# already configured (e.g. by tests/conftest.py in the same pytest session).
if "AIRFLOW_HOME" not in os.environ:
    _scratch_home = tempfile.mkdtemp(prefix="dag-integrity-")
    atexit.register(shutil.rmtree, _scratch_home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = _scratch_home
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# The following code patches errors caused by missing OS Variables, Airflow Connections, and Airflow Variables

_NO_DEFAULT = object()  # allow falsey defaults
_real_getenv = os.getenv


# =========== MONKEYPATCH BaseHook.get_connection() / Connection.get() ===========
def basehook_get_connection_monkeypatch(cls: type, key: str, *args: Any, **kwargs: Any) -> Any:
    from airflow.sdk import Connection

    print(f"Attempted to fetch connection during parse returning an empty Connection object for {key}")
    return Connection(conn_id=key)


# =========== MONKEYPATCH OS.GETENV() ===========
def os_getenv_monkeypatch(key: str, *args: Any, **kwargs: Any) -> Any:
    default = None
    if args:
        default = args[0]  # os.getenv should get at most 1 arg after the key
    if kwargs:
        default = kwargs.get("default")  # and sometimes kwarg if people are using the sig

    env_value = _real_getenv(key)

    if env_value:
        return env_value  # if the env_value is set, return it
    if key == "JENKINS_HOME" and default is None:  # fix https://github.com/astronomer/astro-cli/issues/601
        return None
    if default:
        return default  # otherwise return whatever default has been passed
    return f"MOCKED_{key.upper()}_VALUE"  # if absolutely nothing has been passed - return the mocked value


# =========== MONKEYPATCH VARIABLE.GET() ===========
class magic_dict(dict):
    def __missing__(self, key: Any) -> str:
        return "MOCKED_KEY_VALUE"


def variable_get_monkeypatch(cls: type, key: str, *args: Any, **kwargs: Any) -> Any:
    # airflow.sdk.Variable.get(key, default, deserialize_json);
    # airflow.models.Variable.get(key, default_var, deserialize_json, team_name)
    print(f"Attempted to get Variable value during parse, returning a mocked value for {key}")
    default = args[0] if args else kwargs.get("default", kwargs.get("default_var", _NO_DEFAULT))
    deserialize_json = args[1] if len(args) > 1 else kwargs.get("deserialize_json", False)

    if default is not _NO_DEFAULT:
        return default
    if deserialize_json:
        return magic_dict()
    return "NON_DEFAULT_MOCKED_VARIABLE_VALUE"


@contextmanager
def parse_time_mocks() -> Iterator[None]:
    """Mock connections, variables and env vars while DAG files are parsed; restore them after."""
    from airflow.models.variable import Variable as ModelVariable
    from airflow.sdk import BaseHook, Connection, Variable

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(os, "getenv", os_getenv_monkeypatch))
        for target, name, func in (
            (BaseHook, "get_connection", basehook_get_connection_monkeypatch),
            (Connection, "get", basehook_get_connection_monkeypatch),
            (Variable, "get", variable_get_monkeypatch),
            (ModelVariable, "get", variable_get_monkeypatch),
        ):
            stack.enter_context(mock.patch.object(target, name, classmethod(func)))
        yield


def read_exceptions() -> set[str]:
    """Paths (relative to the project root, e.g. ``dags/foo.py``) exempt from the parse test."""
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (line.strip() for line in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def strip_path_prefix(path: str | os.PathLike[str]) -> str:
    return os.path.relpath(path, PROJECT_ROOT)


def get_import_errors() -> list[tuple[str, str]]:
    """
    Generate a tuple for import errors in the dag bag, and include DAGs without errors.
    """
    from airflow.dag_processing.dagbag import DagBag

    if not DAGS_FOLDER.is_dir():
        return []
    with parse_time_mocks():
        dag_bag = DagBag(dag_folder=DAGS_FOLDER)

    result = {strip_path_prefix(path): str(error).strip() for path, error in dag_bag.import_errors.items()}
    for dag in dag_bag.dags.values():
        result.setdefault(strip_path_prefix(dag.fileloc), NO_IMPORT_ERRORS)
    return sorted(result.items())


IMPORT_RESULTS = get_import_errors()


def test_dags_folder_exists() -> None:
    """Without a dags/ folder the parametrized test below would silently test nothing."""
    assert DAGS_FOLDER.is_dir(), f"{DAGS_FOLDER} is missing"


@pytest.mark.parametrize(("rel_path", "rv"), IMPORT_RESULTS, ids=[x[0] for x in IMPORT_RESULTS])
def test_file_imports(rel_path: str, rv: str) -> None:
    """Test for import errors on a file"""
    exceptions = read_exceptions()
    print(f"Exceptions: {sorted(exceptions)}")
    if rv != NO_IMPORT_ERRORS and rel_path not in exceptions:
        # If rv is not "No import errors," consider it a failed test
        pytest.fail(f"{rel_path} failed to import with message \n {rv}")
    # If rv is "No import errors," consider it a passed test
    print(f"{rel_path} passed the import test")
