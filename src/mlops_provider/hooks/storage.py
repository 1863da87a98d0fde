"""DatasetStorageHook: dataset partitions on ``file://`` or ``s3://`` storage, published atomically.

Storage is addressed through Airflow's ``ObjectStoragePath``: ``file://`` needs nothing, ``s3://``
uses an Airflow ``aws`` connection (with ``endpoint_url`` in its extra for MinIO or a test server).

Publishing a partition (see ``core.partitions`` for the layout):

1. the data is streamed to a temporary file of this writer's own while its sha256 is computed, then
   published under its content-addressed name ``part-<sha256 prefix>.parquet`` in the partition
   folder (placed again even when that name already holds the same bytes, so it counts as fresh);
2. the manifest naming that file is committed last, in one step (rename on local disk, a single
   PUT on S3, both atomic);
3. files that neither the now-current manifest nor this writer's names, and that have not been
   modified for ``core.partitions.STALE_AFTER_SECONDS``, are removed (``removable_files``): the
   previous versions and debris of crashed writes, never a file another writer still needs.

A crash before step 2 leaves the previous version readable and nothing new visible. Concurrent
writers of one partition never delete each other's files: the last manifest written wins, whole.
A reader that finds a file of the manifest it read removed (a newer version was committed
meanwhile) reads the new version instead.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_provider.core import partitions as parts
from mlops_provider.core.reports import REPORT_KINDS
from mlops_provider.exceptions import (
    InvalidConfigurationError,
    PartitionIntegrityError,
    PartitionNotFoundError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import date
    from typing import IO

    import pyarrow as pa
    from airflow.sdk import ObjectStoragePath

    from mlops_provider.core.source_policy import Location

_SUPPORTED_SCHEMES = ("file", "s3")
_PRIVATE_DIR = 0o700  # permissions of quarantined source data on local disk
_PRIVATE_FILE = 0o600
# How many times a reader starts again when a newer version replaced the one it was reading.
_READ_ATTEMPTS = 3

# How partitions are encoded. LZ4 (the unambiguous LZ4_RAW Parquet codec) decodes ~1.5x faster than
# zstd and encodes ~1.3x faster, for files ~40 % larger (5M rows x 20 columns: 347 vs 245 MB).
# Dictionary encoding is tried on string columns only: categories shrink to a few bits per value,
# while on numbers it is mostly wasted work (a unique id column falls back to plain by itself).
# Readers need nothing of this: Parquet records the codec and encodings of every column chunk, so
# partitions written with another codec (zstd, before) stay readable.
PARQUET_COMPRESSION = "lz4_raw"
# Batches are gathered into row groups of about this many bytes (Arrow size) before encoding: big
# enough for good compression and few chunks on reading, small enough to keep writer memory flat.
ROW_GROUP_BYTES = 64 << 20


def parquet_write_options(schema: pa.Schema) -> dict[str, Any]:
    """The ``pyarrow.parquet.ParquetWriter`` options partitions are written with."""
    import pyarrow as pa

    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return {"compression": PARQUET_COMPRESSION, "use_dictionary": strings}


class _HashingWriter:
    """A binary sink that computes the sha256 and size of what goes through it."""

    def __init__(self, sink: Any) -> None:
        import hashlib

        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.closed = True  # the sink belongs to the caller


def configured_data_root() -> str:
    """Return the data root URI from ``[mlops] data_root`` (default: under ``AIRFLOW_HOME``)."""
    from airflow.sdk import conf

    root = conf.get("mlops", "data_root", fallback="")
    if not root:
        raise InvalidConfigurationError("[mlops] data_root is empty: set it to a file:// or s3:// URI.")
    return root


def _stream_digest(local_path: str) -> tuple[int, str]:
    """Size and sha256 of a local file, read in 8 MiB blocks."""
    import hashlib

    sha, size = hashlib.sha256(), 0
    with open(local_path, "rb") as handle:
        while block := handle.read(8 << 20):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


def _write_parquet(sink: _HashingWriter, data: pa.Table | pa.RecordBatchReader) -> int:
    """Encode ``data`` as Parquet into ``sink``, a row group per ~``ROW_GROUP_BYTES``; return the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(data, pa.Table):
        data = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    rows = 0
    try:
        with pq.ParquetWriter(sink, data.schema, **parquet_write_options(data.schema)) as writer:
            pending: list[pa.RecordBatch] = []
            pending_bytes = 0
            for batch in data:
                pending.append(batch)
                pending_bytes += batch.nbytes
                rows += batch.num_rows
                if pending_bytes >= ROW_GROUP_BYTES:
                    group = pa.Table.from_batches(pending)
                    writer.write_table(group, row_group_size=max(1, group.num_rows))
                    pending, pending_bytes = [], 0
            if pending:
                group = pa.Table.from_batches(pending)
                writer.write_table(group, row_group_size=max(1, group.num_rows))
    finally:
        data.close()  # stops a reader's producer if writing failed
    return rows


def _read_parquet(source: Any) -> pa.Table:
    """Decode a whole Parquet file with every column as one contiguous chunk.

    ``ParquetFile.read`` joins the row groups (``read_table`` would hand back 128K-row chunks):
    numpy views of single-chunk columns need no copy, and pandas hashes (factorizes) a
    single-chunk string column without merging per-chunk dictionaries.
    """
    import pyarrow.parquet as pq

    return pq.ParquetFile(source).read(use_threads=True)


def _read_object(path: ObjectStoragePath) -> bytes:
    """The whole content of one file or object, in one request.

    Unlike ``read_bytes`` (a HEAD, then reads bound to the ETag seen), an object replaced meanwhile
    by another writer reads as its new version instead of failing.
    """
    return path.fs.cat_file(path.path)


def _modified_at(info: dict[str, Any]) -> float:
    """A listing entry's last modification time in seconds since the epoch (local disk or S3)."""
    if "mtime" in info:
        return float(info["mtime"])
    modified = info.get("LastModified")
    return modified.timestamp() if modified is not None else time.time()


def _check_digest(path: ObjectStoragePath, data_file: parts.DataFile, size: int, sha256: str) -> None:
    if size != data_file.size or sha256 != data_file.sha256:
        raise PartitionIntegrityError(f"{path} does not match the sha256 in its manifest")


class DatasetStorageHook(BaseHook):
    """Read and publish dataset partitions under a data root URI.

    :param root_uri: ``file:///abs/path`` (or ``/abs/path``) or ``s3://bucket/prefix``; defaults to
        ``[mlops] data_root``.
    :param storage_conn_id: the ``aws`` connection used for ``s3://`` roots; defaults to
        ``[mlops] storage_conn_id``. Ignored for local roots.
    """

    conn_name_attr = "storage_conn_id"
    default_conn_name = "aws_default"
    hook_name = "MLOps dataset storage"

    def __init__(self, root_uri: str | None = None, storage_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.root_uri = root_uri
        self.storage_conn_id = storage_conn_id

    @cached_property
    def root(self) -> ObjectStoragePath:
        """The data root as an ``ObjectStoragePath`` bound to the storage connection if remote."""
        return self._storage_path((self.root_uri or configured_data_root()).rstrip("/"), "data root")

    def _storage_path(self, uri: str, what: str) -> ObjectStoragePath:
        """``uri`` (``file://``, a bare absolute path, or ``s3://``) as a path; s3 uses the connection."""
        from airflow.sdk import ObjectStoragePath, conf

        if uri.startswith("/"):
            uri = f"file://{uri}"
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in _SUPPORTED_SCHEMES:
            raise InvalidConfigurationError(
                f"Unsupported {what} {uri!r}: use file:///absolute/path or s3://bucket/prefix."
            )
        if scheme == "file":
            return ObjectStoragePath(uri)
        conn_id = self.storage_conn_id or conf.get("mlops", "storage_conn_id", fallback="aws_default")
        return ObjectStoragePath(uri, conn_id=conn_id)

    @property
    def is_local(self) -> bool:
        return self.root.protocol in ("file", "local", "")

    def get_conn(self) -> ObjectStoragePath:
        """Return the data root."""
        return self.root

    def _forget_listings(self) -> None:
        """Drop fsspec's cached directory listings: another process may have published since."""
        self.root.fs.invalidate_cache()

    # -- addressing ---------------------------------------------------------------------------

    def zone_path(self, dataset: str, zone: str) -> ObjectStoragePath:
        """Return the folder of one zone (raw, validated, quarantine) of a dataset."""
        return self.root / parts.validate_dataset_name(dataset) / parts.validate_zone(zone)

    def partition_path(self, dataset: str, zone: str, ds: date | str) -> ObjectStoragePath:
        """Return the folder of the partition of ``dataset`` for date ``ds`` in ``zone``."""
        return self.zone_path(dataset, zone) / parts.partition_dir_name(ds)

    def partition_uri(self, dataset: str, zone: str, ds: date | str) -> str:
        """Return the partition folder as a plain URI (no connection id), for XCom and lineage."""
        return self.uri_of(self.partition_path(dataset, zone, ds))

    # -- reading ------------------------------------------------------------------------------

    def read_manifest(self, dataset: str, zone: str, ds: date | str) -> parts.Manifest | None:
        """Return the committed manifest of a partition, or None if it has not been published."""
        path = self.partition_path(dataset, zone, ds) / parts.MANIFEST_NAME
        self._forget_listings()
        try:
            return parts.Manifest.from_dict(json.loads(_read_object(path)))
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise PartitionIntegrityError(f"{path}: {err}") from None

    def read_partition(
        self,
        dataset: str,
        zone: str,
        ds: date | str,
        *,
        verify: bool = True,
        expected_sha256: str | None = None,
    ) -> pa.Table:
        """Return a published partition as one Arrow table.

        :param verify: check each data file's size and sha256 against the manifest.
        :param expected_sha256: the partition digest a caller recorded earlier (lineage); a partition
            re-published since then is refused rather than read.
        :raises PartitionNotFoundError: the partition has not been published.
        :raises PartitionIntegrityError: a data file is missing or does not match its manifest, or
            the partition's digest is not ``expected_sha256``.
        """
        folder = self.partition_path(dataset, zone, ds)
        for _ in range(_READ_ATTEMPTS):
            manifest = self.read_manifest(dataset, zone, ds)
            if manifest is None:
                raise PartitionNotFoundError(f"No published partition at {folder}")
            if expected_sha256 is not None and manifest.sha256 != expected_sha256:
                raise PartitionIntegrityError(
                    f"{folder} changed since it was recorded (sha256 {expected_sha256[:12]}..., now "
                    f"{manifest.sha256[:12]}...)"
                )
            try:
                return self._read_files(folder, manifest, verify)
            except FileNotFoundError as gone:
                # A newer version committed meanwhile may have cleaned this one up: read that one.
                if self.read_manifest(dataset, zone, ds) == manifest:
                    raise PartitionIntegrityError(f"{gone} is named by the manifest but missing") from None
        raise PartitionIntegrityError(f"{folder} was re-published {_READ_ATTEMPTS} times while being read")

    def _read_files(self, folder: ObjectStoragePath, manifest: parts.Manifest, verify: bool) -> pa.Table:
        """The data files ``manifest`` names, as one table.

        :raises FileNotFoundError: a file is missing (its URI is the message).
        """
        import hashlib

        import pyarrow as pa

        tables = []
        for data_file in manifest.files:
            path = folder / data_file.name
            try:
                if self.is_local:
                    tables.append(self._read_local_file(path, data_file, verify))
                    continue
                payload = _read_object(path)
            except FileNotFoundError:
                raise FileNotFoundError(self.uri_of(path)) from None
            if verify:
                _check_digest(path, data_file, len(payload), hashlib.sha256(payload).hexdigest())
            tables.append(_read_parquet(pa.BufferReader(payload)))
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    @staticmethod
    def _read_local_file(path: ObjectStoragePath, data_file: parts.DataFile, verify: bool) -> pa.Table:
        """Decode a local data file while another thread hashes it.

        Decoding (pyarrow) and hashing both run without the GIL, so the check costs little wall
        time on a second core, and the file is read from disk once (the second reader finds it in
        the page cache). The file is content-addressed: it cannot change in between. The digest is
        checked before the table (or a decoding error) is handed on, so unverified data never
        leaves this method.
        """
        import pyarrow as pa

        if not verify:
            return _read_parquet(path.path)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-sha256") as pool:
            digest = pool.submit(_stream_digest, path.path)
            try:
                table, error = _read_parquet(path.path), None
            except (pa.ArrowException, OSError) as err:
                table, error = None, err
            size, sha = digest.result()
        _check_digest(path, data_file, size, sha)
        if error is not None:
            raise error
        return table

    def list_partitions(
        self,
        dataset: str,
        zone: str,
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> list[date]:
        """Return the dates of the published partitions in [start, end], oldest first."""
        first = parts.to_date(start) if start is not None else None
        last = parts.to_date(end) if end is not None else None
        zone_dir = self.zone_path(dataset, zone)
        self._forget_listings()
        if not zone_dir.exists():
            return []
        found = set()
        for manifest_path in zone_dir.glob(f"ds=*/{parts.MANIFEST_NAME}"):
            ds = parts.parse_partition_dir_name(manifest_path.parent.name)
            if ds is not None and parts.in_range(ds, first, last):
                found.add(ds)
        return sorted(found)

    # -- writing ------------------------------------------------------------------------------

    def write_partition(
        self,
        dataset: str,
        zone: str,
        ds: date | str,
        table: pa.Table | pa.RecordBatchReader,
        *,
        source: str | None = None,
        produced_by: dict[str, Any] | None = None,
    ) -> parts.Manifest:
        """Publish ``table`` as the partition of ``dataset`` for ``ds``, replacing any previous one.

        ``table`` may be a ``RecordBatchReader`` (or anything with ``schema``, iteration over record
        batches and ``close``, like ``core.ingest.PrefetchedBatches``): its batches are then encoded
        as they arrive, so memory stays flat whatever the size of the partition. If the stream
        raises, nothing is published, the previous version stays, and the exception propagates
        unchanged.

        Idempotent: publishing the same data again gives an identical data file and digest.
        Returns the committed manifest.
        """
        folder = self.partition_path(dataset, zone, ds)
        self._forget_listings()
        folder.mkdir(parents=True, exist_ok=True)
        data_file, row_count = self._write_data_file(folder, table)
        manifest = parts.build_manifest(
            dataset=dataset,
            zone=zone,
            ds=ds,
            row_count=row_count,
            schema=[{"name": f.name, "type": str(f.type)} for f in table.schema],
            files=[data_file],
            source=source,
            produced_by=produced_by,
        )
        self._commit(folder, manifest)
        self.log.info(
            "Published %s/%s/%s: %d rows, sha256 %s",
            dataset,
            zone,
            manifest.ds,
            manifest.row_count,
            manifest.sha256,
        )
        return manifest

    def delete_partition(self, dataset: str, zone: str, ds: date | str) -> bool:
        """Withdraw a partition: its manifest first (so readers stop seeing it), then its files.

        The files the withdrawn manifest named go at once; other files only once stale (see
        ``core.partitions.removable_files``): they may belong to a writer in flight.
        """
        folder = self.partition_path(dataset, zone, ds)
        manifest = self.read_manifest(dataset, zone, ds)
        if manifest is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            (folder / parts.MANIFEST_NAME).unlink()
        for data_file in manifest.files:
            with contextlib.suppress(FileNotFoundError):
                (folder / data_file.name).unlink()
        self._remove_stale_files(folder, keep=set())
        return True

    def copy_partition(
        self,
        dataset: str,
        from_zone: str,
        to_zone: str,
        ds: date | str,
        *,
        produced_by: dict[str, Any] | None = None,
    ) -> parts.Manifest:
        """Publish the partition of ``from_zone`` in ``to_zone`` too, byte for byte.

        The data files are copied (their content-addressed names stay the same), then the target
        manifest is committed: the target switches from its previous version to this one atomically.
        """
        source = self.read_manifest(dataset, from_zone, ds)
        if source is None:
            raise PartitionNotFoundError(
                f"No published partition at {self.partition_path(dataset, from_zone, ds)}"
            )
        src_folder = self.partition_path(dataset, from_zone, ds)
        dst_folder = self.partition_path(dataset, to_zone, ds)
        dst_folder.mkdir(parents=True, exist_ok=True)
        for data_file in source.files:
            # Placed even if the target already holds it: a fresh file cannot be cleaned up as stale
            # by a concurrent writer before this commit names it.
            self._copy_file_atomic(src_folder / data_file.name, dst_folder / data_file.name)
        manifest = parts.build_manifest(
            dataset=dataset,
            zone=to_zone,
            ds=ds,
            row_count=source.row_count,
            schema=source.schema,
            files=source.files,
            source=source.source,
            produced_by=produced_by or source.produced_by,
        )
        self._commit(dst_folder, manifest)
        return manifest

    def move_partition(
        self,
        dataset: str,
        from_zone: str,
        to_zone: str,
        ds: date | str,
        *,
        produced_by: dict[str, Any] | None = None,
    ) -> parts.Manifest:
        """Copy a partition to ``to_zone``, then withdraw it from ``from_zone``."""
        manifest = self.copy_partition(dataset, from_zone, to_zone, ds, produced_by=produced_by)
        self.delete_partition(dataset, from_zone, ds)
        return manifest

    def report_path(self, dataset: str, kind: str, ds: date | str) -> ObjectStoragePath:
        """Return the folder of the reports of one kind (validation, drift) for one date."""
        if kind not in REPORT_KINDS:
            raise ValueError(f"Unknown report kind {kind!r}")
        return (
            self.root / parts.validate_dataset_name(dataset) / "reports" / kind / parts.partition_dir_name(ds)
        )

    def write_report(self, dataset: str, kind: str, ds: date | str, files: dict[str, bytes]) -> str:
        """Write report files (name -> bytes) atomically each; return the report folder's URI."""
        folder = self.report_path(dataset, kind, ds)
        folder.mkdir(parents=True, exist_ok=True)
        for name, payload in files.items():
            self.write_bytes_atomic(folder / name, payload)
        return self.uri_of(folder)

    def quarantine_files(
        self, dataset: str, ds: date | str, files: list[ObjectStoragePath], rejection: dict[str, Any]
    ) -> str:
        """Keep unreadable source files, byte for byte, in ``quarantine/`` with a rejection report.

        Returns the URI of the quarantine folder. The published partitions are not touched. On local
        disk the folder is private to the owner (0o700) and so are its files (0o600): source data
        may be confidential. (On S3 access is the bucket policy's business.)
        """
        folder = self.partition_path(dataset, "quarantine", ds) / "source"
        folder.mkdir(parents=True, exist_ok=True)
        if self.is_local:
            import os

            os.chmod(folder.path, _PRIVATE_DIR)
        for path in files:
            self._copy_file(path, folder / path.name, mode=_PRIVATE_FILE)
        self.write_bytes_atomic(
            folder / "_rejection.json",
            json.dumps(rejection, indent=2, sort_keys=True, default=str).encode(),
            mode=_PRIVATE_FILE,
        )
        return self.uri_of(folder)

    def resolve_source(self, uri: str, *, within: Sequence[str] | None = None) -> list[ObjectStoragePath]:
        """Return the files a source URI names, sorted: one file, or every match of a glob.

        ``s3://`` sources use the storage connection. A URI that names nothing raises
        ``SourceNotFoundError``.

        :param within: for a run-time override, the locations it may read (rendered URI prefixes,
            see ``core.source_policy``): ``uri`` must lie inside one of them, checked before
            anything is listed or read, and so must every file it leads to once local symbolic
            links are resolved (local files are then returned by their real path).
        :raises InvalidConfigurationError: ``uri`` is malformed or leads outside ``within``; the
            message names the allowed locations.
        """
        from mlops_provider.core import source_policy as policy
        from mlops_provider.exceptions import SourceNotFoundError

        allowed = None
        if within is not None:
            try:
                allowed = policy.allowed_locations(within)
                uri = policy.check_inside(uri, allowed).uri
            except policy.SourcePolicyError as err:
                raise InvalidConfigurationError(f"Refused the source override: {err}.") from None
        glob_at = min((uri.find(c) for c in policy.GLOB_CHARS if c in uri), default=-1)
        if glob_at < 0:
            path = self._storage_path(uri, "source")
            path.fs.invalidate_cache()
            if not path.is_file():
                raise SourceNotFoundError(f"No source file at {uri}")
            matches = [path]
        else:
            cut = uri.rfind("/", 0, glob_at)
            base_uri, pattern = uri[:cut], uri[cut + 1 :]
            base = self._storage_path(base_uri, "source")
            base.fs.invalidate_cache()
            matches = sorted((p for p in base.glob(pattern) if p.is_file()), key=lambda p: p.path)
            if not matches:
                raise SourceNotFoundError(f"No source file matches {uri}")
        if allowed is None:
            return matches
        return [self._inside(path, uri, allowed) for path in matches]

    def _inside(self, path: ObjectStoragePath, uri: str, allowed: list[Location]) -> ObjectStoragePath:
        """``path``, a file a source override leads to, if it really lies inside ``allowed``."""
        import os

        from mlops_provider.core import source_policy as policy
        from mlops_provider.core.ingest import excerpt

        local = path.protocol in ("file", "local", "")
        real = os.path.realpath(path.path) if local else f"{path.protocol}://{path.path}"
        try:
            if local:
                prefixes = [os.path.realpath(loc.path) for loc in allowed if loc.scheme == "file"]
                policy.check_inside(real, policy.allowed_locations(prefixes))
            else:
                policy.check_inside(real, allowed)
        except policy.SourcePolicyError:
            raise InvalidConfigurationError(
                f"Refused the source override: source_uri {excerpt(uri)} leads outside the allowed "
                f"source locations ({', '.join(location.uri for location in allowed)}) through a "
                "symbolic link or an unexpected name."
            ) from None
        return self._storage_path(f"file://{real}", "source") if local else path

    def uri_of(self, path: ObjectStoragePath) -> str:
        """Return ``path`` as a plain URI without the connection id (safe for XCom and logs)."""
        return f"file://{path.path}" if self.is_local else f"{path.protocol}://{path.path}"

    def write_bytes_atomic(self, path: ObjectStoragePath, payload: bytes, *, mode: int = 0o666) -> None:
        """Write ``payload`` to ``path`` so that readers see the old or the new content, never half.

        On local disk the bytes go to a temporary sibling of this writer's own that is then renamed
        over ``path``; an object store publishes a single PUT whole, so there the object is written
        directly.

        :param mode: permissions of a local file (less the umask); ignored on object stores.
        """
        if not self.is_local:
            path.write_bytes(payload)
            return
        with self._local_temporary(path, mode) as handle:
            handle.write(payload)

    @contextlib.contextmanager
    def _local_temporary(self, path: ObjectStoragePath, mode: int) -> Iterator[IO[bytes]]:
        """A new local file of this writer's own next to ``path``, renamed over it once written whole.

        The temporary file is created with ``mode`` (never wider, whatever existed before) and is
        removed if writing fails.
        """
        import os

        tmp = f"{path.parent.path}/.{path.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _copy_file(self, source: ObjectStoragePath, target: ObjectStoragePath, *, mode: int = 0o666) -> None:
        """Copy ``source`` (any supported store) to ``target`` whole, streaming (not held in memory)."""
        import shutil

        with source.open("rb") as reader:
            if self.is_local:
                with self._local_temporary(target, mode) as writer:
                    shutil.copyfileobj(reader, writer, 8 << 20)
            else:
                with target.open("wb") as writer:
                    shutil.copyfileobj(reader, writer, 8 << 20)

    def _copy_file_atomic(self, source: ObjectStoragePath, target: ObjectStoragePath) -> None:
        """Copy one data file so that ``target`` appears whole, and fresh (see ``removable_files``).

        On local disk the copy is a hard link when the file system allows it: data files are
        content-addressed and never modified in place (a new version is a new file, renamed in), so
        two names for one immutable file are as safe as two copies, and cost no time or space. The
        link shares the source's modification time, so it is touched. Elsewhere the bytes are
        copied, streaming.
        """
        if not self.is_local:
            self._copy_file(source, target)
            return
        import os

        tmp = f"{target.parent.path}/.{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            os.link(source.path, tmp)
        except OSError:  # another file system, or no hard links there
            self._copy_file(source, target)
            return
        try:
            os.utime(tmp)
            os.replace(tmp, target.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _write_data_file(
        self, folder: ObjectStoragePath, data: pa.Table | pa.RecordBatchReader
    ) -> tuple[parts.DataFile, int]:
        """Write ``data`` as a content-addressed Parquet file.

        The Parquet bytes are hashed as they are written to a temporary file of this writer's own
        (local disk: a hidden file in the partition folder, renamed; object store: a local spool
        file, uploaded in one PUT once complete), then the file takes its name from the digest.
        Identical content already there is replaced by the identical new file all the same (an
        atomic rename or PUT, so readers see the same bytes either way): that makes it fresh, so
        a concurrent writer's cleanup cannot take it for a stale leftover before this commit.
        Returns the data file and its row count.
        """
        import os
        import tempfile

        if not self.is_local:
            with tempfile.TemporaryFile(prefix="mlops-part-") as spool:
                data_file, rows = self._encode(spool, data)
                import shutil

                spool.seek(0)
                with (folder / data_file.name).open("wb") as upload:
                    shutil.copyfileobj(spool, upload, 8 << 20)
            return data_file, rows

        tmp_path = (folder / f".part-{uuid.uuid4().hex}.tmp").path
        try:
            with open(tmp_path, "wb") as handle:
                data_file, rows = self._encode(handle, data)
                os.fsync(handle.fileno())
            os.replace(tmp_path, (folder / data_file.name).path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
            raise
        return data_file, rows

    @staticmethod
    def _encode(handle: Any, data: pa.Table | pa.RecordBatchReader) -> tuple[parts.DataFile, int]:
        sink = _HashingWriter(handle)
        rows = _write_parquet(sink, data)
        handle.flush()
        digest = sink.sha.hexdigest()
        return parts.DataFile(name=parts.data_file_name(digest[:32]), size=sink.size, sha256=digest), rows

    def _commit(self, folder: ObjectStoragePath, manifest: parts.Manifest) -> None:
        """Publish ``manifest`` in one atomic write, then remove the stale files no manifest needs.

        The now-current manifest is read back: if another writer committed after this one, its
        files are kept as well as this writer's (``core.partitions.removable_files``).
        """
        path = folder / parts.MANIFEST_NAME
        self.write_bytes_atomic(path, json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode())
        keep = {f.name for f in manifest.files}
        try:
            current = parts.Manifest.from_dict(json.loads(_read_object(path)))
            keep |= {f.name for f in current.files}
        except FileNotFoundError:  # withdrawn meanwhile: the files it named are for it to remove
            pass
        except ValueError:  # not a manifest any more: remove nothing rather than guess
            return
        self._remove_stale_files(folder, keep)

    def _remove_stale_files(self, folder: ObjectStoragePath, keep: set[str]) -> None:
        """Remove the files of ``folder`` that ``core.partitions.removable_files`` allows."""
        self._forget_listings()
        try:
            listing = folder.fs.ls(folder.path, detail=True)
        except FileNotFoundError:  # an object store has no empty folders
            return
        modified = {}
        for info in listing:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") == "file":
                modified[name] = _modified_at(info)
        # The manifest was written just now on the storage's own clock: the present, for comparing.
        now = modified.get(parts.MANIFEST_NAME, time.time())
        for name in parts.removable_files(modified, keep, now=now, stale_after=parts.STALE_AFTER_SECONDS):
            with contextlib.suppress(FileNotFoundError):  # another writer's cleanup was first
                (folder / name).unlink()
