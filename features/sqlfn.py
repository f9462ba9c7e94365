"""The one place that writes date arithmetic for feature SQL.

Feature SQL is generated in DuckDB's dialect and transpiled with sqlglot (Spark for national
deployments). Date arithmetic differs most between engines, so every definition goes through
these helpers, which use only constructs sqlglot transpiles faithfully: `EXTRACT`, interval
subtraction, plain integer arithmetic.
"""

from __future__ import annotations


def months_before(date_sql: str, months: int) -> str:
    """`date_sql` minus a whole number of calendar months."""
    return f"({date_sql} - INTERVAL {int(months)} MONTH)"


def month_index(date_sql: str) -> str:
    """Months since year 0: differences give calendar-month distances."""
    return f"(EXTRACT(YEAR FROM {date_sql}) * 12 + EXTRACT(MONTH FROM {date_sql}))"


def month_diff(start_sql: str, end_sql: str) -> str:
    """Calendar months from `start_sql` to `end_sql` (same month = 0)."""
    return f"({month_index(end_sql)} - {month_index(start_sql)})"


def _ymd(date_sql: str) -> str:
    return (f"(EXTRACT(YEAR FROM {date_sql}) * 10000 + EXTRACT(MONTH FROM {date_sql}) * 100 "
            f"+ EXTRACT(DAY FROM {date_sql}))")


def age_years(birth_sql: str, at_sql: str) -> str:
    """Completed years of age at `at_sql` (birthdays counted exactly, no 365-day rounding)."""
    return f"CAST(FLOOR(({_ymd(at_sql)} - {_ymd(birth_sql)}) / 10000) AS INTEGER)"


def within(col_sql: str, window: int | tuple[int, int]) -> str:
    """`col` in the look-back window ending at the as-of date: (T - w months, T], or for a
    pair (a, b) the earlier window (T - a months, T - b months].

    Emits `{T}` / `{T-n}` placeholders: the compiler binds them to the as-of date and to
    boundary dates computed once per as-of date (not per row)."""
    start, end = (window, 0) if isinstance(window, int) else window
    upper = "{T}" if end == 0 else f"{{T-{int(end)}}}"
    return f"({col_sql} > {{T-{int(start)}}} AND {col_sql} <= {upper})"


def safe_ratio(num_sql: str, den_sql: str) -> str:
    """num / den, NULL when the denominator is zero or NULL (missing rule decides the rest)."""
    return f"(CAST({num_sql} AS DOUBLE) / NULLIF({den_sql}, 0))"
