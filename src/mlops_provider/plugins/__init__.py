"""Airflow plugins of the provider (UI and API server extensions), registered via ``airflow.plugins``."""

from __future__ import annotations
