"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Kept free of imports beyond the package version: Airflow calls it in every component at start-up.
"""

from __future__ import annotations

from mlops_provider import __version__

_INTEGRATION = "MLOps"
_PACKAGE = "mlops_provider"


def _modules(kind: str, *names: str) -> list[dict]:
    return [
        {
            "integration-name": _INTEGRATION,
            "python-modules": [f"{_PACKAGE}.{kind}.{name}" for name in names],
        }
    ]


def _option(description: str, default: str, example: str, type_: str = "string") -> dict:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": type_,
        "example": example,
        "default": default,
    }


def get_provider_info() -> dict:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": (
            "Tabular ML lifecycle on Airflow: ingest and validate daily data (Great Expectations), "
            "train and register scikit-learn models in MLflow with alias-based promotion, "
            "and retrain on data drift."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://mlflow.org/docs/latest/",
                "tags": ["software"],
            }
        ],
        "hooks": _modules("hooks", "mlflow", "storage"),
        "operators": _modules(
            "operators", "ingest", "validation", "training", "evaluation", "registry", "drift"
        ),
        "connection-types": [
            {
                "connection-type": "mlflow",
                "hook-class-name": f"{_PACKAGE}.hooks.mlflow.MLflowHook",
                "hook-name": "MLflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "host": "Tracking URI or host",
                        "login": "Username (basic auth)",
                        "password": "Password or token",
                    },
                    "placeholders": {
                        "host": "http://127.0.0.1:5000",
                        "port": "5000 (when Host has no port)",
                        "login": "leave empty to send the password as a bearer token",
                        "ui_url": "https://mlflow.example.com (empty: the tracking URI)",
                    },
                },
                "conn-fields": {
                    "registry_uri": {
                        "label": "Registry URI",
                        "description": "Model registry URI when it differs from the tracking URI.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "insecure_tls": {
                        "label": "Skip TLS verification",
                        "description": "Do not verify the server's TLS certificate (test servers only).",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "ui_url": {
                        "label": "MLflow UI URL (public)",
                        "description": (
                            "The MLflow UI address a person's browser reaches, used by the extra links "
                            "and logged URLs (http or https, no credentials). Defaults to the tracking URI."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
        "extra-links": [
            f"{_PACKAGE}.links.reports.ValidationReportLink",
            f"{_PACKAGE}.links.reports.DriftReportLink",
            f"{_PACKAGE}.links.mlflow.MLflowRunLink",
            f"{_PACKAGE}.links.mlflow.MLflowModelVersionLink",
        ],
        "config": {
            "mlops": {
                "description": "Settings of airflow-provider-mlops.",
                "options": {
                    "data_root": _option(
                        "Root URI of the dataset storage: file:///absolute/path or s3://bucket/prefix.",
                        default="file://{AIRFLOW_HOME}/mlops-data",
                        example="s3://my-bucket/mlops",
                    ),
                    "mlflow_conn_id": _option(
                        "Connection id of the MLflow tracking server.",
                        default="mlflow_default",
                        example="mlflow_default",
                    ),
                    "storage_conn_id": _option(
                        "Connection id of the `aws` connection used for s3:// data roots.",
                        default="aws_default",
                        example="aws_default",
                    ),
                },
            }
        },
    }
