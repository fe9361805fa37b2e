"""The all-text table every reader returns, and what all formats share: finding the header row among title and
unit rows (scored against the contract's header aliases), dropping signature lines below the data, and naming
the line or cell of a data row.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from dibao.errors import FileFault

# The header is looked for in this many rows (records of a CSV, rows of a sheet) from the top.
HEADER_SEARCH_ROWS = 30
# A row is a plausible header when it names at least this many of the file's contract fields.
MIN_HEADER_FIELDS = 2
# What a signature or remark line below the data starts with (its first non-blank cell). Such lines at the end
# of a table are not data and are dropped, each listed in the notes. Total rows (合计/小计) are not in this list:
# validation recognises those and checks the amounts they state.
NOTE_WORDS: tuple[str, ...] = ("制表人", "审核人", "填报单位", "制表日期", "填表人", "负责人", "单位负责人",
                               "统计人", "备注", "注：", "说明")


# Scores a candidate header row: how many distinct contract fields its cells name.
HeaderScore = Callable[[list[str]], int]


@dataclass
class RawTable:
    """A file as read: original headers, every value as text (stripped; blank → null), and where it was.

    ``frame`` row *i* (0-based) is data row *i + 1*, the ``row`` every later stage reports. Rows above the header,
    blank rows and the signature lines below the data are not in ``frame``; ``location`` converts a data row to
    the physical line (CSV) or sheet row (XLSX/XLS) it came from.
    """

    path: Path
    format: str  # csv | xlsx | xls | parquet
    encoding: str | None  # for CSV: the encoding detected or forced
    sha256: str
    headers: list[str]
    frame: pl.DataFrame  # columns in header order, all pl.String
    # header → first 1-based data row whose ID is stored as a number (0: some rows, which is not known)
    numeric_columns: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    header_line: int = 1  # 1-based physical line (CSV; the first, if it spans lines) or sheet row of the header
    sheet: str | None = None  # the sheet read, for a workbook
    # 0-based column of each header as in the file (sheet column of a workbook, field number of a CSV line), when
    # not simply first_column + position (a column without header or data between two others was dropped)
    header_columns: list[int] = field(default_factory=list)
    first_column: int = 0  # 0-based sheet column of the first header (a workbook's table need not start at A)
    data_line: int = 2  # line / sheet row of data row 1, when every data row is one line and none was dropped
    row_lines: pl.Series | None = None  # line / sheet row of every data row, when that is not data_line + row - 1

    def line_of(self, data_row: int) -> int:
        """The physical line (CSV) or sheet row (workbook) of a 1-based data row."""
        if self.row_lines is not None:
            return int(self.row_lines[data_row - 1])
        return self.data_line + data_row - 1

    def line_numbers(self) -> pl.Series:
        """``line_of`` for every data row at once (UInt32), to join onto row-level results."""
        if self.row_lines is not None:
            return self.row_lines.alias("line").cast(pl.UInt32)
        return pl.int_range(self.data_line, self.data_line + self.frame.height, dtype=pl.UInt32,
                            eager=True).alias("line")

    def location(self, data_row: int) -> str:
        """Where a data row is in the file, as the operator finds it: ``line 12``, ``sheet 'Sheet1' row 12``."""
        if self.format == "parquet":
            return f"data row {data_row}"
        if self.sheet is not None:
            return f"sheet {self.sheet!r} row {self.line_of(data_row)}"
        return f"line {self.line_of(data_row)}"

    def column_of(self, position: int) -> int:
        """0-based column in the file (sheet column, CSV field number) of the header at ``position``."""
        return self.header_columns[position] if self.header_columns else self.first_column + position

    def cell(self, data_row: int, header: str) -> str:
        """Where one value is: ``sheet 'Sheet1' cell C12``, ``line 12, column 3``, or the data row for Parquet."""
        column = self.column_of(self.headers.index(header))
        if self.format == "parquet":
            return f"data row {data_row}, column {header!r}"
        if self.sheet is not None:
            return f"sheet {self.sheet!r} cell {column_letter(column)}{self.line_of(data_row)}"
        return f"line {self.line_of(data_row)}, column {column + 1}"


def header_scorer(resolve: Callable[[str], str | None]) -> HeaderScore:
    """A ``HeaderScore`` from a header → contract field lookup (``lambda h: headers.resolve(stem, h)``)."""

    def score(cells: list[str]) -> int:
        return len({name for cell in cells if cell and (name := resolve(cell)) is not None})

    return score


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column part of an Excel cell reference."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stack_rows(upper: Sequence[str], lower: Sequence[str]) -> list[str]:
    """A two-row header as one: the lower row's cell, or the upper one's where the lower is blank (a cell merged
    down over both rows keeps its text in the upper row; a group title over several columns is replaced)."""
    width = max(len(upper), len(lower))
    padded = [*upper, *[""] * (width - len(upper))], [*lower, *[""] * (width - len(lower))]
    return [low or up for up, low in zip(*padded, strict=True)]


def best_header(rows: Sequence[list[str]], score: HeaderScore) -> tuple[int, int, int]:
    """(index, rows it spans: 1 or 2, fields named) of the best header among the first rows.

    A row names some contract fields; two consecutive rows stacked (``stack_rows``) are a header only when together
    they name more than either alone. The most fields win, the earliest on a tie.
    """
    points = [score(row) for row in rows[:HEADER_SEARCH_ROWS]]
    best = (-1, 1, 0)
    for index, found in enumerate(points):
        if found > best[2]:
            best = (index, 1, found)
        if index + 1 < len(points):
            both = score(stack_rows(rows[index], rows[index + 1]))
            if both > max(found, points[index + 1], best[2]):
                best = (index, 2, both)
    return best


def is_blank(cells: Sequence[str | None]) -> bool:
    return not any(c and c.strip() for c in cells)


def check_duplicate_headers(path: Path, headers: list[str], where: Callable[[int], str]) -> None:
    """Two columns with the same header cannot be told apart: refused, naming both cells."""
    seen: dict[str, int] = {}
    for position, header in enumerate(headers):
        if not header:
            continue
        if header in seen:
            raise FileFault(path.name, f"表头重复 (duplicate header: the column appears twice, at "
                                       f"{where(seen[header])} and {where(position)})", column=header)
        seen[header] = position


def placeholder_headers(width: int) -> list[str]:
    """Unique column names for parsing (real headers may be blank); renamed to the headers at the end."""
    return [f"column_{i}" for i in range(width)]


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """Strip every value; a blank cell becomes null. In place, a column at a time: each column's untidy text is
    let go as soon as its tidy form exists (the whole frame at once held the file's text twice over). Each column
    is made one contiguous chunk (the CSV reader gives one per thread's share of the file, and every later
    operation on the file's frames would otherwise work chunk by chunk, or copy them together itself)."""
    for index, name in enumerate(frame.columns):
        frame.replace_column(index, frame.select(pl.col(name).cast(pl.String).str.strip_chars().replace("", None))
                             .to_series().rechunk())
    return frame


class FileBytes:
    """One input file's bytes, read once, with their hash. A reader that has turned them into another form (CSV
    text transcoded to UTF-8) lets go of them (``release``): at province scale they are hundreds of megabytes,
    and the caller that read them would otherwise hold them until the whole table is built."""

    def __init__(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FileFault(path.name, f"无法读取 (cannot be read: {exc.strerror})") from exc
        if not data:
            raise FileFault(path.name, "空文件 (empty file (0 bytes))")
        self._data: bytes | None = data

    @property
    def data(self) -> bytes:
        if self._data is None:
            raise RuntimeError("the file's bytes were released")
        return self._data

    @functools.cached_property
    def sha256(self) -> str:
        return sha256(self.data)

    def release(self) -> None:
        """Let go of the bytes (their hash, once asked for, is kept)."""
        self._data = None


_NOTE_KEYS = tuple(re.sub(r"\s+", "", unicodedata.normalize("NFKC", w)) for w in NOTE_WORDS)


def is_note_text(text: str) -> bool:
    """Does a cell start a signature or remark line (制表人：…, 注：…)? Full-width forms and spaces tolerated."""
    key = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    return key.startswith(_NOTE_KEYS)


def _span_text(lines: pl.Series) -> str:
    """``12, 14–16, 20``: line numbers with runs collapsed, at most 10 runs shown (vectorised: a sheet can end
    in a million formatted but empty rows)."""
    values = lines.cast(pl.Int64).to_numpy()
    breaks = np.flatnonzero(np.diff(values) != 1)
    firsts = np.concatenate([values[:1], values[breaks + 1]])
    lasts = np.concatenate([values[breaks], values[-1:]])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in zip(firsts[:10], lasts[:10], strict=True))
    return text + (", …" if len(firsts) > 10 else "")


def drop_layout_rows(raw: RawTable) -> None:
    """Drop blank rows, and signature/remark lines (``NOTE_WORDS``) at the end of the table; say which.

    Blank rows are found with one Polars expression; only the non-blank rows at the very end are looked at in
    Python, from the last one up to the first that is data.
    """
    frame = raw.frame
    if frame.height == 0:
        return
    blank = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    filled = (~blank).arg_true()
    cut = 0
    signatures: list[tuple[int, str]] = []
    for j in range(filled.len() - 1, -1, -1):
        index = int(filled[j])
        first = next(v for v in frame.row(index) if v is not None)
        if not is_note_text(first):
            cut = index + 1
            break
        signatures.append((index, first))
    inner = blank.head(cut).arg_true()
    trailing = blank.slice(cut).arg_true() + cut
    if not signatures and inner.len() == 0 and trailing.len() == 0:
        return
    lines = raw.line_numbers()
    kind = f"sheet {raw.sheet!r} row(s)" if raw.sheet else "line(s)"
    if inner.len():
        raw.notes.append(f"{inner.len()} blank row(s) inside the data dropped ({kind} {_span_text(lines[inner])})")
    raw.notes += [f"{raw.location(index + 1)} dropped: a note below the data, not data ({text[:60]})"
                  for index, text in reversed(signatures)]
    if trailing.len():
        raw.notes.append(f"{trailing.len()} blank row(s) below the data dropped "
                         f"({kind} {_span_text(lines[trailing])})")
    keep = ~blank & (pl.int_range(0, frame.height, eager=True) < cut)
    raw.frame = frame.filter(keep)
    raw.row_lines = lines.filter(keep)
    raw.numeric_columns = {h: int(keep.head(row).sum()) if row > 0 else row
                           for h, row in raw.numeric_columns.items()}


def settle_headers(raw: RawTable, where: Callable[[int], str]) -> None:
    """Name the columns by their headers. A column with no header and no data (the trailing ',' of every line,
    a formatted but empty spreadsheet column) is dropped; a blank header over data is a fault."""
    keep: list[int] = []
    for position, header in enumerate(raw.headers):
        if header:
            keep.append(position)
            continue
        filled = raw.frame.to_series(position).is_not_null().arg_true()
        if filled.len():
            row = int(filled[0]) + 1
            example = (f"sheet {raw.sheet!r} cell {column_letter(raw.column_of(position))}{raw.line_of(row)}"
                       if raw.sheet else f"{raw.location(row)}, column {position + 1}")
            raise FileFault(raw.path.name, f"表头单元格为空 (the header cell at {where(position)} is blank but "
                                           f"the column holds data, e.g. at {example}); name the column or delete it")
        raw.notes.append(f"{where(position)} has no header and the column no data: ignored")
    if len(keep) != len(raw.headers):
        raw.header_columns = [raw.column_of(i) for i in keep]
        raw.frame = raw.frame.select([raw.frame.columns[i] for i in keep])
        raw.headers = [raw.headers[i] for i in keep]
    raw.frame.columns = raw.headers

