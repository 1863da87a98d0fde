"""Reading sources into the dataset's schema: every malformed input gets a message naming it."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.core.datasets import load_dataset_config
from mlops_provider.core.ingest import SourceDataError, read_source, table_from_dataframe
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

SCHEMA = load_dataset_config(REPO_ROOT / "include" / "datasets" / "churn.yaml").arrow_schema()
HEADER = ",".join(SCHEMA.names)
ROW = "C000000001,2026-01-01 10:00:00.000000Z,2020-01-05,12,70.5,,2,month_to_month,credit_card,dsl,north,true,,0"
GOOD_CSV = f"{HEADER}\n{ROW}\n{ROW.replace('C000000001', 'C000000002')}\n"


def _write(tmp_path, name: str, payload: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


@pytest.mark.parametrize("as_file_object", [False, True], ids=["path", "file-object"])
def test_good_csv_is_typed_while_parsing(tmp_path, as_file_object):
    path = _write(tmp_path, "good.csv", GOOD_CSV.encode())
    source = open(path, "rb") if as_file_object else path  # noqa: SIM115
    table = read_source(source, "csv", SCHEMA, name="good.csv")

    assert table.schema == SCHEMA
    assert table.num_rows == 2
    row = table.slice(0, 1).to_pylist()[0]
    assert row["snapshot_ts"].isoformat() == "2026-01-01T10:00:00+00:00"
    assert row["total_charges"] is None
    assert row["paperless_billing"] is None
    assert row["has_partner"] is True


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "the file is empty"),
        (GOOD_CSV.replace(",70.5,", ",n/a,").encode(), "column 'monthly_charges' (double)"),
        (
            GOOD_CSV.replace("north", "s\xfcd").encode("latin-1"),
            "'region' holds bytes that are not valid UTF-8",
        ),
        (
            GOOD_CSV.replace("monthly_charges,", "").replace(",70.5,", ",").encode(),
            "missing columns ['monthly_charges']",
        ),
        (
            GOOD_CSV.replace("churned\n", "churned,extra\n").replace(",0\n", ",0,1\n").encode(),
            "unexpected columns ['extra']",
        ),
        (GOOD_CSV.replace("region", "churned", 1).encode(), "duplicated columns ['churned']"),
        (GOOD_CSV.replace(",12,", ",twelve,").encode(), "column 'tenure_months' (int64)"),
        (GOOD_CSV.replace("10:00:00.000000Z", "ten o'clock").encode(), "column 'snapshot_ts'"),
    ],
    ids=[
        "empty",
        "wrong-type",
        "non-utf8",
        "missing-column",
        "extra-column",
        "duplicated-column",
        "int-column-text",
        "timestamp-text",
    ],
)
def test_malformed_csv_is_rejected_with_the_reason(tmp_path, payload, message):
    path = _write(tmp_path, "bad.csv", payload)
    with pytest.raises(SourceDataError) as caught:
        read_source(path, "csv", SCHEMA, name="file:///landing/bad.csv")
    assert message in str(caught.value)
    assert str(caught.value).startswith("file:///landing/bad.csv: ")


def test_header_only_csv_gives_zero_rows_for_the_suite_to_judge(tmp_path):
    path = _write(tmp_path, "header.csv", f"{HEADER}\n".encode())
    assert read_source(path, "csv", SCHEMA, name="h.csv").num_rows == 0


def _good_table() -> pa.Table:
    return read_source(io.BytesIO(GOOD_CSV.encode()), "csv", SCHEMA, name="good.csv")


def test_parquet_with_compatible_types_is_cast_and_reordered(tmp_path):
    table = _good_table()
    narrowed = table.set_column(3, "tenure_months", table.column("tenure_months").cast(pa.int32()))
    reordered = narrowed.select(list(reversed(narrowed.column_names)))
    path = str(tmp_path / "x.parquet")
    pq.write_table(reordered, path)
    assert read_source(path, "parquet", SCHEMA, name="x.parquet").equals(table)


def test_truncated_parquet_is_rejected(tmp_path):
    path = str(tmp_path / "x.parquet")
    pq.write_table(_good_table(), path)
    payload = open(path, "rb").read()  # noqa: SIM115
    cut = _write(tmp_path, "cut.parquet", payload[: len(payload) // 2])
    with pytest.raises(SourceDataError, match="not a readable parquet file"):
        read_source(cut, "parquet", SCHEMA, name="cut.parquet")


def test_parquet_with_incompatible_type_names_the_column(tmp_path):
    table = _good_table()
    bad = table.set_column(4, "monthly_charges", pa.array(["70.5", "n/a"]))
    path = str(tmp_path / "bad.parquet")
    pq.write_table(bad, path)
    with pytest.raises(SourceDataError, match="column 'monthly_charges' is string, not double"):
        read_source(path, "parquet", SCHEMA, name="bad.parquet")


def test_jsonl_round_trip_and_unexpected_field(tmp_path):
    records = _good_table().to_pylist()
    lines = "".join(json.dumps(r, default=lambda v: v.isoformat()) + "\n" for r in records)
    good = read_source(io.BytesIO(lines.encode()), "jsonl", SCHEMA, name="good.jsonl")
    assert good.num_rows == 2
    assert good.column("customer_id").to_pylist() == ["C000000001", "C000000002"]
    extra = lines.replace('"churned": 0', '"churned": 0, "extra": 1', 1)
    with pytest.raises(SourceDataError, match="unexpected columns"):
        read_source(io.BytesIO(extra.encode()), "jsonl", SCHEMA, name="x.jsonl")


def test_query_results_are_checked_like_files():
    frame = _good_table().to_pandas()
    assert table_from_dataframe(frame, SCHEMA, name="sql://warehouse").equals(_good_table())
    with pytest.raises(SourceDataError, match="missing columns"):
        table_from_dataframe(frame.drop(columns=["region"]), SCHEMA, name="sql://warehouse")
    frame["tenure_months"] = frame["tenure_months"].astype(str) + "m"
    with pytest.raises(SourceDataError, match="column 'tenure_months'"):
        table_from_dataframe(frame, SCHEMA, name="sql://warehouse")


def test_unknown_format_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown source format"):
        read_source(_write(tmp_path, "x.xml", b"<x/>"), "xml", SCHEMA, name="x.xml")


def test_parquet_with_invalid_utf8_strings_is_rejected(tmp_path):
    table = _good_table()
    raw = pa.array([b"s\xfcd", b"north"], pa.binary()).cast(pa.string(), safe=False)
    bad = table.set_column(table.schema.get_field_index("region"), "region", raw)
    path = str(tmp_path / "latin1.parquet")
    pq.write_table(bad, path)
    with pytest.raises(SourceDataError, match="'region' holds bytes that are not valid UTF-8"):
        read_source(path, "parquet", SCHEMA, name="latin1.parquet")


def _many_rows_csv(rows: int, bad_row: int | None = None) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        row = ROW.replace("C000000001", f"C{i:09d}")
        lines.append(row.replace(",70.5,", ",n/a,") if i == bad_row else row)
    return ("\n".join(lines) + "\n").encode()


def test_csv_larger_than_one_block_streams_to_the_identical_table(tmp_path, monkeypatch):
    from pyarrow import csv

    from mlops_provider.core import ingest

    monkeypatch.setattr(ingest, "BLOCK_SIZE", 16 << 10)  # ~150 rows per block
    path = _write(tmp_path, "big.csv", _many_rows_csv(5_000))

    batches = list(ingest.iter_source(path, "csv", SCHEMA, name="big.csv"))

    assert len(batches) > 10
    assert all(batch.schema == SCHEMA for batch in batches)
    whole = csv.read_csv(
        path,
        convert_options=csv.ConvertOptions(
            column_types=SCHEMA, null_values=ingest.NULL_VALUES, quoted_strings_can_be_null=False
        ),
    )
    assert pa.Table.from_batches(batches).equals(whole.select(SCHEMA.names))


def test_bad_value_in_a_later_block_is_named_when_the_stream_reaches_it(tmp_path, monkeypatch):
    from mlops_provider.core import ingest

    monkeypatch.setattr(ingest, "BLOCK_SIZE", 16 << 10)
    path = _write(tmp_path, "late.csv", _many_rows_csv(3_000, bad_row=2_500))
    stream = ingest.iter_source(path, "csv", SCHEMA, name="file:///landing/late.csv")

    assert next(stream).num_rows > 0  # the first blocks are fine
    with pytest.raises(SourceDataError, match=r"column 'monthly_charges' \(double\)"):
        list(stream)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_stream_in_batches_too(tmp_path, monkeypatch, fmt):
    from mlops_provider.core import ingest

    monkeypatch.setattr(ingest, "BLOCK_SIZE", 16 << 10)
    monkeypatch.setattr(ingest, "PARQUET_BATCH_ROWS", 100)
    table = ingest.read_source(_write(tmp_path, "x.csv", _many_rows_csv(1_000)), "csv", SCHEMA, name="x")
    path = str(tmp_path / f"x.{fmt}")
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        records = table.to_pylist()
        lines = "".join(json.dumps(r, default=lambda v: v.isoformat()) + "\n" for r in records)
        _write(tmp_path, "x.jsonl", lines.encode())

    batches = list(ingest.iter_source(path, fmt, SCHEMA, name=path))

    assert len(batches) > 1
    assert pa.Table.from_batches(batches).equals(table)


def test_prefetch_hands_on_batches_in_order_and_reraises_the_source_error():
    from mlops_provider.core.ingest import prefetch

    schema = pa.schema([("x", pa.int64())])

    def batches(fail_at: int | None):
        for i in range(20):
            if i == fail_at:
                raise SourceDataError("late.csv", ["column 'x' (int64): bad value"])
            yield pa.record_batch([pa.array([i, i])], schema=schema)

    with prefetch(schema, batches(None), depth=2) as stream:
        values = pa.Table.from_batches(list(stream)).column("x").to_pylist()
    assert values == [i for i in range(20) for _ in range(2)]
    with prefetch(schema, batches(15), depth=2) as stream, pytest.raises(SourceDataError) as caught:
        list(stream)
    assert caught.value.source_name == "late.csv"
    assert caught.value.problems == ["column 'x' (int64): bad value"]


def test_prefetch_stops_its_thread_when_the_reader_is_closed_early():
    import threading

    from mlops_provider.core.ingest import prefetch

    schema = pa.schema([("x", pa.int64())])
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield pa.record_batch([pa.array([len(produced)])], schema=schema)

    stream = prefetch(schema, endless(), depth=2)
    assert next(iter(stream)).num_rows == 1
    stream.close()

    assert not [t for t in threading.enumerate() if t.name == "mlops-source-prefetch"]
    assert len(produced) <= 5  # bounded read-ahead, then stopped


# -- what a rejected file may show of itself ------------------------------------------------------

SECRET = "root:$6$Zq0PxT1sEcReT" + "x" * 200 + ":19000:0:99999:7:::"


def test_excerpt_is_short_escaped_and_marks_the_cut():
    from mlops_provider.core.ingest import EXCERPT_CHARS, excerpt

    assert excerpt("north") == "'north'"
    long = excerpt(SECRET)
    assert len(long) <= EXCERPT_CHARS and long.endswith("...'") and long.startswith("'root:")
    assert excerpt("a\nb\x1b[31m\u00fc") == "'a\\nb\\x1b[31m\\xfc'"  # no line break, no terminal escape
    assert excerpt(b"s\xfcd") == "'s\\\\xfcd'"


def _problems(tmp_path, payload: bytes, fmt: str = "csv") -> str:
    path = _write(tmp_path, f"x.{fmt}", payload)
    with pytest.raises(SourceDataError) as caught:
        read_source(path, fmt, SCHEMA, name="file:///landing/x")
    return "; ".join(caught.value.problems)


@pytest.mark.parametrize(
    "payload",
    [
        f"{SECRET}\nsecond line\n".encode(),  # a file that is not ours at all: its first line is a "header"
        f"{HEADER}\n{ROW}\n{SECRET},{SECRET}\n".encode(),  # a row of the wrong width
        GOOD_CSV.replace(",70.5,", f",{SECRET.replace(':', ';')},").encode(),  # a value of the wrong type
        GOOD_CSV.replace("2020-01-05", SECRET.replace(":", ";")).encode(),  # a date column
        GOOD_CSV.replace("10:00:00.000000Z", SECRET.replace(":", ";")).encode(),  # a timestamp column
    ],
    ids=["foreign-file", "wide-row", "bad-number", "bad-date", "bad-timestamp"],
)
def test_a_rejected_csv_shows_no_more_than_an_excerpt_of_itself(tmp_path, payload):
    from mlops_provider.core.ingest import EXCERPT_CHARS

    problems = _problems(tmp_path, payload)

    assert "x" * EXCERPT_CHARS not in problems  # never the whole value or line
    assert "Zq0PxT1sEcReT" + "x" * 60 not in problems
    assert "\n" not in problems
    assert len(problems) < 700


def test_a_rejected_jsonl_or_sql_result_shows_no_more_than_an_excerpt(tmp_path):
    record = dict(_good_table().to_pylist()[0], tenure_months=SECRET)
    line = json.dumps(record, default=lambda v: v.isoformat())
    assert "x" * 60 not in _problems(tmp_path, f"{line}\n".encode(), "jsonl")
    frame = _good_table().to_pandas()
    frame["tenure_months"] = SECRET
    with pytest.raises(SourceDataError) as caught:
        table_from_dataframe(frame, SCHEMA, name="sql://warehouse")
    assert "x" * 60 not in str(caught.value)


# -- timestamps without an offset ----------------------------------------------------------------


def _instants(table: pa.Table) -> list[str]:
    return [v.isoformat() for v in table.column("snapshot_ts").to_pylist()]


def test_naive_csv_timestamps_are_wall_clock_times_of_the_dataset_time_zone(tmp_path):
    naive = GOOD_CSV.replace("2026-01-01 10:00:00.000000Z", "2026-07-01 15:00:08", 1)
    naive = naive.replace("2026-01-01 10:00:00.000000Z", "2026-12-01 15:00:08")  # the second row

    paris = read_source(
        _write(tmp_path, "n.csv", naive.encode()), "csv", SCHEMA, name="n", timezone="Europe/Paris"
    )
    utc = read_source(_write(tmp_path, "n.csv", naive.encode()), "csv", SCHEMA, name="n")

    assert paris.schema == SCHEMA  # stored as UTC instants, as before
    assert _instants(paris) == ["2026-07-01T13:00:08+00:00", "2026-12-01T14:00:08+00:00"]  # CEST, CET
    assert _instants(utc) == ["2026-07-01T15:00:08+00:00", "2026-12-01T15:00:08+00:00"]


def test_values_with_an_offset_keep_it_even_next_to_naive_ones(tmp_path):
    mixed = GOOD_CSV.replace("2026-01-01 10:00:00.000000Z", "2026-01-01T10:00:00+02:00", 1)
    mixed = mixed.replace("2026-01-01 10:00:00.000000Z", "2026-01-01 10:00:00")

    table = read_source(
        _write(tmp_path, "m.csv", mixed.encode()), "csv", SCHEMA, name="m", timezone="Asia/Tokyo"
    )

    assert _instants(table) == ["2026-01-01T08:00:00+00:00", "2026-01-01T01:00:00+00:00"]


@pytest.mark.parametrize(
    ("wall_clock", "what"), [("2026-03-29 02:30:00", "doesn't exist"), ("2026-10-25 02:30:00", "ambiguous")]
)
def test_a_wall_clock_time_the_clock_change_skips_or_repeats_is_refused(tmp_path, wall_clock, what):
    payload = GOOD_CSV.replace("2026-01-01 10:00:00.000000Z", wall_clock).encode()
    with pytest.raises(SourceDataError, match=f"column 'snapshot_ts'.*{what}"):
        read_source(_write(tmp_path, "d.csv", payload), "csv", SCHEMA, name="d", timezone="Europe/Paris")


def test_naive_parquet_jsonl_and_sql_timestamps_take_the_time_zone_too(tmp_path):
    good = _good_table()
    naive = good.set_column(
        1, "snapshot_ts", good.column("snapshot_ts").cast(pa.timestamp("ns"))
    )  # what pandas writes by default
    pq.write_table(naive, str(tmp_path / "n.parquet"))
    records = naive.to_pylist()
    lines = "".join(json.dumps(r, default=lambda v: v.isoformat()) + "\n" for r in records)
    expected = ["2026-01-01T01:00:00+00:00"] * 2  # 10:00 in Tokyo

    parquet = read_source(str(tmp_path / "n.parquet"), "parquet", SCHEMA, name="n", timezone="Asia/Tokyo")
    jsonl = read_source(io.BytesIO(lines.encode()), "jsonl", SCHEMA, name="n", timezone="Asia/Tokyo")
    sql = table_from_dataframe(naive.to_pandas(), SCHEMA, name="sql://w", timezone="Asia/Tokyo")
    text = naive.to_pandas()
    text["snapshot_ts"] = text["snapshot_ts"].astype(str)  # a driver that returns text (SQLite)
    sql_text = table_from_dataframe(text, SCHEMA, name="sql://w", timezone="Asia/Tokyo")

    for table in (parquet, jsonl, sql, sql_text):
        assert table.schema == SCHEMA
        assert _instants(table) == expected
    # Zoned values are instants already, whatever the dataset's zone.
    assert (
        _instants(read_source(io.BytesIO(GOOD_CSV.encode()), "csv", SCHEMA, name="g", timezone="Asia/Tokyo"))
        == ["2026-01-01T10:00:00+00:00"] * 2
    )


# -- rows of another day ------------------------------------------------------------------------


def _stamps(*values: str) -> pa.RecordBatch:
    array = pa.array([datetime.fromisoformat(v) if v else None for v in values], pa.timestamp("us", tz="UTC"))
    return pa.record_batch([array], names=["ts"])


def _check(batches, **kwargs) -> list:
    from mlops_provider.core.ingest import refuse_rows_outside_day

    return list(refuse_rows_outside_day(batches, column="ts", day=date(2026, 10, 1), name="src", **kwargs))


def test_rows_of_the_partition_day_pass_unchanged():
    batches = [_stamps("2026-10-01T00:00:00+00:00", None), _stamps("2026-10-01T23:59:59.999999+00:00")]
    assert _check(batches) == batches


def test_rows_outside_the_day_are_counted_across_batches_and_named_by_their_extremes():
    batches = [
        _stamps("2026-09-30T23:59:59+00:00", "2026-10-01T12:00:00+00:00"),
        _stamps("2026-10-02T00:00:00+00:00", "2026-10-05T08:00:00+00:00", "2026-10-01T01:00:00+00:00"),
    ]
    from mlops_provider.core.ingest import refuse_rows_outside_day

    stream = refuse_rows_outside_day(batches, column="ts", day=date(2026, 10, 1), name="src")
    assert [next(stream), next(stream)] == batches  # every batch is handed on before the refusal
    with pytest.raises(SourceDataError) as caught:
        next(stream)
    (problem,) = caught.value.problems
    assert problem.startswith("3 rows have 'ts' outside the partition's day 2026-10-01 (UTC, no tolerance)")
    assert "earliest 2026-09-30T23:59:59+00:00, latest 2026-10-05T08:00:00+00:00" in problem
    assert "12:00" not in problem  # rows inside the day are not quoted


def test_the_day_is_the_dataset_time_zones_and_the_tolerance_widens_it():
    late = [_stamps("2026-10-02T00:20:00+00:00")]  # 02:20 in Paris, the next day
    early = [_stamps("2026-09-30T22:30:00+00:00")]  # 00:30 in Paris, the day itself
    with pytest.raises(SourceDataError):
        _check(late, timezone="Europe/Paris")
    assert _check(early, timezone="Europe/Paris") == early
    with pytest.raises(SourceDataError, match="2026-10-01 \\(UTC, no tolerance\\)"):
        _check(early)
    assert _check(early, tolerance_minutes=90) == early
    with pytest.raises(SourceDataError, match="30 min tolerance"):
        _check(early, tolerance_minutes=30)


def test_day_bounds_follow_clock_changes():
    from mlops_provider.core.ingest import day_bounds

    start, end = day_bounds(date(2026, 10, 25), "Europe/Paris")
    assert (end - start).total_seconds() == 25 * 3600
    assert start.isoformat() == "2026-10-24T22:00:00+00:00"
    start, end = day_bounds(date(2026, 3, 29), "Europe/Paris", tolerance_minutes=15)
    assert (end - start).total_seconds() == 23 * 3600 + 30 * 60


def test_a_date_column_must_be_the_day_or_within_whole_days_of_tolerance():
    from mlops_provider.core.ingest import refuse_rows_outside_day

    batch = pa.record_batch([pa.array([date(2026, 10, 1), date(2026, 10, 2)], pa.date32())], names=["d"])

    def check(tolerance: int) -> list:
        return list(
            refuse_rows_outside_day(
                [batch], column="d", day=date(2026, 10, 1), tolerance_minutes=tolerance, name="s"
            )
        )

    with pytest.raises(
        SourceDataError, match=r"1 row has 'd' outside .* earliest 2026-10-02, latest 2026-10-02"
    ):
        check(1439)
    assert check(1440) == [batch]
