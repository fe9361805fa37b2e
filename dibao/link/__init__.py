"""Linkage: the same person and the same household across the registry, monitoring, roll, bank and departments."""

from dibao.link.households import crosswalk_table, household_groups
from dibao.link.persons import LinkResult, LinkSettings, link_persons
from dibao.link.records import person_records

__all__ = ["LinkResult", "LinkSettings", "crosswalk_table", "household_groups", "link_persons", "person_records"]
