"""DatasetStorageHook: dataset partitions on ``file://`` or ``s3://`` storage, published atomically.

Storage is addressed through Airflow's ``ObjectStoragePath``: ``file://`` needs nothing, ``s3://``
uses an Airflow ``aws`` connection (with ``endpoint_url`` in its extra for MinIO or a test server).

Publishing a partition (see ``core.partitions`` for the layout):

1. the data is written to a content-addressed ``part-<sha256 prefix>.parquet`` in the partition folder;
2. the manifest naming that file is committed last, in one step (rename on local disk, a single
   PUT on S3, both atomic);
3. data files the new manifest does not name (the previous version, debris of crashed writes)
   are removed.

A crash before step 2 leaves the previous version readable and nothing new visible.
"""

from __future__ import annotations

import json
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mlops_provider.core import partitions as parts
from mlops_provider.exceptions import (
    InvalidConfigurationError,
    PartitionIntegrityError,
    PartitionNotFoundError,
)

if TYPE_CHECKING:
    from datetime import date

    import pyarrow as pa
    from airflow.sdk import ObjectStoragePath

_SUPPORTED_SCHEMES = ("file", "s3")


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
        if not path.exists():
            return None
        try:
            return parts.Manifest.from_dict(json.loads(path.read_bytes()))
        except ValueError as err:
            raise PartitionIntegrityError(f"{path}: {err}") from None

    def read_partition(self, dataset: str, zone: str, ds: date | str, *, verify: bool = True) -> pa.Table:
        """Return a published partition as one Arrow table.

        :param verify: check each data file's size and sha256 against the manifest.
        :raises PartitionNotFoundError: the partition has not been published.
        :raises PartitionIntegrityError: a data file is missing or does not match its manifest.
        """
        import hashlib

        import pyarrow as pa
        import pyarrow.parquet as pq

        manifest = self.read_manifest(dataset, zone, ds)
        folder = self.partition_path(dataset, zone, ds)
        if manifest is None:
            raise PartitionNotFoundError(f"No published partition at {folder}")
        tables = []
        for data_file in manifest.files:
            path = folder / data_file.name
            try:
                if self.is_local:
                    # Hash while streaming, then let Parquet map the file: the bytes are never held
                    # twice. The file is content-addressed, so it cannot change in between.
                    size, digest = _stream_digest(path.path) if verify else (data_file.size, data_file.sha256)
                    source = path.path
                else:
                    payload = path.read_bytes()
                    size, digest = len(payload), hashlib.sha256(payload).hexdigest()
                    source = pa.BufferReader(payload)
            except FileNotFoundError:
                raise PartitionIntegrityError(f"{path} is named by the manifest but missing") from None
            if verify and (size != data_file.size or digest != data_file.sha256):
                raise PartitionIntegrityError(f"{path} does not match the sha256 in its manifest")
            tables.append(pq.read_table(source, memory_map=self.is_local))
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

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
        table: pa.Table,
        *,
        source: str | None = None,
        produced_by: dict[str, Any] | None = None,
    ) -> parts.Manifest:
        """Publish ``table`` as the partition of ``dataset`` for ``ds``, replacing any previous one.

        Idempotent: publishing the same table again gives an identical data file and digest.
        Returns the committed manifest.
        """
        folder = self.partition_path(dataset, zone, ds)
        self._forget_listings()
        folder.mkdir(parents=True, exist_ok=True)
        data_file = self._write_data_file(folder, table)
        manifest = parts.build_manifest(
            dataset=dataset,
            zone=zone,
            ds=ds,
            row_count=table.num_rows,
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
        """Withdraw a partition: its manifest first (so readers stop seeing it), then its files."""
        folder = self.partition_path(dataset, zone, ds)
        manifest_path = folder / parts.MANIFEST_NAME
        self._forget_listings()
        if not manifest_path.exists():
            return False
        manifest_path.unlink()
        for path in folder.iterdir():
            if parts.is_data_file_name(path.name):
                path.unlink()
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
            target = dst_folder / data_file.name
            if not (target.exists() and target.stat().st_size == data_file.size):
                self._copy_file_atomic(src_folder / data_file.name, target)
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
        if kind not in ("validation", "drift"):
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

        Returns the URI of the quarantine folder. The published partitions are not touched.
        """
        folder = self.partition_path(dataset, "quarantine", ds) / "source"
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            self.write_bytes_atomic(folder / path.name, path.read_bytes())
        self.write_bytes_atomic(
            folder / "_rejection.json", json.dumps(rejection, indent=2, sort_keys=True, default=str).encode()
        )
        return self.uri_of(folder)

    def resolve_source(self, uri: str) -> list[ObjectStoragePath]:
        """Return the files a source URI names, sorted: one file, or every match of a glob.

        ``s3://`` sources use the storage connection. A URI that names nothing raises
        ``SourceNotFoundError``.
        """
        from mlops_provider.exceptions import SourceNotFoundError

        glob_at = min((uri.find(c) for c in "*?[" if c in uri), default=-1)
        if glob_at < 0:
            path = self._storage_path(uri, "source")
            path.fs.invalidate_cache()
            if not path.is_file():
                raise SourceNotFoundError(f"No source file at {uri}")
            return [path]
        cut = uri.rfind("/", 0, glob_at)
        base_uri, pattern = uri[:cut], uri[cut + 1 :]
        base = self._storage_path(base_uri, "source")
        base.fs.invalidate_cache()
        matches = sorted((p for p in base.glob(pattern) if p.is_file()), key=lambda p: p.path)
        if not matches:
            raise SourceNotFoundError(f"No source file matches {uri}")
        return matches

    def uri_of(self, path: ObjectStoragePath) -> str:
        """Return ``path`` as a plain URI without the connection id (safe for XCom and logs)."""
        return f"file://{path.path}" if self.is_local else f"{path.protocol}://{path.path}"

    def write_bytes_atomic(self, path: ObjectStoragePath, payload: bytes) -> None:
        """Write ``payload`` to ``path`` so that readers see the old or the new content, never half.

        On local disk the bytes go to a temporary sibling that is then renamed over ``path``; an
        object store publishes a single PUT whole, so there the object is written directly.
        """
        if not self.is_local:
            path.write_bytes(payload)
            return
        import os

        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        with open(tmp.path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp.path, path.path)

    def _copy_file_atomic(self, source: ObjectStoragePath, target: ObjectStoragePath) -> None:
        """Copy one file so that ``target`` appears whole; on local disk without holding its bytes."""
        if not self.is_local:
            self.write_bytes_atomic(target, source.read_bytes())
            return
        import os
        import shutil

        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        shutil.copyfile(source.path, tmp.path)
        os.replace(tmp.path, target.path)

    def _write_data_file(self, folder: ObjectStoragePath, table: pa.Table) -> parts.DataFile:
        """Write ``table`` as a content-addressed Parquet file; identical content is written once."""
        import hashlib

        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        payload = sink.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        data_file = parts.DataFile(name=parts.data_file_name(digest[:32]), size=payload.size, sha256=digest)
        path = folder / data_file.name
        # A file of this name and size already holds these bytes: rewriting it in place could
        # expose a half-written file to a reader of the current manifest.
        if not (path.exists() and path.stat().st_size == data_file.size):
            self.write_bytes_atomic(path, payload)
        return data_file

    def _commit(self, folder: ObjectStoragePath, manifest: parts.Manifest) -> None:
        """Publish ``manifest`` in one atomic write, then remove the files it no longer names."""
        payload = json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode()
        self.write_bytes_atomic(folder / parts.MANIFEST_NAME, payload)
        self._remove_unlisted_files(folder, manifest)

    def _remove_unlisted_files(self, folder: ObjectStoragePath, manifest: parts.Manifest) -> None:
        keep = {f.name for f in manifest.files}
        for path in folder.iterdir():
            stray_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            if (parts.is_data_file_name(path.name) and path.name not in keep) or stray_tmp:
                path.unlink()
