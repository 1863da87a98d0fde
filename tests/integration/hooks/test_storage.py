"""DatasetStorageHook on both backends: a local folder and S3 over HTTP (moto server on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date

import pyarrow as pa
import pytest

from mlops_provider.core import partitions as parts
from mlops_provider.exceptions import PartitionIntegrityError, PartitionNotFoundError
from mlops_provider.hooks.storage import DatasetStorageHook
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path) -> DatasetStorageHook:
    if request.param == "file":
        return DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}")
    bucket, conn_id = request.getfixturevalue("s3_bucket")
    return DatasetStorageHook(root_uri=f"s3://{bucket}/mlops", storage_conn_id=conn_id)


def _table(n: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array(range(offset, offset + n), pa.int64()),
            "tenure": pa.array([float(i % 37) for i in range(n)], pa.float64()),
            "plan": pa.array([("basic", "pro", None)[i % 3] for i in range(n)], pa.string()),
        }
    )


def test_round_trip_with_manifest(storage):
    table = _table(1000)
    manifest = storage.write_partition(
        "churn",
        "raw",
        "2026-03-01",
        table,
        source="file:///landing/2026-03-01.csv",
        produced_by={"dag_id": "mlops_ingest", "run_id": "r1", "try_number": 1},
    )

    assert storage.read_partition("churn", "raw", "2026-03-01").equals(table)
    stored = storage.read_manifest("churn", "raw", date(2026, 3, 1))
    assert stored == manifest
    assert stored.row_count == 1000
    assert stored.schema == [
        {"name": "customer_id", "type": "int64"},
        {"name": "tenure", "type": "double"},
        {"name": "plan", "type": "string"},
    ]
    assert stored.produced_by["run_id"] == "r1"
    assert stored.source == "file:///landing/2026-03-01.csv"
    assert len(stored.sha256) == 64


def test_same_table_twice_is_idempotent(storage):
    first = storage.write_partition("churn", "validated", "2026-03-02", _table(500))
    second = storage.write_partition("churn", "validated", "2026-03-02", _table(500))

    assert first.files == second.files
    assert first.sha256 == second.sha256
    names = sorted(p.name for p in storage.partition_path("churn", "validated", "2026-03-02").iterdir())
    assert names == sorted([first.files[0].name, "_manifest.json"])


def _names(storage: DatasetStorageHook, zone: str, ds: str) -> list[str]:
    storage.root.fs.invalidate_cache()
    return sorted(p.name for p in storage.partition_path("churn", zone, ds).iterdir())


def test_rewrite_replaces_the_partition_wholesale_and_touches_no_other_date(storage, monkeypatch):
    first = storage.write_partition("churn", "raw", "2026-03-03", _table(300))
    neighbour = storage.write_partition("churn", "raw", "2026-03-04", _table(200))
    replaced = storage.write_partition("churn", "raw", "2026-03-03", _table(50, offset=10_000))

    assert storage.read_partition("churn", "raw", "2026-03-03").num_rows == 50
    assert replaced.row_count == 50
    assert storage.read_manifest("churn", "raw", "2026-03-04") == neighbour
    # The superseded file is kept (invisible) until stale: a concurrent writer may still need it.
    assert _names(storage, "raw", "2026-03-03") == sorted(
        [first.files[0].name, replaced.files[0].name, "_manifest.json"]
    )
    monkeypatch.setattr(parts, "STALE_AFTER_SECONDS", 0.0)  # from now on, everything older is stale
    storage.write_partition("churn", "raw", "2026-03-03", _table(50, offset=10_000))
    assert _names(storage, "raw", "2026-03-03") == sorted([replaced.files[0].name, "_manifest.json"])
    assert _names(storage, "raw", "2026-03-04") == sorted([neighbour.files[0].name, "_manifest.json"])


def test_list_partitions_in_a_date_range(storage):
    for day in (1, 2, 3, 5, 8):
        storage.write_partition("churn", "validated", f"2026-04-0{day}", _table(10))
    storage.write_partition("other", "validated", "2026-04-04", _table(10))

    assert storage.list_partitions("churn", "validated", "2026-04-02", "2026-04-05") == [
        date(2026, 4, 2),
        date(2026, 4, 3),
        date(2026, 4, 5),
    ]
    assert len(storage.list_partitions("churn", "validated")) == 5
    assert storage.list_partitions("churn", "quarantine") == []


def test_tampered_data_file_is_detected(storage):
    manifest = storage.write_partition("churn", "raw", "2026-05-01", _table(100))
    path = storage.partition_path("churn", "raw", "2026-05-01") / manifest.files[0].name
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")

    with pytest.raises(PartitionIntegrityError, match="sha256"):
        storage.read_partition("churn", "raw", "2026-05-01")


def test_a_partition_republished_since_it_was_recorded_is_refused(storage):
    recorded = storage.write_partition("churn", "validated", "2026-05-02", _table(100)).sha256
    assert (
        storage.read_partition("churn", "validated", "2026-05-02", expected_sha256=recorded).num_rows == 100
    )
    storage.write_partition("churn", "validated", "2026-05-02", _table(100, offset=7))

    with pytest.raises(PartitionIntegrityError, match="changed since it was recorded"):
        storage.read_partition("churn", "validated", "2026-05-02", expected_sha256=recorded)


def test_missing_partition_is_a_clear_error(storage):
    with pytest.raises(PartitionNotFoundError, match="No published partition"):
        storage.read_partition("churn", "raw", "2026-06-01")
    assert storage.read_manifest("churn", "raw", "2026-06-01") is None


def test_delete_withdraws_manifest_and_files(storage):
    storage.write_partition("churn", "quarantine", "2026-06-02", _table(10))
    assert storage.delete_partition("churn", "quarantine", "2026-06-02") is True
    assert storage.list_partitions("churn", "quarantine") == []
    assert storage.delete_partition("churn", "quarantine", "2026-06-02") is False


@pytest.mark.parametrize("name", ["../etc", "Churn", "churn/raw", "", "a" * 64])
def test_dataset_names_that_could_escape_the_root_are_refused(storage, name):
    with pytest.raises(ValueError, match="Invalid dataset name"):
        storage.partition_path(name, "raw", "2026-01-01")


_CRASHING_WRITER = textwrap.dedent(
    """
    import os, sys
    import pyarrow as pa
    from mlops_provider.hooks.storage import DatasetStorageHook

    def die_before_commit(self, folder, manifest):
        os._exit(17)  # the process is killed after the data file is written, before the commit

    DatasetStorageHook._commit = die_before_commit
    hook = DatasetStorageHook(root_uri=sys.argv[1], storage_conn_id=sys.argv[2] or None)
    hook.write_partition("churn", "validated", sys.argv[3], pa.table({"x": list(range(7))}))
    """
)


def _crash_while_writing(storage: DatasetStorageHook, ds: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, storage.root_uri, storage.storage_conn_id or "", ds],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 17, result.stderr


def test_crash_between_write_and_commit_keeps_the_previous_version(storage, monkeypatch):
    before = storage.write_partition("churn", "validated", "2026-07-01", _table(123))

    _crash_while_writing(storage, "2026-07-01")

    assert storage.read_manifest("churn", "validated", "2026-07-01") == before
    debris = [n for n in _names(storage, "validated", "2026-07-01") if n.startswith("part-")]
    assert len(debris) == 2  # the debris is there
    assert storage.read_partition("churn", "validated", "2026-07-01").equals(_table(123))
    # A publish keeps it while it might still be a writer's in flight, and clears it once stale.
    storage.write_partition("churn", "validated", "2026-07-01", _table(5))
    assert len([n for n in _names(storage, "validated", "2026-07-01") if n.startswith("part-")]) == 3
    monkeypatch.setattr(parts, "STALE_AFTER_SECONDS", 0.0)
    last = storage.write_partition("churn", "validated", "2026-07-01", _table(5))
    assert _names(storage, "validated", "2026-07-01") == sorted([last.files[0].name, "_manifest.json"])


def test_crash_before_first_commit_leaves_no_visible_partition(storage):
    _crash_while_writing(storage, "2026-07-02")

    assert storage.list_partitions("churn", "validated") == []
    with pytest.raises(PartitionNotFoundError):
        storage.read_partition("churn", "validated", "2026-07-02")


def test_manifest_is_plain_json_with_the_partition_facts(storage):
    manifest = storage.write_partition("churn", "raw", "2026-08-01", _table(3), source="s3://landing/x")
    raw = json.loads((storage.partition_path("churn", "raw", "2026-08-01") / "_manifest.json").read_text())
    assert raw["row_count"] == 3
    assert raw["sha256"] == manifest.sha256
    assert raw["files"][0]["name"] == manifest.files[0].name
    assert raw["dataset"] == "churn" and raw["zone"] == "raw" and raw["ds"] == "2026-08-01"


def _reader(table: pa.Table, *, fail_after: int | None = None) -> pa.RecordBatchReader:
    """``table`` streamed in small batches; raises ValueError after ``fail_after`` batches."""

    def batches():
        for i, batch in enumerate(table.to_batches(max_chunksize=100)):
            if fail_after is not None and i == fail_after:
                raise ValueError("bad block in the source")
            yield batch

    return pa.RecordBatchReader.from_batches(table.schema, batches())


def test_streamed_batches_are_published_like_a_table(storage, monkeypatch):
    import mlops_provider.hooks.storage as storage_module

    monkeypatch.setattr(storage_module, "ROW_GROUP_BYTES", 4_000)  # several row groups
    table = _table(2_500)
    manifest = storage.write_partition("churn", "raw", "2026-09-01", _reader(table))

    assert manifest.row_count == 2_500
    assert manifest.schema == [{"name": f.name, "type": str(f.type)} for f in table.schema]
    read = storage.read_partition("churn", "raw", "2026-09-01")
    assert read.equals(table)
    # However many row groups the file has, each column comes back as one chunk.
    assert all(column.num_chunks == 1 for column in read.columns)
    # The same stream again is the same content: same file, same digest.
    assert storage.write_partition("churn", "raw", "2026-09-01", _reader(table)).files == manifest.files


def test_empty_stream_publishes_zero_rows_with_the_schema(storage):
    table = _table(0)
    manifest = storage.write_partition("churn", "raw", "2026-09-02", _reader(table))
    assert manifest.row_count == 0
    assert storage.read_partition("churn", "raw", "2026-09-02").schema == table.schema


def test_failing_stream_publishes_nothing_and_keeps_the_previous_version(storage):
    before = storage.write_partition("churn", "raw", "2026-09-03", _table(300))

    with pytest.raises(ValueError, match="bad block in the source"):
        storage.write_partition("churn", "raw", "2026-09-03", _reader(_table(1_000, offset=5), fail_after=3))

    assert storage.read_manifest("churn", "raw", "2026-09-03") == before
    assert storage.read_partition("churn", "raw", "2026-09-03").equals(_table(300))
    folder = storage.partition_path("churn", "raw", "2026-09-03")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["_manifest.json", before.files[0].name])


def test_data_files_record_their_codec_and_stay_readable_with_another(storage):
    import pyarrow.parquet as pq

    from mlops_provider.hooks.storage import PARQUET_COMPRESSION

    manifest = storage.write_partition("churn", "raw", "2026-09-04", _table(50))
    path = storage.partition_path("churn", "raw", "2026-09-04") / manifest.files[0].name
    with path.open("rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    codecs = {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)}
    assert PARQUET_COMPRESSION == "lz4_raw"
    assert codecs == {"LZ4"}  # how pyarrow names the LZ4_RAW codec in the metadata
    # Partitions published with another codec (zstd, before) read the same: Parquet says which.
    assert storage.read_partition("churn", "raw", "2026-09-04").equals(_table(50))


def test_local_copy_shares_the_immutable_file_and_survives_the_source(tmp_path):
    storage = DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}")
    manifest = storage.write_partition("churn", "raw", "2026-09-05", _table(40))
    name = manifest.files[0].name
    raw = storage.partition_path("churn", "raw", "2026-09-05") / name
    validated = storage.partition_path("churn", "validated", "2026-09-05") / name

    storage.copy_partition("churn", "raw", "validated", "2026-09-05")
    assert os.stat(validated.path).st_ino == os.stat(raw.path).st_ino  # a hard link, not a copy

    storage.delete_partition("churn", "raw", "2026-09-05")
    assert not raw.exists()
    assert storage.read_partition("churn", "validated", "2026-09-05", verify=True).equals(_table(40))


_CONCURRENT_WRITER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from mlops_provider.hooks.storage import DatasetStorageHook

    root, conn_id, ds, offset, rounds = sys.argv[1], sys.argv[2] or None, sys.argv[3], *map(int, sys.argv[4:6])
    hook = DatasetStorageHook(root_uri=root, storage_conn_id=conn_id)
    table = pa.table({"writer": pa.array([offset] * 2_000, pa.int64()), "i": pa.array(range(2_000), pa.int64())})
    for _ in range(rounds):
        hook.write_partition("churn", "raw", ds, table)
    """
)


def _writer_table(offset: int) -> pa.Table:
    return pa.table(
        {"writer": pa.array([offset] * 2_000, pa.int64()), "i": pa.array(range(2_000), pa.int64())}
    )


def test_concurrent_writers_of_one_day_never_break_each_other_or_readers(storage):
    """Threads and processes publish the same day at once while a thread keeps reading it.

    Every writer must succeed, every read must return one writer's whole table, and the partition
    left at the end must be one complete, verifiable version.
    """
    import threading

    ds, rounds = "2026-10-01", 6
    storage.write_partition("churn", "raw", ds, _writer_table(0))  # readers start from a version
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_WRITER, storage.root_uri, storage.storage_conn_id or "", ds,
             str(offset), str(rounds)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for offset in (10, 11)
    ]  # fmt: skip
    errors: list[BaseException] = []
    reads: list[int] = []
    writers_done = threading.Event()

    def write(offset: int) -> None:
        hook = DatasetStorageHook(root_uri=storage.root_uri, storage_conn_id=storage.storage_conn_id)
        try:
            for _ in range(rounds):
                hook.write_partition("churn", "raw", ds, _writer_table(offset))
        except BaseException as err:
            errors.append(err)

    def read() -> None:
        hook = DatasetStorageHook(root_uri=storage.root_uri, storage_conn_id=storage.storage_conn_id)
        try:
            while not writers_done.is_set():
                table = hook.read_partition("churn", "raw", ds)
                assert table.num_rows == 2_000
                writer = set(table.column("writer").to_pylist())
                assert len(writer) == 1  # one writer's table, never a mix
                reads.append(writer.pop())
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (1, 2, 3)]
    reader = threading.Thread(target=read)
    try:
        reader.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        writers_done.set()
        reader.join(timeout=60)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    assert [process.returncode for process in processes] == [0, 0], outputs
    assert not errors, errors
    assert reads  # the reader really read while the writers wrote
    manifest = storage.read_manifest("churn", "raw", ds)
    final = storage.read_partition("churn", "raw", ds, verify=True)
    assert set(final.column("writer").to_pylist()) <= {1, 2, 3, 10, 11}
    assert final.equals(_writer_table(final.column("writer")[0].as_py()))
    folder = storage.partition_path("churn", "raw", ds)
    present = {p.name for p in folder.iterdir()}
    assert {f.name for f in manifest.files} <= present
    assert not [name for name in present if name.endswith(".tmp")]  # no writer left a temporary file


def test_a_commit_keeps_another_writers_fresh_files(storage):
    """What another writer has in flight (a temporary file, a placed data file) survives a commit."""
    storage.write_partition("churn", "raw", "2026-10-02", _table(10))
    folder = storage.partition_path("churn", "raw", "2026-10-02")
    theirs = parts.data_file_name("f" * 32)
    storage.write_bytes_atomic(folder / theirs, b"another writer's data, not yet committed")
    if storage.is_local:
        (folder / ".part-another-writer.tmp").write_bytes(b"half written")

    mine = storage.write_partition("churn", "raw", "2026-10-02", _table(20))

    names = _names(storage, "raw", "2026-10-02")
    assert theirs in names and mine.files[0].name in names
    assert (".part-another-writer.tmp" in names) is storage.is_local
    assert storage.read_partition("churn", "raw", "2026-10-02").num_rows == 20


def test_quarantined_source_files_are_private_on_local_disk(tmp_path):
    storage = DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}")
    landed = tmp_path / "landing.csv"
    landed.write_bytes(b"id\n1\n" * 1000)
    landed.chmod(0o644)
    source = storage.resolve_source(f"file://{landed}")

    where = storage.quarantine_files("churn", "2026-10-03", source, {"problems": ["x"]})

    folder = where.removeprefix("file://")
    assert os.stat(folder).st_mode & 0o777 == 0o700
    for name in ("landing.csv", "_rejection.json"):
        assert os.stat(f"{folder}/{name}").st_mode & 0o777 == 0o600
    assert open(f"{folder}/landing.csv", "rb").read() == landed.read_bytes()  # noqa: SIM115
    assert json.loads(open(f"{folder}/_rejection.json").read()) == {"problems": ["x"]}  # noqa: SIM115
