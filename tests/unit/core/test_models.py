from __future__ import annotations

import copy
import json

import pytest
import yaml

from mlops_provider.core.models import (
    MAX_CANDIDATES,
    ModelConfigError,
    expand_grid,
    load_estimator_class,
    load_model_config,
    parse_model_config,
)
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CHURN_MODEL = REPO_ROOT / "include" / "models" / "churn.yaml"
LOGREG = "sklearn.linear_model.LogisticRegression"


def _raw() -> dict:
    return yaml.safe_load(CHURN_MODEL.read_text())


def test_the_shipped_churn_model_config_is_valid():
    config = load_model_config(CHURN_MODEL)
    assert config.name == "churn_classifier"
    assert config.dataset == "churn"
    assert config.dataset_config_path == (REPO_ROOT / "include" / "datasets" / "churn.yaml").resolve()
    assert config.load_dataset_config().name == "churn"
    assert config.estimator == LOGREG
    assert config.window_days == 30
    assert config.holdout_days == 5
    assert config.selection_metric == "roc_auc"
    assert config.gate.metric == "roc_auc"
    assert config.gate.minimums["roc_auc"] == 0.6
    assert config.gate.margin == 0.002
    assert config.preprocessing["categorical"].min_frequency == 0.005
    assert config.preprocessing["numeric"].scale is True
    assert len(config.candidates()) == 4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(name="Churn-Model"), "'name': 'Churn-Model' is not valid: use lower-case"),
        (lambda r: r.update(dataset="../datasets/missing.yaml"), "No dataset configuration"),
        (lambda r: r.update(estimator="xgboost.XGBClassifier"), "import path of a scikit-learn class"),
        (lambda r: r.update(estimator="sklearn.linear_model.LinearRegression"), "not a classifier"),
        (lambda r: r.update(task="multiclass"), "'task' multiclass needs at least 3 target classes"),
        (lambda r: r.update(estimator="sklearn.svm.Nope"), "cannot be imported"),
        (lambda r: r["params"].update(depth=3), "params names 'depth'"),
        (lambda r: r["param_grid"].update(gamma=[1]), "param_grid names 'gamma'"),
        (lambda r: r["param_grid"].update(tol=[]), "param_grid.tol is an empty list"),
        (lambda r: r["param_grid"].update(tol=[{"a": 1}]), "param_grid.tol must be a JSON scalar"),
        (lambda r: r["param_grid"].update(max_iter=[100]), "appear in both 'params' and 'param_grid'"),
        (lambda r: r["param_grid"].update(tol=list(range(17))), "68 candidates, at most 64"),
        (lambda r: r["preprocessing"].update(text={}), "unknown key 'text' in 'preprocessing'"),
        (
            lambda r: r["preprocessing"]["categorical"].update(impute="median"),
            "'preprocessing.categorical.impute'",
        ),
        (lambda r: r["preprocessing"]["numeric"].update(scale="yes"), "'preprocessing.numeric.scale'"),
        (
            lambda r: r["preprocessing"]["numeric"].update(min_frequency=2),
            "unknown key 'min_frequency' in 'preprocessing.numeric'",
        ),
        (lambda r: r["preprocessing"]["categorical"].update(min_frequency=1.5), "min_frequency' must be"),
        (
            lambda r: r["preprocessing"]["categorical"].update(max_categories=1),
            "max_categories': 1 is less than the minimum of 2",
        ),
        (lambda r: r.update(window_days=0), "'window_days': 0 is less than the minimum of 2"),
        (lambda r: r.update(holdout_days=30), "'holdout_days' (30) must be smaller than 'window_days' (30)"),
        (lambda r: r.update(selection_metric="auc"), "'selection_metric' must be one of"),
        (lambda r: r["gate"].update(metric="gini"), "'gate.metric' must be one of"),
        (lambda r: r["gate"]["minimums"].update(gini=0.2), "unknown metric 'gini'"),
        (
            lambda r: r["gate"]["minimums"].update(roc_auc="high"),
            "'gate.minimums.roc_auc': 'high' is not of type 'number'",
        ),
        (lambda r: r["gate"].update(margin=-0.01), "'gate.margin': -0.01 is less than the minimum of 0"),
        (lambda r: r.update(random_state=-1), "'random_state': -1 is less than the minimum of 0"),
        (
            lambda r: r.update(reference_sample_rows=0),
            "'reference_sample_rows': 0 is less than the minimum of 1",
        ),
        (
            lambda r: r.update(windows_days=30),
            "unknown key 'windows_days' in the top level (did you mean 'window_days'?)",
        ),
    ],
)
def test_each_problem_is_named(edit, message):
    raw = copy.deepcopy(_raw())
    edit(raw)
    with pytest.raises(ModelConfigError, match="invalid model configuration") as caught:
        parse_model_config(raw, base_dir=CHURN_MODEL.parent)
    assert message in str(caught.value)


def test_all_problems_are_reported_at_once():
    # The structure (JSON Schema) is checked first, every problem of it at once ...
    raw = copy.deepcopy(_raw())
    raw.update(name="X", window_days="thirty", drift={"windows": 3})
    raw["gate"]["margin"] = -1
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config(raw, base_dir=CHURN_MODEL.parent)
    text = str(caught.value)
    for part in ("'name'", "'window_days'", "unknown key 'windows' in 'drift'", "'gate.margin'"):
        assert part in text
    # ... then the meaning (metrics, split, estimator), again every problem at once.
    raw = copy.deepcopy(_raw())
    raw.update(selection_metric="auc", holdout_days=40, estimator="sklearn.linear_model.Nope")
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config(raw, base_dir=CHURN_MODEL.parent)
    text = str(caught.value)
    for part in ("'selection_metric'", "'holdout_days' (40)", "'estimator'"):
        assert part in text


def test_pipeline_settings_come_from_the_file_with_defaults():
    config = parse_model_config(copy.deepcopy(_raw()), base_dir=CHURN_MODEL.parent)
    assert (config.training.schedule, config.training.max_active_runs, config.training.retries) == (
        None,
        1,
        2,
    )
    assert (config.drift.dag.schedule, config.drift.window_days, config.drift.cooldown_days) == (
        "30 1 * * *",
        3,
        7,
    )
    assert (config.rollback.schedule, config.rollback.retries) == (None, 0)
    raw = copy.deepcopy(_raw())
    raw.update(
        owner="risk",
        tags=["churn"],
        training={"schedule": "on_new_data", "retries": 1},
        drift={"schedule": "@hourly", "window_days": 7, "cooldown_days": 2, "thresholds": {"psi": 0.3}},
    )
    config = parse_model_config(raw, base_dir=CHURN_MODEL.parent)
    assert (config.training.schedule, config.training.retries, config.training.owner) == (
        "on_new_data",
        1,
        "risk",
    )
    assert (config.drift.dag.schedule, config.drift.window_days, config.drift.cooldown_days) == (
        "@hourly",
        7,
        2,
    )
    assert config.drift.thresholds == {"psi": 0.3}
    assert config.drift.dag.tags == config.rollback.tags == ("churn",)


def test_the_factory_can_check_a_file_without_importing_the_estimator():
    raw = copy.deepcopy(_raw())
    raw["estimator"] = "sklearn.linear_model.DoesNotExist"
    config = parse_model_config(raw, base_dir=CHURN_MODEL.parent, check_estimator=False)
    assert config.estimator == "sklearn.linear_model.DoesNotExist"
    with pytest.raises(ModelConfigError, match="'estimator'"):
        parse_model_config(raw, base_dir=CHURN_MODEL.parent)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ModelConfigError, match="No model configuration at"):
        load_model_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ModelConfigError, match="expected a mapping"):
        load_model_config(tmp_path / "list.yaml")


def test_dataset_path_is_relative_to_the_model_file(tmp_path):
    raw = _raw()
    raw["dataset"] = str(REPO_ROOT / "include" / "datasets" / "churn.yaml")
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(raw))
    assert load_model_config(tmp_path / "m.yaml").dataset == "churn"
    raw["dataset"] = "churn.yaml"
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ModelConfigError, match=f"No dataset configuration at {tmp_path}/churn.yaml"):
        load_model_config(tmp_path / "m.yaml")


def test_gate_metric_defaults_to_the_selection_metric():
    raw = _raw()
    raw["selection_metric"] = "pr_auc"
    raw["gate"] = {"margin": 0.01}
    config = parse_model_config(raw, base_dir=CHURN_MODEL.parent)
    assert config.gate.metric == "pr_auc"
    assert config.gate.minimums == {}


def test_expand_grid_is_ordered_by_name_then_value_order():
    grid = {"max_iter": [200, 100], "C": [1.0, 0.1]}
    assert expand_grid(grid) == [
        {"C": 1.0, "max_iter": 200},
        {"C": 1.0, "max_iter": 100},
        {"C": 0.1, "max_iter": 200},
        {"C": 0.1, "max_iter": 100},
    ]
    assert expand_grid({}) == [{}]


def test_override_replaces_and_adds_parameters():
    candidates = expand_grid(
        {"C": [0.1, 1.0]}, {"C": 10.0, "class_weight": [None, "balanced"]}, estimator=LOGREG
    )
    assert candidates == [{"C": 10.0, "class_weight": None}, {"C": 10.0, "class_weight": "balanced"}]
    assert json.loads(json.dumps(candidates)) == candidates


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"depth": [3]}, "override names 'depth', which the estimator does not accept"),
        ({"C": []}, "override.C is an empty list"),
        ({"C": [{"x": 1}]}, "override.C must be a JSON scalar or a list of them"),
        ({"C": float("nan")}, "override.C must be a JSON scalar"),
        ("C=1", "override must map parameter names"),
        ({"C": list(range(65))}, "65 candidates, at most 64"),
    ],
)
def test_override_is_validated(override, message):
    with pytest.raises(ValueError, match="Invalid parameter grid") as caught:
        expand_grid({"C": [1.0]}, override, estimator=LOGREG)
    assert message in str(caught.value)


def test_grid_size_limit_counts_the_product():
    grid = {"C": list(range(8)), "tol": list(range(8))}
    assert len(expand_grid(grid)) == MAX_CANDIDATES
    with pytest.raises(
        ValueError, match=r"128 candidates, at most 64 are allowed \(C: 8 x max_iter: 2 x tol: 8\)"
    ):
        expand_grid(grid, {"max_iter": [1, 2]}, estimator=LOGREG)


def test_model_config_candidates_validate_the_override_against_the_estimator():
    config = load_model_config(CHURN_MODEL)
    assert config.candidates({"C": [0.5]}) == [{"C": 0.5}]
    with pytest.raises(ValueError, match="'n_estimators', which the estimator does not accept"):
        config.candidates({"n_estimators": [10]})


def test_load_estimator_class_checks_the_kind_the_task_needs():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    for task in ("binary", "multiclass"):
        assert (
            load_estimator_class("sklearn.ensemble.HistGradientBoostingClassifier", task)
            is HistGradientBoostingClassifier
        )
    assert (
        load_estimator_class("sklearn.ensemble.HistGradientBoostingRegressor", "regression")
        is HistGradientBoostingRegressor
    )
    assert load_estimator_class("sklearn.linear_model.Ridge", None).__name__ == "Ridge"
    with pytest.raises(ValueError, match="must be the import path of a scikit-learn class"):
        load_estimator_class("os.system", None)
    with pytest.raises(ValueError, match="not a scikit-learn estimator class"):
        load_estimator_class("sklearn.base.clone", None)
    with pytest.raises(ValueError, match="not a classifier with predict_proba, which a binary model needs"):
        load_estimator_class("sklearn.linear_model.RidgeClassifier", "binary")
    with pytest.raises(ValueError, match="not a classifier with predict_proba, which a multiclass model"):
        load_estimator_class("sklearn.linear_model.Ridge", "multiclass")
    with pytest.raises(ValueError, match="not a regressor, which a regression model needs"):
        load_estimator_class(LOGREG, "regression")


def _with_target(tmp_path, target: dict, **model) -> dict:
    """The churn model's raw config on a copy of the churn dataset whose target is ``target``."""
    dataset = yaml.safe_load((REPO_ROOT / "include" / "datasets" / "churn.yaml").read_text())
    dataset["target"] = target
    dataset["features"] = {
        kind: [c for c in columns if c != target["column"]] for kind, columns in dataset["features"].items()
    }
    dataset["expectations"] = str(REPO_ROOT / "include" / "expectations" / "churn.json")
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(dataset))
    raw = {**_raw(), "dataset": str(tmp_path / "dataset.yaml")}
    raw.pop("gate")
    raw.pop("selection_metric")
    return {**raw, **model}


def test_the_task_defaults_to_the_datasets_and_picks_the_default_metrics(tmp_path):
    assert load_model_config(CHURN_MODEL).task == "binary"
    multiclass = parse_model_config(
        _with_target(tmp_path, {"column": "contract_type", "classes": ["a", "b", "c"]}), base_dir=tmp_path
    )
    assert (multiclass.task, multiclass.selection_metric, multiclass.gate.metric) == (
        "multiclass", "f1_macro", "f1_macro",
    )  # fmt: skip
    regression = parse_model_config(
        _with_target(
            tmp_path, {"column": "monthly_charges"}, estimator="sklearn.linear_model.Ridge",
            param_grid={"alpha": [1.0]}, params={}, gate={"minimums": {"rmse": 30, "r2": 0.1}},
        ),
        base_dir=tmp_path,
    )  # fmt: skip
    assert (regression.task, regression.selection_metric) == ("regression", "rmse")
    assert regression.gate.minimums == {"rmse": 30.0, "r2": 0.1}


def test_a_regression_model_may_ignore_the_classes_of_a_numeric_target(tmp_path):
    raw = _with_target(
        tmp_path, {"column": "churned", "classes": [0, 1]}, task="regression",
        estimator="sklearn.linear_model.Ridge", param_grid={}, params={},
    )  # fmt: skip
    assert parse_model_config(raw, base_dir=tmp_path).task == "regression"


def test_without_a_readable_dataset_metrics_are_checked_by_name_only(tmp_path):
    raw = {**_raw(), "dataset": "missing.yaml", "selection_metric": "rmse", "gate": {"metric": "rmse"}}
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config(raw, base_dir=tmp_path)
    message = str(caught.value)
    assert "No dataset configuration" in message
    assert "'selection_metric'" not in message and "'gate.metric'" not in message


@pytest.mark.parametrize(
    ("target", "model", "message"),
    [
        (
            {"column": "contract_type", "classes": ["a", "b", "c"]},
            {"task": "binary"},
            "'task' binary needs exactly 2 target classes, but dataset 'churn' lists 3 target classes "
            "(a, b, c); use task: multiclass",
        ),
        (
            {"column": "churned", "classes": [0, 1]},
            {"task": "multiclass"},
            "'task' multiclass needs at least 3 target classes, but dataset 'churn' lists 2 target "
            "classes (0, 1); use task: binary",
        ),
        ({"column": "churned"}, {"task": "binary"}, "list the two classes under target.classes"),
        (
            {"column": "region"},
            {"task": "regression", "estimator": "sklearn.linear_model.Ridge", "params": {}, "param_grid": {}},
            "'task' regression needs a numeric target, but 'region' of dataset 'churn' is string",
        ),
        ({"column": "monthly_charges"}, {}, "is not a regressor, which a regression model needs"),
        (
            {"column": "monthly_charges"},
            {
                "estimator": "sklearn.linear_model.Ridge",
                "params": {},
                "param_grid": {},
                "selection_metric": "roc_auc",
            },
            "'selection_metric' must be one of the regression metrics rmse, mae, median_ae, r2, not 'roc_auc'",
        ),
        (
            {"column": "contract_type", "classes": ["a", "b", "c"]},
            {"gate": {"minimums": {"roc_auc": 0.7}}},
            "'gate.minimums' names unknown metric 'roc_auc' for a multiclass model",
        ),
        (
            {"column": "contract_type", "classes": ["a", "b", "c"]},
            {"gate": {"metric": "rmse"}},
            "'gate.metric' must be one of the multiclass metrics",
        ),
    ],
)
def test_the_task_must_fit_the_dataset_the_estimator_and_the_metrics(tmp_path, target, model, message):
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config(_with_target(tmp_path, target, **model), base_dir=tmp_path)
    assert message in str(caught.value)
