"""Typing and validating one file against the contract.

Row-level faults (a bad date, a negative amount, a blank required field…) reject that row only: it is kept in
the rejected table with its 1-based data row, the field, the value as written and a reason in plain words, and
the rest of the file loads. File-level faults (a missing required column, ID numbers stored as numbers) refuse
the whole file. Every check is a Polars expression over the whole column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from dibao.errors import FileFault
from dibao.headers import HeaderTable
from dibao.ids import id_prefix, normalise_ids
from dibao.ingest.parse import RowFault, parse_field
from dibao.ingest.read import RawTable
from dibao.names import normalise_names
from dibao.schema import FieldType, FileSpec

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

    height = raw.frame.height
    texts = {f.name: raw.frame.get_column(column_map[f.name]) if f.name in column_map
             else pl.repeat(None, height, dtype=pl.String, eager=True) for f in spec.fields}
    columns: list[pl.Series] = [pl.Series("row", range(1, height + 1), dtype=pl.UInt32)]
    faults: list[pl.Series] = []
    for f in spec.fields:
        value, fault = parse_field(f, texts[f.name], headers.value_aliases)
        columns.append(value)
        faults.append(fault)
    frame = pl.DataFrame(columns + faults + [t.alias(f"__t_{name}") for name, t in texts.items()])

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
