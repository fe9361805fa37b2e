"""Rules (``eligibility.yaml``, shipped in ``dibao/policy/``) parsed with sqlglot, checked, compiled to SQL.

A rule's condition is plain SQL over documented fact columns and parameter names. The compiler refuses any other
name, any function not on the list and any construct beyond boolean logic, comparison and arithmetic, naming the
rule; so a rule can never read a table, call a UDF or smuggle in a sub-query. The compiled form is kept
dialect-neutral: the same condition transpiles to DuckDB (used here) and to Spark SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlglot
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlglot import exp

from dibao.errors import ConfigError
from dibao.policy_files import ELIGIBILITY, shipped
from dibao.rules.catalog import CATALOG, FACT_NAMES, Catalog
from dibao.rules.params import ParameterSet

DEFAULT_RULES_PATH = shipped(ELIGIBILITY)

Outcome = Literal["exit", "inclusion", "flag"]
AppliesTo = Literal["roll", "household"]

# Functions a condition may call; all exist under these names in DuckDB and Spark SQL.
ALLOWED_FUNCTIONS: tuple[type[exp.Expression], ...] = (exp.Coalesce, exp.Greatest, exp.Least, exp.Abs, exp.Round)
# Syntax a condition may use besides names, literals and the functions above.
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.Case, exp.If, exp.Literal, exp.Boolean,
    exp.Null, exp.Column, exp.Identifier, exp.Tuple,
)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class _RuleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: str
    outcome: Outcome
    applies_to: AppliesTo
    reference: str
    when: str
    show: list[str] = []
    grace: bool = False


class _RulesDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    version: str
    rules: list[_RuleDoc]


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    outcome: Outcome
    applies_to: AppliesTo
    reference: str
    when: str  # as written
    sql: str  # compiled (DuckDB)
    facts_read: tuple[str, ...]  # in order of first appearance, then `show`
    params_read: tuple[str, ...]
    grace: bool

    def to_dialect(self, dialect: str) -> str:
        """The condition in another SQL dialect (e.g. ``spark``)."""
        return sqlglot.transpile(self.sql, read="duckdb", write=dialect)[0]


@dataclass(frozen=True)
class RuleSet:
    version: str
    source: Path
    rules: tuple[Rule, ...]
    catalog: Catalog = CATALOG  # the facts the rules were checked against (and the facts stage computes)

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def compile_condition(rule_id: str, when: str, parameter_names: set[str], source: Path,
                      fact_names: frozenset[str] = FACT_NAMES) -> tuple[str, list[str], list[str]]:
    """Parse and check one condition. Returns (DuckDB SQL, facts read, parameters read)."""
    where = f"{source}: rule {rule_id}"
    try:
        tree = sqlglot.parse_one(when, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ConfigError(f"{where}: the condition is not valid SQL: {str(exc).splitlines()[0]}") from exc
    facts: list[str] = []
    params: list[str] = []
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if node.table:
                raise ConfigError(f"{where}: {node.sql()!r}: write plain fact or parameter names, no tables")
            name = node.name
            if name in fact_names:
                facts.append(name) if name not in facts else None
            elif name in parameter_names:
                params.append(name) if name not in params else None
            else:
                raise ConfigError(f"{where}: unknown name {name!r}: not a documented fact "
                                  f"(dibao/rules/catalog.py) nor a parameter (parameters.yaml)")
        elif isinstance(node, ALLOWED_NODES + ALLOWED_FUNCTIONS):
            continue
        elif isinstance(node, exp.Func):
            raise ConfigError(f"{where}: function {node.sql_name()} is not allowed "
                              f"(allowed: {', '.join(f.__name__.upper() for f in ALLOWED_FUNCTIONS)})")
        else:
            raise ConfigError(f"{where}: {type(node).__name__} ({node.sql()[:40]!r}) is not allowed in a condition")
    return tree.sql(dialect="duckdb"), facts, params


def load_rules(parameters: ParameterSet, path: Path = DEFAULT_RULES_PATH, catalog: Catalog = CATALOG) -> RuleSet:
    """Load, check and compile the rules against the facts of ``catalog`` (the shipped one unless a deployment
    or a test adds facts)."""
    try:
        doc = _RulesDoc.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rules: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: malformed rules: {exc}") from exc
    seen: set[str] = set()
    rules = []
    for r in doc.rules:
        if not _ID.match(r.id):
            raise ConfigError(f"{path}: rule {r.id!r}: an id is snake_case (a stable reason code)")
        if r.id in seen:
            raise ConfigError(f"{path}: rule {r.id}: defined twice")
        seen.add(r.id)
        sql, facts, params = compile_condition(r.id, r.when, set(parameters.parameters), path, catalog.names)
        for name in r.show:
            if name in catalog.names:
                facts.append(name) if name not in facts else None
            elif name in parameters.parameters:
                params.append(name) if name not in params else None
            else:
                raise ConfigError(f"{path}: rule {r.id}: show: unknown name {name!r}")
        rules.append(Rule(r.id, r.label, r.outcome, r.applies_to, r.reference, r.when, sql, tuple(facts),
                          tuple(params), r.grace))
    if sum(r.grace for r in rules) > 1:
        raise ConfigError(f"{path}: only one rule may open a grace period (grace: true)")
    return RuleSet(doc.version, path, tuple(rules), catalog)
