"""What counts as income (民发〔2021〕57号 第十三条, 民发〔2021〕43号 第六条), declared once.

A registry or monitoring export gives 其他纯收入 (every income but wages) and, where it can, the parts of it that
the texts exclude or that a province may treat differently: the family's own 低保金 and 特困供养金, the basic
pension's base amount, 高龄津贴, 优待抚恤金, 计划生育奖励与扶助金, 奖学金, 见义勇为 rewards. Whether each part
counts is a dated flag parameter (``counted``), with its own parameter for a 特困 person's income where the texts
differ (高龄津贴, 43号 第六条). The fields are the input contract's (``dibao/schema.py``); the parameters are in
``parameters.yaml``; the facts stage (``dibao/rules/facts.py``) subtracts the parts that do not count.

A source's 其他纯收入 may include the family's own benefit without saying how much (no 低保金 / 特困供养金 column,
or a blank one). A flag parameter per source (``OWN_BENEFIT_PARAMETERS``) says whether it does; then the roll's
own benefit (月保障金额 × 12) is taken out, and the trace shows it in ``excluded_income``.

Deductions (可按规定适当扣减): each kind of rigid spending is deducted at its share, up to its cap per household and
year (``DEDUCTIONS``); wages lose the employment-cost share, a higher one for working members who are disabled or
seriously ill.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IncomeComponent:
    """A part of 其他纯收入 whose counting is a parameter."""

    field: str  # the registry/monitoring field (yuan per year)
    counted: str  # flag parameter: 1 counted in a 低保 family's income, 0 not
    counted_destitute: str = ""  # flag parameter for a 特困 person's own income; default: ``counted``
    own_benefit: bool = False  # the family's own 低保/特困 benefit

    @property
    def destitute_parameter(self) -> str:
        return self.counted_destitute or self.counted


INCOME_COMPONENTS: tuple[IncomeComponent, ...] = (
    IncomeComponent("dibao_benefit_income", "dibao_benefit_income_counted", own_benefit=True),
    IncomeComponent("destitute_benefit_income", "destitute_benefit_income_counted", own_benefit=True),
    IncomeComponent("pension_base_income", "pension_base_income_counted"),
    IncomeComponent("old_age_allowance", "old_age_allowance_counted", "old_age_allowance_counted_destitute"),
    IncomeComponent("special_care_income", "special_care_income_counted"),
    IncomeComponent("family_planning_income", "family_planning_income_counted"),
    IncomeComponent("scholarship_income", "scholarship_income_counted"),
    IncomeComponent("heroism_reward", "heroism_reward_counted"),
)

# Per income source: the flag parameter saying its 其他纯收入 includes the family's own benefit.
OWN_BENEFIT_PARAMETERS: dict[str, str] = {
    "registry": "registry_income_includes_own_benefit",
    "monitoring": "monitoring_income_includes_own_benefit",
}


@dataclass(frozen=True)
class Deduction:
    """Rigid spending deducted from income: the field, at ``share``, at most ``cap`` yuan per household and year."""

    field: str
    share: str
    cap: str


DEDUCTIONS: tuple[Deduction, ...] = (
    Deduction("medical_out_of_pocket", "medical_deduction_share", "medical_deduction_cap"),
    Deduction("education_spending", "education_deduction_share", "education_deduction_cap"),
    Deduction("rehabilitation_spending", "rehabilitation_deduction_share", "rehabilitation_deduction_cap"),
)

# Rigid spending as the 刚性支出困难家庭 test counts it (as spent, no share or cap).
RIGID_SPENDING_FIELDS: tuple[str, ...] = (
    "medical_out_of_pocket", "education_spending", "rehabilitation_spending", "other_rigid_spending")

EMPLOYMENT_COST_SHARE = "employment_cost_share"
EMPLOYMENT_COST_SHARE_DISABLED = "employment_cost_share_disabled"


def income_parameters() -> tuple[str, ...]:
    """Every parameter the income computation reads."""
    names = [EMPLOYMENT_COST_SHARE, EMPLOYMENT_COST_SHARE_DISABLED, *OWN_BENEFIT_PARAMETERS.values()]
    for c in INCOME_COMPONENTS:
        names += [c.counted, c.destitute_parameter]
    for d in DEDUCTIONS:
        names += [d.share, d.cap]
    return tuple(dict.fromkeys(names))
