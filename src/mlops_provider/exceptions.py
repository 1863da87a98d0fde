"""Exceptions of the provider: non-retryable failures a user can act on.

Transient failures (network, MLflow or S3 unavailable) are left as ordinary exceptions so that
Airflow retries them; everything here subclasses ``AirflowFailException`` and fails the task at once.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class MLOpsError(AirflowFailException):
    """Base class: bad data, failed gate or invalid configuration."""


class InvalidConfigurationError(MLOpsError):
    """A connection, config option, Param or conf value is missing or malformed."""


class PartitionNotFoundError(MLOpsError):
    """A partition that a task needs has not been published."""


class PartitionIntegrityError(MLOpsError):
    """A published partition does not match its manifest (size or sha256)."""


class SourceNotFoundError(MLOpsError):
    """The source of a day's data names no file: land it, then clear the task."""


class SourceRejectedError(MLOpsError):
    """The source data does not fit the dataset's schema; it was quarantined with a report."""


class ValidationFailedError(MLOpsError):
    """A partition failed its expectation suite; it was quarantined with a report."""


class InsufficientDataError(MLOpsError):
    """Too few validated partitions in the training window: publish more days or widen the window."""


class ModelNotFoundError(MLOpsError):
    """A registered model or version named by a Param does not exist in the registry."""
