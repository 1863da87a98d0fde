"""The Airflow assets the pipeline produces and consumes, named once for every DAG."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from mlops_provider.core.partitions import validate_dataset_name

#: Outlet of the validation task: resolved at run time to the asset of the dataset it validated,
#: so one DAG serves every configured dataset.
VALIDATED_DATA_ALIAS = AssetAlias("mlops.validated")


def validated_data_asset(dataset: str) -> Asset:
    """The asset updated each time a partition of ``dataset`` is published to ``validated/``."""
    validate_dataset_name(dataset)
    return Asset(name=f"mlops.{dataset}.validated", uri=f"mlops://{dataset}/validated", group="mlops")
