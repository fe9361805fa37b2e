"""Declarative eligibility rules: dated parameters, household facts, rules compiled to SQL, decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from dibao.ingest import Drop
from dibao.rules.compile import RuleSet, load_rules
from dibao.rules.decisions import exit_candidates, flags, inclusion_candidates
from dibao.rules.incremental import RulesBasis, evaluate
from dibao.rules.params import ParameterSet, load_parameters


@dataclass
class Decisions:
    """Everything the rules stage publishes."""

    facts: pl.DataFrame  # household_facts.parquet: the figures every decision read
    decisions: pl.DataFrame  # decisions.parquet: one row per (household, fired rule), with its trace
    exit_candidates: pl.DataFrame
    inclusion_candidates: pl.DataFrame
    flags: pl.DataFrame
    params: pl.DataFrame  # parameters in force per county and area on the run date
    groups_recomputed: int = 0  # household cross-walk groups whose facts were computed (the rest reused)
    groups: int = 0

    def basis(self, run_date: dt.date) -> RulesBasis:
        """What a later day on the same inputs can start from."""
        return RulesBasis(run_date, self.params, self.facts, self.decisions)


def decide(drop: Drop, links: pl.DataFrame, run_date: dt.date, parameters: ParameterSet, rules: RuleSet,
           basis: RulesBasis | None = None) -> Decisions:
    """Resolve parameters for the drop's counties, assemble facts, evaluate every rule, shape the lists.

    ``basis``: a cached day on the same inputs and linkage; only the households the date changes are recomputed
    (``dibao/rules/incremental.py``), with the same result."""
    counties = drop.frame_or_empty("counties")["county_code"].to_list()
    for stem in ("dibao_roll", "registry", "monitoring"):
        counties += drop.scan(stem).select(pl.col("county_code").unique()).collect()["county_code"].to_list()
    params = parameters.resolve(run_date, counties)
    evaluated = evaluate(drop, links, params, run_date, parameters, rules, basis)
    facts, decisions = evaluated.facts, evaluated.decisions
    return Decisions(
        facts=facts,
        decisions=decisions,
        exit_candidates=exit_candidates(decisions, rules, params, run_date, facts),
        inclusion_candidates=inclusion_candidates(decisions, rules, run_date, facts),
        flags=flags(decisions, run_date, facts),
        params=params,
        groups_recomputed=evaluated.groups_recomputed,
        groups=evaluated.groups,
    )


__all__ = ["Decisions", "ParameterSet", "RuleSet", "RulesBasis", "decide", "load_parameters", "load_rules"]
