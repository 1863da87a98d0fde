"""The stack's state directory (``--home``): where each file lives, created private to the user.

Every folder is created with mode 0700 and every state file written with mode 0600 from creation on
(the passwords file, the secrets, stack.json, demo.json and the logs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HOME = REPO / ".stack"


@dataclass(frozen=True)
class Paths:
    """Every file and folder of one stack's state directory."""

    home: Path

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME: airflow.db, airflow.cfg, task logs."""
        return self.home / "airflow"

    @property
    def mlflow(self) -> Path:
        """MLflow's backend store and artifact root."""
        return self.home / "mlflow"

    @property
    def logs(self) -> Path:
        """One log file per server (and ``stack.log``, the output of a detached ``up``)."""
        return self.home / "logs"

    @property
    def data(self) -> Path:
        """The provider's data root (``[mlops] data_root``)."""
        return self.home / "data"

    @property
    def state(self) -> Path:
        """stack.json: pids, process groups, ports and URLs of the running stack."""
        return self.home / "stack.json"

    @property
    def lock(self) -> Path:
        """Held (flock) by the ``up`` process for as long as it runs."""
        return self.home / "stack.lock"

    @property
    def passwords(self) -> Path:
        """The simple auth manager's passwords file, ``{"admin": "..."}``: the only place of the password."""
        return self.home / "passwords.json"

    @property
    def secrets(self) -> Path:
        """Generated once: the API's JWT secret and the Fernet key."""
        return self.home / "secrets.json"

    def log(self, name: str) -> Path:
        """The log file of the server called ``name``."""
        return self.logs / f"{name}.log"


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0700; an existing folder is left as it is."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def make_dirs(paths: Paths) -> None:
    """Create the state directory and its sub-folders, each private to the user (0700)."""
    make_private_dir(paths.home)
    for folder in (paths.airflow_home, paths.mlflow, paths.mlflow / "artifacts", paths.logs, paths.data):
        make_private_dir(folder)
    os.chmod(paths.logs, 0o700)  # older versions made it world-readable


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` by a file holding ``text``, readable by the owner only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_private_json(path: Path) -> dict:
    """Read a private JSON file, tightening its mode to 0600 if someone loosened it."""
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return json.loads(path.read_text())
