"""What a linkage did, in numbers: the manifest's ``linkage`` entry and the run summary's lines.

Kept with the cached linkage (``dibao/publish/cache.py``): counting the distinct persons of a province's 11.5
million records takes 1–2 s, and a day that reuses the linkage reuses its counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from dibao.link.persons import LinkResult


@dataclass(frozen=True)
class LinkSummary:
    """Records per link method, review cases per reason, distinct persons."""

    records_by_method: dict[str, int]
    review_by_reason: dict[str, int]
    persons: int

    def as_manifest(self) -> dict[str, Any]:
        return {"records_by_method": self.records_by_method, "review_by_reason": self.review_by_reason,
                "persons": self.persons}

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> LinkSummary:
        """From ``as_manifest``'s form; raises KeyError/TypeError/ValueError on any other shape."""
        by_method, by_reason = entry["records_by_method"], entry["review_by_reason"]
        if not isinstance(by_method, dict) or not isinstance(by_reason, dict):
            raise TypeError("link summary: counts are not mappings")
        return cls({str(k): int(v) for k, v in by_method.items()}, {str(k): int(v) for k, v in by_reason.items()},
                   int(entry["persons"]))


def summarise(linked: LinkResult) -> LinkSummary:
    methods = linked.links.group_by("method").len().sort("method")
    reasons = linked.review.group_by("reason").len().sort("reason")
    persons = linked.links.lazy().select(pl.col("person_key").n_unique()).collect().item()
    return LinkSummary(dict(zip(methods["method"].to_list(), methods["len"].to_list(), strict=True)),
                       dict(zip(reasons["reason"].to_list(), reasons["len"].to_list(), strict=True)), int(persons))
