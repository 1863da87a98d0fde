"""Seeded generator of a customer-churn landing dataset: one file per day, with drift and corruption.

Every day is a snapshot of customers (``customer_id`` unique within the day) whose features are
correlated the way real churn data is (long tenure -> two-year contracts and partners, fiber ->
higher charges and more tickets) and whose target ``churned`` (~20 %) comes from a logistic model:
short tenure, month-to-month contracts, electronic checks, high charges and many support tickets
raise the churn probability, so a classifier trained on one day reaches ROC AUC ~0.8 on another.

Determinism: each day draws from its own random streams seeded by ``(seed, date)`` (numpy
``SeedSequence`` with the date's ordinal as spawn key), so day D is the same whether it is generated
alone or inside a range, and the base columns, the row count, the drift and the corruption use
separate streams: switching drift on changes only the drifted columns, never the others.

File conventions (what an ingest must expect):

* ``<out>/<YYYY-MM-DD>.<csv|parquet|jsonl>``, written to a temporary name and renamed.
* CSV (pyarrow writer): header row, ``,`` separator, ``\\n`` line ends, strings quoted, a null is an
  empty unquoted field, booleans ``true``/``false``, dates ``YYYY-MM-DD``, timestamps
  ``YYYY-MM-DD HH:MM:SS.ffffffZ`` (UTC), floats in shortest round-trip form (``5`` for 5.0).
* JSONL: one object per line, keys in schema order, ``null`` for missing values, timestamps
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, dates ``"YYYY-MM-DD"``.
* Parquet: exactly :data:`SCHEMA`.

Drift (from a start date on) is applied to the finished day *after* the target has been drawn, so
exactly the named column moves and the relation feature -> target degrades the way it does when
the world changes under a deployed model. Corruption kinds produce one defect each (see
:data:`CORRUPTIONS`).

Run ``python -m include.example_data.churn --help`` from the project root.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from include.example_data.landing import FORMATS, as_date, day_span, landing_parser

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Mapping, Sequence

T = TypeVar("T")

# --------------------------------------------------------------------------------------- schema

KEY = "customer_id"
TIMESTAMP = "snapshot_ts"
TARGET = "churned"

SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("snapshot_ts", pa.timestamp("us", tz="UTC")),
        pa.field("signup_date", pa.date32()),
        pa.field("tenure_months", pa.int64()),
        pa.field("monthly_charges", pa.float64()),
        pa.field("total_charges", pa.float64()),
        pa.field("support_tickets", pa.int64()),
        pa.field("contract_type", pa.string()),
        pa.field("payment_method", pa.string()),
        pa.field("internet_service", pa.string()),
        pa.field("region", pa.string()),
        pa.field("has_partner", pa.bool_()),
        pa.field("paperless_billing", pa.bool_()),
        pa.field("churned", pa.int64()),
    ]
)

CATEGORIES: dict[str, tuple[str, ...]] = {
    "contract_type": ("month_to_month", "one_year", "two_year"),
    "payment_method": ("credit_card", "bank_transfer", "electronic_check", "mailed_check"),
    "internet_service": ("dsl", "fiber", "none"),
    "region": ("north", "south", "east", "west"),
}

# Numeric columns: (lower bound, upper bound or None, decimals or None for integers).
NUMERIC: dict[str, tuple[float, float | None, int | None]] = {
    "tenure_months": (0, 72, None),
    "monthly_charges": (0.0, None, 2),
    "total_charges": (0.0, None, 2),
    "support_tickets": (0, None, None),
}

FEATURES = tuple(name for name in SCHEMA.names if name not in (KEY, TIMESTAMP, TARGET))
CORRUPTIONS = (
    "empty",  # 0 bytes
    "header_only",  # the header (CSV) / schema (Parquet) without rows; undefined for JSONL
    "missing_column",  # monthly_charges dropped
    "extra_column",  # unexpected_col (int64) appended
    "wrong_type",  # ~5 % of monthly_charges are non-numeric strings ("unknown", "$64.85")
    "all_null",  # tenure_months entirely null
    "bad_target",  # ~1 % of churned are 2 or -1
    "duplicate_keys",  # ~2 % of rows repeated verbatim (so their customer_id appears twice)
    "non_utf8",  # ~1 % of region are the Latin-1 bytes b"s\xfcd"
    "truncated",  # the file cut in the middle of a row (Parquet: no footer, unreadable)
    "tenx_rows",  # ten times the day's rows (keys still unique)
)

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42
ROW_JITTER = 0.05  # day-to-day row count variation, +-5 %
MAX_ROWS = 100_000_000  # per generated day
BLOCK_ROWS = 131_072  # rows per random block: part of the data contract (changing it changes the data)
_WORKERS = max(1, min(8, os.cpu_count() or 1))
_SLICE_ROWS = 200_000  # rows rendered per CSV / JSONL piece (JSONL string offsets are 32-bit)

_ID_SPACE = 900_000_000  # customer_id = "C" + 9 digits, first digit 1-9
_DAYS_PER_MONTH = 30.4375
_US_PER_DAY = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)
_LATIN1_VALUE = "s\u00fcd"  # written as UTF-8 first, then its bytes are replaced by Latin-1
_STREAM_BASE, _STREAM_ROWS, _STREAM_DRIFT, _STREAM_CORRUPT = range(4)


def day_rng(seed: int, day: dt.date, stream: int, *key: int) -> np.random.Generator:
    """A generator determined only by ``(seed, day, stream, *key)``; different keys are independent."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    spawn_key = (day.toordinal(), stream, *key)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=spawn_key))


# ------------------------------------------------------------------------------------ generation


def _tenure_pmf() -> np.ndarray:
    """P(tenure = 0..72): U-shaped like real subscriber bases (many new, many long-time customers)."""
    x = (np.arange(73) + 0.5) / 73
    weights = x ** (0.75 - 1) * (1 - x) ** (0.85 - 1)
    weights[72] *= 1.6  # customers older than the 72-month cap pile up at the cap
    return weights / weights.sum()


def _contract_given_tenure() -> np.ndarray:
    """P(contract | tenure), shape (73, 3): long tenure -> one- and two-year contracts."""
    tenure = np.arange(73)
    weights = np.exp(np.stack([2.5 - 0.06 * tenure, np.zeros(73), -2.0 + 0.042 * tenure], axis=1))
    return weights / weights.sum(axis=1, keepdims=True)


_TENURE_PMF = _tenure_pmf()
_CONTRACT_GIVEN_TENURE = _contract_given_tenure()
# P(payment | contract): month-to-month customers pay by electronic check far more often.
_PAYMENT_GIVEN_CONTRACT = np.array(
    [[0.17, 0.17, 0.47, 0.19], [0.27, 0.27, 0.20, 0.26], [0.31, 0.31, 0.10, 0.28]]
)
_INTERNET_SHARES = np.array([[0.34, 0.44, 0.22]])
_REGION_SHARES = np.array([[0.27, 0.24, 0.26, 0.23]])


def _pick(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray | int = 0, n: int = 0) -> np.ndarray:
    """Sample a category index per row from ``probs[group[i]]`` by inverse CDF of one uniform.

    ``probs`` has shape (groups, k) with rows summing to 1; ``group`` holds each row's group (an
    int for a single group, then ``n`` gives the row count). Few categories: count the CDF steps
    below u (k - 1 vector comparisons); many: one ``searchsorted`` over all groups' CDFs, group j's
    shifted by j. Both give the same index for the same u.
    """
    groups, k = probs.shape
    cum = np.cumsum(probs, axis=1)
    u = rng.random(n if np.isscalar(group) else len(group))
    if k <= 8:
        code = np.zeros(len(u), np.int64)
        for j in range(k - 1):
            code += u >= (cum[:, j][group] if groups > 1 else cum[0, j])
        return code
    position = np.searchsorted((cum + np.arange(groups)[:, None]).ravel(), u + group, side="right")
    return np.clip(position - np.asarray(group) * k, 0, k - 1).astype(np.int64)


def _customer_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 9-digit numbers in random order: an affine bijection of a permutation."""
    a = int(rng.integers(1, _ID_SPACE))
    while math.gcd(a, _ID_SPACE) != 1:
        a += 1
    b = int(rng.integers(0, _ID_SPACE))
    return 100_000_000 + (a * rng.permutation(n).astype(np.int64) + b) % _ID_SPACE


def _customer_ids(numbers: np.ndarray) -> pa.Array:
    """The strings "C" + 9 digits, built as one fixed-width byte matrix a digit position at a time."""
    n = len(numbers)
    chars = np.empty((10, n), np.uint8)
    chars[0] = ord("C")
    rest = numbers
    for position in range(9, 0, -1):
        rest, digit = np.divmod(rest, 10)
        chars[position] = digit + ord("0")
    offsets = np.arange(0, 10 * n + 1, 10, dtype=np.int32)
    data = np.ascontiguousarray(chars.T)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw the feature columns as numpy arrays (categories as int codes into CATEGORIES).

    Missing values are expressed by the boolean arrays ``total_charges_null`` and
    ``paperless_billing_null``; ``days_since_signup`` is consistent with ``tenure_months``.
    """
    tenure = _pick(rng, _TENURE_PMF[None, :], n=n)
    # floor(days / 30.4375) == tenure exactly (30.4375 is a binary fraction, so no rounding surprises)
    days_since_signup = np.maximum(
        np.floor((tenure + rng.random(n)) * _DAYS_PER_MONTH), np.ceil(tenure * _DAYS_PER_MONTH)
    ).astype(np.int64)
    contract = _pick(rng, _CONTRACT_GIVEN_TENURE, tenure)
    internet = _pick(rng, _INTERNET_SHARES, n=n)
    fiber = internet == 1
    centre = np.array([55.0, 88.0, 21.0])[internet]
    spread = np.array([12.0, 12.0, 2.0])[internet]
    monthly = np.round(np.clip(centre + spread * rng.standard_normal(n), 18.0, 120.0), 2)
    price_history = np.clip(1.0 + 0.04 * rng.standard_normal(n), 0.85, 1.15)
    return {
        "days_since_signup": days_since_signup,
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": np.round(monthly * tenure * price_history, 2),
        "total_charges_null": rng.random(n) < 0.01,
        "support_tickets": rng.poisson(0.6 + 0.5 * fiber + 0.4 * (contract == 0)).astype(np.int64),
        "contract_type": contract,
        "payment_method": _pick(rng, _PAYMENT_GIVEN_CONTRACT, contract),
        "internet_service": internet,
        "region": _pick(rng, _REGION_SHARES, n=n),
        "has_partner": rng.random(n) < 0.3 + (0.4 / 72) * tenure,
        "paperless_billing": rng.random(n) < 0.5 + 0.2 * fiber,
        "paperless_billing_null": rng.random(n) < 0.03,
    }


def churn_logit(f: Mapping[str, np.ndarray]) -> np.ndarray:
    """The true log-odds of churn for feature arrays as returned by the generator (codes, not strings)."""
    contract, payment = f["contract_type"], f["payment_method"]
    paperless = f["paperless_billing"] & ~f["paperless_billing_null"]
    return (
        -1.55
        + 0.72 * (contract == 0)  # month_to_month
        - 0.8 * (contract == 2)  # two_year
        - 0.028 * f["tenure_months"]
        + 0.48 * (payment == 2)  # electronic_check
        + 0.016 * (f["monthly_charges"] - 65.0)
        + 0.24 * f["support_tickets"]
        + 0.24 * (f["internet_service"] == 1)  # fiber
        - 0.16 * f["has_partner"]
        + 0.16 * paperless
    )


def _block(rng: np.random.Generator, numbers: np.ndarray, ts_us: np.ndarray, day: dt.date) -> pa.Table:
    """One block of rows as a table of :data:`SCHEMA` (features and target drawn from ``rng``)."""
    n = len(numbers)
    f = _features(rng, n)
    churned = (rng.random(n) < 1.0 / (1.0 + np.exp(-churn_logit(f)))).astype(np.int64)
    day_number = (day - _EPOCH).days
    columns = {
        "customer_id": _customer_ids(numbers),
        "snapshot_ts": pa.array(ts_us, pa.int64()).cast(SCHEMA.field("snapshot_ts").type),
        "signup_date": pa.array((day_number - f["days_since_signup"]).astype(np.int32), pa.date32()),
        "tenure_months": pa.array(f["tenure_months"]),
        "monthly_charges": pa.array(f["monthly_charges"]),
        "total_charges": pa.array(f["total_charges"], mask=f["total_charges_null"]),
        "support_tickets": pa.array(f["support_tickets"]),
        **{name: pc.take(pa.array(values), pa.array(f[name])) for name, values in CATEGORIES.items()},
        "has_partner": pa.array(f["has_partner"]),
        "paperless_billing": pa.array(f["paperless_billing"], mask=f["paperless_billing_null"]),
        "churned": pa.array(churned),
    }
    return pa.Table.from_arrays([columns[name] for name in SCHEMA.names], schema=SCHEMA)


def _in_order(func: Callable[[int], T], count: int) -> Iterator[T]:
    """``func(0), func(1), ...`` computed on a thread pool (numpy and Arrow release the GIL), in order.

    At most two results per worker are pending, so memory stays bounded for large inputs.
    """
    if count <= 1 or _WORKERS == 1:
        yield from map(func, range(count))
        return
    with ThreadPoolExecutor(_WORKERS) as pool:
        pending = deque(pool.submit(func, i) for i in range(min(2 * _WORKERS, count)))
        submitted = len(pending)
        while pending:
            result = pending.popleft().result()
            if submitted < count:
                pending.append(pool.submit(func, submitted))
                submitted += 1
            yield result


def generate_day(
    day: dt.date | str, rows: int, seed: int = DEFAULT_SEED, drift: DriftPlan | None = None
) -> pa.Table:
    """One day's snapshot of exactly ``rows`` customers as a table of :data:`SCHEMA`.

    The same ``(day, rows, seed, drift)`` always gives an equal table. Rows are ordered by
    ``snapshot_ts``. Rows are drawn in blocks of :data:`BLOCK_ROWS`, each from its own seeded
    stream (so blocks can be drawn in parallel); keys and timestamps are drawn for the whole day.
    ``drift`` is applied only if the day is on or after its start date.
    """
    day = as_date(day)
    if not isinstance(rows, (int, np.integer)) or not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be an integer in 1..{MAX_ROWS:,}, not {rows!r}")
    rng = day_rng(seed, day, _STREAM_BASE)
    numbers = _customer_numbers(rng, rows)
    ts_us = (day - _EPOCH).days * _US_PER_DAY + np.sort(rng.integers(0, _US_PER_DAY, rows))

    def block(i: int) -> pa.Table:
        rows_i = slice(i * BLOCK_ROWS, (i + 1) * BLOCK_ROWS)
        return _block(day_rng(seed, day, _STREAM_BASE, i), numbers[rows_i], ts_us[rows_i], day)

    table = pa.concat_tables(_in_order(block, -(-rows // BLOCK_ROWS)))
    if drift is not None and drift.active_on(day):
        table = drift.apply(table, day_rng(seed, day, _STREAM_DRIFT))
    return table


def rows_for_day(day: dt.date, rows: int, seed: int, *, exact: bool = False) -> int:
    """The row count of ``day``: ``rows`` +-5 % (uniform, seeded per day) unless ``exact``."""
    if exact:
        return rows
    jitter = day_rng(seed, day, _STREAM_ROWS).uniform(-ROW_JITTER, ROW_JITTER)
    return max(1, round(rows * (1.0 + jitter)))


# ------------------------------------------------------------------------------------------ drift


def _numeric(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column as (float64 values with 0 where null, validity mask)."""
    col = table.column(column)
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    values = pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(np.float64)
    return values, valid


def _replace_numeric(table: pa.Table, column: str, values: np.ndarray, valid: np.ndarray) -> pa.Table:
    """Put ``values`` back into ``column``, clipped to its domain and rounded to its precision."""
    low, high, decimals = NUMERIC[column]
    values = np.clip(values, low, high)
    values = np.round(values) if decimals is None else np.round(values, decimals)
    arrow_type = SCHEMA.field(column).type
    array = pa.array(values.astype(arrow_type.to_pandas_dtype()), arrow_type, mask=~valid)
    return table.set_column(table.schema.get_field_index(column), column, array)


def _codes(table: pa.Table, column: str) -> tuple[np.ndarray, list[str]]:
    """A string column as (int32 codes, -1 for null; the list of distinct values)."""
    encoded = pc.dictionary_encode(table.column(column).combine_chunks())
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, encoded.dictionary.to_pylist()


def _replace_codes(table: pa.Table, column: str, codes: np.ndarray, values: Sequence[str]) -> pa.Table:
    """Put a column given as codes into ``values`` back into ``table`` (-1 -> null)."""
    array = pc.take(pa.array(list(values), pa.string()), pa.array(codes, mask=codes < 0))
    return table.set_column(table.schema.get_field_index(column), column, array)


@dataclasses.dataclass(frozen=True)
class Shift:
    """``COLUMN:shift=K``: add K standard deviations (of that day's column) to a numeric column."""

    column: str
    std: float

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        values, valid = _numeric(table, self.column)
        sd = float(values[valid].std()) if valid.any() else 0.0
        return _replace_numeric(table, self.column, values + self.std * sd, valid)


@dataclasses.dataclass(frozen=True)
class Scale:
    """``COLUMN:scale=F``: stretch a numeric column around its mean by F (F > 0)."""

    column: str
    factor: float

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        values, valid = _numeric(table, self.column)
        mean = float(values[valid].mean()) if valid.any() else 0.0
        return _replace_numeric(table, self.column, mean + (values - mean) * self.factor, valid)


@dataclasses.dataclass(frozen=True)
class Share:
    """``COLUMN:share=CATEGORY=P``: make CATEGORY's share of the non-null rows ~P.

    Moves as few rows as possible: only rows into CATEGORY (P up) or out of it into the other
    categories in proportion to their current shares (P down).
    """

    column: str
    category: str
    share: float

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        codes, values = _codes(table, self.column)
        if self.category not in values:
            values.append(self.category)
        target = values.index(self.category)
        valid = codes >= 0
        is_target = codes == target
        current = is_target.sum() / max(valid.sum(), 1)
        if self.share > current:
            move = valid & ~is_target & (rng.random(codes.size) < (self.share - current) / (1 - current))
            codes = np.where(move, target, codes)
        elif self.share < current:
            move = is_target & (rng.random(codes.size) < (current - self.share) / current)
            codes = codes.copy()
            codes[move] = _other_codes(rng, codes[valid & ~is_target], target, len(values), int(move.sum()))
        return _replace_codes(table, self.column, codes, values)


def _other_codes(rng: np.random.Generator, others: np.ndarray, target: int, k: int, size: int) -> np.ndarray:
    """``size`` codes != ``target`` drawn with the frequencies in ``others`` (uniform if none)."""
    counts = np.bincount(others, minlength=k).astype(np.float64)
    counts[target] = 0.0
    if counts.sum() == 0:
        counts = np.ones(k)
        counts[target] = 0.0
    return rng.choice(k, size=size, p=counts / counts.sum()).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class NewCategory:
    """``COLUMN:new=CATEGORY@P``: a category never seen before takes ~P of the non-null rows."""

    column: str
    category: str
    share: float

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        codes, values = _codes(table, self.column)
        values.append(self.category)
        move = (codes >= 0) & (rng.random(codes.size) < self.share)
        return _replace_codes(table, self.column, np.where(move, len(values) - 1, codes), values)


@dataclasses.dataclass(frozen=True)
class Nullify:
    """``COLUMN:null`` (all rows) or ``COLUMN:null=P`` (~P of the rows): the column turns null."""

    column: str
    share: float = 1.0

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        col = table.column(self.column)
        nulls = np.ones(len(col), bool) if self.share >= 1.0 else rng.random(len(col)) < self.share
        array = pc.if_else(pa.array(nulls), pa.nulls(len(col), col.type), col)
        return table.set_column(table.schema.get_field_index(self.column), self.column, array)


DriftChange = Shift | Scale | Share | NewCategory | Nullify

DRIFT_GRAMMAR = (
    "COLUMN:shift=K (numeric, K std units), COLUMN:scale=F (numeric, F > 0), "
    "COLUMN:share=CATEGORY=P (categorical, 0 <= P <= 1), COLUMN:new=CATEGORY@P (categorical, "
    "unseen CATEGORY, 0 < P <= 1), COLUMN:null or COLUMN:null=P (any feature, 0 < P <= 1)"
)


def _number(text: str, spec: str, low: float, high: float, *, low_open: bool = False) -> float:
    """A float in [low, high] (or (low, high] if ``low_open``), else a ValueError naming ``spec``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"drift spec {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"drift spec {spec!r}: {value} is outside {bracket}{low}, {high}]")
    return value


def parse_drift(spec: str) -> DriftChange:
    """Parse one drift spec (see :data:`DRIFT_GRAMMAR`); invalid specs raise a ValueError saying why."""
    column, sep, rest = spec.strip().partition(":")
    kind, _, arg = rest.partition("=")
    if not sep or not kind:
        raise ValueError(f"drift spec {spec!r} is not COLUMN:KIND[=ARG]; expected one of {DRIFT_GRAMMAR}")
    if column not in FEATURES:
        raise ValueError(f"drift spec {spec!r}: {column!r} is not a feature column ({', '.join(FEATURES)})")
    if kind in ("shift", "scale"):
        if column not in NUMERIC:
            raise ValueError(f"drift spec {spec!r}: {kind} needs a numeric column ({', '.join(NUMERIC)})")
        if kind == "shift":
            return Shift(column, _number(arg, spec, -math.inf, math.inf))
        return Scale(column, _number(arg, spec, 0.0, math.inf, low_open=True))
    if kind in ("share", "new"):
        if column not in CATEGORIES:
            raise ValueError(
                f"drift spec {spec!r}: {kind} needs a categorical column ({', '.join(CATEGORIES)})"
            )
        category, at, share = arg.rpartition("=" if kind == "share" else "@")
        if not at or not category:
            form = "CATEGORY=P" if kind == "share" else "CATEGORY@P"
            raise ValueError(f"drift spec {spec!r}: {kind} needs {form}")
        if kind == "share":
            if category not in CATEGORIES[column]:
                raise ValueError(f"drift spec {spec!r}: {category!r} is not one of {CATEGORIES[column]}")
            return Share(column, category, _number(share, spec, 0.0, 1.0))
        if category in CATEGORIES[column]:
            raise ValueError(f"drift spec {spec!r}: {category!r} is already a {column} category")
        if any(char in category for char in ',"\r\n'):
            raise ValueError(f"drift spec {spec!r}: a category may not contain a comma, quote or line end")
        return NewCategory(column, category, _number(share, spec, 0.0, 1.0, low_open=True))
    if kind == "null":
        return Nullify(column, _number(arg, spec, 0.0, 1.0, low_open=True) if arg else 1.0)
    raise ValueError(f"drift spec {spec!r}: unknown kind {kind!r}; expected one of {DRIFT_GRAMMAR}")


@dataclasses.dataclass(frozen=True)
class DriftPlan:
    """Changes applied, in order, to every day on or after ``start``."""

    start: dt.date
    changes: tuple[DriftChange, ...]

    @classmethod
    def parse(cls, start: dt.date | str, specs: Sequence[str]) -> DriftPlan:
        """Build a plan from spec strings such as ``monthly_charges:shift=0.5``."""
        if isinstance(specs, str):
            specs = [specs]
        if not specs:
            raise ValueError("a drift plan needs at least one drift spec")
        return cls(as_date(start), tuple(parse_drift(spec) for spec in specs))

    def active_on(self, day: dt.date) -> bool:
        """Whether the drift applies to ``day``."""
        return day >= self.start

    def apply(self, table: pa.Table, rng: np.random.Generator) -> pa.Table:
        """The table with every change applied in order (other columns untouched)."""
        for change in self.changes:
            table = change.apply(table, rng)
        return table


# ------------------------------------------------------------------------------------- corruption


def _sample_rows(rng: np.random.Generator, n: int, share: float, minimum: int = 1) -> np.ndarray:
    """Sorted distinct row indices: ``share`` of ``n`` rows, at least ``minimum`` (at most n)."""
    size = min(n, max(minimum, round(share * n)))
    return np.sort(rng.choice(n, size=size, replace=False))


def _set_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    """Replace a column by name, letting its type change."""
    return table.set_column(table.schema.get_field_index(name), name, array)


def _row_mask(rng: np.random.Generator, n: int, share: float, minimum: int = 1) -> np.ndarray:
    """A boolean mask of :func:`_sample_rows`."""
    mask = np.zeros(n, bool)
    mask[_sample_rows(rng, n, share, minimum)] = True
    return mask


def _wrong_type(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """monthly_charges as strings, ~5 % of them not numbers ("unknown" or "$12.34").

    "n/a", "NA", "null" or "" are avoided on purpose: pandas and pyarrow read them as missing
    values by default, so they would look like a null spike instead of a type defect.
    """
    text = pc.cast(table.column("monthly_charges"), pa.string())
    alternate = pa.array(np.arange(len(text)) % 2 == 0)
    bad = pc.if_else(alternate, "unknown", pc.binary_join_element_wise("$", text, ""))
    mask = pa.array(_row_mask(rng, len(text), 0.05))
    return _set_column(table, "monthly_charges", pc.if_else(mask, bad, text))


def _bad_target(table: pa.Table, rng: np.random.Generator) -> pa.Table:
    """~1 % of churned set to 2 or -1 (both appear)."""
    target = table.column("churned").to_numpy().copy()
    rows = _sample_rows(rng, target.size, 0.01, minimum=2)
    target[rows] = np.where(np.arange(rows.size) % 2 == 0, 2, -1)
    return _set_column(table, "churned", pa.array(target))


def _latin1_region(table: pa.Table, rng: np.random.Generator, fmt: str) -> pa.Table:
    """~1 % of region set to "süd"; Parquet gets the Latin-1 bytes now, text formats at write time."""
    mask = pa.array(_row_mask(rng, table.num_rows, 0.01))
    array = pc.if_else(mask, _LATIN1_VALUE, table.column("region")).combine_chunks()
    if fmt == "parquet":
        latin1 = pc.replace_substring(array.cast(pa.binary()), _LATIN1_VALUE.encode(), b"s\xfcd")
        array = latin1.view(pa.string())  # a view does not validate UTF-8, a cast would
    return _set_column(table, "region", array)


def corrupt_table(table: pa.Table, kind: str, rng: np.random.Generator, fmt: str) -> pa.Table:
    """The table with the table-level defect ``kind`` (byte-level kinds are left to the writer)."""
    n = table.num_rows
    if kind == "header_only":
        return table.slice(0, 0)
    if kind == "missing_column":
        return table.drop_columns(["monthly_charges"])
    if kind == "extra_column":
        return table.append_column("unexpected_col", pa.array(rng.integers(0, 100, n)))
    if kind == "wrong_type":
        return _wrong_type(table, rng)
    if kind == "all_null":
        return _set_column(table, "tenure_months", pa.nulls(n, pa.int64()))
    if kind == "bad_target":
        return _bad_target(table, rng)
    if kind == "duplicate_keys":
        return table.take(np.sort(np.concatenate([np.arange(n), _sample_rows(rng, n, 0.02)])))
    if kind == "non_utf8":
        return _latin1_region(table, rng, fmt)
    return table


# ---------------------------------------------------------------------------------------- writing


def _timestamp_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """UTC timestamps as "YYYY-MM-DD HH:MM:SS.ffffffZ" (Arrow's own rendering, ~7x faster than its
    time-zone-aware formatter, which dominates writing otherwise)."""
    return pc.binary_join_element_wise(
        pc.cast(column.cast(pa.timestamp(column.type.unit)), pa.string()), "Z", ""
    )


def _is_utc_timestamp(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.tz in ("UTC", "+00:00", "Z")


def _json_values(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """JSON text of every value of an Arrow column ("null" for nulls), vectorised."""
    kind = column.type
    if pa.types.is_string(kind):
        escaped = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', escaped, '"', "")
    elif _is_utc_timestamp(kind):
        text = pc.binary_join_element_wise('"', _timestamp_text(column), '"', "")
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        text = pc.binary_join_element_wise('"', pc.cast(column, pa.string()), '"', "")
    elif pa.types.is_boolean(kind):
        text = pc.if_else(column, "true", "false")
    elif pa.types.is_null(kind):
        text = pa.nulls(len(column), pa.string())
    else:
        text = pc.cast(column, pa.string())
    return pc.fill_null(text, "null")


def _concatenated(lines: pa.ChunkedArray | pa.Array) -> pa.Buffer:
    """The bytes of all values of a string array without nulls, back to back."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _jsonl_bytes(table: pa.Table) -> pa.Buffer:
    """JSON lines for ``table``: one object per row, keys in column order, each line ending in \\n."""
    parts: list[pa.ChunkedArray | str] = []
    for i, name in enumerate(table.column_names):
        parts += [("{" if i == 0 else ",") + f'"{name}":', _json_values(table.column(name))]
    return _concatenated(pc.binary_join_element_wise(*parts, "}\n", ""))


def _csv_bytes(table: pa.Table, header: bool) -> pa.Buffer:
    """CSV for ``table`` (see the module docstring for the dialect); UTC timestamps pre-rendered."""
    columns = [_timestamp_text(c) if _is_utc_timestamp(c.type) else c for c in table.columns]
    sink = pa.BufferOutputStream()
    options = pa_csv.WriteOptions(include_header=header, quoting_style="none", batch_size=_SLICE_ROWS)
    pa_csv.write_csv(pa.table(columns, names=table.column_names), sink, options)
    return sink.getvalue()


def _write_slices(table: pa.Table, path: Path, render: Callable[[pa.Table, bool], pa.Buffer]) -> None:
    """Write ``render(slice, is_first)`` for consecutive row slices, rendered in parallel, in order."""
    count = max(1, -(-table.num_rows // _SLICE_ROWS))
    rendered = _in_order(lambda i: render(table.slice(i * _SLICE_ROWS, _SLICE_ROWS), i == 0), count)
    with open(path, "wb") as handle:
        for buffer in rendered:
            handle.write(buffer)


def _write_format(table: pa.Table, path: Path, fmt: str) -> None:
    """Serialise ``table`` to ``path`` in ``fmt`` (no atomicity; see :func:`write_table`)."""
    if fmt == "csv":
        _write_slices(table, path, _csv_bytes)
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "jsonl":
        _write_slices(table, path, lambda part, first: _jsonl_bytes(part))
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _truncate(path: Path) -> None:
    """Cut the file in the middle, never right after a line end (so the last row is partial)."""
    size = path.stat().st_size
    cut = size // 2
    with open(path, "rb") as handle:
        handle.seek(max(cut - 1, 0))
        if handle.read(1) == b"\n":
            cut += 1
    os.truncate(path, cut)


def _latin1_bytes(path: Path) -> None:
    """Replace the UTF-8 placeholder "süd" by its Latin-1 bytes in a text file."""
    path.write_bytes(path.read_bytes().replace(_LATIN1_VALUE.encode(), b"s\xfcd"))


def write_table(table: pa.Table, path: Path, fmt: str, corruption: str | None = None) -> Path:
    """Write ``table`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``corruption`` applies the byte-level defects (``empty``, ``truncated``, ``non_utf8`` for text
    formats); table-level defects must already be in ``table`` (see :func:`corrupt_table`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if corruption == "empty":
            tmp.write_bytes(b"")
        else:
            _write_format(table, tmp, fmt)
        if corruption == "truncated":
            _truncate(tmp)
        elif corruption == "non_utf8" and fmt != "parquet":
            _latin1_bytes(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclasses.dataclass(frozen=True)
class WrittenFile:
    """What :func:`write_days` wrote for one day (``rows``: rows serialised, 0 for ``empty``)."""

    day: dt.date
    path: Path
    rows: int
    bytes: int
    seconds: float
    corruption: str | None = None


def parse_corruption(spec: str) -> tuple[dt.date, str]:
    """Parse ``YYYY-MM-DD:KIND`` into (date, kind); unknown kinds raise a ValueError."""
    day, sep, kind = spec.partition(":")
    if not sep:
        raise ValueError(f"corruption {spec!r} is not YYYY-MM-DD:KIND")
    if kind not in CORRUPTIONS:
        raise ValueError(
            f"corruption {spec!r}: unknown kind {kind!r}; expected one of {', '.join(CORRUPTIONS)}"
        )
    return as_date(day), kind


def _check_corruptions(
    corrupt: Mapping[dt.date | str, str] | None, dates: Sequence[dt.date], fmt: str
) -> dict[dt.date, str]:
    """Validate a {day: kind} mapping against the generated days and the format."""
    checked: dict[dt.date, str] = {}
    for day, kind in (corrupt or {}).items():
        day = as_date(day)
        if kind not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {kind!r}; expected one of {', '.join(CORRUPTIONS)}")
        if day not in dates:
            raise ValueError(f"corruption day {day} is outside the generated days {dates[0]}..{dates[-1]}")
        if kind == "header_only" and fmt == "jsonl":
            raise ValueError("header_only is undefined for jsonl (no header); use 'empty'")
        checked[day] = kind
    return checked


def write_days(
    out_dir: Path | str,
    start: dt.date | str,
    days: int,
    *,
    rows_per_day: int = DEFAULT_ROWS,
    fmt: str = "csv",
    seed: int = DEFAULT_SEED,
    drift: DriftPlan | None = None,
    corrupt: Mapping[dt.date | str, str] | None = None,
    exact_rows: bool = False,
    on_file: Callable[[WrittenFile], None] | None = None,
) -> list[Path]:
    """Write ``days`` daily files ``<out_dir>/<YYYY-MM-DD>.<fmt>`` from ``start`` on; return their paths.

    Rows per day vary by +-5 % around ``rows_per_day`` unless ``exact_rows``. ``corrupt`` maps days
    to one of :data:`CORRUPTIONS`. ``on_file`` is called after each file with what was written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    start = as_date(start)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    corruptions = _check_corruptions(corrupt, dates, fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in dates:
        began = time.perf_counter()
        kind = corruptions.get(day)
        rows = rows_for_day(day, rows_per_day, seed, exact=exact_rows) * (10 if kind == "tenx_rows" else 1)
        table = generate_day(day, rows, seed, drift)
        if kind is not None:
            table = corrupt_table(table, kind, day_rng(seed, day, _STREAM_CORRUPT), fmt)
        path = write_table(table, out / f"{day.isoformat()}.{fmt}", fmt, kind)
        paths.append(path)
        if on_file is not None:
            rows_written = 0 if kind == "empty" else table.num_rows
            seconds = time.perf_counter() - began
            on_file(WrittenFile(day, path, rows_written, path.stat().st_size, seconds, kind))
    return paths


# -------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = landing_parser(
        prog="python -m include.example_data.churn",
        description="Write one synthetic customer-churn landing file per day: <out>/<YYYY-MM-DD>.<format>.",
        epilog=f"Drift specs: {DRIFT_GRAMMAR}. Corruption kinds: {', '.join(CORRUPTIONS)}.",
        default_seed=DEFAULT_SEED,
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help=f"rows per day (default {DEFAULT_ROWS})"
    )
    parser.add_argument("--exact-rows", action="store_true", help="no +-5%% day-to-day row variation")
    parser.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="SPEC",
        help="drift spec, repeatable (needs --drift-start)",
    )
    parser.add_argument(
        "--corrupt",
        action="append",
        default=[],
        metavar="DAY:KIND",
        help="corrupt one day's file, repeatable",
    )
    return parser


def _options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict:
    """Parse and validate the command line into :func:`write_days` keyword arguments."""
    args = parser.parse_args(argv)
    try:
        start, days = day_span(args)
        drift = DriftPlan.parse(args.drift_start, args.drift) if args.drift else None
        corrupt: dict[dt.date, str] = {}
        for spec in args.corrupt:
            day, kind = parse_corruption(spec)
            if day in corrupt:
                raise ValueError(f"--corrupt: {day} given twice")
            corrupt[day] = kind
        if args.rows < 1:
            raise ValueError("--rows must be at least 1")
    except ValueError as err:
        parser.error(str(err))
    return dict(
        out_dir=args.out, start=start, days=days, rows_per_day=args.rows, fmt=args.fmt,
        seed=args.seed, drift=drift, corrupt=corrupt, exact_rows=args.exact_rows,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: write the files and print one line per file plus a total."""
    parser = _parser()
    options = _options(parser, argv)
    written: list[WrittenFile] = []

    def report(item: WrittenFile) -> None:
        written.append(item)
        note = f"  CORRUPT={item.corruption}" if item.corruption else ""
        print(f"{item.path}  rows={item.rows:,}  bytes={item.bytes:,}  {item.seconds:.2f}s{note}", flush=True)

    began = time.perf_counter()
    try:
        write_days(**options, on_file=report)
    except ValueError as err:
        parser.error(str(err))
    total_rows = sum(item.rows for item in written)
    print(f"wrote {len(written)} files, {total_rows:,} rows in {time.perf_counter() - began:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
