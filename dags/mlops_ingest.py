"""
### `mlops_ingest`: daily ingest and validation

Each run takes **one day** of a dataset's raw data (the run's data interval), and:

1. **ingest**: reads the day's source (files by URI or glob, CSV / Parquet / JSON lines, or a SQL
   query), types it to the dataset's schema and publishes it as `raw/ds=YYYY-MM-DD/`;
2. **validate**: runs the dataset's Great Expectations suite, stores the report
   (`reports/validation/ds=YYYY-MM-DD/`, button *Validation report*), and publishes the day to
   `validated/`, updating the asset `mlops.<dataset>.validated` (extra: partition, rows, sha256).

Bad data never reaches `validated/`: a file that does not fit the schema, or a day that fails its
expectations, goes to `quarantine/` with a report, and the task fails **without retry** with a
message naming what is wrong. Fix the data at the source, then *Clear* the run.

**Backfills and re-runs** replace exactly that day's partitions and touch no other date.
**Runs without a logical date** (REST with `logical_date: null`) must set `partition_date`.

Params: `dataset` (a file `include/datasets/<dataset>.yaml`), `partition_date`, and a
`source_uri` / `source_format` override for one-off loads.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from mlops_provider.assets import VALIDATED_DATA_ALIAS
from mlops_provider.dag_defaults import config_name_param, default_args
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from mlops_provider.operators.validation import GXValidatePartitionOperator

DATASETS_DIR = Path(__file__).resolve().parent.parent / "include" / "datasets"
DATASET_CONFIG = f"{DATASETS_DIR}/{{{{ params.dataset }}}}.yaml"

with DAG(
    dag_id="mlops_ingest",
    description="Daily ingest of raw data, validated with Great Expectations, published by date",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args=default_args(retries=3),
    params={
        "dataset": config_name_param("dataset", DATASETS_DIR),
        "partition_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Partition date",
            description="Day to process (YYYY-MM-DD). Empty: the run's logical date (ds).",
        ),
        "source_uri": Param(
            None,
            type=["null", "string"],
            pattern=r"^(file|s3)://[^\s]+$",
            title="Source URI override",
            description="file:// or s3:// URI or glob to read instead of the configured source.",
        ),
        "source_format": Param(
            None,
            type=["null", "string"],
            enum=[None, "csv", "parquet", "jsonl"],
            title="Source format override",
        ),
    },
    tags=["mlops", "ingest", "data-quality"],
    doc_md=__doc__,
) as dag:
    ingest = DatasetIngestPartitionOperator(
        task_id="ingest",
        dataset_config=DATASET_CONFIG,
        partition_date="{{ params.partition_date or '' }}",
        source_uri="{{ params.source_uri or '' }}",
        source_format="{{ params.source_format or '' }}",
        doc_md="Read the day's source, type it to the dataset's schema, publish `raw/`.",
    )
    validate = GXValidatePartitionOperator(
        task_id="validate",
        dataset_config=DATASET_CONFIG,
        partition_date="{{ params.partition_date or '' }}",
        outlets=[VALIDATED_DATA_ALIAS],
        retries=1,
        doc_md="Run the expectation suite; publish to `validated/` or move to `quarantine/`.",
    )
    ingest >> validate
