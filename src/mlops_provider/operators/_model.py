"""Glue shared by the training operators: model config, window end, reading the recorded partitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.exceptions import (
    InvalidConfigurationError,
    PartitionIntegrityError,
    PartitionNotFoundError,
)
from mlops_provider.hooks.mlflow import MLflowHook
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators._common import RunConfCheckedOperator

if TYPE_CHECKING:
    from datetime import date

    import pandas as pd
    from airflow.sdk import Context

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.models import ModelConfig


def load_model_config(path: str) -> tuple[ModelConfig, DatasetConfig]:
    """Load a model configuration and its dataset's; a bad file fails the task without retry."""
    from mlops_provider.core.datasets import DatasetConfigError
    from mlops_provider.core.models import ModelConfigError
    from mlops_provider.core.models import load_model_config as load

    try:
        model = load(path)
        return model, model.load_dataset_config()
    except (ModelConfigError, DatasetConfigError) as err:
        raise InvalidConfigurationError(str(err)) from None


def resolve_window_end(explicit: str | None, context: Context) -> date:
    """The last day of the training window: ``explicit``, else the logical date, else ``run_after``.

    Runs triggered through the REST API or by an asset event often have no logical date; the day
    the run was due (``run_after``) is then the natural end of the window.
    """
    from mlops_provider.core.partitions import resolve_partition_date

    dag_run = context.get("dag_run")
    fallback = context.get("logical_date") or getattr(dag_run, "run_after", None)
    try:
        return resolve_partition_date(explicit, fallback)
    except ValueError as err:
        raise InvalidConfigurationError(str(err)) from None


def as_bool(value: Any) -> bool:
    """A templated boolean (rendered as text unless the DAG renders native objects)."""
    return str(value).strip().lower() in ("true", "1", "yes")


def bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """A templated integer within ``[low, high]``; anything else fails the task without retry."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidConfigurationError(f"{name} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise InvalidConfigurationError(f"{name} must be between {low} and {high}, not {number}")
    return number


def read_recorded_partitions(
    storage: DatasetStorageHook, dataset: str, partitions: list[dict[str, Any]]
) -> pd.DataFrame:
    """Read the validated partitions recorded in lineage, refusing any that changed since.

    Each entry has ``ds`` and ``sha256``; a partition re-published since it was recorded fails
    the task, so a model is never trained on data other than what its lineage names. An entry
    with a ``split`` (``{"part", "seed", "shares", "stratify_by"}``, see
    :func:`~mlops_provider.core.training.row_parts`) contributes only the rows of that part.
    """
    import pyarrow as pa

    from mlops_provider.core.training import row_parts

    tables = []
    for part in partitions:
        try:
            table = storage.read_partition(dataset, "validated", part["ds"], expected_sha256=part["sha256"])
        except PartitionNotFoundError as err:
            raise PartitionIntegrityError(f"{err}, although the run recorded it: re-run the DAG") from None
        split = part.get("split")
        if split:
            strata = split.get("stratify_by")
            parts = row_parts(
                table.num_rows,
                seed=split["seed"],
                strata=table.column(strata).to_numpy(zero_copy_only=False) if strata else None,
                shares=split["shares"],
            )
            table = table.filter(parts == list(split["shares"]).index(split["part"]))
        tables.append(table)
    return pa.concat_tables(tables).to_pandas()


class ModelOperator(RunConfCheckedOperator):
    """Base of the operators that work on one configured model.

    :param model_config: path of the model's YAML configuration. (templated)
    :param mlflow_conn_id: the ``mlflow`` connection; default ``[mlops] mlflow_conn_id``.
    :param data_root: storage root URI; default ``[mlops] data_root``.
    :param storage_conn_id: ``aws`` connection for ``s3://``; default ``[mlops] storage_conn_id``.
    """

    def __init__(
        self,
        *,
        model_config: str,
        mlflow_conn_id: str | None = None,
        data_root: str | None = None,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_config = model_config
        self.mlflow_conn_id = mlflow_conn_id
        self.data_root = data_root
        self.storage_conn_id = storage_conn_id

    def mlflow_hook(self) -> MLflowHook:
        from airflow.sdk import conf

        conn_id = self.mlflow_conn_id or conf.get("mlops", "mlflow_conn_id", fallback="mlflow_default")
        return MLflowHook(mlflow_conn_id=conn_id)

    def storage_hook(self) -> DatasetStorageHook:
        return DatasetStorageHook(root_uri=self.data_root, storage_conn_id=self.storage_conn_id)
