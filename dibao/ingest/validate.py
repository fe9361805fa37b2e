"""Typing and validating one file against the contract.

Row-level faults (a bad date, a negative amount, a blank required field…) reject that row only: it is kept in
the rejected table with its 1-based data row, the field, the value as written and a reason in plain words, and
the rest of the file loads. File-level faults (a missing required column, ID numbers stored as numbers) refuse
the whole file. Every check is a Polars expression over the whole column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dibao.errors import FileFault
from dibao.headers import HeaderTable
from dibao.ingest.households import agree_households, duplicate_lines, empty_notes
from dibao.ingest.parse import RowFault, parse_field
from dibao.ingest.read import RawTable
from dibao.ingest.totals import NUMERIC_TYPES, TotalRows, find_total_rows
from dibao.normalise.ids import id_prefix, normalise_ids
from dibao.normalise.names import normalise_names
from dibao.publish.contract import REJECTED_SCHEMA
from dibao.schema import Field, FieldType, FileSpec

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

ROW_REJECTED = "row_rejected"  # 整行剔除: a required field is faulty, or the line is a total or a repeat
FIELD_CLEARED = "field_cleared"  # 字段置空: an optional field is faulty; the row (the person) is kept
TOTAL_ROW = "total_row"
DUPLICATE_ROW = "duplicate_row"



@dataclass
class IngestedFile:
    """One validated file: accepted rows (typed, with derived ID and name columns) and rejected rows.

    The accepted rows are in memory until ``spill`` writes them to (or points them at) a Parquet file; after that
    ``scan`` reads the columns a stage needs, and ``accepted`` reads the whole frame back (costly at province
    scale: the run's stages use ``scan``)."""

    stem: str
    raw: RawTable
    in_memory: pl.DataFrame  # the accepted rows, until spilled (then an empty frame of the same schema)
    rejected: pl.DataFrame
    column_map: dict[str, str]  # canonical field → header as written
    notes: list[str] = field(default_factory=list)
    data_notes: pl.DataFrame = field(default_factory=empty_notes)  # household disagreements, several 户主
    released_rows: int | None = None  # rows read, once the text as read has been let go (``release_raw``)
    spilled: Path | None = None  # the Parquet file holding the accepted rows, once spilled
    spilled_rows: int = 0

    @property
    def accepted(self) -> pl.DataFrame:
        return self.in_memory if self.spilled is None else pl.read_parquet(self.spilled)

    def scan(self) -> pl.LazyFrame:
        """The accepted rows, lazily: a stage that reads a few columns reads only those from a spilled file."""
        return self.in_memory.lazy() if self.spilled is None else pl.scan_parquet(self.spilled)

    @property
    def rows_accepted(self) -> int:
        return self.in_memory.height if self.spilled is None else self.spilled_rows

    def spill(self, path: Path, *, written: bool = False) -> None:
        """Keep the accepted rows in the Parquet file ``path`` rather than in memory: the typed rows of a
        province's drop are ~3 GiB that the linkage and the facts need only a few columns of at a time.
        ``written``: ``path`` already holds exactly these rows (the run cache's copy), so it is not written again."""
        if self.spilled is not None:
            return
        if not written:
            self.in_memory.write_parquet(path, compression="lz4", statistics=False)
        self.spilled, self.spilled_rows = path, self.in_memory.height
        self.in_memory = self.in_memory.clear()

    @classmethod
    def on_disk(cls, stem: str, raw: RawTable, path: Path, rows: int, rejected: pl.DataFrame,
                column_map: dict[str, str], notes: list[str], data_notes: pl.DataFrame) -> IngestedFile:
        """A file whose accepted rows are already in the Parquet file ``path`` (a run-cache hit): never loaded
        whole."""
        empty = pl.read_parquet(path, n_rows=0)
        return cls(stem, raw, empty, rejected, column_map, notes, data_notes, spilled=path, spilled_rows=rows)

    @property
    def rows_read(self) -> int:
        return self.released_rows if self.released_rows is not None else self.raw.frame.height

    def release_raw(self) -> None:
        """Let go of the file's text as read (every cell a string: as large as the file) once the typed rows are
        made; only its row count is still needed. ``ingest_drop`` does this for each file as soon as it is typed
        and cached; a tool that edits the drop (``dibao_synth.nextday``) asks it to keep the text."""
        if self.released_rows is None:
            self.released_rows = self.raw.frame.height
            self.raw.frame = self.raw.frame.clear()

    @property
    def fields_cleared(self) -> int:
        return self.rejected.filter(pl.col("action") == FIELD_CLEARED).height


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
    absent = []
    for f in spec.fields:
        if f.name in column_map:
            continue
        if f.required or f.type is FieldType.ID_NUMBER:
            raise FileFault(raw.path.name, f"missing required column {f.label} ({f.name}); "
                                           f"headers found: {', '.join(raw.headers)}", column=f.label)
        absent.append(f"{f.label} ({f.name})")
    if absent:  # one note: newer optional columns are absent from most exports
        notes.append(f"无此列，按空值处理 (optional columns absent, treated as blank): {', '.join(absent)}")
    return column_map, notes


_EXCEL_NUMBER = r"^\s*\d(?:\.\d+)?[eE]\+?\d+\s*$"  # 3.40422E+17
_EXCEL_DECIMAL_ID = r"^\s*\d{6,}\.0+\s*$"  # 34052419800101001.0
_EXCEL_DECIMAL_LONG = r"^\s*\d{16,}\.0+\s*$"  # more digits than a spreadsheet number keeps


def _refuse_numeric_ids(raw: RawTable, spec: FileSpec, column_map: dict[str, str], totals: pl.Series) -> None:
    """Refuse the file when Excel turned an ID column into numbers (total rows aside).

    Both ``3.40422E+17`` and ``34052419800101001.0`` are what Excel writes back for a column it made numeric;
    the digits past the fifteenth are gone, so no repair is possible. Household numbers get the same treatment
    when they are long enough to have lost digits (a short one, ``1234.0``, is only cleaned).
    """
    for f in spec.fields:
        header = column_map.get(f.name)
        if header is None or f.type not in (FieldType.ID_NUMBER, FieldType.CODE):
            continue
        excel_row = raw.numeric_columns.get(header) if f.type is FieldType.ID_NUMBER else None
        values = raw.frame.get_column(header)
        pattern = f"{_EXCEL_NUMBER}|{_EXCEL_DECIMAL_ID if f.type is FieldType.ID_NUMBER else _EXCEL_DECIMAL_LONG}"
        # Byte searches first (cheap on millions of cells); the pattern only where a dot or an E occurs.
        marked = values.str.contains(r"[.Ee]").fill_null(False) & ~totals
        suspects = marked.arg_true()
        sci = suspects.filter(values.gather(suspects).str.contains(pattern).fill_null(False))
        if excel_row is None and sci.len() == 0:
            continue
        row = excel_row if excel_row is not None else int(sci[0]) + 1
        where = f"data row {row}: {values[row - 1]!r}" if row else "some of its cells"
        what = "证件号码" if f.type is FieldType.ID_NUMBER else f.label
        english = "ID numbers" if f.type is FieldType.ID_NUMBER else f"{f.name} values"
        raise FileFault(
            raw.path.name,
            f"{what}被存成了数字，末几位已丢失；请在Excel中把该列设为文本后重新导出，本文件未加载 "
            f"({english} were stored as numbers ({where}), so their last digits are lost. "
            f"Format the column as text (文本) in Excel and export again; nothing of this file was loaded)",
            column=header,
        )


@dataclass
class _Typed:
    """A file's fields as written and, as each is parsed, its fault code per row, kept only for fields where some
    row is faulty: most fields of most files have no fault at all, and a column of nulls per field (16 bytes a
    row, as text) was most of the memory validation took."""

    rows: pl.Series  # 1-based data row
    texts: dict[str, pl.Series]
    faults: dict[str, pl.Series] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: RawTable, spec: FileSpec, column_map: dict[str, str]) -> _Typed:
        height = raw.frame.height
        texts = {f.name: raw.frame.get_column(column_map[f.name]) if f.name in column_map
                 else pl.repeat(None, height, dtype=pl.String, eager=True) for f in spec.fields}
        return cls(pl.int_range(1, height + 1, dtype=pl.UInt32, eager=True).alias("row"), texts)

    def parse(self, f: Field, headers: HeaderTable) -> pl.Series:
        """The typed values of one field (``parse_field``); its faults are kept if it has any."""
        value, fault = parse_field(f, self.texts[f.name], headers.value_aliases)
        if fault.null_count() < fault.len():
            self.faults[f.name] = fault
        return value

    def rejects(self, spec: FileSpec) -> pl.Series:
        """Rows with a faulty required field (rejected whole)."""
        return _any_fault([self.faults[f.name] for f in spec.fields if f.required and f.name in self.faults],
                          self.rows.len())


def _any_fault(faults: list[pl.Series], height: int) -> pl.Series:
    """Per row: is any of these fault columns set?"""
    if not faults:
        return pl.repeat(False, height, eager=True)
    return pl.DataFrame(faults).select(pl.any_horizontal(pl.all().is_not_null())).to_series()


def _rejections(typed: _Typed, spec: FileSpec, column_map: dict[str, str], live: pl.Series,
                rejects: pl.Series) -> pl.DataFrame:
    """One rejected-table row per faulty field of the ``live`` rows (not totals, not repeats); ``action`` says
    whether the row was dropped or only the field. Built from the faulty rows alone, field by field."""
    frames = []
    for f in spec.fields:
        if f.name not in typed.faults:
            continue
        at = (typed.faults[f.name].is_not_null() & live).arg_true()
        faulty = pl.DataFrame([typed.rows.gather(at), typed.texts[f.name].gather(at).alias("value"),
                               typed.faults[f.name].gather(at).alias("reason_code"),
                               rejects.gather(at).alias("__rejects")])
        frames.append(faulty.select(
            pl.lit(spec.stem).alias("source"),
            "row",
            pl.lit(f.name).alias("field"),
            pl.lit(column_map.get(f.name, f.label)).alias("header"),
            "value",
            "reason_code",
            (pl.col("reason_code").replace_strict({k.value: v for k, v in REASONS.items()}, return_dtype=pl.String)
             + pl.lit(f": {f.label}" + (f" ({'/'.join(f.choices)})" if f.choices else ""))).alias("reason"),
            pl.when(pl.col("__rejects")).then(pl.lit(ROW_REJECTED)).otherwise(pl.lit(FIELD_CLEARED)).alias("action"),
        ).cast(REJECTED_SCHEMA))  # type: ignore[arg-type]
    return pl.concat(frames) if frames else pl.DataFrame(schema=REJECTED_SCHEMA)


def _removed_lines(spec: FileSpec, totals: TotalRows, duplicates: pl.DataFrame) -> pl.DataFrame:
    """Total rows and repeated lines as rejected-table rows (they are not data, but nothing vanishes)."""
    total_rows = totals.rows.select(
        pl.lit(spec.stem).alias("source"), "row", pl.lit("*").alias("field"), "header", "value",
        pl.lit(TOTAL_ROW).alias("reason_code"),
        pl.lit("合计/小计行，不是数据 (a total row, not data)").alias("reason"), pl.lit(ROW_REJECTED).alias("action"),
    )
    repeated = duplicates.select(
        pl.lit(spec.stem).alias("source"), "row", pl.lit("*").alias("field"), pl.lit(None, dtype=pl.String)
        .alias("header"), pl.lit(None, dtype=pl.String).alias("value"), pl.lit(DUPLICATE_ROW).alias("reason_code"),
        (pl.lit("与第") + pl.col("same_as").cast(pl.String) + pl.lit("行完全相同，只保留一次 (the same line as row ")
         + pl.col("same_as").cast(pl.String) + pl.lit("; kept once)")).alias("reason"),
        pl.lit(ROW_REJECTED).alias("action"),
    )
    return pl.concat([total_rows.cast(REJECTED_SCHEMA), repeated.cast(REJECTED_SCHEMA)])  # type: ignore[arg-type]


def _check_totals(spec: FileSpec, totals: TotalRows, frame: pl.DataFrame, accepted: pl.DataFrame) -> list[str]:
    """Compare each amount a grand-total row states with the sum of the accepted rows."""
    notes: list[str] = []
    grand = totals.rows.filter("grand")
    if grand.height != 1:
        return notes
    line = int(grand["row"][0])
    stated = frame.filter(pl.col("row") == line)
    for f in spec.fields:
        if f.type not in NUMERIC_TYPES or stated[f.name][0] is None:
            continue
        total, counted = stated[f.name][0], accepted[f.name].sum()
        verdict = ("一致 (matches)" if total == counted
                   else f"不符，明细之和为{counted} (differs: the rows sum to {counted})")
        notes.append(f"合计行（第{line}行）{f.label}={total}，与已接受行之和{verdict} "
                     f"(total row {line}: {f.name} stated {total})")
    return notes


def _cleared_fields(typed: _Typed, spec: FileSpec, keep: pl.Series) -> pl.Series:
    """Per accepted row, the optional fields whose faulty value was cleared (null where none was).

    Built only for the few rows that have such a fault (a list per row over millions of rows is slow) and
    placed by position among the accepted rows.
    """
    optional = [f.name for f in spec.fields if not f.required and f.name in typed.faults]
    accepted_rows = int(keep.sum())
    faulty = _any_fault([typed.faults[n] for n in optional], keep.len()) & keep
    if not faulty.any():
        return pl.repeat(None, accepted_rows, dtype=pl.List(pl.String), eager=True).alias("cleared_fields")
    lists = pl.DataFrame([typed.faults[n].filter(faulty) for n in optional]).select(
        pl.concat_list([pl.when(pl.col(f"__e_{n}").is_not_null()).then(pl.lit(n)) for n in optional])
        .list.drop_nulls()).to_series()
    positions = (keep.cast(pl.Int64).cum_sum() - 1).filter(faulty)  # where each faulty row lands among the kept
    index = pl.repeat(None, accepted_rows, dtype=pl.Int64, eager=True).scatter(
        positions, pl.int_range(lists.len(), eager=True))
    return lists.gather(index).alias("cleared_fields")


@dataclass
class _Accepted:
    """The kept rows, typed (each faulty optional value cleared), and the typed values of the total rows."""

    frame: pl.DataFrame
    stated_totals: pl.DataFrame | None


def _accepted_rows(typed: _Typed, spec: FileSpec, headers: HeaderTable, removed: pl.Series,
                   totals: TotalRows) -> tuple[_Accepted, pl.Series]:
    """Type every field and keep the rows without a faulty required field, nor removed (``keep``, returned too).

    The required fields are parsed first: they decide which rows are kept. Then each column is parsed, cleared
    where faulty and filtered alone, its unfiltered form let go at once: the file's typed values are never all
    held unfiltered beside the kept ones (at 2 million households, ~0.9 GiB of amounts for the registry alone).
    """
    required = {f.name: typed.parse(f, headers) for f in spec.fields if f.required}
    keep = ~typed.rejects(spec) & ~removed
    everything = keep.all()
    stated: list[pl.Series] = [typed.rows.filter(totals.mask)] if totals.rows.height else []
    columns = [typed.rows if everything else typed.rows.filter(keep)]
    for f in spec.fields:
        value = required.pop(f.name) if f.required else typed.parse(f, headers)
        if stated and f.type in NUMERIC_TYPES:
            stated.append(value.filter(totals.mask))
        if not f.required and f.name in typed.faults:
            value = pl.DataFrame([value, typed.faults[f.name].alias("__e")]).select(
                pl.when(pl.col("__e").is_null()).then(pl.col(f.name)).alias(f.name)).to_series()
        columns.append(value if everything else value.filter(keep))
        del value
    return _Accepted(pl.DataFrame(columns), pl.DataFrame(stated) if stated else None), keep


def validate(raw: RawTable, spec: FileSpec, headers: HeaderTable, *, today: dt.date | None = None) -> IngestedFile:
    """Type every field, split accepted from rejected rows, and add derived ID and name columns.

    A fault in a required field rejects the row; a fault in an optional field only clears that field (the
    person stays in the household; ``cleared_fields`` lists what was cleared). Total rows and exact duplicate
    lines are taken out before typing and listed. ``today`` is the run date (ID birth dates after it are faults).
    """
    column_map, notes = map_columns(raw, spec, headers)
    totals = find_total_rows(raw.frame, spec, column_map)
    _refuse_numeric_ids(raw, spec, column_map, totals.mask)
    notes = raw.notes + notes

    duplicates = duplicate_lines(raw.frame)
    typed = _Typed.of(raw, spec, column_map)
    removed = totals.mask
    if duplicates.height:
        removed = removed | typed.rows.is_in(duplicates["row"].implode())
    kept, keep = _accepted_rows(typed, spec, headers, removed, totals)
    rejected = pl.concat([_rejections(typed, spec, column_map, ~removed, typed.rejects(spec)),
                          _removed_lines(spec, totals, duplicates)]).sort("row", "field")
    accepted = kept.frame.with_columns(_cleared_fields(typed, spec, keep))
    del typed
    accepted = _derive(accepted, spec, today)
    accepted, data_notes = agree_households(accepted, spec)
    if duplicates.height:
        notes.append(f"{duplicates.height} 行与前面的行完全相同，各只保留一次 ({duplicates.height} exact duplicate "
                     f"line(s) dropped, listed in rejected.parquet as duplicate_row)")
    if kept.stated_totals is not None:
        lines = ", ".join(map(str, totals.rows["row"]))
        notes.append(f"{totals.rows.height} 行合计/小计行不作为数据 (total row(s) {lines} kept out of the data, "
                     "listed as total_row)")
        notes += _check_totals(spec, totals, kept.stated_totals, accepted)
    return IngestedFile(spec.stem, raw, accepted, rejected, column_map, notes, data_notes)


_TYPED: dict[FieldType, pl.DataType] = {
    FieldType.DATE: pl.Date(), FieldType.MONEY: pl.Decimal(18, 2), FieldType.COUNT: pl.Int64(),
    FieldType.YEAR: pl.Int32(), FieldType.YES_NO: pl.Boolean(),
}


def empty_accepted(spec: FileSpec) -> pl.DataFrame:
    """The accepted-rows frame of a file that was not in the drop: same columns and types, no rows."""
    empty = pl.DataFrame(schema={"row": pl.UInt32, **{f.name: _TYPED.get(f.type, pl.String()) for f in spec.fields},
                                 "cleared_fields": pl.List(pl.String)})
    return _derive(empty, spec)


def _derive(frame: pl.DataFrame, spec: FileSpec, today: dt.date | None = None) -> pl.DataFrame:
    """Add the normalised ID columns (``id_norm``, ``id_status``…) and name keys (``name_norm``, ``name_pinyin``)."""
    for f in spec.fields:
        if f.type is FieldType.ID_NUMBER:
            result = normalise_ids(frame, f.name, prefix=id_prefix(f.name), today=today)
            assert isinstance(result, pl.DataFrame)
            frame = result
        elif f.type is FieldType.NAME:
            frame = frame.hstack(normalise_names(frame.get_column(f.name)))
    return frame
