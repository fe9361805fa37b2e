"""ID repair: which known, valid ID a mistyped one most likely is.

GB 11643's check digit catches every single wrong digit and every swap of two neighbours, but it cannot say
which digit is wrong. We generate every single-digit substitution and every adjacent transposition of the bad
ID (198 variants), keep the variants that are IDs we actually know from some file, and let the caller decide
with the name and household context.

The variants are made as integers, not text: an 18-character ID is one int64 (``id_codes``: its 17 digits × 11 +
the check character, X = 10), so a wrong digit is one addition and "is it a known ID" an integer join. A province has
≈ 150,000 bad IDs and 5.5 million known ones; the text version built 30 million strings and hashed the known IDs
again for every batch of 10,000 (17 s of a 90 s linkage).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dibao.normalise.ids import CHECK_X, ID_SHAPE, id_codes, id_text

_WEIGHT = np.array([11 * 10 ** (16 - position) for position in range(17)], dtype=np.int64)  # digit p's weight

# The edits in the order their variants are listed for each bad ID: every digit 0–16 replaced by every other
# digit, the check character replaced by every other digit or X, every neighbour pair 0–1 … 16–17 swapped.
EDITS = ["digit_typo"] * (17 * 10) + ["check_digit"] * 11 + ["digit_swap"] * 17
_EDIT_LABEL = pl.Series(EDITS, dtype=pl.String)

# Bad records per batch: each becomes 198 int64 variants (a batch of 100,000 is 150 MiB). Each batch hashes the
# known IDs once (0.7 s for a province's 5.5 million), so the batches are few and large.
BATCH = 100_000


def _variants(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n × 198 variant codes in ``EDITS`` order, which of them are real edits): a variant equal to the ID
    itself (a digit replaced by itself, two equal neighbours swapped) is none, nor is a swap that would put an X
    check character among the digits."""
    digits = (codes[:, None] // _WEIGHT[None, :]) % 10  # n × 17
    check = codes % 11
    substituted = codes[:, None, None] + (np.arange(10)[None, None, :] - digits[:, :, None]) * _WEIGHT[None, :, None]
    rechecked = (codes - check)[:, None] + np.arange(11)[None, :]
    swapped_digits = codes[:, None] + (digits[:, 1:] - digits[:, :-1]) * (_WEIGHT[:-1] - _WEIGHT[1:])[None, :]
    swapped_check = codes + 10 * (check - digits[:, 16])  # digit 16 (weight 11) and the check character (weight 1)
    variants = np.concatenate([substituted.reshape(len(codes), -1), rechecked, swapped_digits,
                               swapped_check[:, None]], axis=1)
    real = variants != codes[:, None]
    real[:, -1] &= check != CHECK_X
    return variants, real


def repair_codes(bad: pl.DataFrame, known: pl.Series, batch: int = BATCH) -> pl.DataFrame:
    """For each bad record (``rid``, ``code``: the ``id_codes`` of its ID) the known codes one edit away.

    Returns ``rid``, ``candidate`` (a code) and ``edit`` (digit_typo, check_digit or digit_swap): records in their
    order, each record's candidates in ``EDITS`` order; a variant is one edit, so none repeats."""
    known_codes = known.drop_nulls().to_frame("code")
    codes = bad["code"].to_numpy()
    rids = bad["rid"].to_numpy()
    found_rids, found_codes, found_edits = [np.empty(0, np.uint32)], [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for start in range(0, len(codes), batch):
        variants, real = _variants(codes[start:start + batch])
        at = np.flatnonzero(real)  # row-major: records in order, each one's edits in order
        hits = (pl.DataFrame({"at": at, "code": variants.ravel()[at]})
                .join(known_codes, on="code", how="semi", maintain_order="left"))
        row, edit = np.divmod(hits["at"].to_numpy(), len(EDITS))
        found_rids.append(rids[start + row])
        found_codes.append(hits["code"].to_numpy())
        found_edits.append(edit)
    return pl.DataFrame({"rid": pl.Series(np.concatenate(found_rids), dtype=pl.UInt32),
                         "candidate": pl.Series(np.concatenate(found_codes), dtype=pl.Int64),
                         "edit": _EDIT_LABEL.gather(np.concatenate(found_edits))})


def repair_candidates(bad: pl.DataFrame, known_ids: pl.Series, batch: int = BATCH) -> pl.DataFrame:
    """``repair_codes`` in text: for each bad record (``rid``, ``id_clean`` of ``ID_SHAPE``) the known IDs one
    edit away, as ``rid``, ``candidate``, ``edit``. Known IDs of another shape are never candidates."""
    if not bad.select(pl.col("id_clean").str.contains(ID_SHAPE).all()).item():
        raise ValueError("repair_candidates: every bad ID must have 17 digits and a check character")
    found = repair_codes(bad.select("rid", id_codes(pl.col("id_clean")).alias("code")),
                         known_ids.to_frame("id").select(id_codes(pl.col("id"))).to_series(), batch)
    return found.select("rid", id_text(pl.col("candidate")).alias("candidate"), "edit")
