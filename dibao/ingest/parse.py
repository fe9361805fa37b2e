"""Parsing one column of text into its contract type, with the fault of each row that does not parse.

Speed comes from doing the cheap thing first: nearly every value in a real export is already clean ("1234.5",
"2024-01-02", "340402"), so each parser tries one plain cast on the whole column and runs the forgiving clean-up
(full-width forms, thousands separators, 元, other date spellings, value aliases) only on the rows that failed,
scattering the results back. Faults are stable codes (``RowFault``); their words live in ``validate.REASONS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum

import polars as pl

from dibao.schema import Field, FieldType
from dibao.text import to_halfwidth


class RowFault(StrEnum):
    """Why a row was rejected: stable codes."""

    BLANK_REQUIRED = "blank_required"
    BAD_DATE = "bad_date"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    NOT_A_NUMBER = "not_a_number"
    NEGATIVE_AMOUNT = "negative_amount"
    NOT_WHOLE_NUMBER = "not_whole_number"
    BAD_YEAR = "bad_year"
    BAD_YES_NO = "bad_yes_no"
    BAD_CATEGORY = "bad_category"
    BAD_AREA_CODE = "bad_area_code"


_EXCEL_EPOCH = dt.date(1899, 12, 30)
_DATE_SEPARATORS = (["/", ".", "年", "月", "日"], ["-", "-", "-", "-", ""])
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f")
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2100, 12, 31)

Parsed = tuple[pl.Series, pl.Series]  # (typed values, fault codes or null)


def _fast_then_slow(text: pl.Series, fast: Callable[[pl.Series], pl.Series],
                    slow: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``fast`` on the whole column; ``slow`` only where fast gave null for a non-blank value."""
    value = fast(text)
    retry = (value.is_null() & text.is_not_null()).arg_true()
    if retry.len():
        value = value.scatter(retry, slow(text.gather(retry)).cast(value.dtype))
    return value


def _faults(text: pl.Series, value: pl.Series, rules: list[tuple[pl.Expr, RowFault]]) -> pl.Series:
    """The first fault whose condition holds, per row; conditions read columns ``t`` (text) and ``v`` (value)."""
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, fault in reversed(rules):
        expr = pl.when(condition).then(pl.lit(fault.value)).otherwise(expr)
    return pl.DataFrame({"t": text, "v": value}).select(expr.alias("fault")).to_series()


def _clean_number_text(text: pl.Series) -> pl.Series:
    return pl.select(to_halfwidth(pl.lit(text)).str.replace_all(r"[,，\s]", "").str.strip_suffix("元")).to_series()


def parse_number(text: pl.Series) -> pl.Series:
    """Float64, null where not a number (NaN and infinity are not amounts)."""
    value = _fast_then_slow(text, lambda s: s.cast(pl.Float64, strict=False),
                            lambda s: _clean_number_text(s).cast(pl.Float64, strict=False))
    return pl.select(pl.when(pl.lit(value).is_finite()).then(pl.lit(value))).to_series()


def parse_money(text: pl.Series) -> Parsed:
    value = parse_number(text)
    return value, _faults(text, value, [
        (pl.col("t").is_not_null() & pl.col("v").is_null(), RowFault.NOT_A_NUMBER),
        (pl.col("v") < 0, RowFault.NEGATIVE_AMOUNT),
    ])


def _whole(text: pl.Series, fault: RowFault, low: float, high: float, dtype: pl.DataType) -> Parsed:
    number = _fast_then_slow(text, lambda s: s.cast(pl.Int64, strict=False).cast(pl.Float64),
                             lambda s: parse_number(s))
    ok = pl.col("v").is_between(low, high) & (pl.col("v") == pl.col("v").floor())
    faults = _faults(text, number, [(pl.col("t").is_not_null() & ~ok.fill_null(False), fault)])
    value = pl.select(pl.when(faults.is_null()).then(pl.lit(number))).to_series().cast(dtype)
    return value, faults


def _parse_date_slow(text: pl.Series) -> pl.Series:
    s = to_halfwidth(pl.lit(text)).str.replace_many(*_DATE_SEPARATORS)
    serial = s.str.extract(r"^([0-9]{5})(?:\.0+)?$", 1).cast(pl.Int64, strict=False)
    return pl.select(pl.coalesce(
        *[s.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS],
        pl.lit(_EXCEL_EPOCH) + pl.duration(days=serial),  # a date Excel exported as its serial number
    )).to_series()


def parse_date(text: pl.Series) -> Parsed:
    value = _fast_then_slow(text, lambda s: s.str.to_date("%Y-%m-%d", strict=False), _parse_date_slow)
    return value, _faults(text, value, [
        (pl.col("t").is_not_null() & pl.col("v").is_null(), RowFault.BAD_DATE),
        (~pl.col("v").is_between(EARLIEST, LATEST), RowFault.DATE_OUT_OF_RANGE),
    ])


def _closed_list(text: pl.Series, mapping: dict[str, str], fault: RowFault) -> Parsed:
    def lookup(s: pl.Series) -> pl.Series:
        return s.replace_strict(mapping, default=None, return_dtype=pl.String)

    value = _fast_then_slow(
        text, lookup,
        lambda s: lookup(pl.select(to_halfwidth(pl.lit(s)).str.replace_all(r"\s", "")).to_series()))
    return value, _faults(text, value, [(pl.col("t").is_not_null() & pl.col("v").is_null(), fault)])


def parse_area_code(text: pl.Series) -> Parsed:
    def six_digits(s: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(s).str.contains(r"^[0-9]{6}$")).then(pl.lit(s))).to_series()

    value = _fast_then_slow(
        text, six_digits,
        lambda s: six_digits(pl.select(to_halfwidth(pl.lit(s)).str.replace_all(r"\s", "")).to_series()))
    return value, _faults(text, value, [(pl.col("t").is_not_null() & pl.col("v").is_null(), RowFault.BAD_AREA_CODE)])


def parse_field(f: Field, text: pl.Series, value_aliases: dict[str, dict[str, str]]) -> Parsed:
    """(typed values, fault codes) for one field; a blank required field is a fault of its own."""
    t = f.type
    if t is FieldType.DATE:
        value, faults = parse_date(text)
    elif t is FieldType.MONEY:
        value, faults = parse_money(text)
    elif t is FieldType.COUNT:
        value, faults = _whole(text, RowFault.NOT_WHOLE_NUMBER, 0, 2**62, pl.Int64())
    elif t is FieldType.YEAR:
        value, faults = _whole(text, RowFault.BAD_YEAR, 1900, 2100, pl.Int32())
    elif t is FieldType.YES_NO:
        word, faults = _closed_list(text, value_aliases.get("yes_no", {"是": "是", "否": "否"}), RowFault.BAD_YES_NO)
        value = word == "是"
    elif t is FieldType.CATEGORY:
        mapping = {c: c for c in f.choices} | value_aliases.get(f.name, {})
        value, faults = _closed_list(text, mapping, RowFault.BAD_CATEGORY)
    elif t is FieldType.AREA_CODE:
        value, faults = parse_area_code(text)
    else:  # TEXT, NAME, ID_NUMBER: kept as written (stripped); IDs and names get derived columns later
        value, faults = text, pl.repeat(None, len(text), dtype=pl.String, eager=True)
    if f.required:
        faults = pl.select(pl.when(pl.lit(text).is_null()).then(pl.lit(RowFault.BLANK_REQUIRED.value))
                           .otherwise(pl.lit(faults))).to_series()
    return value.alias(f.name), faults.alias(f"__e_{f.name}")
