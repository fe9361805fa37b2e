"""Household cross-walk: roll household ↔ registry household ↔ monitored household, through shared members.

Households are the nodes, linked persons the edges: two households that share a member are the same family in two
systems. Connected components (label propagation with Polars joins: each round, every household takes the
smallest label among the households it shares a person with) follow families that split, merged or gained a
newborn, because any one shared member is enough to connect them.
"""

from __future__ import annotations

import polars as pl

MAX_ROUNDS = 50


def household_groups(records: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """``household`` → ``household_group`` (the smallest household label of its connected component).

    ``records``: rid, household (``source:number``, null for bank/department rows); ``links``: rid, person_key.
    Every household of ``records`` is returned, linked to others or not.
    """
    households = records.select("household").drop_nulls().unique()
    edges = (
        links.select("rid", "person_key").join(records.select("rid", "household"), on="rid")
        .drop_nulls("household").select("household", "person_key").unique()
    )
    labels = households.with_columns(pl.col("household").alias("household_group"))
    for _ in range(MAX_ROUNDS):
        person_label = edges.join(labels, on="household").group_by("person_key").agg(
            pl.col("household_group").min())
        proposed = edges.join(person_label, on="person_key").group_by("household").agg(
            pl.col("household_group").min().alias("proposed"))
        updated = labels.join(proposed, on="household", how="left").select(
            "household", pl.min_horizontal("household_group", "proposed").alias("household_group"))
        if updated.sort("household").equals(labels.sort("household")):
            break
        labels = updated
    return labels.sort("household")


def crosswalk_table(links: pl.DataFrame) -> pl.DataFrame:
    """Per household of each source: its group, member records and how many were linked by ID."""
    return (
        links.drop_nulls("household")
        # ``household`` is ``source:number``; strip the prefix rather than split at the first colon, so numbers
        # that contain a colon (``A:1``, ``A:2``) stay two households.
        .with_columns(pl.col("household").str.strip_prefix(pl.col("source") + pl.lit(":")).alias("household_id"))
        .group_by("household_group", "source", "household_id")
        .agg(pl.len().alias("member_records"),
             pl.col("method").is_in(["exact", "upgraded_15", "repaired_id"]).sum().alias("linked_by_id"),
             pl.col("person_key").n_unique().alias("persons"))
        .sort("household_group", "source", "household_id")
    )
