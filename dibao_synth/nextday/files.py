"""Day-1 files as written, and day-2 files written back in their own format, encoding, sheet and header spelling.

Which format a file is, its encoding, sheet and header row are what ingestion decided
(``dibao.ingest.read.read_table``, kept in the drop's ``RawTable``): nothing is detected twice. Ingestion strips
every value, though, and a rewritten file must keep the noise of day 1 (stray spaces around an ID), so the cells
are loaded once more as written, from that sheet and in that encoding, and checked against ingestion's table:
row *i* here is data row *i* there, the row every record of the drop is numbered by. A file that does not start
with its header row (title rows, signatures below the data, a second sheet) is refused rather than rewritten
without them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

from dibao.ingest import IngestedFile
from dibao.ingest.read import RawTable, decode_text
from dibao.schema import FILE_SPECS, Field, FieldType, FileSpec
from dibao_synth.writers import write_csv, write_xlsx

# The CSV encodings ``write_csv`` writes back (UTF-16 is read, never written).
REWRITABLE_ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")


@dataclass
class AsWritten:
    """One file with every value as written (nothing trimmed), its format, encoding and original headers."""

    stem: str
    path: Path
    format: str  # csv | xlsx | parquet
    encoding: str | None
    sheet: str | None
    frame: pl.DataFrame
    columns: dict[str, str]  # canonical field → header as written

    def header(self, name: str) -> str | None:
        return self.columns.get(name)


def read_as_written(ingested: IngestedFile) -> AsWritten:
    """The file ingestion read, with its values as written: same format, encoding, sheet and rows."""
    raw = ingested.raw
    name = raw.path.name
    if raw.format not in ("csv", "xlsx", "parquet"):
        raise ValueError(f"{name}: cannot rewrite a {raw.format} file")
    if raw.format != "parquet" and (raw.header_line, raw.data_line) != (1, 2):
        raise _not_one_table(raw)
    try:
        frame = _load(raw)
    except pl.exceptions.PolarsError as exc:
        raise _not_one_table(raw) from exc
    if [c.strip() for c in frame.columns] != [h.strip() for h in raw.headers]:
        raise _not_one_table(raw)
    tidy = frame.select(pl.all().cast(pl.String).str.strip_chars().replace("", None))  # as ingestion trims
    tidy.columns = raw.headers
    if not tidy.equals(raw.frame):
        raise _not_one_table(raw)
    by_position = dict(zip(raw.headers, frame.columns, strict=True))
    columns = {canonical: by_position[header] for canonical, header in ingested.column_map.items()}
    return AsWritten(ingested.stem, raw.path, raw.format, raw.encoding, raw.sheet, frame, columns)


def _load(raw: RawTable) -> pl.DataFrame:
    """Every cell of the file under its first row, untrimmed, in the encoding and from the sheet ingestion found."""
    name = raw.path.name
    if raw.format == "csv":
        if raw.encoding not in REWRITABLE_ENCODINGS:
            raise ValueError(f"{name}: cannot rewrite a CSV in {raw.encoding}")
        text, _ = decode_text(raw.path, raw.path.read_bytes(), raw.encoding)
        if "," not in text.split("\n", 1)[0]:
            raise ValueError(f"{name}: only comma-separated CSV can be rewritten")
        return pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False, has_header=True)
    if raw.format == "xlsx":
        reader = fastexcel.read_excel(raw.path.read_bytes())
        if len(reader.sheet_names) != 1:
            raise ValueError(f"{name}: only a workbook of one sheet can be rewritten (the others would be lost)")
        return reader.load_sheet(raw.sheet or 0, dtypes="string").to_polars()
    return pl.read_parquet(raw.path)


def _not_one_table(raw: RawTable) -> ValueError:
    """A file whose rewrite would lose rows ingestion skipped (title, unit or signature lines, blank rows)."""
    return ValueError(f"{raw.path.name}: cannot be rewritten as written: the file is not one table from its first "
                      f"row down (ingestion read {raw.frame.height} data rows under the header on row "
                      f"{raw.header_line}; {'; '.join(raw.notes) or 'no layout notes'})")


def write_as_written(table: AsWritten, frame: pl.DataFrame, out: Path) -> Path:
    """Write ``frame`` (same columns as ``table.frame``) in the format, encoding and sheet name ``table`` had."""
    path = out / table.path.name
    if table.format == "csv":
        assert table.encoding is not None
        write_csv(frame, path, table.encoding)
    elif table.format == "xlsx":
        spec = FILE_SPECS[table.stem]
        by_header = {h: n for n, h in table.columns.items()}
        fields = tuple(spec.field(by_header[h]) if h in by_header else Field(h, h, FieldType.TEXT)
                       for h in frame.columns)
        sheet_spec = FileSpec(spec.stem, table.sheet or spec.label, fields, spec.required_file, spec.person_level)
        write_xlsx(frame, sheet_spec, path)
    else:
        frame.write_parquet(path, compression="zstd", statistics=False)
    return path


def append_rows(table: AsWritten, frame: pl.DataFrame, rows: list[dict[str, str | None]]) -> pl.DataFrame:
    """Append rows given by canonical field name; columns the rows do not name stay blank."""
    by_header = {h: n for n, h in table.columns.items()}
    data = {h: [r.get(by_header[h]) if h in by_header else None for r in rows] for h in frame.columns}
    new = pl.DataFrame(data, schema=dict.fromkeys(frame.columns, pl.String))
    return pl.concat([frame, new.cast(frame.schema, strict=False)])


def set_values(frame: pl.DataFrame, header: str, rows: Sequence[int], value: str) -> pl.DataFrame:
    """Set one column to ``value`` in the given 1-based data rows."""
    dtype = frame.schema[header]
    hit = pl.int_range(1, pl.len() + 1).is_in(list(rows))
    return frame.with_columns(pl.when(hit).then(pl.lit(value).cast(dtype, strict=False)).otherwise(pl.col(header))
                              .alias(header))


def money(value: float) -> str:
    """Amounts as the generator writes them: 1234 for whole yuan, 1234.5 / 1234.56 otherwise."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)
