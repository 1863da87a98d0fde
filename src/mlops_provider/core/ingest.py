"""Read a day's source data as Arrow record batches of the dataset's exact schema.

Files are streamed: parsed block by block by pyarrow's readers with the configured types applied
while parsing (never a Python loop over rows), so memory does not grow with the size of the file.
Anything that does not fit the schema raises ``SourceDataError`` naming the file, the column and
the offending value, so the file can be quarantined with a report that says what is wrong; when
streaming, the error is raised by the iteration that meets the bad block.

A rejected file may be anything (a wrong file, a secret): its content appears in messages only as
an :func:`excerpt`, escaped and at most :data:`EXCERPT_CHARS` long, never as whole lines.

Timestamps are stored as instants in UTC. Values written with an offset (``...Z``, ``+02:00``)
keep it; values without one (``2026-10-01 15:00:08``, what pandas writes by default), and naive
timestamp columns of Parquet files and query results, are wall-clock times in the dataset's time
zone. Text timestamps are parsed after reading (a vectorised cast), since Arrow's readers take
either kind in a column, not both.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from datetime import datetime
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator
    from datetime import date, timedelta

    import pandas as pd
    import pyarrow as pa

Source = str | IO[bytes]  # a local path (fastest: native I/O) or a binary file object

NULL_VALUES = ["", "NULL", "null"]
EXCERPT_CHARS = 80  # at most this much of a file's content in any message or report
_MESSAGE_CHARS = 240  # at most this much of a reader's (pyarrow's) error message
BLOCK_SIZE = 8 << 20  # bytes of text parsed at a time (CSV, JSON lines)
PARQUET_BATCH_ROWS = 128 * 1024  # rows read at a time from a Parquet source
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")
_ROW = re.compile(r"Row #(\d+)")
_QUOTED = re.compile(r"'([^']*)'")
_LINE_TAIL = re.compile(r"(columns, got \d+: )(.*)$")  # a CSV row of the wrong width, quoted whole
# A time of day followed by a UTC offset: ``...15:00:08Z``, ``...15:00+02:00``, ``...15:00:08.5-0300``.
_HAS_OFFSET = r"\d:\d\d(:\d\d(\.\d*)?)?(Z|z|[+-]\d\d(:?\d\d)?)$"


class SourceDataError(ValueError):
    """The source cannot be read as the configured schema.

    :param problems: one short sentence per problem found, for the quarantine report.
    """

    def __init__(self, source_name: str, problems: list[str]) -> None:
        self.source_name = source_name
        self.problems = problems
        super().__init__(f"{source_name}: " + "; ".join(problems))


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """``text`` quoted and escaped for a log line or report, at most ``limit`` characters long.

    Everything outside printable ASCII is escaped (no line breaks or terminal control sequences get
    through); a longer text is cut, the cut marked with ``...``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    quoted = ascii(str(text)[:limit])
    if len(quoted) <= limit and len(str(text)) <= limit:
        return quoted
    return quoted[0] + quoted[1 : max(1, limit - 4)] + "..." + quoted[0]


def excerpt_strings(value: object, limit: int = EXCERPT_CHARS) -> object:
    """``value`` (JSON-like: dicts, lists, scalars) with every string longer than ``limit`` as an
    :func:`excerpt`, for reports that quote data values."""
    if isinstance(value, str):
        return value if len(value) <= limit else excerpt(value, limit)
    if isinstance(value, dict):
        return {key: excerpt_strings(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [excerpt_strings(item, limit) for item in value]
    return value


def iter_source(
    source: Source, fmt: str, schema: pa.Schema, *, name: str, timezone: str = "UTC"
) -> Iterator[pa.RecordBatch]:
    """Stream one file of format ``fmt`` (csv, parquet, jsonl) as record batches of exactly ``schema``.

    The header (or first record, or Parquet footer) is checked when iteration starts; every block is
    checked as it is parsed. A file object must stay open until the iteration ends.

    :param name: how to call the file in error messages (its URI).
    :param timezone: IANA zone of timestamps written without an offset (see the module docstring).
    :raises SourceDataError: empty file, unreadable file, missing / extra / duplicated columns,
        invalid UTF-8, or a value that does not parse as its column's type.
    """
    readers = {"csv": _stream_csv, "parquet": _stream_parquet, "jsonl": _stream_jsonl}
    if fmt not in readers:
        raise ValueError(f"Unknown source format {fmt!r}: expected one of {', '.join(readers)}")
    return _checked(readers[fmt], source, schema, name, fmt, timezone)


def read_source(source: Source, fmt: str, schema: pa.Schema, *, name: str, timezone: str = "UTC") -> pa.Table:
    """Read one whole file as a table of exactly ``schema`` (see :func:`iter_source`)."""
    import pyarrow as pa

    batches = iter_source(source, fmt, schema, name=name, timezone=timezone)
    return pa.Table.from_batches(list(batches), schema=schema)


def day_bounds(day: date, timezone: str = "UTC", tolerance_minutes: int = 0) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` of ``day`` in ``timezone`` (UTC datetimes), widened by the tolerance.

    The day runs from its midnight to the next one in that zone: 23 or 25 hours on the days clocks
    change.
    """
    from datetime import time, timedelta
    from datetime import timezone as tz
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    widen = timedelta(minutes=tolerance_minutes)
    start = datetime.combine(day, time(), zone) - widen
    end = datetime.combine(day + timedelta(days=1), time(), zone) + widen
    return start.astimezone(tz.utc), end.astimezone(tz.utc)


def refuse_rows_outside_day(
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    column: str,
    day: date,
    timezone: str = "UTC",
    tolerance_minutes: int = 0,
    name: str,
) -> Iterator[pa.RecordBatch | pa.Table]:
    """Hand ``batches`` on unchanged; once all are seen, refuse them if a row lies outside ``day``.

    A timestamp ``column`` must lie in :func:`day_bounds`; a date column must be ``day``, or within
    as many whole days of it as the tolerance holds (1440 minutes a day). Nulls are left to the
    expectation suite. Vectorised: a few compute kernels per batch.

    :raises SourceDataError: (after the last batch) naming how many rows lie outside and the
        earliest and latest of them, so that nothing is published (the writer commits only after
        the stream ends) and the report does not quote any row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    start, end = day_bounds(day, timezone, tolerance_minutes)
    days = timedelta_days(tolerance_minutes)
    outside = 0
    earliest: date | None = None  # datetime for a timestamp column
    latest: date | None = None
    for batch in batches:
        values = batch.column(column)
        if pa.types.is_date(values.type):
            low, high = pa.scalar(day - days, values.type), pa.scalar(day + days, values.type)
            mask = pc.or_(pc.less(values, low), pc.greater(values, high))
        else:
            low, high = pa.scalar(start, values.type), pa.scalar(end, values.type)
            mask = pc.or_(pc.less(values, low), pc.greater_equal(values, high))
        count = pc.sum(mask).as_py() or 0
        if count:
            found = pc.min_max(values.filter(mask)).as_py()
            outside += count
            earliest = found["min"] if earliest is None else min(earliest, found["min"])
            latest = found["max"] if latest is None else max(latest, found["max"])
        yield batch
    if outside and earliest is not None and latest is not None:  # both are set once a row lies outside
        allowed = f"{tolerance_minutes} min tolerance" if tolerance_minutes else "no tolerance"
        raise SourceDataError(
            name,
            [
                f"{outside:,} row{' has' if outside == 1 else 's have'} {column!r} outside the partition's "
                f"day {day.isoformat()} ({timezone}, {allowed}): earliest {earliest.isoformat()}, "
                f"latest {latest.isoformat()}; set timestamp_tolerance_minutes to accept late or "
                "early rows"
            ],
        )


def timedelta_days(tolerance_minutes: int) -> timedelta:
    """The whole days a tolerance in minutes holds (for date columns)."""
    from datetime import timedelta

    return timedelta(days=tolerance_minutes // (24 * 60))


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


def _ahead(batches: Iterable[pa.RecordBatch], depth: int) -> Generator[pa.RecordBatch, None, None]:
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


def _checked(
    stream, source: Source, schema: pa.Schema, name: str, fmt: str, timezone: str
) -> Iterator[pa.RecordBatch]:
    """Run a format's streaming reader, turning what pyarrow cannot read into ``SourceDataError``."""
    import pyarrow as pa

    if _is_empty(source):
        raise SourceDataError(name, ["the file is empty (0 bytes)"])
    try:
        for batch in stream(source, schema, name):
            yield _cast_columns(batch.select(schema.names), schema, name, timezone)
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"not a readable {fmt} file: {_error_text(err)}"]) from None


def table_from_dataframe(
    frame: pd.DataFrame, schema: pa.Schema, *, name: str, timezone: str = "UTC"
) -> pa.Table:
    """Convert a query result to ``schema``, with the same column checks as files.

    Databases return what their driver knows (SQLite: text timestamps, integer booleans; most:
    timestamps without a zone): each column is taken as Arrow infers it, then safely cast to its
    configured type, column by column; timestamps without an offset are read in ``timezone``.
    """
    import pyarrow as pa

    _check_columns([str(c) for c in frame.columns], schema, name)
    try:
        inferred = pa.Table.from_pandas(frame[schema.names], preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SourceDataError(name, [f"cannot convert the result: {_error_text(err)}"]) from None
    return _cast_columns(inferred, schema, name, timezone)


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
        problems.append(f"duplicated columns {_names(duplicated)}")
    missing = [c for c in expected if c not in found]
    if missing:
        problems.append(f"missing columns {_names(missing)}")
    extra = [c for c in found if c not in expected]
    if extra:
        problems.append(f"unexpected columns {_names(extra)}")
    if problems:
        raise SourceDataError(name, problems)


def _names(names: list[str], most: int = 10) -> str:
    """Column names as a list, each an excerpt: a header may be any line of any file."""
    shown = [excerpt(n, EXCERPT_CHARS // 2) for n in names[:most]]
    if len(names) > most:
        shown.append(f"... {len(names) - most} more")
    return f"[{', '.join(shown)}]"


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
                column_types=_timestamps_as_text(schema),
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
        return f"column {excerpt(col_name)} holds bytes that are not valid UTF-8{where}"
    return f"column {excerpt(col_name)} ({col_type}){where}: {detail}"


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
        yield batch


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
    # pyarrow's JSON reader parses no dates, and timestamps of one kind only (with or without an
    # offset): read both as strings, cast them afterwards.
    read_schema = pa.schema(
        [
            pa.field(f.name, pa.string()) if pa.types.is_date(f.type) else f
            for f in _timestamps_as_text(schema)
        ]
    )
    try:
        reader = pajson.open_json(
            source,
            read_options=pajson.ReadOptions(use_threads=True, block_size=BLOCK_SIZE),
            parse_options=pajson.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="error"),
        )
        yield from reader
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"cannot parse: {_error_text(err)}"]) from None


def _timestamps_as_text(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its zoned timestamp columns read as text (see :func:`_to_instants`)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string()) if _is_instant(f.type) else f for f in schema])


def _is_instant(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None


def _cast_columns(data: pa.Table | pa.RecordBatch, schema: pa.Schema, name: str, timezone: str = "UTC"):
    """Cast each column of a table or batch to its schema type (safe casts only), naming every
    column that fails. Timestamps without an offset are wall-clock times in ``timezone``."""
    import pyarrow as pa

    columns, problems = [], []
    for field in schema:
        column = data.column(field.name)
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            if _is_instant(field.type):
                columns.append(_to_instants(column, field.type, timezone))
            else:
                columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            problems.append(
                f"column {excerpt(field.name)} is {column.type}, not {field.type}: {_error_text(err)}"
            )
    if problems:
        raise SourceDataError(name, problems)
    build = pa.RecordBatch.from_arrays if isinstance(data, pa.RecordBatch) else pa.Table.from_arrays
    return build(columns, schema=schema)


def _to_instants(column, target: pa.DataType, timezone: str):
    """A text or timestamp column as the zoned ``target`` type (vectorised).

    Text with an offset keeps it; text without one, and a timestamp column without a zone, is a
    wall-clock time in ``timezone``. A wall-clock time that does not exist there or exists twice
    (the hour clocks skip or repeat) is an error: the instant it means cannot be known.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wall_clock = pa.timestamp(target.unit)
    if pa.types.is_timestamp(column.type):
        return column.cast(target, safe=True) if column.type.tz else _localize(column, target, timezone)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column.cast(target, safe=True)
    try:
        return column.cast(target, safe=True)  # every value has an offset: the usual case, one pass
    except pa.ArrowInvalid:
        pass
    has_offset = pc.match_substring_regex(column, _HAS_OFFSET)
    if not pc.any(has_offset).as_py():
        return _localize(column.cast(wall_clock, safe=True), target, timezone)
    with_offset = pc.if_else(has_offset, column, None).cast(target, safe=True)
    without = _localize(pc.if_else(has_offset, None, column).cast(wall_clock, safe=True), target, timezone)
    return pc.if_else(has_offset, with_offset, without)


def _localize(wall_clock, target: pa.DataType, timezone: str):
    """Timestamps without a zone, read as wall-clock times in ``timezone``, as ``target`` instants."""
    import pyarrow.compute as pc

    if timezone == "UTC":
        return wall_clock.cast(target, safe=True)
    zoned = pc.assume_timezone(wall_clock, timezone=timezone, ambiguous="raise", nonexistent="raise")
    return zoned.cast(target, safe=True)


def _error_text(err: Exception) -> str:
    """The first line of a reader's error message, made safe to show.

    Arrow quotes the offending values (``invalid value '...'``) and whole rows (``Expected 14
    columns, got 3: <row>``) of the file: those become excerpts, everything is escaped, and the
    message is cut at ``_MESSAGE_CHARS``.
    """
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    head, tail = line, ""
    if (row := _LINE_TAIL.search(line)) is not None:
        head, tail = line[: row.start(2)], excerpt(row.group(2))
    head = _QUOTED.sub(lambda match: excerpt(match.group(1)), head)
    shown = "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in head + tail)
    return shown if len(shown) <= _MESSAGE_CHARS else shown[: _MESSAGE_CHARS - 3] + "..."
