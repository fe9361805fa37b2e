"""What ``next_day`` did: each change with the engine effect it should have, and the files it wrote."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

KINDS = {
    "death": "成员死亡 (member died)",
    "income_rise": "工资上涨, 收入超过低保标准 (wage rise above the standard, 渐退)",
    "new_monitored": "新识别突发严重困难户 (newly monitored household)",
    "vehicle_sold": "机动车已出售 (vehicle sold)",
}


@dataclass(frozen=True)
class Change:
    """One change between day 1 and day 2, and what the engine should make of it."""

    kind: str  # death | income_rise | new_monitored | vehicle_sold
    household_id: str  # 低保家庭编号 for roll households, 户编号 for the new monitored household
    persons: tuple[tuple[str, str], ...]  # (name, ID number) of the persons concerned
    files: tuple[str, ...]  # stems whose file changed
    detail: str
    expected: str  # the engine effect: "<list>: <reason> (<diff change>)"
    related_households: tuple[str, ...] = ()  # registry/monitoring households whose rows changed (source:id)
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NextDaySummary:
    """What ``next_day`` wrote: the two dates, each change, which files changed and which were copied."""

    drop: Path
    out: Path
    truth_out: Path | None
    seed: int
    day1: dt.date
    day2: dt.date
    changes: tuple[Change, ...]
    changed_files: dict[str, Path]
    copied_files: tuple[str, ...]
    skipped: tuple[str, ...]  # changes not made, and why

    def change(self, kind: str) -> Change | None:
        return next((c for c in self.changes if c.kind == kind), None)
