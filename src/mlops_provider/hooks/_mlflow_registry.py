"""The model registry in the pipelines' terms (``ModelRegistry``): versions, aliases, gate records, audit.

Registry writes neither lose nor duplicate: find-or-create, guarded alias moves, an audit trail.

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

from mlops_provider.core.registry_names import (
    ALIAS_INTENT_PREFIX,
    AUDIT_PREFIX,
    CHALLENGER,
    CHAMPION,
    DUPLICATE_OF_TAG,
    GATE_DECISION_TAG,
    GATE_REASON_TAG,
    MODEL_ARTIFACT_PATH,
    PREVIOUS_CHAMPION_TAG,
    ROLLBACK_AUDIT_SEQ_TAG,
)
from mlops_provider.core.registry_records import TAG_VALUE_LIMIT
from mlops_provider.exceptions import ModelNotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

# MLflow's SQL stores keep a version's description in a VARCHAR(5000): PostgreSQL and MySQL refuse a
# longer one (SQLite does not check), so a description is clipped to that, with a visible mark.
_DESCRIPTION_LIMIT = 5000
_CLIPPED = "\n\n(clipped to MLflow's 5000-character limit)"
# The error codes MLflow answers with when a model, version or alias does not exist.
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


class RegistryRaceError(RuntimeError):
    """Another writer moved the alias while this one did; nothing it wrote names the wrong version.

    An ordinary (retryable) error: the retry re-reads the registry and decides again.
    """


def _error_code(err: Exception) -> str | None:
    """The MLflow error code an exception carries (``MlflowException.error_code``), else None.

    Read from the attribute rather than by ``isinstance`` so that deciding on a registry answer does
    not import mlflow (~2 s) in code paths that never built a client.
    """
    return getattr(err, "error_code", None)


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


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""``expected`` of :meth:`ModelRegistry.move_alias`: move the alias whatever it points to."""


class ModelRegistry:
    """The registered models of one MLflow connection (``MLflowHook.registry``), in the pipelines' terms.

    Reads return MLflow ``ModelVersion`` objects (``.version``, ``.run_id``, ``.tags``) or plain
    data; writes take plain data. The first group of methods each make one kind of registry call;
    the domain methods below them (:meth:`register_challenger`, :meth:`promote`, :meth:`rollback`,
    :meth:`record_gate`, :meth:`record_rollback`) are built from the first group only.
    """

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    # -- reads -------------------------------------------------------------------------------------

    def version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version of ``name`` that ``alias`` points to, or None (no such alias or model)."""
        try:
            return self._client.get_model_version_by_alias(name, alias)
        except Exception as err:
            if _error_code(err) in _MISSING:
                return None
            raise

    def ready_version(self, name: str, version: str) -> ModelVersion:
        """Version ``version`` of ``name``; :class:`ModelNotFoundError` if it is missing or not READY."""
        try:
            found = self._client.get_model_version(name, version)
        except Exception as err:
            if _error_code(err) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFoundError(f"Registered model {name!r} has no version {version}") from None
            raise
        if found.status != "READY":
            raise ModelNotFoundError(f"Version {version} of {name!r} is {found.status}, not READY")
        return found

    def audit_records(self, name: str) -> list[dict[str, Any]]:
        """Every audit record of ``name`` (promotions, rollbacks), oldest first, each with its ``seq``."""
        tags = self._client.get_registered_model(name).tags
        records = []
        for key in sorted(k for k in tags if k.startswith(AUDIT_PREFIX)):
            try:
                seq = int(key[len(AUDIT_PREFIX) :].split(".", 1)[0])
                records.append({**json.loads(tags[key]), "seq": seq})
            except ValueError:
                continue
        return records

    # -- writes ------------------------------------------------------------------------------------

    def ensure_model(self, name: str, description: str = "") -> None:
        """Create the registered model ``name`` if needed; give it ``description`` if one is set."""
        try:
            self._client.create_registered_model(name, description=description or None)
            return
        except Exception as err:
            if _error_code(err) != "RESOURCE_ALREADY_EXISTS":
                raise
        if description and self._client.get_registered_model(name).description != description:
            self._client.update_registered_model(name, description=description)

    def register_run_model(
        self, name: str, run_id: str, *, tags: dict[str, str] | None = None, description: str = ""
    ) -> tuple[ModelVersion, bool]:
        """Register the model logged by ``run_id`` as a version of ``name``, at most once.

        The lowest version registered from that run is the run's version: a retried or re-run
        task gets it back, and a create the client re-sent (two versions from one run) is
        detected by re-reading after the create; the extra versions are tagged
        ``mlops.duplicate_of`` (kept, never returned). Returns ``(version, created)``.
        """
        existing = self._versions_of_run(name, run_id)
        if existing:
            return self._archive_duplicate_versions(name, existing), False
        self.ensure_model(name)
        source = f"{self._client.get_run(run_id).info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}"
        self._client.create_model_version(
            name, source, run_id=run_id, tags=tags or {}, description=description
        )
        return self._archive_duplicate_versions(name, self._versions_of_run(name, run_id)), True

    def move_alias(
        self, name: str, alias: str, version: str, *, token: str, expected: Any = None
    ) -> str | None:
        """Move ``alias`` of ``name`` to ``version`` if it still points to ``expected``; verify after.

        ``token`` names the writer (e.g. the Airflow run and task); ``expected`` is the version read
        before (None: no alias yet; :data:`ANY`: whatever it holds). Returns the version it pointed
        to before.

        :raises RegistryRaceError: the alias changed since it was read, or another writer moved it
            while this one did (its target is restored). Retryable.
        """
        client = self._client
        client.set_registered_model_tag(
            name, f"{ALIAS_INTENT_PREFIX}{alias}", json.dumps({"token": token, "version": str(version)})
        )
        previous = self._alias_target(name, alias)
        if expected is not ANY and previous != (None if expected is None else str(expected)):
            raise RegistryRaceError(
                f"{name}@{alias} is version {previous}, not {expected} as read before: "
                f"not moved to {version}."
            )
        client.set_registered_model_alias(name, alias, str(version))
        now, intent = self._alias_target(name, alias), self._intent(name, alias)
        if now == str(version) and intent.get("token") == token:
            return previous
        other = intent.get("version")
        if intent.get("token") != token and other:
            client.set_registered_model_alias(name, alias, other)
        raise RegistryRaceError(
            f"Lost a race on {name}@{alias}: moved it to {version}, then found version {now} and the "
            f"intent of {intent.get('token')!r} (for version {other}); {alias} restored to {other or now}."
        )

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on version ``version`` of ``name`` (values as strings)."""
        for key, value in tags.items():
            self._client.set_model_version_tag(name, version, key, str(value))

    def describe_version(self, name: str, version: str, description: str) -> None:
        """Make ``description`` (Markdown, clipped to MLflow's limit) the description of the version."""
        if len(description) > _DESCRIPTION_LIMIT:
            description = description[: _DESCRIPTION_LIMIT - len(_CLIPPED)] + _CLIPPED
        self._client.update_model_version(name, version, description=description)

    def tag_run(self, run_id: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on the run a version was registered from (values as strings)."""
        for key, value in tags.items():
            self._client.set_tag(run_id, key, str(value))

    def append_audit(self, name: str, record: dict[str, Any]) -> int:
        """Append ``record`` (it must carry an ``event_id``) once; return its sequence number.

        The key ``mlops.audit.<seq>.<hash of event_id>`` is unique to the event, so two writers never
        overwrite each other's record; a record whose ``event_id`` is already there is not written again.
        """
        import hashlib

        payload = dict(record)
        if isinstance(payload.get("reason"), str):
            payload["reason"] = payload["reason"][:1000]
        records = self.audit_records(name)
        for existing in records:
            if existing.get("event_id") == payload["event_id"]:
                return existing["seq"]
        seq = max((r["seq"] for r in records), default=0) + 1
        digest = hashlib.sha256(str(payload["event_id"]).encode()).hexdigest()[:10]
        text = json.dumps(payload, sort_keys=True, default=str)[:TAG_VALUE_LIMIT]
        self._client.set_registered_model_tag(name, f"{AUDIT_PREFIX}{seq:06d}.{digest}", text)
        return seq

    # -- the pipelines' moves ----------------------------------------------------------------------

    def champion(self, name: str) -> ModelVersion | None:
        """The version that serves (alias ``champion``), or None."""
        return self.version_by_alias(name, CHAMPION)

    def register_challenger(
        self, name: str, run_id: str, *, token: str, tags: dict[str, str], description: str = ""
    ) -> tuple[ModelVersion, bool]:
        """Register ``run_id``'s model once (model ``description`` set) and point ``challenger`` at it.

        Returns ``(version, created)``; a retry gets the version registered before.
        """
        self.ensure_model(name, description)
        version, created = self.register_run_model(name, run_id, tags=tags)
        self.move_alias(name, CHALLENGER, version.version, token=token, expected=ANY)
        return version, created

    def promote(self, name: str, version: str, *, previous: str | None, token: str) -> None:
        """Move ``champion`` to ``version`` if it is still ``previous``; tag the version with ``previous``.

        :raises RegistryRaceError: the champion changed since it was read (nothing moved), or another
            writer moved it meanwhile (its target is restored). Retryable.
        """
        self.move_alias(name, CHAMPION, version, token=token, expected=previous)
        self.tag_version(name, version, {PREVIOUS_CHAMPION_TAG: str(previous or "")})

    def rollback(self, name: str, version: str, *, token: str) -> str | None:
        """Point ``champion`` back to ``version``; return the version it pointed to before.

        A retry of a rollback that finished (its ``token`` is the ``event_id`` of an audit record
        and the champion is ``version``) moves nothing and returns what the finished try recorded.

        :raises RegistryRaceError: the champion moved while this one did. Retryable.
        """
        done = [r for r in self.audit_records(name) if r.get("event_id") == token]
        current = self.champion(name)
        if done and current is not None and current.version == version:
            return done[0].get("from_version")
        previous = current.version if current else None
        self.move_alias(name, CHAMPION, version, token=token, expected=previous)
        return previous

    def record_gate(self, name: str, version: str, run_id: str, verdict: str, reason: str) -> None:
        """Write the gate's final ``verdict`` and ``reason`` on the version and on its run."""
        tags = {GATE_DECISION_TAG: verdict, GATE_REASON_TAG: reason[:TAG_VALUE_LIMIT]}
        self.tag_version(name, version, tags)
        self.tag_run(run_id, tags)

    def record_rollback(self, name: str, version: str, tags: dict[str, str], record: dict[str, Any]) -> int:
        """Tag the version with its latest rollback, append ``record`` to the audit; its sequence number.

        The version's tags show its latest rollback (with the audit ``seq``); the audit keeps every one.
        """
        self.tag_version(name, version, tags)
        seq = self.append_audit(name, record)
        self.tag_version(name, version, {ROLLBACK_AUDIT_SEQ_TAG: str(seq)})
        return seq

    # -- helpers -----------------------------------------------------------------------------------

    def _alias_target(self, name: str, alias: str) -> str | None:
        found = self.version_by_alias(name, alias)
        return found.version if found is not None else None

    def _intent(self, name: str, alias: str) -> dict[str, Any]:
        raw = self._client.get_registered_model(name).tags.get(f"{ALIAS_INTENT_PREFIX}{alias}")
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def _versions_of_run(self, name: str, run_id: str) -> list[ModelVersion]:
        """The versions of ``name`` registered from ``run_id``, lowest first."""
        found = self._client.search_model_versions(
            f"name = '{_sql_quote(name)}' and run_id = '{_sql_quote(run_id)}'"
        )
        return sorted(found, key=lambda version: int(version.version))

    def _archive_duplicate_versions(self, name: str, versions: list[ModelVersion]) -> ModelVersion:
        """Keep the lowest of ``versions``; tag the others as its duplicates (nothing is deleted)."""
        kept = versions[0]
        for version in versions[1:]:
            if version.tags.get(DUPLICATE_OF_TAG) != kept.version:
                self._client.set_model_version_tag(name, version.version, DUPLICATE_OF_TAG, kept.version)
                self._client.update_model_version(
                    name,
                    version.version,
                    description=f"Duplicate of version {kept.version} (a create re-sent by the client); "
                    "kept for the record, never promoted.",
                )
        return kept
