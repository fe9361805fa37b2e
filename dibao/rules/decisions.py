"""From fired rules to the published lists (``dibao/publish/contract.py``): exit candidates, inclusion candidates,
flags.

渐退帮扶: a roll household whose only reason is the rule marked ``grace: true`` (income above the standard) keeps
its benefit for ``grace_months``; ``grace_until`` is the last day of that period counted from ``first_seen``.
In this stage ``first_seen`` is the run date; the daily batch carries it from one run to the next.

Every list is sorted on a unique key (county, household or subject, source), so the same decisions publish the
same bytes whatever order the threads of earlier stages produced them in.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from dibao.publish.contract import EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA, PLACE_COLUMNS
from dibao.rules.compile import RuleSet


def _with_place(frame: pl.DataFrame, facts: pl.DataFrame | None) -> pl.DataFrame:
    """Add town, village and household head from the facts (absent in rule-case tests, which have no places)."""
    if facts is None or "town" not in facts.columns:
        return frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in PLACE_COLUMNS])
    keys = ["subject_type", "subject_id", "source"]
    # The places of the frame's subjects only, not of all the facts' (a province's 2 million, three times).
    place = (facts.select(*keys, *PLACE_COLUMNS).join(frame.select(keys), on=keys, how="semi")
             .unique(keys, keep="first", maintain_order=True))
    return frame.join(place, on=keys, how="left", maintain_order="left")


def _grouped(decisions: pl.DataFrame, outcome: str, order: dict[str, int]) -> pl.DataFrame:
    """One row per subject: reasons in rule order, figures as one JSON object {reason: figures}.

    Sorted on a unique key first (a registry and a monitoring household may share a number), so the groups and
    their reasons come out in the same order on every run.
    """
    rows = decisions.filter(pl.col("outcome") == outcome).with_columns(
        pl.col("rule_id").replace_strict(order, return_dtype=pl.Int32).alias("__order")
    ).sort("subject_type", "subject_id", "source", "__order")
    return rows.group_by("subject_type", "subject_id", "source", "county_code", maintain_order=True).agg(
        pl.col("rule_id").alias("reasons"),
        pl.col("label").alias("reason_labels"),
        (pl.lit("{") + pl.concat_str([pl.lit('"') + pl.col("rule_id") + pl.lit('":') + pl.col("figures")])
         .str.join(",") + pl.lit("}")).alias("figures"),
        pl.col("detail").str.join("\n").alias("detail"),
    )


def grace_until(grace_rule: str | None) -> pl.Expr:
    """Last day of 渐退 grace: ``grace_start`` + ``grace_months`` − 1 day, while income is the only reason."""
    only_grace = (pl.col("reasons").list.len() == 1) & (pl.col("reasons").list.first() == grace_rule)
    end = (pl.col("grace_start").dt.offset_by(pl.format("{}mo", pl.col("grace_months").cast(pl.Int32)))
           .dt.offset_by("-1d"))
    return pl.when(only_grace & pl.col("grace_start").is_not_null()).then(end).alias("grace_until")


def exit_candidates(decisions: pl.DataFrame, rules: RuleSet, params: pl.DataFrame, run_date: dt.date,
                    facts: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per roll household with its reasons; ``first_seen`` and ``grace_start`` are today's (a later
    stage carries earlier ones forward, see ``dibao.publish.state``)."""
    order = {r.id: i for i, r in enumerate(rules.rules)}
    grace_rule = next((r.id for r in rules.rules if r.grace), None)
    grouped = _with_place(_grouped(decisions, "exit", order), facts)
    return (
        grouped.join(grace_months(params), on="county_code", how="left")
        .with_columns(
            pl.lit(run_date).alias("first_seen"),
            pl.when(pl.col("reasons").list.contains(grace_rule)).then(pl.lit(run_date)).alias("grace_start"),
        )
        .with_columns(grace_until(grace_rule))
        .rename({"subject_id": "dibao_household_id"})
        .select(list(EXIT_SCHEMA)).cast(EXIT_SCHEMA)  # type: ignore[arg-type]
        .sort("county_code", "dibao_household_id")
    )


def grace_months(params: pl.DataFrame) -> pl.DataFrame:
    """``grace_months`` in force per county (the same for both areas)."""
    return params.filter(pl.col("area") == "农村").select("county_code", "grace_months")


def inclusion_candidates(decisions: pl.DataFrame, rules: RuleSet, run_date: dt.date,
                         facts: pl.DataFrame | None = None) -> pl.DataFrame:
    order = {r.id: i for i, r in enumerate(rules.rules)}
    return (
        _with_place(_grouped(decisions, "inclusion", order), facts)
        .with_columns(pl.lit(run_date).alias("first_seen"))
        .rename({"subject_id": "household_id"})
        .select(list(INCLUSION_SCHEMA)).cast(INCLUSION_SCHEMA)  # type: ignore[arg-type]
        .sort("county_code", "household_id", "source")
    )


def flags(decisions: pl.DataFrame, run_date: dt.date, facts: pl.DataFrame | None = None) -> pl.DataFrame:
    return (
        _with_place(decisions.filter(pl.col("outcome") == "flag"), facts)
        .with_columns(pl.lit("household").alias("subject_type"), pl.col("rule_id").alias("code"),
                      pl.lit(run_date).alias("first_seen"))
        .select(list(FLAG_SCHEMA)).cast(FLAG_SCHEMA)  # type: ignore[arg-type]
        .sort("county_code", "code", "subject_id", "source")
    )
