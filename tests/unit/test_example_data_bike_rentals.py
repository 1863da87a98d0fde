"""The seeded bike-rental generator (the regression example): determinism, schema, signal, drift, CLI."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from include.example_data import bike_rentals as bikes

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 5, 6)  # a Wednesday in spring
SEED = 7


@pytest.fixture(scope="module")
def base() -> pa.Table:
    return bikes.generate_day(DAY, seed=SEED)


@pytest.fixture(scope="module")
def frame(base) -> pd.DataFrame:
    return base.to_pandas()


def drifted(*scenarios: str, day: dt.date = DAY) -> pd.DataFrame:
    return bikes.generate_day(day, seed=SEED, drift=bikes.DriftPlan(DAY, scenarios)).to_pandas()


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_and_day_give_equal_tables_and_other_days_or_seeds_differ(base):
    assert bikes.generate_day(DAY, seed=SEED).equals(base)
    assert bikes.generate_day(DAY.isoformat(), seed=SEED).equals(base)
    assert not bikes.generate_day(DAY + dt.timedelta(days=1), seed=SEED).equals(base)
    assert not bikes.generate_day(DAY, seed=SEED + 1).equals(base)


def test_files_are_reproducible_and_a_day_alone_equals_the_day_in_a_range(tmp_path):
    first = bikes.write_days(tmp_path / "a", DAY, 3, station_count=20, seed=SEED)
    again = bikes.write_days(tmp_path / "b", DAY, 3, station_count=20, seed=SEED)
    alone = bikes.write_days(tmp_path / "c", DAY + dt.timedelta(days=1), 1, station_count=20, seed=SEED)
    assert [p.name for p in first] == ["2026-05-06.csv", "2026-05-07.csv", "2026-05-08.csv"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert alone[0].read_bytes() == first[1].read_bytes()


def test_csv_reads_back_as_the_generated_table(tmp_path):
    (path,) = bikes.write_days(tmp_path, DAY, 1, station_count=30, seed=SEED)
    options = pa_csv.ConvertOptions(column_types=bikes.SCHEMA, null_values=[""], strings_can_be_null=True)
    assert pa_csv.read_csv(path, convert_options=options).equals(bikes.generate_day(DAY, 30, SEED))
    assert [p.name for p in tmp_path.iterdir()] == ["2026-05-06.csv"]  # no temporary file left


# -------------------------------------------------------------------------------- schema, realism


def test_schema_keys_and_value_domains(base, frame):
    assert base.schema.equals(bikes.SCHEMA)
    assert 0.95 * 24 * bikes.DEFAULT_STATIONS < len(frame) < 24 * bikes.DEFAULT_STATIONS
    assert not frame.duplicated(list(bikes.KEY)).any()
    start = pd.Timestamp(DAY, tz="UTC")
    assert frame["hour_ts"].between(start, start + pd.Timedelta(hours=23)).all()
    assert (frame["hour_ts"].dt.hour == frame["hour"]).all()
    assert frame["rentals"].ge(0).all() and 3 < frame["rentals"].mean() < 15
    assert set(frame["district"]) == set(bikes.DISTRICTS)
    assert set(frame["weather"]) <= set(bikes.WEATHER)
    assert frame["docks"].between(10, 40).all()
    assert 0.002 < frame["humidity"].isna().mean() < 0.03
    assert not frame["is_weekend"].any() and not frame["is_holiday"].any()


def test_stations_keep_their_attributes_from_day_to_day(frame):
    other = bikes.generate_day(DAY + dt.timedelta(days=30), seed=SEED).to_pandas()
    attributes = ["station_id", "district", "docks", "near_transit"]
    merged = frame[attributes].drop_duplicates().merge(other[attributes].drop_duplicates(), on="station_id")
    assert len(merged) == bikes.DEFAULT_STATIONS
    for column in attributes[1:]:
        assert (merged[f"{column}_x"] == merged[f"{column}_y"]).all()


def test_demand_follows_the_commute_and_the_weekend(frame):
    by_hour = frame.groupby("hour")["rentals"].mean()
    assert by_hour[8] > 3 * by_hour[3] and by_hour[17] > by_hour[13]
    sunday = bikes.generate_day(DAY + dt.timedelta(days=4), seed=SEED).to_pandas()
    assert sunday["is_weekend"].all()
    sunday_by_hour = sunday.groupby("hour")["rentals"].mean()
    assert sunday_by_hour[14] > sunday_by_hour[8]


def test_a_regressor_trained_on_some_days_explains_most_of_the_variance_of_others():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from threadpoolctl import threadpool_limits

    numeric = ["hour", "docks", "temperature_c", "humidity", "wind_kmh", "near_transit", "is_weekend"]

    def days(first: int, count: int) -> tuple[pd.DataFrame, pd.Series]:
        df = pd.concat(
            [
                bikes.generate_day(DAY + dt.timedelta(days=i), seed=SEED).to_pandas()
                for i in range(first, first + count)
            ]
        )
        return df[[*numeric, "district", "weather"]], df["rentals"].astype(float)

    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", "passthrough", numeric),
                ("cat", OneHotEncoder(sparse_output=False), ["district", "weather"]),
            ]
        ),
        HistGradientBoostingRegressor(loss="poisson", max_iter=60, random_state=0),
    )
    with threadpool_limits(1):  # OpenMP threads on a shared 2-core machine only contend
        model.fit(*days(0, 7))
    x_test, y_test = days(9, 3)
    residual = y_test - model.predict(x_test)
    assert 1 - residual.var() / y_test.var() > 0.6


# ------------------------------------------------------------------------------------------ drift


def test_heatwave_warms_and_dries_the_air_from_its_start_day_on(frame):
    hot = drifted("heatwave")
    assert hot["temperature_c"].mean() - frame["temperature_c"].mean() == pytest.approx(9.0, abs=0.3)
    assert hot["humidity"].mean() < frame["humidity"].mean() - 8
    before = drifted("heatwave", day=DAY - dt.timedelta(days=1))
    assert before.equals(bikes.generate_day(DAY - dt.timedelta(days=1), seed=SEED).to_pandas())


def test_rainy_season_makes_rain_common_and_rain_keeps_riders_home():
    days = [DAY + dt.timedelta(days=i) for i in range(10)]
    dry = pd.concat([bikes.generate_day(d, 40, SEED).to_pandas() for d in days])
    wet = pd.concat([drifted("rainy_season", day=d) for d in days])
    assert (wet["weather"] == "rain").mean() > (dry["weather"] == "rain").mean() + 0.2
    daytime = wet[wet["hour"].between(9, 19)].groupby("weather")["rentals"].mean()
    assert daytime["rain"] < 0.7 * daytime["clear"]


def test_new_district_moves_the_same_quarter_of_the_stations_every_day(frame):
    moved = drifted("new_district")
    later = drifted("new_district", day=DAY + dt.timedelta(days=5))
    airport = set(moved.loc[moved["district"] == bikes.NEW_DISTRICT, "station_id"])
    assert airport == set(later.loc[later["district"] == bikes.NEW_DISTRICT, "station_id"])
    assert 0.15 < len(airport) / bikes.DEFAULT_STATIONS < 0.35
    assert moved["temperature_c"].equals(frame["temperature_c"])


def test_demand_drop_moves_only_the_target(frame):
    dropped = drifted("demand_drop")
    features = [c for c in frame.columns if c != "rentals"]
    pd.testing.assert_frame_equal(dropped[features], frame[features])
    assert dropped["rentals"].mean() / frame["rentals"].mean() == pytest.approx(0.6, abs=0.05)


def test_unknown_drift_scenarios_are_refused():
    with pytest.raises(ValueError, match="expected one or more of heatwave, rainy_season"):
        bikes.DriftPlan(DAY, ["flood"])
    with pytest.raises(ValueError, match="is not a date"):
        bikes.DriftPlan("soon", ["heatwave"])


# -------------------------------------------------------------------------------------------- CLI


def test_cli_writes_the_days_and_reports_them(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--start", "2026-05-06", "--end", "2026-05-07", "--stations", "10"]
    assert bikes.main([*argv, "--drift-start", "2026-05-07", "--drift", "heatwave"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-05-06.csv", "2026-05-07.csv"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("wrote 2 files")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "0"], "--days must be at least 1"),
        (["--days", "1", "--drift", "heatwave"], "--drift and --drift-start go together"),
        (["--days", "1", "--drift-start", "2026-01-01", "--drift", "flood"], "invalid choice: 'flood'"),
        (["--days", "1", "--stations", "0"], "--stations must be in 1..100,000"),
    ],
)
def test_cli_rejects_invalid_options(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit):
        bikes.main(["--out", str(tmp_path), "--start", "2026-01-01", *extra])
    assert message in capsys.readouterr().err
