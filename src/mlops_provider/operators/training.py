"""Training operators: plan a training run (window, split, candidates) and fit one candidate.

``MLflowPrepareTrainingOperator`` fixes everything the run depends on before any fit starts: the
validated partitions of the window with their sha256, the time-based split, the parameter candidates
and one MLflow parent run for the DAG run. ``SklearnTrainCandidateOperator`` is mapped over the
candidates; each fit is a nested MLflow run with its model, lineage and reference profile.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from mlops_provider.core.registry_names import (
    AIRFLOW_TRY_NUMBER_TAG,
    MODEL_ARTIFACT_PATH,
    PARTITIONS_TAG,
    REFERENCE_ARTIFACT_PATH,
    training_experiment,
)
from mlops_provider.core.tracking import (
    candidate_run,
    distinct_partitions,
    partitions_tag,
    training_run,
    training_run_key,
)
from mlops_provider.exceptions import InsufficientDataError, InvalidConfigurationError
from mlops_provider.links.mlflow import RUN_URL_KEY, MLflowRunLink
from mlops_provider.operators._common import run_lineage
from mlops_provider.operators._model import (
    ModelOperator,
    bounded_int,
    load_model_config,
    read_recorded_partitions,
    resolve_window_end,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import date

    from airflow.sdk import Context

    from mlops_provider.core.datasets import DatasetConfig
    from mlops_provider.core.models import ModelConfig
    from mlops_provider.core.training import SplitPlan
    from mlops_provider.hooks.mlflow import MLflowHook
    from mlops_provider.hooks.storage import DatasetStorageHook

# Days at the end of the fit window whose data selects among candidates (the holdout stays unseen).
VALIDATION_DAYS = 1


PLAN_KEY = "plan"


def end_training_run_on_failure(context: Context) -> None:
    """``on_failure_callback`` of the training tasks: end the DAG run's MLflow parent run FAILED.

    Called once a task has failed for good (no retry left); the register task ends the parent
    FINISHED when the DAG run succeeds.
    """
    task, ti = cast("ModelOperator", context["task"]), context["ti"]
    model, _ = load_model_config(task.model_config)
    hook = task.mlflow_hook()
    for run_id in hook.find_runs(training_experiment(model.name), training_run_key(ti.run_id)):
        hook.end_run(run_id, "FAILED")


class MLflowPrepareTrainingOperator(ModelOperator):
    """Fix the inputs of a training run and open its MLflow parent run.

    The window is the ``window_days`` days ending at ``window_end``. The split is
    :func:`~mlops_provider.core.training.plan_split`'s: by time (at least
    ``holdout_days + VALIDATION_DAYS + 1`` validated partitions; the most recent ``holdout_days``
    are the holdout, the day before them selects among candidates, the rest is fitted on), or, when
    the run carries a ``change_window`` (a drift-triggered run), each post-change day's rows are
    split (seeded, stratified by class) into fit / selection / holdout and earlier days are fitted
    on. A re-run of the same DAG run reuses its parent run.

    :param window_end: last day of the window (``YYYY-MM-DD``); empty: logical date, else run_after.
        (templated)
    :param window_days: override of the configured window, in days. (templated)
    :param grid_override: parameter grid replacing the configured one (param -> list of values).
        (templated; render the DAG with native objects to pass a dict from Params)
    :param change_window: ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}``, the days a drift check
        found changed; empty: the time-based split. (templated)
    :return: the candidates, ``[{"index": i, "params": {...}}, ...]``, to map the train task over.
        The whole plan (parent run, partitions with sha256, the split, candidates) is pushed to
        XCom under the key ``plan`` for the downstream tasks. A partition entry of a post-change
        day carries ``split`` (part, seed, shares, stratify_by): readers keep only that part's rows.
    """

    template_fields: Sequence[str] = (
        "model_config",
        "window_end",
        "window_days",
        "grid_override",
        "change_window",
    )
    operator_extra_links = (MLflowRunLink(),)
    ui_color = "#e8f0fd"

    def __init__(
        self,
        *,
        window_end: str | None = None,
        window_days: int | str | None = None,
        grid_override: dict | str | None = None,
        change_window: dict | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.window_end = window_end
        self.window_days = window_days
        self.grid_override = grid_override
        self.change_window = change_window

    def execute(self, context: Context) -> list[dict[str, Any]]:
        model, dataset = load_model_config(self.model_config)
        change = self._change_window()
        start, end, window_days = self._window(model, context)
        candidates = self._candidates(model)
        split, partitions = self._split(self.storage_hook(), model, dataset, start, end, change)

        window = {"start": start.isoformat(), "end": end.isoformat(), "days": window_days}
        params = {"window_start": start, "window_end": end, "window_days": window_days}
        params.update(grid_size=len(candidates), split_rule=split.rule)
        run, url = self._open_training_run(model.name, context, params)
        self.log.info(
            "Training %s on %d days (%s..%s), %d candidates, parent run %s",
            model.name, len(partitions), start, end, len(candidates), url,
        )  # fmt: skip
        plan = _training_plan(
            model, dataset, split, partitions, candidates, run=run, window=window, post_change=bool(change)
        )
        context["ti"].xcom_push(key=PLAN_KEY, value=plan)
        return plan["candidates"]

    def _open_training_run(
        self, model: str, context: Context, params: dict[str, Any]
    ) -> tuple[dict[str, str], str]:
        """Open (or, in a re-run, find) the DAG run's training run, log ``params`` on it and push its
        link; return ``{"experiment_id", "parent_run_id"}`` and its URL."""
        hook = self.mlflow_hook()
        experiment_id, parent = hook.open_run(
            training_experiment(model), **training_run(model, run_lineage(context))
        )
        hook.log_params(parent, params)
        url = hook.run_url(experiment_id, parent)
        context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        return {"experiment_id": experiment_id, "parent_run_id": parent}, url

    def _window(self, model: ModelConfig, context: Context) -> tuple[date, date, int]:
        """The first and last day of the window and its length (``window_days`` over the model's)."""
        from datetime import timedelta

        end = resolve_window_end(self.window_end, context)
        window_days = (
            model.window_days
            if self.window_days in (None, "")
            else bounded_int(self.window_days, "window_days", 2, 3660)
        )
        return end - timedelta(days=window_days - 1), end, window_days

    def _candidates(self, model: ModelConfig) -> list[dict[str, Any]]:
        """The parameter candidates of the configured grid, or of ``grid_override``."""
        override: Any = self.grid_override or None  # rendered natively: a dict; else the grid refuses it
        try:
            return model.candidates(override)
        except ValueError as err:
            raise InvalidConfigurationError(f"Invalid parameter grid: {err}") from None

    @classmethod
    def _split(
        cls,
        storage: DatasetStorageHook,
        model: ModelConfig,
        dataset: DatasetConfig,
        start: date,
        end: date,
        change: tuple[date, date] | None,
    ) -> tuple[SplitPlan, dict[date, dict[str, Any]]]:
        """The split of the window's validated partitions and each one's entry (uri, sha256, rows)."""
        from mlops_provider.core.training import plan_split

        days = storage.list_partitions(dataset.name, "validated", start, end)
        needed = model.holdout_days + VALIDATION_DAYS + 1
        if change is None and len(days) < needed:
            raise InsufficientDataError(
                f"The window {start}..{end} holds {len(days)} validated partitions of {dataset.name!r}; "
                f"training needs at least {needed} (holdout {model.holdout_days} + selection "
                f"{VALIDATION_DAYS} + 1 to fit). Publish more days with mlops_ingest or widen window_days."
            )
        try:
            split = plan_split(
                days, holdout_days=model.holdout_days, selection_days=VALIDATION_DAYS, change_window=change
            )
        except ValueError as err:
            raise InsufficientDataError(
                f"{err} Publish the days with mlops_ingest or fix end_date."
            ) from None
        return split, {ds: cls._partition(storage, dataset.name, ds) for ds in days}

    def _change_window(self) -> tuple[date, date] | None:
        """The run's ``change_window`` as dates; None without one; a malformed one fails without retry."""
        from datetime import date

        window: Any = self.change_window
        if window in (None, "", {}):
            return None
        try:
            return date.fromisoformat(str(window["start"])), date.fromisoformat(str(window["end"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidConfigurationError(
                f"window must be {{'start': 'YYYY-MM-DD', 'end': 'YYYY-MM-DD'}}, not {window!r}"
            ) from None

    @staticmethod
    def _partition(storage, dataset: str, ds) -> dict[str, Any]:
        manifest = storage.read_manifest(dataset, "validated", ds)
        return {
            "ds": ds.isoformat(),
            "uri": storage.partition_uri(dataset, "validated", ds),
            "sha256": manifest.sha256,
            "rows": manifest.row_count,
        }


class SklearnTrainCandidateOperator(ModelOperator):
    """Fit one parameter candidate as a nested MLflow run and log everything needed to trust it.

    The run logs the candidate's params, its selection metrics (``selection_<metric>``, the model
    task's metrics), the fitted pipeline as an MLflow model (signature with the class probabilities
    or the predicted value as output, input example, pinned requirements), the exact input
    partitions (``log_inputs`` with URI and sha256, and the tag ``mlops.partitions``), the Airflow
    dag_id / run_id / try, the task (tag ``mlops.task``), and a reference profile of its training
    data and predictions (``reference/``) for the drift check. Meant to be mapped:
    ``.partial(...).expand(candidate=...)``.

    :param plan: the plan of :class:`MLflowPrepareTrainingOperator` (its XCom ``plan``).
    :param candidate: ``{"index": int, "params": dict}``, one of the plan's candidates.
    :return: index, run id, params and selection metrics.
    """

    template_fields: Sequence[str] = ("model_config", "plan", "candidate")
    operator_extra_links = (MLflowRunLink(),)
    ui_color = "#e8f0fd"

    def __init__(self, *, plan: Any, candidate: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.candidate = candidate

    def execute(self, context: Context) -> dict[str, Any]:
        model, dataset = load_model_config(self.model_config)
        plan, params = self.plan, self.candidate["params"]
        storage = self.storage_hook()
        fit = _features(storage, dataset, model.task, plan["fit"])
        selection = _features(storage, dataset, model.task, plan["selection"])

        hook = self.mlflow_hook()
        lineage = {**run_lineage(context), "map_index": context["ti"].map_index}
        run_id = self._candidate_run(hook, plan, lineage, model.task)
        with _run_ends_with_the_try(hook, run_id):
            metrics = self._fit_and_log(hook, run_id, model, dataset, params, *fit, *selection)

        url = hook.run_url(plan["experiment_id"], run_id)
        context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        self.log.info("Candidate %s %s: %s (%s)", self.candidate["index"], params, metrics, url)
        return {"id": self.candidate["index"], "run_id": run_id, "params": params, "metrics": metrics}

    def _fit_and_log(self, hook, run_id, model, dataset, params, X_fit, y_fit, X_sel, y_sel) -> dict:
        """Fit the candidate and log its params, selection metrics, model, reference and lineage."""
        import tempfile
        from pathlib import Path

        from mlops_provider.core.evaluation import compute_metrics
        from mlops_provider.core.model_io import save_sklearn_model
        from mlops_provider.core.training import build_pipeline, fit_candidate, model_output

        plan = self.plan
        hook.log_params(run_id, {**model.params, **params})
        pipeline = fit_candidate(
            build_pipeline(dataset, model, params), X_fit, y_fit, classes=dataset.target_classes
        )
        metrics = compute_metrics(model.task, y_sel, model_output(pipeline, X_sel, model.task))
        hook.log_metrics(run_id, metrics, prefix="selection_")

        with tempfile.TemporaryDirectory(prefix="mlops-train-") as tmp:
            save_sklearn_model(
                pipeline,
                Path(tmp) / "model",
                input_example=X_fit.head(5),
                task=model.task,
                classes=dataset.target_classes,
            )
            hook.upload_artifacts(run_id, Path(tmp) / "model", MODEL_ARTIFACT_PATH)
            self._log_reference(
                hook, run_id, model, dataset, pipeline, X_fit, Path(tmp) / "reference", (X_sel, y_sel)
            )
        partitions = distinct_partitions(plan["fit"] + plan["selection"])
        hook.log_partition_inputs(run_id, dataset.name, partitions)
        hook.set_run_tags(run_id, {PARTITIONS_TAG: partitions_tag(dataset.name, partitions)})
        return metrics

    @staticmethod
    def _candidate_run(hook: MLflowHook, plan: dict[str, Any], lineage: dict[str, Any], task: str) -> str:
        """The nested run of this candidate: a retry reopens the run of the earlier try (one run per
        candidate, whose ``airflow.try_number`` tag says which try wrote it last)."""
        run_id = hook.find_or_create_run(
            plan["experiment_id"], **candidate_run(plan["parent_run_id"], lineage, task)
        )
        hook.reopen_run(run_id)
        hook.set_run_tags(run_id, {AIRFLOW_TRY_NUMBER_TAG: str(lineage["try_number"])})
        return run_id

    @staticmethod
    def _log_reference(hook, run_id, model, dataset, pipeline, frame, folder, selection) -> None:
        """Store a reference profile of the training data and of the model's predictions on it.

        Built from ``reference_sample_rows`` training rows drawn at random (seeded): enough for
        bins and category shares to within a fraction of the drift thresholds, and it keeps
        scoring the reference cheap (a full 30-day window costs seconds per candidate). It holds
        each feature's permutation importance on the ``selection`` data ``(X, y)``, which the
        drift check weighs drifted features by.
        """
        from mlops_provider.core.profile import build_reference_profile, prediction_values
        from mlops_provider.core.training import model_output, permutation_importance, reference_sample

        sample = reference_sample(frame, model.reference_sample_rows, random_state=model.random_state)
        output = model_output(pipeline, sample, model.task)
        profile = build_reference_profile(
            sample,
            numeric=dataset.features.get("numeric", []),
            categorical=dataset.features.get("categorical", []) + dataset.features.get("boolean", []),
            scores=prediction_values(model.task, output, dataset.target_classes),
            sample_rows=model.reference_sample_rows,
            seed=model.random_state,
            importance=permutation_importance(
                pipeline, selection[0], selection[1], model.task, random_state=model.random_state
            ),
        )
        folder.mkdir(parents=True, exist_ok=True)
        profile.write(folder)
        hook.upload_artifacts(run_id, folder, REFERENCE_ARTIFACT_PATH)


def _plan_entries(slices, partitions: dict, row_split: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's partition entries of a split's day slices; a part of a day carries its ``split``."""
    from mlops_provider.core.training import row_split_seed

    return [
        partitions[s.day]
        if s.part is None
        else {
            **partitions[s.day],
            "split": {**row_split, "part": s.part, "seed": row_split_seed(row_split["seed"], s.day)},
        }
        for s in slices
    ]


@contextmanager
def _run_ends_with_the_try(hook: MLflowHook, run_id: str) -> Iterator[None]:
    """End the run as the task's try ends: FINISHED, FAILED, or KILLED when Airflow stops the task."""
    try:
        yield
    except BaseException as err:
        killed = not isinstance(err, Exception) or type(err).__name__ == "AirflowTaskTerminated"
        hook.end_run(run_id, "KILLED" if killed else "FAILED")
        raise
    hook.end_run(run_id, "FINISHED")


def _training_plan(
    model: ModelConfig,
    dataset: DatasetConfig,
    split: SplitPlan,
    partitions: dict[date, dict[str, Any]],
    candidates: list[dict[str, Any]],
    *,
    run: dict[str, str],
    window: dict[str, Any],
    post_change: bool,
) -> dict[str, Any]:
    """The plan pushed to XCom: model, ``run`` (experiment and parent run ids), window, split,
    the fit / selection / holdout partition entries and the indexed candidates."""
    from mlops_provider.core.training import POST_CHANGE_SHARES

    row_split = {
        "seed": model.random_state,
        "shares": dict(POST_CHANGE_SHARES),
        "stratify_by": None if model.task == "regression" else dataset.target,
    }
    return {
        "model": model.name,
        "dataset": dataset.name,
        **run,
        "window": window,
        "split": {
            "rule": split.rule,
            "change_days": [d.isoformat() for d in split.change_days],
            **(row_split if post_change else {}),
        },
        "fit": _plan_entries(split.fit, partitions, row_split),
        "selection": _plan_entries(split.selection, partitions, row_split),
        "holdout": _plan_entries(split.holdout, partitions, row_split),
        "candidates": [{"index": i, "params": params} for i, params in enumerate(candidates)],
    }


def _features(
    storage: DatasetStorageHook, dataset: DatasetConfig, task: str, partitions: list[dict[str, Any]]
) -> tuple[Any, Any]:
    """Features and target of the plan's ``partitions`` (each checked against its recorded sha256)."""
    from mlops_provider.core.training import features_and_target

    return features_and_target(read_recorded_partitions(storage, dataset.name, partitions), dataset, task)
