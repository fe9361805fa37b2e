"""Reading a workbook (.xlsx, .xlsm, .xls): every sheet surveyed for the header row, the best one loaded as text,
ID columns Excel stored as numbers found cell by cell.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dibao.errors import FileFault
from dibao.ingest.table import (
    HEADER_SEARCH_ROWS,
    MIN_HEADER_FIELDS,
    HeaderScore,
    RawTable,
    best_header,
    check_duplicate_headers,
    column_letter,
    drop_layout_rows,
    is_blank,
    placeholder_headers,
    settle_headers,
    sha256,
    stack_rows,
    tidy,
)


@dataclass(frozen=True)
class _SheetHead:
    """The top of one sheet and its best header: where it is, and its cells by sheet column."""

    index: int
    name: str
    header_row: int  # 0-based sheet row where the header starts (the first non-blank row when none is plausible)
    header_rows: int  # 1, or 2 for a two-row header
    header: dict[int, str]  # 0-based sheet column → header text (a two-row header stacked)
    score: int

    @property
    def last_header_row(self) -> int:
        """0-based sheet row of the header's last row: the one fastexcel is told is the header."""
        return self.header_row + self.header_rows - 1


def _survey(reader: Any, index: int, name: str, score: HeaderScore | None) -> _SheetHead:
    """Read the top rows of a sheet as text, with no header (rows counted from the sheet's row 1), and score them.

    The header is the row (or two stacked rows) naming the most contract fields, the earliest on a tie; with fewer
    than 2 named, the first non-blank row, so that validation reports the columns that are missing. A sheet with
    nothing in its first rows gets ``header_row`` -1.
    """
    sheet = reader.load_sheet(index, header_row=None, skip_rows=0, n_rows=HEADER_SEARCH_ROWS, dtypes="string")
    frame = sheet.to_polars()
    columns = [c.absolute_index for c in sheet.available_columns()]
    rows = [[(v or "").strip() for v in row] for row in frame.rows()]
    row, height, points = best_header(rows, score) if score is not None else (-1, 1, 0)
    if points < MIN_HEADER_FIELDS:
        row, height = next((n for n, cells in enumerate(rows) if not is_blank(cells)), -1), 1
    if row < 0:
        return _SheetHead(index, name, -1, 1, {}, 0)
    cells = stack_rows(rows[row], rows[row + 1]) if height == 2 else rows[row]
    return _SheetHead(index, name, row, height, dict(zip(columns, cells, strict=True)), points)


def _cells_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed Excel cells → the text a CSV export would have held (integral numbers without ".0")."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            integral = (col == col.round()) & (col.abs() < 2**53)
            exprs.append(pl.when(integral).then(col.cast(pl.Int64).cast(pl.String))
                         .otherwise(col.cast(pl.String)).alias(name))
        elif dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.strftime("%Y-%m-%d %H:%M:%S").alias(name))
        else:
            exprs.append(col.cast(pl.String).alias(name))
    return frame.select(exprs)


@dataclass
class _SheetData:
    """One sheet loaded from its header row down: values as text, which columns Excel typed as numbers."""

    frame: pl.DataFrame  # data rows only, placeholder column names
    headers: list[str]
    first_column: int  # 0-based sheet column of the first column
    numeric: list[bool]  # per column: stored as number cells (known only when ``typed``)
    typed: bool  # False: some column mixes text and numbers; ID columns are checked one by one


def _load_sheet(reader: Any, head: _SheetHead) -> _SheetData:
    """Load the chosen sheet from its header row: one strict, typed load when every column holds one kind of
    cell (which tells ID columns stored as numbers); else as text, and ID columns are checked alone later.

    ``header_row`` counts sheet rows from 0, except that fastexcel reads 0 as "the first non-empty row"; the
    survey picked row 0 only when it is not empty, so the two agree.
    """
    import fastexcel

    try:
        sheet = reader.load_sheet(head.index, header_row=head.last_header_row, schema_sample_rows=None,
                                  dtype_coercion="strict")
        typed = sheet.to_polars()
        frame, numeric, is_typed = _cells_as_text(typed), [d.is_numeric() for d in typed.schema.values()], True
    except fastexcel.UnsupportedColumnTypeCombinationError:
        sheet = reader.load_sheet(head.index, header_row=head.last_header_row, dtypes="string",
                                  schema_sample_rows=None)
        frame = sheet.to_polars()
        numeric, is_typed = [False] * frame.width, False
    columns = [c.absolute_index for c in sheet.available_columns()]
    frame.columns = placeholder_headers(frame.width)
    return _SheetData(frame, [head.header.get(c, "") for c in columns], columns[0] if columns else 0, numeric,
                      is_typed)


def _choose_sheet(path: Path, reader: Any, sheets: list[str], score: HeaderScore | None) -> tuple[_SheetHead,
                                                                                                  list[str]]:
    """Survey every sheet; the one whose best header names the most contract fields is read (the first on a tie).

    Raises when no sheet has a plausible header, naming the sheets searched (a one-sheet workbook is read from its
    first non-blank row instead, so that validation names the missing columns).
    """
    heads: list[_SheetHead] = []
    unreadable: list[str] = []
    for index, name in enumerate(sheets):
        try:
            heads.append(_survey(reader, index, name, score))
        except Exception:  # a chart sheet or a damaged one: not a candidate
            unreadable.append(name)
    plausible = [h for h in heads if h.score >= MIN_HEADER_FIELDS]
    if plausible:
        chosen = max(plausible, key=lambda h: (h.score, -h.index))
    elif heads and (len(sheets) == 1 or score is None):
        chosen = heads[0]  # read from its first non-blank row: validation names the missing columns
    else:
        searched = [f"{h.name!r} ({'empty' if h.header_row < 0 else f'best row names {h.score}'})" for h in heads]
        searched += [f"{n!r} (unreadable)" for n in unreadable]
        raise FileFault(path.name, f"找不到表头 (no header row found: none of the first {HEADER_SEARCH_ROWS} rows of "
                                   f"any sheet names at least {MIN_HEADER_FIELDS} of this file's columns; sheets "
                                   f"searched: {'; '.join(searched)})")
    notes = []
    if len(sheets) > 1:
        notes.append(f"used sheet {chosen.name!r} (sheet {chosen.index + 1} of {len(sheets)})")
        notes += [f"sheet {h.name!r} (sheet {h.index + 1} of {len(sheets)}) also has a header row naming {h.score} "
                  f"column(s) and was NOT read" for h in plausible if h is not chosen]
    return chosen, notes


def read_excel(path: Path, data: bytes, is_id_header: Callable[[str], bool],
               header_score: HeaderScore | None = None) -> RawTable:
    """Find the sheet and row holding the table, read it from there as text, report ID columns stored as numbers.

    The top 30 rows of every sheet are read first (as text, no header) to find the header, from a copy of the
    workbook cut after those rows (``_survey_copy``); then the chosen sheet is loaded from its header row.
    """
    import fastexcel

    fmt = "xls" if path.suffix.lower() == ".xls" else "xlsx"
    try:
        reader = fastexcel.read_excel(data)
        sheets = list(reader.sheet_names)
    except Exception as exc:  # fastexcel raises its own hierarchy; any of it means "not readable"
        raise FileFault(path.name, f"无法作为 Excel 工作簿读取 (cannot be read as an Excel workbook: "
                                   f"{str(exc).splitlines()[0]})") from exc
    if not sheets:
        raise FileFault(path.name, "空工作簿 (empty workbook: no sheet)")
    survey = _survey_copy(data)
    if survey is not None:
        try:
            return _read_workbook(path, data, fmt, reader, survey, sheets, is_id_header, header_score)
        except FileFault:
            pass  # e.g. a sheet damaged below its top rows: surveyed from the workbook itself, as it always was
    return _read_workbook(path, data, fmt, reader, reader, sheets, is_id_header, header_score)


def _read_workbook(path: Path, data: bytes, fmt: str, reader: Any, survey: Any, sheets: list[str],
                   is_id_header: Callable[[str], bool], header_score: HeaderScore | None) -> RawTable:
    """``read_excel`` with the header survey read from ``survey`` (the workbook, or its cut copy)."""
    head, notes = _choose_sheet(path, survey, sheets, header_score)
    if head.header_row < 0:
        raise FileFault(path.name, f"空工作表 (empty sheet {head.name!r}: no header row in its first "
                                   f"{HEADER_SEARCH_ROWS} rows)")
    try:
        loaded = _load_sheet(reader, head)
    except Exception as exc:
        raise FileFault(path.name, f"无法读取工作表 (cannot read sheet {head.name!r}: "
                                   f"{str(exc).splitlines()[0]})") from exc
    if not loaded.headers or loaded.frame.width == 0:
        raise FileFault(path.name, f"空工作表 (empty sheet {head.name!r}: no header row)")
    return _sheet_table(path, data, fmt, reader, head, loaded, is_id_header, notes)


_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
_ROW_TAG = re.compile(rb"<row[\s>/]")
_NUMBERED_ROW = re.compile(rb'<row\b[^>]*?\sr="(\d+)"')
_SURVEY_SCAN_LIMIT = 8 * 1024 * 1024  # bytes of a sheet's XML searched for the row after the surveyed ones


def _survey_copy(data: bytes) -> Any | None:
    """The workbook with each worksheet cut after its first ``HEADER_SEARCH_ROWS`` sheet rows, for the header
    survey (fastexcel parses a whole sheet on every load: on a 100,000-row sheet the survey of 30 rows cost as
    much as loading the sheet). A sheet's rows are stored in order, each with its row number, so the cut is made
    in the XML before the first later row; everything else is kept as is. The survey sees the same rows, counted
    from the sheet's row 1 (its columns can only be fewer: ones used below the cut alone, which have no header).

    None when there is nothing to cut, or the workbook is not laid out so (an .xls, a sheet whose rows carry no
    numbers): the survey then reads the workbook itself.
    """
    import fastexcel

    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: _cut_rows(book, info) if _WORKSHEET.fullmatch(info.filename) else None
                   for info in book.infolist()}
        if not any(isinstance(cut, bytes) for cut in members.values()) or any(cut is False for cut in members.values()):
            return None
        copy = io.BytesIO()
        with zipfile.ZipFile(copy, "w", zipfile.ZIP_STORED) as out:
            for info in book.infolist():
                cut = members[info.filename]
                out.writestr(info.filename, cut if isinstance(cut, bytes) else book.read(info))
        return fastexcel.read_excel(copy.getvalue())
    except Exception:  # not a zip, or anything unexpected: the survey reads the workbook itself
        return None


def _cut_rows(book: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | bool | None:
    """A worksheet's XML up to its first row numbered after ``HEADER_SEARCH_ROWS``, closed; None when the sheet
    has no such row (nothing to cut); False when its rows cannot be told apart (a row without a number)."""
    text = b""
    with book.open(info) as stream:
        while len(text) < _SURVEY_SCAN_LIMIT:
            piece = stream.read(64 * 1024)
            if not piece:
                return None
            searched = max(0, len(text) - 256)  # a tag cut between two pieces is searched again whole
            text += piece
            later = next((m for m in _NUMBERED_ROW.finditer(text, searched) if int(m.group(1)) > HEADER_SEARCH_ROWS),
                         None)
            if later is not None:
                head = text[:later.start()]
                if len(_ROW_TAG.findall(head)) != len(_NUMBERED_ROW.findall(head)):
                    return False
                return head + b"</sheetData></worksheet>"
    return False


def _sheet_table(path: Path, data: bytes, fmt: str, reader: Any, head: _SheetHead, loaded: _SheetData,
                 is_id_header: Callable[[str], bool], notes: list[str]) -> RawTable:
    """The RawTable of a loaded sheet: layout rows dropped, headers checked, ID columns stored as numbers found."""
    headers = loaded.headers

    def cell(position: int) -> str:
        letter = column_letter(loaded.first_column + position)
        if head.header_rows == 1:
            return f"sheet {head.name!r} cell {letter}{head.header_row + 1}"
        return f"sheet {head.name!r} cells {letter}{head.header_row + 1}–{letter}{head.last_header_row + 1}"

    check_duplicate_headers(path, headers, cell)
    if head.header_rows == 2:
        notes.append(f"two-row header on sheet {head.name!r} rows {head.header_row + 1}–{head.last_header_row + 1}: "
                     f"a lower cell names its column, the upper one where it is blank")
    if head.header_row > 0:
        notes.append(f"header found on sheet {head.name!r} row {head.header_row + 1}; {head.header_row} "
                     f"title/blank row(s) above it skipped")
    frame = tidy(loaded.frame)
    ids = [i for i, h in enumerate(headers) if h and is_id_header(h)]
    numeric: dict[str, int] = {}
    for position in ids:
        if loaded.typed and loaded.numeric[position]:
            hits = frame.to_series(position).is_not_null().arg_true()
            numeric[headers[position]] = int(hits[0]) + 1 if hits.len() else 0
    raw = RawTable(path, fmt, None, sha256(data), headers, frame, numeric, notes, header_line=head.header_row + 1,
                   sheet=head.name, first_column=loaded.first_column, data_line=head.last_header_row + 2)
    drop_layout_rows(raw)
    if not loaded.typed:
        _mixed_id_columns(raw, reader, head, loaded.first_column, ids)
    settle_headers(raw, cell)
    return raw


def _mixed_id_columns(raw: RawTable, reader: Any, head: _SheetHead, first_column: int, ids: list[int]) -> None:
    """Which ID columns hold numeric cells, when the sheet has columns of mixed cell types.

    Each ID column is loaded alone, strictly typed, from the header down to the last data row (a signature line
    below the data would otherwise make the column "mixed"): text cells stay text, numbers make it numeric.
    """
    lines = raw.line_numbers()
    if not ids or lines.len() == 0:
        return
    n_rows = int(lines.max()) - head.last_header_row - 1  # type: ignore[arg-type]
    for position in ids:
        header = raw.headers[position]
        try:
            column = reader.load_sheet(head.index, header_row=head.last_header_row,
                                       use_columns=[first_column + position],
                                       n_rows=n_rows, schema_sample_rows=None,
                                       dtype_coercion="strict").to_polars().to_series(0)
        except Exception:  # text and numbers mixed: IDs ending in X stayed text, the others became numbers
            raw.numeric_columns[header] = 0
            continue
        if column.dtype.is_numeric():
            hits = column.is_not_null().arg_true()
            if hits.len():
                found = (lines == head.last_header_row + 2 + int(hits[0])).arg_true()
                raw.numeric_columns[header] = int(found[0]) + 1 if found.len() else 0

