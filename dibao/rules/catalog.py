"""The household facts: each declared once with its type, Chinese label, unit, meaning, policy reference and the
SQL that computes it (in the manner of an OpenFisca variable).

This is the whitelist the rule compiler checks against, the legend of every explanation, and the column list of
``household_facts.parquet`` (in this order). A fact's ``sql`` is its expression in the last step of the facts
pipeline (``dibao/rules/facts.py``), over the household's exact figures (step ``exact``), its place (``pl``) and
what could not be read (``mi``). A fact drawn from another department's data also declares ``person`` (an
aggregate over one person's department records: columns ``item``, ``value``, ``as_of``, ``amount``) and
``members`` (how the members' values combine, ``{col}`` standing for the person column); the pipeline then adds
the columns to its ``person_dept`` and ``member_agg`` steps. Adding a department data item is therefore: the item
in the contract (``dibao/schema.py`` DEPT_ITEMS), one ``Fact`` here, a rule in the eligibility YAML, a case in
``tests/rules/`` (see docs/RECIPES.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Fact:
    """One column of household_facts."""

    name: str
    type: str  # text | int | number | bool | date
    label: str  # 中文 label shown to caseworkers
    meaning: str
    sql: str = ""  # expression in the final step; default: the column of the same name
    unit: str = ""  # 元/月, 元/年, 人, 辆, 套…
    reference: str = ""  # the policy text the figure serves
    person: str = ""  # department facts only: aggregate over one person's department records
    members: str = ""  # department facts only: how members' person values combine ({col})
    readable: bool = True  # False: published beside the facts (place, head) but not for rules to read
    codes: tuple[tuple[str, str], ...] = ()  # a text fact's codes and the Chinese words caseworkers read

    @property
    def expression(self) -> str:
        return self.sql or self.name


_ROLL_OR_FAMILY = "roll: a 低保/特困 roll household; household: a registry/monitoring family"
_INCOME_KNOWN = "income_src IS NOT NULL"

FACTS: tuple[Fact, ...] = (
    Fact("subject_type", "text", "对象类型", _ROLL_OR_FAMILY),
    Fact("subject_id", "text", "家庭编号",
         "低保家庭编号 for roll households, else the registry (or monitoring) 户编号"),
    Fact("source", "text", "数据来源", "dibao_roll, registry or monitoring"),
    Fact("county_code", "text", "县级区划代码", "county of the household"),
    Fact("area", "text", "城乡类别", "城市/农村 (registry and monitoring families are rural unless on an urban roll)",
         sql="coalesce(area, '农村')"),
    Fact("household_key", "text", "户键", "source:household number", sql="exact.household", readable=False),
    Fact("town", "text", "乡镇", "the household's township", sql="pl.town", readable=False),
    Fact("village", "text", "行政村", "the household's village", sql="pl.village", readable=False),
    Fact("head_name", "text", "户主姓名", "the 户主 row's name, else the first listed", sql="pl.head_name",
         readable=False),
    Fact("head_id", "text", "户主证件号码", "the 户主 row's ID, else the first listed", sql="pl.head_id",
         readable=False),
    Fact("members", "int", "家庭人口数",
         "persons in the household (registry 家庭人口数 where given, else members listed)", sql="size", unit="人"),
    Fact("covered", "bool", "已纳入低保/特困", "some member of the household is on the 低保/特困 roll",
         sql="coalesce(covered, roll_members > 0)"),
    Fact("monitored", "bool", "防返贫监测户", "the family is a monitored household"),
    Fact("assistance_type", "text", "救助类型", "低保 or 特困供养 (roll households)"),
    Fact("monthly_benefit", "number", "月保障金额", "the roll household's monthly benefit",
         sql="monthly_benefit::DOUBLE", unit="元/月"),
    Fact("assessed_income", "number", "核定家庭月人均收入", "the roll's per-capita monthly income at the last review",
         sql="assessed_income::DOUBLE", unit="元/人/月"),
    Fact("income_source", "text", "收入数据来源",
         "monitoring or registry (current income figures), dept_wages or roll_assessment (fallbacks)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN income_src WHEN dept_per_capita > coalesce(assessed_income, 0) "
             "THEN 'dept_wages' ELSE 'roll_assessment' END",
         codes=(("registry", "脱贫人口信息(registry)"), ("monitoring", "防返贫监测信息(monitoring)"),
                ("dept_wages", "人社工资数据(dept_wages)"), ("roll_assessment", "低保核定收入(roll_assessment)"))),
    Fact("gross_income", "number", "家庭年收入(扣除就业成本后)",
         "wages × (1 − employment-cost share) + other net income",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(gross_exact) END::DOUBLE", unit="元/年",
         reference="民发〔2021〕57号 第十三条"),
    Fact("rigid_spending", "number", "刚性支出", "medical out-of-pocket + education spending",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(rigid_exact) END::DOUBLE", unit="元/年"),
    Fact("annual_net_income", "number", "家庭年纯收入", "gross income − rigid spending",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(net_exact) END::DOUBLE", unit="元/年"),
    Fact("per_capita_income", "number", "家庭月人均收入", "current per-capita monthly income",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(net_exact, 12 * size) "
             "ELSE greatest(coalesce(assessed_income, 0), coalesce(dept_per_capita, 0)) END::DOUBLE",
         unit="元/人/月", reference="民发〔2021〕57号 第十三条"),
    Fact("per_capita_income_year", "number", "家庭年人均纯收入", "per-capita yearly net income",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(net_exact, size) END::DOUBLE", unit="元/人/年"),
    Fact("dept_wage_monthly", "number", "人社工资收入(月)", "sum of members' payroll wages reported by 人社",
         sql="fen(coalesce(dept_wage_monthly, 0))::DOUBLE", unit="元/月"),
    Fact("bank_data", "bool", "有银行核对结果", "the drop has bank-asset results (else the asset test is skipped)",
         sql="$bank_data"),
    Fact("financial_assets", "number", "家庭金融资产", "sum of linked members' balances",
         sql="fen(coalesce(financial_assets, 0))::DOUBLE", unit="元", reference="民发〔2021〕57号 第十四条"),
    Fact("per_capita_assets", "number", "人均金融资产", "financial assets / members",
         sql="fen_div(coalesce(financial_assets, 0), size)::DOUBLE", unit="元/人"),
    Fact("vehicles", "int", "机动车数", "motor vehicles of members (disability vehicles excepted)",
         sql="coalesce(vehicles, 0)::INTEGER", unit="辆", reference="民发〔2021〕57号 第十四条",
         person="count(*) FILTER (WHERE item = '机动车' AND value NOT LIKE '%残疾人%')",
         members="coalesce(sum({col}), 0)"),
    Fact("homes", "int", "住房套数", "most homes registered to one member (不动产)",
         sql="coalesce(homes, 0)::INTEGER", unit="套", reference="民发〔2021〕57号 第十四条",
         person="max(CASE WHEN item = '不动产' THEN try_cast(value AS INTEGER) END)",
         members="coalesce(max({col}), 0)"),
    Fact("active_businesses", "int", "存续工商登记数", "business registrations of members still active (存续)",
         sql="coalesce(active_businesses, 0)::INTEGER", unit="户",
         person="count(*) FILTER (WHERE item = '工商登记' AND value = '存续')",
         members="coalesce(sum({col}), 0)"),
    Fact("public_payroll_members", "int", "财政供养人员数", "members paid from public funds (财政供养)",
         sql="coalesce(public_payroll_members, 0)::INTEGER", unit="人",
         person="bool_or(item = '财政供养' AND value IN ('是', '1', 'Y', 'y'))",
         members="count(*) FILTER (WHERE {col})"),
    Fact("deceased_members", "int", "死亡成员数", "members reported dead by 公安",
         sql="coalesce(deceased_members, 0)::INTEGER", unit="人"),
    Fact("last_death_date", "date", "死亡日期", "most recent reported death of a member"),
    Fact("no_work_capacity_members", "int", "丧失劳动能力成员数",
         "members with disability grade 1–2, or grade 3 intellectual/mental",
         sql="coalesce(no_work_capacity_members, 0)::INTEGER", unit="人"),
    Fact("elderly_members", "int", "老年成员数", "members aged at least elderly_age",
         sql="coalesce(elderly_members, 0)::INTEGER", unit="人"),
    Fact("minor_members", "int", "未成年成员数", "members younger than minor_age",
         sql="coalesce(minor_members, 0)::INTEGER", unit="人"),
    Fact("duplicate_enrolled_members", "int", "重复纳入人数", "members on the roll in another household as well",
         sql="coalesce(duplicate_enrolled_members, 0)::INTEGER", unit="人"),
    Fact("dibao_and_destitute_members", "int", "低保特困重复人数", "members enrolled in both 低保 and 特困供养",
         sql="coalesce(dibao_and_destitute_members, 0)::INTEGER", unit="人"),
    Fact("unfiled_relative_members", "int", "未备案近亲属人数",
         "members who are near relatives of a caseworker or cadre, listed as not filed (否)",
         sql="coalesce(unfiled_relative_members, 0)::INTEGER", unit="人"),
    Fact("unknown_region_members", "int", "证件地区码不存在人数",
         "members whose ID's area code is in no edition of GB/T 2260 (status unknown_region)",
         sql="coalesce(unknown_region_members, 0)::INTEGER", unit="人"),
    Fact("missing_fields", "text", "数据缺失字段",
         "fields of the household's rows cleared at ingest because their value could not be read (comma-separated)",
         sql="mi.missing_fields"),
    Fact("monitoring_category", "text", "监测对象类别", "脱贫不稳定户 / 边缘易致贫户 / 突发严重困难户"),
    Fact("identified_date", "date", "识别纳入时间", "when the family was identified for monitoring"),
    Fact("days_since_identified", "int", "识别至今天数", "run date − identified date",
         sql="date_diff('day', identified_date, $run_date)::INTEGER", unit="天"),
    Fact("risk_eliminated", "bool", "风险已消除", "monitoring marks the family's risk as eliminated"),
)


@dataclass(frozen=True)
class Catalog:
    """The facts in force for a run: the shipped ones, or those plus a deployment's (or a test's) own."""

    facts: tuple[Fact, ...] = field(default=FACTS)

    def with_facts(self, *added: Fact) -> Catalog:
        """A catalog with more facts (a new department item): appended after the shipped ones."""
        return replace(self, facts=self.facts + added)

    @property
    def names(self) -> frozenset[str]:
        """What rules may read."""
        return frozenset(f.name for f in self.facts if f.readable)

    @property
    def labels(self) -> dict[str, str]:
        return {f.name: f.label for f in self.facts}

    @property
    def codes(self) -> dict[str, dict[str, str]]:
        """Per text fact with codes: code → the words shown in traces and work lists."""
        return {f.name: dict(f.codes) for f in self.facts if f.codes}

    @property
    def money(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.facts if f.type == "number")

    @property
    def department(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.person)


CATALOG = Catalog()
FACT_NAMES: frozenset[str] = CATALOG.names
FACT_LABELS: dict[str, str] = CATALOG.labels
