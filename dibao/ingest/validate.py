"""Typing and validating one file against the contract.

Row-level faults (a bad date, a negative amount, a blank required field…) reject that row only: it is kept in
the rejected table with its 1-based data row, the field, the value as written and a reason in plain words, and
the rest of the file loads. File-level faults (a missing required column, ID numbers stored as numbers) refuse
the whole file. Every check is a Polars expression over the whole column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from dibao.errors import FileFault
from dibao.headers import HeaderTable
from dibao.ids import id_prefix, normalise_ids
from dibao.ingest.read import RawTable
from dibao.names import normalise_names
from dibao.schema import Field, FieldType, FileSpec
from dibao.text import to_halfwidth


class RowFault(StrEnum):
    """Why a row was rejected: stable codes, with the words the operator reads in ``REASONS``."""

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


REASONS: dict[RowFault, str] = {
    RowFault.BLANK_REQUIRED: "必填项为空 (required field is blank)",
    RowFault.BAD_DATE: "日期无法识别 (not a date; expected YYYY-MM-DD)",
    RowFault.DATE_OUT_OF_RANGE: "日期超出合理范围 (date before 1900 or after 2100)",
    RowFault.NOT_A_NUMBER: "不是数字 (not a number)",
    RowFault.NEGATIVE_AMOUNT: "金额为负数 (negative amount)",
    RowFault.NOT_WHOLE_NUMBER: "不是非负整数 (not a whole number of 0 or more)",
    RowFault.BAD_YEAR: "年份无效 (not a four-digit year between 1900 and 2100)",
    RowFault.BAD_YES_NO: "应为“是”或“否” (expected 是 or 否)",
    RowFault.BAD_CATEGORY: "不是允许的取值 (not one of the allowed values)",
    RowFault.BAD_AREA_CODE: "不是6位行政区划代码 (not a 6-digit division code)",
}

REJECTED_SCHEMA = {
    "source": pl.String, "row": pl.UInt32, "field": pl.String, "header": pl.String,
    "value": pl.String, "reason_code": pl.String, "reason": pl.String,
}

_EXCEL_EPOCH = dt.date(1899, 12, 30)


@dataclass
class IngestedFile:
    """One validated file: accepted rows (typed, with derived ID and name columns) and rejected rows."""

    stem: str
    raw: RawTable
    accepted: pl.DataFrame
    rejected: pl.DataFrame
    column_map: dict[str, str]  # canonical field → header as written
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.raw.frame.height


def _fault(condition: pl.Expr, fault: RowFault) -> pl.Expr:
    return pl.when(condition).then(pl.lit(fault.value))


_DATE_SEPARATORS = (["/", ".", "年", "月", "日"], ["-", "-", "-", "-", ""])
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f")


def _parse_date(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    s = to_halfwidth(text).str.replace_many(*_DATE_SEPARATORS)
    serial = s.str.extract(r"^(\d{5})(?:\.0+)?$", 1).cast(pl.Int64, strict=False)
    parsed = pl.coalesce(
        *[s.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS],
        pl.lit(_EXCEL_EPOCH) + pl.duration(days=serial),  # a date Excel exported as its serial number
    )
    in_range = parsed.is_between(dt.date(1900, 1, 1), dt.date(2100, 12, 31))
    fault = (
        pl.when(text.is_not_null() & parsed.is_null()).then(pl.lit(RowFault.BAD_DATE.value))
        .when(parsed.is_not_null() & ~in_range).then(pl.lit(RowFault.DATE_OUT_OF_RANGE.value))
    )
    return parsed, fault


def _parse_number(text: pl.Expr) -> pl.Expr:
    cleaned = to_halfwidth(text).str.replace_all(r"[,，\s]", "").str.strip_suffix("元")
    return cleaned.cast(pl.Float64, strict=False)


def _parse_field(f: Field, text: pl.Expr, value_aliases: dict[str, dict[str, str]]) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, fault code or null) for one field."""
    t = f.type
    if t is FieldType.DATE:
        return _parse_date(text)
    if t is FieldType.MONEY:
        number = _parse_number(text)
        return number, (
            pl.when(text.is_not_null() & number.is_null()).then(pl.lit(RowFault.NOT_A_NUMBER.value))
            .when(number < 0).then(pl.lit(RowFault.NEGATIVE_AMOUNT.value))
        )
    if t is FieldType.COUNT:
        number = _parse_number(text)
        whole = (number.is_not_null() & (number >= 0) & (number == number.floor())).fill_null(False)
        fault = _fault(text.is_not_null() & ~whole, RowFault.NOT_WHOLE_NUMBER)
        return pl.when(whole).then(number).cast(pl.Int64), fault
    if t is FieldType.YEAR:
        number = _parse_number(text)
        ok = (number.is_between(1900, 2100) & (number == number.floor())).fill_null(False)
        return pl.when(ok).then(number).cast(pl.Int32), _fault(text.is_not_null() & ~ok, RowFault.BAD_YEAR)
    if t is FieldType.YES_NO:
        mapping = value_aliases.get("yes_no", {"是": "是", "否": "否"})
        word = to_halfwidth(text).replace_strict(mapping, default=None, return_dtype=pl.String)
        return word == "是", _fault(text.is_not_null() & word.is_null(), RowFault.BAD_YES_NO)
    if t is FieldType.CATEGORY:
        mapping = {c: c for c in f.choices} | value_aliases.get(f.name, {})
        value = to_halfwidth(text).str.replace_all(r"\s", "").replace_strict(
            mapping, default=None, return_dtype=pl.String)
        return value, _fault(text.is_not_null() & value.is_null(), RowFault.BAD_CATEGORY)
    if t is FieldType.AREA_CODE:
        code = to_halfwidth(text).str.replace_all(r"\s", "")
        ok = code.str.contains(r"^\d{6}$").fill_null(False)
        return pl.when(ok).then(code), _fault(text.is_not_null() & ~ok, RowFault.BAD_AREA_CODE)
    return text, pl.lit(None, dtype=pl.String)  # TEXT, NAME, ID_NUMBER: kept as written (stripped)


def map_columns(raw: RawTable, spec: FileSpec, headers: HeaderTable) -> tuple[dict[str, str], list[str]]:
    """Canonical field → header. Raises FileFault for a missing required column or two headers for one field."""
    column_map: dict[str, str] = {}
    notes: list[str] = []
    for header in raw.headers:
        canonical = headers.resolve(spec.stem, header)
        if canonical is None:
            notes.append(f"column {header!r} is not part of the contract and was ignored")
            continue
        if canonical in column_map:
            raise FileFault(raw.path.name, f"columns {column_map[canonical]!r} and {header!r} both mean "
                                           f"{canonical} ({spec.field(canonical).label}); keep one", column=header)
        column_map[canonical] = header
    for f in spec.fields:
        if f.name in column_map:
            continue
        if f.required or f.type is FieldType.ID_NUMBER:
            raise FileFault(raw.path.name, f"missing required column {f.label} ({f.name}); "
                                           f"headers found: {', '.join(raw.headers)}", column=f.label)
        notes.append(f"column {f.label} ({f.name}) is absent: treated as blank")
    return column_map, notes


def _refuse_numeric_ids(raw: RawTable, spec: FileSpec, column_map: dict[str, str]) -> None:
    for f in spec.fields:
        header = column_map.get(f.name)
        if f.type is not FieldType.ID_NUMBER or header is None:
            continue
        excel_row = raw.numeric_columns.get(header)
        values = raw.frame.get_column(header)
        sci = values.str.contains(r"^\s*\d(?:\.\d+)?[eE]\+?\d+\s*$").arg_true()
        if excel_row is None and sci.len() == 0:
            continue
        row = excel_row if excel_row is not None else int(sci[0]) + 1
        where = f"data row {row}: {values[row - 1]!r}" if row else "some of its cells"
        raise FileFault(
            raw.path.name,
            f"ID numbers were stored as numbers ({where}), so their last digits are lost. "
            f"Format the column as text (文本) in Excel and export again; nothing of this file was loaded",
            column=header,
        )


def validate(raw: RawTable, spec: FileSpec, headers: HeaderTable) -> IngestedFile:
    """Type every field, split accepted from rejected rows, and add derived ID and name columns."""
    column_map, notes = map_columns(raw, spec, headers)
    _refuse_numeric_ids(raw, spec, column_map)
    notes = raw.notes + notes

    text_cols = [
        (pl.col(column_map[f.name]) if f.name in column_map else pl.lit(None, dtype=pl.String)).alias(f"__t_{f.name}")
        for f in spec.fields
    ]
    frame = raw.frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).alias("row"), *text_cols)
    typed, faults = [], []
    for f in spec.fields:
        text = pl.col(f"__t_{f.name}")
        value, fault = _parse_field(f, text, headers.value_aliases)
        if f.required:
            fault = pl.when(text.is_null()).then(pl.lit(RowFault.BLANK_REQUIRED.value)).otherwise(fault)
        typed.append(value.alias(f.name))
        faults.append(fault.alias(f"__e_{f.name}"))
    frame = frame.with_columns(*typed, *faults)

    fault_cols = [f"__e_{f.name}" for f in spec.fields]
    rejected = pl.concat(
        [
            frame.filter(pl.col(f"__e_{f.name}").is_not_null()).select(
                pl.lit(spec.stem).alias("source"),
                "row",
                pl.lit(f.name).alias("field"),
                pl.lit(column_map.get(f.name, f.label)).alias("header"),
                pl.col(f"__t_{f.name}").alias("value"),
                pl.col(f"__e_{f.name}").alias("reason_code"),
                (pl.col(f"__e_{f.name}").replace_strict({k.value: v for k, v in REASONS.items()},
                                                        return_dtype=pl.String)
                 + pl.lit(f": {f.label}" + (f" ({'/'.join(f.choices)})" if f.choices else ""))).alias("reason"),
            )
            for f in spec.fields
        ],
        how="vertical",
    ).sort("row", "field").cast(REJECTED_SCHEMA)  # type: ignore[arg-type]

    accepted = frame.filter(pl.all_horizontal(pl.col(fault_cols).is_null())).select(
        "row", *[f.name for f in spec.fields]
    )
    accepted = _derive(accepted, spec)
    return IngestedFile(spec.stem, raw, accepted, rejected, column_map, notes)


_TYPED: dict[FieldType, pl.DataType] = {
    FieldType.DATE: pl.Date(), FieldType.MONEY: pl.Float64(), FieldType.COUNT: pl.Int64(),
    FieldType.YEAR: pl.Int32(), FieldType.YES_NO: pl.Boolean(),
}


def empty_accepted(spec: FileSpec) -> pl.DataFrame:
    """The accepted-rows frame of a file that was not in the drop: same columns and types, no rows."""
    empty = pl.DataFrame(schema={"row": pl.UInt32, **{f.name: _TYPED.get(f.type, pl.String()) for f in spec.fields}})
    return _derive(empty, spec)


def _derive(frame: pl.DataFrame, spec: FileSpec) -> pl.DataFrame:
    """Add the normalised ID columns (``id_norm``, ``id_status``…) and name keys (``name_norm``, ``name_pinyin``)."""
    for f in spec.fields:
        if f.type is FieldType.ID_NUMBER:
            result = normalise_ids(frame, f.name, prefix=id_prefix(f.name))
            assert isinstance(result, pl.DataFrame)
            frame = result
        elif f.type is FieldType.NAME:
            frame = frame.hstack(normalise_names(frame.get_column(f.name)))
    return frame
