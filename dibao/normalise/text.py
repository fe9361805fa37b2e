"""Text clean-up shared by every parser: one definition of what carries no meaning in a cell.

Real exports and phones add invisible characters to what people copy: a phone wraps a copied ID number in
U+202D/U+202C (bidi override marks), editors leave zero-width spaces and BOMs inside values, Excel users type a
leading apostrophe to force text (``'340421``), and a column Excel turned into numbers gains a trailing ``.0``.
``clean_code`` and ``clean_codes`` remove all of that from *code-like* cells (ID numbers, county codes, household
numbers); ``strip_invisible`` removes control and format characters from free text and names.

Each cleaning exists twice only in form: a Polars expression for millions of cells and a scalar function for one
value (the API's query parsing). Both are written from the same declarations below, and a property test checks
that they agree on arbitrary text.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

# Unicode categories that never carry meaning in a code: controls (NUL, tab, CR…), format characters (bidi
# marks, zero-width space/joiners, BOM, soft hyphen) and every kind of space (incl. the ideographic space).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_INVISIBLE_PATTERN = r"[\p{Cc}\p{Cf}\p{Z}]"
# In free text and names spaces may be meaningful (they are handled by each field), controls and format chars not.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf"})
_CONTROL_PATTERN = r"[\p{Cc}\p{Cf}]"
# Apostrophes Excel users type (or autocorrect produces) in front of a value to keep it as text.
APOSTROPHES = "'’‘`"
_LEADING_APOSTROPHES = r"^['’‘`]+"
# A whole number Excel wrote back as a decimal: 340421.0, 1234.00.
_DOT_ZERO = r"^([0-9]+)\.0+$"
_DOT_ZERO_RE = re.compile(_DOT_ZERO)
# Cells that need no cleaning at all (almost every cell of a real export): checked first, in bulk.
_PLAIN_CODE = r"^[0-9A-Za-z_\-/]+$"

_FULL_WIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"]
_ASCII = [chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)] + [" "]


def to_halfwidth(text: pl.Expr) -> pl.Expr:
    """Full-width ASCII forms and the ideographic space → ASCII (what NFKC does to such fields), cheaply."""
    return text.str.replace_many(_FULL_WIDTH, _ASCII)


def clean_code_expr(text: pl.Expr, *, drop_dot_zero: bool = True) -> pl.Expr:
    """NFKC, invisible characters and leading apostrophes removed, ``.0`` dropped (unless told not to).

    ``drop_dot_zero`` is False for ID numbers: an ID written ``…001.0`` comes from a column Excel converted to
    numbers, which has lost digits, so it must be refused, not repaired (see ``ids.excel_number_id``).
    A cell that is empty once cleaned becomes null.
    """
    cleaned = (text.cast(pl.String).str.normalize("NFKC").str.replace_all(_INVISIBLE_PATTERN, "")
               .str.replace(_LEADING_APOSTROPHES, ""))
    if drop_dot_zero:
        cleaned = cleaned.str.replace(_DOT_ZERO, "${1}")
    return pl.when(cleaned.str.len_bytes() == 0).then(None).otherwise(cleaned)


def clean_code(text: str | None, *, drop_dot_zero: bool = True) -> str | None:
    """``clean_code_expr`` for one value, in plain Python (the API parses one query at a time)."""
    if text is None:
        return None
    cleaned = "".join(ch for ch in unicodedata.normalize("NFKC", text)
                      if unicodedata.category(ch) not in INVISIBLE_CATEGORIES).lstrip(APOSTROPHES)
    if drop_dot_zero:
        cleaned = _DOT_ZERO_RE.sub(r"\1", cleaned)
    return cleaned or None


def clean_codes(column: pl.Series, *, drop_dot_zero: bool = True) -> pl.Series:
    """``clean_code_expr`` on a column, run only on the cells that need it (most are plain ASCII codes)."""
    column = column.cast(pl.String)
    messy = (~column.str.contains(_PLAIN_CODE)).fill_null(False).arg_true()
    if not messy.len():
        return column
    fixed = pl.select(clean_code_expr(pl.lit(column.gather(messy)), drop_dot_zero=drop_dot_zero)).to_series()
    return column.scatter(messy, fixed)


def strip_invisible(column: pl.Series) -> pl.Series:
    """Control and format characters removed from free text (NUL bytes, bidi marks…); blank → null."""
    column = column.cast(pl.String)
    dirty = column.str.contains(_CONTROL_PATTERN).fill_null(False).arg_true()
    if not dirty.len():
        return column
    fixed = pl.select(pl.lit(column.gather(dirty)).str.replace_all(_CONTROL_PATTERN, "").str.strip_chars()
                      .replace("", None)).to_series()
    return column.scatter(dirty, fixed)


def strip_invisible_text(text: str) -> str:
    """``strip_invisible`` for one value."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in CONTROL_CATEGORIES).strip()
