"""Report addressing: the URL of a stored report (validation, drift) and the extra links opening it.

The one owner of a report's address ``/mlops/reports/{dataset}/{kind}/{ds}/{name}``: operators build
the URL here and push it to XCom under ``REPORT_URL_KEY``; the links read it back; the UI plugin
(``plugins.reports``, which nothing imports) checks every request with ``validate_report_address``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from mlops_provider.core import partitions
from mlops_provider.core.reports import REPORT_KINDS

if TYPE_CHECKING:
    from datetime import date

    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "REPORT_KINDS",
    "REPORT_MEDIA_TYPES",
    "REPORT_URL_KEY",
    "URL_PREFIX",
    "DriftReportLink",
    "StoredReportLink",
    "ValidationReportLink",
    "report_url",
    "validate_report_address",
]

URL_PREFIX = "/mlops"
REPORT_URL_KEY = "report_url"
REPORT_MEDIA_TYPES = {
    "report.html": "text/html; charset=utf-8",
    "result.json": "application/json",
}


def validate_report_address(dataset: str, kind: str, ds: str, name: str) -> tuple[str, str, str, str]:
    """Return the four parts of a report address unchanged if each is valid, else raise ``ValueError``.

    ``kind`` is one of ``REPORT_KINDS``, ``name`` one of ``REPORT_MEDIA_TYPES``; ``ds`` must be exactly
    ``YYYY-MM-DD`` and a real date (not another ISO form such as ``20240101``).
    """
    # ``isprintable``: the dataset pattern ends in ``$``, which also matches before a final newline.
    if not dataset.isprintable():
        raise ValueError(f"Invalid dataset name {dataset!r}")
    partitions.validate_dataset_name(dataset)
    if kind not in REPORT_KINDS:
        raise ValueError(f"Unknown report kind {kind!r}: expected one of {', '.join(REPORT_KINDS)}.")
    day = partitions.parse_partition_dir_name(f"ds={ds}")
    if day is None or day.isoformat() != ds:
        raise ValueError(f"Invalid report date {ds!r}: expected YYYY-MM-DD.")
    if name not in REPORT_MEDIA_TYPES:
        raise ValueError(f"Unknown report file {name!r}: expected one of {', '.join(REPORT_MEDIA_TYPES)}.")
    return dataset, kind, ds, name


def report_url(dataset: str, kind: str, ds: date | str, name: str = "report.html") -> str:
    """Return the URL of a stored report in the API server, for an operator extra link.

    Absolute when ``[api] base_url`` is set (it may carry a path prefix), otherwise the server-relative
    path ``/mlops/reports/...``. Raises ``ValueError`` for an address the plugin would refuse.
    """
    from airflow.sdk import conf

    day = partitions.to_date(ds).isoformat()
    validate_report_address(dataset, kind, day, name)
    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{URL_PREFIX}/reports/{dataset}/{kind}/{day}/{name}"


class StoredReportLink(BaseOperatorLink):
    """Opens the report the task stored: the URL its operator pushed to XCom under ``REPORT_URL_KEY``.

    Empty when the task pushed none (it failed before storing its report). Subclasses give the
    button's ``name``; Airflow keeps the resolved link under ``_link_<class name>``, so a subclass
    keeps its class name once released.
    """

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=REPORT_URL_KEY) or ""


class ValidationReportLink(StoredReportLink):
    """Opens the validation report (HTML) of the task's partition, served by the MLOps UI plugin."""

    name = "Validation report"


class DriftReportLink(StoredReportLink):
    """Opens the drift report (HTML) of the check, served by the MLOps UI plugin."""

    name = "Drift report"
