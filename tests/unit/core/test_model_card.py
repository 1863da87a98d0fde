from __future__ import annotations

import math

import pytest

from mlops_provider.core.model_card import render_model_card
from mlops_provider.core.promotion import GatePolicy, decide_promotion

pytestmark = pytest.mark.unit

POLICY = GatePolicy(metric="roc_auc", minimums={"roc_auc": 0.6}, margin=0.002)
CHALLENGER = {"roc_auc": 0.8234, "log_loss": 0.39, "pr_auc": math.nan}
CHAMPION = {"roc_auc": 0.81, "log_loss": 0.4, "pr_auc": 0.5}
WINDOW = {
    "dataset": "churn",
    "train_days": [f"2024-03-{d:02d}" for d in range(1, 26)],
    "holdout_days": ["2024-03-26", "2024-03-30"],
    "train_rows": 500_000,
}
LINEAGE = {
    "dag_id": "mlops_train",
    "run_id": "manual__2024-03-31",
    "mlflow_run_id": "abc123",
    "partitions": [
        {"uri": "file:///data/churn/validated/ds=2024-03-01", "sha256": "aa11", "rows": 20000},
        {"uri": "file:///data/churn/validated/ds=2024-03-02", "sha256": "bb22", "rows": 19876},
    ],
}


def card(comparison, version="7", **overrides):
    kwargs = dict(
        model_name="churn_classifier",
        version=version,
        data_window=WINDOW,
        metrics=CHALLENGER,
        champion_comparison=comparison,
        lineage=LINEAGE,
        params={"C": 1e-05, "class_weight": None, "note": "a|b"},
    )
    kwargs.update(overrides)
    return render_model_card(**kwargs)


def test_card_for_a_promoted_challenger_compares_with_the_champion():
    decision = decide_promotion(CHALLENGER, CHAMPION, champion_version="6", policy=POLICY)
    text = card(decision)
    assert text.startswith("# Model card: churn_classifier version 7\n\n**Decision:** promoted to champion.")
    assert "| Metric | Challenger | Champion (version 6) | Difference | Better |" in text
    assert "| roc_auc | 0.8234 | 0.8100 | +0.0134 | higher |" in text
    assert "| log_loss | 0.3900 | 0.4000 | -0.0100 | lower |" in text
    assert "| pr_auc | n/a | 0.5000 | n/a | higher |" in text
    assert "| Champion at evaluation | version 6 |" in text
    assert decision.reason in text


def test_card_without_champion_and_before_registration():
    decision = decide_promotion(CHALLENGER, None, champion_version=None, policy=POLICY)
    text = card(decision.to_dict(), version=None)
    assert text.startswith("# Model card: churn_classifier\n")
    assert "| Metric | Challenger | Better |" in text
    assert "| Champion at evaluation | none |" in text


def test_card_for_a_rejected_challenger_names_the_failed_minimums():
    decision = decide_promotion({"roc_auc": 0.55}, CHAMPION, champion_version="6", policy=POLICY)
    text = card(decision, metrics={"roc_auc": 0.55})
    assert "**Decision:** not promoted (stays challenger). The challenger fails the minimums" in text
    assert "| Failed minimums | roc_auc |" in text


def test_window_params_and_lineage_render_as_tables():
    text = card(decide_promotion(CHALLENGER, None, champion_version=None, policy=POLICY))
    # 25 training days are shortened to the first three and the last two
    assert (
        "| train_days | 2024-03-01, 2024-03-02, 2024-03-03, …, 2024-03-24, 2024-03-25, (25 values) |" in text
    )
    assert "| holdout_days | 2024-03-26, 2024-03-30 |" in text
    assert "| train_rows | 500000 |" in text
    assert "| uri | sha256 | rows |" in text
    assert "| file:///data/churn/validated/ds=2024-03-02 | bb22 | 19876 |" in text
    assert "| dag_id | mlops_train |" in text
    assert "| C | 1e-05 |" in text  # parameters exactly as given, not rounded
    assert "| class_weight | n/a |" in text
    assert "| note | a\\|b |" in text  # a pipe would break the table
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Metrics on the holdout",
        "## Quality gate",
        "## Data window",
        "## Parameters",
        "## Lineage",
    ]
    assert text.index("**Decision:**") < text.index("## Metrics on the holdout")


@pytest.mark.parametrize(
    ("task", "classes", "line"),
    [
        ("binary", [0, 1], "**Task:** binary classification of 0, 1: scores are the probability of 1."),
        (
            "multiclass",
            ["low", "mid", "high"],
            "**Task:** multiclass classification of 3 classes (low, mid, high): one probability per class.",
        ),
        ("regression", [], "**Task:** regression: the predicted value of the target."),
    ],
)
def test_card_says_what_the_model_predicts(task, classes, line):
    decision = decide_promotion(CHALLENGER, None, champion_version=None, policy=POLICY)
    text = card(decision, task=task, classes=classes)
    assert f"\n\n{line}\n\n## Metrics on the holdout" in text


def test_regression_metrics_show_their_direction():
    policy = GatePolicy(metric="rmse", minimums={"rmse": 10.0, "r2": 0.3})
    decision = decide_promotion(
        {"rmse": 4.0, "r2": 0.8}, {"rmse": 5.0, "r2": 0.7}, champion_version="2", policy=policy
    )
    text = card(decision, metrics={"rmse": 4.0, "r2": 0.8}, task="regression", classes=[])
    assert "| rmse | 4.0000 | 5.0000 | -1.0000 | lower |" in text
    assert "| r2 | 0.8000 | 0.7000 | +0.1000 | higher |" in text
    assert (
        "**Decision:** promoted to champion. The challenger beats champion version 2 on rmse by 1.0000"
        in text
    )
