"""A version's description fits MLflow's SQL column (VARCHAR(5000), enforced by PostgreSQL and MySQL)."""

from __future__ import annotations

from unittest import mock

import pytest

from mlops_provider.hooks._mlflow_registry import ModelRegistry

pytestmark = pytest.mark.unit


def described(text: str) -> str:
    client = mock.Mock()
    ModelRegistry(client).describe_version("churn", "2", text)
    client.update_model_version.assert_called_once()
    return client.update_model_version.call_args.kwargs["description"]


def test_a_description_within_the_limit_is_kept_whole() -> None:
    card = "# Model card\n" + "x" * (5000 - 13)
    assert described(card) == card


def test_a_longer_description_is_clipped_to_5000_characters_with_a_mark() -> None:
    card = "# Model card\n" + "é" * 6000
    text = described(card)
    assert len(text) == 5000
    assert text.startswith("# Model card\né")
    assert text.endswith("(clipped to MLflow's 5000-character limit)")
