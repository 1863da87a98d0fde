"""The reference profile: what it precomputes is exact, it survives a write/read, bad files are named."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.profile import (
    MAX_CATEGORIES,
    PROFILE_FILE,
    SAMPLES_FILE,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_reference_profile,
    category_key,
    prediction_values,
)

pytestmark = pytest.mark.unit

ROWS = 5_000


def reference_frame(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(3, 0.5, rows)
    income[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "tenure": rng.integers(0, 6, rows),  # few distinct values: tied quantiles
            "plan": pd.Series(rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1])).where(
                rng.random(rows) > 0.05
            ),
            "active": rng.random(rows) < 0.7,
            "seats": pd.array(
                np.where(rng.random(rows) < 0.2, None, rng.integers(1, 4, rows)), dtype="Int64"
            ),
        }
    )


def build(frame: pd.DataFrame, **kwargs) -> ReferenceProfile:
    return build_reference_profile(
        frame, numeric=["income", "tenure"], categorical=["plan", "active", "seats"], **kwargs
    )


def test_numeric_columns_hold_whole_column_statistics_bins_and_a_sorted_sample():
    frame = reference_frame()
    profile = build(frame, sample_rows=1_000, seed=5)
    income = profile.numeric["income"]
    values = frame["income"].to_numpy()
    present = values[~np.isnan(values)]

    assert (income.rows, income.missing) == (ROWS, int(np.isnan(values).sum()))
    assert income.mean == pytest.approx(present.mean(), rel=1e-12)
    assert income.std == pytest.approx(present.std(), rel=1e-12)
    assert (income.minimum, income.maximum) == (present.min(), present.max())
    assert len(income.bin_edges) == 9
    assert list(income.bin_edges) == pytest.approx(np.quantile(present, np.arange(1, 10) / 10))
    # Bins are (-inf, e0], (e0, e1], ..., (e8, inf), counted over the whole column.
    edges = [-np.inf, *income.bin_edges, np.inf]
    expected = [int(((present > lo) & (present <= hi)).sum()) for lo, hi in itertools.pairwise(edges)]
    assert list(income.bin_counts) == expected
    assert income.sample.size == 1_000
    assert np.all(np.diff(income.sample) >= 0)
    assert np.isin(income.sample, present).all()
    # Another seed draws another sample.
    assert not np.array_equal(build(frame, sample_rows=1_000, seed=6).numeric["income"].sample, income.sample)


def test_tied_quantiles_give_fewer_bins_and_a_short_column_keeps_every_value():
    frame = reference_frame()
    tenure = build(frame, sample_rows=ROWS).numeric["tenure"]
    assert tenure.bin_edges == (0.0, 1.0, 2.0, 3.0, 4.0)  # six values, no empty top bin
    assert list(tenure.bin_counts) == [int((frame["tenure"] == v).sum()) for v in range(6)]
    assert np.array_equal(tenure.sample, np.sort(frame["tenure"].to_numpy(dtype=float)))


def test_categorical_columns_count_every_category_and_missing_values():
    frame = reference_frame()
    profile = build(frame)
    plan = profile.categorical["plan"]
    counts = frame["plan"].value_counts()
    assert plan.categories == ("basic", "plus", "pro")  # most frequent first
    assert list(plan.counts) == [counts["basic"], counts["plus"], counts["pro"]]
    assert plan.missing == int(frame["plan"].isna().sum()) > 0
    active = profile.categorical["active"]
    assert dict(zip(active.categories, active.counts, strict=True)) == {
        "True": int(frame["active"].sum()),
        "False": int((~frame["active"]).sum()),
    }
    # A nullable integer column: categories are the integers, nulls counted.
    seats = profile.categorical["seats"]
    assert sorted(seats.categories) == ["1", "2", "3"]
    assert seats.missing == int(frame["seats"].isna().sum())


def test_category_keys_do_not_depend_on_how_pandas_stored_the_column():
    assert category_key(np.True_) == category_key(True) == "True"
    assert category_key(2.0) == category_key(np.int64(2)) == category_key(2) == "2"
    assert category_key(2.5) == "2.5"
    assert category_key("x") == "x"


def test_a_category_tail_beyond_the_cap_is_counted_as_other():
    rows = MAX_CATEGORIES + 500
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(rows)], "x": np.arange(rows, dtype=float)})
    frame.loc[:9, "id"] = "c0"  # one category ten times, so it ranks first
    column = build_reference_profile(frame, numeric=["x"], categorical=["id"]).categorical["id"]
    assert len(column.categories) == MAX_CATEGORIES
    assert column.categories[0] == "c0" and column.counts[0] == 10
    assert sum(column.counts) + column.other == rows


def test_scores_are_profiled_as_a_numeric_column():
    frame = reference_frame()
    scores = np.random.default_rng(0).random(ROWS)
    prediction = build(frame, scores=scores).prediction
    assert prediction is not None
    assert prediction.mean == pytest.approx(scores.mean())
    assert build(frame).prediction is None
    with pytest.raises(ValueError, match=r"one value per row \(5000\)"):
        build(frame, scores=scores[:10])


def test_prediction_values_follow_the_task():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    labels = prediction_values("multiclass", proba, [1, 2, "c"])
    assert labels.dtype == object and labels.tolist() == ["1", "c", "2"]
    assert prediction_values("binary", [0.2, 0.9], [0, 1]).tolist() == [0.2, 0.9]
    assert prediction_values("regression", np.array([3, 4]), []).dtype == np.float64
    with pytest.raises(ValueError, match=r"3 columns, got shape \(3, 2\)"):
        prediction_values("multiclass", proba[:, :2], ["a", "b", "c"])


def test_predicted_classes_are_profiled_as_a_categorical_column_and_survive_a_write(tmp_path):
    frame = reference_frame()
    labels = np.random.default_rng(0).choice(np.array(["low", "mid", "high"], dtype=object), ROWS)
    profile = build(frame, scores=labels)
    assert isinstance(profile.prediction, CategoricalProfile)
    counts = dict(zip(profile.prediction.categories, profile.prediction.counts, strict=True))
    assert counts == {name: int((labels == name).sum()) for name in ("low", "mid", "high")}
    paths = profile.write(tmp_path)
    read = ReferenceProfile.read(tmp_path)
    assert read == profile
    assert json.loads(paths[0].read_text())["prediction"]["kind"] == "categorical"
    with np.load(paths[1], allow_pickle=False) as archive:
        assert sorted(archive.files) == ["n0", "n1"]  # no sample for predicted classes


def test_a_profile_written_before_prediction_kinds_reads_as_numeric(tmp_path):
    build(reference_frame(), scores=np.linspace(0, 1, ROWS)).write(tmp_path)
    edit_document(tmp_path, lambda d: d["prediction"].pop("kind"))
    assert isinstance(ReferenceProfile.read(tmp_path).prediction, NumericProfile)
    edit_document(tmp_path, lambda d: d["prediction"].update(kind="ranking"))
    with pytest.raises(ValueError, match="prediction kind 'ranking' is neither numeric nor categorical"):
        ReferenceProfile.read(tmp_path)


def test_write_then_read_gives_the_same_profile(tmp_path):
    frame = reference_frame()
    profile = build(frame, scores=np.linspace(0, 1, ROWS), sample_rows=700)
    paths = profile.write(tmp_path / "profile")
    assert sorted(p.name for p in paths) == sorted([PROFILE_FILE, SAMPLES_FILE])
    assert sorted(p.name for p in (tmp_path / "profile").iterdir()) == sorted([PROFILE_FILE, SAMPLES_FILE])
    read = ReferenceProfile.read(tmp_path / "profile")
    assert read == profile  # every field but the samples
    for name, column in profile.numeric.items():
        assert np.array_equal(read.numeric[name].sample, column.sample)
    assert np.array_equal(read.prediction.sample, profile.prediction.sample)
    assert list(read.numeric) == ["income", "tenure"]
    assert list(read.categorical) == ["plan", "active", "seats"]
    # Plain JSON and npz, no pickle.
    document = json.loads(paths[0].read_text())
    assert document["format"] == 1 and document["numeric"][0]["name"] == "income"
    with np.load(paths[1], allow_pickle=False) as archive:
        assert sorted(archive.files) == ["n0", "n1", "prediction"]


@pytest.fixture
def written(tmp_path):
    build(reference_frame()).write(tmp_path)
    return tmp_path


def edit_document(directory, change) -> None:
    path = directory / PROFILE_FILE
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_read_names_a_missing_file(written):
    (written / SAMPLES_FILE).unlink()
    with pytest.raises(ValueError, match=r"drift_samples\.npz is missing"):
        ReferenceProfile.read(written)
    (written / PROFILE_FILE).unlink()
    with pytest.raises(ValueError, match=r"drift_profile\.json is missing"):
        ReferenceProfile.read(written)


def test_read_rejects_corrupt_json_and_samples_that_do_not_match(written):
    samples = written / SAMPLES_FILE
    data = bytearray(samples.read_bytes())
    data[-40] ^= 0xFF
    samples.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the sha256"):
        ReferenceProfile.read(written)
    (written / PROFILE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read .*drift_profile\.json"):
        ReferenceProfile.read(written)


def test_read_rejects_a_samples_file_that_is_not_an_npz(written):
    import hashlib

    (written / SAMPLES_FILE).write_bytes(b"not a zip archive")
    sha = hashlib.sha256(b"not a zip archive").hexdigest()
    edit_document(written, lambda d: d["samples"].update(sha256=sha))
    with pytest.raises(ValueError, match="Invalid drift profile in"):
        ReferenceProfile.read(written)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=99), "unsupported format 99"),
        (lambda d: d.pop("numeric"), "missing key 'numeric'"),
        (lambda d: d["numeric"][0].update(bin_counts=[1, 2]), "column 'income': bins are inconsistent"),
        (lambda d: d["numeric"][1].update(missing=-1), "tenure.missing must be a non-negative integer"),
        (lambda d: d["numeric"][0].update(sample="n9"), "sample 'n9' is not in"),
        (lambda d: d["categorical"][0]["counts"].append(1), "column 'plan': category counts do not add up"),
        (lambda d: d["categorical"][1].update(name="income"), "both numeric and categorical"),
    ],
)
def test_read_names_what_is_inconsistent(written, change, message):
    edit_document(written, change)
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.read(written)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"numeric": ["income", "nope"], "categorical": []}, r"columns not in the frame: \['nope'\]"),
        ({"numeric": ["income"], "categorical": ["income"]}, r"listed twice: \['income'\]"),
        ({"numeric": ["plan"], "categorical": []}, "Column 'plan' is not numeric"),
        ({"numeric": ["active"], "categorical": []}, "Column 'active' is not numeric"),
        ({"numeric": [], "categorical": []}, "no feature column"),
        ({"numeric": ["income"], "categorical": [], "sample_rows": 0}, "sample_rows must be a positive"),
    ],
)
def test_build_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_reference_profile(reference_frame(), **kwargs)


def test_an_all_missing_reference_column_is_profiled_without_values():
    frame = pd.DataFrame({"x": [np.nan, np.inf, np.nan], "y": [1.0, 2.0, 3.0]})
    column = build_reference_profile(frame, numeric=["x", "y"], categorical=[]).numeric["x"]
    assert (column.rows, column.missing, column.mean, column.sample.size) == (3, 3, None, 0)


def test_importance_is_stored_normalised_and_survives_a_write(tmp_path):
    profile = build(reference_frame(), importance={"income": 3.0, "plan": 1.0})
    assert profile.importance == {"income": 0.75, "tenure": 0.0, "plan": 0.25, "active": 0.0, "seats": 0.0}
    profile.write(tmp_path)
    assert ReferenceProfile.read(tmp_path).importance == profile.importance
    assert build(reference_frame()).importance is None  # not measured: the check weighs uniformly
    with pytest.raises(ValueError, match=r"importance names unknown features \['nope'\]"):
        build(reference_frame(), importance={"nope": 1.0})
    with pytest.raises(ValueError, match=r"not finite >= 0 \['income'\]"):
        build(reference_frame(), importance={"income": -1.0})


def test_a_profile_written_without_importance_reads_as_none(written):
    edit_document(written, lambda d: d.pop("importance"))
    # The sha256 covers only the samples file, so the edited JSON still reads.
    assert ReferenceProfile.read(written).importance is None
