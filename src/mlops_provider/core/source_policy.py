"""Where a run may read its source from: URI locations and the decision "is X inside?" (pure, no I/O).

A dataset's configuration says where its files come from (``source.uri``). A run may override that
for a one-off load (the ``source_uri`` Param), but only inside the locations the configuration
allows: ``source.allowed_uris`` (URI prefixes), or, when that is empty, the configured location:
the folder of ``source.uri`` before its first run-dependent part (see :func:`configured_location`).
Anything else is refused before a byte is read, so a Param cannot turn ingest into a copier of
``/etc/shadow`` or of the stack's own secrets.

The decision works on text only: URIs are normalised (``//`` and ``.`` segments dropped) and
compared segment by segment, so ``/landing/churn`` does not allow ``/landing/churn2``. Whatever a
lower layer might decode or interpret differently is refused outright: ``..`` segments,
``%``-escapes, backslashes, control characters, query or fragment marks, hosts in ``file://`` URIs,
connection ids or ports in ``s3://`` buckets. Symlinks are for the caller to resolve (local paths
through ``os.path.realpath``) and check again with :func:`check_inside`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_provider.core.ingest import excerpt

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

MAX_URI_LENGTH = 1024
SCHEMES = ("file", "s3")
GLOB_CHARS = "*?["
# Template expressions that do not depend on the run, so a location may start with them.
FIXED_TEMPLATE_NAMES = ("data_root",)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_FIXED_EXPRESSION = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_RUN_DEPENDENT = ("{{", "{%", "{#", *GLOB_CHARS)


class SourcePolicyError(ValueError):
    """A source URI is malformed or outside the allowed locations; the message says which."""


@dataclass(frozen=True)
class Location:
    """A normalised ``file://`` or ``s3://`` URI: scheme, bucket (``""`` for files) and path segments."""

    scheme: str
    bucket: str
    segments: tuple[str, ...]

    @property
    def uri(self) -> str:
        path = "/".join(self.segments)
        return f"file:///{path}" if self.scheme == "file" else f"s3://{self.bucket}/{path}".rstrip("/")

    @property
    def path(self) -> str:
        """The local path of a ``file://`` location."""
        return "/" + "/".join(self.segments)

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this location or lies below it (whole segments)."""
        return (
            other.scheme == self.scheme
            and other.bucket == self.bucket
            and other.segments[: len(self.segments)] == self.segments
        )


def parse_location(uri: str, what: str = "URI") -> Location:
    """``uri`` (``file:///abs``, a bare ``/abs`` path, or ``s3://bucket/key``) normalised.

    :param what: how to call the URI in messages.
    :raises SourcePolicyError: too long, an unsupported scheme, or anything the module docstring
        lists as refused. The message quotes the URI only as a short escaped excerpt.
    """
    if not isinstance(uri, str) or not uri:
        raise SourcePolicyError(f"{what} is empty")
    if len(uri) > MAX_URI_LENGTH:
        raise SourcePolicyError(f"{what} is {len(uri):,} characters long (at most {MAX_URI_LENGTH})")
    shown = excerpt(uri)
    if any(ord(c) < 32 or ord(c) == 127 for c in uri) or any(c in uri for c in "\\%#"):
        raise SourcePolicyError(f"{what} {shown} holds control characters, '\\', '%' or '#'")
    if uri.startswith("/"):
        uri = f"file://{uri}"
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise SourcePolicyError(f"{what} {shown} is not a file:// or s3:// URI")
    if scheme == "file":
        if not rest.startswith("/"):
            raise SourcePolicyError(f"{what} {shown} names a host: use file:///absolute/path")
        bucket, path = "", rest
    else:
        bucket, _, path = rest.partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise SourcePolicyError(f"{what} {shown} does not start with a plain bucket name")
    segments = tuple(s for s in path.split("/") if s not in ("", "."))
    if ".." in segments:
        raise SourcePolicyError(f"{what} {shown} climbs out of its folder with '..'")
    return Location(scheme, bucket, segments)


def allowed_locations(prefixes: Iterable[str]) -> list[Location]:
    """The rendered allowed prefixes as locations; a prefix with a glob character is refused."""
    locations = []
    for prefix in prefixes:
        location = parse_location(prefix, "allowed source location")
        if any(c in prefix for c in GLOB_CHARS):
            raise SourcePolicyError(f"allowed source location {excerpt(prefix)} holds a glob character")
        if location.scheme == "file" and not location.segments:
            raise SourcePolicyError("allowed source location file:/// is the whole file system")
        locations.append(location)
    return locations


def check_inside(uri: str, allowed: Sequence[Location], what: str = "source_uri") -> Location:
    """Return ``uri``'s location if it lies inside one of ``allowed``.

    A glob may only be written below the allowed prefix (a glob segment never equals a prefix
    segment), so its matches stay inside too, as far as text goes; the caller checks each match
    again once symlinks are resolved.

    :raises SourcePolicyError: ``uri`` is malformed or outside every allowed location; the message
        lists the allowed locations.
    """
    location = parse_location(uri, what)
    if not allowed:
        raise SourcePolicyError(
            f"{what} overrides are not allowed for this dataset: list the locations they may read "
            "from in source.allowed_uris"
        )
    if not any(prefix.contains(location) for prefix in allowed):
        raise SourcePolicyError(
            f"{what} {excerpt(location.uri)} is outside the allowed source locations "
            f"({', '.join(prefix.uri for prefix in allowed)}): set source.allowed_uris to read elsewhere"
        )
    return location


def configured_location(uri_template: str) -> str | None:
    """The folder of a ``source.uri`` template before its first run-dependent part, still templated.

    Run-dependent means a template expression (``{{``, ``{%``, ``{#``) other than one of
    :data:`FIXED_TEMPLATE_NAMES` on its own (``{{ data_root }}``), or a glob character. For
    ``{{ data_root }}/landing/churn/{{ ds }}.csv`` that is ``{{ data_root }}/landing/churn/``; the
    caller renders it. Returns None when nothing is left (the URI starts run-dependent).
    """
    position = 0
    while True:
        found = [i for i in (uri_template.find(m, position) for m in _RUN_DEPENDENT) if i >= 0]
        stop = min(found, default=len(uri_template))
        fixed = _FIXED_EXPRESSION.match(uri_template, stop)
        if fixed is None or fixed.group(1) not in FIXED_TEMPLATE_NAMES:
            break
        position = fixed.end()
    folder = uri_template[: uri_template.rfind("/", 0, stop) + 1]
    return folder or None
