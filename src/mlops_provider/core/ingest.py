"""Read a day's source data as Arrow record batches of the dataset's exact schema.

Files are streamed: parsed block by block by pyarrow's readers with the configured types applied
while parsing (no second casting pass, never a Python loop over rows), so memory does not grow with
the size of the file. Anything that does not fit the schema raises ``SourceDataError`` naming the
file, the column and the offending value, so the file can be quarantined with a report that says
what is wrong; when streaming, the error is raised by the iteration that meets the bad block.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import pandas as pd
    import pyarrow as pa

Source = str | IO[bytes]  # a local path (fastest: native I/O) or a binary file object

NULL_VALUES = ["", "NULL", "null"]
BLOCK_SIZE = 8 << 20  # bytes of text parsed at a time (CSV, JSON lines)
PARQUET_BATCH_ROWS = 128 * 1024  # rows read at a time from a Parquet source
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")
_ROW = re.compile(r"Row #(\d+)")


class SourceDataError(ValueError):
    """The source cannot be read as the configured schema.

    :param problems: one short sentence per problem found, for the quarantine report.
    """

    def __init__(self, source_name: str, problems: list[str]) -> None:
        self.source_name = source_name
        self.problems = problems
        super().__init__(f"{source_name}: " + "; ".join(problems))


def iter_source(source: Source, fmt: str, schema: pa.Schema, *, name: str) -> Iterator[pa.RecordBatch]:
    """Stream one file of format ``fmt`` (csv, parquet, jsonl) as record batches of exactly ``schema``.

    The header (or first record, or Parquet footer) is checked when iteration starts; every block is
    checked as it is parsed. A file object must stay open until the iteration ends.

    :param name: how to call the file in error messages (its URI).
    :raises SourceDataError: empty file, unreadable file, missing / extra / duplicated columns,
        invalid UTF-8, or a value that does not parse as its column's type.
    """
    readers = {"csv": _stream_csv, "parquet": _stream_parquet, "jsonl": _stream_jsonl}
    if fmt not in readers:
        raise ValueError(f"Unknown source format {fmt!r}: expected one of {', '.join(readers)}")
    return _checked(readers[fmt], source, schema, name, fmt)


def read_source(source: Source, fmt: str, schema: pa.Schema, *, name: str) -> pa.Table:
    """Read one whole file as a table of exactly ``schema`` (see :func:`iter_source`)."""
    import pyarrow as pa

    return pa.Table.from_batches(list(iter_source(source, fmt, schema, name=name)), schema=schema)


def prefetch(schema: pa.Schema, batches: Iterable[pa.RecordBatch], depth: int = 8) -> PrefetchedBatches:
    """``batches`` with the next ones parsed in a background thread while the consumer works.

    Parsing (pyarrow, without the GIL) then overlaps with whatever the consumer does with the
    previous batch, e.g. encoding it as Parquet. At most ``depth`` batches wait in between, so memory
    stays bounded. An exception raised by ``batches`` is raised again, unchanged, to the consumer.
    """
    return PrefetchedBatches(schema, batches, depth)


class PrefetchedBatches:
    """Record batches of ``schema``, read ahead by a thread; iterate once, then (or early) ``close``.

    Quacks like the part of ``pyarrow.RecordBatchReader`` a writer uses (``schema``, iteration,
    ``close``), but ``close`` really stops the thread: a ``RecordBatchReader`` made from a Python
    generator keeps the generator (and so the thread) alive until it is garbage collected.
    """

    def __init__(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch], depth: int) -> None:
        self.schema = schema
        self._batches = _ahead(batches, depth)  # the thread starts with the first batch asked for

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._batches

    def close(self) -> None:
        self._batches.close()

    def __enter__(self) -> PrefetchedBatches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_END = object()


def _ahead(batches: Iterable[pa.RecordBatch], depth: int) -> Iterator[pa.RecordBatch]:
    pending: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        item: object = _END
        try:
            for batch in batches:
                if stop.is_set():
                    return
                pending.put(batch)
        except BaseException as err:  # handed to the consumer, raised there
            item = err
        if not stop.is_set():
            pending.put(item)

    thread = threading.Thread(target=produce, name="mlops-source-prefetch", daemon=True)
    thread.start()
    try:
        while (item := pending.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Done, failed or closed early: once ``stop`` is set the producer puts at most one more
        # item, and emptying the queue makes room for it, so the join cannot wait for ever.
        stop.set()
        while True:
            try:
                pending.get_nowait()
            except queue.Empty:
                break
        thread.join()


def _checked(stream, source: Source, schema: pa.Schema, name: str, fmt: str) -> Iterator[pa.RecordBatch]:
    """Run a format's streaming reader, turning what pyarrow cannot read into ``SourceDataError``."""
    import pyarrow as pa

    if _is_empty(source):
        raise SourceDataError(name, ["the file is empty (0 bytes)"])
    try:
        for batch in stream(source, schema, name):
            yield batch.select(schema.names)
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"not a readable {fmt} file: {_error_text(err)}"]) from None


def table_from_dataframe(frame: pd.DataFrame, schema: pa.Schema, *, name: str) -> pa.Table:
    """Convert a query result to ``schema``, with the same column checks as files.

    Databases return what their driver knows (SQLite: text timestamps, integer booleans): each
    column is taken as Arrow infers it, then safely cast to its configured type, column by column.
    """
    import pyarrow as pa

    _check_columns([str(c) for c in frame.columns], schema, name)
    try:
        inferred = pa.Table.from_pandas(frame[schema.names], preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SourceDataError(name, [f"cannot convert the result: {_error_text(err)}"]) from None
    return _cast_columns(inferred, schema, name)


def _is_empty(source: Source) -> bool:
    if isinstance(source, str):
        import os

        return os.path.getsize(source) == 0
    position = source.tell()
    empty = not source.read(1)
    source.seek(position)
    return empty


def _check_columns(found: list[str], schema: pa.Schema, name: str) -> None:
    expected = schema.names
    problems = []
    duplicated = sorted({c for c in found if found.count(c) > 1})
    if duplicated:
        problems.append(f"duplicated columns {duplicated}")
    missing = [c for c in expected if c not in found]
    if missing:
        problems.append(f"missing columns {missing}")
    extra = [c for c in found if c not in expected]
    if extra:
        problems.append(f"unexpected columns {extra}")
    if problems:
        raise SourceDataError(name, problems)


def _peek_line(source: Source) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as handle:
            return handle.readline()
    position = source.tell()
    line = source.readline()
    source.seek(position)
    return line


def _header(source: Source, name: str) -> list[str]:
    line = _peek_line(source)
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise SourceDataError(name, ["the header is not valid UTF-8"]) from None
    import csv

    return next(csv.reader([text])) if text else []


def _stream_csv(source: Source, schema: pa.Schema, name: str) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    from pyarrow import csv

    header = _header(source, name)
    _check_columns(header, schema, name)
    try:
        reader = csv.open_csv(
            source,
            read_options=csv.ReadOptions(use_threads=True, block_size=BLOCK_SIZE),
            convert_options=csv.ConvertOptions(
                column_types=schema,
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from reader
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [_describe_csv_error(err, header, schema)]) from None


def _describe_csv_error(err: Exception, header: list[str], schema: pa.Schema) -> str:
    message = _error_text(err)
    column = _CSV_COLUMN.search(message)
    row = _ROW.search(message)
    if column is None:
        return f"cannot parse: {message}"
    col_name = header[int(column.group(1))] if int(column.group(1)) < len(header) else "?"
    col_type = schema.field(col_name).type if col_name in schema.names else "?"
    detail = message.split(": ", 2)[-1] if ": " in message else message
    where = f" at data row {int(row.group(1))}" if row else ""
    if "UTF8" in message:
        return f"column {col_name!r} holds bytes that are not valid UTF-8{where}"
    return f"column {col_name!r} ({col_type}){where}: {detail}"


def _stream_parquet(source: Source, schema: pa.Schema, name: str) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    _check_columns(parquet.schema_arrow.names, schema, name)
    strings = [
        f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=True):
        # Parquet readers do not check that string columns hold UTF-8; a full validation does.
        for column in strings:
            try:
                batch.column(column).validate(full=True)
            except pa.ArrowInvalid:
                raise SourceDataError(
                    name, [f"column {column!r} holds bytes that are not valid UTF-8"]
                ) from None
        yield _cast_columns(batch, schema, name)


def _stream_jsonl(source: Source, schema: pa.Schema, name: str) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    from pyarrow import json as pajson

    first = _peek_line(source)
    try:
        record = json.loads(first)
    except (UnicodeDecodeError, ValueError):
        raise SourceDataError(name, ["the first line is not a JSON object"]) from None
    if not isinstance(record, dict):
        raise SourceDataError(name, ["the first line is not a JSON object"])
    _check_columns(list(record), schema, name)
    # pyarrow's JSON reader parses timestamps from strings but not dates: read dates as strings
    # and cast them afterwards.
    read_schema = pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_date(f.type) else f for f in schema]
    )
    try:
        reader = pajson.open_json(
            source,
            read_options=pajson.ReadOptions(use_threads=True, block_size=BLOCK_SIZE),
            parse_options=pajson.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="error"),
        )
        for batch in reader:
            yield _cast_columns(batch.select(schema.names), schema, name)
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"cannot parse: {_error_text(err)}"]) from None


def _cast_columns(data: pa.Table | pa.RecordBatch, schema: pa.Schema, name: str):
    """Cast each column of a table or batch to its schema type (safe casts only), naming every
    column that fails."""
    import pyarrow as pa

    columns, problems = [], []
    for field in schema:
        column = data.column(field.name)
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            problems.append(f"column {field.name!r} is {column.type}, not {field.type}: {_error_text(err)}")
    if problems:
        raise SourceDataError(name, problems)
    build = pa.RecordBatch.from_arrays if isinstance(data, pa.RecordBatch) else pa.Table.from_arrays
    return build(columns, schema=schema)


def _error_text(err: Exception) -> str:
    """The first line of an exception's message (Arrow appends multi-line context)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
