"""Render a model card: one Markdown page per registered model version, logged as an MLflow artifact.

It leads with the decision (promoted or not, and why) and what the model predicts, then how it
scored on the holdout next to the champion (the metrics of its task), the quality gate, what it was
trained on (data window), its parameters, and last its lineage (input partitions with hashes,
Airflow run, MLflow run). Pure string building over plain dicts; values are escaped for Markdown
tables, floats shown with four decimals, missing values as "n/a".
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from mlops_provider.core.evaluation import METRICS, is_finite_number
from mlops_provider.core.promotion import GateDecision

if TYPE_CHECKING:
    from collections.abc import Sequence

# Lists longer than this are shortened to their first and last items in a table cell.
_MAX_LIST_ITEMS = 8


def _cell(value: Any, *, exact: bool = False) -> str:
    """One value as the text of a Markdown table cell (floats with 4 decimals unless ``exact``)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        text = "n/a"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = repr(value) if exact else f"{value:.4f}"
    elif isinstance(value, (list, tuple)):
        items = [_cell(v, exact=exact) for v in value]
        if len(items) > _MAX_LIST_ITEMS:
            items = [*items[:3], "…", *items[-2:], f"({len(value)} values)"]
        text = ", ".join(items)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Sequence[Sequence[Any]], *, exact: bool = False) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v, exact=exact) for v in row) + " |" for row in rows]
    return lines


def _mapping(data: dict) -> list[str]:
    """Key/value table of the scalar entries; each list of dicts as its own table below it."""
    scalars = [[key, value] for key, value in data.items() if not _is_records(value)]
    lines = _table(["Field", "Value"], scalars, exact=True) if scalars else []
    for key, value in data.items():
        if _is_records(value):
            columns = list(dict.fromkeys(k for record in value for k in record))
            lines += [
                "",
                f"**{_cell(key)}**",
                "",
                *_table(columns, [[r.get(c) for c in columns] for r in value], exact=True),
            ]
    return lines or ["n/a"]


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _metrics_table(metrics: dict, comparison: dict) -> list[str]:
    champion = comparison.get("champion_metrics")
    version = comparison.get("champion_version")
    if champion is None:
        rows = [[name, value, _direction(name)] for name, value in metrics.items()]
        return _table(["Metric", "Challenger", "Better"], rows)
    rows = []
    for name in dict.fromkeys([*metrics, *champion]):
        new, old = metrics.get(name), champion.get(name)
        numbers = is_finite_number(new) and is_finite_number(old)
        rows.append([name, new, old, f"{new - old:+.4f}" if numbers else None, _direction(name)])
    return _table(["Metric", "Challenger", f"Champion (version {version})", "Difference", "Better"], rows)


def _task_text(task: str, classes: Sequence[Any]) -> str:
    """One sentence on what the model predicts, e.g. "multiclass classification of 3 classes (a, b, c)"."""
    names = _cell(list(classes))
    if task == "binary" and len(classes) == 2:
        return f"binary classification of {names}: scores are the probability of {_cell(classes[1])}"
    if task == "multiclass":
        return f"multiclass classification of {len(classes)} classes ({names}): one probability per class"
    if task == "regression":
        return "regression: the predicted value of the target"
    return _cell(task)


def _direction(name: str) -> str:
    if name not in METRICS:
        return ""
    return "higher" if METRICS[name].greater_is_better else "lower"


def render_model_card(
    *,
    model_name: str,
    version: str | None,
    data_window: dict,
    metrics: dict,
    champion_comparison: dict | GateDecision,
    lineage: dict,
    params: dict,
    task: str | None = None,
    classes: Sequence[Any] = (),
) -> str:
    """The model card of one challenger as Markdown.

    :param version: the registered model version, None before registration.
    :param data_window: what the model was trained and evaluated on (days, rows, dataset).
    :param metrics: the challenger's holdout metrics.
    :param champion_comparison: the gate's :class:`GateDecision` (or its ``to_dict()``).
    :param lineage: where it came from: input partitions (a list of dicts becomes a table), runs.
    :param params: the estimator parameters of the candidate.
    :param task: ``binary``, ``multiclass`` or ``regression`` (a line saying what the model
        predicts); ``classes``: the target classes in the order of the model's probability columns.
    """
    comparison = (
        champion_comparison.to_dict()
        if isinstance(champion_comparison, GateDecision)
        else champion_comparison
    )
    title = f"# Model card: {model_name}" + (f" version {version}" if version is not None else "")
    promote = comparison.get("promote")
    verdicts: dict[object, str] = {True: "promoted to champion", False: "not promoted (stays challenger)"}
    verdict = verdicts.get(promote, "n/a")
    champion = comparison.get("champion_version")
    gate: list[list[Any]] = [
        ["Decision", verdict],
        ["Reason", comparison.get("reason")],
        ["Champion at evaluation", "none" if champion is None else f"version {champion}"],
        ["Gate metric", comparison.get("metric")],
        ["Margin", comparison.get("margin")],
        ["Forced", comparison.get("forced", False)],
    ]
    if comparison.get("failed_minimums"):
        gate.append(["Failed minimums", comparison["failed_minimums"]])
    headline = [title, "", f"**Decision:** {verdict}. {_cell(comparison.get('reason'))}"]
    if task is not None:
        headline += ["", f"**Task:** {_task_text(task, classes)}."]
    sections = [
        headline,
        ["## Metrics on the holdout", "", *_metrics_table(metrics, comparison)],
        ["## Quality gate", "", *_table(["Field", "Value"], gate)],
        ["## Data window", "", *_mapping(data_window)],
        [
            "## Parameters",
            "",
            *(_table(["Parameter", "Value"], list(params.items()), exact=True) if params else ["n/a"]),
        ],
        ["## Lineage", "", *_mapping(lineage)],
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
