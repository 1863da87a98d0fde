"""The MLOps pipelines of this Airflow project, generated from the configuration files in include/.

One set of DAGs per file (see the provider's ``mlops_provider.pipelines``):

- ``include/datasets/<file>.yaml`` -> ``mlops_ingest__<dataset>``
- ``include/models/<file>.yaml``   -> ``mlops_train__<model>``, ``mlops_drift__<model>``,
  ``mlops_rollback__<model>``

Add a file to add its DAGs, remove it to remove them. A broken file shows up as this file's import
error, naming the file and every problem in it; the other pipelines keep running.
"""

from __future__ import annotations

from pathlib import Path

from mlops_provider.pipelines import build_pipelines

globals().update(build_pipelines(Path(__file__).resolve().parent.parent / "include"))
