"""Evaluating the compiled rules over household facts: one SQL pass, one row per (household, fired rule).

Each decision carries its trace: the figures the rule read, the parameters with the value and date in force,
the policy reference, and a one-line Chinese explanation for the work lists.

Conditions compare exact decimals: every money fact (``number`` in the catalogue) is read as ``DECIMAL(38,2)``,
the figure to the fen the caseworker sees (facts are published rounded, see ``dibao.rules.facts``), and every
parameter as ``DECIMAL(38,6)`` (``params`` refuses values with more decimals), so ``per_capita_assets >=
asset_limit_months * dibao_standard`` compares with exactly 18240 and ``0.6 * gross_income`` is exact. The trace
shows the same figures, and rows come out in a fixed order.
"""

from __future__ import annotations

import polars as pl

from dibao import duck
from dibao.publish.contract import DECISION_SCHEMA
from dibao.rules.compile import Rule, RuleSet
from dibao.rules.params import ParameterSet
from dibao.schema import FILE_SPECS

FACT_DECIMAL = "DECIMAL(38, 2)"
PARAMETER_DECIMAL = "DECIMAL(38, 6)"


def _value_text(name: str, dtype: pl.DataType, codes: dict[str, str] | None = None) -> pl.Expr:
    """A figure as caseworkers read it: 是/否, whole numbers without .0, money to the fen (760, 812.5, 0.2),
    codes in words (收入数据来源=防返贫监测信息(monitoring))."""
    col = pl.col(name)
    if codes:
        text = col.replace(codes)
    elif dtype == pl.Boolean:
        text = pl.when(col).then(pl.lit("是")).otherwise(pl.lit("否"))
    elif dtype.is_float():
        text = col.round(2).cast(pl.String).str.replace(r"\.0$", "")
    else:
        text = col.cast(pl.String)
    return text.fill_null("无")


def _detail(rule: Rule, parameters: ParameterSet, schema: pl.Schema, labels: dict[str, str],
            codes: dict[str, dict[str, str]], daily: frozenset[str] = frozenset()) -> pl.Expr:
    """'收入超过低保标准：家庭月人均收入=812.5；低保标准=760' built column-wise (no loop over rows)."""
    parts: list[pl.Expr] = []
    for name in (n for n in rule.facts_read if n not in daily):
        parts += [pl.lit(f"{labels[name]}="), _value_text(name, schema[name], codes.get(name)), pl.lit("；")]
    for name in rule.params_read:
        parts += [pl.lit(f"{parameters.parameters[name].label}="), _value_text(name, schema[name])]
        if f"{name}__carried" in schema:  # an expired yearly figure used on: say so wherever it is read
            parts.append(pl.when(pl.col(f"{name}__carried")).then(
                pl.lit("(已过期, 沿用") + pl.col(f"{name}__from").cast(pl.String) + pl.lit("起的值)"))
                .otherwise(pl.lit("")))
        parts.append(pl.lit("；"))
    text = pl.concat_str([pl.lit(f"{rule.label}："), *parts[:-1]], ignore_nulls=False)
    if "missing_fields" not in schema:
        return text
    return text + pl.concat_str([pl.lit("；数据缺失(无法识别已置空)："), _missing_labels()]).fill_null("")


def _missing_labels() -> pl.Expr:
    """'月保障金额、工资性收入' for the fields of a household cleared at ingest (their values could not be read)."""
    labels = {f.name: f.label for spec in FILE_SPECS.values() for f in spec.fields}
    return (pl.col("missing_fields").str.split(",")
            .list.eval(pl.element().replace(labels)).list.join("、"))


def _fired_sql(facts: pl.DataFrame, parameters: ParameterSet, rules: RuleSet) -> str:
    """Per facts row (``__i``), whether each rule fires, with money facts and parameters read as exact decimals.

    Only the flags come back (a narrow result, cheap to move and to sort); the trace is built from the facts as
    published, which hold the same rounded figures.
    """
    money = [n for n in rules.catalog.money if n in facts.columns]
    fact_cols = "f.*" + (" REPLACE (" + ", ".join(f'CAST(f."{n}" AS {FACT_DECIMAL}) AS "{n}"' for n in money) + ")"
                         if money else "")
    names = list(parameters.parameters)
    param_cols = "p.* EXCLUDE (county_code, area)" + (
        " REPLACE (" + ", ".join(f'CAST(p."{n}" AS {PARAMETER_DECIMAL}) AS "{n}"' for n in names) + ")"
        if names else "")
    fired = ", ".join(
        f"coalesce(subject_type = '{r.applies_to}' AND ({r.sql}), FALSE) AS \"fired:{r.id}\"" for r in rules.rules
    )
    return (f"SELECT __i, {fired} FROM (SELECT {fact_cols}, {param_cols} "
            "FROM facts f JOIN params p USING (county_code, area))")


def evaluate_rules(facts: pl.DataFrame, params: pl.DataFrame, rules: RuleSet, parameters: ParameterSet
                   ) -> pl.DataFrame:
    """All fired rules, one row per (subject, rule), with the trace: rules in their order, subjects in the order
    of ``facts`` (DuckDB returns rows in any order, so they are put back by row number)."""
    numbered = facts.with_row_index("__i")
    con = duck.connect()
    try:
        duck.register(con, "facts", numbered)
        duck.register(con, "params", params)
        flags = con.sql(_fired_sql(facts, parameters, rules)).pl().sort("__i")
    finally:
        con.close()
    # The facts of each rule's hits only, with their parameters: a province's facts joined whole to the
    # parameters were the rules stage's largest frame (2 million rows, every fact and parameter column).
    schema = numbered.head(0).join(params.head(0), on=["county_code", "area"], how="inner").schema
    frames = []
    for rule in rules.rules:  # a loop over rules, not rows
        fired = flags.filter(pl.col(f"fired:{rule.id}"))["__i"]
        if fired.is_empty():
            continue
        hits = numbered[fired].join(params, on=["county_code", "area"], how="inner", maintain_order="left")
        param_struct = pl.struct(
            [pl.struct(pl.col(n).alias("value"), pl.col(f"{n}__from").cast(pl.String).alias("from"),
                       pl.lit(parameters.parameters[n].unit).alias("unit"),
                       *([pl.col(f"{n}__carried").alias("carried_forward")]
                         if f"{n}__carried" in schema else [])).alias(n)
             for n in rule.params_read]
        ) if rule.params_read else pl.lit("{}")
        frames.append(hits.select(
            "subject_type", "subject_id", "source", "county_code",
            pl.lit(rule.id).alias("rule_id"), pl.lit(rule.outcome).alias("outcome"),
            pl.lit(rule.label).alias("label"), pl.lit(rule.reference).alias("reference"),
            pl.struct([pl.col(n) for n in rule.facts_read]).struct.json_encode().alias("figures"),
            (param_struct.struct.json_encode() if rule.params_read else param_struct).alias("parameters"),
            _detail(rule, parameters, schema, rules.catalog.labels, rules.catalog.codes,
                    rules.catalog.daily).alias("detail"),
            (pl.col(rule.due) if rule.due else pl.lit(None, dtype=pl.Date)).alias("due_date"),
        ))
    if not frames:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return pl.concat(frames).cast(DECISION_SCHEMA)
