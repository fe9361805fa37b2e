"""The household facts as named SQL steps, and the recipe for a new department data item (docs/RECIPES.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dibao.ingest import ingest_drop
from dibao.link import link_persons, person_records
from dibao.link.keys import numbered_links
from dibao.normalise.ids import ID_SHAPE, id_codes
from dibao.rules import decide, load_parameters, load_rules
from dibao.rules.catalog import CATALOG, FACTS, Fact
from dibao.rules.facts import INPUTS, build_steps
from dibao.rules.steps import Step, last_readers, referenced_tables, run_steps
from dibao.schema import FILE_SPECS
from tests.conftest import roll_rows, write_csv

Build = Callable[..., Path]


def test_every_step_declares_exactly_what_it_reads() -> None:
    made: set[str] = set(INPUTS)
    for step in build_steps():
        assert set(step.inputs) == referenced_tables(step.sql.replace("$run_date", "DATE '2026-01-01'")
                                                     .replace("$bank_data", "TRUE")), step.name
        assert set(step.inputs) <= made, f"{step.name} reads a table made later"
        made.add(step.name)


def test_the_published_facts_are_the_catalog_in_its_order(drop: Build) -> None:
    folder = drop()
    ingested = ingest_drop(folder)
    parameters = load_parameters()
    decided = decide(ingested, link_persons(person_records(ingested)).links, dt.date(2026, 11, 20), parameters,
                     load_rules(parameters))
    assert decided.facts.columns == [f.name for f in FACTS]


SOCIAL_INSURANCE = Fact(
    "social_insurance_members", "int", "社保在缴人数", "members paying social insurance as employees (在缴)",
    sql="coalesce(social_insurance_members, 0)::INTEGER", unit="人", reference="民发〔2021〕57号 第十三条",
    person="bool_or(item = '社保缴费' AND value = '在缴')", members="count(*) FILTER (WHERE {col})")


def test_a_new_department_item_is_the_item_a_fact_a_rule_and_a_case(drop: Build, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # 1. the item in the contract
    spec = FILE_SPECS["dept_facts"]
    item = spec.field("item")
    widened = dataclasses.replace(item, choices=(*item.choices, "社保缴费"))
    monkeypatch.setitem(FILE_SPECS, "dept_facts", dataclasses.replace(
        spec, fields=tuple(widened if f.name == "item" else f for f in spec.fields)))
    # 2. the fact (its person-level aggregate, how members combine, its expression, label and unit)
    catalog = CATALOG.with_facts(SOCIAL_INSURANCE)
    # 3. the rule
    parameters = load_parameters()
    shipped = load_rules(parameters)
    document = yaml.safe_load(shipped.source.read_text(encoding="utf-8"))
    document["rules"].append({
        "id": "social_insurance_paid", "label": "家庭成员社保在缴(可能有工资收入)", "outcome": "flag",
        "applies_to": "roll", "reference": "民发〔2021〕57号 第十三条", "when": "social_insurance_members > 0"})
    rules_file = tmp_path / "eligibility.yaml"
    rules_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    rules = load_rules(parameters, rules_file, catalog)
    # 4. the case: the roll's 王芳 pays social insurance
    person = roll_rows()[0][5]
    folder = drop(dept_facts=lambda f: write_csv(f / "dept_facts.csv", ["证件号码", "姓名", "数据来源部门", "核对项目",
                                                                       "数值", "数据日期"],
                                                 [[person, "王芳", "人社局", "社保缴费", "在缴", "2026-11-01"]]))
    ingested = ingest_drop(folder)
    decided = decide(ingested, link_persons(person_records(ingested)).links, dt.date(2026, 11, 20), parameters,
                     rules)
    roll = decided.facts.filter(pl.col("subject_type") == "roll")
    assert roll["social_insurance_members"].to_list() == [1]
    flagged = decided.flags.filter(pl.col("code") == "social_insurance_paid")
    assert flagged["subject_id"].to_list() == ["DB001"]
    assert "社保在缴人数=1" in flagged["detail"][0]


def test_an_intermediate_table_is_dropped_once_its_last_reader_is_done() -> None:
    """DuckDB holds the tables still to be read, not every table of the pipeline (memory at province scale)."""
    steps = (Step("a", ("source",), "SELECT x FROM source"), Step("b", ("a",), "SELECT x + 1 AS x FROM a"),
             Step("c", ("a", "b"), "SELECT a.x, b.x AS y FROM a, b"), Step("d", ("c",), "SELECT * FROM c"))
    assert last_readers(steps) == {"a": "c", "b": "c", "c": "d", "d": "d"}
    con = duckdb.connect()
    con.execute("CREATE TABLE source AS SELECT 1 AS x")
    run_steps(con, steps, ("source",), {}, keep=("d",))
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"source", "d"}
    assert con.execute("SELECT * FROM d").fetchall() == [(1, 2)]


def test_without_keep_every_table_stays_for_later_steps() -> None:
    """The incremental stage runs the date-reading steps on tables an earlier call made."""
    con = duckdb.connect()
    con.execute("CREATE TABLE source AS SELECT 1 AS x")
    run_steps(con, (Step("a", ("source",), "SELECT x FROM source"),), ("source",), {})
    run_steps(con, (Step("b", ("a",), "SELECT x FROM a"),), ("source", "a"), {})
    assert con.execute("SELECT count(*) FROM a").fetchone() == (1,)


@settings(max_examples=200, deadline=None)
@given(birth=st.dates(dt.date(1900, 1, 1), dt.date(2026, 12, 31)),
       run=st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)))
def test_a_persons_age_is_the_years_completed_on_the_run_date(birth: dt.date, run: dt.date) -> None:
    """Birthdays on 29 February count as passed on 1 March of a common year, as a person's age does in law."""
    step = next(s for s in build_steps() if s.name == "person_age")
    con = duckdb.connect()
    con.execute("CREATE TABLE person AS SELECT 1 AS person_number, ?::DATE AS birth_date", [birth])
    age = con.execute(step.sql, {"run_date": run}).fetchone()[2]
    assert age == run.year - birth.year - ((run.month, run.day) < (birth.month, birth.day))


_ID = st.builds(lambda digits, check: digits + check, st.text("0123456789", min_size=17, max_size=17),
                st.sampled_from("0123456789X"))
_OTHER_KEY = st.text("HR:registry0123456789赵钱孙", min_size=1, max_size=12)
_HOUSEHOLD = st.none() | st.sampled_from(["dibao_roll:DB1", "dibao_roll:DB10", "monitoring:M2", "registry:1",
                                          "registry:12", "registry:2"])


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_ID | _OTHER_KEY, _HOUSEHOLD), min_size=1, max_size=40))
def test_numbered_persons_and_households_stand_for_their_keys_one_to_one(rows: list[tuple[str, str | None]]
                                                                         ) -> None:
    """Two rows share a number exactly when they share a key; an ID's number is its code, the same one a
    relative's ID gets; households are numbered in the keys' byte order (the ties of best_income)."""
    links = pl.DataFrame({"source": ["registry"] * len(rows), "row": list(range(1, len(rows) + 1)),
                          "person_key": [key for key, _ in rows], "household": [hh for _, hh in rows],
                          "household_group": [hh for _, hh in rows], "id_status": ["valid"] * len(rows)},
                         schema_overrides={"row": pl.UInt32})
    numbered = numbered_links(links)
    for key, number in (("person_key", "person_number"), ("household", "household_number")):
        pairs = numbered.select(key, number).drop_nulls().unique()
        assert pairs[key].n_unique() == pairs[number].n_unique() == pairs.height
    assert numbered.filter(pl.col("household").is_null())["household_number"].null_count() == \
        numbered["household"].null_count()
    households = numbered.select("household", "household_number").drop_nulls().unique().sort("household")
    assert households["household_number"].is_sorted()
    ids = numbered.filter(pl.col("person_key").str.contains(ID_SHAPE))
    assert ids["person_number"].to_list() == ids.select(id_codes(pl.col("person_key"))).to_series().to_list()
    assert (numbered.filter(~pl.col("person_key").str.contains(ID_SHAPE))["person_number"] < 0).all()


_DATED_ID = st.builds(lambda region, birth, sequence, check: f"{region}{birth:%Y%m%d}{sequence}{check}",
                      st.text("0123456789", min_size=6, max_size=6), st.dates(dt.date(1900, 1, 1), dt.date(2030, 1, 1)),
                      st.text("0123456789", min_size=3, max_size=3), st.sampled_from("0123456789X"))


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(_DATED_ID | _ID | _OTHER_KEY, min_size=1, max_size=30))
def test_a_persons_birth_date_is_the_one_their_id_states(keys: list[str]) -> None:
    """The ``person`` step reads the date from the person's number; it is the date digits 7–14 of the ID text
    state (none for an impossible date such as 0230, none for a key that is not an ID)."""
    assume(not any(re.fullmatch(ID_SHAPE, key) and key[6:10] == "0000" for key in keys))  # year 0: DuckDB's 1 BC
    links = pl.DataFrame({"source": ["registry"] * len(keys), "row": list(range(1, len(keys) + 1)),
                          "person_key": keys, "household": [None] * len(keys), "household_group": [None] * len(keys),
                          "id_status": ["valid"] * len(keys)},
                         schema_overrides={"row": pl.UInt32, "household": pl.String, "household_group": pl.String})
    step = next(s for s in build_steps() if s.name == "person")
    con = duckdb.connect()
    con.register("links", numbered_links(links).to_arrow())
    dates = dict(con.execute(f"SELECT person_number, birth_date FROM ({step.sql})").fetchall())
    numbered = numbered_links(links)
    for key, number in numbered.select("person_key", "person_number").unique().iter_rows():
        expected = None
        if re.fullmatch(ID_SHAPE, key):
            try:
                expected = dt.datetime.strptime(key[6:14], "%Y%m%d").date()
            except ValueError:
                expected = None
        assert dates[number] == expected, key
    assert len(dates) == numbered["person_key"].n_unique()
