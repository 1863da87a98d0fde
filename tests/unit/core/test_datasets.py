from __future__ import annotations

import copy

import pyarrow as pa
import pytest
import yaml

from mlops_provider.core.datasets import DatasetConfigError, load_dataset_config, parse_dataset_config
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CHURN = REPO_ROOT / "include" / "datasets" / "churn.yaml"


def test_the_shipped_churn_config_is_valid():
    config = load_dataset_config(CHURN)
    assert config.name == "churn"
    assert config.target == "churned"
    assert config.target_classes == [0, 1]
    assert config.keys == ["customer_id"]
    assert config.feature_columns[:2] == ["tenure_months", "monthly_charges"]
    assert config.arrow_schema().field("snapshot_ts").type == pa.timestamp("us", tz="UTC")
    assert config.expectations_path == (REPO_ROOT / "include" / "expectations" / "churn.json").resolve()
    assert config.source.format == "csv"
    assert "{{ ds }}" in config.source.uri


def _raw() -> dict:
    return yaml.safe_load(CHURN.read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(name="../etc"), "'name': '../etc' is not valid: use lower-case letters"),
        (
            lambda r: r["schema"].update(tenure_months="decimal"),
            "'schema.tenure_months': 'decimal' is not one of",
        ),
        (lambda r: r.update(keys=["nope"]), "'keys' names 'nope'"),
        (lambda r: r["target"].update(column="missing"), "'target.column'"),
        (lambda r: r["target"].update(classes=[1]), "'target.classes': [1] is too short"),
        (lambda r: r["target"].update(classes=[1, 1]), "lists a class twice"),
        (
            lambda r: r.update(key_columns=["customer_id"]),
            "unknown key 'key_columns' in the top level (did you mean 'keys'?)",
        ),
        (lambda r: r["source"].update(url="x"), "unknown key 'url' in 'source' (did you mean 'uri'?)"),
        (lambda r: r.update(timezone="Mars/Olympus"), "'timezone' 'Mars/Olympus' is not an IANA time zone"),
        (
            lambda r: r.update(timestamp_tolerance_minutes=-1),
            "'timestamp_tolerance_minutes': -1 is less than",
        ),
        (lambda r: r.update(ingest={"retries": 99}), "'ingest.retries': 99 is greater than"),
        (lambda r: r.update(ingest={"timezone": "Nowhere"}), "'ingest.timezone' 'Nowhere' is not an IANA"),
        (lambda r: r["features"]["numeric"].append("churned"), "also listed as a feature"),
        (lambda r: r["features"].update(text=["region"]), "unknown key 'text' in 'features'"),
        (lambda r: r["source"].update(sql="SELECT 1"), "exactly one of 'uri' or 'sql'"),
        (lambda r: r["source"].update(format="xlsx"), "'source.format'"),
        (lambda r: r.update(timestamp="region"), "'timestamp' must name"),
        (lambda r: r.pop("expectations"), "'expectations'"),
    ],
)
def test_each_problem_is_named(edit, message):
    raw = copy.deepcopy(_raw())
    edit(raw)
    with pytest.raises(DatasetConfigError, match="invalid dataset configuration") as caught:
        parse_dataset_config(raw, base_dir=CHURN.parent)
    assert message in str(caught.value)


def test_all_problems_are_reported_at_once():
    raw = copy.deepcopy(_raw())
    raw["keys"] = ["a"]
    raw["target"]["column"] = "b"
    with pytest.raises(DatasetConfigError) as caught:
        parse_dataset_config(raw, base_dir=CHURN.parent)
    assert "'keys' names 'a'" in str(caught.value)
    assert "'target.column'" in str(caught.value)


def test_missing_and_unparseable_files(tmp_path):
    with pytest.raises(DatasetConfigError, match="No dataset configuration"):
        load_dataset_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(DatasetConfigError, match="Cannot read"):
        load_dataset_config(bad)
    bad.write_text("- a list")
    with pytest.raises(DatasetConfigError, match="mapping"):
        load_dataset_config(bad)


def test_sql_source_needs_a_connection():
    raw = copy.deepcopy(_raw())
    raw["source"] = {"sql": "SELECT * FROM t"}
    with pytest.raises(DatasetConfigError, match=r"needs 'source\.conn_id'"):
        parse_dataset_config(raw, base_dir=CHURN.parent)
    raw["source"]["conn_id"] = "warehouse"
    assert parse_dataset_config(raw, base_dir=CHURN.parent).source.conn_id == "warehouse"


def test_pipeline_settings_time_zone_and_source_locations_are_read():
    raw = copy.deepcopy(_raw())
    raw.update(
        timezone="Europe/Paris",
        timestamp_tolerance_minutes=15,
        owner="data-team",
        tags=["sales", "sales"],
        ingest={"schedule": "0 6 * * *", "start_date": "2026-10-01", "catchup": True, "max_active_runs": 2},
    )
    raw["source"]["allowed_uris"] = ["{{ data_root }}/landing/"]
    config = parse_dataset_config(raw, base_dir=CHURN.parent)
    assert config.timezone == "Europe/Paris"
    assert config.timestamp_tolerance_minutes == 15
    assert config.source.allowed_uris == ("{{ data_root }}/landing/",)
    assert config.ingest.schedule == "0 6 * * *"
    assert config.ingest.start_date.isoformat() == "2026-10-01"
    assert (config.ingest.catchup, config.ingest.max_active_runs, config.ingest.retries) == (True, 2, 3)
    assert (config.ingest.owner, config.ingest.tags) == ("data-team", ("sales",))


def test_defaults_when_the_pipeline_keys_are_absent():
    config = parse_dataset_config(copy.deepcopy(_raw()), base_dir=CHURN.parent)
    assert (config.timezone, config.timestamp_tolerance_minutes, config.source.allowed_uris) == ("UTC", 0, ())
    assert (config.ingest.schedule, config.ingest.catchup, config.ingest.owner) == ("@daily", False, "mlops")


def test_a_target_without_classes_is_a_regression_target():
    raw = copy.deepcopy(_raw())
    raw["target"] = {"column": "total_charges"}
    raw["features"]["numeric"].remove("total_charges")
    config = parse_dataset_config(raw, base_dir=CHURN.parent)
    assert (config.target_classes, config.task_kind) == ([], "regression")
    raw["target"] = {"column": "region", "classes": ["north", "south", "east", "west"]}
    raw["features"]["categorical"].remove("region")
    assert parse_dataset_config(raw, base_dir=CHURN.parent).task_kind == "multiclass"
