from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from mlops_provider.core import partitions as parts

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["churn", "churn_v2", "a", "x" * 63])
def test_valid_dataset_names(name):
    assert parts.validate_dataset_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Churn", "2churn", "churn-v2", "../x", "a/b", "x" * 64, None, 3, "churn\n"]
)
def test_invalid_dataset_names(name):
    with pytest.raises(ValueError, match="Invalid dataset name"):
        parts.validate_dataset_name(name)


def test_zone_must_be_known():
    assert parts.validate_zone("quarantine") == "quarantine"
    with pytest.raises(ValueError, match="raw, validated, quarantine"):
        parts.validate_zone("published")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-03", date(2026, 2, 3)),
        (date(2026, 2, 3), date(2026, 2, 3)),
        (datetime(2026, 2, 3, 23, 59, tzinfo=timezone.utc), date(2026, 2, 3)),
        ("2026-02-03T00:00:00+00:00", date(2026, 2, 3)),
    ],
)
def test_to_date(value, expected):
    assert parts.to_date(value) == expected


@pytest.mark.parametrize("value", ["2026-02-30", "yesterday", "2026-02-03/../x", ""])
def test_to_date_rejects_non_dates(value):
    with pytest.raises(ValueError, match="Invalid partition date"):
        parts.to_date(value)


def test_partition_dir_names_round_trip():
    assert parts.partition_dir_name("2026-02-03") == "ds=2026-02-03"
    assert parts.parse_partition_dir_name("ds=2026-02-03") == date(2026, 2, 3)
    assert parts.parse_partition_dir_name("ds=2026-13-01") is None
    assert parts.parse_partition_dir_name("_tmp") is None


def test_data_file_names():
    token = "0123456789abcdef0123456789abcdef"
    assert parts.is_data_file_name(parts.data_file_name(token))
    with pytest.raises(ValueError, match="Invalid data file token"):
        parts.data_file_name("../../etc/passwd")


def test_date_range_is_closed_and_open_ended():
    day = date(2026, 1, 10)
    assert parts.in_range(day, day, day)
    assert parts.in_range(day, None, None)
    assert not parts.in_range(day, date(2026, 1, 11), None)
    assert not parts.in_range(day, None, date(2026, 1, 9))


def _manifest(**overrides) -> parts.Manifest:
    fields = {
        "dataset": "churn",
        "zone": "raw",
        "ds": "2026-01-01",
        "row_count": 3,
        "schema": [{"name": "x", "type": "int64"}],
        "files": [parts.DataFile(name=f"part-{'a' * 32}.parquet", size=10, sha256="f" * 64)],
        "source": "file:///in.csv",
        "produced_by": {"dag_id": "mlops_ingest"},
        "now": datetime(2026, 1, 2, tzinfo=timezone.utc),
    }
    fields.update(overrides)
    return parts.build_manifest(**fields)


def test_manifest_round_trips_through_json_form():
    manifest = _manifest()
    data = manifest.to_dict()
    assert data["sha256"] == "f" * 64
    assert data["created_at"] == "2026-01-02T00:00:00+00:00"
    assert parts.Manifest.from_dict(data) == manifest


def test_multi_file_digest_depends_on_every_file():
    one = parts.DataFile(name=f"part-{'a' * 32}.parquet", size=1, sha256="1" * 64)
    two = parts.DataFile(name=f"part-{'b' * 32}.parquet", size=1, sha256="2" * 64)
    assert _manifest(files=[one, two]).sha256 != _manifest(files=[one]).sha256
    assert _manifest(files=[one, two]).sha256 != _manifest(files=[two, one]).sha256


def test_malformed_manifests_are_refused():
    data = _manifest().to_dict()
    with pytest.raises(ValueError, match="Malformed"):
        parts.Manifest.from_dict({k: v for k, v in data.items() if k != "files"})
    data["files"][0]["name"] = "../../outside.parquet"
    with pytest.raises(ValueError, match="bad data file name"):
        parts.Manifest.from_dict(data)


def test_build_manifest_validates_names():
    with pytest.raises(ValueError, match="Invalid dataset name"):
        _manifest(dataset="../x")
    with pytest.raises(ValueError, match="Invalid zone"):
        _manifest(zone="tmp")


def test_cleanup_removes_only_unnamed_files_that_have_gone_stale():
    now = 1_000_000.0
    old, fresh = now - parts.STALE_AFTER_SECONDS - 1, now - 5
    named = parts.data_file_name("a" * 32)
    modified = {
        "_manifest.json": now,
        named: old,  # named by the current manifest: kept however old
        parts.data_file_name("b" * 32): old,  # a superseded version, stale: removed
        parts.data_file_name("c" * 32): fresh,  # another writer's, about to be committed: kept
        ".part-0123.tmp": fresh,  # another writer's file in flight: kept
        "._manifest.json.99.tmp": old,  # a crashed writer's debris: removed
        "notes.txt": old,  # not ours: never touched
    }

    removable = parts.removable_files(modified, {named}, now=now)

    assert removable == sorted(["._manifest.json.99.tmp", parts.data_file_name("b" * 32)])
    assert parts.removable_files(modified, {named}, now=now, stale_after=0) == sorted(
        [
            "._manifest.json.99.tmp",
            parts.data_file_name("b" * 32),
            parts.data_file_name("c" * 32),
            ".part-0123.tmp",
        ]
    )
    assert parts.is_temporary_name(".part-x.tmp") and not parts.is_temporary_name("part-x.tmp")
