"""Total rows (合计/小计/总计/累计) in exports: recognised, kept out of the data, and checked against the data.

Spreadsheets exported for people end with a total row, sometimes with subtotals per township. Read as data, a
bank file's ``合计,,,3103500`` becomes one person's savings. A row is a total row when one of its cells starts
with a total word, or when it has no identifying field (ID number, name, household number) but a number.
Where the file states a grand total (合计/总计), each amount it gives is compared with the sum of the accepted
rows; a mismatch is a note (the export may have been filtered after totalling), never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dibao.schema import FieldType, FileSpec

TOTAL_WORDS = ("合计", "小计", "总计", "累计")
GRAND_TOTAL_WORDS = ("合计", "总计")  # a total of the whole file (小计/累计 are partial or running sums)
_TOTAL_START = r"^\s*(?:合\s*计|小\s*计|总\s*计|累\s*计)"
_GRAND_START = r"^\s*(?:合\s*计|总\s*计)"
IDENTIFYING_TYPES = (FieldType.ID_NUMBER, FieldType.NAME, FieldType.CODE)
NUMERIC_TYPES = (FieldType.MONEY, FieldType.COUNT)


@dataclass(frozen=True)
class TotalRows:
    """Which rows of a file are totals, and for each the header of the cell that said so (or None)."""

    mask: pl.Series  # Boolean, one per data row
    rows: pl.DataFrame  # row (1-based), header, value, grand (bool)


_PLAIN_ID = r"^(?:[0-9]{17}[0-9Xx]|[0-9]{15})$"


def _candidates(frame: pl.DataFrame, spec: FileSpec, column_map: dict[str, str], identifying: list[str]
                ) -> pl.Series:
    """Rows that may be totals, cheaply: a total row never carries a person's well-formed ID number together
    with a name, so in person-level files only rows lacking one are searched (a few in a hundred); elsewhere
    every row is. Among those, a literal search for 计 in any cell, or no identifying value at all."""
    ids = [column_map[f.name] for f in spec.fields if f.type is FieldType.ID_NUMBER and f.name in column_map]
    names = [column_map[f.name] for f in spec.fields if f.type is FieldType.NAME and f.name in column_map]
    if ids and names:
        plain = pl.all_horizontal([pl.col(c).str.contains(_PLAIN_ID) for c in ids]
                                  + [pl.col(c).is_not_null() for c in names]).fill_null(False)
        rows = frame.select(~plain).to_series().arg_true()
        if not rows.len():
            return rows
        sub = frame[rows]
    else:
        rows, sub = pl.int_range(frame.height, eager=True, dtype=pl.UInt32), frame
    suspect: list[pl.Expr] = [pl.col(c).str.contains("计", literal=True) for c in sub.columns]
    if identifying:
        suspect.append(pl.all_horizontal([pl.col(c).is_null() for c in identifying]))
    return rows.filter(sub.select(pl.any_horizontal(suspect).fill_null(False)).to_series())


def find_total_rows(frame: pl.DataFrame, spec: FileSpec, column_map: dict[str, str]) -> TotalRows:
    """Total rows of a raw, all-text table (every column, mapped to the contract or not).

    A literal search for 计 runs over every cell (cheap: a byte search, and almost no data cell contains it);
    the exact test and the details run only on the rows it finds.
    """
    identifying = [column_map[f.name] for f in spec.fields if f.type in IDENTIFYING_TYPES and f.name in column_map]
    if not identifying:  # a file of areas (counties): its names and codes identify a row
        identifying = [column_map[f.name] for f in spec.fields
                       if f.type not in NUMERIC_TYPES and f.name in column_map]
    numeric = [column_map[f.name] for f in spec.fields if f.type in NUMERIC_TYPES and f.name in column_map]
    candidates = _candidates(frame, spec, column_map, identifying)
    if not candidates.len():
        return TotalRows(pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True),
                         pl.DataFrame(schema={"row": pl.UInt32, "header": pl.String, "value": pl.String,
                                              "grand": pl.Boolean}))
    sub = frame[candidates]
    word_hits = [pl.when(pl.col(c).str.contains(_TOTAL_START)).then(pl.lit(c)) for c in frame.columns]
    no_identity: pl.Expr = pl.lit(False)
    if identifying and numeric:
        no_identity = pl.all_horizontal([pl.col(c).is_null() for c in identifying]) & pl.any_horizontal(
            [pl.col(c).is_not_null() for c in numeric])
    found = sub.select(pl.coalesce(word_hits).alias("header"), no_identity.alias("__no_identity"))
    is_total = found.select(pl.col("header").is_not_null() | pl.col("__no_identity")).to_series()
    hits = candidates.filter(is_total)
    mask = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(hits, True).alias("total")
    headers = found["header"].filter(is_total)
    sub = sub.filter(is_total)
    values = [sub[h][i] if h is not None else None for i, h in enumerate(headers.to_list())]
    rows = pl.DataFrame({
        "row": (hits + 1).cast(pl.UInt32), "header": headers, "value": pl.Series(values, dtype=pl.String),
    }).with_columns(grand=pl.col("value").str.contains(_GRAND_START).fill_null(False))
    return TotalRows(mask, rows)
