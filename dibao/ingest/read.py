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

from collections.abc import Callable
from pathlib import Path

import polars as pl

from dibao.errors import FileFault
from dibao.ingest.csv_file import ENCODINGS, byte_context, decode_text, read_csv
from dibao.ingest.excel_file import read_excel
from dibao.ingest.table import (
    FileBytes,
    HeaderScore,
    RawTable,
    column_letter,
    header_scorer,
    sha256,
    tidy,
)

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES


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
    return RawTable(path, "parquet", None, sha256(data), headers, tidy(frame), numeric, data_line=1)


def read_table(path: Path, *, forced_encoding: str | None = None,
               is_id_header: Callable[[str], bool] = lambda _: False,
               header_score: HeaderScore | None = None) -> RawTable:
    """Read one file of a drop.

    ``is_id_header``: which raw headers hold ID numbers (checked for numeric cells). ``header_score``: how many
    contract fields a candidate header row names (see ``header_scorer``); without it the header is the first row.
    """
    suffix = path.suffix.lower()
    source = FileBytes(path)
    if suffix in CSV_SUFFIXES:
        return read_csv(path, source, forced_encoding, header_score)
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, source.data, is_id_header, header_score)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, source.data, is_id_header)
    raise FileFault(path.name, f"不支持的格式 (unsupported format {suffix!r}; use CSV, XLSX, XLS or Parquet)")



__all__ = ["CSV_SUFFIXES", "ENCODINGS", "EXCEL_SUFFIXES", "PARQUET_SUFFIXES", "SUPPORTED_SUFFIXES", "FileBytes",
           "HeaderScore", "RawTable", "byte_context", "column_letter", "decode_text", "header_scorer", "read_csv",
           "read_excel", "read_parquet", "read_table"]
