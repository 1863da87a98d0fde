"""Drift operators: compare recent validated data with the champion's reference, decide on retraining.

``MLflowDriftCheckOperator`` finds the current champion in the registry, downloads the reference
profile stored with it at training time (so the comparison follows promotions), compares the last
days of validated partitions and the champion's predictions on them (positive-class score, predicted
class or predicted value, by task: ``core.profile.prediction_values``), stores the report (JSON + HTML) and
logs the per-feature scores to a monitoring run in MLflow. ``DriftRetrainBranchOperator`` turns the
summary into "trigger retraining" or "end", honouring force, dry run and a cooldown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator

from mlops_provider.core.registry_names import (
    AIRFLOW_LAST_RUN_ID_TAG,
    CHAMPION,
    HOLDOUT_METRIC_PREFIX,
    REFERENCE_ARTIFACT_PATH,
    WINDOW_TAG,
    monitoring_experiment,
)
from mlops_provider.exceptions import InvalidConfigurationError
from mlops_provider.links.reports import REPORT_URL_KEY, DriftReportLink, report_url
from mlops_provider.operators._model import (
    ModelOperator,
    as_bool,
    bounded_int,
    load_model_config,
)
from mlops_provider.operators._model import resolve_window_end as resolve_check_date

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from airflow.sdk import Context

    from mlops_provider.hooks.mlflow import MLflowHook


class MLflowDriftCheckOperator(ModelOperator):
    """Check the champion's inputs and outputs for drift over the last ``window_days`` days.

    With no champion yet, or no validated partition in the window, nothing is compared: the task
    succeeds and its summary says so (``status`` ``no_champion`` / ``no_data``).

    :param check_date: last day of the window (``YYYY-MM-DD``); empty: the logical date, else
        run_after. (templated)
    :param window_days: days of validated partitions to compare (1-90). (templated)
    :param thresholds: overrides of :class:`~mlops_provider.core.drift.DriftThresholds` (a dict, e.g.
        ``{"psi": 0.25, "drift_share": 0.3}``). (templated)
    :param policy: overrides of the model file's ``drift.policy``
        (:class:`~mlops_provider.core.drift.DriftPolicy`: weighting, prediction_drift, performance);
        the summary carries the resulting policy for the decide task. (templated)
    :return: a small summary: status, verdict, share, drifted features, report URI, window, champion.
    """

    template_fields: Sequence[str] = ("model_config", "check_date", "window_days", "thresholds", "policy")
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#fdf8e8"

    def __init__(
        self,
        *,
        check_date: str | None = None,
        window_days: int | str = 3,
        thresholds: dict | str | None = None,
        policy: dict | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.check_date = check_date
        self.window_days = window_days
        self.thresholds = thresholds
        self.policy = policy

    def execute(self, context: Context) -> dict[str, Any]:
        model, dataset = load_model_config(self.model_config)
        thresholds, policy = self._thresholds(), self._policy(model.drift.policy)
        start, day = self._window(context)
        base: dict[str, Any] = {"model": model.name, "dataset": dataset.name, "ds": day.isoformat()}
        base["window"] = {"start": start.isoformat(), "end": day.isoformat()}
        hook = self.mlflow_hook()
        champion = hook.get_version_by_alias(model.name, CHAMPION)
        storage = self.storage_hook()
        days = storage.list_partitions(dataset.name, "validated", start, day) if champion else []
        if champion is None or not days:
            return self._nothing_to_check(base, champion is None)

        summary, report, profile_rows, since = self._check(
            hook, storage, model, dataset, champion, days, thresholds, policy, base
        )
        summary["report_uri"] = self._write_report(storage, dataset.name, day, report, summary)
        self._log_monitoring(hook, model.name, champion.version, day, report, context, since)
        self._log_performance(hook, model.name, champion.version, summary["performance"], since)
        context["ti"].xcom_push(key=REPORT_URL_KEY, value=report_url(dataset.name, "drift", day.isoformat()))
        self.log.info(
            "Drift of %s over %s..%s vs champion v%s (%d reference rows): dataset drift %s, share %s, "
            "drifted %s; report %s",
            model.name, start, day, champion.version, profile_rows, summary["drifted"], summary["share"],
            summary["drifted_features"], summary["report_uri"],
        )  # fmt: skip
        return summary

    def _window(self, context: Context) -> tuple[date, date]:
        """The first and last day of the ``window_days`` days the check compares."""
        from datetime import timedelta

        day = resolve_check_date(self.check_date, context)
        return day - timedelta(days=bounded_int(self.window_days, "window_days", 1, 90) - 1), day

    def _nothing_to_check(self, base: dict[str, Any], no_champion: bool) -> dict[str, Any]:
        """The summary of a check that compared nothing: no champion yet, or no data in the window."""
        if no_champion:
            status = "no_champion"
            message = f"No champion of {base['model']!r} yet: nothing to compare with; train one first."
        else:
            status = "no_data"
            window = f"{base['window']['start']}..{base['window']['end']}"
            message = f"No validated partition of {base['dataset']!r} in {window}: nothing to check."
        self.log.warning(message)
        return {**base, "status": status, "drifted": False, "message": message}

    def _check(self, hook, storage, model, dataset, champion, days, thresholds, policy, base):
        """Compare the window with the champion's reference and score its realised performance.

        Returns the summary (without ``report_uri``), the report, the reference's row count and the
        champion's training end. The champion is downloaded at most once: the prediction drift and the
        realised performance both score it.
        """
        import functools
        from datetime import date

        champion_model = functools.cache(
            lambda: hook.load_sklearn_model(model.name, version=champion.version)
        )
        report, profile_rows = self._compare(
            hook, storage, model, dataset, champion, champion_model, days, thresholds, policy
        )
        summary = {
            **base,
            "status": "checked",
            "champion_version": champion.version,
            "partitions": [d.isoformat() for d in days],
            **report.summary(),
        }
        summary["performance"], since = self._performance(
            hook, storage, model, dataset, champion, champion_model, date.fromisoformat(base["ds"])
        )
        return summary, report, profile_rows, since

    def _thresholds(self):
        from mlops_provider.core.drift import DriftThresholds

        if not self.thresholds:
            return DriftThresholds()
        if not isinstance(self.thresholds, dict):
            raise InvalidConfigurationError(f"thresholds must be a mapping, not {self.thresholds!r}")
        try:
            return DriftThresholds.from_overrides(self.thresholds)
        except ValueError as err:
            raise InvalidConfigurationError(f"Invalid drift thresholds: {err}") from None

    def _policy(self, configured: dict[str, Any]):
        """The model file's ``drift.policy`` with this run's ``policy`` overrides on top."""
        from mlops_provider.core.drift import DriftPolicy

        if self.policy and not isinstance(self.policy, dict):
            raise InvalidConfigurationError(f"policy must be a mapping, not {self.policy!r}")
        try:
            return DriftPolicy.from_overrides({**configured, **(self.policy or {})})
        except ValueError as err:
            raise InvalidConfigurationError(str(err)) from None

    def _compare(self, hook, storage, model, dataset, champion, champion_model, days, thresholds, policy):
        import tempfile
        from pathlib import Path

        import pyarrow as pa

        from mlops_provider.core.drift import compare_to_reference
        from mlops_provider.core.profile import ReferenceProfile, prediction_values
        from mlops_provider.core.training import model_output

        with tempfile.TemporaryDirectory(prefix="mlops-drift-") as tmp:
            folder = hook.download_artifacts(champion.run_id, REFERENCE_ARTIFACT_PATH, Path(tmp))
            try:
                profile = ReferenceProfile.read(folder)
            except ValueError as err:
                raise InvalidConfigurationError(
                    f"The reference profile of {model.name} v{champion.version} is unusable: {err}"
                ) from None
        tables = [storage.read_partition(dataset.name, "validated", d) for d in days]
        current = pa.concat_tables(tables).select(dataset.feature_columns).to_pandas()
        del tables
        scores = None
        if profile.prediction is not None:
            output = model_output(champion_model(), current, model.task)
            scores = prediction_values(model.task, output, dataset.target_classes)
        try:
            report = compare_to_reference(
                profile, current, current_scores=scores, thresholds=thresholds, policy=policy
            )
        except ValueError as err:
            raise InvalidConfigurationError(
                f"Cannot check {model.name} v{champion.version} for drift: {err}"
            ) from None
        return report, profile.rows

    @staticmethod
    def _write_report(storage, dataset: str, day, report, summary: dict[str, Any]) -> str:
        import json

        from mlops_provider.core.drift_report import render_drift_html
        from mlops_provider.core.performance import performance_text
        from mlops_provider.core.retrain import describe_rules

        context = {k: summary[k] for k in ("model", "dataset", "ds", "champion_version")}
        context["window"] = f"{summary['window']['start']}..{summary['window']['end']}"
        context["retrain rules"] = describe_rules(summary)
        performance = summary.get("performance")
        if performance:
            context["realised performance"] = performance_text(performance)
        return storage.write_report(
            dataset,
            "drift",
            day,
            {
                "report.json": json.dumps(
                    {**context, "performance": performance, "report": report.to_dict()}, default=str
                ).encode(),
                "report.html": render_drift_html(
                    report, title=f"Drift of {summary['model']} {summary['ds']}", context=context
                ).encode(),
            },
        )

    @staticmethod
    def _log_monitoring(hook, model: str, version: str, day, report, context: Context, since) -> None:
        """Log the per-feature scores to the model version's monitoring run, then end the run.

        Timestamp = the check day, step = days from the champion's training end (``since``) to it: the
        same readable axis as the realised-performance series, and a re-run of a day keeps its step.
        """
        from mlops_provider.core.performance import days_since
        from mlops_provider.core.tracking import day_timestamp_ms, drift_scores

        run_id = _monitoring_run(hook, model, version)
        hook.log_metrics(
            run_id, drift_scores(report), step=days_since(day, since), timestamp_ms=day_timestamp_ms(day)
        )
        hook.set_run_tags(run_id, {AIRFLOW_LAST_RUN_ID_TAG: context["ti"].run_id})
        hook.end_run(run_id, "FINISHED")

    def _performance(
        self, hook, storage, model, dataset, champion, champion_model, day
    ) -> tuple[dict[str, Any], Any]:
        """The champion's realised performance on the newest labelled days, and its training end.

        Scores ``drift.performance_days`` days ending ``drift.label_delay_days`` before ``day``
        (rows whose label is still null are left out) with the gate metric, against the gate's
        minimum and the champion's ``holdout_<metric>`` (see :mod:`mlops_provider.core.performance`).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        from mlops_provider.core.performance import assess_performance, labelled_days, no_performance
        from mlops_provider.core.tracking import training_end
        from mlops_provider.core.training import features_and_target, model_output

        policy, metric = model.drift, model.gate.metric
        run = hook.get_run_record(champion.run_id)
        since = training_end((champion.tags or {}).get(WINDOW_TAG, ""), run.start_time_ms)
        baseline = {
            "champion_holdout": run.metrics.get(f"{HOLDOUT_METRIC_PREFIX}{metric}"),
            "minimum": model.gate.minimums.get(metric),
            "margin": policy.performance_margin,
        }
        first, last = labelled_days(
            day, label_delay_days=policy.label_delay_days, performance_days=policy.performance_days
        )
        days = storage.list_partitions(dataset.name, "validated", first, last)
        table = (
            pa.concat_tables([storage.read_partition(dataset.name, "validated", d) for d in days])
            if days
            else None
        )
        if table is not None:
            table = table.filter(pc.is_valid(table.column(dataset.target)))  # labels not arrived yet
        if table is None or table.num_rows == 0:
            return no_performance(metric, **baseline, reason=f"No labelled rows in {first}..{last}."), since
        X, y = features_and_target(table.to_pandas(), dataset, model.task)
        output = model_output(champion_model(), X, model.task)
        days_text = [d.isoformat() for d in days]
        return assess_performance(model.task, y, output, metric=metric, days=days_text, **baseline), since

    @staticmethod
    def _log_performance(hook, model: str, version: str, performance: dict[str, Any], since) -> None:
        """Log the realised metrics to the monitoring run as a time series, then end the run.

        Timestamp: the newest scored day; step: days from the champion's training end to that day.
        """
        from datetime import date

        from mlops_provider.core.performance import days_since
        from mlops_provider.core.tracking import day_timestamp_ms, performance_series

        if not performance["days"]:
            return
        last = date.fromisoformat(performance["days"][-1])
        run_id = _monitoring_run(hook, model, version)
        hook.log_metrics(
            run_id,
            performance_series(performance),
            prefix="performance.",
            step=days_since(last, since),
            timestamp_ms=day_timestamp_ms(last),
        )
        hook.end_run(run_id, "FINISHED")


def _monitoring_run(hook: MLflowHook, model: str, version: str) -> str:
    """The monitoring run of one model version (found again by its tags, created once)."""
    from mlops_provider.core.tracking import monitoring_run

    return hook.open_run(monitoring_experiment(model), **monitoring_run(model, version))[1]


class DriftRetrainBranchOperator(BaseBranchOperator):
    """Follow ``retrain_task_id`` if the drift check calls for retraining, else ``skip_task_id``.

    Retrains on dataset drift (or ``force_retrain``) unless a drift-triggered training of this
    model already ran within ``cooldown_days`` (found in Airflow by its deterministic run id) or
    ``dry_run`` is set. The decision and its reason are pushed to XCom (``retrain_decision``).

    :param drift: the drift check's summary (XComArg). (templated)
    :param train_dag_id: the model's training DAG, whose runs the cooldown looks for.
    """

    template_fields: Sequence[str] = ("drift", "force_retrain", "dry_run", "cooldown_days")

    def __init__(
        self,
        *,
        drift: Any,
        retrain_task_id: str,
        skip_task_id: str,
        train_dag_id: str,
        force_retrain: bool | str = False,
        dry_run: bool | str = False,
        cooldown_days: int | str = 7,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.drift = drift
        self.retrain_task_id = retrain_task_id
        self.skip_task_id = skip_task_id
        self.train_dag_id = train_dag_id
        self.force_retrain = force_retrain
        # Shadows BaseOperator.dry_run(), a method; kept: the name is a rendered template field.
        self.dry_run = dry_run  # type: ignore[method-assign, assignment]
        self.cooldown_days = cooldown_days

    def choose_branch(self, context: Context) -> str:
        from datetime import date

        from mlops_provider.core.retrain import cooldown_run_ids, decide_retrain

        summary = self.drift or {}
        cooldown = bounded_int(self.cooldown_days, "cooldown_days", 0, 365)
        in_cooldown = False
        if summary.get("status") == "checked" and cooldown > 0:
            run_ids = cooldown_run_ids(summary["model"], date.fromisoformat(summary["ds"]), cooldown)
            in_cooldown = context["ti"].get_dr_count(dag_id=self.train_dag_id, run_ids=run_ids) > 0
        decision = decide_retrain(
            summary,
            force=as_bool(self.force_retrain),
            dry_run=as_bool(self.dry_run),
            in_cooldown=in_cooldown,
            cooldown_days=cooldown,
        )
        context["ti"].xcom_push(key="retrain_decision", value=decision.to_dict())
        self.log.info("Retrain: %s. %s", decision.retrain, decision.reason)
        return self.retrain_task_id if decision.retrain else self.skip_task_id
