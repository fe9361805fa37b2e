"""Masking of personal data (个人信息保护法): ID numbers as ``3404**********1234``, names as ``张*`` / ``欧阳**``,
and the masked views of households, list items and changes the API answers with.

A role sees a value in full only where its work needs it: a caseworker looking up one household of their own
county; an admin everywhere. Everything else is masked by these functions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from dibao.publish.contract import CHANGE_LABELS, LIST_LABELS
from dibao.publish.household import Household, is_id_number
from dibao.serve.tokens import Principal

# 复姓: compound surnames keep both characters (欧阳娜娜 → 欧阳**).
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "诸葛", "上官", "司徒", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "夏侯", "轩辕",
    "令狐", "钟离", "闾丘", "澹台", "公冶", "宗政", "濮阳", "淳于", "单于", "太叔", "申屠", "赫连", "端木", "百里",
    "东郭", "南宫", "西门", "呼延", "万俟", "拓跋", "司空", "独孤", "南门", "第五", "左丘", "梁丘", "羊舌", "微生",
})
_SEPARATORS = frozenset("·•・. ")


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
    if is_id_number(value):
        return mask_id(value)
    if value.startswith("H:"):
        head, _, name = value.rpartition(":")
        return f"{head}:{mask_name(name)}"
    return value


def mask_subject_id(value: str | None) -> str | None:
    """A list's subject_id: household numbers stay, a person's ID number (person-level flags) is masked."""
    if value is None:
        return None
    if is_id_number(value) or value.startswith("H:"):
        return mask_person_key(value)
    return value


# --- the views the API answers with ----------------------------------------------------------------------------


def full_view(who: Principal, county_code: str | None) -> bool:
    """Personal data in full: an admin always; a caseworker in a single-household lookup of their own county."""
    return who.is_admin or (who.role == "caseworker" and county_code in who.counties)


def _lists_today(h: Household) -> tuple[list[str], list[str]]:
    """The lists the household is on in the run looked up (the latest day of its history)."""
    if not h.history:
        return [], []
    today = max(h.history, key=lambda day: day.run_date)
    return [e.list_name for e in today.lists], [e.list_label for e in today.lists]


def out_of_scope_view(h: Household, county_name: str | None) -> dict[str, Any]:
    """A household of the family in a county the caller does not serve: that it exists, where (county), and which
    lists it is on today — nothing personal: no number, names, IDs, figures, decisions, village or history.

    Masked IDs alone were not enough: with the county known only the birth date was hidden, and a caller could try
    check-digit-valid dates until a lookup answered (issue 13)."""
    lists, labels = _lists_today(h)
    return {
        "subject_type": h.subject_type, "source": h.source, "household_id": None,
        "county_code": h.county_code, "county_name": county_name, "town": None, "village": None,
        "head_name": None, "head_id": None, "in_scope": False, "lists": lists, "list_labels": labels,
        "facts": [], "first_seen": None, "grace_start": None, "grace_until": None, "decisions": [],
        "members": [], "history": [],
    }


def household_view(h: Household, who: Principal, county_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One household of a lookup, masked for ``who`` (models.Household); outside the caller's counties only
    ``out_of_scope_view``."""
    county_name = (county_names or {}).get(h.county_code or "")
    if not who.sees_county(h.county_code):
        return out_of_scope_view(h, county_name)
    full = full_view(who, h.county_code)
    lists, labels = _lists_today(h)
    return {
        "subject_type": h.subject_type, "source": h.source, "household_id": h.household_id,
        "county_code": h.county_code, "county_name": county_name, "lists": lists, "list_labels": labels,
        "town": h.town, "village": h.village,
        "head_name": h.head_name if full else mask_name(h.head_name),
        "head_id": h.head_id if full else mask_id(h.head_id),
        "in_scope": True,
        "facts": [{"name": f.name, "label": f.label, "value": f.value} for f in h.facts],
        "first_seen": h.first_seen, "grace_start": h.grace_start, "grace_until": h.grace_until,
        "decisions": [
            {"code": d.code, "outcome": d.outcome, "outcome_label": d.outcome_label, "label": d.label,
             "detail": d.detail, "reference": d.reference, "figures": d.figures, "due_date": d.due_date,
             "parameters": {name: {"value": p.value, "from": p.from_, "unit": p.unit, "unit_label": p.unit_label,
                                   "carried_forward": p.carried_forward}
                            for name, p in d.parameters.items()}}
            for d in h.decisions],
        "members": [
            {"name": m.name if full else mask_name(m.name),
             "id_number": m.id_number if full else mask_id(m.id_number),
             "person_key": m.person_key if full else mask_person_key(m.person_key),
             "source": m.source, "row": m.row, "method": m.method, "method_label": m.method_label,
             "score": m.score, "evidence": m.evidence, "id_status": m.id_status}
            for m in h.members],
        "history": [
            {"run_date": day.run_date, "lists": [
                {"list": e.list_name, "list_label": e.list_label, "reasons": e.reasons,
                 "reason_labels": e.reason_labels, "first_seen": e.first_seen, "grace_until": e.grace_until}
                for e in day.lists]}
            for day in h.history],
    }


def _figures(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def candidate_view(name: str, row: dict[str, Any], who: Principal) -> dict[str, Any]:
    """One list item, masked for ``who`` (models.Candidate): in full for an admin only."""
    full = who.is_admin
    if name == "flag":
        reasons, labels = [row["code"]], [row["label"]]
    else:
        reasons, labels = row["reasons"] or [], row["reason_labels"] or []
    return {
        "list": name,
        "subject_type": row.get("subject_type", "roll" if name == "exit" else "household"),
        "subject_id": row["subject_id"] if full else mask_subject_id(row["subject_id"]),
        "source": row.get("source", "dibao_roll" if name == "exit" else None),
        "county_code": row.get("county_code"), "county_name": row.get("county_name"), "town": row.get("town"),
        "village": row.get("village"),
        "head_name": row.get("head_name") if full else mask_name(row.get("head_name")),
        "head_id": row.get("head_id") if full else mask_id(row.get("head_id")),
        "reasons": reasons, "reason_labels": labels, "figures": _figures(row.get("figures")),
        "detail": row.get("detail"), "first_seen": row.get("first_seen"),
        "grace_start": row.get("grace_start"), "grace_until": row.get("grace_until"),
    }


def mask_list_frame(frame: pl.DataFrame, who: Principal) -> pl.DataFrame:
    """A list's rows for a whole-list download (the web page's XLSX), masked as ``candidate_view`` masks each
    item: in full for an admin only; head name and ID masked, a person's ID number as subject masked."""
    if who.is_admin or not frame.height:
        return frame
    masks = {"head_name": mask_name, "head_id": mask_id, "subject_id": mask_subject_id,
             "dibao_household_id": mask_subject_id, "household_id": mask_subject_id}
    return frame.with_columns(pl.col(name).map_elements(mask, return_dtype=pl.String)
                              for name, mask in masks.items() if name in frame.columns)


def change_view(row: dict[str, Any], who: Principal, run: dt.date) -> dict[str, Any]:
    """One change of a run's diff, masked for ``who`` (models.DiffItem)."""
    return {**row, "subject_id": row["subject_id"] if who.is_admin else mask_subject_id(row["subject_id"]),
            "list_label": LIST_LABELS.get(row["list"], row["list"]),
            "change_label": CHANGE_LABELS.get(row["change"], row["change"]),
            "date": row.get("date") or run}


def county_names(coverage: pl.DataFrame) -> dict[str, str]:
    """County code → name, from a run's coverage table (empty for runs made before coverage)."""
    if not coverage.height or "level" not in coverage.columns:
        return {}
    rows = coverage.filter(pl.col("level") == "county").select("area_code", "area_name").unique("area_code")
    return dict(zip(rows["area_code"], rows["area_name"], strict=True))
