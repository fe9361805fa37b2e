"""Rules (``eligibility.yaml``, shipped in ``dibao/policy/``) parsed with sqlglot, checked, compiled to SQL.

A rule's condition is plain SQL over documented fact columns and parameter names. The compiler refuses any other
name, any function not on the list and any construct beyond boolean logic, comparison and arithmetic, naming the
rule; so a rule can never read a table, call a UDF or smuggle in a sub-query. It also refuses a number other than
0 or 1 (a threshold is a parameter, dated and referenced, so a province changes it in one place) and an exit or
inclusion rule that reads a status fact (``may_decide=False``: 财政供养 is a reason to look, never a ground to
exit; 2022年兜底保障通知 一(一)). The compiled form is kept dialect-neutral: the same condition transpiles to DuckDB
(used here) and to Spark SQL.

The same file declares ``asset_kinds``: how the department records of a vehicle or a home are sorted into classes
(from their 类型, else their 数值) and which dated parameter exempts each class (57号 第十四条).
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
from dibao.rules.params import FLAG_UNIT, ParameterSet
from dibao.schema import DEPT_ITEMS

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
# The facts counted from department records through asset_kinds (every rules file declares both).
ASSET_FACTS = ("vehicles", "homes")
# The only numbers a condition may hold: 0 and 1 (``vehicles > 0``, ``x = 1``); a threshold is a parameter.
ALLOWED_NUMBERS = frozenset({"0", "1"})


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
    due: str | None = None


class _AssetClassDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: str
    match: list[str]
    exempt: str | None = None


class _AssetKindDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str
    units: Literal["record", "value"] = "record"
    max_units: int = 1
    default: str | None = None
    classes: list[_AssetClassDoc]


class _RulesDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    version: str
    asset_kinds: dict[str, _AssetKindDoc] = {}
    rules: list[_RuleDoc]


@dataclass(frozen=True)
class AssetClass:
    """One class of a vehicle or home record (``car``, ``motorcycle``, ``dilapidated`` …)."""

    id: str
    label: str
    match: tuple[str, ...]  # words looked for in the record's 类型 (else its 数值), in order
    exempt: str | None  # the flag parameter that exempts the class; None: never exempt


@dataclass(frozen=True)
class AssetKind:
    """How department records of one item (机动车, 不动产) become the facts ``{fact}``, ``exempt_{fact}`` and
    ``unclassified_{fact}``: each record's class is the first whose words it contains, else ``default``."""

    fact: str
    item: str
    units: str  # record: each record is one; value: the record's 数值 is the count (0..max_units; otherwise 1)
    max_units: int
    default: str | None
    classes: tuple[AssetClass, ...]


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
    due: str | None = None  # a date fact: when the finding falls due (flags' due_date)

    def to_dialect(self, dialect: str) -> str:
        """The condition in another SQL dialect (e.g. ``spark``)."""
        return sqlglot.transpile(self.sql, read="duckdb", write=dialect)[0]


@dataclass(frozen=True)
class RuleSet:
    version: str
    source: Path
    rules: tuple[Rule, ...]
    catalog: Catalog = CATALOG  # the facts the rules were checked against (and the facts stage computes)
    asset_kinds: tuple[AssetKind, ...] = ()

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
        elif isinstance(node, exp.Literal) and node.is_number and node.this not in ALLOWED_NUMBERS:
            raise ConfigError(f"{where}: the number {node.this} is written into the condition: make it a dated "
                              f"parameter in parameters.yaml and name it here (only 0 and 1 may be written)")
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
        if r.outcome != "flag" and (status := catalog.status_only.intersection(facts)):
            raise ConfigError(f"{path}: rule {r.id}: {', '.join(sorted(status))} is a status, not evidence: it may "
                              f"only be a flag, never a ground to {r.outcome} (2022年兜底保障通知 一(一))")
        if r.due is not None:
            due_fact = next((f for f in catalog.facts if f.name == r.due and f.readable), None)
            if due_fact is None or due_fact.type != "date":
                raise ConfigError(f"{path}: rule {r.id}: due: {r.due!r} is not a date fact")
            facts.append(r.due) if r.due not in facts else None
        rules.append(Rule(r.id, r.label, r.outcome, r.applies_to, r.reference, r.when, sql, tuple(facts),
                          tuple(params), r.grace, r.due))
    if sum(r.grace for r in rules) > 1:
        raise ConfigError(f"{path}: only one rule may open a grace period (grace: true)")
    return RuleSet(doc.version, path, tuple(rules), catalog, _asset_kinds(doc, parameters, path, catalog))


def _asset_kinds(doc: _RulesDoc, parameters: ParameterSet, path: Path, catalog: Catalog) -> tuple[AssetKind, ...]:
    """Check and build ``asset_kinds``: known facts and items, snake_case unique classes, flag parameters."""
    kinds = []
    for fact, kind in doc.asset_kinds.items():
        where = f"{path}: asset_kinds.{fact}"
        if fact not in catalog.names:
            raise ConfigError(f"{where}: not a fact of the catalog (dibao/rules/catalog.py)")
        if kind.item not in DEPT_ITEMS:
            raise ConfigError(f"{where}.item: {kind.item!r} is not a 核对项目 of dept_facts ({', '.join(DEPT_ITEMS)})")
        ids = [c.id for c in kind.classes]
        for c in kind.classes:
            if not _ID.match(c.id) or ids.count(c.id) > 1:
                raise ConfigError(f"{where}: class {c.id!r}: a class id is snake_case and unique")
            if not c.match or any(not word.strip() for word in c.match):
                raise ConfigError(f"{where}.{c.id}: match needs at least one non-blank word")
            if c.exempt is not None:
                param = parameters.parameters.get(c.exempt)
                if param is None or param.unit != FLAG_UNIT:
                    raise ConfigError(f"{where}.{c.id}: exempt: {c.exempt!r} is not a flag parameter of "
                                      f"parameters.yaml")
        if kind.default is not None and kind.default not in ids:
            raise ConfigError(f"{where}.default: {kind.default!r} is not one of its classes")
        kinds.append(AssetKind(fact, kind.item, kind.units, kind.max_units, kind.default, tuple(
            AssetClass(c.id, c.label, tuple(w.strip() for w in c.match), c.exempt) for c in kind.classes)))
    missing = [fact for fact in ASSET_FACTS if fact not in doc.asset_kinds]
    if missing:
        raise ConfigError(f"{path}: asset_kinds: declare {', '.join(missing)} (how vehicle and home records are "
                          "classed; see the shipped eligibility.yaml)")
    return tuple(kinds)
