"""Unknown keys in configuration mappings: each one is a problem, with a "did you mean" when close.

Shared by every parser of the YAML files (datasets, models, pipeline settings) so that a typo such as
``key_columns:`` for ``keys:`` is an error that names the right key instead of a silent default.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class ConfigError(ValueError):
    """A configuration file is missing or malformed: the message says where and what, ``problems``
    lists each problem on its own (the whole message when there is one)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    if not close:
        # Renamings that share little spelling (key_columns -> keys) still share a word.
        parts = [part for part in word.lower().split("_") if len(part) >= 3]
        close = [k for k in sorted(known) if any(k.startswith(p) or p.startswith(k) for p in parts)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key_problems(raw: Mapping[str, Any], known: Iterable[str], where: str) -> list[str]:
    """One sentence per key of ``raw`` that is not in ``known``; ``where`` names the mapping."""
    known = set(known)
    return [
        f"unknown key {str(key)!r} in {where}{did_you_mean(str(key), known)}; known keys: "
        + ", ".join(sorted(known))
        for key in raw
        if key not in known
    ]
