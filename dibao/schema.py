"""The input contract, declared once.

Every file stem, its canonical fields, their types and whether a blank is allowed live here and nowhere else:
ingestion validates against it, the synthetic generator writes from it, and later stages read the canonical
names. Header aliases (the Chinese names counties actually use) are configuration, in ``dibao/policy/headers.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    """How a field's text is parsed and what counts as a row-level fault."""

    TEXT = "text"  # free text, kept as given (trimmed)
    NAME = "name"  # a person's name; normalised and given a pinyin key
    ID_NUMBER = "id_number"  # 公民身份号码 (GB 11643); never numeric; invalid values are kept with a status
    AREA_CODE = "area_code"  # 6-digit administrative division code (县级区划代码)
    CODE = "code"  # an identifier other than an ID number (户编号, 低保家庭编号): cleaned like one, never numeric
    DATE = "date"
    MONEY = "money"  # yuan, non-negative
    COUNT = "count"  # non-negative whole number
    YEAR = "year"  # four-digit calendar year
    YES_NO = "yes_no"  # 是/否
    CATEGORY = "category"  # one of a closed list of values


@dataclass(frozen=True)
class Field:
    """One canonical column of a contract file."""

    name: str
    label: str  # the contract's Chinese header
    type: FieldType
    required: bool = False  # a blank value rejects the row
    choices: tuple[str, ...] = ()  # for CATEGORY
    household_key: bool = False  # the household number of a person-level file
    household_level: bool = False  # one value per household, repeated on every member's row (checked to agree)


@dataclass(frozen=True)
class FileSpec:
    """One file stem of a daily drop."""

    stem: str
    label: str
    fields: tuple[Field, ...]
    required_file: bool  # must be present in every drop
    person_level: bool  # one row is (about) one person: linked by the linkage stage

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.stem} has no field {name!r}")

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def household_key(self) -> str | None:
        """The field holding the household number (person-level files that have one)."""
        return next((f.name for f in self.fields if f.household_key), None)


MONITORING_CATEGORIES = ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户")
AREAS = ("城市", "农村")
ASSISTANCE_TYPES = ("低保", "特困供养")
COVERAGE_MODES = ("整户保", "单人保")  # 保障方式: the whole family, or one member alone (57号 第八条)
SUPPORT_MODES = ("集中供养", "分散供养")  # 特困 供养方式: in an institution, or at home
STAFF_ROLES = ("经办人员", "村干部")
# 核对项目 of other departments' data. 服刑/强制隔离戒毒/失踪 take a person out of the 共同生活家庭 (57号 第七条);
# 重病 is a serious illness the health or insurance office recognises (单人保, 57号 第八条); 经营收入 is a
# business's yearly revenue in yuan (税务/市场监管); 工资收入 is yuan per month.
DEPT_ITEMS = ("死亡", "机动车", "不动产", "工商登记", "工资收入", "财政供养", "残疾等级",
              "经营收入", "服刑", "强制隔离戒毒", "失踪", "重病")
# The dept items that take a person out of the family (their value, if any, says where).
FAMILY_EXCLUDING_ITEMS = ("服刑", "强制隔离戒毒", "失踪")

_LOCATION = (
    Field("county_code", "县级区划代码", FieldType.AREA_CODE, required=True, household_level=True),
    Field("town", "乡镇", FieldType.TEXT, household_level=True),
    Field("village", "行政村", FieldType.TEXT, household_level=True),
)
_PERSON = (
    Field("name", "姓名", FieldType.NAME, required=True),
    Field("id_number", "证件号码", FieldType.ID_NUMBER),  # blank allowed: infants are registered before an ID
    Field("relation", "与户主关系", FieldType.TEXT),
)
_INCOME = (
    Field("wage_income", "工资性收入", FieldType.MONEY, household_level=True),
    # Every income but wages (business, property and transfer income), net, yuan per year. The components
    # below are parts of it (其中) where an export gives them: which of them count is a dated parameter.
    Field("other_net_income", "其他纯收入", FieldType.MONEY, household_level=True),
    Field("medical_out_of_pocket", "医疗自付支出", FieldType.MONEY, household_level=True),
    Field("education_spending", "教育支出", FieldType.MONEY, household_level=True),
    Field("rehabilitation_spending", "残疾康复支出", FieldType.MONEY, household_level=True),
    Field("other_rigid_spending", "其他刚性支出", FieldType.MONEY, household_level=True),
    Field("transfer_income", "转移性收入", FieldType.MONEY, household_level=True),
    Field("dibao_benefit_income", "低保金", FieldType.MONEY, household_level=True),
    Field("destitute_benefit_income", "特困供养金", FieldType.MONEY, household_level=True),
    Field("pension_base_income", "基础养老金", FieldType.MONEY, household_level=True),
    Field("old_age_allowance", "高龄津贴", FieldType.MONEY, household_level=True),
    Field("special_care_income", "优待抚恤金", FieldType.MONEY, household_level=True),
    Field("family_planning_income", "计划生育奖励扶助金", FieldType.MONEY, household_level=True),
    Field("scholarship_income", "奖学金", FieldType.MONEY, household_level=True),
    Field("heroism_reward", "见义勇为奖励", FieldType.MONEY, household_level=True),
    Field("income_assessed_date", "收入核算日期", FieldType.DATE, household_level=True),
)

REGISTRY = FileSpec(
    "registry",
    "脱贫人口信息",
    (
        *_LOCATION,
        Field("household_id", "户编号", FieldType.CODE, required=True, household_key=True),
        *_PERSON,
        Field("household_type", "户类型", FieldType.TEXT, household_level=True),
        Field("exit_year", "脱贫年度", FieldType.YEAR, household_level=True),
        Field("per_capita_net_income", "家庭人均纯收入", FieldType.MONEY, household_level=True),
        Field("household_size", "家庭人口数", FieldType.COUNT, household_level=True),
        *_INCOME,
    ),
    required_file=True,
    person_level=True,
)

MONITORING = FileSpec(
    "monitoring",
    "防返贫监测对象",
    (
        *_LOCATION,
        Field("household_id", "户编号", FieldType.CODE, required=True, household_key=True),
        *_PERSON,
        *_INCOME,
        Field("monitoring_category", "监测对象类别", FieldType.CATEGORY, choices=MONITORING_CATEGORIES,
              household_level=True),
        Field("identified_date", "识别纳入时间", FieldType.DATE, household_level=True),
        Field("risk_type", "主要风险类型", FieldType.TEXT),
        Field("risk_eliminated", "风险是否消除", FieldType.YES_NO, household_level=True),
        Field("risk_eliminated_date", "风险消除时间", FieldType.DATE, household_level=True),
    ),
    required_file=False,
    person_level=True,
)

DIBAO_ROLL = FileSpec(
    "dibao_roll",
    "低保特困保障对象",
    (
        *_LOCATION,
        Field("dibao_household_id", "低保家庭编号", FieldType.CODE, required=True, household_key=True),
        Field("name", "姓名", FieldType.NAME, required=True),
        Field("id_number", "身份证号码", FieldType.ID_NUMBER),
        Field("relation", "与户主关系", FieldType.TEXT),
        Field("area", "城乡类别", FieldType.CATEGORY, required=True, choices=AREAS, household_level=True),
        Field("assistance_type", "救助类型", FieldType.CATEGORY, required=True, choices=ASSISTANCE_TYPES),
        Field("monthly_benefit", "月保障金额", FieldType.MONEY, household_level=True),
        Field("enrolled_date", "纳入时间", FieldType.DATE),
        Field("assessed_monthly_income", "家庭月人均收入", FieldType.MONEY, household_level=True),
        Field("covered_persons", "保障人数", FieldType.COUNT, household_level=True),
        Field("coverage_mode", "保障方式", FieldType.CATEGORY, choices=COVERAGE_MODES, household_level=True),
        # 否: a 共同生活 family member listed with the household but not covered (e.g. beside a 单人保 member).
        Field("member_covered", "是否保障对象", FieldType.YES_NO),
        Field("support_mode", "供养方式", FieldType.CATEGORY, choices=SUPPORT_MODES, household_level=True),
        Field("last_review_date", "最近核查日期", FieldType.DATE, household_level=True),
    ),
    required_file=True,
    person_level=True,
)

BANK_ASSETS = FileSpec(
    "bank_assets",
    "银行资产核对结果",
    (
        Field("id_number", "证件号码", FieldType.ID_NUMBER, required=True),
        Field("name", "姓名", FieldType.NAME),
        Field("institution", "金融机构", FieldType.TEXT),
        Field("balance", "余额", FieldType.MONEY, required=True),
        Field("query_date", "查询日期", FieldType.DATE),
    ),
    required_file=False,
    person_level=True,
)

DEPT_FACTS = FileSpec(
    "dept_facts",
    "部门核对数据",
    (
        Field("id_number", "证件号码", FieldType.ID_NUMBER, required=True),
        Field("name", "姓名", FieldType.NAME),
        Field("department", "数据来源部门", FieldType.TEXT),
        Field("item", "核对项目", FieldType.CATEGORY, required=True, choices=DEPT_ITEMS),
        Field("value", "数值", FieldType.TEXT),
        Field("kind", "类型", FieldType.TEXT),  # 车辆类型, 房屋类型… (see asset_kinds in eligibility.yaml)
        Field("as_of", "数据日期", FieldType.DATE),
    ),
    required_file=False,
    person_level=True,
)

COUNTIES = FileSpec(
    "counties",
    "县级区划",
    (
        Field("county_code", "县级区划代码", FieldType.AREA_CODE, required=True),
        Field("county_name", "县名", FieldType.TEXT, required=True),
        Field("rural_population", "农村户籍人口", FieldType.COUNT, required=True),
    ),
    required_file=True,
    person_level=False,
)

RELATIVES = FileSpec(
    "relatives",
    "近亲属备案",
    (
        Field("staff_id_number", "工作人员证件号码", FieldType.ID_NUMBER, required=True),
        Field("staff_role", "工作人员类别", FieldType.CATEGORY, required=True, choices=STAFF_ROLES),
        Field("relative_id_number", "亲属证件号码", FieldType.ID_NUMBER, required=True),
        Field("relation", "亲属关系", FieldType.TEXT),
        Field("filed", "是否备案", FieldType.YES_NO, required=True),
    ),
    required_file=False,
    person_level=False,
)

FILE_SPECS: dict[str, FileSpec] = {
    spec.stem: spec
    for spec in (REGISTRY, MONITORING, DIBAO_ROLL, BANK_ASSETS, DEPT_FACTS, COUNTIES, RELATIVES)
}
REQUIRED_STEMS: tuple[str, ...] = tuple(s.stem for s in FILE_SPECS.values() if s.required_file)
