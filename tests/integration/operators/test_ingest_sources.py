"""DatasetIngestPartitionOperator on real files and storage: where a source override may read, what a
rejection shows of a file, naive timestamps and rows of another day.

The operator runs as in a task (``execute`` with a task context) against a local data root laid out
as the stack's: landing files under ``<data_root>/landing/churn/``, the stack's secrets next to it.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from include.example_data import churn
from mlops_provider.exceptions import InvalidConfigurationError, SourceRejectedError
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

DAY = "2026-10-01"
ROWS = 300
SECRET = "admin-password-0123456789-do-not-leak"


class Stack:
    """A data root with landing files and secrets beside it, and a dataset file to ingest with."""

    def __init__(self, tmp_path, **config_changes) -> None:
        self.home = tmp_path
        self.root = tmp_path / "data"
        self.landing = self.root / "landing" / "churn"
        self.landing.mkdir(parents=True)
        self.secrets = tmp_path / "secrets"
        self.secrets.mkdir()
        (self.secrets / "passwords.json").write_text(json.dumps({"admin": SECRET}))
        raw = yaml.safe_load((REPO_ROOT / "include" / "datasets" / "churn.yaml").read_text())
        raw["expectations"] = str(REPO_ROOT / "include" / "expectations" / "churn.json")
        for key, value in config_changes.items():
            if key == "allowed_uris":
                raw["source"]["allowed_uris"] = value
            else:
                raw[key] = value
        self.config = tmp_path / "churn.yaml"
        self.config.write_text(yaml.safe_dump(raw))
        self.storage = DatasetStorageHook(root_uri=f"file://{self.root}")

    def land(self, folder=None, day: str = DAY, **kwargs) -> str:
        (path,) = churn.write_days(
            folder or self.landing, day, 1, rows_per_day=ROWS, exact_rows=True, **kwargs
        )
        return f"file://{path}"

    def ingest(self, source_uri: str | None = None, day: str = DAY, **kwargs) -> dict:
        """Run the operator as a task of ``day`` would (``kwargs``: more operator arguments)."""
        operator = DatasetIngestPartitionOperator(
            task_id="ingest",
            dataset_config=str(self.config),
            source_uri=source_uri,
            **{"data_root": f"file://{self.root}", **kwargs},
        )
        ti = SimpleNamespace(dag_id="mlops_ingest__churn", run_id="manual", task_id="ingest", try_number=1)
        logical = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        return operator.execute({"ti": ti, "logical_date": logical, "ds": day})

    def rejection(self, day: str = DAY) -> str:
        return (self.root / "churn" / "quarantine" / f"ds={day}" / "source" / "_rejection.json").read_text()

    def quarantined(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in (self.root / "churn").rglob("*") if p.is_file())


@pytest.fixture
def stack(tmp_path) -> Stack:
    return Stack(tmp_path)


def _refused(stack: Stack, uri: str) -> str:
    with pytest.raises(InvalidConfigurationError) as caught:
        stack.ingest(uri)
    message = str(caught.value)
    assert SECRET not in message
    assert not (stack.root / "churn").exists()  # nothing read, nothing quarantined, nothing published
    return message


# -- sources stay where the configuration says ---------------------------------------------------


def test_an_override_inside_the_configured_location_is_ingested(stack):
    uri = stack.land(stack.landing / "redelivered")

    result = stack.ingest(uri)

    assert result["row_count"] == ROWS
    assert result["source"] == uri


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file:///etc/shadow",
        "{secrets}/passwords.json",
        "{landing}/../../../secrets/passwords.json",
        "{landing}/../../../secrets/*.json",
        "file://{root}/landing/churn%2F..%2F..%2F..%2Fsecrets/passwords.json",
        "s3://somebody-elses-bucket/churn/x.csv",
        "file://{root}/landing/churn-other/x.csv",
    ],
)
def test_an_override_outside_the_allowed_locations_is_refused_before_any_read(stack, uri):
    uri = uri.format(secrets=f"file://{stack.secrets}", landing=f"file://{stack.landing}", root=stack.root)

    message = _refused(stack, uri)

    assert "source override" in message


def test_the_refusal_names_the_allowed_locations(stack):
    message = _refused(stack, f"file://{stack.secrets}/passwords.json")
    assert f"allowed source locations (file://{stack.landing})" in message
    assert "source.allowed_uris" in message


def test_a_symlink_inside_the_location_that_leads_outside_is_refused(stack):
    (stack.landing / "2026-10-01.csv").symlink_to(stack.secrets / "passwords.json")
    os.symlink(stack.secrets, stack.landing / "linked")

    _refused(stack, f"file://{stack.landing}/2026-10-01.csv")
    _refused(stack, f"file://{stack.landing}/linked/passwords.json")
    _refused(stack, f"file://{stack.landing}/*.csv")  # a glob whose match is a link out


def test_a_megabyte_long_override_is_refused_and_not_quoted(stack):
    message = _refused(stack, f"file://{stack.landing}/" + "a" * 1_000_000)
    assert "characters long (at most 1024)" in message
    assert len(message) < 400


def test_allowed_uris_replace_the_configured_location(tmp_path):
    stack = Stack(tmp_path, allowed_uris=["{{ data_root }}/redeliveries/churn/"])
    inside = stack.land(stack.root / "redeliveries" / "churn")

    assert stack.ingest(inside)["row_count"] == ROWS
    message = _refused_again(stack, stack.land())  # the configured folder is not in the list
    assert f"(file://{stack.root}/redeliveries/churn)" in message


def _refused_again(stack: Stack, uri: str) -> str:
    with pytest.raises(InvalidConfigurationError) as caught:
        stack.ingest(uri)
    return str(caught.value)


def test_the_configured_source_needs_no_allowance(stack):
    stack.land()
    assert stack.ingest()["row_count"] == ROWS  # source.uri itself, rendered for the day


# -- a rejected file's contents stay out of logs and reports -------------------------------------


def test_a_rejected_file_is_quarantined_privately_and_quoted_only_in_excerpts(stack):
    foreign = stack.landing / "2026-10-01.csv"
    foreign.write_text(f"root:{SECRET}{'x' * 200}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")

    with pytest.raises(SourceRejectedError) as caught:
        stack.ingest()

    report = stack.rejection()
    for text in (str(caught.value), report):
        assert "unexpected columns ['root:admin-password" in text  # an excerpt at most ...
        assert SECRET not in text and "xxxxx" not in text and "daemon" not in text  # ... never the file
    folder = stack.root / "churn" / "quarantine" / f"ds={DAY}" / "source"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}


# -- naive timestamps and rows of another day ----------------------------------------------------


def _land_with_timestamps(stack: Stack, values: list[str]) -> None:
    table = churn.generate_day(DAY, len(values), seed=5)
    frame = table.to_pandas()
    frame["snapshot_ts"] = values
    frame.to_csv(stack.landing / f"{DAY}.csv", index=False)


def test_naive_timestamps_are_read_in_the_dataset_time_zone_and_stored_in_utc(tmp_path):
    stack = Stack(tmp_path, timezone="Europe/Paris")
    _land_with_timestamps(stack, ["2026-10-01 00:30:00", "2026-10-01 15:00:08", "2026-10-01T23:00:00+02:00"])

    stack.ingest()

    table = stack.storage.read_partition("churn", "raw", DAY)
    assert table.schema.field("snapshot_ts").type == pa.timestamp("us", tz="UTC")
    assert [v.isoformat() for v in table.column("snapshot_ts").to_pylist()] == [
        "2026-09-30T22:30:00+00:00",
        "2026-10-01T13:00:08+00:00",
        "2026-10-01T21:00:00+00:00",
    ]


def test_rows_of_another_day_are_refused_with_a_count_and_their_extremes(stack):
    _land_with_timestamps(
        stack, ["2026-10-01 08:00:00", "2026-09-29 23:00:00", "2026-10-02 00:00:00", "2026-10-03 06:00:00"]
    )

    with pytest.raises(SourceRejectedError, match="3 rows have 'snapshot_ts' outside the partition's day"):
        stack.ingest()

    report = json.loads(stack.rejection())
    (problem,) = report["problems"]
    assert "earliest 2026-09-29T23:00:00+00:00, latest 2026-10-03T06:00:00+00:00" in problem
    assert "08:00" not in problem  # no row is quoted but the two extremes
    assert stack.storage.read_manifest("churn", "raw", DAY) is None  # nothing published


def test_a_tolerance_lets_late_rows_in(tmp_path):
    stack = Stack(tmp_path, timestamp_tolerance_minutes=30)
    _land_with_timestamps(stack, ["2026-09-30 23:45:00", "2026-10-01 12:00:00", "2026-10-02 00:29:59"])

    assert stack.ingest()["row_count"] == 3


def test_a_refused_rerun_keeps_that_days_published_version(stack):
    stack.land()
    published = stack.ingest()
    before = stack.storage.read_manifest("churn", "raw", DAY)
    _land_with_timestamps(stack, ["2026-10-01 08:00:00", "2026-10-05 08:00:00"])

    with pytest.raises(SourceRejectedError):
        stack.ingest()

    assert published["row_count"] == ROWS
    assert stack.storage.read_manifest("churn", "raw", DAY) == before
    table = stack.storage.read_partition("churn", "raw", DAY)
    assert pc.min(table.column("snapshot_ts")).as_py().date().isoformat() == DAY


def test_on_s3_an_override_stays_in_the_configured_bucket_and_prefix(s3_bucket, tmp_path):
    bucket, conn_id = s3_bucket
    stack = Stack(tmp_path)
    storage = DatasetStorageHook(root_uri=f"s3://{bucket}/mlops", storage_conn_id=conn_id)
    (local,) = churn.write_days(tmp_path / "out", DAY, 1, rows_per_day=ROWS, exact_rows=True)
    for key in ("landing/churn/redelivered", "private"):
        storage.write_bytes_atomic(storage.root / key / local.name, local.read_bytes())

    def ingest(uri: str) -> dict:
        return stack.ingest(uri, data_root=f"s3://{bucket}/mlops", storage_conn_id=conn_id)

    assert ingest(f"s3://{bucket}/mlops/landing/churn/redelivered/*.csv")["row_count"] == ROWS
    for outside in (
        f"s3://{bucket}/mlops/private/{local.name}",
        f"s3://{bucket}/mlops/landing/churn/../../private/{local.name}",
        f"s3://{conn_id}@{bucket}/mlops/landing/churn/redelivered/{local.name}",
        f"file://{local}",
    ):
        with pytest.raises(
            InvalidConfigurationError,
            match=f"allowed source locations \\(s3://{bucket}/mlops/landing/churn\\)|plain bucket|'\\.\\.'",
        ):
            ingest(outside)
