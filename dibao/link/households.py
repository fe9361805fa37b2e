"""Household cross-walk: roll household ↔ registry household ↔ monitored household, through shared members.

Households are the nodes, linked persons the edges: two households that share a member are the same family in two
systems. Connected components follow families that split, merged or gained a newborn, because any one shared
member is enough to connect them.

The components are found on integers, not strings: households are numbered in their sort order (a join to the
sorted dictionary of households), every person connects the households it is linked from to the smallest of them
(one hashed window), and a NumPy union-find (hooking roots onto smaller roots, then pointer jumping) joins those
edges. Its rounds are logarithmic in the component size and each one is linear in the edges, so the whole is
linear in the records; a chain of households of any length ends in one component (the earlier label propagation
stopped, silently, after 50 rounds).
"""

from __future__ import annotations

import numpy as np
import polars as pl


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of nodes ``0..n-1`` joined by the edges ``left[i]``–``right[i]``.

    Returns, per node, the smallest node of its component. Every round hooks each tree root onto the smallest
    root across its edges (``np.minimum.at``: a node only ever points to a smaller one, so there are no cycles),
    then jumps pointers until every node points at its root. A star that is a local minimum is hooked onto in the
    same round or hooks itself in the next, so the number of trees per component at least halves every two rounds.
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while left.size:
        a, b = parent[left], parent[right]
        cross = a != b
        if not cross.any():
            break
        a, b = a[cross], b[cross]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        # Edges inside one tree are done with; keep only those that may still join two trees.
        left, right = left[cross], right[cross]
    return parent


def household_groups(records: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """``household`` → ``household_group`` (the smallest household label of its connected component).

    ``records``: rid, household (``source:number``, null for bank/department rows); ``links``: rid, person_key.
    Every household of ``records`` is returned, linked to others or not, sorted by household. A link with no
    ``person_key`` connects nothing.
    """
    names = records.get_column("household").drop_nulls().unique().sort()
    dictionary = pl.DataFrame([names, pl.Series("hid", np.arange(names.len(), dtype=np.int64))])
    edges = (
        links.select("rid", "person_key").drop_nulls("person_key")
        .join(records.select("rid", "household").drop_nulls("household").join(dictionary, on="household")
              .select("rid", "hid"), on="rid")
        .select("hid", pl.col("hid").min().over("person_key").alias("root"))
        .filter(pl.col("hid") != pl.col("root"))
    )
    root = components(names.len(), edges.get_column("hid").to_numpy(), edges.get_column("root").to_numpy())
    return pl.DataFrame([names, names.gather(root).alias("household_group")])


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
