"""Reading one input file into an all-text table, whatever its format, encoding and layout.

Everything is read as text, so an ID number can never be turned into a number on the way in; typing and
validation happen afterwards, in one place (``validate.py``). File-level faults are raised here as
``FileFault`` naming the file and the place in it (physical line of a CSV, sheet and cell of a workbook, byte
offset of an undecodable byte): a file we cannot read faithfully is not read at all.

County exports are laid out for printing, not for machines: a title row (often a merged cell), a unit line
(单位：元) and blank rows above the header, signatures (制表人、审核人…) below the data, the data on the second
sheet. The header is found by scoring candidate rows against the contract's header aliases (``header_score``);
what was skipped or dropped is said in ``RawTable.notes``, and ``RawTable.location`` turns a data row back into
the line or sheet row the operator can find in the file.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, AnyStr

import numpy as np
import polars as pl

from dibao.errors import FileFault

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES

# Encodings we accept, with their Python codec name. Auto-detection tries them in this order.
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030", "gbk": "gb18030",
             "gb2312": "gb18030", "utf-16": "utf-16"}
_DELIMITERS = (",", "\t", "|", ";")

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

_HEAD_BYTES = 256 * 1024  # enough for HEADER_SEARCH_ROWS records of any real export
_UTF8_EVIDENCE = 20  # multi-byte UTF-8 characters decoded before a bad byte: the file is UTF-8, not GB18030
_LINES_CHUNK = 32 * 1024 * 1024  # bytes scanned at a time when locating multi-line records
_BOM = b"\xef\xbb\xbf"
# Binary data, never text: a run of NUL bytes. (A lone NUL inside a value is a control character that
# validation cleans away, as copy-pasted names sometimes carry.)
_NUL_RUN = b"\x00" * 4
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- bytes and encodings -----------------------------------------------------------------------------------------


def _line_of_byte(data: bytes, offset: int) -> int:
    """The 1-based physical line a byte offset falls on (UTF-16 counts its two-byte newlines)."""
    if data.startswith(_UTF16_BOMS):
        return data[:offset].decode("utf-16", errors="replace").count("\n") + 1
    return data.count(b"\n", 0, offset) + 1


def byte_context(data: bytes, offset: int) -> str:
    """``byte 1234 (line 5): 61 62 [ff] 00 9a …``: a bad byte located, with its neighbours in hex."""
    low, high = max(0, offset - 4), min(len(data), offset + 8)
    cells = [f"[{b:02x}]" if low + i == offset else f"{b:02x}" for i, b in enumerate(data[low:high])]
    return (f"byte {offset} (line {_line_of_byte(data, offset)}): {'… ' if low else ''}{' '.join(cells)}"
            f"{' …' if high < len(data) else ''}")


def _utf8_evidence(prefix: bytes) -> int:
    """How many multi-byte UTF-8 characters a validly decoded prefix holds (lead bytes ≥ 0xC0)."""
    return len(prefix) - len(prefix.translate(None, bytes(range(0xC0, 0x100))))


def _codec_key(forced: str | None) -> str | None:
    """An encoding override in the form ``ENCODINGS`` is keyed by (``UTF_8`` / ``utf8`` → ``utf-8``)."""
    if forced is None:
        return None
    key = forced.lower().replace("_", "-")
    return {"utf8": "utf-8", "utf8-sig": "utf-8-sig"}.get(key, key)


def decode_text(path: Path, data: bytes, forced: str | None) -> tuple[str, str]:
    """Decode CSV bytes. Returns (text, encoding name). UTF-8 (with or without BOM), GB18030 or UTF-16 (BOM).

    A file that decodes as UTF-8 for a while (many multi-byte characters) and then hits a bad byte is a damaged
    UTF-8 file, not GB18030: it is refused at that byte rather than read as mojibake.
    """
    if forced:
        key = _codec_key(forced)
        codec = ENCODINGS.get(key or "")
        if codec is None:
            raise FileFault(path.name, f"未知的编码 (unknown encoding {forced!r}; known: {', '.join(ENCODINGS)})")
        try:
            return data.decode(codec), forced.lower()
        except UnicodeDecodeError as exc:
            raise FileFault(path.name, f"文件不是有效的 {forced} 编码 (is not valid {forced}: "
                                       f"{byte_context(data, exc.start)}); check the encoding override") from exc
    if data.startswith(_BOM):
        candidates = ["utf-8-sig"]
    elif data.startswith(_UTF16_BOMS):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    furthest = 0
    for name in candidates:
        try:
            return data.decode(ENCODINGS[name]), name
        except UnicodeDecodeError as exc:
            furthest = max(furthest, exc.start)
            if name.startswith("utf-8") and _utf8_evidence(data[:exc.start]) >= _UTF8_EVIDENCE:
                raise FileFault(path.name, f"文件中有无效的 UTF-8 字节 (the file is UTF-8 but holds bytes that are "
                                           f"not: {byte_context(data, exc.start)}; part of it was saved in another "
                                           f"encoding, or it is damaged)") from exc
    raise FileFault(path.name, f"无法识别文件编码 (unreadable encoding: the file is neither UTF-8 nor GB18030; "
                               f"{byte_context(data, furthest)}); re-export as CSV UTF-8, or name the encoding "
                               f"with --encoding")


def _refuse_binary(path: Path, data: bytes, forced: str | None) -> None:
    """A workbook or other binary file under a CSV name is refused with what it looks like, not parsed as text."""
    if data.startswith(b"PK\x03\x04"):
        raise FileFault(path.name, "这是 Excel 工作簿而不是 CSV (the file is a ZIP archive, as an .xlsx workbook is, "
                                   "not CSV text: rename it .xlsx, or save it as CSV)")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileFault(path.name, "这是旧版 Excel 工作簿而不是 CSV (the file is an old-style .xls workbook, not "
                                   "CSV text: rename it .xls, or save it as CSV)")
    if data.startswith(_UTF16_BOMS):
        return
    nul = data.find(b"\x00")  # one memchr over the file; the run is only looked for when there is a NUL at all
    if nul < 0:
        return
    head = data[:200]
    utf16 = head.count(b"\x00") * 3 >= len(head)
    nul = nul if utf16 else data.find(_NUL_RUN, nul)
    if nul >= 0:
        decode_text(path, data, forced)  # undecodable as well: the encoding fault, at its byte, says more
        hint = "; it looks like UTF-16 without a byte-order mark: re-export as CSV UTF-8" if utf16 else ""
        raise FileFault(path.name, f"文件含有二进制数据 (binary data, not text: NUL bytes at "
                                   f"{byte_context(data, nul)}{hint})")


# --- CSV: finding the header -------------------------------------------------------------------------------------


def _stack(upper: Sequence[str], lower: Sequence[str]) -> list[str]:
    """A two-row header as one: the lower row's cell, or the upper one's where the lower is blank (a cell merged
    down over both rows keeps its text in the upper row; a group title over several columns is replaced)."""
    width = max(len(upper), len(lower))
    padded = [*upper, *[""] * (width - len(upper))], [*lower, *[""] * (width - len(lower))]
    return [low or up for up, low in zip(*padded, strict=True)]


def _best_header(rows: Sequence[list[str]], score: HeaderScore) -> tuple[int, int, int]:
    """(index, rows it spans: 1 or 2, fields named) of the best header among the first rows.

    A row names some contract fields; two consecutive rows stacked (``_stack``) are a header only when together
    they name more than either alone. The most fields win, the earliest on a tie.
    """
    points = [score(row) for row in rows[:HEADER_SEARCH_ROWS]]
    best = (-1, 1, 0)
    for index, found in enumerate(points):
        if found > best[2]:
            best = (index, 1, found)
        if index + 1 < len(points):
            both = score(_stack(rows[index], rows[index + 1]))
            if both > max(found, points[index + 1], best[2]):
                best = (index, 2, both)
    return best



@dataclass(frozen=True)
class _Record:
    """One CSV record near the top of the file, with where it is."""

    cells: list[str]
    first_line: int  # 1-based physical line where the record starts
    last_line: int  # where it ends (a quoted line break makes a record span lines)
    start: int  # byte offset of the record in the UTF-8 text
    end: int  # byte offset just after it


def _split_keepends(text: AnyStr, newline: AnyStr) -> list[AnyStr]:
    """Lines with their endings, split on line feeds only (``str.splitlines`` also splits on \\x1c, \\u2028…)."""
    parts = text.split(newline)
    lines = [part + newline for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _head_records(lines: Sequence[str], sizes: Sequence[int], delimiter: str) -> list[_Record]:
    """The first ``HEADER_SEARCH_ROWS`` records, parsed by the CSV rules (a quoted cell may hold a line break)."""
    offsets = [0, *accumulate(sizes)]
    reader = csv.reader(iter(lines), delimiter=delimiter)
    records: list[_Record] = []
    while len(records) < HEADER_SEARCH_ROWS:
        before = reader.line_num
        try:
            cells = next(reader)
        except (StopIteration, csv.Error):
            break
        records.append(_Record(cells, before + 1, reader.line_num, offsets[before], offsets[reader.line_num]))
    return records


def _is_blank(cells: Sequence[str | None]) -> bool:
    return not any(c and c.strip() for c in cells)


def _choose_header(path: Path, lines: Sequence[str], sizes: Sequence[int],
                   score: HeaderScore | None) -> tuple[_Record, int, str]:
    """The header (as one record), the line it starts on, and the delimiter.

    The header is the record (of the first 30, under any of the delimiters), or two consecutive records, naming
    the most contract fields, the earliest on a tie; with fewer than 2 named anywhere, the first non-blank line is
    the header, split on the delimiter it holds most of, so that validation reports the columns that are missing.
    The record returned is the (last) header record, whose offsets Polars starts from, with the stacked cells.
    """
    if score is not None:
        best: tuple[int, int, _Record, int, str] | None = None
        for delimiter in _DELIMITERS:
            records = _head_records(lines, sizes, delimiter)
            index, height, points = _best_header([[c.strip() for c in r.cells] for r in records], score)
            if points < MIN_HEADER_FIELDS or (best is not None and (points, -records[index].first_line) <= best[:2]):
                continue
            last = records[index + height - 1]
            cells = _stack(*[records[i].cells for i in (index, index + 1)]) if height == 2 else last.cells
            header = _Record(cells, last.first_line, last.last_line, last.start, last.end)
            best = (points, -records[index].first_line, header, records[index].first_line, delimiter)
        if best is not None:
            return best[2], best[3], best[4]
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise FileFault(path.name, "空文件 (empty file: no header row)")
    delimiter = max(_DELIMITERS, key=first.count)
    for record in _head_records(lines, sizes, delimiter):
        if not _is_blank(record.cells):
            return record, record.first_line, delimiter
    raise FileFault(path.name, "空文件 (empty file: no header row)")


def _check_duplicates(path: Path, headers: list[str], where: Callable[[int], str]) -> None:
    """Two columns with the same header cannot be told apart: refused, naming both cells."""
    seen: dict[str, int] = {}
    for position, header in enumerate(headers):
        if not header:
            continue
        if header in seen:
            raise FileFault(path.name, f"表头重复 (duplicate header: the column appears twice, at "
                                       f"{where(seen[header])} and {where(position)})", column=header)
        seen[header] = position


# --- CSV: parsing the body ---------------------------------------------------------------------------------------


def _placeholders(width: int) -> list[str]:
    """Unique column names for parsing (real headers may be blank); renamed to the headers at the end."""
    return [f"column_{i}" for i in range(width)]


def _odd_quote_line(lines: Sequence[str], first: int, last: int) -> int:
    """Index of the first line in ``first..last`` with an odd number of quotes: where a quote was left open."""
    for index in range(first, min(last, len(lines) - 1) + 1):
        if lines[index].count('"') % 2:
            return index
    return first


def _unclosed_quote(path: Path, line: int) -> FileFault:
    return FileFault(path.name, f"引号未闭合 (line {line}: a value opens a quote '\"' that is never closed, so the "
                                f"lines after it were read as part of that value; close or remove the quote)")


def _csv_fault(path: Path, exc: csv.Error, lines: Sequence[str], before: int, after: int, data_line: int,
               delimiter: str) -> FileFault:
    """Python's ``csv`` error for the record starting at line index ``before``, in the operator's words."""
    message = str(exc)
    line = data_line + before
    if after - 1 > before or "unexpected end of data" in message or "field limit" in message:
        return _unclosed_quote(path, data_line + _odd_quote_line(lines, before, after - 1))
    if "expected after" in message:
        return FileFault(path.name, f"引号使用错误 (line {line}: a value starts with a quote but has more text after "
                                    f"its closing quote, before the next {delimiter!r}; quote the whole value and "
                                    f"double the quotes inside it)")
    if "new-line character" in message:
        return FileFault(path.name, f"换行符错误 (line {line}: a carriage return (\\r) alone inside the line; the "
                                    f"file mixes line endings: re-export it)")
    return FileFault(path.name, f"CSV 格式错误 (line {line}: cannot be split into fields: {message})")


def _csv_records(path: Path, text: str, delimiter: str, width: int,
                 data_line: int) -> tuple[pl.DataFrame, pl.Series]:
    """Parse the body with Python's ``csv`` (only when Polars could not), tracking physical lines.

    Python's reader treats a quote inside an unquoted value as a literal character, as Excel and most writers
    mean it (``林"蝶萱``); a record that runs over lines because a quote never closed, or that has more fields
    than the header, is refused at the line where it starts.
    """
    lines = _split_keepends(text, "\n")
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    while True:
        before = reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_fault(path, exc, lines, before, reader.line_num, data_line, delimiter) from exc
        last = reader.line_num - 1
        if last > before and any("\n" in c and c.count(delimiter) >= max(width - 1, 1) for c in record):
            raise _unclosed_quote(path, data_line + _odd_quote_line(lines, before, last))  # it swallowed rows
        if len(record) > width:
            spans = f" (the row runs over lines {data_line + before}–{data_line + last})" if last > before else ""
            raise FileFault(path.name, f"字段数与表头不符 (line {data_line + before} has {len(record)} fields but the "
                                       f"header has {width}{spans}; an unquoted {delimiter!r} inside a value?)")
        records.append(record + [""] * (width - len(record)))
        starts.append(data_line + before)
    names = _placeholders(width)
    frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
    return frame, pl.Series("line", starts, dtype=pl.UInt32)


def _record_starts(utf8: bytes, offset: int) -> np.ndarray:
    """0-based line (counted from ``offset``) where each record starts, from newline positions and quote parity.

    A line feed ends a record when an even number of quotes precede it (escaped quotes come in pairs). NumPy,
    a chunk at a time: no per-row Python work, and memory bounded by the chunk.
    """
    array = np.frombuffer(utf8, dtype=np.uint8, offset=offset)
    ends: list[np.ndarray] = []
    quotes = lines = 0
    for low in range(0, len(array), _LINES_CHUNK):
        part = array[low:low + _LINES_CHUNK]
        newlines = np.flatnonzero(part == 10)
        quote_positions = np.flatnonzero(part == 34)
        before = np.searchsorted(quote_positions, newlines) + quotes
        ends.append(np.flatnonzero(before % 2 == 0) + lines)
        quotes += len(quote_positions)
        lines += len(newlines)
    total = lines + (1 if len(array) and array[-1] != 10 else 0)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), *[e + 1 for e in ends]])
    return starts[starts < total]


def _swallowed_rows(frame: pl.DataFrame, delimiter: str) -> bool:
    """Does a value hold a line break and a row's worth of delimiters (an open quote swallowed whole lines)?

    Delimiters are counted only in the few values that hold a line break.
    """
    most = frame.select(pl.col(c).filter(pl.col(c).str.contains("\n", literal=True))
                        .str.count_matches(delimiter, literal=True).max() for c in frame.columns).row(0)
    return any(n is not None and n >= max(frame.width - 1, 1) for n in most)


def _field_quote(delimiter: str) -> re.Pattern[bytes]:
    """A quote opening a field: at the start of a line or right after a delimiter."""
    return re.compile(rb'(?m)(?:^|' + re.escape(delimiter.encode()) + rb')"')


def _parse_body(path: Path, utf8: bytes, header: _Record, delimiter: str,
                width: int) -> tuple[pl.DataFrame, pl.Series | None] | None:
    """Parse from the header record on; Polars on the bytes in the usual case (no Python work per row).

    Returns (frame, line of each row or None when row *i* is on line ``data_line + i``), or None when the bytes
    are not UTF-8 after all. Polars' errors never reach the operator: on a failure the body is read again the way
    Excel means it (literal quotes inside values) or diagnosed with Python's ``csv`` at a physical line.
    """
    data_line = header.last_line + 1
    names = _placeholders(width)
    source = utf8 if header.start == 0 else utf8[header.start:]
    try:
        frame = pl.read_csv(source, separator=delimiter, has_header=True, new_columns=names, infer_schema=False,
                            encoding="utf8")
    except pl.exceptions.PolarsError:
        frame = None
    if frame is not None:
        if utf8.find(b'"', header.end) < 0:
            return frame, None  # no quote, so no record spans lines: row i is line data_line + i (one memchr)
        lines = utf8.count(b"\n", header.end) + (1 if len(utf8) > header.end and not utf8.endswith(b"\n") else 0)
        if lines == frame.height:
            return frame, None
        if not _swallowed_rows(frame, delimiter):
            starts = _record_starts(utf8, header.end)
            if len(starts) == frame.height:
                return frame, pl.Series("line", starts + data_line, dtype=pl.UInt32)
    try:
        text = utf8[header.end:].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if frame is None and not _field_quote(delimiter).search(utf8, header.end):
        # No value starts with a quote, so every quote is a character of its value: Polars can read it as such.
        synthetic = (delimiter.join(names) + "\n").encode() + utf8[header.end:]
        try:
            literal = pl.read_csv(synthetic, separator=delimiter, has_header=True, infer_schema=False,
                                  quote_char=None, encoding="utf8")
            if literal.height == text.count("\n") + (0 if text.endswith("\n") or not text else 1):
                return literal, None
        except pl.exceptions.PolarsError:
            pass
    return _csv_records(path, text, delimiter, width, data_line)


def _csv_table(path: Path, data: bytes, utf8: bytes, lines: Sequence[str], sizes: Sequence[int],
               encoding: str, score: HeaderScore | None) -> RawTable | None:
    """One CSV, given as UTF-8 bytes and its first lines decoded. None: the bytes are not UTF-8 after all."""
    header, first_line, delimiter = _choose_header(path, lines, sizes, score)
    headers = [c.strip() for c in header.cells]
    lines_text = f"line {first_line}" if first_line == header.first_line else f"lines {first_line}–{header.first_line}"

    def where(position: int) -> str:
        return f"column {position + 1} of {lines_text}"

    _check_duplicates(path, headers, where)
    parsed = _parse_body(path, utf8, header, delimiter, len(headers))
    if parsed is None:
        return None
    frame, row_lines = parsed
    notes = []
    if first_line != header.first_line:
        notes.append(f"two-row header on {lines_text}: a lower cell names its column, the upper one where it is blank")
    if first_line > 1:
        notes.append(f"header found on line {first_line}; {first_line - 1} title/blank line(s) above it skipped")
    raw = RawTable(path, "csv", encoding, _sha256(data), headers, _tidy(frame), notes=notes,
                   header_line=first_line, data_line=header.last_line + 1, row_lines=row_lines)
    _drop_layout_rows(raw)
    _settle_headers(raw, where)
    return raw


def _line_feeds(utf8: bytes) -> bytes:
    """A file whose lines end in a carriage return alone (Excel for Mac's "CSV (Macintosh)") gets line feeds;
    Polars and the line numbers count line feeds. Any other file is returned as it is, without a copy."""
    head = utf8[:_HEAD_BYTES]
    if b"\n" in head or b"\r" not in head:
        return utf8
    return utf8.replace(b"\r", b"\n")


def _head_lines(utf8: bytes) -> tuple[list[str], list[int]]:
    """The first lines (about 256 KB, cut at a line end), decoded, and their sizes in bytes.

    Raises UnicodeDecodeError when they are not UTF-8.
    """
    head = utf8[:_HEAD_BYTES]
    if len(utf8) > _HEAD_BYTES:
        cut = head.rfind(b"\n")
        head = head[:cut + 1] if cut >= 0 else head
    raw_lines = _split_keepends(head, b"\n")
    return [line.decode("utf-8") for line in raw_lines], [len(line) for line in raw_lines]


def read_csv(path: Path, data: bytes, forced_encoding: str | None, header_score: HeaderScore | None = None) -> RawTable:
    """CSV in UTF-8 (with or without BOM), GB18030 or UTF-16.

    UTF-8 bytes go to Polars as they are (it checks the encoding itself); only other encodings are transcoded
    through Python, which costs a second or two per few hundred megabytes.
    """
    _refuse_binary(path, data, forced_encoding)
    forced = _codec_key(forced_encoding)
    if forced in (None, "utf-8", "utf-8-sig") and not data.startswith(_UTF16_BOMS):
        bom = 3 if data.startswith(_BOM) else 0
        encoding = "utf-8-sig" if bom else (forced_encoding or "utf-8").lower()
        if not data[bom:bom + 4096].strip() and not data[bom:].strip():
            raise FileFault(path.name, "空文件 (empty file)")
        utf8 = _line_feeds(data[bom:] if bom else data)  # a byte-order mark costs one copy, as before
        try:
            lines, sizes = _head_lines(utf8)
        except UnicodeDecodeError:
            lines, sizes = [], []  # not UTF-8 (a GB18030 export): transcoded below
        if lines:
            table = _csv_table(path, data, utf8, lines, sizes, encoding, header_score)
            if table is not None:
                return table
    text, encoding = decode_text(path, data, forced_encoding)
    if not text or text.isspace():
        raise FileFault(path.name, "空文件 (empty file)")
    if data.startswith(_UTF16_BOMS) and _NUL_RUN.decode() in text:  # other encodings: checked on the bytes
        offset = len(text[:text.index(_NUL_RUN.decode())].encode("utf-16"))
        raise FileFault(path.name, f"文件含有二进制数据 (binary data, not text: NUL characters at "
                                   f"{byte_context(data, offset)})")
    utf8 = _line_feeds(text.encode("utf-8"))
    lines, sizes = _head_lines(utf8)
    table = _csv_table(path, data, utf8, lines, sizes, encoding, header_score)
    if table is None:  # cannot happen: the text was encoded to UTF-8 just above
        raise FileFault(path.name, "无法读取 (cannot be read as CSV text)")
    return table


# --- rows and columns that are layout, not data ------------------------------------------------------------------


def _tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """Strip every value; a blank cell becomes null."""
    return frame.with_columns(
        pl.all().cast(pl.String).str.strip_chars().replace("", None)
    )


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


def _drop_layout_rows(raw: RawTable) -> None:
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


def _settle_headers(raw: RawTable, where: Callable[[int], str]) -> None:
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


# --- workbooks ---------------------------------------------------------------------------------------------------


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
    row, height, points = _best_header(rows, score) if score is not None else (-1, 1, 0)
    if points < MIN_HEADER_FIELDS:
        row, height = next((n for n, cells in enumerate(rows) if not _is_blank(cells)), -1), 1
    if row < 0:
        return _SheetHead(index, name, -1, 1, {}, 0)
    cells = _stack(rows[row], rows[row + 1]) if height == 2 else rows[row]
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
    frame.columns = _placeholders(frame.width)
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

    The top 30 rows of every sheet are read first (as text, no header) to find the header; then the chosen sheet
    is loaded from its header row. fastexcel parses the whole sheet on every load, so this is two parses of the
    sheet where it used to be one (three or more when a column mixes text and numbers).
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
    head, notes = _choose_sheet(path, reader, sheets, header_score)
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


def _sheet_table(path: Path, data: bytes, fmt: str, reader: Any, head: _SheetHead, loaded: _SheetData,
                 is_id_header: Callable[[str], bool], notes: list[str]) -> RawTable:
    """The RawTable of a loaded sheet: layout rows dropped, headers checked, ID columns stored as numbers found."""
    headers = loaded.headers

    def cell(position: int) -> str:
        letter = column_letter(loaded.first_column + position)
        if head.header_rows == 1:
            return f"sheet {head.name!r} cell {letter}{head.header_row + 1}"
        return f"sheet {head.name!r} cells {letter}{head.header_row + 1}–{letter}{head.last_header_row + 1}"

    _check_duplicates(path, headers, cell)
    if head.header_rows == 2:
        notes.append(f"two-row header on sheet {head.name!r} rows {head.header_row + 1}–{head.last_header_row + 1}: "
                     f"a lower cell names its column, the upper one where it is blank")
    if head.header_row > 0:
        notes.append(f"header found on sheet {head.name!r} row {head.header_row + 1}; {head.header_row} "
                     f"title/blank row(s) above it skipped")
    frame = _tidy(loaded.frame)
    ids = [i for i, h in enumerate(headers) if h and is_id_header(h)]
    numeric: dict[str, int] = {}
    for position in ids:
        if loaded.typed and loaded.numeric[position]:
            hits = frame.to_series(position).is_not_null().arg_true()
            numeric[headers[position]] = int(hits[0]) + 1 if hits.len() else 0
    raw = RawTable(path, fmt, None, _sha256(data), headers, frame, numeric, notes, header_line=head.header_row + 1,
                   sheet=head.name, first_column=loaded.first_column, data_line=head.last_header_row + 2)
    _drop_layout_rows(raw)
    if not loaded.typed:
        _mixed_id_columns(raw, reader, head, loaded.first_column, ids)
    _settle_headers(raw, cell)
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


# --- Parquet and the entry point -----------------------------------------------------------------------------------


def read_parquet(path: Path, data: bytes, is_id_header: Callable[[str], bool]) -> RawTable:
    """A Parquet file: columns and types as stored; float ID columns reported (digits already lost)."""
    try:
        frame = pl.read_parquet(data)
    except Exception as exc:  # Polars' own wording is not for the operator
        raise FileFault(path.name, "无法作为 Parquet 读取 (cannot be read as Parquet: the file is damaged, cut short "
                                   "or not Parquet; export it again)") from exc
    headers = list(frame.columns)
    if not headers:
        raise FileFault(path.name, "空文件 (empty file: no columns)")
    numeric: dict[str, int] = {}
    for header in headers:
        if is_id_header(header) and frame.schema[header].is_float():
            hits = frame.get_column(header).is_not_null().arg_true()
            if hits.len():
                numeric[header] = int(hits[0]) + 1
    # Dates and numbers become their ISO / decimal text, then follow the same validation as CSV.
    return RawTable(path, "parquet", None, _sha256(data), headers, _tidy(frame), numeric, data_line=1)


def read_table(path: Path, *, forced_encoding: str | None = None,
               is_id_header: Callable[[str], bool] = lambda _: False,
               header_score: HeaderScore | None = None) -> RawTable:
    """Read one file of a drop.

    ``is_id_header``: which raw headers hold ID numbers (checked for numeric cells). ``header_score``: how many
    contract fields a candidate header row names (see ``header_scorer``); without it the header is the first row.
    """
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileFault(path.name, f"无法读取 (cannot be read: {exc.strerror})") from exc
    if not data:
        raise FileFault(path.name, "空文件 (empty file (0 bytes))")
    if suffix in CSV_SUFFIXES:
        return read_csv(path, data, forced_encoding, header_score)
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, data, is_id_header, header_score)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, data, is_id_header)
    raise FileFault(path.name, f"不支持的格式 (unsupported format {suffix!r}; use CSV, XLSX, XLS or Parquet)")
