"""Registry operators: register and promote a challenger, roll the champion back to a named version.

Promotion moves MLflow aliases (``challenger``, ``champion``), never stages. Moving ``champion`` is a
compare-and-set: the champion read when evaluation began must still be the champion just before the
alias moves, so a newer champion (promoted by another run meanwhile) is never overwritten. Both
operators run in the Airflow pool :data:`REGISTRY_POOL` (one slot), and every move is verified after
the write (``MLflowHook.move_alias``). Each promotion and rollback is appended to the registered
model's audit (``MLflowHook.audit_records``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_provider.exceptions import InvalidConfigurationError, ModelNotFoundError
from mlops_provider.hooks._mlflow_registry import ANY
from mlops_provider.links.mlflow import MODEL_VERSION_URL_KEY, MLflowModelVersionLink
from mlops_provider.operators._common import run_lineage
from mlops_provider.operators._model import ModelOperator, load_model_config

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from mlops_provider.hooks.mlflow import MLflowHook

CHAMPION = "champion"
CHALLENGER = "challenger"
# One slot: alias moves of register and rollback never interleave (created by the stack / compose).
REGISTRY_POOL = "mlops_registry"


def _writer(context: Context, action: str) -> str:
    """Who writes: ``<action>:<dag_id>/<run_id>``, the same on every try of the task."""
    ti = context["ti"]
    return f"{action}:{ti.dag_id}/{ti.run_id}"


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _triggered_by(context: Context) -> str:
    dag_run = context.get("dag_run")
    return str(
        getattr(dag_run, "triggering_user_name", None) or getattr(dag_run, "run_type", "") or "unknown"
    )


def _close_parent_run(
    hook: MLflowHook, plan: dict[str, Any], challenger: dict[str, Any], version: str, verdict: str, url: str
) -> None:
    """Give the training parent run the chosen candidate's metrics and links, then end it FINISHED."""
    parent = plan["parent_run_id"]
    hook.log_metrics(parent, challenger["metrics"], prefix="holdout_")
    for key, value in {
        "mlops.challenger_run_id": challenger["run_id"],
        "mlops.challenger_run_url": hook.run_url(plan["experiment_id"], challenger["run_id"]),
        "mlops.model_version": version,
        "mlops.model_version_url": url,
        "mlops.gate.decision": verdict,
    }.items():
        hook.client.set_tag(parent, key, value)
    hook.end_run(parent, "FINISHED")


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
        from mlops_provider.core.model_card import render_model_card
        from mlops_provider.core.promotion import GateDecision, confirm_promotion

        model, dataset = load_model_config(self.model_config)
        plan, evaluation = self.plan, self.evaluation
        challenger = evaluation["challenger"]
        hook = self.mlflow_hook()
        lineage = run_lineage(context)

        tags = {
            "airflow.dag_id": lineage["dag_id"],
            "airflow.run_id": lineage["run_id"],
            "mlops.reason": (self.reason or "")[:5000],
            "mlops.window": f"{plan['window']['start']}..{plan['window']['end']}",
        }
        hook.ensure_registered_model(model.name, model.description)
        version, created = hook.register_run_model(model.name, challenger["run_id"], tags=tags)
        writer = _writer(context, "register")
        hook.move_alias(model.name, CHALLENGER, version.version, token=writer, expected=ANY)

        decision = GateDecision.from_dict(evaluation["decision"])
        current = hook.get_version_by_alias(model.name, CHAMPION)
        current_version = current.version if current else None
        if current_version == version.version:  # a previous try of this task already moved the alias
            promoted = True
            current_version = version.tags.get("mlops.previous_champion") or decision.champion_version
        else:
            decision = confirm_promotion(decision, current_version)
            promoted = decision.promote
            if promoted:
                hook.move_alias(model.name, CHAMPION, version.version, token=writer, expected=current_version)
                hook.client.set_model_version_tag(
                    model.name, version.version, "mlops.previous_champion", str(current_version or "")
                )
        if promoted:
            hook.append_audit(
                model.name,
                {
                    "event_id": f"{writer}:{version.version}",
                    "action": "promote",
                    "version": version.version,
                    "from_version": current_version,
                    "at": _now(),
                    "by": _triggered_by(context),
                    "airflow_run_id": lineage["run_id"],
                    "reason": decision.reason,
                },
            )
        verdict = "promoted" if promoted else "rejected"
        hook.client.set_model_version_tag(model.name, version.version, "mlops.gate.decision", verdict)
        hook.client.set_model_version_tag(
            model.name, version.version, "mlops.gate.reason", decision.reason[:5000]
        )
        hook.client.set_tag(challenger["run_id"], "mlops.gate.decision", verdict)
        hook.client.set_tag(challenger["run_id"], "mlops.gate.reason", decision.reason[:5000])

        card = render_model_card(
            model_name=model.name,
            version=version.version,
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
        hook.upload_artifact_bytes(challenger["run_id"], "model_card.md", card.encode())
        hook.client.update_model_version(model.name, version.version, description=card[:60000])

        url = hook.model_version_url(model.name, version.version)
        _close_parent_run(hook, plan, challenger, version.version, verdict, url)
        context["ti"].xcom_push(key=MODEL_VERSION_URL_KEY, value=url)
        if promoted:
            self.log.info(
                "Promoted %s version %s to champion: %s (%s)",
                model.name,
                version.version,
                decision.reason,
                url,
            )
        else:
            self.log.warning(
                "Version %s of %s NOT promoted: %s (%s)", version.version, model.name, decision.reason, url
            )
        return {
            "model": model.name,
            "version": version.version,
            "created": created,
            "run_id": challenger["run_id"],
            "aliases": [CHALLENGER, CHAMPION] if promoted else [CHALLENGER],
            "promoted": promoted,
            "previous_champion": current_version,
            "reason": decision.reason,
        }


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
        reason = str(self.reason or "").strip()
        if len(reason) < 3:
            raise InvalidConfigurationError("A rollback needs a reason (at least 3 characters).")
        hook = self.mlflow_hook()
        target = self._existing_version(hook, model.name, version)
        writer = _writer(context, "rollback")
        done = [r for r in hook.audit_records(model.name) if r.get("event_id") == writer]
        current = hook.get_version_by_alias(model.name, CHAMPION)
        if done and current is not None and current.version == target:  # an earlier try finished
            previous = done[0].get("from_version")
        else:
            previous = current.version if current else None
            hook.move_alias(model.name, CHAMPION, target, token=writer, expected=previous)
        lineage = run_lineage(context)
        at, by = _now(), _triggered_by(context)
        # The version's tags show its latest rollback; the audit keeps every one.
        record = {
            "mlops.rollback.reason": reason[:5000],
            "mlops.rollback.by": by,
            "mlops.rollback.at": at,
            "mlops.rollback.from_version": str(previous or ""),
            "mlops.rollback.airflow_run_id": lineage["run_id"],
        }
        for key, value in record.items():
            hook.client.set_model_version_tag(model.name, target, key, value)
        seq = hook.append_audit(
            model.name,
            {
                "event_id": writer,
                "action": "rollback",
                "version": target,
                "from_version": previous,
                "at": at,
                "by": by,
                "airflow_run_id": lineage["run_id"],
                "reason": reason,
            },
        )
        hook.client.set_model_version_tag(model.name, target, "mlops.rollback.audit_seq", str(seq))
        context["ti"].xcom_push(key=MODEL_VERSION_URL_KEY, value=hook.model_version_url(model.name, target))
        self.log.info("Rolled %s champion back from %s to %s: %s", model.name, previous, target, reason)
        return {"model": model.name, "champion": target, "previous_champion": previous, "reason": reason}

    def _checked_version(self) -> str:
        try:
            version = int(str(self.version).strip())
        except ValueError:
            raise InvalidConfigurationError(f"version must be an integer, not {self.version!r}") from None
        if version < 1:
            raise InvalidConfigurationError(f"version must be >= 1, not {version}")
        return str(version)

    @staticmethod
    def _existing_version(hook: MLflowHook, name: str, version: str) -> str:
        from mlflow.exceptions import MlflowException

        try:
            found = hook.client.get_model_version(name, version)
        except MlflowException as err:
            if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFoundError(f"Registered model {name!r} has no version {version}") from None
            raise
        if found.status != "READY":
            raise ModelNotFoundError(f"Version {version} of {name!r} is {found.status}, not READY")
        return found.version
