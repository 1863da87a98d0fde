"""DatasetIngestPartitionOperator: a day's raw data, from files or SQL, published as a raw partition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, cast

from airflow.sdk import BaseHook

from mlops_provider.exceptions import InvalidConfigurationError, SourceRejectedError
from mlops_provider.operators._common import DatasetPartitionOperator, run_lineage

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from datetime import date

    import pyarrow as pa
    from airflow.sdk import Context, ObjectStoragePath

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.ingest import PrefetchedBatches, SourceDataError
    from mlops_provider.hooks.storage import DatasetStorageHook


class DatasetIngestPartitionOperator(DatasetPartitionOperator):
    """Read one day of a dataset's source data and publish it, typed, as its ``raw`` partition.

    The source is the dataset configuration's ``source`` (a file URI or glob, or a SQL query on an
    Airflow SQL connection), unless overridden here. Both are rendered with the task's template
    context plus ``data_root``. Re-running a day replaces that day's raw partition wholesale.

    A ``source_uri`` override may only read inside the locations the configuration allows:
    ``source.allowed_uris`` (URI prefixes, rendered like ``source.uri``), or, when that is empty, the
    folder of ``source.uri`` before its first run-dependent part (``core.source_policy``). Anything
    else fails without retry before a byte is read.

    Timestamps without an offset are read in the dataset's ``timezone``. When the dataset declares a
    ``timestamp`` column, rows outside the partition's day (in that time zone, widened by
    ``timestamp_tolerance_minutes``) reject the source.

    A source that does not fit the configured schema (missing / extra columns, wrong types,
    invalid UTF-8, unreadable file, rows of another day) is copied to ``quarantine/`` with a
    rejection report and the task fails without retry, naming the problem (quoting the file only
    in short escaped excerpts).

    :param dataset_config: path of the dataset's YAML configuration. (templated)
    :param partition_date: the day to ingest, ``YYYY-MM-DD``; empty: the logical date (``ds``).
        (templated)
    :param source_uri: file URI or glob overriding the configured source, inside the allowed
        locations. (templated)
    :param source_format: csv, parquet or jsonl, with ``source_uri``.
    :param sql: SQL query overriding the configured source. (templated)
    :param sql_conn_id: connection of ``sql`` (any ``DbApiHook`` connection).
    :param data_root: storage root URI; default ``[mlops] data_root``.
    :param storage_conn_id: ``aws`` connection for ``s3://``; default ``[mlops] storage_conn_id``.
    :return: ``{dataset, ds, uri, row_count, sha256, source}``.
    """

    template_fields: Sequence[str] = (
        "dataset_config",
        "partition_date",
        "source_uri",
        "source_format",
        "sql",
    )
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        source_uri: str | None = None,
        source_format: str | None = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_uri = source_uri
        self.source_format = source_format
        self.sql = sql
        self.sql_conn_id = sql_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.ingest import SourceDataError

        config, ds, storage = self.resolve(context)
        files, data, source = self._open_source(storage, config, ds, context)
        try:
            # Files are parsed while the partition is written: a bad block met half-way raises
            # here, before anything is published.
            manifest = storage.write_partition(
                config.name, "raw", ds, data, source=source, produced_by=run_lineage(context)
            )
        except SourceDataError as err:
            self._reject(storage, config, ds, files, err, source)
        return {
            "dataset": config.name,
            "ds": manifest.ds,
            "uri": storage.partition_uri(config.name, "raw", ds),
            "row_count": manifest.row_count,
            "sha256": manifest.sha256,
            "source": source,
        }

    def _open_source(
        self, storage: DatasetStorageHook, config: DatasetConfig, ds: date, context: Context
    ) -> tuple[list[ObjectStoragePath], PrefetchedBatches | pa.Table, str]:
        """The day's source as ``(files read, data stream, source description)``: the ``source_uri``
        override (inside ``allowed_uris``), else the configured URI, else the SQL query (``sql`` or the
        configured one).
        """
        # ``ds`` is the partition date, so an explicit partition_date renders the same source a
        # scheduled run of that day would read (and runs without a logical date can render at all).
        # ``data_root`` is no Context key: the mapping is typed as one for ``render_template``.
        render_context = cast(
            "Context",
            {
                **context,
                "ds": ds.isoformat(),
                "ds_nodash": ds.strftime("%Y%m%d"),
                "data_root": storage.uri_of(storage.root),
            },
        )
        if self.source_uri:
            allowed = self._allowed_locations(config, render_context)
            return self._stream_files(storage, config, ds, self.source_uri, allowed)
        if config.source.uri and not self.sql:
            uri = self.render_template(config.source.uri, render_context)
            return self._stream_files(storage, config, ds, uri, None)
        sql = self.sql or self.render_template(config.source.sql, render_context)
        data, source = self._read_sql(storage, config, ds, sql)
        return [], data, source

    def _allowed_locations(self, config: DatasetConfig, render_context: Context) -> list[str]:
        """Where a ``source_uri`` override may read, rendered: ``source.allowed_uris``, or the
        configured location (the folder of ``source.uri`` before its first run-dependent part)."""
        from mlops_provider.core.source_policy import configured_location

        templates = list(config.source.allowed_uris)
        if not templates and config.source.uri:
            templates = [t for t in [configured_location(config.source.uri)] if t]
        return [self.render_template(template, render_context) for template in templates]

    def _stream_files(
        self, storage: DatasetStorageHook, config: DatasetConfig, ds: date, uri: str, within: list[str] | None
    ) -> tuple[list[ObjectStoragePath], PrefetchedBatches, str]:
        """The source files, and a reader that streams them in order as batches of the schema.

        Nothing is read until the reader is consumed; the next blocks are parsed in a background
        thread while the previous ones are written (see ``core.ingest.prefetch``).

        :param within: the allowed locations of an override (None: ``uri`` is the configured one).
        """
        from mlops_provider.core.datasets import SOURCE_FORMATS
        from mlops_provider.core.ingest import iter_source, prefetch

        fmt = self.source_format or config.source.format
        if fmt not in SOURCE_FORMATS:
            raise InvalidConfigurationError(f"Unknown source format {fmt!r}: use {', '.join(SOURCE_FORMATS)}")
        schema = config.arrow_schema()
        files = storage.resolve_source(uri, within=within)
        self.log.info("Reading %d %s file(s) for %s %s from %s", len(files), fmt, config.name, ds, uri)

        def batches() -> Iterator[pa.RecordBatch]:
            for path in files:
                name = storage.uri_of(path)
                if path.protocol in ("file", "local", ""):
                    yield from iter_source(path.path, fmt, schema, name=name, timezone=config.timezone)
                else:
                    with path.open("rb") as handle:
                        yield from iter_source(handle, fmt, schema, name=name, timezone=config.timezone)

        return files, prefetch(schema, self._in_day(config, ds, batches(), uri)), uri

    @staticmethod
    def _in_day(config: DatasetConfig, ds: date, batches: Iterable[Any], name: str) -> Iterable[Any]:
        """``batches``, refused at their end if rows lie outside the partition's day (when the dataset
        declares a timestamp column; see ``core.ingest.refuse_rows_outside_day``)."""
        from mlops_provider.core.ingest import refuse_rows_outside_day

        if not config.timestamp_column:
            return batches
        return refuse_rows_outside_day(
            batches,
            column=config.timestamp_column,
            day=ds,
            timezone=config.timezone,
            tolerance_minutes=config.timestamp_tolerance_minutes,
            name=name,
        )

    def _read_sql(
        self, storage: DatasetStorageHook, config: DatasetConfig, ds: date, sql: str
    ) -> tuple[pa.Table, str]:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from mlops_provider.core.ingest import SourceDataError, table_from_dataframe

        conn_id = self.sql_conn_id or config.source.conn_id
        if not conn_id:
            raise InvalidConfigurationError("A SQL source needs a connection id (sql_conn_id).")
        hook = BaseHook.get_connection(conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise InvalidConfigurationError(f"Connection {conn_id!r} is not a SQL connection.")
        self.log.info("Querying %s for %s %s", conn_id, config.name, ds)
        frame = hook.get_df(sql, df_type="pandas")
        source = f"sql://{conn_id}"
        try:
            table = table_from_dataframe(frame, config.arrow_schema(), name=source, timezone=config.timezone)
            (table,) = self._in_day(config, ds, [table], source)
            return table, source
        except SourceDataError as err:
            self._reject(storage, config, ds, [], err, source)

    def _reject(
        self,
        storage: DatasetStorageHook,
        config: DatasetConfig,
        ds: date,
        files: list[ObjectStoragePath],
        err: SourceDataError,
        source: str,
    ) -> NoReturn:
        rejection = {
            "dataset": config.name,
            "ds": ds.isoformat(),
            "source": source,
            "file": err.source_name,
            "problems": err.problems,
            "stage": "ingest",
        }
        where = storage.quarantine_files(config.name, ds, files, rejection)
        raise SourceRejectedError(
            f"Rejected the source of {config.name} {ds}: {err}. Quarantined with a report at {where}; "
            "fix or replace it at the source, then clear this task."
        )
