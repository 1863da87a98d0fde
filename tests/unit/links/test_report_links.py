"""Report addressing (links/reports.py): the address check, report_url, and the report extra links."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from airflow.sdk.execution_time.xcom import XCom

from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.links.reports import (
    REPORT_KINDS,
    REPORT_URL_KEY,
    DriftReportLink,
    StoredReportLink,
    ValidationReportLink,
    report_url,
    validate_report_address,
)

pytestmark = pytest.mark.unit

DS = "2024-01-05"


@pytest.fixture
def no_base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")


@pytest.mark.parametrize("kind", REPORT_KINDS)
@pytest.mark.parametrize("name", ["report.html", "result.json"])
def test_a_valid_address_is_returned_unchanged(kind, name):
    assert validate_report_address("churn_v2", kind, DS, name) == ("churn_v2", kind, DS, name)


@pytest.mark.parametrize(
    ("dataset", "kind", "ds", "name", "problem"),
    [
        ("../etc", "validation", DS, "report.html", "dataset"),
        ("churn/x", "validation", DS, "report.html", "dataset"),
        ("churn\n", "validation", DS, "report.html", "Invalid dataset name"),
        ("", "validation", DS, "report.html", "dataset"),
        (
            "churn",
            "metrics",
            DS,
            "report.html",
            "Unknown report kind 'metrics': expected one of validation, drift",
        ),
        ("churn", "Validation", DS, "report.html", "Unknown report kind"),
        ("churn", "validation", "20240105", "report.html", "Invalid report date '20240105'"),
        ("churn", "validation", "2024-02-30", "report.html", "Invalid report date"),
        ("churn", "validation", "2024-1-5", "report.html", "Invalid report date"),
        ("churn", "validation", "..", "report.html", "Invalid report date"),
        ("churn", "drift", DS, "report.json", "Unknown report file 'report.json'"),
        ("churn", "drift", DS, "../report.html", "Unknown report file"),
    ],
)
def test_a_bad_address_part_is_rejected(dataset, kind, ds, name, problem):
    with pytest.raises(ValueError, match=problem):
        validate_report_address(dataset, kind, ds, name)


def test_report_url_is_server_relative_without_a_base_url(no_base_url):
    assert (
        report_url("churn", "validation", date(2024, 1, 5))
        == f"/mlops/reports/churn/validation/{DS}/report.html"
    )
    assert report_url("churn", "drift", DS, "result.json") == f"/mlops/reports/churn/drift/{DS}/result.json"


def test_report_url_is_absolute_under_the_api_base_url_and_its_path(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")

    assert (
        report_url("churn", "drift", DS)
        == f"https://airflow.example.com/team-a/mlops/reports/churn/drift/{DS}/report.html"
    )


@pytest.mark.usefixtures("no_base_url")
@pytest.mark.parametrize(
    ("dataset", "kind", "name", "problem"),
    [
        ("../x", "validation", "report.html", "dataset"),
        ("churn", "metrics", "report.html", "Unknown report kind"),
        ("churn", "drift", "x", "Unknown report file"),
    ],
)
def test_report_url_refuses_what_the_plugin_would_refuse(dataset, kind, name, problem):
    with pytest.raises(ValueError, match=problem):
        report_url(dataset, kind, DS, name)


def test_storage_keeps_reports_of_exactly_the_addressable_kinds(tmp_path):
    storage = DatasetStorageHook(root_uri=f"file://{tmp_path}")

    for kind in REPORT_KINDS:
        assert (
            storage.report_path("churn", kind, DS) == storage.root / "churn" / "reports" / kind / f"ds={DS}"
        )
    with pytest.raises(ValueError, match="Unknown report kind 'metrics'"):
        storage.report_path("churn", "metrics", DS)


def test_the_validation_and_drift_links_are_siblings_under_the_stored_report_link():
    assert not issubclass(DriftReportLink, ValidationReportLink)
    assert not issubclass(ValidationReportLink, DriftReportLink)
    assert issubclass(DriftReportLink, StoredReportLink) and issubclass(
        ValidationReportLink, StoredReportLink
    )
    assert (ValidationReportLink().name, DriftReportLink().name) == ("Validation report", "Drift report")


def test_the_links_keep_the_xcom_keys_airflow_stores_them_under():
    # Serialized DAGs map each button's name to this key: renaming a class orphans stored links.
    assert ValidationReportLink().xcom_key == "_link_ValidationReportLink"
    assert DriftReportLink().xcom_key == "_link_DriftReportLink"


@pytest.mark.parametrize("link", [ValidationReportLink(), DriftReportLink()])
def test_a_link_opens_the_url_its_task_pushed_and_is_empty_without_one(link, monkeypatch):
    pushed: dict[str, str] = {}
    asked = []
    ti_key = SimpleNamespace(dag_id="d", task_id="t", run_id="r", try_number=1, map_index=-1)

    def get_value(*, ti_key, key):
        asked.append(ti_key)
        return pushed.get(key)

    monkeypatch.setattr(XCom, "get_value", get_value)

    assert link.get_link(operator=None, ti_key=ti_key) == ""

    pushed[REPORT_URL_KEY] = "/mlops/reports/churn/drift/2024-01-05/report.html"
    assert link.get_link(operator=None, ti_key=ti_key) == "/mlops/reports/churn/drift/2024-01-05/report.html"
    assert asked == [ti_key, ti_key]
