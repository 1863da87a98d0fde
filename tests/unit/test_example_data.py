"""The seeded churn landing-data generator: determinism, schema, realism, drift and corruption."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from include.example_data import churn

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 1, 5)
ROWS = 50_000
SEED = 7
CATEGORICAL = list(churn.CATEGORIES)


@pytest.fixture(scope="module")
def base() -> pa.Table:
    return churn.generate_day(DAY, ROWS, SEED)


@pytest.fixture(scope="module")
def frame(base) -> pd.DataFrame:
    return base.to_pandas()


def read_csv(source, schema: pa.Schema = churn.SCHEMA) -> pa.Table:
    """Read a generated CSV the way the ingest does: explicit types, only empty fields are null."""
    return pa_csv.read_csv(
        source,
        convert_options=pa_csv.ConvertOptions(
            column_types=schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def read_jsonl(path) -> pa.Table:
    """pyarrow.json cannot parse "YYYY-MM-DD" into date32 directly: read the date as text, then cast."""
    schema = churn.SCHEMA.set(2, pa.field("signup_date", pa.string()))
    table = pa_json.read_json(
        path, parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    )
    return table.set_column(2, "signup_date", table.column("signup_date").cast(pa.date32()))


def drifted(*specs: str, day: dt.date = DAY) -> pa.Table:
    return churn.generate_day(day, ROWS, SEED, churn.DriftPlan.parse(DAY, list(specs)))


def changed_columns(a: pa.Table, b: pa.Table) -> list[str]:
    return [name for name in a.column_names if not a.column(name).equals(b.column(name))]


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_and_day_give_equal_tables_and_other_days_or_seeds_differ(base):
    assert churn.generate_day(DAY, ROWS, SEED).equals(base)
    assert churn.generate_day(DAY.isoformat(), ROWS, SEED).equals(base)
    assert not churn.generate_day(DAY + dt.timedelta(days=1), ROWS, SEED).equals(base)
    assert not churn.generate_day(DAY, ROWS, SEED + 1).equals(base)


def test_csv_bytes_are_reproducible_and_a_day_alone_equals_the_day_in_a_range(tmp_path):
    first = churn.write_days(tmp_path / "a", DAY, 3, rows_per_day=2_000, seed=SEED)
    again = churn.write_days(tmp_path / "b", DAY, 3, rows_per_day=2_000, seed=SEED)
    alone = churn.write_days(tmp_path / "c", DAY + dt.timedelta(days=1), 1, rows_per_day=2_000, seed=SEED)
    assert [p.name for p in first] == ["2026-01-05.csv", "2026-01-06.csv", "2026-01-07.csv"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert alone[0].read_bytes() == first[1].read_bytes()
    assert first[0].read_bytes() != first[1].read_bytes()


def test_parquet_tables_are_reproducible(tmp_path):
    day = DAY + dt.timedelta(days=1)
    in_range = churn.write_days(tmp_path / "a", DAY, 2, rows_per_day=2_000, fmt="parquet", seed=SEED)[1]
    alone = churn.write_days(tmp_path / "b", day, 1, rows_per_day=2_000, fmt="parquet", seed=SEED)[0]
    table = pq.read_table(in_range)
    assert table.equals(pq.read_table(alone))
    assert table.equals(churn.generate_day(day, churn.rows_for_day(day, 2_000, SEED), SEED))


def test_rows_vary_by_at_most_five_percent_unless_exact():
    counts = [churn.rows_for_day(DAY + dt.timedelta(days=i), 20_000, SEED) for i in range(30)]
    assert all(19_000 <= c <= 21_000 for c in counts)
    assert len(set(counts)) > 20
    assert churn.rows_for_day(DAY, 20_000, SEED, exact=True) == 20_000


def test_blocks_do_not_change_keys_or_order_across_block_boundaries():
    table = churn.generate_day(DAY, churn.BLOCK_ROWS + 1_000, SEED)
    assert pc.count_distinct(table.column("customer_id")).as_py() == table.num_rows
    ts = table.column("snapshot_ts").to_numpy()
    assert (np.diff(ts.astype(np.int64)) >= 0).all()


# -------------------------------------------------------------------------------- schema, realism


def test_schema_and_value_domains(base, frame):
    assert base.schema.equals(churn.SCHEMA)
    assert frame["customer_id"].str.fullmatch(r"C[1-9]\d{8}").all()
    assert frame["customer_id"].is_unique
    start = pd.Timestamp(DAY, tz="UTC")
    assert frame["snapshot_ts"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
    assert frame["snapshot_ts"].is_monotonic_increasing
    assert frame["tenure_months"].between(0, 72).all()
    assert frame["support_tickets"].ge(0).all()
    assert frame["monthly_charges"].between(18, 120).all()
    for column, values in churn.CATEGORIES.items():
        assert set(frame[column]) == set(values), column
    assert set(frame["churned"]) == {0, 1}


def test_features_are_internally_consistent(frame):
    days_since_signup = (pd.Timestamp(DAY) - pd.to_datetime(frame["signup_date"])).dt.days
    assert (np.floor(days_since_signup / 30.4375) == frame["tenure_months"]).all()
    known = frame.dropna(subset=["total_charges"])
    expected = known["tenure_months"] * known["monthly_charges"]
    assert np.allclose(known["total_charges"], expected, rtol=0.16, atol=0.01)
    by_tenure = frame.groupby(frame["tenure_months"] > 48)["contract_type"].agg(
        lambda s: (s == "two_year").mean()
    )
    assert by_tenure[True] > 3 * by_tenure[False]


def test_base_rate_and_churn_drivers(frame):
    rate = frame["churned"].mean()
    assert 0.12 <= rate <= 0.30
    mean = frame.groupby("contract_type")["churned"].mean()
    assert mean["month_to_month"] > mean["one_year"] > mean["two_year"]
    echeck = frame["payment_method"] == "electronic_check"
    assert frame.loc[echeck, "churned"].mean() > frame.loc[~echeck, "churned"].mean()
    assert (
        frame.loc[frame["tenure_months"] < 12, "churned"].mean()
        > frame.loc[frame["tenure_months"] > 48, "churned"].mean()
    )
    assert (
        frame.loc[frame["support_tickets"] >= 3, "churned"].mean()
        > frame.loc[frame["support_tickets"] == 0, "churned"].mean()
    )
    high = frame["monthly_charges"] > frame["monthly_charges"].quantile(0.75)
    assert frame.loc[high, "churned"].mean() > frame.loc[~high, "churned"].mean()


def test_missing_value_shares(frame):
    shares = frame.isna().mean()
    assert 0.005 <= shares["total_charges"] <= 0.015
    assert 0.015 <= shares["paperless_billing"] <= 0.045
    assert shares.drop(["total_charges", "paperless_billing"]).eq(0).all()


def test_a_classifier_trained_on_one_day_scores_another_day():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["tenure_months", "monthly_charges", "support_tickets"]
    categorical = [*CATEGORICAL, "has_partner", "paperless_billing"]

    def features(day: dt.date) -> tuple[pd.DataFrame, pd.Series]:
        df = churn.generate_day(day, 20_000, SEED).to_pandas()
        df["paperless_billing"] = df["paperless_billing"].map({True: "yes", False: "no"}).fillna("unknown")
        df["has_partner"] = df["has_partner"].astype(str)
        return df[numeric + categorical], df["churned"]

    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), categorical)]),
        LogisticRegression(max_iter=1000),
    )
    model.fit(*features(DAY))
    x_test, y_test = features(DAY + dt.timedelta(days=9))
    assert roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]) > 0.7


# ------------------------------------------------------------------------------------ file formats


@pytest.mark.parametrize("fmt", churn.FORMATS)
def test_each_format_reads_back_as_the_generated_table(tmp_path, fmt):
    plan = churn.DriftPlan.parse(DAY, ["region:null"])  # a string column with nulls as well
    (path,) = churn.write_days(
        tmp_path, DAY, 1, rows_per_day=3_000, fmt=fmt, seed=SEED, drift=plan, exact_rows=True
    )
    readers = {"csv": read_csv, "jsonl": read_jsonl, "parquet": pq.read_table}
    assert readers[fmt](path).equals(churn.generate_day(DAY, 3_000, SEED, plan))
    assert [p.name for p in tmp_path.iterdir()] == [f"2026-01-05.{fmt}"]  # no temporary files left


def test_text_conventions(tmp_path):
    (csv_path,) = churn.write_days(tmp_path, DAY, 1, rows_per_day=200, fmt="csv", exact_rows=True)
    (jsonl_path,) = churn.write_days(tmp_path, DAY, 1, rows_per_day=200, fmt="jsonl", exact_rows=True)
    header, first = csv_path.read_text().splitlines()[:2]
    assert header.replace('"', "").split(",") == churn.SCHEMA.names
    ts = first.split(",")[1]
    assert ts.startswith("2026-01-05 ") and ts.endswith("Z") and len(ts) == len("2026-01-05 00:00:00.000000Z")
    record = json.loads(jsonl_path.read_text().splitlines()[0])
    assert list(record) == churn.SCHEMA.names
    assert record["snapshot_ts"] == ts
    assert isinstance(record["has_partner"], bool)


def test_write_table_is_atomic_when_serialisation_fails(tmp_path, base):
    target = tmp_path / "x.csv"
    target.write_text("previous")
    with pytest.raises(ValueError, match="unknown format"):
        churn.write_table(base, target, "xml")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# ------------------------------------------------------------------------------------------- drift


def test_numeric_shift_moves_the_mean_by_half_a_std_and_nothing_else(base):
    after = drifted("monthly_charges:shift=0.5")
    assert changed_columns(base, after) == ["monthly_charges"]
    old, new = base.column("monthly_charges").to_numpy(), after.column("monthly_charges").to_numpy()
    assert (new.mean() - old.mean()) / old.std() == pytest.approx(0.5, abs=0.01)
    assert new.std() == pytest.approx(old.std(), rel=0.01)


def test_numeric_scale_widens_the_spread_within_the_domain(base):
    after = drifted("tenure_months:scale=1.5")
    assert changed_columns(base, after) == ["tenure_months"]
    old, new = base.column("tenure_months").to_numpy(), after.column("tenure_months").to_numpy()
    assert new.std() / old.std() > 1.2  # clipped to 0..72, so below the nominal 1.5
    assert new.min() >= 0 and new.max() <= 72


def test_drift_keeps_nulls_of_a_numeric_column(base):
    after = drifted("total_charges:shift=1")
    assert changed_columns(base, after) == ["total_charges"]
    assert after.column("total_charges").null_count == base.column("total_charges").null_count


@pytest.mark.parametrize("share", [0.8, 0.1])
def test_categorical_share_change_keeps_the_other_categories_proportions(frame, share):
    after = drifted(f"contract_type:share=month_to_month={share}").to_pandas()
    assert changed_columns(pa.Table.from_pandas(frame), pa.Table.from_pandas(after)) == ["contract_type"]
    new_shares = after["contract_type"].value_counts(normalize=True)
    old_shares = frame["contract_type"].value_counts(normalize=True)
    assert new_shares["month_to_month"] == pytest.approx(share, abs=0.01)
    ratio_old = old_shares["one_year"] / old_shares["two_year"]
    assert new_shares["one_year"] / new_shares["two_year"] == pytest.approx(ratio_old, rel=0.1)
    if share > old_shares["month_to_month"]:  # only rows moved into month_to_month
        moved = frame["contract_type"] != after["contract_type"]
        assert (after.loc[moved, "contract_type"] == "month_to_month").all()


def test_new_category_appears_with_its_share(frame, base):
    after = drifted("payment_method:new=crypto@0.2")
    assert changed_columns(base, after) == ["payment_method"]
    new = after.column("payment_method").to_pandas()
    assert (new == "crypto").mean() == pytest.approx(0.2, abs=0.01)
    assert (new[new != "crypto"] == frame["payment_method"][new != "crypto"]).all()


@pytest.mark.parametrize(("spec", "share"), [("region:null", 1.0), ("paperless_billing:null=0.5", 0.5)])
def test_null_drift(base, spec, share):
    column = spec.split(":")[0]
    after = drifted(spec)
    assert changed_columns(base, after) == [column]
    assert after.schema.equals(churn.SCHEMA)
    assert after.column(column).null_count / ROWS >= share - 0.01


def test_drift_applies_from_its_start_date_on(base):
    plan = churn.DriftPlan.parse(DAY, ["monthly_charges:shift=0.5", "region:null"])
    day_before = DAY - dt.timedelta(days=1)
    assert churn.generate_day(day_before, 1_000, SEED, plan).equals(
        churn.generate_day(day_before, 1_000, SEED)
    )
    after = churn.generate_day(DAY + dt.timedelta(days=3), 1_000, SEED, plan)
    assert changed_columns(churn.generate_day(DAY + dt.timedelta(days=3), 1_000, SEED), after) == [
        "monthly_charges",
        "region",
    ]
    assert churn.generate_day(DAY, ROWS, SEED, plan).equals(churn.generate_day(DAY, ROWS, SEED, plan))


def test_drift_specs_parse_into_dataclasses():
    assert churn.parse_drift("monthly_charges:shift=0.5") == churn.Shift("monthly_charges", 0.5)
    assert churn.parse_drift("tenure_months:scale=1.5") == churn.Scale("tenure_months", 1.5)
    assert churn.parse_drift("contract_type:share=month_to_month=0.8") == churn.Share(
        "contract_type", "month_to_month", 0.8
    )
    assert churn.parse_drift("payment_method:new=crypto@0.2") == churn.NewCategory(
        "payment_method", "crypto", 0.2
    )
    assert churn.parse_drift("region:null") == churn.Nullify("region", 1.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("monthly_charges", "not COLUMN:KIND"),
        ("nope:shift=1", "not a feature column"),
        ("customer_id:null", "not a feature column"),
        ("churned:null", "not a feature column"),
        ("contract_type:shift=1", "needs a numeric column"),
        ("monthly_charges:shift=abc", "not a number"),
        ("monthly_charges:scale=0", "outside"),
        ("monthly_charges:share=a=0.1", "needs a categorical column"),
        ("contract_type:share=weekly=0.5", "is not one of"),
        ("contract_type:share=month_to_month=1.5", "outside"),
        ("contract_type:share=0.5", "needs CATEGORY=P"),
        ("payment_method:new=credit_card@0.2", "already"),
        ("payment_method:new=crypto", "needs CATEGORY@P"),
        ("payment_method:new=a,b@0.1", "comma"),
        ("region:null=0", "outside"),
        ("region:wobble", "unknown kind"),
    ],
)
def test_invalid_drift_specs_raise_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        churn.parse_drift(spec)


# -------------------------------------------------------------------------------------- corruption

CORRUPT_DAY = DAY + dt.timedelta(days=1)
CORRUPT_ROWS = 5_000


def corrupted(tmp_path, kind: str, fmt: str = "csv"):
    """(path of the corrupted day, the clean table of that day); the other day must stay clean."""
    paths = churn.write_days(
        tmp_path,
        DAY,
        2,
        rows_per_day=CORRUPT_ROWS,
        fmt=fmt,
        seed=SEED,
        corrupt={CORRUPT_DAY: kind},
        exact_rows=True,
    )
    clean_table = churn.generate_day(CORRUPT_DAY, CORRUPT_ROWS, SEED)
    if fmt == "csv":
        assert read_csv(paths[0]).equals(churn.generate_day(DAY, CORRUPT_ROWS, SEED))
    return paths[1], clean_table


def clean_csv_bytes(tmp_path) -> bytes:
    (path,) = churn.write_days(
        tmp_path / "clean", CORRUPT_DAY, 1, rows_per_day=CORRUPT_ROWS, seed=SEED, exact_rows=True
    )
    return path.read_bytes()


def test_corrupt_empty(tmp_path):
    path, _ = corrupted(tmp_path, "empty")
    assert path.stat().st_size == 0


def test_corrupt_header_only(tmp_path):
    path, _ = corrupted(tmp_path, "header_only")
    assert path.read_bytes() == clean_csv_bytes(tmp_path).split(b"\n", 1)[0] + b"\n"
    assert read_csv(path).schema.equals(churn.SCHEMA) and read_csv(path).num_rows == 0


def test_corrupt_missing_column(tmp_path):
    path, clean = corrupted(tmp_path, "missing_column")
    schema = churn.SCHEMA.remove(churn.SCHEMA.get_field_index("monthly_charges"))
    assert read_csv(path, schema).equals(clean.drop_columns(["monthly_charges"]))
    assert pd.read_csv(path).columns.tolist() == schema.names


def test_corrupt_extra_column(tmp_path):
    path, clean = corrupted(tmp_path, "extra_column")
    table = read_csv(path, churn.SCHEMA.append(pa.field("unexpected_col", pa.int64())))
    assert table.column_names == [*churn.SCHEMA.names, "unexpected_col"]
    assert table.drop_columns(["unexpected_col"]).equals(clean)


def test_corrupt_wrong_type(tmp_path):
    path, clean = corrupted(tmp_path, "wrong_type")
    table = read_csv(path, churn.SCHEMA.set(4, pa.field("monthly_charges", pa.string())))
    assert changed_columns(clean, table) == ["monthly_charges"]
    text = table.column("monthly_charges").to_pandas()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna()
    assert 0.04 <= bad.mean() <= 0.06
    assert set(text[bad].str.replace(r"^\$\d+(\.\d+)?$", "$", regex=True)) == {"unknown", "$"}
    assert (numbers[~bad] == clean.column("monthly_charges").to_pandas()[~bad]).all()
    with pytest.raises(pa.ArrowInvalid):
        read_csv(path)
    assert not pd.api.types.is_numeric_dtype(pd.read_csv(path)["monthly_charges"])  # not read as nulls


def test_corrupt_all_null(tmp_path):
    path, clean = corrupted(tmp_path, "all_null")
    table = read_csv(path)
    assert table.column("tenure_months").null_count == CORRUPT_ROWS
    assert changed_columns(clean, table) == ["tenure_months"]


def test_corrupt_bad_target(tmp_path):
    path, clean = corrupted(tmp_path, "bad_target")
    table = read_csv(path)
    assert changed_columns(clean, table) == ["churned"]
    target = table.column("churned").to_numpy()
    bad = ~np.isin(target, [0, 1])
    assert set(target[bad]) == {-1, 2}
    assert 0.005 <= bad.mean() <= 0.015
    assert (target[~bad] == clean.column("churned").to_numpy()[~bad]).all()


def test_corrupt_duplicate_keys(tmp_path):
    path, clean = corrupted(tmp_path, "duplicate_keys")
    table = read_csv(path)
    frame = table.to_pandas()
    duplicated = frame["customer_id"].duplicated()
    assert 0.015 <= duplicated.sum() / CORRUPT_ROWS <= 0.025
    assert frame.duplicated().sum() == duplicated.sum()  # whole rows repeated
    assert table.filter(pa.array(~duplicated.to_numpy())).equals(clean)


def test_corrupt_non_utf8(tmp_path):
    path, clean = corrupted(tmp_path, "non_utf8")
    raw = path.read_bytes()
    assert b"s\xfcd" in raw
    with pytest.raises(pa.ArrowInvalid, match="UTF8"):
        read_csv(path)
    with pytest.raises(UnicodeDecodeError):
        pd.read_csv(path)
    table = read_csv(io.BytesIO(raw.decode("latin-1").encode()))
    assert changed_columns(clean, table) == ["region"]
    region = table.column("region").to_pandas()
    latin = region == "s\u00fcd"
    assert 0.005 <= latin.mean() <= 0.015
    assert (region[~latin] == clean.column("region").to_pandas()[~latin]).all()


def test_corrupt_truncated(tmp_path):
    path, _ = corrupted(tmp_path, "truncated")
    whole = clean_csv_bytes(tmp_path)
    cut = path.read_bytes()
    assert whole.startswith(cut) and abs(len(cut) - len(whole) // 2) <= 1
    assert not cut.endswith(b"\n")
    with pytest.raises(pa.ArrowInvalid):
        read_csv(path)


def test_corrupt_tenx_rows(tmp_path):
    path, _ = corrupted(tmp_path, "tenx_rows")
    table = read_csv(path)
    assert table.num_rows == 10 * CORRUPT_ROWS
    assert pc.count_distinct(table.column("customer_id")).as_py() == table.num_rows


@pytest.mark.parametrize("kind", ["truncated", "non_utf8", "header_only", "wrong_type", "missing_column"])
def test_corrupt_parquet(tmp_path, kind):
    path, clean = corrupted(tmp_path, kind, fmt="parquet")
    if kind == "truncated":
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(path)
        return
    table = pq.read_table(path)
    if kind == "non_utf8":
        assert changed_columns(clean, table) == ["region"]
        assert b"s\xfcd" in pc.cast(table.column("region"), pa.binary()).to_pylist()
        with pytest.raises(pa.ArrowInvalid, match="UTF8"):
            table.validate(full=True)
    elif kind == "header_only":
        assert table.schema.equals(churn.SCHEMA) and table.num_rows == 0
    elif kind == "wrong_type":
        assert table.schema.field("monthly_charges").type == pa.string()
    else:
        assert table.column_names == [n for n in churn.SCHEMA.names if n != "monthly_charges"]


def test_corrupt_jsonl(tmp_path):
    path, _ = corrupted(tmp_path / "utf8", "non_utf8", fmt="jsonl")
    assert b"s\xfcd" in path.read_bytes()
    path, _ = corrupted(tmp_path / "cut", "truncated", fmt="jsonl")
    lines = path.read_bytes().split(b"\n")
    json.loads(lines[0])
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[-1])


@pytest.mark.parametrize(
    ("corrupt", "fmt", "message"),
    [
        ({DAY + dt.timedelta(days=5): "empty"}, "csv", "outside the generated days"),
        ({DAY: "scrambled"}, "csv", "unknown corruption"),
        ({DAY: "header_only"}, "jsonl", "undefined for jsonl"),
    ],
)
def test_invalid_corruptions_raise(tmp_path, corrupt, fmt, message):
    with pytest.raises(ValueError, match=message):
        churn.write_days(tmp_path, DAY, 2, rows_per_day=100, fmt=fmt, corrupt=corrupt)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------- CLI


def test_cli_writes_the_days_and_reports_them(tmp_path, capsys):
    out = tmp_path / "landing"
    argv = [
        "--out", str(out), "--start", "2026-01-01", "--end", "2026-01-03", "--rows", "500",
        "--format", "parquet", "--drift-start", "2026-01-02", "--drift", "monthly_charges:shift=0.5",
        "--drift", "payment_method:new=crypto@0.2", "--corrupt", "2026-01-03:duplicate_keys",
    ]  # fmt: skip
    assert churn.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"2026-01-0{i}.parquet" for i in (1, 2, 3)]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and "CORRUPT=duplicate_keys" in printed[2]
    assert printed[-1].startswith("wrote 3 files,")
    assert "crypto" in pq.read_table(out / "2026-01-02.parquet").column("payment_method").to_pylist()
    assert "crypto" not in pq.read_table(out / "2026-01-01.parquet").column("payment_method").to_pylist()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "2", "--drift", "region:null"], "go together"),
        (["--days", "2", "--drift-start", "2026-01-01", "--drift", "region:nope"], "unknown kind"),
        (["--days", "2", "--corrupt", "2026-01-01:oops"], "unknown kind"),
        (["--days", "2", "--corrupt", "2026-03-01:empty"], "outside the generated days"),
        (["--end", "2025-12-01"], "before --start"),
    ],
)
def test_cli_rejects_invalid_options(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        churn.main(["--out", str(tmp_path), "--start", "2026-01-01", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
