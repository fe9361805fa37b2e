"""The household cross-walk at scale: integer connected components equal a plain reference on any graph.

The reference is a breadth-first search in pure Python over the bipartite household–person graph; the graphs are
random, with isolated households, records without a household (bank, departments), links without a person key,
and chains of households longer than the 50 rounds the earlier label propagation stopped after.
"""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dibao.link.households import components, household_groups

Graph = tuple[list[str | None], list[str | None]]  # per record: its household, its person key (None: no link)


def reference_groups(households: list[str | None], persons: list[str | None]) -> dict[str, str]:
    """household → smallest household (string order) reachable through shared person keys; BFS, no Polars."""
    by_person: dict[str, set[str]] = defaultdict(set)
    by_household: dict[str, set[str]] = defaultdict(set)
    for household, person in zip(households, persons, strict=True):
        if household is None:
            continue
        by_household[household]  # every household is a node, linked or not
        if person is not None:
            by_person[person].add(household)
            by_household[household].add(person)
    group: dict[str, str] = {}
    for start in by_household:
        if start in group:
            continue
        seen, queue = {start}, deque([start])
        while queue:
            household = queue.popleft()
            for person in by_household[household]:
                for other in by_person[person] - seen:
                    seen.add(other)
                    queue.append(other)
        smallest = min(seen)
        group.update(dict.fromkeys(seen, smallest))
    return group


def frames(households: list[str | None], persons: list[str | None], linked: list[bool]
           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    records = pl.DataFrame({"rid": range(len(households)), "household": households},
                           schema={"rid": pl.UInt32, "household": pl.String})
    links = pl.DataFrame({"rid": [r for r, keep in enumerate(linked) if keep],
                          "person_key": [p for p, keep in zip(persons, linked, strict=True) if keep]},
                         schema={"rid": pl.UInt32, "person_key": pl.String})
    return records, links


def check(households: list[str | None], persons: list[str | None], linked: list[bool]) -> None:
    records, links = frames(households, persons, linked)
    got = household_groups(records, links)
    expected = reference_groups(households, [p if keep else None for p, keep in zip(persons, linked, strict=True)])
    assert got.columns == ["household", "household_group"]
    assert got.schema["household"] == pl.String and got.schema["household_group"] == pl.String
    assert got["household"].to_list() == sorted(expected)  # every household once, sorted, no null household
    assert dict(got.iter_rows()) == expected


# Labels like the real ones (``source:number``), from a small alphabet so that string order differs from number
# order (``registry:10`` < ``registry:9``) and households collide across records.
LABEL = st.builds(lambda source, number: f"{source}:{number}",
                  st.sampled_from(["registry", "monitoring", "dibao_roll"]), st.integers(0, 40).map(str))
PERSON = st.integers(0, 30).map(lambda n: f"11010119900101{n:04d}")


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[list[str | None], list[str | None], list[bool]]:
    n = draw(st.integers(0, 80))
    households = draw(st.lists(st.one_of(st.none(), LABEL), min_size=n, max_size=n))
    persons = draw(st.lists(st.one_of(st.none(), PERSON), min_size=n, max_size=n))
    linked = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return households, persons, linked


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[str | None], list[str | None], list[bool]]:
    """A chain of 51–160 households, each sharing one person with the next, labels in a random order.

    The smallest label sits anywhere along the chain, so it has to travel up to the whole length. Noise around
    it: isolated households, records with no household or no person key.
    """
    length = draw(st.integers(51, 160))
    order = draw(st.permutations(range(length)))
    labels = [f"registry:{i:05d}" for i in order]
    households: list[str | None] = []
    persons: list[str | None] = []
    for i, label in enumerate(labels):
        for person in (f"P{i}", f"P{i + 1}" if i + 1 < length else None):
            households.append(label)
            persons.append(person)
    extra = draw(st.integers(0, 10))
    for j in range(extra):
        households.append(draw(st.one_of(st.none(), st.just(f"monitoring:{j}"))))
        persons.append(draw(st.one_of(st.none(), st.just(f"Q{j}"), st.just("P0"))))
    linked = draw(st.lists(st.booleans(), min_size=len(persons) - 2 * length, max_size=len(persons) - 2 * length))
    return households, persons, [True] * (2 * length) + linked


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_household_groups_equal_the_reference_on_random_graphs(
        graph: tuple[list[str | None], list[str | None], list[bool]]) -> None:
    check(*graph)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_chains_longer_than_50_households_end_in_one_group(
        graph: tuple[list[str | None], list[str | None], list[bool]]) -> None:
    check(*graph)
    households, _, _ = graph
    chain = {h for h in households if h is not None and h.startswith("registry:")}
    records, links = frames(*graph)
    groups = household_groups(records, links).filter(pl.col("household").is_in(list(chain)))
    assert groups["household_group"].n_unique() == 1  # (an extra record of P0 may bring a smaller label in)
    assert groups["household_group"][0] <= min(chain)


def test_a_chain_in_the_worst_order_for_label_propagation() -> None:
    """Smallest label at one end: the earlier propagation needed one round per hop and stopped at 50."""
    length = 500
    households = [f"h:{i:04d}" for i in range(length) for _ in range(2)]
    persons = [f"p{i + k}" for i in range(length) for k in range(2)]
    records, links = frames(households, persons, [True] * len(households))  # type: ignore[arg-type]
    groups = household_groups(records, links)
    assert groups.height == length and groups["household_group"].unique().to_list() == ["h:0000"]


def test_no_records_no_households() -> None:
    records, links = frames([], [], [])
    got = household_groups(records, links)
    assert got.height == 0 and got.columns == ["household", "household_group"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))))
def test_components_equal_a_breadth_first_search(graph: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = graph
    neighbours: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    expected = [-1] * n
    for start in range(n):
        if expected[start] >= 0:
            continue
        seen, queue = {start}, deque([start])
        while queue:
            for other in neighbours[queue.popleft()]:
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        for node in seen:
            expected[node] = min(seen)
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    assert components(n, left, right).tolist() == expected


def test_a_review_case_lists_its_candidates_best_first_whatever_the_thread_order() -> None:
    from dibao.link.persons import _best_first

    review = pl.DataFrame({"rid": [3, 1], "reason": ["ambiguous_id_repair"] * 2,
                           "candidates": [["b", "a", "c"], ["y", "x"]], "scores": [[0.7, 0.7, 0.9], [0.5, 0.8]]})
    ordered = _best_first(review)
    assert ordered["candidates"].to_list() == [["c", "a", "b"], ["x", "y"]]
    assert ordered["scores"].to_list() == [[0.9, 0.7, 0.7], [0.8, 0.5]]
    assert ordered["rid"].to_list() == [3, 1]
