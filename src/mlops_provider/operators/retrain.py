"""RetrainTriggerOperator: trigger a model's training run from its drift check.

Airflow's ``TriggerDagRunOperator`` does the triggering; it is imported when the task runs, not when
the DAG file is parsed, because its module loads Airflow's ORM and SQLAlchemy (~0.5 s in a fresh
interpreter, paid by every DAG file that names it). Every drift DAG the factory generates has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class RetrainTriggerOperator(BaseOperator):
    """Trigger ``trigger_dag_id`` once per ``trigger_run_id`` with ``conf``, without waiting for it.

    The run has no logical date (``run_after`` is now); a run id that already exists marks this task
    skipped, so a re-run of the same drift check never trains twice.

    :param trigger_dag_id: the training DAG. (templated)
    :param trigger_run_id: deterministic run id of the training run. (templated)
    :param conf: the training run's conf (its Params). (templated)
    """

    template_fields: Sequence[str] = ("trigger_dag_id", "trigger_run_id", "conf")
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"

    def __init__(self, *, trigger_dag_id: str, trigger_run_id: str, conf: dict | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf

    def execute(self, context: Context) -> Any:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        trigger = TriggerDagRunOperator(
            task_id=self.task_id,
            trigger_dag_id=self.trigger_dag_id,
            trigger_run_id=self.trigger_run_id,
            conf=self.conf,
            logical_date=None,
            skip_when_already_exists=True,
            wait_for_completion=False,
        )
        self.log.info("Triggering %s as run %s", self.trigger_dag_id, self.trigger_run_id)
        return trigger.execute(context)
