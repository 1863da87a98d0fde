"""The Airflow assets the pipelines produce and consume, named once for every DAG."""

from __future__ import annotations

from airflow.sdk import Asset

from mlops_provider.core.partitions import validate_dataset_name


def validated_data_asset(dataset: str) -> Asset:
    """The asset updated each time a partition of ``dataset`` is published to ``validated/``.

    Declared by the dataset's ingest DAG (outlet of ``validate``) and, when a model trains on new
    data, by its training DAG's schedule, both when the DAGs are parsed: no asset is created at run time.
    """
    validate_dataset_name(dataset)
    # An "x-" scheme is a private one: Airflow neither normalises it nor loads every provider's URI
    # handlers to try (which would import boto3 through the amazon provider when a DAG is parsed).
    return Asset(name=f"mlops.{dataset}.validated", uri=f"x-mlops://{dataset}/validated", group="mlops")
