"""The JSON Schemas of the configuration files, shipped in ``mlops_provider/schemas/``, and checks.

The schemas own the structure of dataset and model files (which keys exist, their types and
ranges); editors use them to complete and check the files (``# yaml-language-server: $schema=...``).
The parsers in :mod:`~mlops_provider.core.datasets` and :mod:`~mlops_provider.core.models` run
:func:`schema_problems` first, then check what a schema cannot say (columns that must exist, the
estimator, metrics of the task). ``jsonschema`` is light (Airflow imports it already), so this also
runs when the pipelines are parsed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from mlops_provider.core.config_keys import did_you_mean

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
KINDS = ("dataset", "model")


def schema_path(kind: str) -> Path:
    """The JSON Schema file of ``kind`` (``dataset`` or ``model``)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown configuration kind {kind!r}: expected one of {', '.join(KINDS)}.")
    return SCHEMA_DIR / f"{kind}.schema.json"


@functools.cache
def load_schema(kind: str) -> dict[str, Any]:
    """The parsed JSON Schema of ``kind``."""
    return json.loads(schema_path(kind).read_text())


@functools.cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(kind)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _as_json(value: Any) -> Any:
    """YAML reads ``2026-01-01`` as a date: compare such values as the ISO strings JSON would hold."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _where(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "the top level"


def _message(error: Any) -> list[str]:
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        if known and unknown:
            label = "the top level" if where == "the top level" else f"'{where}'"
            return [
                f"unknown key {str(key)!r} in {label}{did_you_mean(str(key), known)}"
                f" (known: {', '.join(sorted(known))})"
                for key in unknown
            ]
    if "x-message" in error.schema:  # the schema's own advice for this value
        return [f"'{where}': {error.instance!r} is not valid: {error.schema['x-message']}"]
    if error.validator == "required":
        return [f"{error.message} at {where if where == 'the top level' else repr(where)}"]
    return [f"'{where}': {error.message}" if where != "the top level" else error.message]


def schema_problems(kind: str, raw: Any) -> list[str]:
    """Every way ``raw`` (a parsed YAML mapping) breaks the JSON Schema of ``kind``, as sentences.

    Unknown keys come with a "did you mean" when one known key is close.
    """
    errors = sorted(_validator(kind).iter_errors(_as_json(raw)), key=lambda e: list(map(str, e.path)))
    return [message for error in errors for message in _message(error)]
