"""Registry operators: register and promote a challenger, roll the champion back to a named version.

Promotion moves MLflow aliases (``challenger``, ``champion``), never stages. Moving ``champion`` is a
compare-and-set: the champion read when evaluation began must still be the champion just before the
alias moves, so a newer champion (promoted by another run meanwhile) is never overwritten. Both
operators run in the Airflow pool :data:`REGISTRY_POOL` (one slot), and every move is verified after
the write. Each promotion and rollback is appended to the registered model's audit. The registry
calls themselves are ``MLflowHook.registry``'s (``hooks._mlflow_registry.ModelRegistry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.core.registry_names import (
    CHALLENGER,
    CHAMPION,
    GATE_PROMOTED,
    GATE_REJECTED,
    HOLDOUT_METRIC_PREFIX,
    MODEL_CARD_ARTIFACT_FILE,
    PREVIOUS_CHAMPION_TAG,
)
from mlops_provider.core.registry_records import (
    audit_record,
    parent_run_tags,
    registration_tags,
    rollback_tags,
    writer_token,
)
from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.links.mlflow import MODEL_VERSION_URL_KEY, MLflowModelVersionLink
from mlops_provider.operators._common import run_lineage
from mlops_provider.operators._model import ModelOperator, load_model_config

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context
    from mlflow.entities.model_registry import ModelVersion

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.models import ModelConfig
    from mlops_provider.core.promotion import GateDecision
    from mlops_provider.hooks._mlflow_registry import ModelRegistry
    from mlops_provider.hooks.mlflow import MLflowHook

# One slot: alias moves of register and rollback never interleave (created by the stack / compose).
REGISTRY_POOL = "mlops_registry"


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _triggered_by(context: Context) -> str:
    dag_run = context.get("dag_run")
    return str(
        getattr(dag_run, "triggering_user_name", None) or getattr(dag_run, "run_type", "") or "unknown"
    )


class MLflowRegisterModelOperator(ModelOperator):
    """Register the challenger (alias ``challenger``) and promote it to ``champion`` if the gate says so.

    A retried or re-run task finds the version it registered before (by run id) instead of
    creating another (a create the client re-sent is archived as a duplicate). The registered
    model gets the configuration's ``description``; the version's description is the model card
    (also the run artifact ``model_card.md``). A rejection is not a failure: its reason is logged,
    tagged on the version and run (``mlops.gate.*``) and returned. A promotion is appended to the
    model's audit. The training parent run gets the challenger's holdout metrics and links and is
    ended FINISHED. Losing a race on an alias raises ``RegistryRaceError`` (retried: the retry
    re-checks the champion). Run it in :data:`REGISTRY_POOL`.

    :param plan: the plan of the prepare task (its XCom ``plan``).
    :param evaluation: the return value of the evaluate task.
    :param reason: why this training run happened (Param / drift conf), recorded on the version.
        (templated)
    :return: version, aliases moved, whether it was promoted and why.
    """

    template_fields: Sequence[str] = ("model_config", "plan", "evaluation", "reason")
    operator_extra_links = (MLflowModelVersionLink(),)
    ui_color = "#f3e8fd"

    def __init__(self, *, plan: Any, evaluation: Any, reason: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.evaluation = evaluation
        self.reason = reason

    def execute(self, context: Context) -> dict[str, Any]:
        model, dataset = load_model_config(self.model_config)
        run_id = self.evaluation["challenger"]["run_id"]
        lineage = run_lineage(context)
        token = writer_token("register", lineage["dag_id"], lineage["run_id"])
        hook = self.mlflow_hook()
        version, created = hook.registry.register_challenger(
            model.name,
            run_id,
            token=token,
            description=model.description,
            tags=registration_tags(lineage["dag_id"], lineage["run_id"], self.reason, self.plan["window"]),
        )
        decision, promoted, previous = self._promote(hook.registry, model.name, version, token, context)
        verdict = GATE_PROMOTED if promoted else GATE_REJECTED
        hook.registry.record_gate(model.name, version.version, run_id, verdict, decision.reason)
        card = self._model_card(model, dataset, version.version, decision, lineage)
        hook.upload_artifact_bytes(run_id, MODEL_CARD_ARTIFACT_FILE, card.encode())
        hook.registry.describe_version(model.name, version.version, card)

        url = hook.model_version_url(model.name, version.version)
        self._close_parent_run(hook, version.version, verdict, url)
        context["ti"].xcom_push(key=MODEL_VERSION_URL_KEY, value=url)
        self._log_verdict(model.name, version.version, promoted, decision.reason, url)
        return {
            "model": model.name,
            "version": version.version,
            "created": created,
            "run_id": run_id,
            "aliases": [CHALLENGER, CHAMPION] if promoted else [CHALLENGER],
            "promoted": promoted,
            "previous_champion": previous,
            "reason": decision.reason,
        }

    def _promote(
        self, registry: ModelRegistry, name: str, version: ModelVersion, token: str, context: Context
    ) -> tuple[GateDecision, bool, str | None]:
        """Confirm the evaluation's decision against the champion now; if it holds, move ``champion``.

        A promotion (also one an earlier try made) is appended to the audit once. Returns the final
        decision, whether the version is champion, and the champion before it.
        """
        from mlops_provider.core.promotion import GateDecision, confirm_promotion

        decision = GateDecision.from_dict(self.evaluation["decision"])
        current = registry.champion(name)
        previous = current.version if current else None
        if previous == version.version:  # a previous try of this task already moved the alias
            promoted = True
            previous = version.tags.get(PREVIOUS_CHAMPION_TAG) or decision.champion_version
        else:
            decision = confirm_promotion(decision, previous)
            promoted = decision.promote
            if promoted:
                registry.promote(name, version.version, previous=previous, token=token)
        if promoted:
            record = audit_record(
                "promote",
                event_id=f"{token}:{version.version}",
                version=version.version,
                from_version=previous,
                at=_now(),
                by=_triggered_by(context),
                airflow_run_id=context["ti"].run_id,
                reason=decision.reason,
            )
            registry.append_audit(name, record)
        return decision, promoted, previous

    def _model_card(
        self,
        model: ModelConfig,
        dataset: DatasetConfig,
        version: str,
        decision: GateDecision,
        lineage: dict[str, Any],
    ) -> str:
        from mlops_provider.core.model_card import render_model_card

        plan, challenger = self.plan, self.evaluation["challenger"]
        return render_model_card(
            model_name=model.name,
            version=version,
            data_window={
                **plan["window"],
                "fit": plan["fit"],
                "selection": plan["selection"],
                "holdout": plan["holdout"],
            },
            metrics=challenger["metrics"],
            champion_comparison=decision,
            lineage={**lineage, "mlflow_run_id": challenger["run_id"], "reason": self.reason or ""},
            params=challenger["params"],
            task=model.task,
            classes=dataset.target_classes,
        )

    def _close_parent_run(self, hook: MLflowHook, version: str, verdict: str, url: str) -> None:
        """Give the training parent run the chosen candidate's metrics and links, then end it FINISHED."""
        plan, challenger = self.plan, self.evaluation["challenger"]
        parent = plan["parent_run_id"]
        hook.log_metrics(parent, challenger["metrics"], prefix=HOLDOUT_METRIC_PREFIX)
        hook.set_run_tags(
            parent,
            parent_run_tags(
                challenger_run_id=challenger["run_id"],
                challenger_run_url=hook.run_url(plan["experiment_id"], challenger["run_id"]),
                version=version,
                version_url=url,
                verdict=verdict,
            ),
        )
        hook.end_run(parent, "FINISHED")

    def _log_verdict(self, name: str, version: str, promoted: bool, reason: str, url: str) -> None:
        if promoted:
            self.log.info("Promoted %s version %s to champion: %s (%s)", name, version, reason, url)
        else:
            self.log.warning("Version %s of %s NOT promoted: %s (%s)", version, name, reason, url)


class MLflowRollbackChampionOperator(ModelOperator):
    """Point ``champion`` back to a named earlier version, recording who and why on that version.

    :param version: the registered version to make champion (an integer >= 1). (templated)
    :param reason: why, for the record (required). (templated)
    :return: the new and the previous champion version.
    """

    template_fields: Sequence[str] = ("model_config", "version", "reason")
    operator_extra_links = (MLflowModelVersionLink(),)
    ui_color = "#fde8e8"

    def __init__(self, *, version: int | str, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.reason = reason

    def execute(self, context: Context) -> dict[str, Any]:
        model, _ = load_model_config(self.model_config)
        version = self._checked_version()
        reason = self._checked_reason()
        hook = self.mlflow_hook()
        registry = hook.registry
        target = registry.ready_version(model.name, version).version
        lineage = run_lineage(context)
        token = writer_token("rollback", lineage["dag_id"], lineage["run_id"])
        previous = registry.rollback(model.name, target, token=token)
        self._record(registry, model.name, target, previous, reason, context)
        context["ti"].xcom_push(key=MODEL_VERSION_URL_KEY, value=hook.model_version_url(model.name, target))
        self.log.info("Rolled %s champion back from %s to %s: %s", model.name, previous, target, reason)
        return {"model": model.name, "champion": target, "previous_champion": previous, "reason": reason}

    @staticmethod
    def _record(
        registry: ModelRegistry, name: str, target: str, previous: str | None, reason: str, context: Context
    ) -> None:
        """Tag the target version with this rollback and append it to the audit."""
        lineage = run_lineage(context)
        at, by = _now(), _triggered_by(context)
        tags = rollback_tags(
            reason=reason, by=by, at=at, from_version=previous, airflow_run_id=lineage["run_id"]
        )
        record = audit_record(
            "rollback",
            event_id=writer_token("rollback", lineage["dag_id"], lineage["run_id"]),
            version=target,
            from_version=previous,
            at=at,
            by=by,
            airflow_run_id=lineage["run_id"],
            reason=reason,
        )
        registry.record_rollback(name, target, tags, record)

    def _checked_version(self) -> str:
        try:
            version = int(str(self.version).strip())
        except ValueError:
            raise InvalidConfigurationError(f"version must be an integer, not {self.version!r}") from None
        if version < 1:
            raise InvalidConfigurationError(f"version must be >= 1, not {version}")
        return str(version)

    def _checked_reason(self) -> str:
        reason = str(self.reason or "").strip()
        if len(reason) < 3:
            raise InvalidConfigurationError("A rollback needs a reason (at least 3 characters).")
        return reason
