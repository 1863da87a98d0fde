"""Run a Great Expectations 1.x suite on an Arrow table and summarise the outcome.

Pure validation core: no Airflow, no I/O. The suite is the JSON dict stored in ``include/expectations/``
(the form ``gx.ExpectationSuite(**suite)`` accepts); the outcome carries the full GX result for the
stored report, a small summary for XCom and one actionable failure sentence for the task log.
Great Expectations, pandas and pyarrow are imported at module level: this module is only imported
inside tasks.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd
import pyarrow as pa

# Before GX is imported: it logs ~200 INFO lines while importing and more while validating; only its
# warnings belong in a task log.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations import exceptions as gx_exceptions  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.execution_engine import pandas_execution_engine  # noqa: E402
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # noqa: E402

from mlops_provider.core.reports import definition_list, esc, html_page, stat_tiles  # noqa: E402

# GX fingerprints every DataFrame under 1 GB with pandas.util.hash_pandas_object, only to put an md5 in
# the result's batch markers. On Arrow-backed columns that hash goes through Python objects: ~2 s and
# ~30 MB per million rows, more than all expectations of a typical suite together. Partitions already
# carry a sha256 in their manifest, so the fingerprint is switched off (threshold 0 = never hash).
if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
    pandas_execution_engine.HASH_THRESHOLD = 0

# BASIC reports the unexpected count, percent and up to 20 unexpected values. SUMMARY would add their
# row indices, which GX finds by filtering the whole DataFrame once per expectation (~+60 % time).
_RESULT_FORMAT: Final = "BASIC"
_SAMPLE_VALUES = 10  # unexpected values kept in ``observed``
_SUMMARY_FAILURES = 30  # failed expectations listed in ``summary()``
_TEXT_LIMIT = 200  # characters of any data-derived text in messages and summaries


@dataclass(frozen=True)
class ValidationOutcome:
    """The outcome of one suite on one batch.

    :param success: every expectation passed.
    :param statistics: ``evaluated``, ``successful``, ``unsuccessful`` counts and ``success_percent``.
    :param failures: one dict per failed expectation, in suite order: ``expectation`` (type),
        ``column`` (or None), ``kwargs`` and ``observed`` (a short JSON-safe summary; ``error`` holds
        the message when the expectation could not be evaluated, e.g. a missing column).
    :param result: the full GX validation result as a JSON-safe dict.
    :param batch_name: the name the batch was validated under (e.g. ``churn/2024-01-31``).
    """

    success: bool
    statistics: dict[str, Any]
    failures: list[dict[str, Any]]
    result: dict[str, Any] = field(repr=False)
    batch_name: str = ""

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe summary for XCom: verdict, statistics and the failed expectations."""
        failed = [
            {"expectation": f["expectation"], "column": _inline(f["column"], 100)}
            for f in self.failures[:_SUMMARY_FAILURES]
        ]
        return {
            "success": self.success,
            "statistics": dict(self.statistics),
            "failed_expectations": failed,
            "failed_not_listed": max(0, len(self.failures) - _SUMMARY_FAILURES),
        }

    def failure_message(self, report_uri: str | None) -> str:
        """One sentence naming each failed expectation, its column and what was observed."""
        batch = self.batch_name or "The batch"
        where = f" Report: {report_uri}" if report_uri else ""
        if self.success:
            return f"{batch} passed all {self.statistics['evaluated']} expectations.{where}"
        failed = "; ".join(_describe_failure(f) for f in self.failures)
        evaluated = self.statistics["evaluated"]
        return f"{batch} failed {len(self.failures)} of {evaluated} expectations: {failed}.{where}"


def validate_table(table: pa.Table, suite: dict, *, batch_name: str) -> ValidationOutcome:
    """Validate ``table`` with the expectation suite given as its JSON dict.

    Every expectation is evaluated even when some fail; an expectation that cannot be evaluated
    (a missing column, a type that does not support the check) counts as failed, with GX's error
    message in its ``observed["error"]``.

    :param table: the batch, any Arrow table.
    :param suite: ``{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}, ...]}``.
    :param batch_name: a label for the batch in results and messages, e.g. ``churn/2024-01-31``.
    :raises ValueError: the suite is not a valid GX 1.x suite (GX itself would silently drop an
        invalid expectation and validate the rest).

    Memory: the DataFrame shares the table's buffers (see :func:`arrow_to_pandas`); the peak comes
    from GX's pandas engine, one expectation at a time. An expectation on a column that has nulls
    copies the whole DataFrame without those rows (``df[df[column].notnull()]``), and uniqueness of a
    string column hashes it (pandas factorizes it with Arrow's ``dictionary_encode``: ~180 bytes per
    distinct value while it runs, e.g. ~0.9 GB for 5M distinct 11-character ids).
    """
    expectation_suite = _build_suite(suite)
    context = gx.get_context(mode="ephemeral", project_config=_quiet_context_config())
    expectation_suite = context.suites.add(expectation_suite)
    batch_definition = (
        context.data_sources.add_pandas("batch")
        .add_dataframe_asset(batch_name)
        .add_batch_definition_whole_dataframe("whole_table")
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=batch_name, data=batch_definition, suite=expectation_suite)
    )
    gx_result = validation.run(
        batch_parameters={
            "dataframe": arrow_to_pandas(table, numpy_columns=referenced_columns(table, suite))
        },
        result_format=_RESULT_FORMAT,
    )
    result = _json_safe(gx_result.to_json_dict())

    # GX returns table-level and errored expectations first: put them back in suite order.
    order = {expectation.id: i for i, expectation in enumerate(expectation_suite.expectations)}
    result["results"].sort(key=lambda r: order.get(r["expectation_config"].get("id"), len(order)))
    failures = [_entry(r) for r in result["results"] if not r["success"]]
    stats = result["statistics"]
    statistics = {
        "evaluated": stats["evaluated_expectations"],
        "successful": stats["successful_expectations"],
        "unsuccessful": stats["unsuccessful_expectations"],
        "success_percent": stats["success_percent"],
    }
    return ValidationOutcome(
        success=bool(result["success"]),
        statistics=statistics,
        failures=failures,
        result=result,
        batch_name=batch_name,
    )


def arrow_to_pandas(table: pa.Table, numpy_columns: set[str] | None = None) -> pd.DataFrame:
    """The table as the DataFrame GX validates, sharing the Arrow buffers wherever GX allows it.

    * int, float and timestamp columns among ``numpy_columns`` (default: all) become numpy columns:
      GX vectorises ranges only on numpy dtypes (on ``pd.ArrowDtype`` it calls a Python function per
      value). A single-chunk column without nulls is converted without a copy; an int column with
      nulls becomes float64 (exact below 2**53), as pandas always does.
    * strings, booleans, dates, every other type, and the columns not in ``numpy_columns`` stay
      Arrow arrays (``pd.ArrowDtype``): no copy, and nulls stay nulls (pandas' default would turn
      nullable booleans and dates into Python objects, +8 to +40 bytes per value, and gain nothing
      for GX).

    Memory: ~0 bytes per row beyond the table for single-chunk columns (what
    ``DatasetStorageHook.read_partition`` returns for a one-file partition); a chunked numeric
    column in ``numpy_columns`` is concatenated once (8 bytes per row).
    """

    if numpy_columns is None:
        return table.to_pandas(types_mapper=_arrow_backed_dtype, split_blocks=True)
    # ``types_mapper`` maps types, not columns: convert the Arrow-backed frame, then swap in the
    # numpy conversion of the columns that get one (assigning a column copies nothing).
    frame = table.to_pandas(types_mapper=pd.ArrowDtype, split_blocks=True)
    as_numpy = [
        f.name for f in table.schema if f.name in numpy_columns and _arrow_backed_dtype(f.type) is None
    ]
    if as_numpy:
        converted = table.select(as_numpy).to_pandas(types_mapper=_arrow_backed_dtype, split_blocks=True)
        for name in as_numpy:
            frame[name] = converted[name]
    return frame


def _arrow_backed_dtype(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return None
    if pa.types.is_timestamp(arrow_type) or pa.types.is_dictionary(arrow_type):
        return None  # datetime64 (GX vectorises it) / pandas Categorical
    return pd.ArrowDtype(arrow_type)


def referenced_columns(table: pa.Table, suite: dict) -> set[str]:
    """The columns of ``table`` the suite's expectations can look at.

    Any kwarg value (or list element) equal to a column name counts, so ``column``, ``column_A``,
    ``column_list`` and the like are all covered without a list of expectation types, except the
    table-level ones (``expect_table_*``), which see only names and the row count. A
    ``row_condition`` may use any column: then every column counts.
    """
    names = set(table.column_names)
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            if value in names:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for expectation in suite.get("expectations", []):
        kwargs = expectation.get("kwargs", {}) if isinstance(expectation, dict) else {}
        if not isinstance(kwargs, dict) or kwargs.get("row_condition"):
            return names
        if str(expectation.get("type", "")).startswith("expect_table_"):
            continue  # table-level: sees the column names and the row count, never values
        visit(kwargs)
    return found


def render_validation_html(outcome: ValidationOutcome, *, title: str, context: dict[str, Any]) -> str:
    """A self-contained HTML report: verdict, statistics and every expectation, failures first.

    :param title: the page title, e.g. ``Validation of churn 2024-01-31``.
    :param context: what was validated, shown in the header (dataset, date, DAG run...).
    """
    results = outcome.result.get("results", [])
    # sorted() is stable: failures first, each group in suite order.
    rows = []
    for passed, entry in sorted(((bool(r["success"]), _entry(r)) for r in results), key=lambda x: x[0]):
        kwargs = {k: v for k, v in entry["kwargs"].items() if k != "column"}
        rows.append(
            f'<tr class="{"passed" if passed else "failed"}">'
            f'<td class="status {"ok" if passed else "ko"}">{"pass" if passed else "FAIL"}</td>'
            f"<td>{esc(entry['expectation'])}</td>"
            f"<td>{esc(entry['column']) if entry['column'] is not None else '<i>table</i>'}</td>"
            f"<td><code>{esc(_clip(_compact_json(kwargs), 1000))}</code></td>"
            f"<td><code>{esc(_clip(_compact_json(entry['observed']), 2000))}</code></td></tr>"
        )
    meta = outcome.result.get("meta", {})
    header = {
        **{str(k): v for k, v in context.items()},
        "batch": outcome.batch_name or None,
        "suite": outcome.result.get("suite_name"),
        "validated at": meta.get("validation_time"),
        "great expectations": meta.get("great_expectations_version"),
    }
    stats = outcome.statistics
    verdict = '<span class="verdict pass">PASSED</span>'
    if not outcome.success:
        verdict = f'<span class="verdict fail">FAILED</span><p>{esc(outcome.failure_message(None))}</p>'
    tiles = stat_tiles(
        [
            ("expectations", stats["evaluated"]),
            ("passed", stats["successful"]),
            ("failed", stats["unsuccessful"]),
            ("success", f"{stats['success_percent'] or 0:.1f} %"),
        ]
    )
    body = (
        f"<h1>{esc(title)}</h1>"
        f'<div class="card">{verdict}{definition_list(header)}</div>'
        f'<div class="card">{tiles}</div>'
        "<h2>Expectations</h2><table><thead><tr><th>Status</th><th>Expectation</th><th>Column</th>"
        f"<th>Parameters</th><th>Observed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "<footer>Generated by airflow-provider-mlops with Great Expectations.</footer>"
    )
    return html_page(title, body)


# ------------------------------------------------------------------------------------ internals


def _quiet_context_config() -> DataContextConfig:
    """An in-memory context without analytics, progress bars or temporary Data Docs folders."""
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )


def _build_suite(suite: dict) -> gx.ExpectationSuite:
    """The suite as a GX object, or ``ValueError`` naming every invalid expectation.

    Each expectation is checked on its own first: ``gx.ExpectationSuite`` logs and *drops* an
    expectation of an unknown type, which would silently validate less than the file says.
    """
    expectations = suite.get("expectations") if isinstance(suite, dict) else None
    if not isinstance(expectations, list) or not isinstance(suite.get("name"), str):
        raise ValueError("An expectation suite must be a dict with a 'name' and a list of 'expectations'.")
    problems = []
    for position, expectation in enumerate(expectations):
        try:
            ExpectationConfiguration(**expectation).to_domain_obj()
        except (TypeError, ValueError, gx_exceptions.GreatExpectationsError) as err:
            kind = expectation.get("type") if isinstance(expectation, dict) else None
            problems.append(f"#{position} {kind}: {' '.join(str(err).split())[:300]}")
    if not expectations:
        problems.append("it has no expectations, so every batch would pass")
    if problems:
        raise ValueError(f"Invalid expectation suite {suite['name']!r}: {'; '.join(problems)}")
    # A copy: GX writes its version into the suite's meta.
    built = gx.ExpectationSuite(**copy.deepcopy(suite))
    if len(built.expectations) != len(expectations):  # defensive: GX dropped one anyway
        raise ValueError(f"Invalid expectation suite {suite['name']!r}: GX rejected an expectation.")
    return built


def _entry(result: dict[str, Any]) -> dict[str, Any]:
    """An expectation's result as ``expectation``, ``column``, ``kwargs`` and short ``observed``."""
    config = result["expectation_config"]
    kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
    error = _exception_message(result.get("exception_info") or {})
    if error is not None:
        observed: dict[str, Any] = {"error": error}
    else:
        details = result.get("result") or {}
        observed = {
            key: details[key]
            for key in ("observed_value", "unexpected_count", "unexpected_percent")
            if details.get(key) is not None
        }
        if isinstance(observed.get("observed_value"), list):  # e.g. every column of the table
            observed["observed_value"] = observed["observed_value"][: 2 * _SAMPLE_VALUES]
        if details.get("partial_unexpected_list"):
            observed["partial_unexpected_list"] = details["partial_unexpected_list"][:_SAMPLE_VALUES]
        mismatched = (details.get("details") or {}).get("mismatched")
        if mismatched:
            observed["mismatched"] = mismatched
    return {
        "expectation": config["type"],
        "column": kwargs.get("column"),
        "kwargs": kwargs,
        "observed": observed,
    }


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX's error message, if the expectation raised instead of being evaluated.

    ``exception_info`` is either ``{"raised_exception": ..., "exception_message": ...}`` (the
    expectation raised) or ``{<metric id>: {...same keys...}}`` (a metric it needs raised).
    """
    if "raised_exception" in info:
        infos = [info]
    else:
        infos = [value for value in info.values() if isinstance(value, dict)]
    messages = [
        str(i.get("exception_message") or "unknown error").removeprefix("Error: ").rstrip(". ")
        for i in infos
        if i.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) if messages else None


def _describe_failure(failure: dict[str, Any]) -> str:
    """``expect_x(column): what was observed (what was expected)``, clipped."""
    name = failure["expectation"]
    if failure["column"] is not None:
        name += f"({_inline(failure['column'], 80)})"
    observed = failure["observed"]
    if "error" in observed:
        return f"{name}: could not be evaluated ({_inline(observed['error'])})"
    if "mismatched" in observed:
        what = ", ".join(
            f"{kind} {_inline(_compact_json(names), 120)}"
            for kind, names in observed["mismatched"].items()
            if names
        )
    elif "unexpected_count" in observed:
        count = observed["unexpected_count"]
        what = f"{count:,} unexpected value{'' if count == 1 else 's'}"
        if "unexpected_percent" in observed:
            what += f" ({observed['unexpected_percent']:.2f} %)"
        sample = [v for v in observed.get("partial_unexpected_list", []) if v is not None][:3]
        if sample:
            what += f", e.g. {_inline(_compact_json(sample), 80)}"
    elif "observed_value" in observed:
        what = f"observed {_inline(_compact_json(observed['observed_value']), 120)}"
    else:
        what = "nothing observed (no values)"
    expected = _expected(failure["kwargs"])
    return f"{name}: {what}{f' (expected {expected})' if expected else ''}"


def _expected(kwargs: dict[str, Any]) -> str:
    """The usual parameters in words: bounds, value set, ``mostly``."""
    parts = []
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        parts.append(f"{low}..{high}")
    elif low is not None:
        parts.append(f"{'>' if kwargs.get('strict_min') else '>='} {low}")
    elif high is not None:
        parts.append(f"{'<' if kwargs.get('strict_max') else '<='} {high}")
    if "value_set" in kwargs:
        parts.append(f"in {_inline(_compact_json(kwargs['value_set']), 80)}")
    if kwargs.get("mostly") is not None:
        parts.append(f"for at least {kwargs['mostly']:.0%} of rows")
    return " ".join(parts)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _inline(text: Any, limit: int = _TEXT_LIMIT) -> Any:
    """Data-derived text on one line (no newlines to forge log lines with), at most ``limit`` long."""
    if not isinstance(text, str):
        return text
    return _clip(" ".join(text.split()), limit)


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (strict JSON), otherwise unchanged."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
