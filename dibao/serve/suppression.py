"""Small-cell suppression with complementary suppression, for tables whose cells add up to totals.

A published count of 1 or 2 households in a county × reason cell singles a family out (its neighbours know who
it is). So a cell with ``0 < value < threshold`` is withheld (primary suppression). Withholding it alone is not
enough when a total is known: ``total − the other cells`` gives it back. So in every group of cells that adds up
to a total, a group with one withheld cell gets another one withheld too — the smallest non-empty other cell, else
the total itself when it is a cell of the table, else an empty cell (complementary suppression) — and the whole
system of sums is then checked by linear algebra: a withheld cell whose value the published cells and totals
determine (it lies in the row space of the group equations over the withheld cells) gets one more neighbour
withheld, until none is determined.

What it guarantees: no withheld cell's exact value follows from the published cells and the group totals by
adding and subtracting (any linear combination). What it does not: bounds — knowing that withheld cells are
non-negative, and that a primary one is below the threshold, can narrow a withheld cell to a range (two withheld
cells adding up to 3 are each 0–3). Cells in ``fixed`` are published whatever their value (a caseworker's own
counties, which they see in full anyway) and are never chosen as complements.

Pure functions over plain sequences; ``dibao/serve/statistics_tables.py`` maps /counts and /coverage onto them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Group:
    """Cells ``members`` add up to a total: the cell ``total``, or (``None``) a total known from elsewhere — a
    margin another endpoint publishes or that can be worked out, so it is assumed known."""

    members: tuple[int, ...]
    total: int | None = None

    def cells(self) -> tuple[int, ...]:
        return self.members if self.total is None else (*self.members, self.total)

    @property
    def constrains(self) -> bool:
        """A known total over a single cell is that cell itself: no equation beyond the cell."""
        return len(self.members) >= 2 or (self.total is not None and len(self.members) >= 1)


@dataclass(frozen=True)
class Suppression:
    """The withheld cells; ``exposed``: withheld cells the sums still determine because every cell that could
    protect them is fixed (published by rule) — empty unless ``fixed`` leaves no choice."""

    suppressed: frozenset[int]
    primary: frozenset[int]
    exposed: frozenset[int]


def is_small(value: float, threshold: int) -> bool:
    """Below the threshold but not empty: a zero singles nobody out."""
    return 0 < value < threshold


def _candidate(group: Group, values: Sequence[float], withheld: set[int], fixed: Collection[int]) -> int | None:
    """The cell to withhold next in ``group``: its smallest non-empty published member, else its total cell,
    else an empty member (an empty cell hides little: it is the last resort)."""
    free = [i for i in group.members if i not in withheld and i not in fixed]
    filled = [i for i in free if values[i] != 0]
    if filled:
        return min(filled, key=lambda i: (values[i], i))
    if group.total is not None and group.total not in withheld and group.total not in fixed:
        return group.total
    return min(free, key=lambda i: i) if free else None


def determined_cells(groups: Sequence[Group], withheld: Collection[int]) -> set[int]:
    """Withheld cells whose value the group equations fix, given every other cell and the known totals.

    The unknowns are the withheld cells; each group is one equation (members − total cell = known). A cell is
    determined exactly when its unit vector lies in the row space of that system: the squared norm of its row in
    the right singular vectors of the non-zero singular values is 1. Equations that share no unknown are
    independent, so each connected set of them is solved on its own (a coverage quantity, a list): small SVDs.
    """
    unknown = frozenset(withheld)
    equations: list[dict[int, float]] = []
    for group in groups:
        if not group.constrains:
            continue
        row: dict[int, float] = {}
        for cell in group.members:
            if cell in unknown:
                row[cell] = row.get(cell, 0.0) + 1.0
        if group.total is not None and group.total in unknown:
            row[group.total] = row.get(group.total, 0.0) - 1.0
        row = {cell: coefficient for cell, coefficient in row.items() if coefficient}
        if row:
            equations.append(row)
    determined: set[int] = set()
    for component in _components(equations):
        cells = sorted({cell for row in component for cell in row})
        column = {cell: j for j, cell in enumerate(cells)}
        matrix = np.zeros((len(component), len(cells)))
        for i, row in enumerate(component):
            for cell, coefficient in row.items():
                matrix[i, column[cell]] = coefficient
        _, singular, vt = np.linalg.svd(matrix, full_matrices=False)
        tolerance = max(matrix.shape) * np.finfo(float).eps * singular[0] * 10
        weight = (vt[singular > tolerance] ** 2).sum(axis=0)
        determined.update(cells[j] for j in np.flatnonzero(weight > 1 - 1e-8))
    return determined


def _components(equations: list[dict[int, float]]) -> list[list[dict[int, float]]]:
    """Equations grouped by shared unknowns (union-find over the cells)."""
    parent: dict[int, int] = {}

    def root(cell: int) -> int:
        while parent.setdefault(cell, cell) != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    for row in equations:
        first, *rest = row
        for cell in rest:
            parent[root(cell)] = root(first)
    grouped: dict[int, list[dict[int, float]]] = {}
    for row in equations:
        grouped.setdefault(root(next(iter(row))), []).append(row)
    return list(grouped.values())


def suppress(values: Sequence[float], groups: Sequence[Group], threshold: int,
             fixed: Collection[int] = frozenset()) -> Suppression:
    """Which cells to withhold so that no small cell is published or can be worked out from the sums."""
    fixed = frozenset(fixed)
    primary = {i for i, v in enumerate(values) if i not in fixed and is_small(v, threshold)}
    withheld = set(primary)
    membership: dict[int, list[Group]] = {}
    for group in groups:
        if group.constrains:
            for cell in group.cells():
                membership.setdefault(cell, []).append(group)
    exposed: set[int] = set()
    while True:
        _pair_up(values, groups, withheld, fixed)
        determined = determined_cells(groups, withheld) - exposed
        if not determined:
            break
        added = False
        for cell in sorted(determined):
            for group in sorted(membership.get(cell, []), key=lambda g: len(g.members)):
                extra = _candidate(group, values, withheld, fixed)
                if extra is not None:
                    withheld.add(extra)
                    added = True
                    break
            else:
                exposed.add(cell)
        if not added:
            break
    exposed = determined_cells(groups, withheld) if exposed else set()
    return Suppression(frozenset(withheld), frozenset(primary), frozenset(exposed))


def _pair_up(values: Sequence[float], groups: Sequence[Group], withheld: set[int], fixed: frozenset[int]) -> None:
    """Until no group has exactly one withheld cell: withhold a second one in each such group (when any cell is
    left that may be)."""
    changed = True
    while changed:
        changed = False
        for group in groups:
            if not group.constrains or sum(1 for c in group.cells() if c in withheld) != 1:
                continue
            extra = _candidate(group, values, withheld, fixed)
            if extra is not None:
                withheld.add(extra)
                changed = True
