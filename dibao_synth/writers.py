"""File formats of a drop: CSV (UTF-8, UTF-8 with BOM, GB18030), XLSX and Parquet, with the contract's Chinese
headers. Output is byte-identical for the same input: fixed workbook properties, no timestamps.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xlsxwriter

from dibao.schema import FieldType, FileSpec
from dibao_synth.params import XLSX_CREATED, XLSX_MAX_ROWS

NUMERIC_TYPES = (FieldType.MONEY, FieldType.COUNT, FieldType.YEAR)
_CSV_CHUNK = 250_000

# (format, encoding) per stem for formats="mixed": the realistic mix of what counties send.
MIXED: dict[str, tuple[str, str | None]] = {
    "registry": ("csv", "gb18030"),
    "monitoring": ("xlsx", None),
    "dibao_roll": ("csv", "utf-8-sig"),
    "bank_assets": ("csv", "utf-8"),
    "dept_facts": ("parquet", None),
    "counties": ("xlsx", None),
    "relatives": ("csv", "gb18030"),
}
# Header overrides per stem in the mixed drop (ingestion strips a bracketed unit).
MIXED_HEADERS: dict[str, dict[str, str]] = {"bank_assets": {"balance": "余额(元)"}}


@dataclass(frozen=True)
class WrittenFile:
    """One file as written: where, in which format and encoding, and how many data rows."""

    stem: str
    path: Path
    format: str  # csv | xlsx | parquet
    encoding: str | None  # for CSV: utf-8, utf-8-sig (BOM) or gb18030
    rows: int
    xlsx_fallback: bool  # planned as XLSX, written as CSV GB18030 because it is too large


def plan_format(stem: str, formats: str) -> tuple[str, str | None]:
    if formats == "mixed":
        return MIXED[stem]
    if formats == "csv":
        return "csv", "utf-8"
    if formats == "parquet":
        return "parquet", None
    raise ValueError(f"formats must be mixed, csv or parquet, not {formats!r}")


def write_table(frame: pl.DataFrame, spec: FileSpec, out: Path, formats: str) -> WrittenFile:
    """Write one stem; ``frame`` has the canonical field names as String columns, in schema order."""
    fmt, encoding = plan_format(spec.stem, formats)
    fallback = fmt == "xlsx" and frame.height > XLSX_MAX_ROWS
    if fallback:
        fmt, encoding = "csv", "gb18030"
    overrides = MIXED_HEADERS.get(spec.stem, {}) if formats == "mixed" else {}
    headers = [overrides.get(f.name, f.label) for f in spec.fields]
    named = frame.select([pl.col(f.name).alias(h) for f, h in zip(spec.fields, headers, strict=True)])
    path = out / f"{spec.stem}.{fmt}"
    if fmt == "csv":
        assert encoding is not None
        write_csv(named, path, encoding)
    elif fmt == "xlsx":
        write_xlsx(named, spec, path)
    else:
        named.write_parquet(path, compression="zstd", statistics=False)
    return WrittenFile(spec.stem, path, fmt, encoding, frame.height, fallback)


def write_csv(frame: pl.DataFrame, path: Path, encoding: str) -> None:
    """CSV in chunks (bounded memory), re-encoded for GB18030."""
    with path.open("wb") as fh:
        if encoding == "utf-8-sig":
            fh.write(codecs.BOM_UTF8)
        for start in range(0, max(frame.height, 1), _CSV_CHUNK):  # chunks, not rows
            buf = io.BytesIO()
            frame.slice(start, _CSV_CHUNK).write_csv(buf, include_header=start == 0)
            data = buf.getvalue()
            if encoding == "gb18030":
                data = data.decode("utf-8").encode("gb18030")
            fh.write(data)


def write_xlsx(frame: pl.DataFrame, spec: FileSpec, path: Path) -> None:
    """XLSX: IDs and other text as text cells, amounts and counts as numbers (text if unparseable)."""
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"created": XLSX_CREATED})
    ws = wb.add_worksheet(spec.label[:31])
    for c, header in enumerate(frame.columns):
        ws.write_string(0, c, header)
    numeric = [f.type in NUMERIC_TYPES for f in spec.fields]
    text_cols = [frame.to_series(i).to_list() for i in range(frame.width)]
    num_cols = [frame.to_series(i).cast(pl.Float64, strict=False).to_list() if numeric[i] else None
                for i in range(frame.width)]
    # xlsxwriter writes cell by cell: this is why large tables fall back to CSV (XLSX_MAX_ROWS).
    for r in range(frame.height):
        for c in range(frame.width):
            text = text_cols[c][r]
            if text is None or text == "":
                continue
            nums = num_cols[c]
            value = nums[r] if nums is not None else None
            if value is not None:
                ws.write_number(r + 1, c, value)
            else:
                ws.write_string(r + 1, c, text)
    wb.close()
