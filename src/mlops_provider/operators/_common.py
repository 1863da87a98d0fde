"""Glue shared by the provider's operators: config loading, partition date, lineage of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.hooks.storage import DatasetStorageHook

if TYPE_CHECKING:
    from datetime import date

    from airflow.sdk import Context

    from mlops_provider.core.datasets import DatasetConfig


def load_config(path: str) -> DatasetConfig:
    """Load a dataset configuration; a bad file fails the task without retry."""
    from mlops_provider.core.datasets import DatasetConfigError, load_dataset_config

    try:
        return load_dataset_config(path)
    except DatasetConfigError as err:
        raise InvalidConfigurationError(str(err)) from None


def partition_date(explicit: str | None, context: Context) -> date:
    """The day a run processes: ``explicit`` (a Param), else the run's logical date (``{{ ds }}``).

    Scheduled runs of a data-interval timetable have the logical date at the start of the interval,
    so this is the day the interval covers; it is also the ``ds`` the source URI is rendered with.
    """
    from mlops_provider.core.partitions import resolve_partition_date

    fallback = context.get("logical_date")
    try:
        return resolve_partition_date(explicit, fallback)
    except ValueError as err:
        raise InvalidConfigurationError(str(err)) from None


def refuse_unknown_conf(context: Context) -> None:
    """Fail the task without retry when the run's conf sets a key that is not one of the DAG's Params.

    Airflow accepts any conf key and merges it into the params; a typo (``{"windows_days": 5}``)
    would silently run with the defaults. Called before a task does any work.
    """
    from mlops_provider.core.config_keys import unknown_key_problems

    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    task = context.get("task")
    dag = task.dag if task is not None else None
    known = set(dag.params) if dag is not None else set()
    problems = unknown_key_problems(conf, known, "the run's conf")
    if problems:
        raise InvalidConfigurationError(
            "; ".join(problems) + ". Trigger the DAG again with the Params it declares."
        )


class RunConfCheckedOperator(BaseOperator):
    """An operator that refuses a run whose conf names a key the DAG does not declare."""

    def pre_execute(self, context: Any) -> None:
        refuse_unknown_conf(context)


def run_lineage(context: Context) -> dict[str, Any]:
    """Who produced something: the Airflow dag_id, run_id, task_id and try number (JSON-safe)."""
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "try_number": ti.try_number,
    }


class DatasetPartitionOperator(RunConfCheckedOperator):
    """Base of the operators that work on one day's partition of a configured dataset.

    :param dataset_config: path of the dataset's YAML configuration. (templated)
    :param partition_date: ``YYYY-MM-DD``; empty: the run's logical date (``ds``). (templated)
    :param data_root: storage root URI; default ``[mlops] data_root``.
    :param storage_conn_id: ``aws`` connection for ``s3://``; default ``[mlops] storage_conn_id``.
    """

    def __init__(
        self,
        *,
        dataset_config: str,
        partition_date: str | None = None,
        data_root: str | None = None,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_config = dataset_config
        self.partition_date = partition_date
        self.data_root = data_root
        self.storage_conn_id = storage_conn_id

    def resolve(self, context: Context) -> tuple[DatasetConfig, date, DatasetStorageHook]:
        """The run's dataset configuration, partition date and storage."""
        storage = DatasetStorageHook(root_uri=self.data_root, storage_conn_id=self.storage_conn_id)
        return load_config(self.dataset_config), partition_date(self.partition_date, context), storage
