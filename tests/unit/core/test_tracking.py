"""core/tracking: the tags that find runs again, the lineage tag and the series values, spelled as MLflow holds them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest

from mlops_provider.core import tracking

pytestmark = pytest.mark.unit

LINEAGE = {"dag_id": "mlops_train__churn", "run_id": "manual__1", "task_id": "train", "try_number": 2}


def test_airflow_tags_prefix_each_lineage_key_and_stringify_its_value():
    assert tracking.airflow_tags({**LINEAGE, "map_index": 3}) == {
        "airflow.dag_id": "mlops_train__churn",
        "airflow.run_id": "manual__1",
        "airflow.task_id": "train",
        "airflow.try_number": "2",
        "airflow.map_index": "3",
    }


def test_the_training_run_is_found_by_airflow_run_and_role():
    spec = tracking.training_run("churn", LINEAGE)

    assert spec["tags"] == {
        **tracking.airflow_tags(LINEAGE),
        "mlops.role": "training",
        "mlops.model": "churn",
    }
    assert spec["match"] == ("airflow.run_id", "mlops.role")
    assert spec["run_name"] == "train manual__1"
    assert tracking.training_run_key("manual__1") == {k: spec["tags"][k] for k in spec["match"]}


def test_a_candidate_run_is_found_by_parent_map_index_and_role():
    lineage = {**LINEAGE, "map_index": 4}

    spec = tracking.candidate_run("parent1", lineage, "binary")

    assert spec["tags"] == {
        **tracking.airflow_tags(lineage),
        "mlflow.parentRunId": "parent1",
        "mlops.role": "candidate",
        "mlops.task": "binary",
    }
    assert spec["match"] == ("mlflow.parentRunId", "airflow.map_index", "mlops.role")
    assert spec["run_name"] == "candidate 4"


def test_the_monitoring_run_is_one_per_model_version():
    assert tracking.monitoring_run("churn", 7) == {
        "tags": {"mlops.role": "monitoring", "mlops.model": "churn", "mlops.model_version": "7"},
        "match": ("mlops.role", "mlops.model_version"),
        "run_name": "drift of churn v7",
    }


def test_partitions_are_recorded_once_per_day_in_a_compact_clipped_tag():
    parts = [{"ds": f"2026-03-0{d}", "sha256": f"{d}" * 64} for d in (1, 2, 2, 3)]

    distinct = tracking.distinct_partitions(parts)

    assert [p["ds"] for p in distinct] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert tracking.partitions_tag("churn", distinct) == (
        "churn@2026-03-01:111111111111,2026-03-02:222222222222,2026-03-03:333333333333"
    )
    many = [{"ds": "2026-03-01", "sha256": "a" * 64}] * 1000
    assert len(tracking.partitions_tag("churn", many)) == tracking.PARTITIONS_TAG_LIMIT


def test_the_training_end_is_the_window_tags_end_else_the_runs_start_day():
    started = int(datetime(2026, 3, 4, 23, 30, tzinfo=timezone.utc).timestamp() * 1000)

    assert tracking.training_end("2026-02-01..2026-03-02", started) == date(2026, 3, 2)
    assert tracking.training_end("", started) == date(2026, 3, 4)


def test_a_day_is_stamped_at_midnight_utc():
    assert tracking.day_timestamp_ms(date(2026, 3, 2)) == 1772409600000


def test_the_drift_scores_name_each_feature_its_metric_and_the_prediction():
    feature = SimpleNamespace(name="tenure", metric="psi", score=0.3)
    report = SimpleNamespace(
        share=0.5, features=[feature], prediction=SimpleNamespace(metric="ks", score=0.2)
    )

    assert tracking.drift_scores(report) == {
        "drift_share": 0.5,
        "drift.tenure.psi": 0.3,
        "drift.prediction.ks": 0.2,
    }
    assert tracking.drift_scores(SimpleNamespace(share=0.0, features=[], prediction=None)) == {
        "drift_share": 0.0
    }


def test_the_performance_series_holds_the_metrics_degraded_and_rows():
    performance = {"metrics": {"roc_auc": 0.7}, "degraded": True, "rows": 120, "days": ["2026-03-01"]}

    assert tracking.performance_series(performance) == {"roc_auc": 0.7, "degraded": 1.0, "rows": 120}
