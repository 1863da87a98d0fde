"""Dataset partitions: names, keys and manifests (pure Python, no I/O).

Layout under the data root, one folder per dataset::

    <dataset>/<zone>/ds=YYYY-MM-DD/part-<token>.parquet
    <dataset>/<zone>/ds=YYYY-MM-DD/_manifest.json

A partition exists only through its manifest: the manifest is written last and names the data
file(s) it publishes, so a data file without a manifest that names it is invisible to readers.

Several writers may publish the same partition at once (a scheduled run and a manual re-run): each
writes its data file under its content-addressed name (through a temporary name of its own), then
its manifest; the last manifest written wins whole. Cleanup after a commit follows one rule
(:func:`removable_files`): a file is removed only if the now-current manifest does not name it
**and** it has not been modified for :data:`STALE_AFTER_SECONDS`. A writer in flight has written
(or re-placed, when identical content was already there) each of its files moments before it
commits, and its temporary file grows while it writes, so no writer loses a file to another's
cleanup; what a crashed writer or a superseded version leaves behind goes at the first commit after
it has gone stale. (A reader that finds a file of the manifest it read gone re-reads the manifest:
the storage hook does that.)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
ZONES = ("raw", "validated", "quarantine")

#: Seconds a file no manifest names is kept after its last modification (see the module docstring):
#: far longer than any writer takes between placing its data file and committing its manifest, or
#: any reader between reading a manifest and the files it names.
STALE_AFTER_SECONDS = 3600.0

_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PARTITION_DIR = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")
_DATA_FILE = re.compile(r"^part-[0-9a-f]{32}\.parquet$")


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it is safe to use as a path segment, else raise ``ValueError``.

    Lower-case letters, digits and underscores, starting with a letter, at most 63 characters.
    """
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise ValueError(
            f"Invalid dataset name {name!r}: use lower-case letters, digits and '_', "
            "starting with a letter, at most 63 characters."
        )
    return name


def validate_zone(zone: str) -> str:
    """Return ``zone`` if it is one of ``ZONES``, else raise ``ValueError``."""
    if zone not in ZONES:
        raise ValueError(f"Invalid zone {zone!r}: expected one of {', '.join(ZONES)}.")
    return zone


def to_date(value: date | str) -> date:
    """Return the calendar date of ``value`` (a date, a datetime or an ISO ``YYYY-MM-DD`` string)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"Invalid partition date {value!r}: expected YYYY-MM-DD.") from None


def partition_dir_name(ds: date | str) -> str:
    """Return the folder name of the partition for date ``ds`` (``ds=YYYY-MM-DD``)."""
    return f"ds={to_date(ds).isoformat()}"


def parse_partition_dir_name(name: str) -> date | None:
    """Return the date a ``ds=YYYY-MM-DD`` folder name stands for, or None for any other name."""
    match = _PARTITION_DIR.fullmatch(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def is_data_file_name(name: str) -> bool:
    """Return whether ``name`` has the shape of a data file this module names."""
    return bool(_DATA_FILE.fullmatch(name))


def is_temporary_name(name: str) -> bool:
    """Return whether ``name`` is a writer's temporary file (``.<something>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def removable_files(
    modified: dict[str, float], keep: Iterable[str], *, now: float, stale_after: float = STALE_AFTER_SECONDS
) -> list[str]:
    """The files of a partition folder that cleanup may remove, sorted.

    :param modified: name -> last modification time (seconds since the epoch) of every file in the
        folder, as the storage reports it.
    :param keep: the names the now-current manifest (and the committing writer's own) name.
    :param now: the storage's present time (e.g. the modification time of the manifest just
        written, so that both sides of the comparison come from the same clock).
    :param stale_after: seconds without modification after which an unnamed file counts as left over.

    Only data files and temporary files are candidates: the manifest and anything else stays.
    """
    kept = set(keep)
    return sorted(
        name
        for name, mtime in modified.items()
        if (is_data_file_name(name) or is_temporary_name(name))
        and name not in kept
        and mtime <= now - stale_after
    )


def data_file_name(token: str) -> str:
    """Return the name of a data file for a 32-hex-digit ``token`` (a prefix of its sha256)."""
    name = f"part-{token}.parquet"
    if not is_data_file_name(name):
        raise ValueError(f"Invalid data file token {token!r}")
    return name


def in_range(ds: date, start: date | None, end: date | None) -> bool:
    """Return whether ``ds`` lies in the closed interval [start, end] (open where None)."""
    return (start is None or ds >= start) and (end is None or ds <= end)


@dataclass(frozen=True)
class DataFile:
    """One published data file: its name inside the partition folder, size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a published partition holds and where it came from."""

    dataset: str
    zone: str
    ds: str
    row_count: int
    schema: list[dict[str, str]]
    files: list[DataFile]
    source: str | None = None
    produced_by: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    version: int = MANIFEST_VERSION

    @property
    def sha256(self) -> str:
        """One digest for the whole partition: of the single file, or of the files' digests."""
        if len(self.files) == 1:
            return self.files[0].sha256
        return hashlib.sha256("".join(f.sha256 for f in self.files).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sha256"] = self.sha256
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Build a manifest from its JSON form; raise ``ValueError`` if it is malformed."""
        try:
            files = [DataFile(**f) for f in data["files"]]
            manifest = cls(
                dataset=data["dataset"],
                zone=data["zone"],
                ds=data["ds"],
                row_count=int(data["row_count"]),
                schema=list(data["schema"]),
                files=files,
                source=data.get("source"),
                produced_by=dict(data.get("produced_by") or {}),
                created_at=data.get("created_at", ""),
                version=int(data.get("version", MANIFEST_VERSION)),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"Malformed partition manifest: {err!r}") from None
        for f in files:
            if not is_data_file_name(f.name):
                raise ValueError(f"Malformed partition manifest: bad data file name {f.name!r}")
        return manifest


def build_manifest(
    *,
    dataset: str,
    zone: str,
    ds: date | str,
    row_count: int,
    schema: list[dict[str, str]],
    files: list[DataFile],
    source: str | None,
    produced_by: dict[str, Any] | None,
    now: datetime | None = None,
) -> Manifest:
    """Return the manifest of a partition about to be committed, with names validated."""
    return Manifest(
        dataset=validate_dataset_name(dataset),
        zone=validate_zone(zone),
        ds=to_date(ds).isoformat(),
        row_count=int(row_count),
        schema=schema,
        files=files,
        source=source,
        produced_by=dict(produced_by or {}),
        created_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
    )


def resolve_partition_date(explicit: str | None, logical_date: date | datetime | None) -> date:
    """Return the date a run's partition is for: the explicit date if given, else the logical date.

    Runs without a logical date (REST with ``logical_date: null``, asset-triggered runs) must name
    the date explicitly: guessing from the clock would silently publish the wrong day.
    """
    if explicit not in (None, ""):
        return to_date(explicit)
    if logical_date is None:
        raise ValueError(
            "This run has no logical date: set the partition_date Param (YYYY-MM-DD) "
            "to say which day to process."
        )
    return to_date(logical_date)
