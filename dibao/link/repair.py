"""ID repair: which known, valid ID a mistyped one most likely is.

GB 11643's check digit catches every single wrong digit and every swap of two neighbours, but it cannot say
which digit is wrong. We generate every single-digit substitution and every adjacent transposition of the bad
ID (about 180 variants), keep the variants that are IDs we actually know from some file, and let the caller
decide with the name and household context. Everything is one Polars cross join and one equi-join.
"""

from __future__ import annotations

import polars as pl

_DIGITS = [str(d) for d in range(10)]


def _variant_table() -> pl.DataFrame:
    """(kind, pos, char) for every edit: substitution of position pos by char, or swap of pos and pos+1."""
    subs = [("digit_typo", pos, ch) for pos in range(17) for ch in _DIGITS]
    subs += [("check_digit", 17, ch) for ch in [*_DIGITS, "X"]]
    swaps = [("digit_swap", pos, "") for pos in range(17)]
    return pl.DataFrame(subs + swaps, schema={"edit": pl.String, "pos": pl.Int64, "char": pl.String}, orient="row")


VARIANTS = _variant_table()


# Bad records per batch of the cross join: each becomes ≈ 200 variant rows, and a province's 100,000 bad IDs made
# one 20-million-row frame of text at once (1.5 GiB, the linkage's second largest transient).
BATCH = 10_000


def repair_candidates(bad: pl.DataFrame, known_ids: pl.Series, batch: int = BATCH) -> pl.DataFrame:
    """For each bad record (``rid``, ``id_clean`` of 18 characters) the known IDs one edit away.

    Returns ``rid``, ``candidate`` and ``edit`` (digit_typo, check_digit or digit_swap), records in their order.
    """
    if bad.is_empty():
        return pl.DataFrame(schema={"rid": pl.UInt32, "candidate": pl.String, "edit": pl.String})
    s = pl.col("id_clean")
    pos = pl.col("pos")
    substituted = s.str.slice(0, pos) + pl.col("char") + s.str.slice(pos + 1)
    swapped = s.str.slice(0, pos) + s.str.slice(pos + 1, 1) + s.str.slice(pos, 1) + s.str.slice(pos + 2)
    known = pl.DataFrame({"candidate": known_ids.unique()})
    parts = []
    for start in range(0, bad.height, batch):
        candidates = (
            bad.slice(start, batch).select("rid", "id_clean")
            .join(VARIANTS, how="cross")
            .with_columns(
                pl.when(pl.col("edit") == "digit_swap").then(swapped).otherwise(substituted).alias("candidate")
            )
            .filter(pl.col("candidate") != s)
            .select("rid", "candidate", "edit")
        )
        parts.append(candidates.join(known, on="candidate", how="semi", maintain_order="left"))
    return pl.concat(parts).unique(["rid", "candidate"], keep="first", maintain_order=True)
