"""The demo's summary: the facts it ends with (``<home>/demo-summary.json``) and how they are printed."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from mlops_stack.plan import DATASET, MODEL, TRAIN
from mlops_stack.state import describe, home_flag, prog

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack.demo import Demo
    from mlops_stack.mlflow_rest import MlflowReader
    from mlops_stack.paths import Paths

# = mlops_provider.links.mlflow.MODEL_VERSION_URL_KEY (that module imports Airflow): the training DAG's
# register task pushes the version's MLflow page under it, built on the connection's public UI URL.
VERSION_URL_KEY = "mlflow_model_version_url"


def version_facts(mlflow: MlflowReader) -> list[dict]:
    """Each model version with its aliases, its run, the gate's decision and the Airflow run that made it."""
    versions = []
    aliases = mlflow.aliases()
    for v in mlflow.model_versions():
        tags = {t["key"]: t["value"] for t in v.get("tags", [])}
        versions.append(
            {
                "version": v["version"],
                "aliases": sorted(aliases.get(v["version"], [])),
                "run_id": v.get("run_id"),
                "gate": tags.get("mlops.gate.decision"),
                "gate_reason": tags.get("mlops.gate.reason"),
                "airflow_run_id": tags.get("airflow.run_id") or tags.get("mlops.airflow.run_id"),
            }
        )
    return versions


def summary_facts(demo: Demo) -> dict:
    """The facts the demo ends with (also written to ``<home>/demo-summary.json``)."""
    plan, mlflow = demo.plan, demo.mlflow
    versions = version_facts(mlflow)
    for v in versions:  # what the task's "MLflow model version" button opens
        run_id = v["airflow_run_id"]
        v["url"] = demo.runs.xcom(TRAIN, run_id, "register", VERSION_URL_KEY) if run_id else None
    drift = demo.drift_summary or {}
    ds_report = demo.data_path / DATASET / "reports" / "drift" / f"ds={plan.end}"
    retrain = demo.runs.get_run(TRAIN, demo.retrain_run) if demo.retrain_run else None
    return {
        "days": {
            "clean": [plan.clean_start.isoformat(), plan.clean_end.isoformat()],
            "drifted": [plan.drift_start.isoformat(), plan.end.isoformat()],
            "rows_per_day": plan.rows,
        },
        "validated": partitions(demo.data_path, "validated"),
        "validation_reports": str(demo.data_path / DATASET / "reports" / "validation"),
        "quarantined": partitions(demo.data_path, "quarantine"),
        "models": versions,
        "drift": {
            "check_date": plan.end.isoformat(),
            "run_id": demo.drift_run,
            "drifted": drift.get("drifted"),
            "share": drift.get("share"),
            "threshold": drift.get("drift_share"),
            "features": drift.get("features"),
            "prediction": drift.get("prediction"),
            "drifted_features": drift.get("drifted_features"),
            "report": str(ds_report / "report.html"),
            "report_url": urllib.parse.urljoin(demo.rest.base_url, demo.drift_report_url or ""),
        },
        "retrain": {"run_id": demo.retrain_run, "state": (retrain or {}).get("state")},
        "quality": quality(mlflow, versions, demo.drift_summary),
        "train_run_id": plan.train_run_id,
        "timings": {k: round(v, 1) for k, v in demo.timings.items()},
        "reused": demo.notes,
    }


def quality(mlflow: MlflowReader, versions: list[dict], drift_summary: dict | None) -> dict:
    """The champion's gate metric before the change, after it, and after retraining.

    Before: the first champion on its own (pre-change) holdout. After: the drift check's realised
    score of that champion on the newest labelled days, and the same champion on the retraining's
    post-change holdout. After retraining: the retrained version on that same holdout.
    """
    performance = (drift_summary or {}).get("performance") or {}
    metric = performance.get("metric")
    if not metric or len(versions) < 2:
        return {}
    first, retrained = mlflow.run_metrics(versions[0]["run_id"]), mlflow.run_metrics(versions[-1]["run_id"])
    return {
        "metric": metric,
        "before_change": first.get(f"holdout_{metric}"),
        "after_change_realised": performance.get("value"),
        "after_change_holdout": retrained.get(f"champion_holdout_{metric}"),
        "after_retraining": retrained.get(f"holdout_{metric}"),
        "retrained_version": versions[-1]["version"],
        "retrained_is_champion": "champion" in versions[-1]["aliases"],
    }


def partitions(data_path: Path, zone: str) -> list[str]:
    """The days published to ``zone`` (validated, quarantine) of the demo's dataset."""
    folder = data_path / DATASET / zone
    return sorted(p.name.removeprefix("ds=") for p in folder.glob("ds=*")) if folder.exists() else []


def quality_lines(quality: dict) -> list[str]:
    """The champion's metric before the change, after it and after retraining (nothing if unknown)."""

    def num(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) else "?"

    if not quality:
        return []
    verdict = (
        f"version {quality['retrained_version']} promoted"
        if quality["retrained_is_champion"]
        else f"version {quality['retrained_version']} not promoted"
    )
    return [
        f"Quality    {quality['metric']} of the champion: {num(quality['before_change'])} before the change "
        f"(version 1, pre-change holdout)",
        f"           -> {num(quality['after_change_realised'])} after it (realised on the newest labelled "
        f"days; {num(quality['after_change_holdout'])} on the post-change holdout)",
        f"           -> {num(quality['after_retraining'])} after retraining on the new days ({verdict})",
    ]


def model_lines(models: list[dict]) -> list[str]:
    """One line per model version (aliases, gate, Airflow run), the gate's reason and its MLflow page
    under it."""
    lines = []
    for v in models:
        alias = ", ".join(v["aliases"]) or "-"
        lines.append(
            f"             version {v['version']:>3}  aliases: {alias:21} gate: {v['gate'] or '-':9} "
            f"(Airflow run {v['airflow_run_id']})"
        )
        if v["gate_reason"]:
            lines.append(f"                          {v['gate_reason']}")
        if v.get("url"):
            lines.append(f"                          {v['url']}")
    return lines


def drift_line(drift: dict) -> str:
    """The drift verdict: the day, how many features drifted against the threshold, which ones."""
    features = drift["drifted_features"] or []
    share = drift["share"]
    return (
        f"Drift      {drift['check_date']}: {'DRIFTED' if drift['drifted'] else 'no dataset drift'}"
        + (
            f" ({len(features)} of {drift['features']} features, "
            f"share {share:.0%} >= {drift['threshold']:.0%})"
            if isinstance(share, (int, float)) and drift["threshold"] is not None
            else ""
        )
        + (f": {', '.join(features)}" if features else "")
    )


def print_summary(facts: dict, state: dict, paths: Paths) -> None:
    """Print the summary of ``facts`` with where to log in and how to stop or start over."""
    days, drift = facts["days"], facts["drift"]
    validated, quarantined = facts["validated"], facts["quarantined"]
    lines = [
        "",
        "=" * 78,
        "Demo finished: the MLOps loop ran on the local stack.",
        "",
        f"Data       clean days {days['clean'][0]} .. {days['clean'][1]}, "
        f"drifted days {days['drifted'][0]} .. "
        f"{days['drifted'][1]}, ~{days['rows_per_day']} rows a day",
        f"Partitions {len(validated)} published to validated/"
        + (f" ({validated[0]} .. {validated[-1]})" if validated else "")
        + f", {len(quarantined)} quarantined"
        + (f" ({', '.join(quarantined)})" if quarantined else ""),
        f"Models     {MODEL} (MLflow registry):",
    ]
    lines += model_lines(facts["models"])
    lines += [
        drift_line(drift),
        f"Retrain    {TRAIN} run {facts['retrain']['run_id']}: {facts['retrain']['state']}",
        *quality_lines(facts.get("quality") or {}),
        "",
        "Reports    drift       " + drift["report"],
        "           (in the UI) " + drift["report_url"],
        f"           validation  {facts['validation_reports']}",
        "",
        describe(state),
        "",
        "Timings    " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in facts["timings"].items()),
        "",
        f"The stack keeps running. Stop it: {prog()} down{home_flag(paths.home)}   "
        f"Start over: {prog()} reset{home_flag(paths.home)}",
        "=" * 78,
    ]
    print("\n".join(lines), flush=True)
