"""Read a day's source data into an Arrow table of the dataset's exact schema.

Files are parsed column-wise by pyarrow's multi-threaded readers with the configured types applied
while parsing (no second casting pass, never a Python loop over rows). Anything that does not fit
the schema raises ``SourceDataError`` naming the file, the column and the offending value, so the
file can be quarantined with a report that says what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Source = str | IO[bytes]  # a local path (fastest: native I/O) or a binary file object

NULL_VALUES = ["", "NULL", "null"]
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


def read_source(source: Source, fmt: str, schema: pa.Schema, *, name: str) -> pa.Table:
    """Read one file of format ``fmt`` (csv, parquet, jsonl) as a table of exactly ``schema``.

    :param name: how to call the file in error messages (its URI).
    :raises SourceDataError: empty file, unreadable file, missing / extra / duplicated columns,
        invalid UTF-8, or a value that does not parse as its column's type.
    """
    import pyarrow as pa

    readers = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}
    if fmt not in readers:
        raise ValueError(f"Unknown source format {fmt!r}: expected one of {', '.join(readers)}")
    if _is_empty(source):
        raise SourceDataError(name, ["the file is empty (0 bytes)"])
    try:
        table = readers[fmt](source, schema, name)
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"not a readable {fmt} file: {_error_text(err)}"]) from None
    return table.select(schema.names)


def concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """Concatenate per-file tables of one schema (zero rows if there are none)."""
    import pyarrow as pa

    return pa.concat_tables(tables) if tables else schema.empty_table()


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


def _read_csv(source: Source, schema: pa.Schema, name: str) -> pa.Table:
    import pyarrow as pa
    from pyarrow import csv

    header = _header(source, name)
    _check_columns(header, schema, name)
    try:
        return csv.read_csv(
            source,
            read_options=csv.ReadOptions(use_threads=True, block_size=8 << 20),
            convert_options=csv.ConvertOptions(
                column_types=schema,
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
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


def _read_parquet(source: Source, schema: pa.Schema, name: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    _check_columns(table.column_names, schema, name)
    # Parquet readers do not check that string columns hold UTF-8; a full validation does.
    for field in table.schema:
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            try:
                table.column(field.name).validate(full=True)
            except pa.ArrowInvalid:
                raise SourceDataError(
                    name, [f"column {field.name!r} holds bytes that are not valid UTF-8"]
                ) from None
    return _cast_columns(table, schema, name)


def _read_jsonl(source: Source, schema: pa.Schema, name: str) -> pa.Table:
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
        table = pajson.read_json(
            source,
            read_options=pajson.ReadOptions(use_threads=True, block_size=8 << 20),
            parse_options=pajson.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="error"),
        )
    except pa.ArrowInvalid as err:
        raise SourceDataError(name, [f"cannot parse: {_error_text(err)}"]) from None
    return _cast_columns(table.select(schema.names), schema, name)


def _cast_columns(table: pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    """Cast each column to its schema type (safe casts only), naming every column that fails."""
    import pyarrow as pa

    columns, problems = [], []
    for field in schema:
        column = table.column(field.name)
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            problems.append(f"column {field.name!r} is {column.type}, not {field.type}: {_error_text(err)}")
    if problems:
        raise SourceDataError(name, problems)
    return pa.Table.from_arrays(columns, schema=schema)


def _error_text(err: Exception) -> str:
    """The first line of an exception's message (Arrow appends multi-line context)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
