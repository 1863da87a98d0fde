"""Airflow plugins of the provider (UI and API server extensions), registered via ``airflow.plugins``.

A leaf: nothing in the provider imports it (import-linter's ``plugins-is-a-leaf``); what a plugin
serves is addressed in the layers below (report URLs: ``links.reports``).
"""

from __future__ import annotations
