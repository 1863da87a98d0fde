"""The stored validation report quotes a failing day's values only as short escaped excerpts."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

pytestmark = pytest.mark.unit

LEAK = "password=" + "s" * 300


def test_the_report_keeps_short_values_and_cuts_long_ones_to_excerpts():
    from mlops_provider.core.ingest import EXCERPT_CHARS
    from mlops_provider.core.validation import render_validation_html, validate_table
    from mlops_provider.operators.validation import _with_short_values

    table = pa.table({"region": ["north", LEAK, "west\nforged log line", "mars"]})
    suite = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "region", "value_set": ["north"]},
            }
        ],
    }
    outcome = validate_table(table, suite, batch_name="churn/2026-10-01")
    assert LEAK in json.dumps(outcome.result)  # what GX hands over: the values, whole

    shown = _with_short_values(outcome)

    stored = json.dumps(shown.result)
    html = render_validation_html(shown, title="t", context={})
    assert LEAK not in stored and "s" * EXCERPT_CHARS not in stored
    assert "s" * EXCERPT_CHARS not in html
    observed = shown.result["results"][0]["result"]["partial_unexpected_list"]
    assert "mars" in observed and "west\nforged log line" in observed  # short values stay as they are
    assert any(v.startswith("'password=ss") and v.endswith("...'") for v in observed)
    assert shown.success is False and shown.failures == outcome.failures
