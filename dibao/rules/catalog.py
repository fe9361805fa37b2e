"""The household facts a rule may read: name, type, Chinese label, and where the figure comes from.

This is the whitelist the rule compiler checks against, and the legend of every explanation. A rule that names a
fact not listed here is refused at load time, naming the rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    name: str
    type: str  # text | int | number | bool | date
    label: str  # 中文 label shown to caseworkers
    meaning: str


FACTS: tuple[Fact, ...] = (
    Fact("subject_type", "text", "对象类型",
         "roll: a 低保/特困 roll household; household: a registry/monitoring family"),
    Fact("subject_id", "text", "家庭编号",
         "低保家庭编号 for roll households, else the registry (or monitoring) 户编号"),
    Fact("source", "text", "数据来源", "dibao_roll, registry or monitoring"),
    Fact("county_code", "text", "县级区划代码", "county of the household"),
    Fact("area", "text", "城乡类别", "城市/农村 (registry and monitoring families are rural unless on an urban roll)"),
    Fact("members", "int", "家庭人口数",
         "persons in the household (registry 家庭人口数 where given, else members listed)"),
    Fact("covered", "bool", "已纳入低保/特困", "some member of the household is on the 低保/特困 roll"),
    Fact("monitored", "bool", "防返贫监测户", "the family is a monitored household"),
    Fact("assistance_type", "text", "救助类型", "低保 or 特困供养 (roll households)"),
    Fact("monthly_benefit", "number", "月保障金额", "the roll household's monthly benefit, yuan"),
    Fact("assessed_income", "number", "核定家庭月人均收入", "the roll's per-capita monthly income at the last review"),
    Fact("income_source", "text", "收入数据来源",
         "monitoring or registry (current income figures), dept_wages or roll_assessment (fallbacks)"),
    Fact("gross_income", "number", "家庭年收入(扣除就业成本后)",
         "wages × (1 − employment-cost share) + other net income, yuan/year"),
    Fact("rigid_spending", "number", "刚性支出", "medical out-of-pocket + education spending, yuan/year"),
    Fact("annual_net_income", "number", "家庭年纯收入", "gross income − rigid spending, yuan/year"),
    Fact("per_capita_income", "number", "家庭月人均收入", "current per-capita monthly income, yuan"),
    Fact("per_capita_income_year", "number", "家庭年人均纯收入", "per-capita yearly net income, yuan"),
    Fact("dept_wage_monthly", "number", "人社工资收入(月)",
         "sum of members' payroll wages reported by 人社, yuan/month"),
    Fact("bank_data", "bool", "有银行核对结果", "the drop has bank-asset results (else the asset test is skipped)"),
    Fact("financial_assets", "number", "家庭金融资产", "sum of linked members' balances, yuan"),
    Fact("per_capita_assets", "number", "人均金融资产", "financial assets / members, yuan"),
    Fact("vehicles", "int", "机动车数", "motor vehicles of members (disability vehicles excepted)"),
    Fact("homes", "int", "住房套数", "most homes registered to one member (不动产)"),
    Fact("active_businesses", "int", "存续工商登记数", "business registrations of members still active (存续)"),
    Fact("public_payroll_members", "int", "财政供养人员数", "members paid from public funds (财政供养)"),
    Fact("deceased_members", "int", "死亡成员数", "members reported dead by 公安"),
    Fact("last_death_date", "date", "死亡日期", "most recent reported death of a member"),
    Fact("no_work_capacity_members", "int", "丧失劳动能力成员数",
         "members with disability grade 1–2, or grade 3 intellectual/mental"),
    Fact("elderly_members", "int", "老年成员数", "members aged at least elderly_age"),
    Fact("minor_members", "int", "未成年成员数", "members younger than minor_age"),
    Fact("duplicate_enrolled_members", "int", "重复纳入人数", "members on the roll in another household as well"),
    Fact("dibao_and_destitute_members", "int", "低保特困重复人数", "members enrolled in both 低保 and 特困供养"),
    Fact("unfiled_relative_members", "int", "未备案近亲属人数",
         "members who are near relatives of a caseworker or cadre, listed as not filed (否)"),
    Fact("unknown_region_members", "int", "证件地区码不存在人数",
         "members whose ID's area code is in no edition of GB/T 2260 (status unknown_region)"),
    Fact("missing_fields", "text", "数据缺失字段",
         "fields of the household's rows cleared at ingest because their value could not be read (comma-separated)"),
    Fact("monitoring_category", "text", "监测对象类别", "脱贫不稳定户 / 边缘易致贫户 / 突发严重困难户"),
    Fact("identified_date", "date", "识别纳入时间", "when the family was identified for monitoring"),
    Fact("days_since_identified", "int", "识别至今天数", "run date − identified date, days"),
    Fact("risk_eliminated", "bool", "风险已消除", "monitoring marks the family's risk as eliminated"),
)

FACT_NAMES: frozenset[str] = frozenset(f.name for f in FACTS)
FACT_LABELS: dict[str, str] = {f.name: f.label for f in FACTS}
