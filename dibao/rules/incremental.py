"""Incremental days for the rules stage: recompute only the households a new date can change.

A day whose inputs and linkage are exactly those of a cached day (``dibao/publish/cache.py`` decides that, by
content) differs from it in three ways only:

- the run date, which the fact steps read in a few places — today a person's age and whether a 服刑/强制隔离戒毒
  record's end date has passed (``dated_steps`` finds them from the SQL, so a new one is covered without code
  here); each such step is keyed by person, and the persons whose rows differ between the two dates are found by
  running just those steps for both dates;
- the day counts among the facts (days past a review date, months since an assessment): each is an expression
  of the household's own published dates and the run date, so a reused household's are recomputed in place,
  and the rules that read one are evaluated again for every subject;
- the parameters in force (a new standard from the 1st of the month), compared per county and area;
- nothing else: every other fact is a function of the inputs and the linkage.

Facts are local to a household cross-walk group (``link/households.py``): a subject's facts read only the rows
and persons of its group (tested by ``tests/test_incremental_rules.py`` on random groups). So the groups holding
a changed person or a household of a changed county/area are recomputed from their own rows, the others are
taken from the cached day, and the decisions of unchanged subjects are reused as they were. The result equals
a full computation row for row and in order; when too much changed, the full computation is simply run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlglot
from sqlglot import exp

from dibao import duck
from dibao.ingest import Drop
from dibao.link.keys import numbered_links
from dibao.rules.catalog import Catalog, Fact
from dibao.rules.compile import RuleSet
from dibao.rules.evaluate import evaluate_rules
from dibao.rules.facts import INPUTS, build_steps, facts_connection, household_facts, step_parameters
from dibao.rules.params import ParameterSet
from dibao.rules.steps import Step, run_steps

SUBJECT = ["subject_type", "subject_id", "source"]
FACTS_ORDER = SUBJECT  # household_facts: ORDER BY subject_type, subject_id, source
FULL_ABOVE = 0.3  # above this share of groups to recompute, a full computation is as quick and simpler
_GROUP_WIDE = ("counties", "relatives")  # small files read whole by every group's steps


class RulesBasis:
    """A cached day's rules stage: what it read (date, parameters in force) and what it made.

    Its facts and decisions may be given as checked Parquet files, read when first used: a second day reads them
    after ``persons_dated_differently``, whose DuckDB work was its memory peak with them loaded. The rules stage
    lets go of them as soon as today's are made (``release``): 1.5 GiB at province scale, and held beside today's
    they were a second day's peak."""

    def __init__(self, run_date: dt.date, params: pl.DataFrame, facts: pl.DataFrame | Path,
                 decisions: pl.DataFrame | Path) -> None:
        self.run_date, self.params = run_date, params
        self._facts, self._decisions = facts, decisions

    @property
    def facts(self) -> pl.DataFrame:
        self._facts = _loaded(self._facts)
        return self._facts

    @property
    def decisions(self) -> pl.DataFrame:
        self._decisions = _loaded(self._decisions)
        return self._decisions

    def release(self) -> None:
        """Drop the cached facts and decisions (their schemas stay)."""
        self._facts, self._decisions = self.facts.clear(), self.decisions.clear()


def _loaded(frame: pl.DataFrame | Path) -> pl.DataFrame:
    """A frame, read whole and in one chunk when given as a file: the kept rows are gathered from it, and a frame
    in row-group chunks was copied into one at that point, where a day's memory peaks (+0.4 GiB at 2M)."""
    return pl.read_parquet(frame).rechunk() if isinstance(frame, Path) else frame


@dataclass(frozen=True)
class Evaluated:
    """Facts and decisions of a run, and how many cross-walk groups were computed for it (all on a full day)."""

    facts: pl.DataFrame
    decisions: pl.DataFrame
    groups_recomputed: int
    groups: int

    @property
    def reused(self) -> bool:
        return self.groups_recomputed < self.groups


def dated_steps(steps: tuple[Step, ...], catalog: Catalog) -> tuple[list[Step], list[Step]]:
    """(steps that read the run date, the date-free steps they need first), in pipeline order. The day counts of
    the final step are not counted: ``redate`` recomputes them."""
    by_name = {s.name: s for s in steps}
    day_counts = [f"{fact.sql} AS {fact.name}" for fact in dated_facts(catalog)]

    def reads_date(step: Step) -> bool:
        sql = step.sql
        for text in day_counts:
            sql = sql.replace(text, "")
        return "$run_date" in sql

    dated = [s for s in steps if reads_date(s)]
    needed: set[str] = set()
    stack = [i for s in dated for i in s.inputs]
    while stack:
        name = stack.pop()
        if name in by_name and name not in needed:
            needed.add(name)
            stack.extend(by_name[name].inputs)
    dated_names = {s.name for s in dated}
    return dated, [s for s in steps if s.name in needed and s.name not in dated_names]


def persons_dated_differently(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, rules: RuleSet,
                              first: dt.date, second: dt.date) -> pl.Series:
    """Persons (their ``person_number``, ``numbered_links``) whose rows in a date-reading step differ between the
    two run dates."""
    dated, before = dated_steps(build_steps(rules.catalog, rules.asset_kinds), rules.catalog)
    con = facts_connection(drop, links, params, rules)
    try:
        ready = set(INPUTS)
        run_steps(con, before, ready, step_parameters(drop, first))
        ready |= {s.name for s in before}
        tables: dict[str, list[str]] = {s.name: [] for s in dated}
        for index, day in enumerate((first, second)):
            run_steps(con, dated, ready, step_parameters(drop, day))
            for step in dated:
                columns = [c[0] for c in con.execute(f"DESCRIBE {step.name}").fetchall()]
                if "person_number" not in columns:
                    raise ValueError(f"facts step {step.name!r} reads the run date but is not keyed by "
                                     "person_number: the incremental rules stage cannot tell whom the date changes")
                kept = f"{step.name}__{index}"
                con.execute(f"ALTER TABLE {step.name} RENAME TO {kept}")
                tables[step.name].append(kept)
        # Each person's rows on the two dates side by side; a person whose rows are not the same on both (or who
        # has rows on one date only) is changed. A person with several rows in a table is compared row by row
        # against each other, which can only name more persons (recomputed: the same result), never fewer. One
        # hash join per table: two EXCEPT ALLs over every column of every person were most of a day 2's rules.
        differing = " UNION ".join(
            f"SELECT coalesce(a.person_number, b.person_number) AS person_number FROM {a} a "
            f"FULL JOIN {b} b ON a.person_number = b.person_number WHERE a IS DISTINCT FROM b"
            for a, b in tables.values())
        return con.sql(f"SELECT DISTINCT person_number FROM ({differing}) ORDER BY 1").pl()["person_number"]
    finally:
        con.close()


def changed_areas(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame | None:
    """(county_code, area) pairs whose parameters in force differ; None when the tables are not comparable."""
    if old.schema != new.schema:
        return None
    columns = new.columns
    differing = pl.concat([new.join(old, on=columns, how="anti", nulls_equal=True),
                           old.join(new, on=columns, how="anti", nulls_equal=True)])
    return differing.select("county_code", "area").unique()


def restrict(drop: Drop, links: pl.DataFrame, groups: pl.Series) -> tuple[Drop, pl.DataFrame]:
    """The drop and links of these cross-walk groups only: their records, and the bank and department records
    of their persons (which have no household, hence no group), with the links numbered (``numbered_links``)."""
    links = numbered_links(links)
    in_groups = pl.col("household_group").is_in(groups.implode())
    persons = links.filter(in_groups)["person_number"].unique()
    kept = links.filter(in_groups | (pl.col("household_group").is_null()
                                     & pl.col("person_number").is_in(persons.implode())))
    files = {}
    for stem, ingested in drop.files.items():
        if stem in _GROUP_WIDE:
            files[stem] = ingested
            continue
        rows = kept.filter(pl.col("source") == stem)["row"]
        files[stem] = dataclasses.replace(ingested, in_memory=ingested.scan().filter(
            pl.col("row").is_in(rows.implode())).collect(), spilled=None)
    return dataclasses.replace(drop, files=files), kept


def _households(links: pl.DataFrame) -> pl.DataFrame:
    """Each household once with its cross-walk group, found by number rather than by its 25-character key (the
    links hold 11.5 M records at 2 million households)."""
    return (links.filter(pl.col("household_number").is_not_null())
            .unique("household_number", keep="any").select("household", "household_group"))


def _group_count(links: pl.DataFrame, households: pl.DataFrame) -> int:
    """Distinct cross-walk groups of the links, the records without one (bank, department) counted as one."""
    return households["household_group"].drop_nulls().n_unique() + int(links["household_group"].null_count() > 0)


def _subject_groups(facts: pl.DataFrame, households: pl.DataFrame) -> pl.Series:
    """Each facts row's cross-walk group (by its household), in the order of ``facts``."""
    return (facts.select("household_key")
            .join(households, left_on="household_key", right_on="household", how="left",
                  maintain_order="left")["household_group"])


def dated_facts(catalog: Catalog) -> list[Fact]:
    """Facts whose expression reads the run date (the day counts)."""
    return [fact for fact in catalog.facts if "$run_date" in fact.sql]


def redate(facts: pl.DataFrame, run_date: dt.date, catalog: Catalog) -> pl.DataFrame | None:
    """``facts`` with the day counts recomputed for ``run_date`` from the row's own dates; None when a day count
    reads a column that is not published (it cannot be recomputed from the row)."""
    dated = dated_facts(catalog)
    if not dated:
        return facts
    for fact in dated:
        tree = sqlglot.parse_one(fact.sql.replace("$run_date", "DATE '2000-01-01'"), read="duckdb")
        if not {column.name for column in tree.find_all(exp.Column)} <= set(facts.columns):
            return None
    con = duck.connect()
    try:
        duck.register(con, "facts", facts.with_row_index("__i"))
        columns = ", ".join(f"{fact.sql} AS {fact.name}" for fact in dated)
        con.execute(f"CREATE TEMP TABLE redated AS SELECT __i, {columns} FROM facts", {"run_date": run_date})
        fresh = con.sql("SELECT * EXCLUDE (__i) FROM redated ORDER BY __i").pl()
    finally:
        con.close()
    return facts.with_columns(fresh.get_column(fact.name).cast(facts.schema[fact.name]) for fact in dated)


def _kept_and_recomputed(previous: pl.DataFrame, kept: pl.Series, recomputed: pl.DataFrame) -> pl.DataFrame:
    """The ``kept`` rows of ``previous`` and the ``recomputed`` facts, in the facts' order: one gather over both
    rather than a filtered copy of the kept rows and a sorted copy of the whole (each ≈ 1 GiB at province scale).
    Ties keep the order of the rows (kept rows first), as a stable sort of the two concatenated would."""
    kept_rows = kept.arg_true().cast(pl.UInt32)
    new_rows = pl.int_range(previous.height, previous.height + recomputed.height, dtype=pl.UInt32, eager=True)
    keys = pl.concat([previous.select(FACTS_ORDER)[kept_rows], recomputed.select(FACTS_ORDER)])
    order = (keys.with_columns(pl.concat([kept_rows, new_rows]).alias("__row"))
             .sort(FACTS_ORDER, nulls_last=True, maintain_order=True)["__row"])
    return pl.concat([previous, recomputed], rechunk=False)[order]


def _merge_decisions(kept: pl.DataFrame, fresh: pl.DataFrame, facts: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Decisions in evaluate_rules' order: rules in their order, then subjects in the order of the facts."""
    rule_order = pl.DataFrame({"rule_id": [r.id for r in rules.rules],
                               "__rule": pl.Series(range(len(rules.rules)), dtype=pl.UInt32)})
    position = facts.select(SUBJECT).with_row_index("__position")
    return (pl.concat([kept, fresh])
            .join(rule_order, on="rule_id", how="left")
            .join(position, on=SUBJECT, how="left")
            .sort("__rule", "__position", maintain_order=True)
            .drop("__rule", "__position"))


def evaluate(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, run_date: dt.date, parameters: ParameterSet,
             rules: RuleSet, basis: RulesBasis | None = None) -> Evaluated:
    """Facts and decisions for ``run_date``: from ``basis`` where the date cannot change them, else computed."""
    links = numbered_links(links)  # the pipeline's are numbered already (as the linkage is cached)
    if basis is not None:
        reused = _from_basis(drop, links, params, run_date, parameters, rules, basis)
        if reused is not None:
            return reused
    facts = household_facts(drop, links, params, run_date, rules)
    all_groups = _group_count(links, _households(links))
    return Evaluated(facts, evaluate_rules(facts, params, rules, parameters), all_groups, all_groups)


def _from_basis(drop: Drop, links: pl.DataFrame, params: pl.DataFrame, run_date: dt.date,
                parameters: ParameterSet, rules: RuleSet, basis: RulesBasis) -> Evaluated | None:
    areas = changed_areas(basis.params, params)
    if areas is None:
        return None
    # Before the cached facts are read: its DuckDB work is the stage's memory peak.
    persons = persons_dated_differently(drop, links, params, rules, basis.run_date, run_date)
    households = _households(links)
    all_groups = _group_count(links, households)
    subject_groups = _subject_groups(basis.facts, households)
    del households
    if subject_groups.null_count():
        return None
    by_person = links.filter(pl.col("person_number").is_in(persons.implode()))["household_group"].drop_nulls()
    by_area = subject_groups.filter(
        basis.facts.select(pl.struct("county_code", "area").is_in(
            areas.select(pl.struct("county_code", "area")).to_series().implode())).to_series())
    groups = pl.concat([by_person, by_area]).unique().sort()
    if groups.len() > FULL_ABOVE * all_groups:
        return None
    part_drop, part_links = restrict(drop, links, groups)
    part_facts = household_facts(part_drop, part_links, params, run_date, rules)
    if part_facts.schema != basis.facts.schema:
        return None
    recomputed = subject_groups.is_in(groups.implode())
    redated = redate(basis.facts, run_date, rules.catalog)  # new day counts; the other columns are shared
    if redated is None:
        return None
    facts = _kept_and_recomputed(redated, ~recomputed, part_facts)
    del redated
    # Kept subjects keep the decisions of rules that read no day count; the others are evaluated again. The
    # day-count rules run over all the facts (no copy of the kept rows: 1 GiB at 2 million households), and
    # their decisions on recomputed subjects are dropped: those come from evaluating every rule on them.
    daily = {fact.name for fact in dated_facts(rules.catalog)}
    daily_rules = tuple(rule for rule in rules.rules if daily & set(rule.facts_read))
    gone = basis.facts.filter(recomputed).select(SUBJECT)
    kept_decisions = (basis.decisions.join(gone, on=SUBJECT, how="anti")
                      .filter(~pl.col("rule_id").is_in([rule.id for rule in daily_rules])))
    del gone
    basis.release()  # today's facts and the kept decisions are made: the cached day's are no longer read
    fresh_decisions = pl.concat([
        evaluate_rules(part_facts, params, rules, parameters),
        evaluate_rules(facts, params, dataclasses.replace(rules, rules=daily_rules), parameters)
        .join(part_facts.select(SUBJECT), on=SUBJECT, how="anti", nulls_equal=True, maintain_order="left"),
    ])
    if fresh_decisions.schema != kept_decisions.schema:
        return None
    decisions = _merge_decisions(kept_decisions, fresh_decisions, facts, rules)
    return Evaluated(facts, decisions, groups.len(), all_groups)
