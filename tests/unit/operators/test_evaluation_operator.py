"""MLflowEvaluateChallengerOperator against an in-memory MLflow and a tmp ``file://`` data root.

Two validated days of the churn example form the holdout; the "models" are stubs whose scores are
fixed functions of the true target (an oracle, a tie, a coin), so every metric and verdict is known.
The fake hook (:class:`FakeMLflowHook`) is injected at the hook boundary (``ModelOperator.mlflow_hook``);
the plots are core's (tests/unit/core/test_evaluation_plots.py), replaced here by a stand-in.
"""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace

import numpy as np
import pytest

from include.example_data import churn
from mlops_provider.core import registry_names as names
from mlops_provider.core.datasets import load_dataset_config
from mlops_provider.core.holdout import HoldoutScores
from mlops_provider.core.promotion import GatePolicy
from mlops_provider.core.training import features_and_target
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.links.mlflow import RUN_URL_KEY
from mlops_provider.operators import evaluation
from mlops_provider.operators._model import ModelOperator, read_recorded_partitions
from mlops_provider.operators.evaluation import MLflowEvaluateChallengerOperator
from tests.conftest import REPO_ROOT
from tests.unit.operators.fake_mlflow import FakeMLflowHook

pytestmark = pytest.mark.unit

MODEL = "churn_classifier"
DAYS = (date(2026, 3, 5), date(2026, 3, 6))
POLICY = GatePolicy(metric="roc_auc", minimums={"roc_auc": 0.6, "log_loss": 0.5}, margin=0.002)


class ScoreModel:
    """A binary "model" whose churn probability is ``low`` or ``high`` by the row's true class."""

    classes_ = (0, 1)

    def __init__(self, target: np.ndarray, low: float, high: float) -> None:
        self.target, self.low, self.high = target, low, high

    def predict_proba(self, X):
        positive = np.where(self.target[np.asarray(X.index)] == 1, self.high, self.low)
        return np.column_stack([1 - positive, positive])


@pytest.fixture(scope="module")
def dataset():
    return load_dataset_config(REPO_ROOT / "include" / "datasets" / "churn.yaml")


@pytest.fixture(scope="module")
def published(tmp_path_factory, dataset):
    """A data root with the holdout days published, the plan's holdout entries and their target."""
    root = f"file://{tmp_path_factory.mktemp('data')}"
    storage = DatasetStorageHook(root_uri=root)
    holdout = []
    for day in DAYS:
        storage.write_partition("churn", "validated", day, churn.generate_day(day, 200))
        holdout.append(
            {"ds": day.isoformat(), "sha256": storage.read_manifest("churn", "validated", day).sha256}
        )
    _, y = features_and_target(read_recorded_partitions(storage, "churn", holdout), dataset, "binary")
    return root, holdout, y


@pytest.fixture
def env(tmp_path, monkeypatch, dataset, published):
    """The fake hook, a training parent run and two candidate runs over the published holdout."""
    root, holdout, y = published
    fake = FakeMLflowHook(tmp_path / "mlflow")
    monkeypatch.setattr(ModelOperator, "mlflow_hook", lambda self: fake)
    monkeypatch.setattr(HoldoutScores, "plots", plots)
    model = SimpleNamespace(name=MODEL, task="binary", selection_metric="roc_auc", gate=POLICY)
    monkeypatch.setattr(evaluation, "load_model_config", lambda path: (model, dataset))

    experiment = names.training_experiment(MODEL)
    parent = fake.create_run(experiment)
    candidates = [
        {"id": i, "run_id": fake.create_run(experiment), "metrics": {"roc_auc": auc}, "params": {"C": c}}
        for i, (auc, c) in enumerate(((0.70, 0.1), (0.80, 1.0)))
    ]
    plan = {"experiment_id": fake.experiments[experiment], "parent_run_id": parent, "holdout": holdout}
    return SimpleNamespace(fake=fake, y=y, plan=plan, candidates=candidates, data_root=root)


def plots(scores: HoldoutScores) -> dict[str, bytes]:
    """A stand-in for the task's plots: one file saying whether the champion was drawn as reference."""
    return {"roc.png": b"with champion" if scores.champion_output is not None else b"alone"}


def evaluate(env, *, challenger: tuple[float, float], champion: tuple[float, float] | None, force=False):
    """Run the evaluate task with the best candidate scoring ``challenger`` (low, high) and, if set,
    a registered champion scoring ``champion``; return its result and the XComs it pushed."""
    fake = env.fake
    fake.models[env.candidates[1]["run_id"]] = ScoreModel(env.y, *challenger)
    if champion is not None:
        champion_run = fake.create_run("earlier")
        fake.models[champion_run] = ScoreModel(env.y, *champion)
        fake.add_version(MODEL, champion_run, aliases=(names.CHAMPION,))
    xcom: dict[str, object] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: xcom.__setitem__(key, value))
    operator = MLflowEvaluateChallengerOperator(
        task_id="evaluate", model_config="churn.yaml", plan=env.plan, candidates=env.candidates,
        force_promote=force, data_root=env.data_root,
    )  # fmt: skip
    return operator.execute({"ti": ti}), xcom


def test_without_a_champion_a_good_challenger_is_scored_recorded_and_promoted(env):
    summary, xcom = evaluate(env, challenger=(0.1, 0.9), champion=None)

    fake, best = env.fake, env.candidates[1]
    rows, positives = len(env.y), int(env.y.sum())
    assert summary["challenger"] == {**best, "metrics": summary["challenger"]["metrics"]}
    assert summary["challenger"]["metrics"]["roc_auc"] == pytest.approx(1.0)
    assert summary["challenger"]["metrics"]["log_loss"] == pytest.approx(-np.log(0.9))
    assert {k: summary[k] for k in ("model", "task", "champion", "holdout", "split_rule", "holdout_rows")} == {
        "model": MODEL, "task": "binary", "champion": None, "holdout": [d.isoformat() for d in DAYS],
        "split_rule": "time", "holdout_rows": rows,
    }  # fmt: skip
    assert summary["confusion"] == {"tn": rows - positives, "fp": 0, "fn": 0, "tp": positives}
    assert summary["decision"]["promote"] is True and summary["decision"]["champion_version"] is None

    run = fake.run(best["run_id"])
    assert run.metric("holdout_roc_auc") == pytest.approx(1.0)
    assert not [name for name in run.metrics if name.startswith("champion_")]
    folder = fake.artifact(best["run_id"], names.EVALUATION_ARTIFACT_PATH)
    assert json.loads((folder / "evaluation.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )
    assert (folder / "roc.png").read_bytes() == b"alone"
    assert fake.run(env.plan["parent_run_id"]).tags == {
        names.GATE_DECISION_TAG: "promote",
        names.GATE_REASON_TAG: summary["decision"]["reason"],
        names.CHALLENGER_RUN_ID_TAG: best["run_id"],
    }
    assert xcom == {RUN_URL_KEY: fake.run_url(env.plan["experiment_id"], best["run_id"])}


def test_a_challenger_that_beats_the_champion_on_the_same_rows_is_promoted(env):
    summary, _ = evaluate(env, challenger=(0.1, 0.9), champion=(0.5, 0.5))

    champion_run = env.fake.version(MODEL, "1").run_id
    assert summary["champion"]["version"] == "1" and summary["champion"]["run_id"] == champion_run
    assert summary["champion"]["metrics"]["roc_auc"] == pytest.approx(0.5)
    assert summary["decision"]["promote"] is True and summary["decision"]["champion_version"] == "1"
    run_id = env.candidates[1]["run_id"]
    assert env.fake.run(run_id).metric("champion_holdout_roc_auc") == pytest.approx(0.5)
    assert (
        env.fake.artifact(run_id, f"{names.EVALUATION_ARTIFACT_PATH}/roc.png").read_bytes()
        == b"with champion"
    )


def test_a_tie_with_the_champion_is_rejected_unless_forced(env):
    summary, _ = evaluate(env, challenger=(0.2, 0.8), champion=(0.1, 0.9))
    assert summary["decision"]["promote"] is False
    assert env.fake.run(env.plan["parent_run_id"]).tags[names.GATE_DECISION_TAG] == "reject"

    forced, _ = evaluate(env, challenger=(0.2, 0.8), champion=None, force="true")
    assert forced["decision"]["promote"] is True and forced["decision"]["forced"] is True
    assert env.fake.run(env.plan["parent_run_id"]).tags[names.GATE_DECISION_TAG] == "promote"


def test_a_challenger_below_a_minimum_is_rejected_even_when_forced(env):
    summary, _ = evaluate(env, challenger=(0.45, 0.55), champion=None, force=True)
    assert summary["decision"]["promote"] is False
    assert summary["decision"]["failed_minimums"] == ["log_loss"]
