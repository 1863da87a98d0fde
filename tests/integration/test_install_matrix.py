"""The install matrix: the built wheel added to existing Airflows with plain pip, the documented way.

For each supported Airflow minor (its newest release) a virtualenv holds only ``apache-airflow``,
installed with plain pip (no uv, no constraints), as someone runs it. The provider then goes in with
the documented command, which pins the Airflow already there::

    pip install "airflow-provider-mlops[s3]" "apache-airflow==$(airflow version)"

Recorded per Airflow version x extra: the time pip takes to resolve from the Airflow-only venv
(``--dry-run``), the versions the install changes (Airflow must not change), whether Airflow discovers
the provider, whether the shipped DAG factory parses the shipped configs, and a smoke run of the
installed package (every module imports, the storage hook writes and reads back a partition). An
Airflow the provider does not support (2.x) must be refused, leaving the environment as it was.

The two Airflow versions run in parallel; pip's cache is shared in ``.stack/pip-cache``. The base
Python is this interpreter, or ``MLOPS_INSTALL_PYTHON`` (the CI matrix sets it for other Pythons).
The table is printed at the end and written to ``.stack/install-matrix.md``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.test_wheel_install import RUN_THE_PACKAGE, find_uv, json_document, outside_env

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

PROVIDER = "airflow-provider-mlops"
AIRFLOWS = ("3.2.2", "3.3.2")  # the newest release of each supported minor
EXTRAS = ("", "s3")
UNSUPPORTED_AIRFLOW = "2.10.5"
RESOLVE_BUDGET = 180.0  # seconds: the bound for `pip install airflow-provider-mlops[s3]`
PIP_CACHE = REPO_ROOT / ".stack" / "pip-cache"
STEP_TIMEOUT = 900
UNIT_TESTS_ON = ("3.2.2", "s3")  # the provider's unit tests run against the installed wheel in this case
# Unit tests of the repository rather than of the installed package: they need the dev environment's
# tools (lint-imports), its metadata (the declared-dependencies check) or files outside the wheel.
REPOSITORY_ONLY = [
    "--ignore=tests/unit/test_layers.py",
    "--ignore=tests/unit/deploy",  # the compose, Astro and lock files
    "--ignore=tests/unit/test_declared_dependencies.py",
    "--ignore=tests/unit/test_docs.py",
    "--deselect=tests/unit/core/test_config_schema.py::"
    "test_every_shipped_config_follows_its_schema_and_points_editors_at_it",
]

SMOKE = (
    RUN_THE_PACKAGE
    + """
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "package": mlops_provider.__file__,
    "modules": len(modules),
    "rows_back": back.num_rows,
    "dags": sorted(bag.dags),
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
}))
"""
)


def documented_command(wheel: Path, extra: str, airflow: str) -> list[str]:
    """docs/deployment.md's install command (with the built wheel in place of the index's release)."""
    return ["install", f"{wheel}[{extra}]" if extra else str(wheel), f"apache-airflow=={airflow}"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Case:
    airflow: str
    extra: str
    resolve_seconds: float = 0.0
    install_seconds: float = 0.0
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (before, after)
    airflow_after: str = ""
    discovered: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)
    unit_tests: str = ""  # pytest's summary line, where the unit tests ran


class Venv:
    """A virtualenv made with ``python -m venv`` and driven with its own pip only."""

    def __init__(self, root: Path, base_python: str) -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir(parents=True)
        self.env = outside_env(
            PATH=f"{root / 'venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            AIRFLOW_HOME=str(root / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(root / "project" / "dags"),
            PIP_CACHE_DIR=str(PIP_CACHE),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        self.run(base_python, "-m", "venv", str(root / "venv"))
        self.python = str(root / "venv" / "bin" / "python")

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
                f"--- stderr\n{result.stderr[-4000:]}"
            )
        return result

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "pip", *args, check=check)

    def freeze(self) -> dict[str, str]:
        lines = self.pip("list", "--format", "json").stdout
        return {normalized(p["name"]): p["version"] for p in json.loads(lines)}

    def airflow(self, *args: str) -> str:
        return self.run(str(self.root / "venv" / "bin" / "airflow"), *args).stdout


def timed(action, *args, **kwargs):
    """``action(*args, **kwargs)`` and the seconds it took."""
    began = time.monotonic()
    result = action(*args, **kwargs)
    return result, time.monotonic() - began


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Packages present before whose version differs after (new packages are not changes)."""
    return {name: (old, after[name]) for name, old in before.items() if after.get(name, old) != old}


def shipped_project(root: Path) -> Path:
    """The repository's DAG factory file and include/ configs, copied as a user's Airflow project."""
    project = root / "project"
    (project / "dags").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dags" / "mlops_pipelines.py", project / "dags")
    for folder in ("datasets", "models", "expectations"):
        shutil.copytree(REPO_ROOT / "include" / folder, project / "include" / folder)
    return project


def airflow_matrix(airflow: str, wheel: Path, root: Path, base_python: str) -> list[Case]:
    """Both extras against one Airflow: resolve from the Airflow-only venv, then install and check."""
    venv = Venv(root, base_python)
    venv.pip("install", "--upgrade", "pip")
    venv.pip("install", f"apache-airflow=={airflow}")
    airflow_only = venv.freeze()
    project = shipped_project(root)
    cases = [Case(airflow, extra) for extra in EXTRAS]
    for case in cases:  # resolve only, both from the state the user has: Airflow alone
        report = root / f"report-{case.extra or 'none'}.json"
        command = documented_command(wheel, case.extra, airflow)
        _, case.resolve_seconds = timed(venv.pip, *command, "--dry-run", "--report", str(report))
        would = {
            normalized(i["metadata"]["name"]): i["metadata"]["version"]
            for i in json.loads(report.read_text())["install"]
        }
        case.changed = changes(airflow_only, {**airflow_only, **would})
    for case in cases:  # then for real, no extra first, [s3] on top of it
        _, case.install_seconds = timed(venv.pip, *documented_command(wheel, case.extra, airflow))
        case.airflow_after = venv.freeze()["apache-airflow"]
        (info,) = json_document(venv.airflow("providers", "get", PROVIDER, "--output", "json"))
        case.discovered = info
        if case.extra == "s3":
            amazon = json_document(
                venv.airflow("providers", "get", "apache-airflow-providers-amazon", "-o", "json")
            )
            case.discovered["amazon"] = amazon[0]["Version"]
        data = root / f"data-{case.extra or 'none'}"
        out = venv.run(venv.python, "-c", SMOKE, str(project / "dags"), str(data)).stdout
        case.smoke = json.loads(out.strip().splitlines()[-1])
        if (airflow, case.extra) == UNIT_TESTS_ON:
            case.unit_tests = unit_tests(venv)
    return cases


def unit_tests(venv: Venv) -> str:
    """The provider's unit tests run by the venv's Python, importing the installed wheel, not src/."""
    venv.pip("install", "pytest", "pytest-timeout")
    argv = [venv.python, "-m", "pytest", "tests/unit", "-m", "unit", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*argv, *REPOSITORY_ONLY], cwd=REPO_ROOT, env=venv.env, capture_output=True, text=True,
        timeout=STEP_TIMEOUT, check=False,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]


def refusal(wheel: Path, root: Path, base_python: str) -> dict:
    """The documented command with an unsupported Airflow pinned: pip must refuse and change nothing."""
    venv = Venv(root, base_python)
    venv.pip("install", "--upgrade", "pip")
    before = venv.freeze()
    result, seconds = timed(venv.pip, *documented_command(wheel, "", UNSUPPORTED_AIRFLOW), check=False)
    return {
        "returncode": result.returncode,
        "output": result.stdout + result.stderr,
        "seconds": seconds,
        "unchanged": venv.freeze() == before,
        "pip": venv.pip("--version").stdout,
    }


def table(cases: list[Case], refused: dict, python: str, pip: str) -> str:
    rows = [
        f"Python {python}, {pip}, pip's cache as found in .stack/pip-cache. resolve: `pip install --dry-run`"
        " from the venv holding only Airflow; install: the real install, [s3] on top of the install without"
        " extra; versions changed: packages of the Airflow-only venv that the install changes.",
        "",
        "| Airflow | extra | resolve (s) | install (s) | versions changed | Airflow after | provider discovered"
        " | DAGs parse | tests |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        changed = ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(c.changed.items())) or "none"
        dags = f"{len(c.smoke.get('dags', []))} DAGs, {len(c.smoke.get('import_errors', {}))} errors"
        smoke = (
            f"{c.smoke.get('modules')} modules import, partition round trip {c.smoke.get('rows_back') == 3}"
        )
        if c.unit_tests:
            smoke += f"; unit tests: {c.unit_tests}"
        rows.append(
            f"| {c.airflow} | {c.extra or '-'} | {c.resolve_seconds:.0f} | {c.install_seconds:.0f} | {changed} "
            f"| {c.airflow_after} | {c.discovered.get('Version', 'no')} | {dags} | {smoke} |"
        )
    verdict = "refused" if refused["returncode"] != 0 else "INSTALLED"
    rows.append(
        f"| {UNSUPPORTED_AIRFLOW} | - | {refused['seconds']:.0f} | - | {verdict}, environment unchanged: "
        f"{refused['unchanged']} | - | - | - | - |"
    )
    return "\n".join(rows)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("install-matrix")
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    base_python = os.environ.get("MLOPS_INSTALL_PYTHON") or getattr(sys, "_base_executable", sys.executable)
    uv_env = outside_env(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")
    subprocess.run(
        [find_uv(), "build", "--wheel", "--out-dir", str(root / "dist"), str(REPO_ROOT)],
        env=uv_env, capture_output=True, check=True, timeout=STEP_TIMEOUT,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("airflow_provider_mlops-*.whl")
    with ThreadPoolExecutor(max_workers=len(AIRFLOWS) + 1) as pool:
        futures = [
            pool.submit(airflow_matrix, v, wheel, root / f"airflow-{v}", base_python) for v in AIRFLOWS
        ]
        refused_future = pool.submit(refusal, wheel, root / "unsupported", base_python)
        cases = [case for future in futures for case in future.result()]
        refused = refused_future.result()
    python = subprocess.run(
        [base_python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    pip = " ".join(refused["pip"].split()[:2])
    text = table(cases, refused, python, pip)
    (REPO_ROOT / ".stack" / "install-matrix.md").write_text(text + "\n")
    return {"cases": cases, "refused": refused, "table": text}


def cases_of(matrix: dict) -> list[Case]:
    return matrix["cases"]


def test_print_the_matrix(matrix, capsys: pytest.CaptureFixture[str]) -> None:
    """The table for the closing note and docs/deployment.md (also in .stack/install-matrix.md)."""
    with capsys.disabled():
        print("\n" + matrix["table"])


def test_every_supported_airflow_and_extra_was_tried(matrix) -> None:
    assert {(c.airflow, c.extra) for c in cases_of(matrix)} == {(a, e) for a in AIRFLOWS for e in EXTRAS}


def test_pip_resolves_within_budget(matrix) -> None:
    slow = {
        (c.airflow, c.extra): round(c.resolve_seconds)
        for c in cases_of(matrix)
        if c.resolve_seconds > RESOLVE_BUDGET
    }
    assert slow == {}


def test_the_users_airflow_is_kept(matrix) -> None:
    for case in cases_of(matrix):
        assert "apache-airflow" not in case.changed, case
        assert case.airflow_after == case.airflow, case


def test_airflow_discovers_the_provider(matrix) -> None:
    from mlops_provider import __version__

    for case in cases_of(matrix):
        assert case.discovered["Provider"] == PROVIDER
        assert case.discovered["Version"] == __version__
        if case.extra == "s3":
            assert case.discovered["amazon"], case


def test_shipped_dags_parse_and_the_package_runs(matrix) -> None:
    expected = {
        f"mlops_{kind}__{name}"
        for name in ("churn_classifier", "bike_demand")
        for kind in ("train", "drift", "rollback")
    } | {"mlops_ingest__churn", "mlops_ingest__bike_rentals"}
    for case in cases_of(matrix):
        assert case.smoke["import_errors"] == {}, case
        assert set(case.smoke["dags"]) == expected, case
        assert "site-packages" in case.smoke["package"], case
        assert case.smoke["modules"] >= 30, case
        assert case.smoke["rows_back"] == 3, case


def test_the_unit_tests_pass_against_the_installed_wheel(matrix) -> None:
    (case,) = [c for c in cases_of(matrix) if (c.airflow, c.extra) == UNIT_TESTS_ON]
    summary = case.unit_tests
    assert re.fullmatch(r"=* ?\d+ passed(, \d+ deselected)?(, \d+ warnings?)? in .*", summary), summary


def test_an_unsupported_airflow_is_refused_not_replaced(matrix) -> None:
    refused = matrix["refused"]
    assert refused["returncode"] != 0
    assert "ResolutionImpossible" in refused["output"] or "conflicting dependencies" in refused["output"]
    assert refused["unchanged"]
