"""Where a run's source override may read: the pure decision, before any byte is read."""

from __future__ import annotations

import pytest

from mlops_provider.core.source_policy import (
    MAX_URI_LENGTH,
    SourcePolicyError,
    allowed_locations,
    check_inside,
    configured_location,
    parse_location,
)

pytestmark = pytest.mark.unit

LANDING = allowed_locations(["file:///data/landing/churn/", "s3://drop-zone/churn"])


@pytest.mark.parametrize(
    "uri",
    [
        "file:///data/landing/churn/2026-10-01.csv",
        "file:///data/landing/churn",
        "/data/landing/churn/late/2026-10-01.csv",
        "file:///data/landing//churn/./x.csv",
        "file:///data/landing/churn/2026-10-*/*.csv",
        "s3://drop-zone/churn/2026-10-01.parquet",
        "s3://drop-zone/churn/**/*.jsonl",
    ],
)
def test_uris_inside_an_allowed_location_are_accepted(uri):
    assert check_inside(uri, LANDING).scheme in ("file", "s3")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("file:///etc/shadow", "outside the allowed source locations"),
        ("file:///data/landing/churn/../../secrets/passwords.json", "'..'"),
        ("file:///data/landing/churn2/x.csv", "outside"),  # whole segments, not a string prefix
        ("file:///data/landing/chur*/x.csv", "outside"),  # a glob may not reach above the prefix
        ("file:///data/landing/*/x.csv", "outside"),
        ("file:///data/*", "outside"),
        ("file://otherhost/data/landing/churn/x.csv", "names a host"),
        ("file:///data/landing/churn/%2e%2e/%2e%2e/etc/shadow", "'%'"),
        ("file:///data/landing/churn/x.csv\nINFO forged log line", "control characters"),
        ("file:///data/landing/churn\\..\\..\\etc", "holds control characters, '\\'"),
        ("file:///data/landing/churn/x.csv#frag", "'#'"),
        ("s3://other-bucket/churn/x.csv", "outside"),
        ("s3://drop-zone/churnx/x.csv", "outside"),
        ("s3://aws_admin@drop-zone/churn/x.csv", "plain bucket name"),  # no connection of its choosing
        ("s3://drop-zone:9000/churn/x.csv", "plain bucket name"),
        ("http://169.254.169.254/latest/meta-data", "not a file:// or s3:// URI"),
        ("churn/x.csv", "not a file:// or s3:// URI"),
        ("", "empty"),
    ],
)
def test_anything_else_is_refused_naming_the_allowed_locations(uri, reason):
    with pytest.raises(SourcePolicyError) as caught:
        check_inside(uri, LANDING)
    message = str(caught.value)
    assert reason in message
    if reason == "outside" or reason.startswith("outside"):
        assert "file:///data/landing/churn, s3://drop-zone/churn" in message
    assert "\n" not in message


def test_a_huge_uri_is_refused_by_its_length_without_being_quoted():
    uri = "file:///data/landing/churn/" + "a" * 1_000_000
    with pytest.raises(
        SourcePolicyError, match=f"1,000,027 characters long \\(at most {MAX_URI_LENGTH}\\)"
    ) as caught:
        check_inside(uri, LANDING)
    assert len(str(caught.value)) < 200
    assert check_inside("file:///data/landing/churn/" + "a" * (MAX_URI_LENGTH - 27), LANDING)


def test_a_refused_uri_is_quoted_only_as_a_short_excerpt():
    with pytest.raises(SourcePolicyError) as caught:
        check_inside("file:///elsewhere/" + "b" * 900, LANDING)
    assert "b" * 100 not in str(caught.value)


def test_no_allowed_location_means_no_override():
    with pytest.raises(SourcePolicyError, match="not allowed for this dataset: list the locations"):
        check_inside("file:///data/landing/churn/x.csv", [])


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [("file:///", "whole file system"), ("file:///data/*", "glob"), ("ftp://x/y", "not a file:// or s3://")],
)
def test_allowed_locations_themselves_are_checked(prefix, reason):
    with pytest.raises(SourcePolicyError, match=reason):
        allowed_locations([prefix])


@pytest.mark.parametrize(
    ("template", "location"),
    [
        ("{{ data_root }}/landing/churn/{{ ds }}.csv", "{{ data_root }}/landing/churn/"),
        ("{{data_root}}/landing/{{ ds }}/*.csv", "{{data_root}}/landing/"),
        ("s3://drop-zone/churn/{{ ds_nodash }}*.parquet", "s3://drop-zone/churn/"),
        ("file:///data/landing/churn/*.csv", "file:///data/landing/churn/"),
        ("file:///data/landing/churn/daily.csv", "file:///data/landing/churn/"),
        ("{{ data_root }}/landing/{% if params.x %}a{% endif %}/x.csv", "{{ data_root }}/landing/"),
        ("{{ ds }}/x.csv", None),
        ("{{ params.root }}/x.csv", None),
    ],
)
def test_the_configured_location_is_the_folder_before_the_first_run_dependent_part(template, location):
    assert configured_location(template) == location


def test_locations_are_normalised():
    assert parse_location("/data//landing/./churn/").uri == "file:///data/landing/churn"
    assert parse_location("s3://drop-zone/churn//x/").uri == "s3://drop-zone/churn/x"
    assert parse_location("s3://drop-zone").uri == "s3://drop-zone"
