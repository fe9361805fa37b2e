"""Person names (姓名), normalised for matching across systems.

The same person is written 李麗 in one system and 李丽 in another, 阿依古丽·买买提 with four different dots,
or 王 小明 with a space. We normalise the text, and add a pinyin key so that homophones typed by an input
method (李丽/李力) can still be compared.

Work is per *distinct character*, not per row: the conversion tables (traditional → simplified, character →
pinyin) are built for the few thousand characters present and applied to the whole column at once with
Polars' Aho-Corasick ``replace_many``.
"""

from __future__ import annotations

from functools import lru_cache

import opencc
import polars as pl
from pypinyin import Style, lazy_pinyin

MIDDLE_DOT = "·"
# Dots people and input methods use between the parts of minority names (after NFKC, which maps ･ to ・).
_DOT_VARIANTS = r"[\.•・‧∙⋅●。﹒]"
# Anything NFKC or the rules above would change: spaces, dots, full-width and compatibility forms.
_NEEDS_CLEANING = r"[\s\.•・‧∙⋅●。﹒·\x{3000}\x{FF00}-\x{FFEF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _distinct_chars(column: pl.Series) -> list[str]:
    return column.drop_nulls().str.split("").explode().drop_nulls().unique().sort().to_list()


def _cleaned(column: pl.Series) -> pl.Series:
    """NFKC, whitespace removed, dots unified. Only names that need it are touched (most need nothing)."""
    column = column.cast(pl.String)
    messy = column.str.contains(_NEEDS_CLEANING).fill_null(False).arg_true()
    if not messy.len():
        return column
    fixed = pl.select(
        pl.lit(column.gather(messy)).str.normalize("NFKC").str.replace_all(r"\s+", "")
        .str.replace_all(_DOT_VARIANTS, MIDDLE_DOT).str.strip_chars(MIDDLE_DOT)
    ).to_series()
    return column.scatter(messy, fixed)


def simplified_table(chars: list[str]) -> dict[str, str]:
    """Traditional → simplified for those of ``chars`` that have a different simplified form."""
    converter = _t2s()
    table = {}
    for ch in chars:
        simple = converter.convert(ch)
        if simple != ch and len(simple) == 1:
            table[ch] = simple
    return table


def pinyin_table(chars: list[str]) -> dict[str, str]:
    """Character → toneless pinyin syllable (first reading), for Chinese characters among ``chars``."""
    table = {}
    for ch in chars:
        if "\u3400" <= ch <= "\u9fff" or "\U00020000" <= ch <= "\U0003134f":
            table[ch] = lazy_pinyin(ch, style=Style.NORMAL)[0]
    return table


def normalise_names(column: pl.Series) -> pl.DataFrame:
    """Return ``name_norm`` and ``name_pinyin`` for a column of raw names (same length, nulls kept).

    ``name_norm``: NFKC, all whitespace removed, dot variants unified to ·, traditional → simplified.
    ``name_pinyin``: lower-case toneless pinyin of ``name_norm`` without separators (李丽 and 李力 → ``lili``).
    """
    cleaned = _cleaned(column)
    cleaned = pl.Series(cleaned.name, cleaned).replace("", None)
    chars = _distinct_chars(cleaned)
    to_simple = simplified_table(chars)
    norm = cleaned.str.replace_many(list(to_simple), list(to_simple.values())) if to_simple else cleaned
    to_pinyin = pinyin_table([to_simple.get(c, c) for c in chars])
    pinyin = (
        norm.str.replace_many(list(to_pinyin), list(to_pinyin.values())) if to_pinyin else norm
    ).str.replace_all(MIDDLE_DOT, "", literal=True).str.to_lowercase()
    return pl.DataFrame({"name_norm": norm, "name_pinyin": pinyin})


def normalise_name(name: str | None) -> tuple[str | None, str | None]:
    """One name: (normalised, pinyin key). Same code path as the bulk version."""
    row = normalise_names(pl.Series("name", [name], dtype=pl.String)).row(0)
    return row[0], row[1]
