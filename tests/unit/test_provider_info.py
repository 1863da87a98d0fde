from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points, version
from pathlib import Path

import airflow
import jsonschema
import pytest

from mlops_provider import __version__
from mlops_provider.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit


def _import_object(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_provider_info_matches_the_schema_shipped_with_airflow():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_is_registered_and_returns_the_provider_info():
    (entry,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-provider-mlops"
    ]
    assert entry.load()() == get_provider_info()


def test_one_version_source():
    info = get_provider_info()
    assert info["versions"] == [__version__]
    assert version("airflow-provider-mlops") == __version__


def test_every_declared_module_and_class_imports():
    info = get_provider_info()
    for group in ("hooks", "operators"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in info["extra-links"]:
        _import_object(dotted)
    for conn in info["connection-types"]:
        hook = _import_object(conn["hook-class-name"])
        assert hook.conn_type == conn["connection-type"]
        assert hook.hook_name == conn["hook-name"]


def test_config_section_declares_data_root_and_connection_ids():
    options = get_provider_info()["config"]["mlops"]["options"]
    assert options["mlflow_conn_id"]["default"] == "mlflow_default"
    assert options["storage_conn_id"]["default"] == "aws_default"
    assert options["data_root"]["default"] == "file://{AIRFLOW_HOME}/mlops-data"


def test_the_declared_extra_links_are_exactly_those_of_the_operators():
    from airflow.sdk import BaseOperator

    info = get_provider_info()
    declared = set(info["extra-links"])
    used = set()
    for entry in info["operators"]:
        for module in map(importlib.import_module, entry["python-modules"]):
            for operator in vars(module).values():
                if isinstance(operator, type) and issubclass(operator, BaseOperator):
                    links = operator.operator_extra_links
                    used |= {f"{type(link).__module__}.{type(link).__qualname__}" for link in links}
    assert used == declared  # declared under the class paths the operators use, none stale


def test_the_mlflow_connection_form_offers_the_extras_the_hook_reads():
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    fields = {name.removeprefix("extra__mlflow__"): w for name, w in widgets.items() if "__mlflow__" in name}
    assert set(fields) == {"registry_uri", "insecure_tls", "ui_url"}
    ui_url = fields["ui_url"].field
    assert ui_url["schema"]["title"] == "MLflow UI URL (public)"
    assert ui_url["value"] is None  # optional: empty means the tracking URI
    assert not fields["ui_url"].is_sensitive
