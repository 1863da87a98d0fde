"""The JSON Schemas of the configuration files: the examples follow them and editors can use them."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from jsonschema import Draft202012Validator

from mlops_provider.core.config_schema import SCHEMA_DIR, load_schema, schema_path, schema_problems
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

EXAMPLES = {
    "dataset": sorted((REPO_ROOT / "include" / "datasets").glob("*.yaml")),
    "model": sorted((REPO_ROOT / "include" / "models").glob("*.yaml")),
}


@pytest.mark.parametrize("kind", ["dataset", "model"])
def test_the_schemas_are_valid_json_schemas_shipped_in_the_package(kind):
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema_path(kind).parent == SCHEMA_DIR
    assert SCHEMA_DIR.parent.name == "mlops_provider"  # package data: wheels carry it


@pytest.mark.parametrize(
    ("kind", "path"), [(kind, path) for kind, paths in EXAMPLES.items() for path in paths], ids=str
)
def test_every_shipped_config_follows_its_schema_and_points_editors_at_it(kind, path):
    text = path.read_text()
    assert schema_problems(kind, yaml.safe_load(text)) == []
    first_line = text.splitlines()[0]
    assert (
        first_line == f"# yaml-language-server: $schema=../../src/mlops_provider/schemas/{kind}.schema.json"
    )
    assert (path.parent / first_line.split("=", 1)[1]).resolve() == schema_path(kind)


def test_unknown_keys_name_the_closest_known_key_at_every_level():
    problems = schema_problems(
        "model",
        {
            "name": "m",
            "dataset": "d.yaml",
            "estimator": "sklearn.a.B",
            "window_days": 3,
            "holdout_days": 1,
            "gaet": {},
            "drift": {"cooldown": 1},
        },
    )
    assert any("unknown key 'gaet' in the top level (did you mean 'gate'?)" in p for p in problems)
    assert any("unknown key 'cooldown' in 'drift' (did you mean 'cooldown_days'?)" in p for p in problems)


def test_random_state_is_limited_to_the_seeds_numpy_and_scikit_learn_accept():
    model = {
        "name": "m",
        "dataset": "d.yaml",
        "estimator": "sklearn.a.B",
        "window_days": 3,
        "holdout_days": 1,
    }
    assert schema_problems("model", {**model, "random_state": 2**32 - 1}) == []
    assert any("'random_state'" in p for p in schema_problems("model", {**model, "random_state": 2**32}))


def test_yaml_dates_are_accepted_where_the_schema_asks_for_a_date():
    raw = yaml.safe_load(
        "name: d\nsource: {uri: 'file:///x'}\nschema: {a: int64}\ntarget: {column: a}\n"
        "features: {numeric: [a]}\nexpectations: s.json\ningest: {start_date: 2026-10-01}\n"
    )
    assert schema_problems("dataset", raw) == []
    raw["ingest"]["start_date"] = "October"
    assert any("'ingest.start_date'" in p for p in schema_problems("dataset", raw))


def test_the_drift_thresholds_in_the_schema_are_those_the_drift_check_accepts():
    from mlops_provider.core.drift import DriftThresholds

    listed = load_schema("model")["properties"]["drift"]["properties"]["thresholds"]["properties"]
    assert set(listed) == {f.name for f in dataclasses.fields(DriftThresholds)}


def test_the_schema_files_are_formatted_json():
    for kind in ("dataset", "model"):
        text = schema_path(kind).read_text()
        assert text == json.dumps(json.loads(text), indent=2) + "\n"


def test_the_vocabularies_in_the_dataset_schema_are_those_the_code_knows():
    from mlops_provider.core.datasets import COLUMN_TYPES, FEATURE_KINDS, SOURCE_FORMATS

    properties = load_schema("dataset")["properties"]
    assert tuple(properties["schema"]["additionalProperties"]["enum"]) == COLUMN_TYPES
    assert tuple(properties["source"]["properties"]["format"]["enum"]) == SOURCE_FORMATS
    assert tuple(properties["features"]["properties"]) == FEATURE_KINDS
