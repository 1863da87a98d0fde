"""Operator extra links: the MLflow run and model version a task worked on (``links.mlflow``), and the
stored reports with their address (``links.reports``, the one owner of report kinds and URLs)."""
