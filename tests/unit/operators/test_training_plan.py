"""A training plan's partition entries: a post-change day's parts are disjoint, cover it, keep its class rate."""

from __future__ import annotations

from datetime import date

import pytest

from include.example_data.churn import generate_day

pytestmark = pytest.mark.unit

DAY = date(2026, 3, 3)


def test_the_parts_of_a_split_day_are_disjoint_cover_the_day_and_keep_the_churn_rate(tmp_path):
    from mlops_provider.core.training import POST_CHANGE_SHARES, DaySlice, row_split_seed
    from mlops_provider.hooks.storage import DatasetStorageHook
    from mlops_provider.operators._model import read_recorded_partitions
    from mlops_provider.operators.training import _plan_entries

    storage = DatasetStorageHook(root_uri=f"file://{tmp_path}")
    storage.write_partition("churn", "validated", DAY, generate_day(DAY, 4000))
    manifest = storage.read_manifest("churn", "validated", DAY)
    partitions = {DAY: {"ds": DAY.isoformat(), "sha256": manifest.sha256, "rows": manifest.row_count}}
    row_split = {"seed": 7, "shares": dict(POST_CHANGE_SHARES), "stratify_by": "churned"}

    whole = read_recorded_partitions(storage, "churn", _plan_entries([DaySlice(DAY)], partitions, row_split))
    frames = {}
    for part in POST_CHANGE_SHARES:
        [entry] = _plan_entries([DaySlice(DAY, part)], partitions, row_split)
        assert entry["split"]["seed"] == row_split_seed(7, DAY) and entry["split"]["part"] == part
        frames[part] = read_recorded_partitions(storage, "churn", [entry])

    ids = {part: set(frame["customer_id"]) for part, frame in frames.items()}
    assert not (ids["fit"] & ids["holdout"]) and not (ids["selection"] & ids["holdout"])
    assert not (ids["fit"] & ids["selection"])
    assert ids["fit"] | ids["selection"] | ids["holdout"] == set(whole["customer_id"])
    for part, share in POST_CHANGE_SHARES.items():
        assert abs(len(frames[part]) - share * len(whole)) <= 2, part
        assert frames[part]["churned"].mean() == pytest.approx(whole["churned"].mean(), abs=0.002), part
    # The same entry reads the same rows again (train and evaluate run on other machines).
    [entry] = _plan_entries([DaySlice(DAY, "holdout")], partitions, row_split)
    again = read_recorded_partitions(storage, "churn", [entry])
    assert again["customer_id"].tolist() == frames["holdout"]["customer_id"].tolist()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (None, None),
        ("", None),
        ({"start": "2026-03-01", "end": "2026-03-03"}, (date(2026, 3, 1), date(2026, 3, 3))),
    ],
)
def test_the_change_window_of_a_run_is_read_as_dates(window, expected):
    from mlops_provider.operators.training import MLflowPrepareTrainingOperator

    operator = MLflowPrepareTrainingOperator(task_id="prepare", model_config="m.yaml", change_window=window)
    assert operator._change_window() == expected


@pytest.mark.parametrize("window", [{"start": "2026-03-01"}, {"start": "March", "end": "2026-03-03"}, "x"])
def test_a_malformed_change_window_fails_without_retry(window):
    from mlops_provider.exceptions import InvalidConfigurationError
    from mlops_provider.operators.training import MLflowPrepareTrainingOperator

    operator = MLflowPrepareTrainingOperator(task_id="prepare", model_config="m.yaml", change_window=window)
    with pytest.raises(InvalidConfigurationError, match="window must be"):
        operator._change_window()
