"""The demo's printed summary: versions, the drift verdict, where to log in (never the password)."""

from __future__ import annotations

import pytest
from mlops_stack.paths import Paths
from mlops_stack.summary import drift_line, model_lines, print_summary

pytestmark = pytest.mark.unit

DRIFT = {
    "check_date": "2026-11-30",
    "drifted": True,
    "share": 0.6,
    "threshold": 0.5,
    "features": 10,
    "drifted_features": ["monthly_charges", "tenure_months"],
    "report": "/h/data/churn/reports/drift/ds=2026-11-30/report.html",
    "report_url": "http://127.0.0.1:8080/mlops/reports/churn/drift/2026-11-30/report.html",
}
MODELS = [
    {"version": "1", "aliases": [], "gate": "promote", "gate_reason": None, "airflow_run_id": "demo__x"},
    {
        "version": "2",
        "aliases": ["champion"],
        "gate": "promote",
        "gate_reason": "beats v1",
        "airflow_run_id": "drift__x",
    },
]


def test_drift_line_names_the_share_against_the_threshold_and_the_features():
    assert drift_line(DRIFT) == (
        "Drift      2026-11-30: DRIFTED (2 of 10 features, share 60% >= 50%): monthly_charges, tenure_months"
    )
    assert drift_line({**DRIFT, "drifted": False, "share": None, "drifted_features": []}) == (
        "Drift      2026-11-30: no dataset drift"
    )


def test_model_lines_give_each_version_and_the_gate_reason_under_it():
    lines = model_lines(MODELS)
    assert len(lines) == 3
    assert "version   2  aliases: champion" in lines[1]
    assert lines[2].strip() == "beats v1"


def test_the_summary_says_where_the_password_is(tmp_path, capsys, monkeypatch, recorded_state):
    monkeypatch.setenv("STACK_PROG", "scripts/run-stack")
    paths = Paths(tmp_path)
    facts = {
        "days": {
            "clean": ["2026-11-14", "2026-11-27"],
            "drifted": ["2026-11-28", "2026-11-30"],
            "rows_per_day": 5000,
        },
        "validated": ["2026-11-14", "2026-11-30"],
        "quarantined": [],
        "validation_reports": "/h/data/churn/reports/validation",
        "models": MODELS,
        "drift": DRIFT,
        "retrain": {"run_id": "drift__churn_classifier__2026-11-30", "state": "success"},
        "quality": {},
        "timings": {"boot": 1.0, "total": 2.0},
    }
    print_summary(facts, recorded_state, paths)
    out = capsys.readouterr().out
    assert f"login      admin, password in {paths.passwords}" in out
    assert "Retrain    mlops_train__churn_classifier run drift__churn_classifier__2026-11-30: success" in out
    assert f"Stop it: scripts/run-stack down --home {tmp_path}" in out
    assert "Timings    boot 1.0 s, total 2.0 s" in out
