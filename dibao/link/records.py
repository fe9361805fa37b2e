"""The person records to link: every row of every person-level file, in one frame with the same columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import polars as pl

from dibao.schema import FILE_SPECS

# The household number each person-level file carries (bank and department data have none).
HOUSEHOLD_FIELD = {"registry": "household_id", "monitoring": "household_id", "dibao_roll": "dibao_household_id"}

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(), "row": pl.UInt32(), "id_norm": pl.String(), "id_status": pl.String(),
    "id_birth_date": pl.Date(), "id_sex": pl.String(), "name_norm": pl.String(), "name_pinyin": pl.String(),
    "county_code": pl.String(), "household": pl.String(),
}


# Columns that key a join, window or group in the linkage: an empty string there would be a shared value, not a gap.
KEY_TEXT = ("id_norm", "name_norm", "name_pinyin", "county_code", "household")


def blank_is_null(column: str) -> pl.Expr:
    """``""`` → null, so that records with no name or household never agree with each other on it."""
    return pl.when(pl.col(column).str.len_chars() > 0).then(pl.col(column)).alias(column)


class RecordInputs(Protocol):
    """What ``person_records`` reads: which files there are, and each one's accepted rows lazily (a ``Drop``,
    or the spilled files a linkage process is given)."""

    @property
    def files(self) -> Mapping[str, object]: ...

    def scan(self, stem: str) -> pl.LazyFrame: ...


def person_records(drop: RecordInputs) -> pl.DataFrame:
    """One row per input record of every person-level file, with ``household`` = ``source:household number``.

    Blank key text is already null here (``blank_is_null``), as the rows are read: done afterwards, it was a
    second copy of five text columns of 11 million records (+1.6 GiB) beside the first."""
    frames = []
    for stem, spec in FILE_SPECS.items():
        if not spec.person_level or stem not in drop.files:
            continue
        frame = drop.scan(stem)
        household_field = HOUSEHOLD_FIELD.get(stem)
        # A blank household number is no household (null), never one shared ``registry:`` household. The number
        # is kept as written otherwise: the rules stage builds the same ``source:number`` keys from the files.
        household = (
            pl.when(pl.col(household_field).str.strip_chars().str.len_chars() > 0)
            .then(pl.lit(f"{stem}:") + pl.col(household_field))
            if household_field else pl.lit(None, dtype=pl.String)
        )
        county = pl.col("county_code") if "county_code" in frame.collect_schema() else pl.lit(None, dtype=pl.String)
        frames.append(frame.select(
            pl.lit(stem).alias("source"), "row", "id_norm", "id_status", "id_birth_date", "id_sex",
            "name_norm", "name_pinyin", county.alias("county_code"), household.alias("household"),
        ))
    if not frames:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    return (pl.concat(frames, how="vertical").cast(RECORD_SCHEMA)  # type: ignore[arg-type]
            .with_columns(blank_is_null(c) for c in KEY_TEXT).collect())
