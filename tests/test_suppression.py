"""Issue 13 item 7: small cells single people out, and totals give a withheld cell back. Properties of
``dibao.serve.suppression`` on random tables: every small cell is withheld, every group of cells that adds up to a
total has no withheld cell or at least two (counting a withheld total), and — checked independently, by exact
rational elimination — no withheld cell's value follows from the published cells and the totals."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dibao.serve.suppression import Group, Suppression, suppress

THRESHOLD = 5
# Mostly small values (the interesting case), some empty, some large.
VALUES = st.one_of(st.integers(0, 6), st.integers(0, 6), st.integers(0, 60))


def recomputable(groups: list[Group], withheld: frozenset[int]) -> set[int]:
    """Withheld cells whose value the equations fix: e_j is a row of the reduced row echelon form of the system
    over the withheld cells (exact arithmetic, independent of the SVD the module uses)."""
    unknowns = sorted(withheld)
    column = {cell: j for j, cell in enumerate(unknowns)}
    rows: list[list[Fraction]] = []
    for group in groups:
        if not group.constrains:
            continue
        row = [Fraction(0)] * len(unknowns)
        for cell in group.members:
            if cell in column:
                row[column[cell]] += 1
        if group.total is not None and group.total in column:
            row[column[group.total]] -= 1
        if any(row):
            rows.append(row)
    pivot_row = 0
    for j in range(len(unknowns)):
        found = next((r for r in range(pivot_row, len(rows)) if rows[r][j] != 0), None)
        if found is None:
            continue
        rows[pivot_row], rows[found] = rows[found], rows[pivot_row]
        lead = rows[pivot_row][j]
        rows[pivot_row] = [x / lead for x in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][j] != 0:
                factor = rows[r][j]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivot_row += 1
    fixed = set()
    for row in rows[:pivot_row]:
        nonzero = [j for j, x in enumerate(row) if x != 0]
        if len(nonzero) == 1:
            fixed.add(unknowns[nonzero[0]])
    return fixed


def check(values: list[int], groups: list[Group], result: Suppression) -> None:
    small = {i for i, v in enumerate(values) if 0 < v < THRESHOLD}
    assert small <= result.suppressed
    for group in groups:
        if group.constrains:
            count = sum(1 for c in group.cells() if c in result.suppressed)
            assert count != 1, (group, sorted(result.suppressed))
    assert recomputable(groups, result.suppressed) == set()
    assert result.exposed == frozenset()


@st.composite
def cross_tables(draw: st.DrawFn) -> tuple[list[int], list[Group]]:
    """A county × reason table; row, column and grand totals known (published or derivable elsewhere)."""
    n_rows, n_cols = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    values = draw(st.lists(VALUES, min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    cell = [[r * n_cols + c for c in range(n_cols)] for r in range(n_rows)]
    groups = [Group(tuple(row)) for row in cell]
    groups += [Group(tuple(cell[r][c] for r in range(n_rows))) for c in range(n_cols)]
    groups.append(Group(tuple(range(n_rows * n_cols))))
    return values, groups


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[list[int], list[Group]]:
    """Counties → cities → provinces, each level a cell that is the sum of the one below; the store-wide sum of
    the provinces known (a published list size)."""
    values: list[int] = []
    groups: list[Group] = []
    provinces = []
    for _ in range(draw(st.integers(1, 3))):
        cities = []
        for _ in range(draw(st.integers(1, 3))):
            counties = draw(st.lists(VALUES, min_size=1, max_size=4))
            first = len(values)
            values.extend(counties)
            values.append(sum(counties))
            groups.append(Group(tuple(range(first, first + len(counties))), total=len(values) - 1))
            cities.append(len(values) - 1)
        values.append(sum(values[c] for c in cities))
        groups.append(Group(tuple(cities), total=len(values) - 1))
        provinces.append(len(values) - 1)
    groups.append(Group(tuple(provinces)))
    return values, groups


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cross_tables())
def test_cross_tables_hide_every_small_cell_from_the_margins(table: tuple[list[int], list[Group]]) -> None:
    values, groups = table
    check(values, groups, suppress(values, groups, THRESHOLD))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_hierarchies_hide_every_small_cell_from_the_levels_above(table: tuple[list[int], list[Group]]) -> None:
    values, groups = table
    check(values, groups, suppress(values, groups, THRESHOLD))


def test_a_bridge_between_two_blocks_is_caught_by_the_rank_check() -> None:
    """Every row and column has two withheld cells, yet the cell joining two 2×2 blocks is determined: the
    count-per-group rule alone would publish a table that gives it back."""
    #        c0 c1 c2 c3
    small = [[1, 1, 0, 0],   # r0
             [1, 1, 2, 0],   # r1: the (r1, c2) cell bridges the blocks
             [0, 0, 1, 1],   # r2
             [0, 0, 1, 1]]   # r3
    big = 50
    values = [v if v else big for row in small for v in row]
    groups = [Group(tuple(r * 4 + c for c in range(4))) for r in range(4)]
    groups += [Group(tuple(r * 4 + c for r in range(4))) for c in range(4)]
    result = suppress(values, groups, THRESHOLD)
    check(values, groups, result)
    assert len(result.suppressed) > len(result.primary)


def test_a_city_with_one_county_is_withheld_with_it() -> None:
    values = [3, 3, 40, 43]  # county 3 → its city 3; a second city 40; the province 43
    groups = [Group((0,), total=1), Group((2,), total=2), Group((1, 2), total=3)]
    result = suppress(values, groups, THRESHOLD)
    assert {0, 1} <= result.suppressed
    check(values, groups, result)


def test_fixed_cells_are_published_and_never_complements() -> None:
    """A caseworker's own county: published exactly; the other counties' small cells are protected by cells
    that are not theirs."""
    values = [2, 3, 9, 30]  # column of four counties, total known; county 0 is the caller's own
    groups = [Group((0, 1, 2, 3))]
    result = suppress(values, groups, THRESHOLD, fixed={0})
    assert 0 not in result.suppressed and 1 in result.suppressed and len(result.suppressed) == 2
    assert result.exposed == frozenset()
    only_fixed_left = suppress([2, 3], [Group((0, 1))], THRESHOLD, fixed={0})
    assert only_fixed_left.exposed == {1}  # nothing can protect it: reported, not hidden
