"""State carried from one daily run to the next, and the difference between two runs.

A work list is only useful if it remembers: when a household was first found (``first_seen``), when its 渐退
grace period started (``grace_start``: the first day its income was seen above the standard, kept while that
stays true, so the six months run from then and not from today), and what changed since yesterday. Everything
here reads the previous *published* run; nothing else is kept between runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from dibao.publish.contract import (
    DIFF_SCHEMA,
    EXIT_SCHEMA,
    LIST_FILES,
    LIST_HOUSEHOLD_COLUMN,
    LIST_LABELS,
    LISTS,
    PublishedRun,
)
from dibao.rules.compile import RuleSet
from dibao.rules.decisions import grace_months, grace_until


@dataclass
class Lists:
    """The three lists of one run."""

    exit: pl.DataFrame
    inclusion: pl.DataFrame
    flag: pl.DataFrame

    @classmethod
    def read(cls, run: Path) -> Lists:
        """The published lists of ``run``, with every column of today's contract (an older run's gets filled)."""
        published = PublishedRun(run)
        return cls(*(published.read(LIST_FILES[name]) for name in LISTS))

    def get(self, name: str) -> pl.DataFrame:
        frame: pl.DataFrame = getattr(self, name)
        return frame


def _key(name: str) -> list[str]:
    return list(LIST_FILES[name].key)


def carry_forward(current: Lists, previous: Lists | None, rules: RuleSet, params: pl.DataFrame) -> Lists:
    """Keep ``first_seen`` of items already listed, and ``grace_start`` while the income reason persists."""
    if previous is None:
        return current
    carried = {}
    for name in LISTS:
        key = _key(name)
        prev = previous.get(name).select(*key, pl.col("first_seen").alias("__first"))
        carried[name] = current.get(name).join(prev, on=key, how="left").with_columns(
            pl.coalesce("__first", "first_seen").alias("first_seen")).drop("__first")
    grace_rule = next((r.id for r in rules.rules if r.grace), None)
    prev_grace = previous.exit.select("dibao_household_id", pl.col("grace_start").alias("__grace_start"))
    carried["exit"] = (
        carried["exit"].join(prev_grace, on="dibao_household_id", how="left")
        .with_columns(pl.when(pl.col("grace_start").is_not_null())
                      .then(pl.coalesce("__grace_start", "grace_start")).alias("grace_start"))
        .join(grace_months(params), on="county_code", how="left")
        .with_columns(grace_until(grace_rule))
        .select(list(EXIT_SCHEMA))
    )
    return Lists(carried["exit"], carried["inclusion"], carried["flag"])


def publish_lists(lists: Lists, counties: pl.DataFrame) -> Lists:
    """The lists as published: ``subject_id`` (the household number under one name on all three lists) and the
    ``county_name`` of the drop's counties file added, in the contract's column order."""
    names = (counties.select(pl.col("county_code").cast(pl.String), pl.col("county_name").cast(pl.String))
             .drop_nulls("county_code").unique("county_code", keep="first", maintain_order=True))
    published = []
    for name in LISTS:
        spec = LIST_FILES[name]
        frame = lists.get(name).join(names, on="county_code", how="left", maintain_order="left")
        if "subject_id" not in frame.columns:
            frame = frame.with_columns(pl.col(spec.key[0]).alias("subject_id"))
        published.append(frame.select(list(spec.schema)).cast(spec.schema))  # type: ignore[arg-type]
    return Lists(*published)


def _reasons_text(col: str) -> pl.Expr:
    return pl.col(col).list.join("、")


def diff_lists(current: Lists, previous: Lists | None, date: dt.date) -> pl.DataFrame:
    """Added, resolved and changed items of every list since ``previous`` (everything is added on day one)."""
    frames = []
    for name in LISTS:
        key = _key(name)
        cur = current.get(name)
        prev = previous.get(name) if previous is not None else cur.clear()
        labels = "reason_labels" if name != "flag" else "label"
        cur_side = cur.select(*key, "county_code", "town", pl.col(labels).alias("__now"),
                              *(["grace_until"] if name == "exit" else []))
        prev_side = prev.select(*key, pl.col("county_code").alias("__pc"), pl.col("town").alias("__pt"),
                                pl.col(labels).alias("__was"))
        both = cur_side.join(prev_side, on=key, how="full", coalesce=True)
        now = _reasons_text("__now") if name != "flag" else pl.col("__now")
        was = _reasons_text("__was") if name != "flag" else pl.col("__was")
        change = (pl.when(pl.col("__was").is_null()).then(pl.lit("added"))
                  .when(pl.col("__now").is_null()).then(pl.lit("resolved"))
                  .when(now != was).then(pl.lit("changed")))
        detail = (pl.when(pl.col("__was").is_null()).then(pl.lit("新发现：") + now)
                  .when(pl.col("__now").is_null()).then(pl.lit("已不再成立：") + was)
                  .otherwise(pl.lit("原为：") + was + pl.lit("；现为：") + now))
        frames.append(both.with_columns(change.alias("change"), detail.alias("detail")).filter(
            pl.col("change").is_not_null()).select(
            pl.lit(name).alias("list"), pl.col(LIST_HOUSEHOLD_COLUMN[name]).alias("subject_id"),
            pl.coalesce("county_code", "__pc").alias("county_code"), pl.coalesce("town", "__pt").alias("town"),
            (pl.col("code") if name == "flag" else pl.lit(None, dtype=pl.String)).alias("code"),
            "change", "detail", pl.lit(date).alias("date"),
        ))
    return pl.concat(frames).cast(DIFF_SCHEMA).sort("list", "change", "subject_id")  # type: ignore[arg-type]


def summary_line(diff: pl.DataFrame, exits: pl.DataFrame, date: dt.date) -> str:
    """'应退尽退 +12 −30 (渐退期本周到期 4)；应保尽保 +3 −1；其他核查 +5 −2'."""
    parts = []
    for name in LISTS:
        rows = diff.filter(pl.col("list") == name)
        added = rows.filter(pl.col("change") == "added").height
        resolved = rows.filter(pl.col("change") == "resolved").height
        text = f"{LIST_LABELS[name]} +{added} −{resolved}"
        if name == "exit":
            ending = exits.filter(pl.col("grace_until").is_between(date, date + dt.timedelta(days=6))).height
            text += f" (渐退期本周到期 {ending})"
        parts.append(text)
    return "；".join(parts)
