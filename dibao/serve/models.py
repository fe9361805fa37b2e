"""Response models of the API (the OpenAPI schema at /docs is generated from these), 中文 / English."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dibao.publish.contract import ListName


class Problem(BaseModel):
    """错误 (RFC 9457 application/problem+json) — every error of the API has this shape."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="问题类型 URI / problem type URI", examples=["about:blank"])
    title: str = Field(description="简述 / short summary", examples=["Not Found"])
    status: int = Field(description="HTTP 状态码 / HTTP status", examples=[404])
    detail: str = Field(description="说明 / what went wrong, in words one can act on")


class Health(BaseModel):
    status: Literal["ok"] = Field(description="服务状态 / service status")
    run: dt.date | None = Field(description="当前提供的运行日期 / date of the run being served (null: none yet)")


class Fact(BaseModel):
    name: str = Field(description="事实字段名 / fact name (dibao/rules/catalog.py)")
    label: str = Field(description="中文名称 / Chinese label")
    value: Any = Field(description="取值 / value")


class Parameter(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    value: Any = Field(description="参数值 / value in force")
    from_: dt.date | str | None = Field(default=None, alias="from",
                                        description="起执行日期 / in force since")
    unit: str | None = Field(default=None, description="单位 / unit")
    unit_label: str | None = Field(default=None, description="单位 (中文) / unit in Chinese")
    carried_forward: bool = Field(default=False, description="已过期沿用 / an expired yearly value used on")


class Decision(BaseModel):
    code: str = Field(description="规则代码 / rule code, e.g. income_above_standard")
    outcome: str = Field(description="结果 / exit (应退尽退), inclusion (应保尽保) or flag (其他核查)")
    outcome_label: str = Field(description="结果 (中文) / outcome in Chinese")
    label: str = Field(description="规则名称 / rule label")
    detail: str = Field(description="说明 (含数据) / one-line explanation with the figures")
    reference: str = Field(description="政策依据 / policy reference")
    figures: dict[str, Any] = Field(description="规则读取的数据 / the figures the rule read")
    parameters: dict[str, Parameter] = Field(description="适用参数及起执行日期 / parameters in force")
    due_date: dt.date | None = Field(default=None, description="办理期限 / when the finding falls due")


class Member(BaseModel):
    name: str | None = Field(description="姓名 (按权限脱敏) / name, masked unless the role needs it")
    id_number: str | None = Field(
        description="公民身份号码 (按权限脱敏; 无有效证件号时为空) / ID number, masked unless the role needs it")
    person_key: str = Field(description="人员标识 (同一值 = 同一人; 按权限脱敏) / person key (masked likewise)")
    source: str = Field(description="数据来源 / source file")
    row: int = Field(description="来源文件中的行号 / 1-based data row in that file")
    method: str = Field(description="关联方式 / link method (exact, upgraded_15, repaired_id, name_match, internal)")
    method_label: str = Field(description="关联方式 (中文)")
    score: float | None = Field(description="关联得分 / link score")
    evidence: list[str] | None = Field(description="关联依据 / link evidence")
    id_status: str | None = Field(description="证件号状态 / ID status in that record")


class ListEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    list_: ListName = Field(alias="list", description="名单 / list: exit, inclusion or flag")
    list_label: str = Field(description="名单 (中文) / 应退尽退, 应保尽保, 其他核查")
    reasons: list[str] = Field(description="原因代码 / reason codes")
    reason_labels: list[str] = Field(description="原因 (中文) / reasons in Chinese")
    first_seen: dt.date | None = Field(description="首次发现日期 / first seen")
    grace_until: dt.date | None = Field(description="渐退期截止 / end of the 渐退 grace period")


class HistoryEntry(BaseModel):
    run_date: dt.date = Field(description="运行日期 / run date")
    lists: list[ListEntry] = Field(description="当日所在名单 (空 = 不在任何名单) / lists the household was on")


class Household(BaseModel):
    subject_type: str = Field(description="对象类型 / roll (低保/特困在保) or household (脱贫/监测家庭)")
    source: str = Field(description="数据来源 / dibao_roll, registry or monitoring")
    household_id: str | None = Field(description="家庭编号 (辖区外为空) / household number in that source "
                                                 "(null outside the caller's counties)")
    county_code: str | None = Field(description="县级区划代码 / county code")
    county_name: str | None = Field(default=None, description="县名 / county name")
    lists: list[ListName] = Field(default_factory=list, description="本次运行所在名单 / lists it is on in this run")
    list_labels: list[str] = Field(default_factory=list, description="所在名单 (中文) / those lists in Chinese")
    town: str | None = Field(description="乡镇 / township")
    village: str | None = Field(description="行政村 / village")
    head_name: str | None = Field(description="户主姓名 (按权限脱敏) / household head, masked unless needed")
    head_id: str | None = Field(description="户主证件号 (按权限脱敏) / head's ID number, masked unless needed")
    in_scope: bool = Field(description="是否在本人辖区内 (辖区外只显示所在县和所在名单，不含任何个人信息) / within the "
                                       "caller's counties (outside them: only the county and the lists it is on, "
                                       "nothing personal)")
    facts: list[Fact] = Field(description="主要家庭事实 / key household facts")
    first_seen: dt.date | None = Field(description="列入应退尽退名单首日 / first day on the exit list")
    grace_start: dt.date | None = Field(description="渐退期起始 / start of the 渐退 grace period")
    grace_until: dt.date | None = Field(description="渐退期截止 / end of the 渐退 grace period")
    decisions: list[Decision] = Field(description="本次运行的全部判定 / every decision of this run")
    members: list[Member] = Field(description="家庭成员记录及关联依据 / member records and link evidence")
    history: list[HistoryEntry] = Field(description="历次运行所在名单 / lists in every published run")


class HouseholdLookup(BaseModel):
    run: dt.date = Field(description="运行日期 / run date")
    matched_by: Literal["id_number", "household_id"] = Field(description="匹配方式 / matched by")
    person_key: str | None = Field(description="查询的证件号 (规范化) / the ID number asked for, normalised")
    households: list[Household] = Field(description="跨系统的同一家庭 / the family across systems")


class Candidate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    list_: ListName = Field(alias="list", description="名单 / exit, inclusion or flag")
    subject_type: str | None = Field(description="对象类型 / subject type")
    subject_id: str = Field(description="家庭编号 (个人对象为证件号, 按权限脱敏) / household number")
    source: str | None = Field(description="数据来源 / source")
    county_code: str | None = Field(description="县级区划代码 / county code")
    county_name: str | None = Field(default=None, description="县名 / county name (null for runs made before it)")
    town: str | None = Field(description="乡镇 / township")
    village: str | None = Field(description="行政村 / village")
    head_name: str | None = Field(description="户主姓名 (经办人员看到脱敏值) / household head (masked for caseworkers)")
    head_id: str | None = Field(description="户主证件号 (经办人员看到脱敏值) / head's ID (masked for caseworkers)")
    reasons: list[str] = Field(description="原因代码 / reason codes")
    reason_labels: list[str] = Field(description="原因 (中文) / reasons")
    figures: dict[str, Any] = Field(description="各原因的数据 / figures per reason")
    detail: str | None = Field(description="说明 / explanation")
    first_seen: dt.date | None = Field(description="首次发现日期 / first seen")
    grace_start: dt.date | None = Field(default=None, description="渐退期起始 / grace start (exit list)")
    grace_until: dt.date | None = Field(default=None, description="渐退期截止 / grace end (exit list)")


class CandidatePage(BaseModel):
    run: dt.date = Field(description="运行日期 / run date")
    type: ListName = Field(description="名单 / list")
    total: int = Field(description="符合条件的总数 / items matching the filters")
    page: int = Field(description="页码 (从 1 起) / page, from 1")
    size: int = Field(description="每页条数 / page size")
    items: list[Candidate]


class RunCounts(BaseModel):
    exit_candidates: int | None = Field(description="应退尽退户数")
    inclusion_candidates: int | None = Field(description="应保尽保户数")
    flags: int | None = Field(description="其他核查条数")


class RunInfo(BaseModel):
    date: dt.date = Field(description="运行日期 / run date")
    served: bool = Field(description="是否为当前提供的运行 / the run being served")
    previous_run: dt.date | None = Field(description="上一次运行 / previous run")
    counts: RunCounts
    changes: dict[str, int] = Field(description="与上次相比的变化 / changes since the previous run (list:change)")
    summary: str | None = Field(description="摘要 / summary line")
    rejected_rows: int | None = Field(description="拒收行数 / rejected input rows")
    skipped: dict[str, Any] = Field(description="跳过的核查 / checks skipped for a missing optional file")
    content_sha256: str | None = Field(description="发布内容哈希 / hash of the published data files")


class DiffItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    list_: str = Field(alias="list", description="名单 / list")
    list_label: str = Field(description="名单 (中文)")
    subject_id: str = Field(description="家庭编号 / household number (a person's ID is masked for caseworkers)")
    county_code: str | None = Field(description="县级区划代码")
    town: str | None = Field(description="乡镇")
    code: str | None = Field(description="核查代码 (其他核查) / flag code")
    change: str = Field(description="变化 / added, resolved or changed")
    change_label: str = Field(description="变化 (中文) / 新增, 已解决, 有变化")
    detail: str | None = Field(description="说明")
    date: dt.date = Field(description="运行日期")


class DiffPage(BaseModel):
    run: dt.date
    total: int
    page: int
    size: int
    items: list[DiffItem]


class CoverageRow(BaseModel):
    level: str = Field(description="层级 / county, city or province")
    area_code: str = Field(description="区划代码 / area code")
    area_name: str | None = Field(description="区划名称 / area name")
    measure: str = Field(description="指标 / measure, e.g. rural_dibao_coverage")
    label: str | None = Field(default=None, description="指标 (中文)")
    numerator: float | None = Field(description="分子 (小于阈值时隐去为 null) / numerator; null when withheld")
    denominator: float | None = Field(description="分母 (小于阈值时隐去为 null) / denominator; null when withheld")
    rate: float | None = Field(description="比率 / rate (numerator / denominator); null when the denominator is 0 "
                                           "or either is withheld")
    reference_rate: float | None = Field(description="全国参考值 / national reference")
    run_date: dt.date = Field(description="运行日期 / run date")
    suppressed: bool = Field(default=False, description=(
        "是否有数值因过小而隐去 (显示为 <5) / true when a figure of this row is withheld: below the service's "
        "minimum cell size (DIBAO_API_MIN_CELL, default 5; shown as <5), or withheld so that totals cannot give "
        "a small one back"))
    suppressed_fields: list[Literal["numerator", "denominator", "rate"]] = Field(
        default_factory=list, description="隐去的字段 / which of numerator, denominator, rate are withheld (null)")


class CountRow(BaseModel):
    county_code: str | None = Field(description="县级区划代码")
    model_config = ConfigDict(populate_by_name=True)
    list_: str = Field(alias="list", description="名单 / list")
    reason: str = Field(description="原因代码 / reason code")
    reason_label: str | None = Field(description="原因 (中文)")
    count: int | None = Field(description="户数 (其他核查为条数；隐去时为 null) / households (flags: findings); null "
                                          "when withheld")
    suppressed: bool = Field(default=False, description=(
        "是否因过小而隐去 (显示为 <5) / true when the count is withheld (null): below the service's minimum cell "
        "size (DIBAO_API_MIN_CELL, default 5; shown as <5), or withheld so that totals cannot give a small one "
        "back — a withheld cell may be 0"))
