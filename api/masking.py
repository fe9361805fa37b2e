"""Masking of personal data (个人信息保护法): ID numbers as ``3404**********1234``, names as ``张*`` / ``欧阳**``.

A role sees a value in full only where its work needs it (DOMAIN.md §1): a caseworker looking up one household of
their own county; an admin everywhere. Everything else is masked by these functions.
"""

from __future__ import annotations

import re

# 复姓: compound surnames keep both characters (欧阳娜娜 → 欧阳**).
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "司徒", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "夏侯", "轩辕",
    "令狐", "钟离", "闾丘", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔", "申屠", "赫连", "端木", "百里",
    "东郭", "南宫", "西门", "呼延", "万俟", "拓跋", "司空", "独孤", "南门", "第五", "左丘", "梁丘", "羊舌", "微生",
})
_ID_LIKE = re.compile(r"^[0-9]{17}[0-9X]$|^[0-9]{15}$")
_SEPARATORS = frozenset("·•・. ")


def looks_like_id(value: str | None) -> bool:
    """A canonical 18-digit (or old 15-digit) ID number."""
    return value is not None and _ID_LIKE.match(value) is not None


def mask_id(value: str | None) -> str | None:
    """``340402198001011234`` → ``3404**********1234``; shorter text keeps at most its first and last 2."""
    if value is None:
        return None
    n = len(value)
    if n >= 12:
        return value[:4] + "*" * (n - 8) + value[-4:]
    if n >= 6:
        return value[:2] + "*" * (n - 4) + value[-2:]
    return "*" * n


def mask_name(value: str | None) -> str | None:
    """Keep the surname (one character, or a compound surname), star every other character.

    Separators of minority names (``·``) stay, so ``买买提·艾力`` → ``买**·**`` keeps its shape.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return text
    keep = 2 if text[:2] in COMPOUND_SURNAMES and len(text) > 2 else 1
    return text[:keep] + "".join(c if c in _SEPARATORS else "*" for c in text[keep:])


def mask_person_key(value: str | None) -> str | None:
    """A person_key: an ID number is masked; an internal key ``H:<household>:<name>`` has its name masked."""
    if value is None:
        return None
    if looks_like_id(value):
        return mask_id(value)
    if value.startswith("H:"):
        head, _, name = value.rpartition(":")
        return f"{head}:{mask_name(name)}"
    return value


def mask_subject_id(value: str | None) -> str | None:
    """A list's subject_id: household numbers stay, a person's ID number (person-level flags) is masked."""
    if value is None:
        return None
    if looks_like_id(value) or value.startswith("H:"):
        return mask_person_key(value)
    return value
