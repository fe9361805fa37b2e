"""Incremental rules stage (``dibao/rules/incremental.py``): a later day on the same inputs recomputes only the
households the date can change, and the result is exactly a full computation's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dibao import policy_files
from dibao.ingest import Drop, ingest_drop
from dibao.link import link_persons, person_records
from dibao.link.keys import numbered_links
from dibao.rules import ParameterSet, RuleSet, decide, load_parameters, load_rules
from dibao.rules.facts import build_steps, household_facts
from dibao.rules.incremental import dated_steps, persons_dated_differently, restrict
from dibao.rules.steps import Step

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "drop"
DAY1 = dt.date(2026, 11, 20)
PUBLISHED = ("facts", "decisions", "exit_candidates", "inclusion_candidates", "flags", "params")


@dataclasses.dataclass(frozen=True)
class Linked:
    drop: Drop
    links: pl.DataFrame
    parameters: ParameterSet
    rules: RuleSet


@pytest.fixture(scope="module")
def linked() -> Linked:
    drop = ingest_drop(SAMPLES, run_date=DAY1)
    parameters = load_parameters(policy_files.policy_path(policy_files.PARAMETERS, None))
    rules = load_rules(parameters, policy_files.policy_path(policy_files.ELIGIBILITY, None))
    return Linked(drop, link_persons(person_records(drop)).links, parameters, rules)


def _params(linked: Linked, day: dt.date) -> pl.DataFrame:
    counties = linked.drop.frame_or_empty("counties")["county_code"].to_list()
    return linked.parameters.resolve(day, counties)


def test_only_ages_and_department_end_dates_read_the_date_besides_the_day_counts(linked: Linked) -> None:
    dated, before = dated_steps(build_steps(linked.rules.catalog, linked.rules.asset_kinds), linked.rules.catalog)
    assert [s.name for s in dated] == ["person_age", "person_excluded"]
    assert {s.name for s in before} == {"person", "dept"}


def test_a_date_reading_step_not_keyed_by_person_is_refused(linked: Linked, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    steps = build_steps(linked.rules.catalog, linked.rules.asset_kinds)
    odd = Step("person_age", ("person",), "SELECT birth_date, $run_date AS today FROM person")
    monkeypatch.setattr("dibao.rules.incremental.build_steps",
                        lambda *_: tuple(odd if s.name == "person_age" else s for s in steps))
    with pytest.raises(ValueError, match="not keyed by person_number"):
        persons_dated_differently(linked.drop, linked.links, _params(linked, DAY1), linked.rules, DAY1,
                                  DAY1 + dt.timedelta(days=1))


def test_a_birthday_between_two_days_changes_the_persons_born_that_day_only(linked: Linked) -> None:
    persons = linked.links.filter(pl.col("person_key").str.contains(r"^\d{17}[\dX]$"))["person_key"].unique().sort()
    someone = persons[0]
    birthday = dt.date(2027, int(someone[10:12]), int(someone[12:14]))
    changed = persons_dated_differently(linked.drop, linked.links, _params(linked, DAY1), linked.rules,
                                        birthday - dt.timedelta(days=1), birthday)
    keys = numbered_links(linked.links).filter(pl.col("person_number").is_in(changed.implode()))["person_key"]
    assert someone in keys.to_list()
    assert all(key[10:14] == someone[10:14] for key in keys.to_list())  # whoever else has that birthday
    same_day = persons_dated_differently(linked.drop, linked.links, _params(linked, DAY1), linked.rules,
                                         birthday, birthday)
    assert same_day.is_empty()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 0.9))
def test_facts_are_local_to_a_household_group(linked: Linked, seed: int, share: float) -> None:
    """The ground the incremental stage stands on: a group's facts from its own rows equal the full run's."""
    params = _params(linked, DAY1)
    full = household_facts(linked.drop, linked.links, params, DAY1, linked.rules)
    groups = linked.links["household_group"].drop_nulls().unique().sort()
    rng = random.Random(seed)
    chosen = pl.Series([g for g in groups.to_list() if rng.random() < share], dtype=pl.String)
    part_drop, part_links = restrict(linked.drop, linked.links, chosen)
    part = household_facts(part_drop, part_links, params, DAY1, linked.rules)
    group_of = linked.links.select("household", "household_group").drop_nulls().unique("household")
    expected = (full.join(group_of, left_on="household_key", right_on="household", how="left",
                          maintain_order="left")
                .filter(pl.col("household_group").is_in(chosen.implode())).drop("household_group"))
    assert_frame_equal(part, expected)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.integers(0, 160))
def test_a_later_day_from_a_cached_one_equals_a_full_day(linked: Linked, days: int) -> None:
    """Across birthdays, 服刑 end dates, month and year ends and parameter changes."""
    later = DAY1 + dt.timedelta(days=days)
    first = decide(linked.drop, linked.links, DAY1, linked.parameters, linked.rules)
    full = decide(linked.drop, linked.links, later, linked.parameters, linked.rules)
    incremental = decide(linked.drop, linked.links, later, linked.parameters, linked.rules,
                         basis=first.basis(DAY1))
    for name in PUBLISHED:
        assert_frame_equal(getattr(incremental, name), getattr(full, name))
    assert incremental.groups == full.groups


def test_the_next_day_recomputes_few_households(linked: Linked) -> None:
    first = decide(linked.drop, linked.links, DAY1, linked.parameters, linked.rules)
    nextday = decide(linked.drop, linked.links, DAY1 + dt.timedelta(days=1), linked.parameters, linked.rules,
                     basis=first.basis(DAY1))
    assert first.groups_recomputed == first.groups == linked.links["household_group"].n_unique()
    assert nextday.groups_recomputed < 0.05 * nextday.groups
