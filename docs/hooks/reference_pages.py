"""MkDocs hook: reference pages generated at build time, so they cannot drift from the code.

- ``reference/configuration.md`` from the JSON Schemas of the dataset and model files
  (``src/mlops_provider/schemas/*.schema.json``): every key with its type, default, allowed values and
  description (and the schema's ``x-message`` advice). Where a schema sets no ``default`` or no
  ``description``, the default the parser applies and the ``:param:`` text are read from the settings
  classes in ``mlops_provider.core`` (:func:`code_defaults`, :func:`code_descriptions`).
- ``reference/provider.md`` from ``get_provider_info()``: the ``[mlops]`` config section and the
  ``mlflow`` connection type.

Reads the schema files and imports ``mlops_provider`` from ``src/`` (core settings and
``get_provider_info``; numpy and pandas at most, no Airflow). ``tests/unit/test_docs.py`` checks
the generated pages.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "src" / "mlops_provider" / "schemas"
KINDS = {
    "dataset": "Dataset file (`datasets/<name>.yaml`)",
    "model": "Model file (`models/<name>.yaml`)",
}
CONFIGURATION_PAGE = "reference/configuration.md"
PROVIDER_PAGE = "reference/provider.md"
_BOUNDS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("minItems", "items >= {}"),
    ("maxItems", "items <= {}"),
    ("minProperties", "entries >= {}"),
    ("pattern", "matches `{}`"),
    ("format", "format {}"),
)


def _import_src() -> None:
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)


def code_defaults() -> dict[str, dict[str, Any]]:
    """``{kind: {dotted key: default}}`` the parsers apply where the schema states no ``default``."""
    from dataclasses import asdict

    _import_src()
    from mlops_provider.core import pipeline_config as pc
    from mlops_provider.core.drift import DriftPolicy, DriftThresholds
    from mlops_provider.core.evaluation import DEFAULT_SELECTION_METRIC
    from mlops_provider.core.models import DEFAULT_PREPROCESSING, ModelConfig
    from mlops_provider.core.promotion import GatePolicy

    def block(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
        return {f"{prefix}.{key}": value for key, value in values.items() if not isinstance(value, dict)}

    model_fields = ModelConfig.__dataclass_fields__
    model = {key: model_fields[key].default for key in ("random_state", "reference_sample_rows")}
    model["selection_metric"] = ", ".join(f"{task}: {m}" for task, m in DEFAULT_SELECTION_METRIC.items())
    model |= block("training", asdict(pc.TRAINING_DEFAULTS))
    model |= block("drift", asdict(pc.DRIFT_DEFAULTS))
    model |= block("drift", asdict(pc.DRIFT_SETTINGS_DEFAULTS))
    model |= block("drift.thresholds", asdict(DriftThresholds()))
    model |= block("drift.policy", asdict(DriftPolicy()))
    for kind, settings in DEFAULT_PREPROCESSING.items():
        model |= {k: v for k, v in block(f"preprocessing.{kind}", asdict(settings)).items() if v is not None}
    model["gate.margin"] = GatePolicy.__dataclass_fields__["margin"].default
    model["owner"] = pc.DEFAULT_OWNER
    dataset = {"owner": pc.DEFAULT_OWNER} | block("ingest", asdict(pc.INGEST_DEFAULTS))
    return {"dataset": dataset, "model": model}


def _params(cls: type) -> dict[str, str]:
    """The ``:param name: text`` entries of a class docstring, joined lines, ``x`` for ````x````."""
    import inspect

    found: dict[str, str] = {}
    name = None
    for line in (inspect.getdoc(cls) or "").splitlines():
        match = re.match(r":param (\w+):\s*(.*)", line)
        if match:
            name, found[match[1]] = match[1], match[2]
        elif name and line.startswith(" ") and line.strip():
            found[name] += " " + line.strip()
        else:
            name = None
    return {key: text.replace("``", "`") for key, text in found.items()}


def code_descriptions() -> dict[str, dict[str, str]]:
    """``{kind: {dotted key: text}}`` from the docstrings of the classes that hold those settings."""
    _import_src()
    from mlops_provider.core.drift import DriftPolicy, DriftThresholds
    from mlops_provider.core.models import ColumnPreprocessing
    from mlops_provider.core.promotion import GatePolicy

    model = {f"gate.{key}": text for key, text in _params(GatePolicy).items()}
    model |= {f"drift.thresholds.{key}": text for key, text in _params(DriftThresholds).items()}
    model |= {f"drift.policy.{key}": text for key, text in _params(DriftPolicy).items()}
    for kind in ("numeric", "categorical", "boolean"):
        model |= {f"preprocessing.{kind}.{k}": text for k, text in _params(ColumnPreprocessing).items()}
    return {"dataset": {}, "model": model}


def _default_text(value: Any) -> str:
    if isinstance(value, str) and ": " in value:  # a default per task, already readable
        return value
    if isinstance(value, (list, tuple)) and not value:
        return ""
    return f"`{json.dumps(value, default=str)}`"


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (``dataset`` or ``model``) as shipped in the package."""
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` merged in (the node's own keys win, e.g. its description)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        kinds = sorted({type(v).__name__ for v in node["enum"]})
        return " or ".join({"str": "string", "bool": "boolean", "int": "integer"}.get(k, k) for k in kinds)
    kind = node.get("type", "any")
    text = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(node.get("items"), dict):
        text += " of " + _type(node["items"])
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        text = "mapping of name to " + _type(node["additionalProperties"])
    return text


def _allowed(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append(", ".join(f"`{json.dumps(v)}`" for v in node["enum"]))
    parts += [template.format(node[key]) for key, template in _BOUNDS if key in node]
    items = node.get("items")
    if isinstance(items, dict) and "enum" not in node:
        inner = _allowed(items)
        if inner:
            parts.append(f"each: {inner}")
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        inner = _allowed(values)
        if inner:
            parts.append(f"each value: {inner}")
    return "; ".join(parts)


def _text(text: str) -> str:
    """``text`` as Markdown: ``<name>`` outside code spans is escaped, or it would vanish as a tag."""
    parts = text.split("`")
    parts[::2] = [html.escape(part, quote=False) for part in parts[::2]]
    return "`".join(parts)


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|").replace("\n", " ") or "-"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def schema_rows(kind: str) -> list[dict[str, str]]:
    """One row per key of the ``kind`` file, nested keys dotted (``drift.policy.weighting``)."""
    schema = load_schema(kind)
    defaults = code_defaults()[kind]
    descriptions = code_descriptions()[kind]
    rows: list[dict[str, str]] = []

    def walk(node: dict[str, Any], prefix: str, required: set[str]) -> None:
        for name, child in node.get("properties", {}).items():
            child = _resolve(child, schema)
            key = f"{prefix}{name}"
            description = child.get("description", descriptions.get(key, ""))
            if "x-message" in child:
                description = f"{description} Invalid values: {child['x-message']}.".strip()
            rows.append(
                {
                    "key": key,
                    "type": _type(child),
                    "required": "yes" if name in required else "",
                    "default": _default_text(child.get("default", defaults.get(key, ()))),
                    "allowed": _allowed(child),
                    "description": description,
                }
            )
            if "properties" in child:
                walk(child, f"{key}.", set(child.get("required", [])))

    walk(schema, "", set(schema.get("required", [])))
    return rows


def configuration_page() -> str:
    """The Markdown of the configuration reference."""
    lines = [
        "# Configuration reference",
        "",
        "Generated when the site is built from the JSON Schemas shipped in the package",
        "(`mlops_provider/schemas/dataset.schema.json` and `model.schema.json`), the same schemas that",
        "check every file when the pipelines are parsed. Defaults and descriptions the schemas do not",
        "state come from the settings classes the parsers fill (`mlops_provider.core`). Unknown keys are",
        "errors. A key",
        "without a default is required, optional and unused when absent, or defaulted as",
        "[Pipelines from configuration](../pipelines.md) describes (e.g. `task`, `gate.metric`).",
        "What a schema cannot say (a column named in `keys` must exist in `schema`, the gate's metrics",
        "must belong to the task) is checked by the parser after the schema.",
    ]
    for kind, title in KINDS.items():
        schema = load_schema(kind)
        lines += ["", f"## {title}", "", _text(schema.get("description", "")), ""]
        lines += [
            "| key | type | required | default | allowed values | description |",
            "|---|---|---|---|---|---|",
        ]
        for row in schema_rows(kind):
            cells = [f"`{row['key']}`"] + [
                _cell(row[c]) for c in ("type", "required", "default", "allowed", "description")
            ]
            lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def _provider_info() -> dict[str, Any]:
    _import_src()
    from mlops_provider.get_provider_info import get_provider_info

    return get_provider_info()


def provider_page(info: dict[str, Any] | None = None) -> str:
    """The Markdown of the ``[mlops]`` section and the ``mlflow`` connection type."""
    info = info or _provider_info()
    lines = [
        "# Provider settings",
        "",
        "Generated when the site is built from `mlops_provider.get_provider_info()`, the metadata Airflow",
        "reads through the `apache_airflow_provider` entry point.",
    ]
    for section, spec in info.get("config", {}).items():
        lines += [
            "",
            f"## The `[{section}]` section",
            "",
            _text(spec.get("description", "")),
            f"Set an option in `airflow.cfg` or as `AIRFLOW__{section.upper()}__<OPTION>`;",
            f"`airflow config list --section {section}` shows them.",
            "",
            "| option | default | example | description |",
            "|---|---|---|---|",
        ]
        for name, option in spec["options"].items():
            cells = [f"`{name}`", f"`{option.get('default')}`", f"`{option.get('example')}`"]
            lines.append(_row([*cells, _cell(option.get("description", ""))]))
    for conn in info.get("connection-types", []):
        behaviour = conn.get("ui-field-behaviour", {})
        relabel = behaviour.get("relabeling", {})
        placeholders = behaviour.get("placeholders", {})
        hidden = ", ".join(f"`{f}`" for f in behaviour.get("hidden-fields", [])) or "none"
        lines += [
            "",
            f"## The `{conn['connection-type']}` connection type",
            "",
            f"Hook: `{conn['hook-class-name']}` ({conn.get('hook-name', '')}). Hidden fields: {hidden}.",
            "",
            "| field | label in the form | placeholder |",
            "|---|---|---|",
        ]
        for field in sorted(set(relabel) | set(placeholders)):
            label = _cell(relabel.get(field, field.capitalize()))
            lines.append(f"| `{field}` | {label} | {_cell(placeholders.get(field, ''))} |")
        fields = conn.get("conn-fields", {})
        if fields:
            lines += ["", "Extra fields (stored in the connection's extra):", ""]
            lines += ["| extra | label | type | description |", "|---|---|---|---|"]
            for name, field in fields.items():
                kind = field.get("schema", {}).get("type", "")
                kind = " or ".join(kind) if isinstance(kind, list) else kind
                cells = [
                    f"`{name}`",
                    _cell(field.get("label", "")),
                    kind,
                    _cell(field.get("description", "")),
                ]
                lines.append(_row(cells))
    links = info.get("extra-links", [])
    if links:
        lines += ["", "## Extra links", "", "Buttons the provider adds to task instances:", ""]
        lines += [f"- `{link}`" for link in links]
    return "\n".join(lines) + "\n"


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site (MkDocs calls this once per build)."""
    from mkdocs.structure.files import File

    for path, content in ((CONFIGURATION_PAGE, configuration_page()), (PROVIDER_PAGE, provider_page())):
        files.append(File.generated(config, path, content=content))
    return files
