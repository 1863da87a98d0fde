"""An in-memory ``MLflowHook`` for unit tests: experiments, runs, artifacts, registered models, aliases.

:class:`FakeMLflowHook` has the public surface of ``MLflowHook`` that operators use, with state held
in dicts (runs with tags / params / metric history, experiments, registered models with versions,
aliases and tags) and artifacts written below a tmp folder. Its :attr:`~FakeMLflowHook.registry` is
the provider's real ``ModelRegistry`` over an in-memory stand-in for the few ``MlflowClient`` registry
calls it makes, so promotion, rollback, race guard and audit are the code under test, not the fake.

Inject it at the hook boundary::

    fake = FakeMLflowHook(tmp_path / "mlflow")
    monkeypatch.setattr(MyOperator, "mlflow_hook", lambda self: fake)

Models a test wants ``load_run_sklearn_model`` to return go in :attr:`FakeMLflowHook.models` by run id.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlops_provider.hooks._mlflow_registry import ModelRegistry
from mlops_provider.hooks._mlflow_tracking import RunRecord

if TYPE_CHECKING:
    from collections.abc import Callable

TRACKING_URI = "http://mlflow.test:5000"


@dataclass
class FakeRun:
    """One run: tags, params, metric history ``name -> [(value, step), ...]``, status, dataset inputs."""

    run_id: str
    experiment_id: str
    run_name: str
    start_time: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    status: str = "RUNNING"
    deleted: bool = False

    def metric(self, name: str) -> float:
        """The latest value of metric ``name`` (KeyError if never logged)."""
        return self.metrics[name][-1][0]


@dataclass
class FakeVersion:
    """A registered model version as the MLflow client returns it (a snapshot: copy on read)."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    status: str = "READY"


@dataclass
class FakeRegisteredModel:
    name: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    versions: dict[str, FakeVersion] = field(default_factory=dict)


class FakeMlflowError(Exception):
    """What ``MlflowException`` tells a caller: a message and an ``error_code`` (without importing mlflow)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class _RegistryClient:
    """The ``MlflowClient`` registry calls ``ModelRegistry`` makes, over the fake hook's state."""

    def __init__(self, hook: FakeMLflowHook) -> None:
        self._hook = hook

    def _model(self, name: str) -> FakeRegisteredModel:
        if name not in self._hook.registered_models:
            raise FakeMlflowError("RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found")
        return self._hook.registered_models[name]

    def _version(self, name: str, version: str) -> FakeVersion:
        found = self._model(name).versions.get(str(version))
        if found is None:
            raise FakeMlflowError(
                "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version={version})"
            )
        return found

    @staticmethod
    def _snapshot(version: FakeVersion) -> FakeVersion:
        return replace(version, tags=dict(version.tags))

    def get_registered_model(self, name: str) -> FakeRegisteredModel:
        model = self._model(name)
        return replace(model, tags=dict(model.tags), aliases=dict(model.aliases), versions={})

    def create_registered_model(self, name: str, description: str | None = None) -> None:
        if name in self._hook.registered_models:
            raise FakeMlflowError(
                "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists."
            )
        self._hook.registered_models[name] = FakeRegisteredModel(name, description)

    def update_registered_model(self, name: str, description: str) -> None:
        self._model(name).description = description

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._model(name).tags[key] = value

    def get_model_version(self, name: str, version: str) -> FakeVersion:
        return self._snapshot(self._version(name, version))

    def get_model_version_by_alias(self, name: str, alias: str) -> FakeVersion:
        target = self._model(name).aliases.get(alias)
        if target is None:
            raise FakeMlflowError("INVALID_PARAMETER_VALUE", f"Registered model alias {alias} not found.")
        return self.get_model_version(name, target)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        if self._hook.before_alias_move is not None:
            self._hook.before_alias_move(name, alias, str(version))
        self._version(name, version)
        self._model(name).aliases[alias] = str(version)

    def search_model_versions(self, filter_string: str) -> list[FakeVersion]:
        match = re.fullmatch(r"name = '(.*)' and run_id = '(.*)'", filter_string)
        assert match, f"the fake understands only name + run_id filters, not {filter_string!r}"
        model = self._hook.registered_models.get(match[1])
        versions = model.versions.values() if model else ()
        return [self._snapshot(v) for v in versions if v.run_id == match[2]]

    def create_model_version(
        self, name: str, source: str, run_id: str, tags: dict[str, str], description: str
    ) -> FakeVersion:
        model = self._model(name)
        number = str(len(model.versions) + 1)
        model.versions[number] = FakeVersion(name, number, run_id, source, dict(tags), description)
        return self._snapshot(model.versions[number])

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._version(name, version).tags[key] = value

    def update_model_version(self, name: str, version: str, description: str) -> None:
        self._version(name, version).description = description

    def get_run(self, run_id: str) -> SimpleNamespace:
        self._hook.run(run_id)
        return SimpleNamespace(
            info=SimpleNamespace(run_id=run_id, artifact_uri=self._hook.artifact_uri(run_id))
        )

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._hook.run(run_id).tags[key] = value


class FakeMLflowHook:
    """The public surface of ``MLflowHook``, in memory. Test helpers: :meth:`create_run`,
    :meth:`add_version`, :meth:`run`, :meth:`aliases`, :meth:`version`, :meth:`artifact`.

    :param artifact_root: folder that holds the runs' artifacts (``<root>/<run_id>/<path>``).
    """

    mlflow_conn_id = "mlflow_fake"
    tracking_uri = TRACKING_URI

    def __init__(self, artifact_root: Path) -> None:
        self.artifact_root = Path(artifact_root)
        self.experiments: dict[str, str] = {}  # name -> id
        self.experiment_tags: dict[str, dict[str, str]] = {}  # id -> tags
        self.runs: dict[str, FakeRun] = {}
        self.registered_models: dict[str, FakeRegisteredModel] = {}
        self.models: dict[str, Any] = {}  # run id -> what load_run_sklearn_model returns
        self.before_alias_move: Callable[[str, str, str], None] | None = None
        """Called as ``(name, alias, version)`` just before any alias moves: lets a test race a writer."""
        self._ids = itertools.count(1)
        self.registry = ModelRegistry(_RegistryClient(self))  # type: ignore[arg-type]

    # -- test helpers ------------------------------------------------------------------------------

    def run(self, run_id: str) -> FakeRun:
        """The run ``run_id`` (KeyError if there is none)."""
        return self.runs[run_id]

    def create_run(self, experiment_name: str = "exp", *, tags: dict[str, str] | None = None) -> str:
        """A new RUNNING run in ``experiment_name`` (created if needed); its id."""
        experiment_id = self.get_or_create_experiment(experiment_name)
        number = next(self._ids)
        run_id = f"run{number:04d}"
        self.runs[run_id] = FakeRun(run_id, experiment_id, run_id, number, dict(tags or {}))
        return run_id

    def add_version(self, name: str, run_id: str | None = None, *, aliases: tuple[str, ...] = ()) -> str:
        """Register a READY version of ``name`` (from a new run if ``run_id`` is None); its number."""
        run_id = run_id or self.create_run()
        self.registry.ensure_model(name)
        version, _ = self.registry.register_run_model(name, run_id)
        for alias in aliases:
            self.registered_models[name].aliases[alias] = version.version
        return version.version

    def aliases(self, name: str) -> dict[str, str]:
        """``alias -> version`` of registered model ``name``."""
        return dict(self.registered_models[name].aliases)

    def version(self, name: str, version: str) -> FakeVersion:
        """Version ``version`` of ``name`` as stored (tags, description, run id)."""
        return self.registered_models[name].versions[str(version)]

    def artifact_uri(self, run_id: str) -> str:
        return (self.artifact_root / run_id).as_uri()

    def artifact(self, run_id: str, artifact_file: str) -> Path:
        """The local path of one artifact file of the run."""
        return self.artifact_root / run_id / artifact_file

    # -- connection --------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        return True, f"Connected to MLflow at {self.tracking_uri}"

    # -- artifacts ---------------------------------------------------------------------------------

    def upload_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str | None = None) -> None:
        self.run(run_id)
        target = self.artifact_root / run_id / (artifact_path or "")
        shutil.copytree(local_dir, target, dirs_exist_ok=True)

    def upload_artifact_bytes(self, run_id: str, artifact_file: str, payload: bytes) -> None:
        self.run(run_id)
        target = self.artifact(run_id, artifact_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)

    def download_artifacts(self, run_id: str, artifact_path: str, dst_dir: str | Path) -> Path:
        source = self.artifact(run_id, artifact_path)
        target = Path(dst_dir) / artifact_path
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return target

    # -- experiments and runs ----------------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> str:
        from mlops_provider.core.registry_names import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

        if name not in self.experiments:
            self.experiments[name] = str(len(self.experiments) + 1)
        self.experiment_tags.setdefault(self.experiments[name], {})[EXPERIMENT_KIND_TAG] = EXPERIMENT_KIND
        return self.experiments[name]

    def _matching(self, experiment_id: str, tags: dict[str, str]) -> list[FakeRun]:
        return sorted(
            (
                run
                for run in self.runs.values()
                if run.experiment_id == experiment_id
                and not run.deleted
                and all(run.tags.get(k) == v for k, v in tags.items())
            ),
            key=lambda run: (run.start_time, run.run_id),
        )

    def find_or_create_run(
        self, experiment_id: str, *, tags: dict[str, str], match: tuple[str, ...], run_name: str
    ) -> str:
        found = self._matching(experiment_id, {name: tags[name] for name in match})
        if found:
            return found[0].run_id
        [name] = [n for n, i in self.experiments.items() if i == experiment_id]
        run_id = self.create_run(name, tags=tags)
        self.runs[run_id].run_name = run_name
        return run_id

    def find_runs(self, experiment_name: str, tags: dict[str, str]) -> list[str]:
        if experiment_name not in self.experiments:
            return []
        return [run.run_id for run in self._matching(self.experiments[experiment_name], tags)]

    def open_run(
        self, experiment_name: str, *, tags: dict[str, str], match: tuple[str, ...], run_name: str
    ) -> tuple[str, str]:
        experiment_id = self.get_or_create_experiment(experiment_name)
        return experiment_id, self.find_or_create_run(
            experiment_id, tags=tags, match=match, run_name=run_name
        )

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.run(run_id).tags.update({key: str(value) for key, value in tags.items()})

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.run(run_id).status = status

    def reopen_run(self, run_id: str) -> None:
        self.run(run_id).status = "RUNNING"

    def get_run_record(self, run_id: str) -> RunRecord:
        run = self.run(run_id)
        latest = {name: history[-1][0] for name, history in run.metrics.items()}
        return RunRecord(run_id, run.start_time, latest, dict(run.tags))

    def log_partition_inputs(
        self, run_id: str, dataset: str, partitions: list[dict[str, Any]], *, context: str = "training"
    ) -> None:
        self.run(run_id).inputs.extend(
            {"dataset": dataset, "context": context, **part} for part in partitions
        )

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self.run(run_id).params.update({str(k): str(v)[:6000] for k, v in params.items()})

    def log_metrics(
        self,
        run_id: str,
        metrics: dict[str, float],
        *,
        prefix: str = "",
        step: int = 0,
        timestamp_ms: int | None = None,
    ) -> None:
        run = self.run(run_id)
        for name, value in metrics.items():
            if value is not None and math.isfinite(value):
                run.metrics.setdefault(f"{prefix}{name}", []).append((float(value), step))

    # -- registry ----------------------------------------------------------------------------------

    def get_version_by_alias(self, name: str, alias: str) -> FakeVersion | None:
        return self.registry.version_by_alias(name, alias)  # type: ignore[return-value]

    def load_sklearn_model(self, name: str, *, version: str | None = None, alias: str | None = None) -> Any:
        if (version is None) == (alias is None):
            raise ValueError("Give exactly one of version or alias")
        found = (
            self.get_version_by_alias(name, alias) if alias is not None else self.version(name, str(version))
        )
        if found is None:
            raise LookupError(f"Registered model {name!r} has no alias {alias!r}")
        return self.load_run_sklearn_model(found.run_id)

    def load_run_sklearn_model(self, run_id: str) -> Any:
        return self.models[run_id]

    # -- links -------------------------------------------------------------------------------------

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.tracking_uri}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}"

    def model_version_url(self, name: str, version: str) -> str:
        return f"{self.tracking_uri}/#/models/{quote(name)}/versions/{quote(str(version))}"
