"""MLflowRegisterModelOperator and MLflowRollbackChampionOperator against an in-memory registry.

``execute`` runs with a minimal context and a :class:`FakeMLflowHook` injected at the hook boundary
(``ModelOperator.mlflow_hook``); its registry is the provider's own ``ModelRegistry`` over in-memory
state, so the asserts read what a real server would hold: aliases, version and run tags, the audit.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops_provider.core import registry_names as names
from mlops_provider.exceptions import InvalidConfigurationError, ModelNotFoundError
from mlops_provider.hooks._mlflow_registry import RegistryRaceError
from mlops_provider.links.mlflow import MODEL_VERSION_URL_KEY
from mlops_provider.operators import registry
from mlops_provider.operators._model import ModelOperator
from mlops_provider.operators.registry import MLflowRegisterModelOperator, MLflowRollbackChampionOperator
from tests.unit.operators.fake_mlflow import FakeMLflowHook

pytestmark = pytest.mark.unit

MODEL = "churn_classifier"
DESCRIPTION = "Predicts churn (test)."
METRICS = {"roc_auc": 0.81, "log_loss": 0.41}


class Task:
    """A minimal task context; the task instance records the XComs pushed."""

    def __init__(self, run_id: str, *, dag_id: str = f"mlops_train__{MODEL}", try_number: int = 1):
        self.xcom: dict[str, object] = {}
        self.ti = SimpleNamespace(
            dag_id=dag_id, run_id=run_id, task_id="register", try_number=try_number, map_index=-1,
            xcom_push=lambda key, value: self.xcom.__setitem__(key, value),
        )  # fmt: skip
        self.context = {"ti": self.ti, "dag_run": SimpleNamespace(run_type="manual")}


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeMLflowHook:
    """The fake hook every operator gets; the model configuration a stub (what the operators read)."""
    hook = FakeMLflowHook(tmp_path / "mlflow")
    monkeypatch.setattr(ModelOperator, "mlflow_hook", lambda self: hook)
    model = SimpleNamespace(name=MODEL, description=DESCRIPTION, task="binary")
    config = (model, SimpleNamespace(target_classes=[0, 1]))
    monkeypatch.setattr(registry, "load_model_config", lambda path: config if path == "churn.yaml" else None)
    return hook


def register_task(fake: FakeMLflowHook, airflow_run: str, *, champion: str | None, promote: bool = True):
    """A register task for a fresh candidate run of ``airflow_run`` whose gate compared it with ``champion``."""
    experiment = names.training_experiment(MODEL)
    parent = fake.create_run(experiment, tags={names.AIRFLOW_RUN_ID_TAG: airflow_run})
    candidate = fake.create_run(experiment, tags={names.PARENT_RUN_ID_TAG: parent})
    window = {"start": "2026-03-01", "end": "2026-03-06", "days": 6}
    plan = {"experiment_id": fake.experiments[experiment], "parent_run_id": parent, "window": window,
            "fit": [], "selection": [], "holdout": []}  # fmt: skip
    decision = {"promote": promote, "reason": "better" if promote else "worse", "challenger_metrics": METRICS,
                "champion_version": champion, "champion_metrics": METRICS if champion else None,
                "metric": "roc_auc", "margin": 0.002}  # fmt: skip
    evaluation = {"challenger": {"run_id": candidate, "metrics": METRICS, "params": {"C": 1.0}},
                  "decision": decision}  # fmt: skip
    return MLflowRegisterModelOperator(
        task_id="register",
        model_config="churn.yaml",
        plan=plan,
        evaluation=evaluation,
        reason="drift on tenure",
    )


def rollback_task(version, reason: str = "v2 misbehaves") -> MLflowRollbackChampionOperator:
    return MLflowRollbackChampionOperator(
        task_id="rollback", model_config="churn.yaml", version=version, reason=reason
    )


# -- register ----------------------------------------------------------------------------------------


def test_a_first_challenger_is_registered_promoted_recorded_and_its_training_run_closed(fake):
    operator = register_task(fake, "run_1", champion=None)
    task = Task("run_1")

    result = operator.execute(task.context)

    url = fake.model_version_url(MODEL, "1")
    run_id = operator.evaluation["challenger"]["run_id"]
    assert result == {
        "model": MODEL, "version": "1", "created": True, "run_id": run_id,
        "aliases": [names.CHALLENGER, names.CHAMPION], "promoted": True, "previous_champion": None,
        "reason": "better",
    }  # fmt: skip
    assert fake.aliases(MODEL) == {names.CHALLENGER: "1", names.CHAMPION: "1"}
    assert fake.registered_models[MODEL].description == DESCRIPTION
    version = fake.version(MODEL, "1")
    assert version.run_id == run_id
    assert version.tags == {
        names.AIRFLOW_DAG_ID_TAG: f"mlops_train__{MODEL}",
        names.AIRFLOW_RUN_ID_TAG: "run_1",
        names.REASON_TAG: "drift on tenure",
        names.WINDOW_TAG: "2026-03-01..2026-03-06",
        names.PREVIOUS_CHAMPION_TAG: "",
        names.GATE_DECISION_TAG: "promoted",
        names.GATE_REASON_TAG: "better",
    }
    card = fake.artifact(run_id, names.MODEL_CARD_ARTIFACT_FILE).read_text()
    assert version.description == card and f"{MODEL}" in card
    assert fake.run(run_id).tags[names.GATE_DECISION_TAG] == "promoted"
    [record] = fake.registry.audit_records(MODEL)
    assert {k: record[k] for k in ("event_id", "action", "version", "from_version", "by", "reason", "seq")} == {
        "event_id": f"register:mlops_train__{MODEL}/run_1:1", "action": "promote", "version": "1",
        "from_version": None, "by": "manual", "reason": "better", "seq": 1,
    }  # fmt: skip
    parent = fake.run(operator.plan["parent_run_id"])
    assert parent.status == "FINISHED"
    assert parent.metric("holdout_roc_auc") == pytest.approx(0.81)
    assert parent.tags[names.CHALLENGER_RUN_ID_TAG] == run_id
    assert parent.tags[names.CHALLENGER_RUN_URL_TAG] == fake.run_url(operator.plan["experiment_id"], run_id)
    assert parent.tags[names.MODEL_VERSION_TAG] == "1"
    assert parent.tags[names.MODEL_VERSION_URL_TAG] == url
    assert parent.tags[names.GATE_DECISION_TAG] == "promoted"
    assert task.xcom == {MODEL_VERSION_URL_KEY: url}


def test_a_retried_register_finds_its_version_and_records_nothing_twice(fake):
    first = register_task(fake, "run_1", champion=None).execute(Task("run_1").context)
    operator = register_task(fake, "run_2", champion="1")
    operator.execute(Task("run_2").context)

    again = operator.execute(Task("run_2", try_number=2).context)

    assert (first["version"], again["version"], again["created"]) == ("1", "2", False)
    assert again["promoted"] is True and again["previous_champion"] == "1"
    assert fake.aliases(MODEL) == {names.CHALLENGER: "2", names.CHAMPION: "2"}
    assert [(r["action"], r["version"], r["from_version"]) for r in fake.registry.audit_records(MODEL)] == [
        ("promote", "1", None),
        ("promote", "2", "1"),
    ]
    assert len(fake.registered_models[MODEL].versions) == 2


def test_a_rejected_challenger_is_registered_as_challenger_only_and_says_why(fake):
    register_task(fake, "run_1", champion=None).execute(Task("run_1").context)
    operator = register_task(fake, "run_2", champion="1", promote=False)

    result = operator.execute(Task("run_2").context)

    assert (result["promoted"], result["aliases"], result["reason"]) == (False, [names.CHALLENGER], "worse")
    assert fake.aliases(MODEL) == {names.CHALLENGER: "2", names.CHAMPION: "1"}
    tags = fake.version(MODEL, "2").tags
    assert (tags[names.GATE_DECISION_TAG], tags[names.GATE_REASON_TAG]) == ("rejected", "worse")
    assert names.PREVIOUS_CHAMPION_TAG not in tags
    assert fake.run(operator.evaluation["challenger"]["run_id"]).tags[names.GATE_DECISION_TAG] == "rejected"
    assert fake.run(operator.plan["parent_run_id"]).status == "FINISHED"
    assert [r["version"] for r in fake.registry.audit_records(MODEL)] == ["1"]


def test_a_champion_promoted_since_evaluation_is_not_overwritten(fake):
    register_task(fake, "run_1", champion=None).execute(Task("run_1").context)
    late = register_task(fake, "run_2", champion="1")  # evaluated against v1 ...
    register_task(fake, "run_3", champion="1").execute(Task("run_3").context)  # ... v2 wins meanwhile

    result = late.execute(Task("run_2").context)

    assert (result["version"], result["promoted"]) == ("3", False)
    assert "changed from version 1 to version 2" in result["reason"]
    assert fake.aliases(MODEL) == {names.CHALLENGER: "3", names.CHAMPION: "2"}
    assert fake.version(MODEL, "3").tags[names.GATE_DECISION_TAG] == "rejected"


def test_a_register_that_loses_the_race_for_champion_raises_and_restores_the_winner(fake):
    register_task(fake, "run_1", champion=None).execute(Task("run_1").context)
    other = fake.add_version(MODEL)  # v2: a rollback's target
    operator = register_task(fake, "run_2", champion="1")  # registers v3

    def rollback_lands_first(name, alias, version):
        if alias == names.CHAMPION:  # after register re-checked champion == v1, before its move
            fake.before_alias_move = None
            fake.registry.move_alias(name, alias, other, token="rollback:other", expected="1")

    fake.before_alias_move = rollback_lands_first
    with pytest.raises(RegistryRaceError, match="Lost a race"):
        operator.execute(Task("run_2").context)

    assert fake.aliases(MODEL)[names.CHAMPION] == other
    assert fake.aliases(MODEL)[names.CHALLENGER] == "3"
    assert names.PREVIOUS_CHAMPION_TAG not in fake.version(MODEL, "3").tags
    assert [r["version"] for r in fake.registry.audit_records(MODEL)] == ["1"]


# -- rollback ----------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(fake) -> FakeMLflowHook:
    fake.add_version(MODEL)
    fake.add_version(MODEL, aliases=(names.CHAMPION,))
    return fake


def test_a_rollback_moves_champion_back_and_records_who_why_and_from_what(two_versions):
    fake, task = two_versions, Task("manual__rb1", dag_id=f"mlops_rollback__{MODEL}")

    result = rollback_task(" 1 ").execute(task.context)

    assert result == {"model": MODEL, "champion": "1", "previous_champion": "2", "reason": "v2 misbehaves"}
    assert fake.aliases(MODEL) == {names.CHAMPION: "1"}
    tags = fake.version(MODEL, "1").tags
    assert {k: v for k, v in tags.items() if k != names.ROLLBACK_AT_TAG} == {
        names.ROLLBACK_REASON_TAG: "v2 misbehaves",
        names.ROLLBACK_BY_TAG: "manual",
        names.ROLLBACK_FROM_VERSION_TAG: "2",
        names.ROLLBACK_AIRFLOW_RUN_ID_TAG: "manual__rb1",
        names.ROLLBACK_AUDIT_SEQ_TAG: "1",
    }
    [record] = fake.registry.audit_records(MODEL)
    assert (record["event_id"], record["action"], record["version"], record["from_version"]) == (
        f"rollback:mlops_rollback__{MODEL}/manual__rb1", "rollback", "1", "2",
    )  # fmt: skip
    assert record["at"] == tags[names.ROLLBACK_AT_TAG]
    assert task.xcom == {MODEL_VERSION_URL_KEY: fake.model_version_url(MODEL, "1")}


def test_a_retried_rollback_keeps_the_first_tries_record(two_versions):
    fake = two_versions
    rollback_task(1).execute(Task("manual__rb1").context)

    again = rollback_task(1).execute(Task("manual__rb1", try_number=2).context)

    assert again["previous_champion"] == "2"
    assert len(fake.registry.audit_records(MODEL)) == 1
    assert fake.version(MODEL, "1").tags[names.ROLLBACK_FROM_VERSION_TAG] == "2"


def test_every_rollback_stays_in_the_audit(two_versions):
    fake = two_versions
    for run, version in (("rb1", 1), ("rb2", 2), ("rb3", 1)):
        rollback_task(version, reason=f"because {run}").execute(Task(run).context)

    assert [(r["version"], r["from_version"], r["seq"]) for r in fake.registry.audit_records(MODEL)] == [
        ("1", "2", 1),
        ("2", "1", 2),
        ("1", "2", 3),
    ]
    assert fake.version(MODEL, "1").tags[names.ROLLBACK_REASON_TAG] == "because rb3"


@pytest.mark.parametrize("version", ["3", "abc", "0"])
def test_a_rollback_to_a_version_that_does_not_exist_fails_without_moving(two_versions, version):
    error = ModelNotFoundError if version == "3" else InvalidConfigurationError
    with pytest.raises(error):
        rollback_task(version).execute(Task("rb").context)
    assert two_versions.aliases(MODEL) == {names.CHAMPION: "2"}


def test_a_rollback_to_a_version_not_ready_fails(two_versions):
    two_versions.version(MODEL, "1").status = "PENDING_REGISTRATION"
    with pytest.raises(ModelNotFoundError, match="not READY"):
        rollback_task(1).execute(Task("rb").context)


def test_a_rollback_needs_a_reason(two_versions):
    with pytest.raises(InvalidConfigurationError, match="needs a reason"):
        rollback_task(1, reason="  x ").execute(Task("rb").context)
    assert two_versions.registry.audit_records(MODEL) == []


def test_a_rollback_that_loses_the_race_raises(two_versions):
    fake = two_versions

    def promotion_lands_first(name, alias, version):
        fake.before_alias_move = None
        fake.registry.move_alias(name, alias, "2", token="register:other", expected="2")

    fake.before_alias_move = promotion_lands_first
    with pytest.raises(RegistryRaceError):
        rollback_task(1).execute(Task("rb").context)
    assert fake.aliases(MODEL) == {names.CHAMPION: "2"}
    assert fake.registry.audit_records(MODEL) == []
