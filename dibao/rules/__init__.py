"""Declarative eligibility rules: dated parameters, household facts, rules compiled to SQL, decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from dibao.ingest import Drop
from dibao.rules.compile import RuleSet, load_rules
from dibao.rules.decisions import exit_candidates, flags, inclusion_candidates
from dibao.rules.evaluate import evaluate_rules
from dibao.rules.facts import household_facts
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


def decide(drop: Drop, links: pl.DataFrame, run_date: dt.date, parameters: ParameterSet, rules: RuleSet
           ) -> Decisions:
    """Resolve parameters for the drop's counties, assemble facts, evaluate every rule, shape the lists."""
    counties = drop.frame_or_empty("counties")["county_code"].to_list()
    for stem in ("dibao_roll", "registry", "monitoring"):
        counties += drop.frame_or_empty(stem)["county_code"].unique().to_list()
    params = parameters.resolve(run_date, counties)
    facts = household_facts(drop, links, params, run_date, rules)
    decisions = evaluate_rules(facts, params, rules, parameters)
    return Decisions(
        facts=facts,
        decisions=decisions,
        exit_candidates=exit_candidates(decisions, rules, params, run_date, facts),
        inclusion_candidates=inclusion_candidates(decisions, rules, run_date, facts),
        flags=flags(decisions, run_date, facts),
        params=params,
    )


__all__ = ["Decisions", "ParameterSet", "RuleSet", "decide", "load_parameters", "load_rules"]
