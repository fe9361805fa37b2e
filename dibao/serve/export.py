"""A work list as CSV (``GET /candidates?...&format=csv``): the rows the JSON answer pages through, all of them, with
the same scoping and masking, as a download Excel opens with its Chinese intact.

* UTF-8 with a byte-order mark: without it Excel on Windows reads the file as GBK and the names turn to mojibake.
* Every cell is text and goes through ``dibao.publish.formulas.neutralise`` (the work lists' one implementation):
  a value beginning with = + - @ (or a tab / carriage return) gets a leading apostrophe, so a hostile name or
  address cannot become a formula in the clerk's spreadsheet.
* At most ``DIBAO_API_EXPORT_MAX_ROWS`` rows (default 100,000); a larger list is refused (422) — narrow it by
  county, township or reason. Written in chunks, so an export does not build the whole file in memory.

A full 18-digit ID number (an admin's export) is digits only: Excel shows it as 3.40402E+17 when the file is
double-clicked. Import it with Data → From Text/CSV and set that column to Text, or use the XLSX work lists, whose
ID columns are text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
from fastapi.responses import StreamingResponse

from dibao.errors import ConfigError
from dibao.publish.contract import LIST_LABELS
from dibao.publish.formulas import neutralise
from dibao.serve.masking import candidate_view
from dibao.serve.tokens import Principal

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
ENV_MAX_ROWS = "DIBAO_API_EXPORT_MAX_ROWS"
DEFAULT_MAX_ROWS = 100_000
_CHUNK_ROWS = 1_000

# (header, field of models.Candidate): the order of the printed work lists where they overlap.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("名单", "list_label"), ("对象类型", "subject_type"), ("编号", "subject_id"), ("来源", "source"),
    ("县级区划代码", "county_code"), ("县名", "county_name"), ("乡镇", "town"), ("行政村", "village"),
    ("户主姓名", "head_name"), ("户主证件号码", "head_id"), ("原因代码", "reasons"), ("原因", "reason_labels"),
    ("核查依据", "detail"), ("依据数据", "figures"), ("首次发现日期", "first_seen"), ("渐退期起始", "grace_start"),
    ("渐退期至", "grace_until"),
)


def max_rows(environ: dict[str, str] | None = None) -> int:
    """The export cap (``DIBAO_API_EXPORT_MAX_ROWS``), checked when the API starts."""
    text = (os.environ if environ is None else environ).get(ENV_MAX_ROWS, "").strip()
    try:
        value = int(text) if text else DEFAULT_MAX_ROWS
    except ValueError:
        raise ConfigError(f"{ENV_MAX_ROWS}={text!r}: expected a whole number (default {DEFAULT_MAX_ROWS})") from None
    if value < 1:
        raise ConfigError(f"{ENV_MAX_ROWS}={text!r}: must be at least 1")
    return value


MAX_ROWS = max_rows()


def too_many_rows(rows: int, limit: int) -> str:
    return (f"名单共 {rows:,} 行，超过导出上限 {limit:,} 行，请按县、乡镇或原因缩小范围 (the list has {rows:,} rows, "
            f"more than the export limit of {limit:,}: narrow it by county, township or reason)")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def csv_cells(item: dict[str, Any]) -> list[str]:
    """One masked list item (``masking.candidate_view``) as the CSV's cells, each neutralised."""
    item = {**item, "list_label": LIST_LABELS.get(item["list"], item["list"])}
    return [neutralise(_text(item.get(field))) for _, field in COLUMNS]


def csv_chunks(name: str, rows: Iterable[dict[str, Any]], who: Principal) -> Iterator[bytes]:
    """The file: byte-order mark and header, then the rows masked for ``who``, ``_CHUNK_ROWS`` at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([neutralise(header) for header, _ in COLUMNS])
    for n, row in enumerate(rows, start=1):
        writer.writerow(csv_cells(candidate_view(name, row, who)))
        if n % _CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def candidates_csv(name: str, run: dt.date, frame: pl.DataFrame, who: Principal) -> StreamingResponse:
    """The download of one filtered, sorted list."""
    rows: Iterable[dict[str, Any]] = frame.iter_rows(named=True) if frame.width else ()
    filename = f"candidates-{name}-{run.isoformat()}.csv"
    return StreamingResponse(csv_chunks(name, rows, who), media_type=CSV_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON: one page (CandidatePage); format=csv: every matching row as a UTF-8 (BOM) CSV "
                         "download, cells beginning with = + - @ prefixed with an apostrophe",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
}
