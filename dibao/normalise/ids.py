"""Resident identity numbers (公民身份号码, GB 11643-1999), normalised and checked in bulk.

Everything here is a Polars expression so that millions of IDs are checked in one vectorised pass; the scalar
helpers (`check_id`) run the very same expressions on a one-row frame, so there is exactly one implementation.

An ID is never silently dropped: each gets a status, and an invalid one keeps its cleaned text so the linkage
stage can try to repair it (a bad check digit, one wrong digit, two swapped neighbours).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
import polars as pl

from dibao.normalise.regions import PERMIT_PREFIXES, known_area_codes
from dibao.normalise.text import clean_code, clean_code_expr

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
    UNKNOWN_REGION = "unknown_region"  # well-formed and check digit agrees, but no GB/T 2260 edition has its area


# An unknown area code is suspicious (a fabricated number) but still one person's number: linked like any ID,
# and flagged for a check (其他核查) where it is on the roll.
USABLE_STATUSES = (IdStatus.VALID, IdStatus.UPGRADED, IdStatus.UNKNOWN_REGION)

STATUS_LABELS_ZH: dict[IdStatus, str] = {
    IdStatus.VALID: "有效",
    IdStatus.UPGRADED: "15位升18位",
    IdStatus.BAD_CHECK_DIGIT: "校验位错误",
    IdStatus.BAD_DATE: "出生日期无效",
    IdStatus.BAD_LENGTH: "位数错误",
    IdStatus.BAD_FORMAT: "含非法字符",
    IdStatus.BLANK: "空白",
    IdStatus.UNKNOWN_REGION: "地区码不存在",
}

# Separators people type inside IDs (after the invisible characters of ``text.clean_code`` are gone).
_SEPARATORS = r"[\-\.'’‘`]"
_SEPARATORS_RE = re.compile(_SEPARATORS)
# An ID Excel stored as a number and wrote back with a decimal part: its last digits are already lost.
EXCEL_NUMBER_ID = r"^[0-9]+\.0+$"
_EXCEL_NUMBER_ID_RE = re.compile(EXCEL_NUMBER_ID)


def clean_id_expr(raw: pl.Expr) -> pl.Expr:
    """``text.clean_code_expr`` (NFKC, invisible characters, leading apostrophe), then separators removed and
    lower-case x → X. A value like ``…001.0`` is left with its dot, so it can never pass as an 18-digit ID."""
    code = clean_code_expr(raw, drop_dot_zero=False)
    cleaned = (pl.when(code.str.contains(EXCEL_NUMBER_ID)).then(code)
               .otherwise(code.str.replace_all(_SEPARATORS, "")).str.to_uppercase())
    return pl.when(cleaned.str.len_bytes() == 0).then(None).otherwise(cleaned)


def clean_id_text(raw: str | None) -> str | None:
    """``clean_id_expr`` for one value (the API's query parsing): the same steps in plain Python."""
    code = clean_code(raw, drop_dot_zero=False)
    if code is None:
        return None
    cleaned = (code if _EXCEL_NUMBER_ID_RE.match(code) else _SEPARATORS_RE.sub("", code)).upper()
    return cleaned or None


def clean_ids(raw: pl.Series) -> pl.Series:
    """``clean_id_expr`` on a column, run only where needed: most IDs already are 18 (or 15) clean characters."""
    raw = raw.cast(pl.String)
    messy = (~raw.str.contains(r"^(?:[0-9]{17}[0-9X]|[0-9]{15})$")).fill_null(False).arg_true()
    if not messy.len():
        return raw
    fixed = pl.select(clean_id_expr(pl.lit(raw.gather(messy)))).to_series()
    return raw.scatter(messy, fixed)


def id_prefix(column: str) -> str:
    """Prefix of the derived columns of an ID field: ``id_number`` → ``id_``, ``staff_id_number`` → ``staff_id_``."""
    return column.removesuffix("number") if column.endswith("_number") else f"{column}_"


_CHECK_CODES = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)
_WEIGHTS = np.array(WEIGHTS, dtype=np.int32)
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_EPOCH_DAYS = {"earliest": (EARLIEST_BIRTH - dt.date(1970, 1, 1)).days}
# IDs checked at a time: NumPy's temporaries (a few bytes per digit) stay small enough for the allocator to reuse
# them, instead of fresh pages for every array of every file (page faults were a large share of the time).
_BLOCK = 1 << 18


def _byte_matrix(strings: pl.Series, width: int) -> np.ndarray:
    """An (n, width) uint8 matrix of n ASCII strings of exactly ``width`` characters, without a Python loop:
    Polars concatenates them and NumPy reads the result as one byte buffer."""
    if strings.is_empty():
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer(strings.str.join("").cast(pl.Binary).item(), dtype=np.uint8).reshape(-1, width)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm), vectorised."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@lru_cache(maxsize=1)
def _known_area_table() -> np.ndarray:
    """Indexed by a six-digit area code: is it in some GB/T 2260 edition, or a 港澳台 permit prefix?"""
    table = np.zeros(1_000_000, dtype=bool)
    table[np.array(sorted(int(code) for code in known_area_codes()), dtype=np.int64)] = True
    for permit in PERMIT_PREFIXES:
        low = int(permit) * 10_000
        table[low:low + 10_000] = True
    return table


@dataclass
class _Digits:
    """What the digits of each ID say, for every row of a column (meaningful where the ID has 17 or 18 digits)."""

    expected: np.ndarray  # check character (as a byte) the first 17 digits give
    check_ok: np.ndarray  # an 18-character ID's last character is that check character
    days: np.ndarray  # birth date as days since 1970-01-01 (meaningless where not ``real``)
    real: np.ndarray  # the birth-date digits are a real date between 1900 and today
    male: np.ndarray  # the sequence digit is odd
    known_area: np.ndarray  # the area code is in some GB/T 2260 edition, or a 港澳台 permit prefix

    @classmethod
    def empty(cls, n: int) -> _Digits:
        return cls(np.zeros(n, np.uint8), np.zeros(n, bool), np.zeros(n, np.int32), np.zeros(n, bool),
                   np.zeros(n, bool), np.zeros(n, bool))

    def fill(self, rows: np.ndarray, chars: np.ndarray, today: dt.date) -> None:
        """Check the (len(rows), 17 or 18) byte matrix ``chars`` of those rows, in NumPy."""
        digits = chars[:, :17] - np.uint8(48)
        expected = _CHECK_CODES[(digits @ _WEIGHTS) % 11]
        self.expected[rows] = expected
        if chars.shape[1] == 18:
            self.check_ok[rows] = chars[:, 17] == expected
        column = [digits[:, i].astype(np.int32) for i in range(17)]
        year = column[6] * 1000 + column[7] * 100 + column[8] * 10 + column[9]
        month = column[10] * 10 + column[11]
        day = column[12] * 10 + column[13]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        last_day = _DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + (leap & (month == 2))
        days = _days_from_civil(year, np.clip(month, 1, 12), day)
        self.days[rows] = days
        self.real[rows] = ((month >= 1) & (month <= 12) & (day >= 1) & (day <= last_day)
                           & (days >= _EPOCH_DAYS["earliest"]) & (days <= (today - dt.date(1970, 1, 1)).days))
        self.male[rows] = column[16] % 2 == 1
        area = (column[0] * 100_000 + column[1] * 10_000 + column[2] * 1_000 + column[3] * 100 + column[4] * 10
                + column[5])
        self.known_area[rows] = _known_area_table()[area]


def _check_rows(digits: _Digits, rows: pl.Series, texts: pl.Series, width: int, today: dt.date) -> None:
    """``_Digits.fill`` for the IDs ``texts`` (``width`` ASCII characters each) of ``rows``, a block at a time."""
    at = rows.to_numpy()
    for low in range(0, len(at), _BLOCK):
        block = texts.slice(low, _BLOCK)
        digits.fill(at[low:low + _BLOCK], _byte_matrix(block, width), today)


def normalise_ids(frame: pl.DataFrame, column: str, *, prefix: str | None = None,
                  today: dt.date | None = None) -> pl.DataFrame:
    """Add normalised-ID columns for ``column``.

    Adds ``{prefix}norm`` (the canonical 18-character ID when usable, else the cleaned text, null if blank),
    ``{prefix}status``, ``{prefix}birth_date``, ``{prefix}sex`` (男/女) and ``{prefix}region`` (first six digits).
    ``prefix`` defaults to the column name without its trailing ``number`` (``id_number`` → ``id_``).
    The original column is left untouched.

    Digits are checked in NumPy; an 18-digit ID's canonical form is its cleaned text, so only the (few) old
    15-digit IDs get new strings (their upgraded form).
    """
    p = id_prefix(column) if prefix is None else prefix
    today = today or dt.date.today()
    cleaned = clean_ids(frame.get_column(column))
    n = len(cleaned)
    is18 = cleaned.str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    is15 = (cleaned.str.len_chars() == 15).fill_null(False)
    if is15.any():
        is15 &= cleaned.str.contains(r"^[0-9]{15}$").fill_null(False)
    digits = _Digits.empty(n)
    rows18 = is18.arg_true()
    _check_rows(digits, rows18, cleaned.gather(rows18), 18, today)
    rows15 = is15.arg_true()
    old = cleaned.gather(rows15)
    first17_old = old.str.slice(0, 6) + "19" + old.str.slice(6, 9)  # an old ID's digits, century added
    _check_rows(digits, rows15, first17_old, 17, today)
    real = pl.Series(digits.real)
    work = pl.DataFrame({
        "__clean": cleaned, "__is15": is15, "__digits": is18 | is15, "__check_ok": pl.Series(digits.check_ok),
        "__real": real, "__known_area": pl.Series(digits.known_area),
    })
    status = (
        pl.when(pl.col("__clean").is_null()).then(pl.lit(IdStatus.BLANK.value))
        .when(~pl.col("__clean").str.len_chars().is_in([15, 18])).then(pl.lit(IdStatus.BAD_LENGTH.value))
        .when(~pl.col("__digits")).then(pl.lit(IdStatus.BAD_FORMAT.value))
        .when(~pl.col("__real")).then(pl.lit(IdStatus.BAD_DATE.value))
        .when(pl.col("__is15")).then(pl.lit(IdStatus.UPGRADED.value))
        .when(~pl.col("__check_ok")).then(pl.lit(IdStatus.BAD_CHECK_DIGIT.value))
        .when(~pl.col("__known_area")).then(pl.lit(IdStatus.UNKNOWN_REGION.value))
        .otherwise(pl.lit(IdStatus.VALID.value))
    )
    upgraded = real.gather(rows15)  # an old ID with a real birth date is usable: its 18-digit form is the norm
    check_old = pl.Series(digits.expected[rows15.to_numpy()].view("S1").astype("U1"), dtype=pl.String)
    norm = cleaned.clone().scatter(rows15.filter(upgraded), (first17_old + check_old).filter(upgraded)) \
        if upgraded.any() else cleaned
    birth = pl.Series(digits.days, dtype=pl.Int32).cast(pl.Date)
    derived = work.with_columns(pl.Series("__birth", birth), pl.Series("__male", digits.male)).select(
        norm.alias(f"{p}norm"),
        status.alias(f"{p}status"),
        pl.when(pl.col("__digits") & pl.col("__real")).then(pl.col("__birth")).alias(f"{p}birth_date"),
        pl.when(~(pl.col("__digits") & pl.col("__real"))).then(None)
        .when(pl.col("__male")).then(pl.lit("男")).otherwise(pl.lit("女")).alias(f"{p}sex"),
        pl.when(pl.col("__digits")).then(pl.col("__clean").str.slice(0, 6)).alias(f"{p}region"),
    )
    return frame.hstack(derived)


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
        """What is wrong, in words a caseworker (and an API client) can act on, Chinese with English beside;
        None when usable."""
        if self.usable:
            return None
        text = self.id or ""
        if self.status is IdStatus.BAD_CHECK_DIGIT:
            expected = expected_check_char(text[:17])
            return (f"校验位为“{text[-1:]}”，但前17位应得“{expected}”：有数字录错 "
                    f"(check digit is {text[-1:]!r} but the first 17 digits give {expected!r}: a digit is mistyped)")
        if self.status is IdStatus.BAD_LENGTH and _EXCEL_NUMBER_ID_RE.match(text):
            return ("证件号码带有“.0”，是被Excel转成数字后的结果，末几位已丢失 "
                    "(the ID ends in '.0': Excel turned it into a number and its last digits are lost)")
        return {
            IdStatus.BLANK: "证件号码为空 (ID number is blank)",
            IdStatus.BAD_LENGTH: f"证件号码为{len(text)}位，应为18位（旧证15位） "
                                 f"(ID number has {len(text)} characters; it must have 18, or 15 for an old ID)",
            IdStatus.BAD_FORMAT: "证件号码只能由数字组成，18位的最后一位可为X "
                                 "(ID number may contain only digits, and X as the last of 18 characters)",
            IdStatus.BAD_DATE: "证件号码中的出生日期不是1900年至今的真实日期 "
                               "(the birth-date digits of the ID number are not a real date between 1900 and today)",
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


# --- one query at a time (the API and `dibao explain`) ------------------------------------------------------

_PLAIN_ID = re.compile(r"[0-9]{17}[0-9X]\Z")
_ID_LIKE = re.compile(r"[0-9]{14,24}X?|[0-9]+\.0+")


def looks_like_id(text: str) -> bool:
    """Whether a query is meant as an ID number (digits, perhaps with separators, invisible marks, full-width
    forms or a final X) rather than a household number: the answer to a faulty one is then what is wrong."""
    cleaned = clean_id_text(text)
    return cleaned is not None and _ID_LIKE.fullmatch(cleaned) is not None


def usable_id_fast(text: str, today: dt.date | None = None) -> str | None:
    """The canonical form of a usable 18-digit ID, in plain Python (``check_id`` builds a Polars frame: ~5 ms).

    None for anything else (15 digits, a fault): the caller then asks ``check_id``, the one implementation of
    the statuses, for the status and the plain-words problem. Agrees with ``check_id`` (a test checks it).
    """
    cleaned = text if _PLAIN_ID.match(text) else clean_id_text(text)
    if cleaned is None or not _PLAIN_ID.match(cleaned):
        return None
    if cleaned[17] != CHECK_CHARS[sum(map(int.__mul__, map(int, cleaned[:17]), WEIGHTS)) % 11]:
        return None
    try:
        born = dt.date(int(cleaned[6:10]), int(cleaned[10:12]), int(cleaned[12:14]))
    except ValueError:
        return None
    if not EARLIEST_BIRTH <= born <= (today or dt.date.today()):
        return None
    return cleaned


def may_be_old_id(text: str) -> bool:
    """15 digits once cleaned: an old ID that ``check_id`` upgrades to 18 digits."""
    cleaned = clean_id_text(text)
    return cleaned is not None and len(cleaned) == 15 and cleaned.isdigit()


# ---- IDs as integers -----------------------------------------------------------------------------------------
# The linkage joins, groups and sorts persons by ID millions of times. An 18-character ID is one int64 (its 17
# digits × 11 + the check character, X = 10): the codes sort as the IDs do (digits, then 0–9 before X), and an
# integer join or group-by is several times quicker and smaller than one on text.

ID_SHAPE = r"^[0-9]{17}[0-9X]$"  # the IDs with a code: every usable one, and every ID a repair can produce
CHECK_X = 10  # the check character X as a number


def id_codes(ids: pl.Expr) -> pl.Expr:
    """IDs of ``ID_SHAPE`` as int64 codes; null for any other text."""
    check = ids.str.slice(17, 1)
    code = (ids.str.slice(0, 17).cast(pl.Int64, strict=False) * 11
            + pl.when(check == "X").then(pl.lit(CHECK_X, dtype=pl.Int64)).otherwise(check.cast(pl.Int64, strict=False)))
    return pl.when(ids.str.contains(ID_SHAPE)).then(code)


def id_text(codes: pl.Expr) -> pl.Expr:
    """The ID an ``id_codes`` value stands for."""
    check = codes % 11
    return ((codes // 11).cast(pl.String).str.zfill(17)
            + pl.when(check == CHECK_X).then(pl.lit("X")).otherwise(check.cast(pl.String)))
