"""Cheap text clean-up shared by the ID, number and date parsers.

Full NFKC normalisation is costly on millions of values; for fields made of digits, Latin letters and
punctuation the only compatibility forms that occur are the full-width ones (０-９, Ｘ, ／, the ideographic
space), which one Aho-Corasick pass maps to ASCII. Names still get full NFKC (see names.py).
"""

from __future__ import annotations

import polars as pl

_FULL_WIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"]
_ASCII = [chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)] + [" "]


def to_halfwidth(text: pl.Expr) -> pl.Expr:
    """Full-width ASCII forms and the ideographic space → ASCII (what NFKC does to such fields)."""
    return text.str.replace_many(_FULL_WIDTH, _ASCII)
