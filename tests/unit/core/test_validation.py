"""The validation core on the shipped churn suite: a good day passes, every defect is named exactly."""

from __future__ import annotations

import copy
import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlops_provider.core.datasets import load_dataset_config
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CONFIG = load_dataset_config(REPO_ROOT / "include" / "datasets" / "churn.yaml")
SCHEMA = CONFIG.arrow_schema()
ROWS = 2_000
DAY = dt.datetime(2024, 1, 31, tzinfo=dt.timezone.utc)
REPORT = "s3://bucket/churn/reports/validation/ds=2024-01-31/report.html"
CATEGORIES = {
    "contract_type": ["month_to_month", "one_year", "two_year"],
    "payment_method": ["credit_card", "bank_transfer", "electronic_check", "mailed_check"],
    "internet_service": ["dsl", "fiber", "none"],
    "region": ["north", "south", "east", "west"],
}

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"
ROW_COUNT = "expect_table_row_count_to_be_between"
COLUMN_SET = "expect_table_columns_to_match_set"


@pytest.fixture(scope="module")
def validation():
    """The module under test, imported once: Great Expectations takes seconds to import."""
    from mlops_provider.core import validation

    return validation


@pytest.fixture
def suite():
    return CONFIG.load_expectation_suite()


def good_table(rows: int = ROWS, seed: int = 7) -> pa.Table:
    """A day of churn data that satisfies the suite, with the nulls a real day has."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, rows)
    monthly = np.round(rng.uniform(18, 120, rows), 2)
    start_us = int(DAY.timestamp() * 1_000_000)
    columns = {
        "customer_id": np.char.add("C", (100_000_000 + rng.permutation(rows)).astype("U9")),
        "snapshot_ts": pa.array(np.sort(start_us + rng.integers(0, 86_400_000_000, rows))).cast(
            pa.timestamp("us", tz="UTC")
        ),
        "signup_date": pa.array(
            np.datetime64(DAY.date(), "D") - (tenure * 30.4375).astype("timedelta64[D]"), pa.date32()
        ),
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": pa.array(np.round(monthly * tenure, 2), mask=rng.random(rows) < 0.01),
        "support_tickets": rng.poisson(1.0, rows),
        **{name: np.array(values)[rng.integers(0, len(values), rows)] for name, values in CATEGORIES.items()},
        "has_partner": rng.random(rows) < 0.4,
        "paperless_billing": pa.array(rng.random(rows) < 0.6, mask=rng.random(rows) < 0.03),
        "churned": (rng.random(rows) < 0.2).astype(np.int64),
    }
    return pa.table(columns).cast(SCHEMA)


def replace(table: pa.Table, name: str, values) -> pa.Table:
    """``table`` with column ``name`` replaced by ``values`` (cast to the column's type)."""
    position = table.schema.get_field_index(name)
    return table.set_column(
        position, table.field(position), pa.array(values).cast(table.field(position).type)
    )


def with_nulls(table: pa.Table, name: str, rows: np.ndarray) -> pa.Table:
    mask = np.zeros(table.num_rows, bool)
    mask[rows] = True
    column = table.column(name)
    return replace(table, name, pc.if_else(pa.array(mask), pa.nulls(table.num_rows, column.type), column))


def failed(outcome) -> list[tuple[str, str | None]]:
    return [(f["expectation"], f["column"]) for f in outcome.failures]


def result_of(outcome, expectation: str, column: str | None) -> dict:
    [match] = [
        r
        for r in outcome.result["results"]
        if r["expectation_config"]["type"] == expectation
        and r["expectation_config"]["kwargs"].get("column") == column
    ]
    return match


# ------------------------------------------------------------------------------------ the suite


def test_shipped_suite_is_a_maintainable_gx_suite(suite):
    assert suite["name"] == "churn"
    assert 20 <= len(suite["expectations"]) <= 25
    row_count = next(e for e in suite["expectations"] if e["type"] == ROW_COUNT)["kwargs"]
    # A usual day is ~20,000 rows: ten times that is rejected, and so is a header-only file.
    assert row_count["min_value"] > 0 and row_count["max_value"] < 200_000
    column_set = next(e for e in suite["expectations"] if e["type"] == COLUMN_SET)["kwargs"]
    assert column_set["exact_match"] is True
    assert sorted(column_set["column_set"]) == sorted(SCHEMA.names)
    columns = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
    assert columns <= set(SCHEMA.names)


def test_good_day_passes(validation, suite):
    outcome = validation.validate_table(good_table(), suite, batch_name="churn/2024-01-31")

    assert outcome.success, outcome.failure_message(None)
    assert outcome.failures == []
    assert outcome.statistics == {
        "evaluated": len(suite["expectations"]),
        "successful": len(suite["expectations"]),
        "unsuccessful": 0,
        "success_percent": 100.0,
    }
    assert outcome.summary()["failed_expectations"] == []
    # The full result is strict JSON and lists every expectation in suite order.
    result = json.loads(json.dumps(outcome.result, allow_nan=False))
    assert [r["expectation_config"]["type"] for r in result["results"]] == [
        e["type"] for e in suite["expectations"]
    ]


def test_suite_is_not_modified(validation, suite):
    original = copy.deepcopy(suite)
    validation.validate_table(good_table(), suite, batch_name="churn/2024-01-31")
    assert suite == original


# ------------------------------------------------------------------------------------ defects


def _duplicated_keys(t):
    ids = t.column("customer_id").to_numpy(zero_copy_only=False).copy()
    ids[100:120] = ids[:20]
    return replace(t, "customer_id", ids)


def _target_two(t):
    churned = t.column("churned").to_numpy().copy()
    churned[[3, 500]] = 2
    return replace(t, "churned", churned)


def _unknown_region(t):
    region = t.column("region").to_numpy(zero_copy_only=False).copy()
    region[:3] = "mars"
    return replace(t, "region", region)


def _negative_charges(t):
    monthly = t.column("monthly_charges").to_numpy().copy()
    monthly[0] = -5.0
    total = pc.if_else(pa.array(np.arange(t.num_rows) == 1), -1.0, t.column("total_charges"))
    return replace(replace(t, "monthly_charges", monthly), "total_charges", total)


DEFECTS = {
    "duplicated_keys": (_duplicated_keys, [(UNIQUE, "customer_id")]),
    "target_value_2": (_target_two, [(IN_SET, "churned")]),
    "all_null_tenure": (
        lambda t: replace(t, "tenure_months", pa.nulls(t.num_rows, pa.int64())),
        [(NOT_NULL, "tenure_months")],
    ),
    "unknown_category": (_unknown_region, [(IN_SET, "region")]),
    "negative_charges": (_negative_charges, [(BETWEEN, "monthly_charges"), (BETWEEN, "total_charges")]),
    "too_few_rows": (lambda t: t.slice(0, 500), [(ROW_COUNT, None)]),
    "missing_column": (
        lambda t: t.drop_columns(["monthly_charges"]),
        [(COLUMN_SET, None), (NOT_NULL, "monthly_charges"), (BETWEEN, "monthly_charges")],
    ),
    "extra_column": (
        lambda t: t.append_column("unexpected_col", pa.array(range(t.num_rows))),
        [(COLUMN_SET, None)],
    ),
}


@pytest.mark.parametrize("defect", DEFECTS, ids=str)
def test_each_defect_fails_naming_its_expectation(validation, suite, defect):
    corrupt, expected = DEFECTS[defect]
    outcome = validation.validate_table(corrupt(good_table()), suite, batch_name="churn/2024-01-31")

    assert not outcome.success
    assert failed(outcome) == expected  # exactly these, in suite order
    assert outcome.statistics["unsuccessful"] == len(expected)
    message = outcome.failure_message(REPORT)
    assert message.startswith(f"churn/2024-01-31 failed {len(expected)} of {len(suite['expectations'])}")
    assert message.endswith(f"Report: {REPORT}")
    assert "\n" not in message
    for expectation, column in expected:
        assert f"{expectation}({column})" in message if column else f"{expectation}:" in message
    assert [f["expectation"] for f in outcome.summary()["failed_expectations"]] == [e for e, _ in expected]


def test_observed_values_are_reported(validation, suite):
    table = _target_two(_duplicated_keys(good_table()))
    outcome = validation.validate_table(table, suite, batch_name="churn/2024-01-31")

    duplicates, target = outcome.failures
    assert duplicates["observed"]["unexpected_count"] == 40  # both copies of each of 20 keys
    assert duplicates["observed"]["unexpected_percent"] == pytest.approx(2.0)
    assert len(duplicates["observed"]["partial_unexpected_list"]) == 10  # trimmed from GX's 20
    assert target["observed"] == {
        "unexpected_count": 2,
        "unexpected_percent": pytest.approx(0.1),
        "partial_unexpected_list": [2, 2],
    }
    assert target["kwargs"] == {"column": "churned", "value_set": [0, 1]}
    assert "expect_column_values_to_be_in_set(churned): 2 unexpected values (0.10 %), e.g. [2, 2]" in (
        outcome.failure_message(None)
    )


def test_missing_column_errors_are_failures_with_their_message(validation, suite):
    outcome = validation.validate_table(
        good_table().drop_columns(["monthly_charges"]), suite, batch_name="churn/2024-01-31"
    )

    column_set, not_null, between = outcome.failures
    assert column_set["observed"]["mismatched"] == {"missing": ["monthly_charges"]}
    for failure in (not_null, between):
        assert failure["observed"] == {"error": 'The column "monthly_charges" in BatchData does not exist'}
    message = outcome.failure_message(None)
    assert 'expect_table_columns_to_match_set: missing ["monthly_charges"]' in message
    assert "expect_column_values_to_be_between(monthly_charges): could not be evaluated" in message


def test_row_count_above_the_bound_fails(validation, suite):
    row_count = next(e for e in suite["expectations"] if e["type"] == ROW_COUNT)
    row_count["kwargs"]["max_value"] = 1_500  # stands in for 60,000: a 10x day without 200,000 rows

    outcome = validation.validate_table(good_table(), suite, batch_name="churn/2024-01-31")

    assert failed(outcome) == [(ROW_COUNT, None)]
    assert outcome.failures[0]["observed"] == {"observed_value": ROWS}
    assert f"{ROW_COUNT}: observed 2000 (expected 1000..1500)" in outcome.failure_message(None)


# ------------------------------------------------------------------------------------ dtypes


def test_nulls_in_bool_int_and_timestamp_columns_are_counted_exactly(validation, suite):
    table = good_table()
    paperless_nulls = table.column("paperless_billing").null_count
    table = with_nulls(table, "paperless_billing", np.arange(0, ROWS, 4))  # 25 % + the usual ~3 %
    table = with_nulls(table, "has_partner", np.array([5]))
    table = with_nulls(table, "tenure_months", np.arange(30))  # 1.5 % of an int column
    table = with_nulls(table, "snapshot_ts", np.array([1, 2, 3]))
    expected_paperless = table.column("paperless_billing").null_count
    assert expected_paperless > paperless_nulls

    outcome = validation.validate_table(table, suite, batch_name="churn/2024-01-31")

    assert failed(outcome) == [
        (NOT_NULL, "snapshot_ts"),
        (NOT_NULL, "tenure_months"),
        (NOT_NULL, "paperless_billing"),
    ]
    counts = {f["column"]: f["observed"]["unexpected_count"] for f in outcome.failures}
    assert counts == {"snapshot_ts": 3, "tenure_months": 30, "paperless_billing": expected_paperless}
    has_partner = result_of(outcome, NOT_NULL, "has_partner")
    assert has_partner["success"] and has_partner["result"]["unexpected_count"] == 1
    # Nulls are not values outside the range or set.
    assert result_of(outcome, BETWEEN, "tenure_months")["success"]


def test_timestamp_with_time_zone_is_compared_as_an_instant(validation):
    table = good_table()
    late = pc.if_else(
        pa.array(np.arange(ROWS) == 7), pa.scalar(DAY + dt.timedelta(days=2)), table.column("snapshot_ts")
    )
    suite = {
        "name": "timestamps",
        "expectations": [
            {
                "type": BETWEEN,
                "kwargs": {
                    "column": "snapshot_ts",
                    # 01:00+01:00 is midnight UTC: the bound is an instant, not a wall-clock time.
                    "min_value": "2024-01-31T01:00:00+01:00",
                    "max_value": "2024-02-01T00:00:00+00:00",
                },
            }
        ],
    }

    assert validation.validate_table(table, suite, batch_name="t").success
    outcome = validation.validate_table(replace(table, "snapshot_ts", late), suite, batch_name="t")
    assert failed(outcome) == [(BETWEEN, "snapshot_ts")]
    assert outcome.failures[0]["observed"]["unexpected_count"] == 1
    assert outcome.failures[0]["observed"]["partial_unexpected_list"][0].startswith("2024-02-02")


# ------------------------------------------------------------------------------------ outputs


def test_summary_stays_small_and_json_safe_with_many_failures(validation):
    long_name = "<column>" + "x" * 400
    suite = {
        "name": "many",
        "expectations": [{"type": NOT_NULL, "kwargs": {"column": f"{long_name}{i}"}} for i in range(25)],
    }

    outcome = validation.validate_table(good_table(50), suite, batch_name="churn/2024-01-31")

    assert outcome.statistics["unsuccessful"] == 25
    summary = json.dumps(outcome.summary(), allow_nan=False)
    assert len(summary.encode()) < 8 * 1024
    assert json.loads(summary)["failed_expectations"][0]["column"].startswith("<column>xxx")
    assert len(outcome.failure_message(REPORT)) < 20_000


def test_invalid_suite_is_rejected_not_silently_shortened(validation, suite):
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "region"}}
    )
    suite["expectations"].append({"type": BETWEEN, "kwargs": {"colum": "tenure_months", "min_value": 0}})

    with pytest.raises(
        ValueError, match=r"#25 expect_column_values_to_be_purple.*#26 expect_column_values_to_be_between"
    ):
        validation.validate_table(good_table(), suite, batch_name="churn/2024-01-31")
    with pytest.raises(ValueError, match="no expectations"):
        validation.validate_table(good_table(), {"name": "empty", "expectations": []}, batch_name="x")


def test_html_report_is_self_contained_and_escapes_data(validation, suite):
    evil = "<script>alert(1)</script>"
    table = good_table()
    region = table.column("region").to_numpy(zero_copy_only=False).copy()
    region[0] = evil
    table = replace(table, "region", region).append_column(
        '"><img src=x onerror=alert(2)>', pa.array([1] * ROWS)
    )
    outcome = validation.validate_table(table, suite, batch_name="churn/2024-01-31")
    assert failed(outcome) == [(COLUMN_SET, None), (IN_SET, "region")]

    page = validation.render_validation_html(
        outcome,
        title="Validation of churn 2024-01-31",
        context={"dataset": "churn", "ds": "2024-01-31", "run_id": "manual__<b>"},
    )

    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<img" not in page and "manual__<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "FAILED" in page and "manual__&lt;b&gt;" in page
    # Failures come first, then the passing expectations.
    rows = page.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == len(suite["expectations"])
    assert all('class="failed"' in row for row in rows[:2])
    assert all('class="passed"' in row for row in rows[2:])


def test_html_report_of_a_good_day(validation, suite):
    outcome = validation.validate_table(good_table(), suite, batch_name="churn/2024-01-31")
    page = validation.render_validation_html(outcome, title="Validation of churn 2024-01-31", context={})
    assert "PASSED" in page and "FAILED" not in page
    assert page.count('class="passed"') == len(suite["expectations"])


# ------------------------------------------------------------------- the DataFrame GX is given


def test_referenced_columns_are_those_whose_values_an_expectation_reads(validation, suite):
    table = good_table(10)
    referenced = validation.referenced_columns(table, suite)
    per_column = {e["kwargs"]["column"] for e in suite["expectations"] if "column" in e["kwargs"]}
    assert referenced == per_column  # the column set of expect_table_columns_to_match_set is names only

    pair = {
        "type": "expect_column_pair_values_to_be_equal",
        "kwargs": {"column_A": "region", "column_B": "churned"},
    }
    compound = {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["tenure_months"]}}
    extra = validation.referenced_columns(table, {"expectations": [pair, compound]})
    assert extra == {"region", "churned", "tenure_months"}
    conditional = {**pair, "kwargs": {**pair["kwargs"], "row_condition": 'contract_type=="one_year"'}}
    assert validation.referenced_columns(table, {"expectations": [conditional]}) == set(SCHEMA.names)


def test_only_referenced_numbers_become_numpy_and_nothing_is_copied(validation):
    table = good_table(1_000)
    frame = validation.arrow_to_pandas(table, numpy_columns={"tenure_months", "snapshot_ts", "region"})

    assert list(frame.columns) == table.column_names
    assert frame["tenure_months"].dtype == np.dtype("int64")
    assert str(frame["snapshot_ts"].dtype).startswith("datetime64")
    assert isinstance(frame["monthly_charges"].dtype, pd.ArrowDtype)  # unreferenced number
    assert isinstance(frame["region"].dtype, pd.ArrowDtype)  # strings always stay Arrow
    buffer = table.column("tenure_months").chunk(0).buffers()[1]
    view = frame["tenure_months"].to_numpy()
    assert view.__array_interface__["data"][0] == buffer.address  # a view of the Arrow buffer


@pytest.mark.parametrize("defect", ["none", *DEFECTS], ids=str)
def test_verdicts_do_not_depend_on_how_columns_are_chunked(validation, suite, defect):
    table = good_table() if defect == "none" else DEFECTS[defect][0](good_table())
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=300))
    assert chunked.column(0).num_chunks > 1

    one = validation.validate_table(table.combine_chunks(), suite, batch_name="churn/2024-01-31")
    many = validation.validate_table(chunked, suite, batch_name="churn/2024-01-31")

    assert (one.success, one.statistics, one.failures) == (many.success, many.statistics, many.failures)
