"""The household facts: each declared once with its type, Chinese label, unit, meaning, policy reference and the
SQL that computes it (in the manner of an OpenFisca variable).

This is the whitelist the rule compiler checks against, the legend of every explanation, and the column list of
``household_facts.parquet`` (in this order). A fact's ``sql`` is its expression in the last step of the facts
pipeline (``dibao/rules/facts.py``), over the household's exact figures (step ``exact``), its place (``pl``) and
what could not be read (``mi``). A fact drawn from another department's data also declares ``person`` (an
aggregate over one person's department records: columns ``item``, ``value``, ``as_of``, ``amount``) and
``members`` (how the members' values combine, ``{col}`` standing for the person column); the pipeline then adds
the columns to its ``person_dept_base`` and ``member_agg`` steps. Adding a department data item is therefore: the item
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
    # True: a count that moves with the run date alone (days past a due date, months since an assessment). It
    # stays in the figures; the one-line explanation prints the dates instead, so an unchanged household prints the
    # same line every day (and its work-list row, and workbook, can be reused).
    daily: bool = False
    # False: a status, not evidence of ineligibility. The 2022 notice (一(一)) forbids deciding eligibility by
    # 特定职业、特殊身份, so the compiler refuses an exit or inclusion rule that reads such a fact.
    may_decide: bool = True

    @property
    def expression(self) -> str:
        return self.sql or self.name


_ROLL_OR_FAMILY = "roll: a 低保/特困 roll household; household: a registry/monitoring family"
_INCOME_KNOWN = "income_src IS NOT NULL"
_R57_7 = "民发〔2021〕57号 第七条"
_R57_13 = "民发〔2021〕57号 第十三条"
_R57_14 = "民发〔2021〕57号 第十四条"
_R43_5 = "民发〔2021〕43号 第五条"

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
    Fact("members", "int", "共同生活家庭成员数",
         "the 共同生活家庭成员 the household is tested on: a roll household's listed members (covered, and listed "
         "co-resident members not covered); a registry/monitoring family's 家庭人口数 (else members listed); "
         "members serving a sentence, in compulsory drug rehabilitation or missing left out",
         sql="size", unit="人", reference=_R57_7),
    Fact("covered", "bool", "已纳入低保/特困", "some member of the household is covered on the 低保/特困 roll",
         sql="coalesce(covered, roll_members > 0)"),
    Fact("monitored", "bool", "防返贫监测户", "the family is a monitored household"),
    Fact("assistance_type", "text", "救助类型", "低保 or 特困供养 (roll households)"),
    Fact("monthly_benefit", "number", "月保障金额", "the roll household's monthly benefit",
         sql="monthly_benefit::DOUBLE", unit="元/月"),
    Fact("assessed_income", "number", "核定家庭月人均收入", "the roll's per-capita monthly income at the last review",
         sql="assessed_income::DOUBLE", unit="元/人/月"),
    Fact("income_source", "text", "收入数据来源",
         "monitoring or registry (current income figures), dept_wages or roll_assessment (a roll household's "
         "fallbacks); none for a family whose income figures could not be read",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN income_src WHEN subject_type <> 'roll' THEN NULL "
             "WHEN dept_per_capita > coalesce(assessed_income, 0) THEN 'dept_wages' ELSE 'roll_assessment' END",
         codes=(("registry", "脱贫人口信息(registry)"), ("monitoring", "防返贫监测信息(monitoring)"),
                ("dept_wages", "人社工资数据(dept_wages)"), ("roll_assessment", "低保核定收入(roll_assessment)"))),
    Fact("gross_income", "number", "家庭年收入(计入部分, 扣除就业成本后)",
         "wages × (1 − employment-cost share) + other net income − the parts that do not count",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(gross_scaled, wd) END::DOUBLE", unit="元/年",
         reference=_R57_13),
    Fact("rigid_spending", "number", "刚性支出",
         "medical out-of-pocket + education + rehabilitation + other necessary spending, as spent "
         "(刚性支出困难家庭 test)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(rigid_exact) END::DOUBLE", unit="元/年",
         reference="《刚性支出困难家庭认定办法》第五条"),
    Fact("annual_net_income", "number", "家庭年纯收入", "counted income − deductions (of the source household)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(net_scaled, wd) END::DOUBLE", unit="元/年"),
    Fact("per_capita_income", "number", "家庭月人均收入", "current per-capita monthly income",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(net_scaled, 12 * src_size * wd) "
             "WHEN subject_type = 'roll' AND (assessed_income IS NOT NULL OR dept_per_capita IS NOT NULL) "
             "THEN greatest(coalesce(assessed_income, 0), coalesce(dept_per_capita, 0)) END::DOUBLE",
         unit="元/人/月", reference=_R57_13),
    Fact("per_capita_income_year", "number", "家庭年人均纯收入", "per-capita yearly net income",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(net_scaled, src_size * wd) END::DOUBLE", unit="元/人/年"),
    Fact("dept_wage_monthly", "number", "人社工资收入(月)", "sum of members' payroll wages reported by 人社",
         sql="fen(coalesce(dept_wage_monthly, 0))::DOUBLE", unit="元/月"),
    Fact("bank_data", "bool", "有银行核对结果", "the drop has bank-asset results (else the asset test is skipped)",
         sql="$bank_data"),
    Fact("financial_assets", "number", "家庭金融资产", "sum of the family members' balances",
         sql="fen(coalesce(financial_assets, 0))::DOUBLE", unit="元", reference=_R57_14),
    Fact("per_capita_assets", "number", "人均金融资产", "financial assets / family members",
         sql="fen_div(coalesce(financial_assets, 0), size)::DOUBLE", unit="元/人"),
    Fact("vehicles", "int", "机动车数(不予豁免)",
         "family members' vehicles of a type no exemption parameter covers on the run date (asset_kinds)",
         sql="coalesce(vehicles, 0)::INTEGER", unit="辆", reference=_R57_14),
    Fact("homes", "int", "住房套数", "homes registered to the family's members, exempt kinds (危房, 搬迁旧房) left out",
         sql="coalesce(homes, 0)::INTEGER", unit="套", reference=_R57_14),
    Fact("active_businesses", "int", "存续工商登记数", "business registrations of members still active (存续)",
         sql="coalesce(active_businesses, 0)::INTEGER", unit="户",
         person="count(*) FILTER (WHERE item = '工商登记' AND value = '存续')",
         members="coalesce(sum({col}), 0)"),
    Fact("public_payroll_members", "int", "财政供养人员数", "members paid from public funds (财政供养)",
         sql="coalesce(public_payroll_members, 0)::INTEGER", unit="人",
         person="bool_or(item = '财政供养' AND value IN ('是', '1', 'Y', 'y'))",
         members="count(*) FILTER (WHERE {col})", may_decide=False),
    Fact("deceased_members", "int", "死亡成员数", "family members reported dead by 公安",
         sql="coalesce(deceased_members, 0)::INTEGER", unit="人"),
    Fact("last_death_date", "date", "死亡日期", "most recent reported death of a family member"),
    Fact("no_work_capacity_members", "int", "丧失劳动能力成员数",
         "members whose disability grade is within the 无劳动能力 grades of their kind (43号 第五条(三), parameters)",
         sql="coalesce(no_work_capacity_members, 0)::INTEGER", unit="人", reference=_R43_5),
    Fact("elderly_members", "int", "老年成员数", "members aged at least elderly_age",
         sql="coalesce(elderly_members, 0)::INTEGER", unit="人"),
    Fact("minor_members", "int", "未成年成员数", "members younger than minor_age",
         sql="coalesce(minor_members, 0)::INTEGER", unit="人"),
    Fact("duplicate_enrolled_members", "int", "重复纳入人数",
         "covered members who are covered in another roll household as well",
         sql="coalesce(duplicate_enrolled_members, 0)::INTEGER", unit="人"),
    Fact("dibao_and_destitute_members", "int", "低保特困重复人数", "members covered by both 低保 and 特困供养",
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
         sql="date_diff('day', identified_date, $run_date)::INTEGER", unit="天", daily=True),
    Fact("risk_eliminated", "bool", "风险已消除", "monitoring marks the family's risk as eliminated"),
    Fact("family_basis", "text", "家庭成员依据",
         "where the family's members come from: the roll's list, the registry/monitoring household (a 单人保 "
         "entry listing only its covered member: approximate), or the registry/monitoring family itself",
         reference=_R57_7,
         codes=(("roll", "低保名册所列成员"), ("income_household", "按脱贫/监测户成员(近似)"),
                ("household", "本户成员"))),
    Fact("excluded_members", "int", "不计入家庭成员人数",
         "listed members serving a sentence, in compulsory drug rehabilitation or missing (部门数据), left out of "
         "the family", sql="coalesce(excluded_members, 0)::INTEGER", unit="人", reference=_R57_7),
    Fact("unlisted_registry_members", "int", "未列入低保家庭的脱贫/监测户成员数",
         "members of the roll household's registry/monitoring household who are not on its roll list (alive, "
         "not excluded): 家庭成员认定不一致, to check; never counted silently",
         sql="coalesce(unlisted_registry_members, 0)::INTEGER", unit="人", reference=_R57_7),
    Fact("coverage_mode", "text", "保障方式", "整户保 or 单人保 (roll households; 整户保 when not given)",
         reference="民发〔2021〕57号 第八条"),
    Fact("support_mode", "text", "供养方式", "集中供养 or 分散供养 (特困 roll households; 分散供养 when not given)"),
    Fact("covered_persons", "int", "保障人数", "the roll's 保障人数, else its covered members listed",
         sql="covered_persons::INTEGER", unit="人"),
    Fact("income_basis", "text", "收入口径",
         "family: the source household is the family; per_capita: the source household differs from the family "
         "(larger, or others besides a 特困 person), its per-capita figure is used (approximate); none: no "
         "current figure (a fallback, or a figure that could not be read at ingest)",
         sql=f"CASE WHEN NOT ({_INCOME_KNOWN}) THEN 'none' WHEN income_exact THEN 'family' ELSE 'per_capita' END",
         reference=_R57_13,
         codes=(("family", "来源家庭即本家庭"), ("per_capita", "按来源家庭人均折算(近似)"),
                ("none", "无当期收入数据"))),
    Fact("income_household_members", "int", "收入来源家庭人数",
         "persons of the registry/monitoring household whose figures are used (the per-capita divisor)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN src_size END::INTEGER", unit="人"),
    Fact("excluded_income", "number", "不计入收入",
         "parts of other net income that do not count on the run date (低保金, 特困供养金, 优待抚恤金, 计划生育奖扶, "
         "奖学金, 见义勇为奖励, 基础养老金 while excluded; 高龄津贴 for 特困), and the family's own benefit where the "
         "source's figure includes it without saying how much",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(excluded_exact) END::DOUBLE", unit="元/年",
         reference=_R57_13),
    Fact("employment_cost_share_applied", "number", "适用就业成本扣除比例",
         "the employment-cost share applied to wages: the province's share, higher for working members who are "
         "disabled or seriously ill (averaged over the source household's working-age members)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN round(share_applied, 4) END::DOUBLE", unit="比例",
         reference=_R57_13),
    Fact("deductions", "number", "扣减刚性支出",
         "medical, education and rehabilitation spending deducted from income, each at its share up to its cap",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen(deduction_exact) END::DOUBLE", unit="元/年",
         reference=_R57_13),
    Fact("income_assessed_date", "date", "收入核算日期", "when the source's income and spending were assessed"),
    Fact("income_figures_age_months", "int", "收入数据距今月数",
         "whole months from income_assessed_date to the run date",
         sql="date_diff('month', income_assessed_date, $run_date)::INTEGER", unit="个月", daily=True),
    Fact("dept_data", "bool", "有部门核对数据", "the drop has other departments' data (dept_facts)",
         sql="$dept_data"),
    Fact("exempt_vehicles", "int", "豁免机动车数",
         "vehicles of an exempt type (残疾人代步车, 摩托车, 三轮车, 农用车 … per parameter)",
         sql="coalesce(exempt_vehicles, 0)::INTEGER", unit="辆", reference=_R57_14),
    Fact("unclassified_vehicles", "int", "类型不明机动车数",
         "vehicles whose record names no known type (a number plate only): their use is to be checked",
         sql="coalesce(unclassified_vehicles, 0)::INTEGER", unit="辆"),
    Fact("exempt_homes", "int", "不计入的住房套数", "危房 and old houses of relocated families, per parameter",
         sql="coalesce(exempt_homes, 0)::INTEGER", unit="套", reference=_R57_14),
    Fact("business_revenue", "number", "经营收入(年)", "members' latest yearly business revenue reported (经营收入)",
         sql="fen(coalesce(business_revenue, 0))::DOUBLE", unit="元/年", reference=_R57_14,
         person="arg_max(amount, (as_of, amount)) FILTER (WHERE item = '经营收入')",
         members="coalesce(sum({col}), 0)"),
    Fact("deceased_covered_members", "int", "已死亡保障对象数",
         "covered members of the roll household reported dead and still listed",
         sql="coalesce(deceased_covered_members, 0)::INTEGER", unit="人", reference="2022年兜底保障通知 一(三)"),
    Fact("living_covered_members", "int", "在世保障对象数", "covered members of the roll household not reported dead",
         sql="coalesce(living_covered_members, 0)::INTEGER", unit="人"),
    Fact("uncovered_no_work_capacity_members", "int", "未纳入保障的丧失劳动能力成员数",
         "members without work capacity (disability grades) who are covered on no roll household",
         sql="coalesce(uncovered_no_work_capacity_members, 0)::INTEGER", unit="人", reference=_R43_5),
    Fact("per_capita_gross_income_year", "number", "家庭年人均收入(扣减刚性支出前)",
         "counted income before rigid spending is deducted, per person per year (the 刚性支出困难家庭 income test)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(gross_scaled, src_size * wd) END::DOUBLE", unit="元/人/年",
         reference="《刚性支出困难家庭认定办法》第四条"),
    Fact("recorded_income_year", "number", "登记人均纯收入(年)",
         "the source's figures as it records them, per person per year: wages + other net income, nothing left "
         "out or deducted (what the monitoring line is drawn on)",
         sql=f"CASE WHEN {_INCOME_KNOWN} THEN fen_div(coalesce(wage_income, 0) + coalesce(other_net_income, 0), "
             "src_size) END::DOUBLE", unit="元/人/年"),
    Fact("uncovered_members", "int", "未纳入保障的共同生活成员数",
         "family members of a roll household (alive, not excluded) that it lists as not covered (是否保障对象=否)",
         sql="coalesce(uncovered_members, 0)::INTEGER", unit="人", reference="2022年兜底保障通知 一(一)"),
    Fact("covered_death_date", "date", "保障对象死亡日期", "earliest death of a covered member still listed"),
    Fact("death_recheck_due", "date", "死亡复核期限",
         "covered_death_date + deceased_recheck_months: by then 保障人数 is adjusted",
         reference="2022年兜底保障通知 一(三)"),
    Fact("days_past_death_recheck", "int", "超过死亡复核期限天数", "run date − death_recheck_due (negative: days left)",
         sql="date_diff('day', death_recheck_due, $run_date)::INTEGER", unit="天", daily=True),
    Fact("severe_condition_members", "int", "重度残疾或重病成员数",
         "members with a severe disability (grade 1–2, or 3 intellectual/mental; parameters) or a recognised "
         "serious illness (重病): who may be covered alone (单人保)",
         sql="coalesce(severe_condition_members, 0)::INTEGER", unit="人", reference="民发〔2021〕57号 第八条"),
    Fact("covered_severe_condition_members", "int", "重度残疾或重病的保障对象数",
         "covered members of the roll household with a severe disability or serious illness",
         sql="coalesce(covered_severe_condition_members, 0)::INTEGER", unit="人",
         reference="民发〔2021〕57号 第八条"),
    Fact("able_to_work_members", "int", "有劳动能力成员数",
         "members aged minor_age to elderly_age without a 无劳动能力 disability (age unknown: counted as able)",
         sql="coalesce(able_to_work_members, 0)::INTEGER", unit="人", reference=_R43_5),
    Fact("covered_able_adults", "int", "有劳动能力的成年保障对象数",
         "covered members aged destitute_minor_until_age to elderly_age without a 无劳动能力 disability",
         sql="coalesce(covered_able_adults, 0)::INTEGER", unit="人", reference=_R43_5),
    Fact("minor_adult_date", "date", "特困未成年人年满周岁日期",
         "the day a covered member reaches destitute_minor_until_age (listed from due_notice_days before it until "
         "a year after it, while still on the roll)",
         reference="民发〔2021〕43号 第二十四条"),
    Fact("days_to_minor_adult", "int", "距年满周岁天数", "minor_adult_date − run date",
         sql="date_diff('day', $run_date, minor_adult_date)::INTEGER", unit="天", daily=True),
    Fact("last_review_date", "date", "最近核查日期", "the roll's 最近核查日期, else the household's enrolment date",
         sql="review_from", reference="民发〔2021〕57号 第三十一条"),
    Fact("review_cycle_months", "int", "核查周期",
         "特困: review_months_destitute; a family with members able to work: review_months_unstable; else "
         "review_months_stable", unit="个月", reference="民发〔2021〕57号 第三十一条"),
    Fact("next_review_date", "date", "下次核查日期", "last_review_date + review_cycle_months",
         reference="民发〔2021〕57号 第三十一条"),
    Fact("days_past_review", "int", "超过核查日期天数", "run date − next_review_date (negative: days left)",
         sql="date_diff('day', next_review_date, $run_date)::INTEGER", unit="天", daily=True),
    Fact("risk_eliminated_date", "date", "风险消除时间", "when the risk was marked eliminated (where given)"),
    Fact("days_to_elimination", "int", "识别至风险消除天数",
         "risk_eliminated_date − identified_date; without an elimination date, run date − identified date (an "
         "upper bound: it was eliminated no later than today)",
         sql="date_diff('day', identified_date, coalesce(risk_eliminated_date, $run_date))::INTEGER", unit="天",
         daily=True),
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
    def daily(self) -> frozenset[str]:
        """Facts that change with the run date alone (kept out of the explanation line)."""
        return frozenset(f.name for f in self.facts if f.daily)

    @property
    def status_only(self) -> frozenset[str]:
        """Facts no exit or inclusion rule may read (``may_decide=False``)."""
        return frozenset(f.name for f in self.facts if not f.may_decide)

    @property
    def department(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.person)


CATALOG = Catalog()
FACT_NAMES: frozenset[str] = CATALOG.names
FACT_LABELS: dict[str, str] = CATALOG.labels
