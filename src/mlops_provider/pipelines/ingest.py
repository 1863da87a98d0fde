"""The ingest DAG of one dataset: ``mlops_ingest__<dataset>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import DAG, Param

from mlops_provider.assets import validated_data_asset
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from mlops_provider.operators.validation import GXValidatePartitionOperator
from mlops_provider.pipelines._dag import dag_arguments, date_param
from mlops_provider.pipelines.ids import ingest_dag_id

if TYPE_CHECKING:
    from mlops_provider.core.datasets import DatasetConfig

DOC = """
### `{dag_id}`: daily ingest and validation of `{dataset}`

{description}

Each run takes **one day** of the dataset's raw data (the run's data interval), and:

1. **ingest**: reads the day's source (`{source}`), types it to the dataset's schema and publishes it
   as `raw/ds=YYYY-MM-DD/`;
2. **validate**: runs the dataset's Great Expectations suite, stores the report
   (`reports/validation/ds=YYYY-MM-DD/`, button *Validation report*), and publishes the day to
   `validated/`, updating the asset `{asset}` (extra: partition, rows, sha256).

Bad data never reaches `validated/`: a file that does not fit the schema, or a day that fails its
expectations, goes to `quarantine/` with a report, and the task fails **without retry** with a
message naming what is wrong. Fix the data at the source, then *Clear* the run.

**Backfills and re-runs** replace exactly that day's partitions and touch no other date.
**Runs without a logical date** (REST with `logical_date: null`) must set `partition_date`.
A `source_uri` override must stay inside the locations the dataset's file allows.

Configured in `{config}`.
"""

MAX_SOURCE_URI = 1024


def build_ingest_dag(dataset: DatasetConfig) -> DAG:
    """The ingest DAG of ``dataset`` (see :data:`DOC`)."""
    dag_id = ingest_dag_id(dataset.name)
    asset = validated_data_asset(dataset.name)
    config = str(dataset.config_path)
    with DAG(
        dag_id=dag_id,
        description=(dataset.description or f"Daily ingest and validation of {dataset.name}")[:200],
        params={
            "partition_date": date_param(
                "Partition date", "Day to process (YYYY-MM-DD). Empty: the run's logical date (ds)."
            ),
            "source_uri": Param(
                None,
                type=["null", "string"],
                pattern=r"^(file|s3)://[^\s]+$",
                maxLength=MAX_SOURCE_URI,
                title="Source URI override",
                description="file:// or s3:// URI or glob inside the dataset's allowed source locations.",
            ),
            "source_format": Param(
                None,
                type=["null", "string"],
                enum=[None, "csv", "parquet", "jsonl"],
                title="Source format override",
            ),
        },
        doc_md=DOC.format(
            dag_id=dag_id,
            dataset=dataset.name,
            description=dataset.description,
            source=dataset.source.uri or f"SQL on {dataset.source.conn_id}",
            asset=asset.name,
            config=config,
        ),
        **dag_arguments(dataset.ingest, tags=("ingest", "data-quality", dataset.name)),
    ) as dag:
        ingest = DatasetIngestPartitionOperator(
            task_id="ingest",
            dataset_config=config,
            partition_date="{{ params.partition_date or '' }}",
            source_uri="{{ params.source_uri or '' }}",
            source_format="{{ params.source_format or '' }}",
            doc_md="Read the day's source, type it to the dataset's schema, publish `raw/`.",
        )
        validate = GXValidatePartitionOperator(
            task_id="validate",
            dataset_config=config,
            partition_date="{{ params.partition_date or '' }}",
            outlets=[asset],
            retries=min(1, dataset.ingest.retries),  # a failed suite is final; only I/O is retried
            doc_md="Run the expectation suite; publish to `validated/` or move to `quarantine/`.",
        )
        ingest >> validate
    return dag
