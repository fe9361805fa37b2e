"""Query parameters of the pages' GET forms, read leniently where a browser sends blanks (an empty select is
``county=``) and strictly otherwise: a malformed value is a 422 page saying which field is wrong."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TypeVar

from starlette.datastructures import QueryParams

from dibao.serve.problems import ApiProblem

T = TypeVar("T", bound=str)
_COUNTY = re.compile(r"^[0-9]{6}$")
_AREA = re.compile(r"^[0-9]{2,12}$")
MAX_TEXT = 64


def _invalid(field: str, what: str) -> ApiProblem:
    return ApiProblem(422, f"参数 {field} 无效：{what} (invalid parameter {field})",
                      type_="urn:dibao:problem:invalid-request", title="参数无效 (Invalid request parameters)")


def text(params: QueryParams, name: str) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > MAX_TEXT:
        raise _invalid(name, f"最多 {MAX_TEXT} 个字符")
    return value or None


def county(params: QueryParams, name: str = "county") -> str | None:
    value = text(params, name)
    if value is not None and not _COUNTY.match(value):
        raise _invalid(name, "县级区划代码应为6位数字")
    return value


def area(params: QueryParams, name: str = "area") -> str | None:
    value = text(params, name)
    if value is not None and not _AREA.match(value):
        raise _invalid(name, "区划代码应为数字")
    return value


def date(params: QueryParams, name: str) -> dt.date | None:
    value = text(params, name)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, "日期应写作 YYYY-MM-DD") from None


def choice(params: QueryParams, name: str, allowed: Sequence[T], default: T) -> T:
    found = optional_choice(params, name, allowed)
    return default if found is None else found


def optional_choice(params: QueryParams, name: str, allowed: Sequence[T]) -> T | None:
    """One of ``allowed``, or None when the field is blank or absent."""
    value = text(params, name)
    if value is None:
        return None
    for option in allowed:
        if option == value:
            return option
    raise _invalid(name, "可选值为 " + "、".join(allowed))


def number(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    value = text(params, name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise _invalid(name, f"应为 {low} 至 {high} 的整数")
    return int(value)
