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

from dibao.normalise.text import clean_codes, strip_invisible, to_halfwidth
from dibao.schema import Field, FieldType


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


# Money spellings real exports use, besides plain "1234.5": ￥1200, ¥1,200.00, RMB 1200, 1200元, 1.2万(元),
# full-width digits, thousands separators, spaces and invisible marks anywhere, an Excel apostrophe in front.
_INVISIBLE = r"[\p{Cc}\p{Cf}\p{Z}]"
_LEADING_APOSTROPHES = r"^['’‘`]+"
_CURRENCY_BEFORE = r"(?i)^([+-]?)(?:RMB|CNY|人民币|[¥￥])"
_YUAN_AFTER = r"(?:元整?|圆)$"
_NUMBER_SPELLING = (r"^(?<sign>[+-]?)(?<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?<frac>[0-9]*))?"
                    r"(?:[eE](?<exp>[+-]?[0-9]{1,3}))?(?<wan>万)?$")
_ZEROS = "0" * 64  # the longest run of zeros a decimal point may be moved across
_FEN = pl.Decimal(18, 2)  # the type of every amount: yuan to the fen, exact (up to 10^16 yuan)


def _clean_number_text(text: pl.Series) -> pl.Series:
    """Any accepted spelling of a number → its plain decimal text (``-1234.5``, ``12000``), exactly; null if none.

    The decimal point is moved in the text, not by arithmetic, so ``1.2万`` is the text ``12000`` and ``1e-3``
    is ``0.001``: nothing goes through a float. Commas are accepted only as thousands separators (``1,5`` is
    not a number: it could mean 1.5).
    """
    cleaned = (to_halfwidth(pl.col("t")).str.replace_all(_INVISIBLE, "").str.replace(_LEADING_APOSTROPHES, "")
               .str.replace(_CURRENCY_BEFORE, "${1}").str.replace(_YUAN_AFTER, ""))
    parts = pl.DataFrame({"t": text}, schema={"t": pl.String}).select(
        cleaned.str.extract_groups(_NUMBER_SPELLING).alias("p")).unnest("p")
    whole = pl.col("int").fill_null("").str.replace_all(",", "", literal=True)
    digits = whole + pl.col("frac").fill_null("")
    n = digits.str.len_chars().cast(pl.Int32)
    shift = pl.col("exp").cast(pl.Int32).fill_null(0) + pl.when(pl.col("wan").is_not_null()).then(4).otherwise(0)
    point = whole.str.len_chars().cast(pl.Int32) + shift  # digits before the decimal point, once moved

    def zeros(k: pl.Expr) -> pl.Expr:
        return pl.lit(_ZEROS).str.slice(0, k.clip(0, len(_ZEROS)))

    body = (pl.when(point <= 0).then(pl.lit("0.") + zeros(-point) + digits)
            .when(point < n).then(digits.str.slice(0, point.clip(0)) + pl.lit(".") + digits.str.slice(point.clip(0)))
            .otherwise(digits + zeros(point - n)))
    valid = pl.col("sign").is_not_null() & (n > 0) & (-point <= len(_ZEROS)) & (point - n <= len(_ZEROS))
    sign = pl.when(pl.col("sign") == "-").then(pl.lit("-")).otherwise(pl.lit(""))
    return parts.select(pl.when(valid).then(sign + body).alias("t")).to_series()


def parse_number(text: pl.Series) -> pl.Series:
    """Float64, null where not a number (NaN and infinity are not numbers). For counts and years; amounts use
    ``parse_money``, which is exact."""
    value = _fast_then_slow(text, lambda s: s.cast(pl.Float64, strict=False),
                            lambda s: _clean_number_text(s).cast(pl.Float64, strict=False))
    return pl.select(pl.when(pl.lit(value).is_finite()).then(pl.lit(value))).to_series()


def _money_fast(text: pl.Series) -> pl.Series:
    """One cast of the whole column, kept where it is exact: a value whose third decimal is 0 is within 0.0005 of
    its fen, so rounding half-up cannot move it; "12.345" (and "1.2345e1") is left to ``_money_slow``."""
    milli = text.cast(pl.Decimal(18, 3), strict=False)  # the cast itself rounds half-to-even: not trusted past 3
    on_fen = pl.lit(milli).to_physical().cast(pl.Int64) % 10 == 0
    return pl.select(pl.when(on_fen).then(pl.lit(milli).cast(_FEN))).to_series()


def _money_slow(text: pl.Series) -> pl.Series:
    """The forgiving spellings, rounded half-up to the fen exactly: only the first three decimals decide it, so
    the plain text is cut after them before one exact cast and one rounding (half away from zero)."""
    plain = pl.lit(_clean_number_text(text)).str.replace(r"(\.[0-9]{3})[0-9]+$", "${1}")
    return pl.select(plain.cast(pl.Decimal(38, 3), strict=False).round(2, mode="half_away_from_zero")
                     .cast(_FEN, strict=False)).to_series()


def parse_money(text: pl.Series) -> Parsed:
    """Amounts as exact ``Decimal(18, 2)`` yuan, rounded half-up to the fen (``12.345`` → 12.35); a negative amount
    (below zero once rounded) is a fault, as is anything that is not a number."""
    value = _fast_then_slow(text, _money_fast, _money_slow)
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
    """Six digits, once the cell is cleaned like every code (``'340421``, ``340421.0``, invisible marks)."""
    def six_digits(s: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(s).str.contains(r"^[0-9]{6}$")).then(pl.lit(s))).to_series()

    value = _fast_then_slow(text, six_digits, lambda s: six_digits(clean_codes(s)))
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
    elif t is FieldType.CODE:  # household numbers: cleaned like every code; a cell of only invisible marks is blank
        value, faults = clean_codes(text), pl.repeat(None, len(text), dtype=pl.String, eager=True)
    elif t is FieldType.ID_NUMBER:  # kept as written (stripped); cleaned and checked into derived columns later
        value, faults = text, pl.repeat(None, len(text), dtype=pl.String, eager=True)
    elif t is FieldType.NAME:  # control and format characters (NUL, bidi marks) removed; keys derived later
        value, faults = strip_invisible(text), pl.repeat(None, len(text), dtype=pl.String, eager=True)
    else:  # TEXT: kept as written (stripped)
        value, faults = text, pl.repeat(None, len(text), dtype=pl.String, eager=True)
    if f.required:
        blank = value.is_null() if t in (FieldType.CODE, FieldType.NAME) else text.is_null()
        faults = pl.select(pl.when(pl.lit(blank)).then(pl.lit(RowFault.BLANK_REQUIRED.value))
                           .otherwise(pl.lit(faults))).to_series()
    return value.alias(f.name), faults.alias(f"__e_{f.name}")
