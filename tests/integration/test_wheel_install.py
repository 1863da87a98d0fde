"""The built wheel installed into an existing, clean Airflow: what a user of ``pip install`` gets.

The wheel is built from this checkout (``uv build``) and installed into a new virtualenv that first
holds only ``apache-airflow`` (pinned like the lock: ``uv export`` of uv.lock as constraints), the way
the provider is added to an Airflow someone already runs. Airflow's own CLI and a DAG file then run
there with a fresh AIRFLOW_HOME, the working directory outside the repository and no PYTHONPATH, so
nothing can come from the checkout: everything the provider needs at run time is in the wheel.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path
    from types import SimpleNamespace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PROVIDER = "airflow-provider-mlops"
AIRFLOW_PIN = "apache-airflow==3.3.2"  # [tool.uv] constraint-dependencies in pyproject.toml
STEP_TIMEOUT = 600


def find_uv() -> str:
    """The uv that scripts/ensure-env uses: $UV, uv on PATH, else its private copy in .stack/tools."""
    candidates = [os.environ.get("UV"), shutil.which("uv")]
    candidates += sorted(glob.glob(str(REPO_ROOT / ".stack" / "tools" / "uv-*" / "bin" / "uv")), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no uv found: run scripts/ensure-env first (it installs uv)")


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = STEP_TIMEOUT) -> str:
    """Run a command; its stdout, or a failure showing its output."""
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}"
        )
    return result.stdout


def outside_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points into the repository, its venv or its Airflow."""
    drop = ("AIRFLOW", "MLFLOW_", "PYTHON", "VIRTUAL_ENV", "CONDA")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def json_document(text: str):
    """The JSON document in a CLI's output (Airflow may log a line or two before it)."""
    return json.loads(text[min(i for i in (text.find("["), text.find("{")) if i >= 0) :])


@pytest.fixture(scope="module")
def clean_airflow(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A virtualenv with only Airflow, then the provider's wheel; a runner for its commands."""
    from types import SimpleNamespace

    uv = find_uv()
    root = tmp_path_factory.mktemp("wheel-install")
    work = root / "work"  # the working directory of everything run in the new environment
    work.mkdir()
    timings = {}

    began = time.monotonic()
    # uv reads no project or user configuration outside the repository; no bytecode: the first
    # airflow command writes it (the environment has no PYTHONDONTWRITEBYTECODE), the rest reuse it.
    uv_env = outside_env(UV_NO_CONFIG="1", UV_COMPILE_BYTECODE="0", UV_PYTHON_DOWNLOADS="never")
    run([uv, "build", "--wheel", "--out-dir", str(root / "dist"), str(REPO_ROOT)], cwd=REPO_ROOT, env=uv_env)
    (wheel,) = (root / "dist").glob("airflow_provider_mlops-*.whl")
    constraints = root / "constraints.txt"
    run(
        [uv, "export", "--frozen", "--no-hashes", "--all-extras", "--no-dev", "--no-emit-project",
         "--output-file", str(constraints)],
        cwd=REPO_ROOT, env=outside_env(UV_COMPILE_BYTECODE="0"),
    )  # fmt: skip
    timings["build wheel + export constraints"] = time.monotonic() - began

    began = time.monotonic()
    venv = root / "venv"
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    run([uv, "venv", "--python", base_python, str(venv)], cwd=work, env=uv_env)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "--python", str(python), "--constraints", str(constraints)]
    run([*install, AIRFLOW_PIN], cwd=work, env=uv_env)
    timings["venv with Airflow only"] = time.monotonic() - began

    env = outside_env(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(root / "airflow-home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
    )
    before = run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('mlops_provider'))"],
        cwd=work,
        env=env,
    )
    assert before.strip() == "None", "the clean Airflow already has the provider"

    began = time.monotonic()
    run([*install, str(wheel)], cwd=work, env=uv_env)
    run([uv, "pip", "check", "--python", str(python)], cwd=work, env=uv_env)
    timings["install the wheel + pip check"] = time.monotonic() - began

    print("\n" + ", ".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))
    return SimpleNamespace(
        root=root,
        work=work,
        python=python,
        wheel=wheel,
        env=env,
        airflow=lambda *args: run([str(venv / "bin" / "airflow"), *args], cwd=work, env=env),
    )


def test_wheel_is_self_contained(clean_airflow) -> None:
    """The wheel holds the package, its provider entry points, and nothing of the project around it."""
    import zipfile

    from mlops_provider import __version__

    assert clean_airflow.wheel.name == f"airflow_provider_mlops-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(clean_airflow.wheel) as wheel:
        names = wheel.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = wheel.read(entry_points).decode()
    assert {n.split("/")[0] for n in names} == {
        "mlops_provider",
        f"airflow_provider_mlops-{__version__}.dist-info",
    }
    assert "mlops_provider/get_provider_info.py" in names
    # The JSON Schemas of the configuration files ship as package data.
    assert {"mlops_provider/schemas/dataset.schema.json", "mlops_provider/schemas/model.schema.json"} <= set(
        names
    )
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = mlops_provider.get_provider_info:get_provider_info" in entry_points
    assert "[airflow.plugins]" in entry_points


def test_airflow_cli_sees_the_provider(clean_airflow) -> None:
    from mlops_provider import __version__

    (info,) = json_document(clean_airflow.airflow("providers", "get", PROVIDER, "--output", "json"))
    assert info == {"Provider": PROVIDER, "Version": __version__}

    hooks = json_document(clean_airflow.airflow("providers", "hooks", "--output", "json"))
    mlflow = [row for row in hooks if row["connection_type"] == "mlflow"]
    assert len(mlflow) == 1
    assert mlflow[0]["class"] == "mlops_provider.hooks.mlflow.MLflowHook"
    assert mlflow[0]["package_name"] == PROVIDER

    listing = clean_airflow.airflow("config", "list", "--section", "mlops", "--include-descriptions")
    assert "[mlops]" in listing
    for option in ("data_root", "mlflow_conn_id", "storage_conn_id"):
        assert f"# {option} = " in listing, option
    value = clean_airflow.airflow("config", "get-value", "mlops", "mlflow_conn_id")
    assert value.strip().splitlines()[-1] == "mlflow_default"

    plugins = json_document(clean_airflow.airflow("plugins", "--output", "json"))
    ours = [p for p in plugins if p["name"] == "mlops"]
    assert len(ours) == 1, plugins
    assert ours[0]["source"].startswith(f"{PROVIDER}=={__version__}: EntryPoint(")
    assert [app["url_prefix"] for app in ours[0]["fastapi_apps"]] == ["/mlops"]


DAG_FILE = '''
"""A DAG of someone else's project that uses the provider's operators."""
import pendulum
from airflow.sdk import DAG

from mlops_provider.operators.drift import MLflowDriftCheckOperator
from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from mlops_provider.operators.registry import MLflowRegisterModelOperator, MLflowRollbackChampionOperator
from mlops_provider.operators.training import MLflowPrepareTrainingOperator, SklearnTrainCandidateOperator
from mlops_provider.operators.validation import GXValidatePartitionOperator

with DAG("uses_the_provider", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ingest = DatasetIngestPartitionOperator(task_id="ingest", dataset_config="/cfg/orders.yaml")
    validate = GXValidatePartitionOperator(task_id="validate", dataset_config="/cfg/orders.yaml")
    prepare = MLflowPrepareTrainingOperator(task_id="prepare", model_config="/cfg/model.yaml")
    train = SklearnTrainCandidateOperator.partial(
        task_id="train", model_config="/cfg/model.yaml", plan={}
    ).expand(candidate=prepare.output)
    evaluate = MLflowEvaluateChallengerOperator(
        task_id="evaluate", model_config="/cfg/model.yaml", plan={}, candidates=train.output
    )
    register = MLflowRegisterModelOperator(
        task_id="register", model_config="/cfg/model.yaml", plan={}, evaluation=evaluate.output
    )
    rollback = MLflowRollbackChampionOperator(
        task_id="rollback", model_config="/cfg/model.yaml", version=1, reason="bad model"
    )
    drift = MLflowDriftCheckOperator(task_id="drift", model_config="/cfg/model.yaml")
    ingest >> validate >> prepare
'''

# A script's start: every module of the installed package imports and the storage hook round-trips a
# partition under the folder sys.argv[2]; modules, back and DagBag are left defined for what follows.
RUN_THE_PACKAGE = """
import importlib, json, pkgutil, sys, sysconfig
from pathlib import Path

import mlops_provider
from airflow.dag_processing.dagbag import DagBag

modules = [m.name for m in pkgutil.walk_packages(mlops_provider.__path__, "mlops_provider.")]
for name in modules:
    importlib.import_module(name)

# Run time: the storage hook writes and reads back a partition (pyarrow, ObjectStoragePath, manifest).
import pyarrow as pa
from mlops_provider.hooks.storage import DatasetStorageHook

hook = DatasetStorageHook(root_uri=Path(sys.argv[2]).as_uri())
hook.write_partition("orders", "validated", "2026-01-02", pa.table({"id": [1, 2, 3]}))
back = hook.read_partition("orders", "validated", "2026-01-02", verify=True)
"""

CHECK = (
    RUN_THE_PACKAGE
    + """
site = Path(sysconfig.get_paths()["purelib"]).resolve()
package = Path(mlops_provider.__file__).resolve()
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("uses_the_provider")
generated = sorted(d for d in bag.dags if d.startswith("mlops_"))
print(json.dumps({
    "package_in_site_packages": package.is_relative_to(site),
    "package": str(package),
    "sys_path": sys.path,
    "modules": len(modules),
    "rows_back": back.num_rows,
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "tasks": sorted(dag.task_ids) if dag else None,
    "generated": generated,
}))
"""
)


PIPELINES_FILE = """
\"\"\"Someone else's Airflow DAG folder: the provider's factory pointed at their own configuration.\"\"\"
from mlops_provider.pipelines import build_pipelines

globals().update(build_pipelines({folder!r}))
"""


def test_dag_file_using_the_operators_imports(clean_airflow) -> None:
    dags = clean_airflow.root / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "uses_the_provider.py").write_text(textwrap.dedent(DAG_FILE))
    config = clean_airflow.root / "team-config"
    for relative in ("datasets/churn.yaml", "models/churn.yaml", "expectations/churn.json"):
        (config / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "include" / relative, config / relative)
    (dags / "team_pipelines.py").write_text(PIPELINES_FILE.format(folder=str(config)))
    out = run(
        [str(clean_airflow.python), "-c", CHECK, str(dags), str(clean_airflow.root / "data")],
        cwd=clean_airflow.work,
        env=clean_airflow.env,
    )
    result = json.loads(out.strip().splitlines()[-1])  # the script's last line
    assert result["import_errors"] == {}
    assert result["tasks"] == [
        "drift", "evaluate", "ingest", "prepare", "register", "rollback", "train", "validate",
    ]  # fmt: skip
    assert result["generated"] == [
        "mlops_drift__churn_classifier", "mlops_ingest__churn", "mlops_rollback__churn_classifier",
        "mlops_train__churn_classifier",
    ]  # fmt: skip
    assert result["package_in_site_packages"], result["package"]
    assert not any(str(REPO_ROOT) in entry for entry in result["sys_path"]), result["sys_path"]
    assert result["modules"] >= 30
    assert result["rows_back"] == 3
