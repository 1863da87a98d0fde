"""Dataset configuration: one YAML file per dataset, everything the pipeline knows about its data.

A second dataset is added by writing its file (and its expectation suite), nothing else::

    name: churn
    source: {uri: "{{ data_root }}/landing/churn/{{ ds }}.csv", format: csv}
    schema: {customer_id: string, snapshot_ts: timestamp, tenure_months: int64, ...}
    keys: [customer_id]
    target: {column: churned, classes: [0, 1]}
    features: {numeric: [...], categorical: [...], boolean: [...]}
    expectations: expectations/churn.json      # relative to the YAML file's parent folder
    timezone: Europe/Paris                      # of timestamps without an offset (default UTC)
    ingest: {schedule: "@daily", max_active_runs: 4}   # the ingest DAG (core.pipeline_config)

The structure is checked against ``schemas/dataset.schema.json`` first (unknown keys are errors),
then what a schema cannot say (columns that must exist); every problem is named at once. Nothing
here touches Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_provider.core.config_keys import ConfigError
from mlops_provider.core.config_schema import schema_problems
from mlops_provider.core.pipeline_config import INGEST_DEFAULTS, DagSettings, check_timezone, dag_settings

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_FORMATS = ("csv", "parquet", "jsonl")
FEATURE_KINDS = ("numeric", "categorical", "boolean")
# The column type vocabulary of dataset files, and the Arrow type each one means.
COLUMN_TYPES = ("string", "int32", "int64", "float32", "float64", "bool", "date", "timestamp")


class DatasetConfigError(ConfigError):
    """A dataset configuration file is missing or malformed; the message names the problem."""


def arrow_type(name: str) -> pa.DataType:
    """Return the Arrow type of a column type name (timestamps are microseconds in UTC)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return types[name]


@dataclass(frozen=True)
class SourceConfig:
    """Where a day's raw data comes from: files by URI (templated) or a SQL query on a connection."""

    uri: str | None = None
    format: str = "csv"
    sql: str | None = None
    conn_id: str | None = None
    #: URI prefixes (templated) a run-time ``source_uri`` override must stay inside.
    allowed_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetConfig:
    """A validated dataset configuration."""

    name: str
    schema: dict[str, str]
    keys: list[str]
    target: str
    target_classes: list[Any]
    features: dict[str, list[str]]
    source: SourceConfig
    expectations_path: Path
    description: str = ""
    timestamp_column: str | None = None
    #: IANA time zone of timestamp values without an offset, and of the partition day's boundaries.
    timezone: str = "UTC"
    #: rows whose timestamp lies outside the partition's day by more than this are refused.
    timestamp_tolerance_minutes: int = 0
    ingest: DagSettings = INGEST_DEFAULTS
    config_path: Path | None = field(default=None, compare=False)

    @property
    def task_kind(self) -> str:
        """``binary`` (two classes), ``multiclass`` (more) or ``regression`` (no classes)."""
        if not self.target_classes:
            return "regression"
        return "binary" if len(self.target_classes) == 2 else "multiclass"

    @property
    def feature_columns(self) -> list[str]:
        """All feature columns, in the order numeric, categorical, boolean."""
        return [c for kind in FEATURE_KINDS for c in self.features.get(kind, [])]

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema every partition of this dataset has, in configured column order."""
        import pyarrow as pa

        return pa.schema([pa.field(name, arrow_type(kind)) for name, kind in self.schema.items()])

    def load_expectation_suite(self) -> dict:
        """Return the dataset's Great Expectations suite as its JSON dict."""
        import json

        try:
            return json.loads(self.expectations_path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetConfigError(
                f"Cannot read expectation suite {self.expectations_path}: {err}"
            ) from None


def read_config_mapping(path: Path, error: type[ValueError], what: str) -> dict:
    """The top-level mapping of a YAML configuration file; ``error`` names what is wrong otherwise.

    :param what: the kind of configuration, for messages (``dataset``, ``model``).
    """
    import yaml

    # libyaml's loader when PyYAML was built with it: ~10x faster, which the DAG factory feels.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(path.read_text(), Loader=loader)
    except FileNotFoundError:
        raise error(f"No {what} configuration at {path}") from None
    except (OSError, yaml.YAMLError) as err:
        raise error(f"Cannot read {what} configuration {path}: {err}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return raw


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset YAML file.

    :raises DatasetConfigError: the file is missing, not YAML, or inconsistent (every problem found
        is listed in the message).
    """
    path = Path(path)
    raw = read_config_mapping(path, DatasetConfigError, "dataset")
    return parse_dataset_config(raw, base_dir=path.parent, config_path=path)


def parse_dataset_config(raw: dict, *, base_dir: Path, config_path: Path | None = None) -> DatasetConfig:
    """Validate a dataset configuration given as a dict (the parsed YAML)."""
    where = f"{config_path}: " if config_path else ""
    problems = schema_problems("dataset", raw)
    if problems:
        raise DatasetConfigError(f"{where}invalid dataset configuration: " + "; ".join(problems), problems)
    # The schema guarantees the structure (types, required keys, known keys, column types); what
    # follows checks what it cannot: names that must refer to each other.
    name = raw["name"]
    schema = {str(col): str(kind) for col, kind in raw["schema"].items()}

    def known_columns(label: str, columns: list[str]) -> list[str]:
        problems.extend(
            f"'{label}' names {c!r}, which is not in 'schema'" for c in columns if c not in schema
        )
        return list(columns)

    keys = known_columns("keys", raw.get("keys", []))
    target = raw["target"]["column"]
    if target not in schema:
        problems.append("'target.column' must name a column of 'schema'")
    # No classes: a regression target (the schema asks for at least two when they are listed).
    classes = raw["target"].get("classes", [])
    if len({str(c) for c in classes}) != len(classes):
        problems.append("'target.classes' lists a class twice")

    features = {
        kind: known_columns(f"features.{kind}", raw["features"].get(kind, [])) for kind in FEATURE_KINDS
    }
    all_features = [c for cols in features.values() for c in cols]
    if not all_features:
        problems.append("'features' lists no column")
    if target in all_features:
        problems.append(f"the target {target!r} is also listed as a feature")

    timestamp = raw.get("timestamp")
    if timestamp is not None and schema.get(timestamp) not in ("timestamp", "date"):
        problems.append(f"'timestamp' must name a timestamp or date column, not {timestamp!r}")

    source = _parse_source(raw["source"], problems)
    timezone = str(raw.get("timezone", "UTC"))
    try:
        check_timezone(timezone, "'timezone'")
    except ValueError as err:
        problems.append(str(err))
    try:
        ingest = dag_settings(raw, "ingest", INGEST_DEFAULTS)
    except ValueError as err:
        problems.append(str(err))
        ingest = INGEST_DEFAULTS
    expectations_path = (base_dir / raw["expectations"]).resolve()

    if problems:
        raise DatasetConfigError(f"{where}invalid dataset configuration: " + "; ".join(problems), problems)
    return DatasetConfig(
        name=name,
        schema=schema,
        keys=keys,
        target=target,
        target_classes=list(classes),
        features=features,
        source=source,
        expectations_path=expectations_path,
        description=str(raw.get("description", "")),
        timestamp_column=timestamp,
        timezone=timezone,
        timestamp_tolerance_minutes=int(raw.get("timestamp_tolerance_minutes", 0)),
        ingest=ingest,
        config_path=config_path,
    )


def _parse_source(raw: dict[str, Any], problems: list[str]) -> SourceConfig:
    source = SourceConfig(
        uri=raw.get("uri"),
        format=raw.get("format", "csv"),
        sql=raw.get("sql"),
        conn_id=raw.get("conn_id"),
        allowed_uris=tuple(raw.get("allowed_uris") or ()),
    )
    if bool(source.uri) == bool(source.sql):
        problems.append("'source' needs exactly one of 'uri' or 'sql'")
    if source.sql and not source.conn_id:
        problems.append("'source.sql' needs 'source.conn_id'")
    return source
