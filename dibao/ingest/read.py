"""Reading one input file into an all-text table, whatever its format and encoding.

Everything is read as text, so an ID number can never be turned into a number on the way in; typing and
validation happen afterwards, in one place (``validate.py``). File-level faults are raised here as
``FileFault`` naming the file (and column): a file we cannot read faithfully is not read at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class RawTable:
    """A file as read: original headers, every value as text (stripped; blank → null)."""

    path: Path
    format: str  # csv | xlsx | parquet
    encoding: str | None  # for CSV: the encoding detected or forced
    sha256: str
    headers: list[str]
    frame: pl.DataFrame  # columns in header order, all pl.String
    # header → first 1-based data row whose ID is stored as a number (0: some rows, which is not known)
    numeric_columns: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_text(path: Path, data: bytes, forced: str | None) -> tuple[str, str]:
    """Decode CSV bytes. Returns (text, encoding name). UTF-8 (with or without BOM), GB18030 or UTF-16 (BOM)."""
    if forced:
        codec = ENCODINGS.get(forced.lower().replace("_", "-"))
        if codec is None:
            raise FileFault(path.name, f"unknown encoding {forced!r} (known: {', '.join(ENCODINGS)})")
        try:
            return data.decode(codec), forced.lower()
        except UnicodeDecodeError as exc:
            raise FileFault(path.name, f"is not valid {forced} (byte {exc.start}): check the encoding override") \
                from exc
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for name in candidates:
        try:
            return data.decode(ENCODINGS[name]), name
        except UnicodeDecodeError:
            continue
    raise FileFault(path.name, "unreadable encoding: the file is neither UTF-8 nor GB18030 "
                               "(re-export as CSV UTF-8, or name the encoding with --encoding)")


def _header_row(path: Path, text: str) -> tuple[list[str], str]:
    end = text.find("\n")
    first_line = (text if end < 0 else text[:end]).rstrip("\r")
    if not first_line.strip():
        raise FileFault(path.name, "empty file: no header row")
    delimiter = max(_DELIMITERS, key=first_line.count)
    headers = next(csv.reader([first_line], delimiter=delimiter))
    return [h.strip() for h in headers], delimiter


def _check_headers(path: Path, headers: list[str]) -> None:
    seen: set[str] = set()
    for position, header in enumerate(headers, start=1):
        if not header:
            raise FileFault(path.name, f"header cell {position} is blank")
        if header in seen:
            raise FileFault(path.name, "duplicate header: the column appears twice", column=header)
        seen.add(header)


def _tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """Strip every value; a blank cell becomes null."""
    return frame.with_columns(
        pl.all().cast(pl.String).str.strip_chars().replace("", None)
    )


def _csv_problem(text: str, delimiter: str, width: int) -> str | None:
    """Only on failure: find the first data row whose field count differs from the header's."""
    for number, record in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
        if number and record and len(record) != width:
            return (f"data row {number} has {len(record)} fields but the header has {width} "
                    f"(an unquoted {delimiter!r} inside a value?)")
    return None


def _parse_csv(path: Path, utf8: bytes, text: str | None, headers: list[str], delimiter: str) -> pl.DataFrame:
    try:
        return pl.read_csv(io.BytesIO(utf8), separator=delimiter, infer_schema=False, has_header=True,
                           new_columns=headers, encoding="utf8")
    except pl.exceptions.PolarsError as exc:
        decoded = text if text is not None else utf8.decode("utf-8", errors="replace")
        raise FileFault(path.name, _csv_problem(decoded, delimiter, len(headers)) or
                        f"cannot be parsed as CSV: {str(exc).splitlines()[0]}") from exc


def read_csv(path: Path, data: bytes, forced_encoding: str | None) -> RawTable:
    """CSV in UTF-8 (with or without BOM), GB18030 or UTF-16.

    UTF-8 bytes go to Polars as they are (it checks the encoding itself); only other encodings are transcoded
    through Python, which costs a second or two per few hundred megabytes.
    """
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    first_line = body.split(b"\n", 1)[0] if b"\n" in body[:1_000_000] else body[:1_000_000]
    utf8_header: str | None = None
    if forced_encoding is None or forced_encoding.lower().replace("_", "-") in ("utf-8", "utf-8-sig", "utf8"):
        try:
            utf8_header = first_line.decode("utf-8")
        except UnicodeDecodeError:
            utf8_header = None
    if utf8_header is not None and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-8-sig" if body is not data else (forced_encoding or "utf-8").lower()
        if not utf8_header.strip() and not body.strip():
            raise FileFault(path.name, "empty file")
        headers, delimiter = _header_row(path, utf8_header)
        _check_headers(path, headers)
        try:
            frame = _parse_csv(path, body, None, headers, delimiter)
        except FileFault:
            if forced_encoding is not None:
                raise
            frame = None  # not valid UTF-8 after all (a GB18030 body under an ASCII header): transcode below
        if frame is not None:
            return RawTable(path, "csv", encoding, _sha256(data), headers, _tidy(frame))
    text, encoding = decode_text(path, data, forced_encoding)
    if not text or text.isspace():
        raise FileFault(path.name, "empty file")
    headers, delimiter = _header_row(path, text)
    _check_headers(path, headers)
    frame = _parse_csv(path, text.encode("utf-8"), text, headers, delimiter)
    return RawTable(path, "csv", encoding, _sha256(data), headers, _tidy(frame))


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


def read_excel(path: Path, data: bytes, is_id_header: Callable[[str], bool]) -> RawTable:
    """Read the first sheet as text; report ID columns where Excel stored numbers (digits already lost).

    One strict, typed load does both in the usual case (every column holds one type of cell). A column mixing
    text and numbers makes that load fail; then the sheet is read as text and each ID column is checked alone.
    """
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        sheets = reader.sheet_names
        if not sheets:
            raise FileFault(path.name, "empty workbook: no sheet")
        numeric: dict[str, int] = {}
        try:
            typed = reader.load_sheet(0, schema_sample_rows=None, dtype_coercion="strict").to_polars()
            for header in typed.columns:
                if is_id_header(str(header).strip()) and typed.schema[header].is_numeric():
                    hits = typed.get_column(header).is_not_null().arg_true()
                    numeric[str(header).strip()] = int(hits[0]) + 1 if hits.len() else 0
            frame = _cells_as_text(typed)
        except fastexcel.UnsupportedColumnTypeCombinationError:
            frame = reader.load_sheet(0, dtypes="string", schema_sample_rows=None).to_polars()
            numeric = _mixed_id_columns(reader, frame, is_id_header)
    except FileFault:
        raise
    except Exception as exc:  # fastexcel raises its own hierarchy; any of it means "not readable"
        raise FileFault(path.name, f"cannot be read as an Excel workbook: {str(exc).splitlines()[0]}") from exc
    headers = [str(c).strip() for c in frame.columns]
    if not headers or frame.width == 0:
        raise FileFault(path.name, "empty file: the first sheet has no header row")
    _check_headers(path, headers)
    frame.columns = headers
    notes = []
    if len(sheets) > 1:
        notes.append(f"workbook has {len(sheets)} sheets; only the first ({sheets[0]!r}) was read")
    return RawTable(path, "xlsx", None, _sha256(data), headers, _tidy(frame), numeric, notes)


def _mixed_id_columns(reader: Any, frame: pl.DataFrame, is_id_header: Callable[[str], bool]) -> dict[str, int]:
    """Which ID columns hold numeric cells, when the sheet has columns of mixed cell types."""
    numeric: dict[str, int] = {}
    for header in [h for h in frame.columns if is_id_header(str(h).strip())]:
        # Strict inference tells text cells from numeric ones (asking for floats would coerce digit-only text).
        try:
            column = reader.load_sheet(0, use_columns=[header], schema_sample_rows=None,
                                       dtype_coercion="strict").to_polars().get_column(header)
        except Exception:  # text and numbers mixed: IDs ending in X stayed text, the others became numbers
            numeric[str(header).strip()] = 0
            continue
        if column.dtype.is_numeric():
            hits = column.is_not_null().arg_true()
            numeric[str(header).strip()] = int(hits[0]) + 1 if hits.len() else 0
    return numeric


def read_parquet(path: Path, data: bytes, is_id_header: Callable[[str], bool]) -> RawTable:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise FileFault(path.name, f"cannot be read as Parquet: {str(exc).splitlines()[0]}") from exc
    headers = list(frame.columns)
    if not headers:
        raise FileFault(path.name, "empty file: no columns")
    numeric: dict[str, int] = {}
    for header in headers:
        if is_id_header(header) and frame.schema[header].is_float():
            hits = frame.get_column(header).is_not_null().arg_true()
            if hits.len():
                numeric[header] = int(hits[0]) + 1
    # Dates and numbers become their ISO / decimal text, then follow the same validation as CSV.
    return RawTable(path, "parquet", None, _sha256(data), headers, _tidy(frame), numeric)


def read_table(path: Path, *, forced_encoding: str | None = None,
               is_id_header: Callable[[str], bool] = lambda _: False) -> RawTable:
    """Read one file of a drop. ``is_id_header``: which raw headers hold ID numbers (checked for numeric cells)."""
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileFault(path.name, f"cannot be read: {exc.strerror}") from exc
    if not data:
        raise FileFault(path.name, "empty file (0 bytes)")
    if suffix in CSV_SUFFIXES:
        return read_csv(path, data, forced_encoding)
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, data, is_id_header)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, data, is_id_header)
    raise FileFault(path.name, f"unsupported format {suffix!r} (use CSV, XLSX or Parquet)")
