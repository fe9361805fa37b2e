"""The linkage as the later stages read it: every record's person and household, numbered.

The rules' fact steps and the coverage join and count 11 million records at province scale; on 18-character IDs
and 25-character household keys their hash tables outgrew DuckDB's memory and spilled, on integers they do not.
The numbers are made once per linkage and kept with it in the store's cache (``dibao/publish/cache.py``), so a
day that reuses the linkage reads them instead of numbering 11 million keys again (2.9 s at 2 million
households)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from dibao.link.households import household_numbers
from dibao.link.persons import LinkResult
from dibao.link.summary import LinkSummary
from dibao.normalise.ids import id_codes

# What the stages after the linkage read of person_links (the rules' facts, the coverage), and the numbers.
LINK_KEYS = ("source", "row", "person_key", "household", "household_group", "id_status")
NUMBERS = ("household_number", "person_number")


def numbered_links(links: pl.DataFrame) -> pl.DataFrame:
    """``LINK_KEYS`` of the links and ``NUMBERS``, as made for them (or as already there: the caller numbered
    them, e.g. the pipeline, once per linkage).

    ``person_number`` is an ID's code (``id_codes``: one number per ID, the same for a relative's ID in the
    relatives file) or, for a key that is not an ID, minus its rank among those keys; ``household_number`` is the
    linkage's (``household_numbers``: the key's rank in byte order), so that ordering by the number orders by the
    key (the ties of the facts' ``best_income``)."""
    if set(NUMBERS) <= set(links.columns):
        return links.select(*LINK_KEYS, *NUMBERS)
    return links.select(LINK_KEYS).with_columns(link_numbers(links))


def link_numbers(links: pl.DataFrame) -> pl.DataFrame:
    """``NUMBERS`` of each record (as ``numbered_links`` explains), from its ``person_key`` and ``household``."""
    _, households = household_numbers(links.get_column("household"))
    return pl.DataFrame([households.alias("household_number"), _person_numbers(links.get_column("person_key"))])


def _person_numbers(keys: pl.Series) -> pl.Series:
    """``person_number``: the keys that are not IDs (few) are ranked apart, which spares sorting all of them."""
    codes = keys.to_frame("key").select(id_codes(pl.col("key"))).to_series()
    other = codes.is_null()
    other_rank = keys.filter(other).rank("dense").cast(pl.Int64)
    return codes.scatter(other.arg_true(), -other_rank).alias("person_number")


@dataclass(frozen=True)
class Linkage:
    """A run's linkage: the numbered keys the rules and the coverage read (``numbered_links``), its counts, and
    the whole result (person links with their evidence and names, review cases, the household cross-walk),
    made or read from the cache only when a published file needs it: a day that reuses the linkage and the
    previous run's linkage files never reads it (at 2 million households, 2.5 s and 1.5 GiB)."""

    keys: pl.DataFrame
    summary: LinkSummary
    result: Callable[[], LinkResult]

    @classmethod
    def made(cls, result: LinkResult, summary: LinkSummary) -> Linkage:
        """A linkage just computed, its keys numbered now (the result is held until the linkage is let go)."""
        return cls(numbered_links(result.links), summary, lambda: result)
