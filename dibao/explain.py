"""Why was this household flagged? One household (or person) across systems, from a published run.

The caseworker types an ID number (15 or 18 digits, any formatting) or a household number of any system; we find
the family's cross-walk group and return every household of it with its facts, every decision with the figures,
parameters in force and policy reference, and the link evidence of each member record. The result is plain data:
the CLI prints it and the API serves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dibao.errors import DibaoError
from dibao.ids import check_id, looks_like_id
from dibao.rules.catalog import FACT_LABELS

# The facts worth showing in a household header, in order.
HEADLINE_FACTS = ("county_code", "area", "members", "covered", "assistance_type", "per_capita_income",
                  "income_source", "assessed_income", "per_capita_assets", "vehicles", "homes",
                  "active_businesses", "deceased_members", "monitoring_category", "risk_eliminated")


class NotFound(DibaoError):
    """Nothing in the run matches the number asked for."""

    exit_code = 4


@dataclass
class Explanation:
    query: str
    run: str
    matched_by: str  # id_number | household_id
    person_key: str | None
    households: list[dict[str, Any]] = field(default_factory=list)


def _read(run: Path, name: str) -> pl.LazyFrame:
    return pl.scan_parquet(run / f"{name}.parquet")


def resolve_query(run: Path, query: str) -> tuple[str, str | None, list[str]]:
    """(matched_by, person_key, household groups) for an ID number or a household number."""
    text = query.strip()
    links = _read(run, "person_links")
    id_like = looks_like_id(text)
    if id_like:
        checked = check_id(text)
        key = checked.id if checked.usable else None
        if key:
            found = (links.filter(pl.col("person_key") == key).select("household_group").drop_nulls().unique()
                     .collect()["household_group"].to_list())
            if found:
                return "id_number", key, found
            if links.filter(pl.col("person_key") == key).select(pl.len()).collect().item():
                return "id_number", key, []
    groups = (
        links.filter(pl.col("household").str.split(":").list.last() == text)
        .select("household_group").drop_nulls().unique().collect()["household_group"].to_list()
    )
    if groups:
        return "household_id", None, groups
    if id_like and not check_id(text).usable:
        raise NotFound(f"{query!r} is not a usable ID number: {check_id(text).problem()}")
    raise NotFound(f"no household or person {query!r} in the run {run.name}")


def explain(run: Path, query: str) -> Explanation:
    """Everything the run knows about the household(s) of ``query``."""
    matched_by, person_key, groups = resolve_query(run, query)
    links = _read(run, "person_links").filter(pl.col("household_group").is_in(groups)).collect()
    households = links["household"].drop_nulls().unique().to_list()
    facts = _read(run, "household_facts").filter(pl.col("household_key").is_in(households)).collect()
    exits = _read(run, "exit_candidates").select("dibao_household_id", "first_seen", "grace_until").collect()
    decisions = _read(run, "decisions").join(
        facts.lazy().select("subject_type", "subject_id", "source"), on=["subject_type", "subject_id", "source"]
    ).collect()
    result = Explanation(query, run.name, matched_by, person_key)
    for row in facts.sort("subject_type", "subject_id").iter_rows(named=True):
        subject_decisions = decisions.filter(
            (pl.col("subject_type") == row["subject_type"]) & (pl.col("subject_id") == row["subject_id"])
            & (pl.col("source") == row["source"]))
        members = links.filter(pl.col("household") == row["household_key"]).sort("row")
        exit_row = exits.filter(pl.col("dibao_household_id") == row["subject_id"]) if row["subject_type"] == "roll" \
            else exits.clear()
        result.households.append({
            "subject_type": row["subject_type"],
            "source": row["source"],
            "household_id": row["subject_id"],
            "facts": {name: row[name] for name in HEADLINE_FACTS if name in row},
            "first_seen": exit_row["first_seen"][0] if exit_row.height else None,
            "grace_until": exit_row["grace_until"][0] if exit_row.height else None,
            "decisions": [
                {"code": d["rule_id"], "outcome": d["outcome"], "label": d["label"], "detail": d["detail"],
                 "reference": d["reference"], "figures": json.loads(d["figures"]),
                 "parameters": json.loads(d["parameters"])}
                for d in subject_decisions.iter_rows(named=True)
            ],
            "members": [
                {"name": m["name"], "person_key": m["person_key"], "source": m["source"], "row": m["row"],
                 "method": m["method"], "score": m["score"], "evidence": m["evidence"],
                 "id_status": m["id_status"]}
                for m in members.iter_rows(named=True)
            ],
        })
    return result


def fact_label(name: str) -> str:
    return FACT_LABELS.get(name, name)


def figure_text(value: object) -> str:
    """A figure as a caseworker reads it."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)
