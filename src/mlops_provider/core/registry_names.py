"""The registry vocabulary: every alias, tag key, artifact path and run id format the pipelines write.

The one owner of these names. Operators, hooks, the DAG factory and the tests import them from here;
nobody spells them again. The module imports nothing, so it is cheap for DAG files and REST clients.
Changing a value changes what existing MLflow servers hold: treat every name as a public contract.
"""

from __future__ import annotations

# --- model aliases -----------------------------------------------------------------------------------
CHAMPION = "champion"
"""Alias of the version that serves: promoted by the gate, moved back by a rollback."""
CHALLENGER = "challenger"
"""Alias of the newest registered version that has not (yet) been promoted."""

# --- artifact paths inside a training run ------------------------------------------------------------
MODEL_ARTIFACT_PATH = "model"
"""The fitted scikit-learn pipeline, as an MLflow model."""
REFERENCE_ARTIFACT_PATH = "reference"
"""The training data profile the drift check compares recent data with."""
MODEL_CARD_ARTIFACT_FILE = "model_card.md"
"""The challenger's model card (also the registered version's description)."""
EVALUATION_ARTIFACT_PATH = "evaluation"
"""The challenger's holdout plots and ``evaluation.json``."""

# --- run metrics -------------------------------------------------------------------------------------
HOLDOUT_METRIC_PREFIX = "holdout_"
"""The challenger's holdout metrics on its run and the training parent run: ``holdout_<metric>``."""
CHAMPION_HOLDOUT_METRIC_PREFIX = "champion_holdout_"
"""The champion's metrics on the same holdout, on the challenger's run: ``champion_holdout_<metric>``."""

# --- run roles (tag ROLE) ----------------------------------------------------------------------------
ROLE_TAG = "mlops.role"
ROLE_TRAINING = "training"
"""The parent run of one training DAG run: plan, evaluation and gate decision."""
ROLE_CANDIDATE = "candidate"
"""A child run of the training run: one fitted candidate (one mapped task)."""
ROLE_MONITORING = "monitoring"
"""The run that collects a champion version's drift checks."""

# --- run tags ----------------------------------------------------------------------------------------
MODEL_TAG = "mlops.model"
MODEL_VERSION_TAG = "mlops.model_version"
MODEL_VERSION_URL_TAG = "mlops.model_version_url"
TASK_TAG = "mlops.task"
WINDOW_TAG = "mlops.window"
PARTITIONS_TAG = "mlops.partitions"
REASON_TAG = "mlops.reason"
GATE_DECISION_TAG = "mlops.gate.decision"
GATE_REASON_TAG = "mlops.gate.reason"
GATE_PROMOTE, GATE_REJECT = "promote", "reject"
"""Values of GATE_DECISION_TAG on the training parent run after evaluation (the gate's first verdict)."""
GATE_PROMOTED, GATE_REJECTED = "promoted", "rejected"
"""Values of GATE_DECISION_TAG after registration (the final verdict, after the compare-and-set)."""
CHALLENGER_RUN_ID_TAG = "mlops.challenger_run_id"
CHALLENGER_RUN_URL_TAG = "mlops.challenger_run_url"
PREVIOUS_CHAMPION_TAG = "mlops.previous_champion"
DUPLICATE_OF_TAG = "mlops.duplicate_of"
PARENT_RUN_ID_TAG = "mlflow.parentRunId"
"""MLflow's own tag nesting a run under its parent (a candidate under the training run)."""

AIRFLOW_TAG_PREFIX = "airflow."
"""Run tags ``airflow.<key>``: the Airflow task that wrote the run (dag_id, run_id, task_id, try...)."""
AIRFLOW_DAG_ID_TAG = "airflow.dag_id"
AIRFLOW_RUN_ID_TAG = "airflow.run_id"
AIRFLOW_TASK_ID_TAG = "airflow.task_id"
AIRFLOW_LAST_RUN_ID_TAG = "airflow.last_run_id"
AIRFLOW_MAP_INDEX_TAG = "airflow.map_index"
AIRFLOW_TRY_NUMBER_TAG = "airflow.try_number"

# --- rollback tags on the version moved back to ------------------------------------------------------
ROLLBACK_PREFIX = "mlops.rollback."
ROLLBACK_REASON_TAG = ROLLBACK_PREFIX + "reason"
ROLLBACK_BY_TAG = ROLLBACK_PREFIX + "by"
ROLLBACK_AT_TAG = ROLLBACK_PREFIX + "at"
ROLLBACK_FROM_VERSION_TAG = ROLLBACK_PREFIX + "from_version"
ROLLBACK_AIRFLOW_RUN_ID_TAG = ROLLBACK_PREFIX + "airflow_run_id"
ROLLBACK_AUDIT_SEQ_TAG = ROLLBACK_PREFIX + "audit_seq"

# --- registered model tags ---------------------------------------------------------------------------
AUDIT_PREFIX = "mlops.audit."
"""Registered-model tags ``mlops.audit.<seq>``: the append-only log of alias moves."""
ALIAS_INTENT_PREFIX = "mlops.alias_intent."
"""Registered-model tags ``mlops.alias_intent.<alias>``: the compare-and-set guard of an alias move."""

# --- experiments -------------------------------------------------------------------------------------
EXPERIMENT_PREFIX = "mlops/"
"""Experiments are ``mlops/<model>`` (training) and ``mlops/<model>/monitoring`` (drift checks)."""


def training_experiment(model: str) -> str:
    """The experiment that holds ``model``'s training runs."""
    return f"{EXPERIMENT_PREFIX}{model}"


def monitoring_experiment(model: str) -> str:
    """The experiment that holds ``model``'s drift check runs."""
    return f"{EXPERIMENT_PREFIX}{model}/monitoring"


# --- experiment tags -------------------------------------------------------------------------------------
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""The experiment tag MLflow 3's UI reads to open the model-training view rather than the GenAI one."""
EXPERIMENT_KIND = "custom_model_development"

# --- Airflow run ids ---------------------------------------------------------------------------------
RETRAIN_RUN_ID_FORMAT = "drift__{model}__{ds}"
"""The run id of the training a drift check of day ``ds`` triggers: the same for every re-run of it."""


def retrain_run_id(model: str, ds: str) -> str:
    """The training run id a drift check of ``ds`` (``YYYY-MM-DD``) triggers for ``model``."""
    return RETRAIN_RUN_ID_FORMAT.format(model=model, ds=ds)
