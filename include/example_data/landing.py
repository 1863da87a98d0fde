"""What the example generators share: dates from the command line and its common options.

Each generator (``churn``, ``bike_rentals``) writes one landing file per day; their command lines
start alike (where, from when, how long, format, seed, drift start) and add their own knobs.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

FORMATS = ("csv", "parquet", "jsonl")


def as_date(value: dt.date | str) -> dt.date:
    """A ``datetime.date`` from a date or an ISO ``YYYY-MM-DD`` string (ValueError otherwise)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def landing_parser(*, prog: str, description: str, epilog: str, default_seed: int) -> argparse.ArgumentParser:
    """A parser with the options every generator has: --out, --start, --days | --end, --format,
    --seed, --drift-start. The generator adds its own (rows, drift specs, ...)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    span = parser.add_mutually_exclusive_group(required=True)
    span.add_argument("--days", type=int, help="number of days")
    span.add_argument("--end", help="last day (inclusive), YYYY-MM-DD")
    parser.add_argument(
        "--format", choices=FORMATS, default="csv", dest="fmt", help="file format (default csv)"
    )
    parser.add_argument(
        "--seed", type=int, default=default_seed, help=f"random seed (default {default_seed})"
    )
    parser.add_argument("--drift-start", help="first drifted day, YYYY-MM-DD (needs --drift)")
    return parser


def day_span(args: argparse.Namespace) -> tuple[dt.date, int]:
    """The first day and the number of days the command line asks for (ValueError when empty), and
    a check that --drift and --drift-start come together."""
    start = as_date(args.start)
    days = args.days if args.end is None else (as_date(args.end) - start).days + 1
    if days < 1:
        raise ValueError("--end is before --start" if args.end else "--days must be at least 1")
    if bool(args.drift) != bool(args.drift_start):
        raise ValueError("--drift and --drift-start go together")
    return start, days
