"""Resident identity numbers (公民身份号码, GB 11643-1999), normalised and checked in bulk.

Everything here is a Polars expression so that millions of IDs are checked in one vectorised pass; the scalar
helpers (`check_id`) run the very same expressions on a one-row frame, so there is exactly one implementation.

An ID is never silently dropped: each gets a status, and an invalid one keeps its cleaned text so the linkage
stage can try to repair it (a bad check digit, one wrong digit, two swapped neighbours).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import polars as pl

from dibao.text import to_halfwidth

# ISO 7064 MOD 11-2: weight of position i (0-based, left to right over the first 17 digits) is 2^(17-i) mod 11.
WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))
# Check character for (weighted sum mod 11).
CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = dt.date(1900, 1, 1)


class IdStatus(StrEnum):
    """What we know about one ID number after normalisation."""

    VALID = "valid"  # 18 digits, real birth date, check digit agrees
    UPGRADED = "upgraded"  # an old 15-digit ID, converted to 18 (century 19 + computed check digit)
    BAD_CHECK_DIGIT = "bad_check_digit"  # well-formed, real date, but the check digit disagrees: a typo somewhere
    BAD_DATE = "bad_date"  # the birth-date digits are not a real date between 1900 and today
    BAD_LENGTH = "bad_length"  # neither 15 nor 18 characters
    BAD_FORMAT = "bad_format"  # right length but characters other than digits (and a final X)
    BLANK = "blank"  # no ID given (infants, not yet issued)


USABLE_STATUSES = (IdStatus.VALID, IdStatus.UPGRADED)

STATUS_LABELS_ZH: dict[IdStatus, str] = {
    IdStatus.VALID: "有效",
    IdStatus.UPGRADED: "15位升18位",
    IdStatus.BAD_CHECK_DIGIT: "校验位错误",
    IdStatus.BAD_DATE: "出生日期无效",
    IdStatus.BAD_LENGTH: "位数错误",
    IdStatus.BAD_FORMAT: "含非法字符",
    IdStatus.BLANK: "空白",
}

# Separators people type inside IDs: spaces (incl. ideographic), hyphens, dots, apostrophes Excel adds.
_NOISE_CHARS = r"[\s\-\.'’‘`\u00a0]"


def clean_id_expr(raw: pl.Expr) -> pl.Expr:
    """Full-width → ASCII (NFKC), separators removed, lower-case x → X. Blank → null."""
    cleaned = to_halfwidth(raw.cast(pl.String)).str.replace_all(_NOISE_CHARS, "").str.to_uppercase()
    return pl.when(cleaned.str.len_chars() == 0).then(None).otherwise(cleaned)


def id_prefix(column: str) -> str:
    """Prefix of the derived columns of an ID field: ``id_number`` → ``id_``, ``staff_id_number`` → ``staff_id_``."""
    return column.removesuffix("number") if column.endswith("_number") else f"{column}_"


def _check_char_expr(first17: pl.Expr) -> pl.Expr:
    """The MOD 11-2 check character for a 17-digit string expression (null if not 17 digits).

    The 17 digits are read as one integer and taken apart with integer arithmetic: far cheaper than 17 slices.
    """
    number = first17.cast(pl.Int64, strict=False)
    total = pl.sum_horizontal([(number // 10 ** (16 - i)) % 10 * w for i, w in enumerate(WEIGHTS)])
    remainder = (total % 11).cast(pl.UInt32)
    return remainder.replace_strict(list(range(11)), list(CHECK_CHARS), return_dtype=pl.String, default=None)


def _birth_date_expr(yyyymmdd: pl.Expr, today: dt.date) -> pl.Expr:
    parsed = yyyymmdd.str.to_date("%Y%m%d", strict=False)
    return pl.when((parsed >= EARLIEST_BIRTH) & (parsed <= today)).then(parsed).otherwise(None)


def normalise_ids(frame: pl.DataFrame | pl.LazyFrame, column: str, *, prefix: str | None = None,
                  today: dt.date | None = None) -> pl.DataFrame | pl.LazyFrame:
    """Add normalised-ID columns for ``column``.

    Adds ``{prefix}norm`` (the canonical 18-character ID when usable, else the cleaned text, null if blank),
    ``{prefix}status``, ``{prefix}birth_date``, ``{prefix}sex`` (男/女) and ``{prefix}region`` (first six digits).
    ``prefix`` defaults to the column name without its trailing ``number`` (``id_number`` → ``id_``).
    The original column is left untouched.
    """
    p = id_prefix(column) if prefix is None else prefix
    today = today or dt.date.today()
    cleaned = clean_id_expr(pl.col(column)).alias("__clean")
    length = pl.col("__clean").str.len_chars()
    is18 = (length == 18) & pl.col("__clean").str.contains(r"^\d{17}[\dX]$")
    is15 = (length == 15) & pl.col("__clean").str.contains(r"^\d{15}$")
    upgraded17 = pl.col("__clean").str.slice(0, 6) + pl.lit("19") + pl.col("__clean").str.slice(6, 9)
    first17 = pl.when(is18).then(pl.col("__clean").str.slice(0, 17)).when(is15).then(upgraded17).alias("__first17")

    birth = _birth_date_expr(pl.col("__first17").str.slice(6, 8), today).alias("__birth")
    check = _check_char_expr(pl.col("__first17")).alias("__check")
    status = (
        pl.when(pl.col("__clean").is_null()).then(pl.lit(IdStatus.BLANK.value))
        .when(~pl.col("__clean").str.len_chars().is_in([15, 18])).then(pl.lit(IdStatus.BAD_LENGTH.value))
        .when(pl.col("__first17").is_null()).then(pl.lit(IdStatus.BAD_FORMAT.value))
        .when(pl.col("__birth").is_null()).then(pl.lit(IdStatus.BAD_DATE.value))
        .when(is15).then(pl.lit(IdStatus.UPGRADED.value))
        .when(pl.col("__clean").str.slice(17, 1) == pl.col("__check")).then(pl.lit(IdStatus.VALID.value))
        .otherwise(pl.lit(IdStatus.BAD_CHECK_DIGIT.value))
    )
    usable = status.is_in([s.value for s in USABLE_STATUSES])
    canonical = pl.when(is15 & usable).then(pl.col("__first17") + pl.col("__check")).otherwise(pl.col("__clean"))
    sex_digit = pl.col("__first17").str.slice(16, 1).cast(pl.Int32, strict=False)
    return (
        frame.with_columns(cleaned)
        .with_columns(first17)
        .with_columns(birth, check)
        .with_columns(
            canonical.alias(f"{p}norm"),
            status.alias(f"{p}status"),
            pl.col("__birth").alias(f"{p}birth_date"),
            pl.when(pl.col("__birth").is_null()).then(None)
            .when(sex_digit % 2 == 1).then(pl.lit("男")).otherwise(pl.lit("女")).alias(f"{p}sex"),
            pl.when(pl.col("__first17").is_not_null()).then(pl.col("__first17").str.slice(0, 6))
            .alias(f"{p}region"),
        )
        .drop("__clean", "__first17", "__birth", "__check")
    )


@dataclass(frozen=True)
class IdCheck:
    """The result of checking one ID number, with a plain-words explanation of any fault."""

    raw: str | None
    id: str | None
    status: IdStatus
    birth_date: dt.date | None
    sex: str | None
    region: str | None

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES

    def problem(self) -> str | None:
        """What is wrong, in words a caseworker (and an API client) can act on; None when usable."""
        if self.usable:
            return None
        text = self.id or ""
        if self.status is IdStatus.BAD_CHECK_DIGIT:
            return (f"check digit is {text[-1:]!r} but the first 17 digits give "
                    f"{expected_check_char(text[:17])!r}: a digit is mistyped")
        return {
            IdStatus.BLANK: "ID number is blank",
            IdStatus.BAD_LENGTH: f"ID number has {len(text)} characters; it must have 18 (or 15 for an old ID)",
            IdStatus.BAD_FORMAT: "ID number may contain only digits, and X as the last of 18 characters",
            IdStatus.BAD_DATE: "the birth-date digits of the ID number are not a real date between 1900 and today",
        }[self.status]


def check_id(raw: str | None, today: dt.date | None = None) -> IdCheck:
    """Check one ID number with the same expressions used in bulk."""
    row = normalise_ids(pl.DataFrame({"v": [raw]}, schema={"v": pl.String}), "v", prefix="", today=today)
    assert isinstance(row, pl.DataFrame)
    r = row.row(0, named=True)
    return IdCheck(raw, r["norm"], IdStatus(r["status"]), r["birth_date"], r["sex"], r["region"])


def expected_check_char(first17: str) -> str:
    """The check character for 17 digits (scalar convenience for messages and tests)."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def check_chars_for(first17_digits: np.ndarray) -> np.ndarray:
    """Vectorised check characters for an (n, 17) integer array of digits: used by the synthetic generator."""
    remainders = (first17_digits.astype(np.int64) @ np.array(WEIGHTS, dtype=np.int64)) % 11
    return np.array(list(CHECK_CHARS))[remainders]
