"""Multiclass and regression through every core step, on synthetic data: fit, metrics, selection,
gate, the saved model's signature, the reference profile, prediction drift and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.datasets import DatasetConfig, SourceConfig
from mlops_provider.core.drift import compare_to_reference
from mlops_provider.core.evaluation import best_candidate, compute_metrics
from mlops_provider.core.model_card import render_model_card
from mlops_provider.core.model_io import save_sklearn_model
from mlops_provider.core.models import DEFAULT_PREPROCESSING, ModelConfig
from mlops_provider.core.profile import ReferenceProfile, build_reference_profile, prediction_values
from mlops_provider.core.promotion import GatePolicy, decide_promotion
from mlops_provider.core.training import build_pipeline, features_and_target, fit_candidate, model_output

pytestmark = pytest.mark.unit

CLASSES = ["bronze", "silver", "gold"]
FEATURES = {"numeric": ["x1", "x2"], "categorical": ["region"], "boolean": ["member"]}


def data(rows: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Features with a learnable multiclass target ``tier`` and numeric target ``spend``."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, rows), rng.normal(0, 1, rows)
    region = rng.choice(np.array(["north", "south", "east"], dtype=object), rows)
    member = rng.random(rows) < 0.4
    score = 1.2 * x1 - 0.8 * x2 + 0.7 * member + rng.logistic(0, 0.5, rows)
    tier = np.array(CLASSES, dtype=object)[np.digitize(score, [-0.6, 0.9])]
    spend = (
        50 + 12 * x1 - 6 * x2 + 9 * member + np.where(region == "south", 15.0, 0.0) + rng.normal(0, 4, rows)
    )
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "region": region, "member": member, "tier": tier, "spend": spend}
    )


def dataset(target: str, classes: list) -> DatasetConfig:
    schema = {"x1": "float64", "x2": "float64", "region": "string", "member": "bool", "tier": "string"}
    return DatasetConfig(
        name="shop",
        schema={**schema, "spend": "float64"},
        keys=[],
        target=target,
        target_classes=classes,
        features=FEATURES,
        source=SourceConfig(uri="file:///nowhere/{{ ds }}.csv"),
        expectations_path=Path("/nowhere.json"),
    )


def model(task: str, estimator: str, metric: str, gate: GatePolicy) -> ModelConfig:
    return ModelConfig(
        name=f"shop_{task}",
        dataset="shop",
        dataset_config_path=Path("/nowhere.yaml"),
        estimator=estimator,
        params={},
        param_grid={},
        preprocessing=DEFAULT_PREPROCESSING,
        window_days=10,
        holdout_days=2,
        selection_metric=metric,
        gate=gate,
        task=task,
    )


CASES = {
    "multiclass": (
        dataset("tier", CLASSES),
        model(
            "multiclass",
            "sklearn.linear_model.LogisticRegression",
            "f1_macro",
            GatePolicy(metric="f1_macro", minimums={"f1_macro": 0.6, "log_loss": 0.9}, margin=0.01),
        ),
        [{"C": 1e-4}, {"C": 1.0}],
    ),
    "regression": (
        dataset("spend", []),
        model(
            "regression",
            "sklearn.linear_model.Ridge",
            "rmse",
            GatePolicy(metric="rmse", minimums={"rmse": 6.0, "r2": 0.7}, margin=0.1),
        ),
        [{"alpha": 1e5}, {"alpha": 1.0}],
    ),
}


@pytest.mark.parametrize("task", list(CASES))
def test_a_task_goes_through_every_core_step(task, tmp_path):
    import mlflow.pyfunc

    ds, config, grid = CASES[task]
    X_fit, y_fit = features_and_target(data(4_000, seed=1), ds, task)
    X_sel, y_sel = features_and_target(data(2_000, seed=2), ds, task)
    X_hold, y_hold = features_and_target(data(2_000, seed=3), ds, task)

    fitted, candidates = [], []
    for i, params in enumerate(grid):
        pipeline = fit_candidate(build_pipeline(ds, config, params), X_fit, y_fit, classes=ds.target_classes)
        fitted.append(pipeline)
        metrics = compute_metrics(task, y_sel, model_output(pipeline, X_sel, task))
        candidates.append({"id": i, "params": params, "metrics": metrics})
    # The heavily regularised first candidate learns less: selection picks the second.
    best = best_candidate(candidates, config.selection_metric)
    assert best["id"] == 1
    weak, strong = (compute_metrics(task, y_hold, model_output(p, X_hold, task)) for p in fitted)

    decision = decide_promotion(strong, weak, champion_version="1", policy=config.gate)
    assert decision.promote, decision.reason
    assert not decide_promotion(weak, strong, champion_version="2", policy=config.gate).promote

    # The saved model serves what the task says, named by class for a classifier.
    save_sklearn_model(
        fitted[1], tmp_path / "model", input_example=X_fit.head(5), task=task, classes=ds.target_classes
    )
    served = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    np.testing.assert_allclose(np.asarray(served.predict(X_hold)), model_output(fitted[1], X_hold, task))
    outputs = served.metadata.signature.outputs
    if task == "multiclass":
        assert outputs.input_names() == CLASSES
    else:
        assert not outputs.has_input_names()  # one unnamed column: the predicted value

    # Prediction drift: stable on new data from the same world, drifted when the world moves.
    sample = X_fit.head(3_000)
    reference = build_reference_profile(
        sample,
        numeric=FEATURES["numeric"],
        categorical=FEATURES["categorical"] + FEATURES["boolean"],
        scores=prediction_values(task, model_output(fitted[1], sample, task), ds.target_classes),
    )
    reference.write(tmp_path / "reference")
    reference = ReferenceProfile.read(tmp_path / "reference")
    for shift, drifted in ((0.0, False), (1.5, True)):
        current = data(3_000, seed=4, shift=shift)
        scores = prediction_values(task, model_output(fitted[1], current, task), ds.target_classes)
        report = compare_to_reference(reference, current, current_scores=scores)
        assert report.prediction.kind == ("categorical" if task == "multiclass" else "numeric")
        assert report.prediction.drifted is drifted, report.prediction.reasons

    card = render_model_card(
        model_name=config.name, version="2", data_window={"days": 10}, metrics=strong,
        champion_comparison=decision, lineage={}, params=best["params"], task=task, classes=ds.target_classes,
    )  # fmt: skip
    assert f"**Task:** {task}" in card
    assert f"| {config.selection_metric} |" in card
