"""airflow-provider-mlops: the tabular ML lifecycle on Apache Airflow 3.

This module is imported by Airflow's provider manager at start-up: it holds the version (the one
version source, read by the build) and ``get_provider_info()``, and imports nothing heavy.
"""

from __future__ import annotations

__version__ = "0.1.0"
