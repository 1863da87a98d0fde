"""The rollback DAG of one model: ``mlops_rollback__<model>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import DAG, Param

from mlops_provider.core.registry_names import AUDIT_PREFIX, CHAMPION, ROLLBACK_PREFIX
from mlops_provider.operators.registry import REGISTRY_POOL, MLflowRollbackChampionOperator
from mlops_provider.pipelines._dag import dag_arguments
from mlops_provider.pipelines.ids import rollback_dag_id

if TYPE_CHECKING:
    from mlops_provider.core.models import ModelConfig

DOC = """
### `{dag_id}`: point `{model}`'s `{champion}` back to an earlier model version

Trigger it with the version to restore and a reason. It checks that the version exists and is
ready, moves the `{champion}` alias to it and records on that version who asked, when, why and which
version was champion before (`{rollback_prefix}*` tags: the latest rollback of that version), and
appends the rollback to the registered model's audit (`{audit_prefix}*` tags: every promotion and
rollback). It runs in the pool `{pool}` (one slot, shared with the training DAGs' register
tasks), so alias moves never interleave. Nothing is deleted: rolling forward again is another
rollback to the newer version.
"""


def build_rollback_dag(model: ModelConfig) -> DAG:
    """The rollback DAG of ``model`` (see :data:`DOC`)."""
    dag_id = rollback_dag_id(model.name)
    with DAG(
        dag_id=dag_id,
        description=f"Point {model.name}'s {CHAMPION} alias back to a named earlier version, "
        "with who and why",
        params={
            "version": Param(
                1,
                type="integer",
                minimum=1,
                title="Version",
                description="The registered version that becomes champion.",
            ),
            "reason": Param(
                "",
                type="string",
                minLength=3,
                maxLength=500,
                title="Reason",
                description="Why the champion is rolled back (recorded on the version).",
            ),
        },
        doc_md=DOC.format(
            dag_id=dag_id,
            model=model.name,
            champion=CHAMPION,
            rollback_prefix=ROLLBACK_PREFIX,
            audit_prefix=AUDIT_PREFIX,
            pool=REGISTRY_POOL,
        ),
        **dag_arguments(model.rollback, tags=("registry", model.name)),
    ) as dag:
        MLflowRollbackChampionOperator(
            task_id="rollback",
            model_config=str(model.config_path),
            version="{{ params.version }}",
            reason="{{ params.reason }}",
            pool=REGISTRY_POOL,
        )
    return dag
