"""Registry writes that neither lose nor duplicate: find-or-create, guarded alias moves, an audit trail.

MLflow's client re-sends a request whose response was lost, so one create can land twice. Every
create here is therefore followed by a re-read keyed by what the caller owns (the Airflow run's
tags, the training run's id): duplicates are kept for the record but marked (``mlops.duplicate_of``)
and the oldest is the one every caller gets back.

MLflow has no compare-and-set on aliases. Movers of one alias are serialised by an Airflow pool
(see ``pipelines``); as a second line, each mover first writes an intent tag on the registered model
and, after the move, re-reads both the alias and the intent: a mover that finds another's intent
(it lost a race) restores the other's target and raises :class:`RegistryRaceError`.

The audit is an append-only series of registered-model tags ``mlops.audit.000001``, ... holding one
JSON record each; a record is written once per event id, so a retried task does not repeat it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

DUPLICATE_OF_TAG = "mlops.duplicate_of"
AUDIT_PREFIX = "mlops.audit."
INTENT_PREFIX = "mlops.alias_intent."
_TAG_VALUE_LIMIT = 5000


class RegistryRaceError(RuntimeError):
    """Another writer moved the alias while this one did; nothing it wrote names the wrong version.

    An ordinary (retryable) error: the retry re-reads the registry and decides again.
    """


def _sql_quote(value: str) -> str:
    return str(value).replace("'", "\\'")


# -- runs ------------------------------------------------------------------------------------------


def matching_runs(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> list[Run]:
    """The active runs carrying all ``tags``, oldest first (start time, then id)."""
    run_filter = " and ".join(f"tags.`{key}` = '{_sql_quote(value)}'" for key, value in tags.items())
    runs = client.search_runs([experiment_id], filter_string=run_filter, max_results=100)
    return sorted(runs, key=lambda run: (run.info.start_time or 0, run.info.run_id))


def archive_duplicate_runs(client: MlflowClient, runs: list[Run]) -> str:
    """Keep the first of ``runs``; end the others KILLED, tag them with the kept id and delete them."""
    kept = runs[0].info.run_id
    for run in runs[1:]:
        client.set_tag(run.info.run_id, DUPLICATE_OF_TAG, kept)
        client.set_terminated(run.info.run_id, "KILLED")
        client.delete_run(run.info.run_id)
    return kept


# -- model versions --------------------------------------------------------------------------------


def versions_of_run(client: MlflowClient, name: str, run_id: str) -> list[ModelVersion]:
    """The versions of ``name`` registered from ``run_id``, lowest first."""
    found = client.search_model_versions(f"name = '{_sql_quote(name)}' and run_id = '{_sql_quote(run_id)}'")
    return sorted(found, key=lambda version: int(version.version))


def archive_duplicate_versions(client: MlflowClient, name: str, versions: list[ModelVersion]) -> ModelVersion:
    """Keep the lowest of ``versions``; tag the others as its duplicates (nothing is deleted)."""
    kept = versions[0]
    for version in versions[1:]:
        if version.tags.get(DUPLICATE_OF_TAG) != kept.version:
            client.set_model_version_tag(name, version.version, DUPLICATE_OF_TAG, kept.version)
            client.update_model_version(
                name,
                version.version,
                description=f"Duplicate of version {kept.version} (a create re-sent by the client); "
                "kept for the record, never promoted.",
            )
    return kept


# -- aliases ---------------------------------------------------------------------------------------


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias).version
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def _intent(client: MlflowClient, name: str, alias: str) -> dict[str, Any]:
    raw = client.get_registered_model(name).tags.get(f"{INTENT_PREFIX}{alias}")
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def guarded_alias_move(
    client: MlflowClient, name: str, alias: str, version: str, *, token: str, expected: Any
) -> str | None:
    """Move ``alias`` to ``version`` if it still points to ``expected`` (a version or None).

    ``expected`` may be :data:`ANY` to move whatever the alias holds. Returns the version the alias
    pointed to before. Raises :class:`RegistryRaceError` when the alias changed before the move
    (compare failed) or another mover wrote after this one (verify failed; its target is restored).
    """
    client.set_registered_model_tag(
        name, f"{INTENT_PREFIX}{alias}", json.dumps({"token": token, "version": str(version)})
    )
    previous = alias_version(client, name, alias)
    if expected is not ANY and previous != (None if expected is None else str(expected)):
        raise RegistryRaceError(
            f"{name}@{alias} is version {previous}, not {expected} as read before: not moved to {version}."
        )
    client.set_registered_model_alias(name, alias, str(version))
    now, intent = alias_version(client, name, alias), _intent(client, name, alias)
    if now == str(version) and intent.get("token") == token:
        return previous
    other = intent.get("version")
    if intent.get("token") != token and other:
        client.set_registered_model_alias(name, alias, other)
    raise RegistryRaceError(
        f"Lost a race on {name}@{alias}: moved it to {version}, then found version {now} and the "
        f"intent of {intent.get('token')!r} (for version {other}); {alias} restored to {other or now}."
    )


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


# -- audit -----------------------------------------------------------------------------------------


def audit_records(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Every audit record of ``name``, oldest first, each with its sequence number ``seq``."""
    tags = client.get_registered_model(name).tags
    records = []
    for key in sorted(k for k in tags if k.startswith(AUDIT_PREFIX)):
        try:
            seq = int(key[len(AUDIT_PREFIX) :].split(".", 1)[0])
            records.append({**json.loads(tags[key]), "seq": seq})
        except ValueError:
            continue
    return records


def append_audit(client: MlflowClient, name: str, record: dict[str, Any]) -> int:
    """Append ``record`` (it must carry an ``event_id``) once; return its sequence number.

    The key ``mlops.audit.<seq>.<hash of event_id>`` is unique to the event, so two writers never
    overwrite each other's record; a record whose ``event_id`` is already there is not written again.
    """
    import hashlib

    payload = dict(record)
    if isinstance(payload.get("reason"), str):
        payload["reason"] = payload["reason"][:1000]
    records = audit_records(client, name)
    for existing in records:
        if existing.get("event_id") == payload["event_id"]:
            return existing["seq"]
    seq = max((r["seq"] for r in records), default=0) + 1
    digest = hashlib.sha256(str(payload["event_id"]).encode()).hexdigest()[:10]
    text = json.dumps(payload, sort_keys=True, default=str)[:_TAG_VALUE_LIMIT]
    client.set_registered_model_tag(name, f"{AUDIT_PREFIX}{seq:06d}.{digest}", text)
    return seq
