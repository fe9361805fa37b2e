"""Header alias table: maps the headers counties actually export to the contract's canonical fields.

The table is configuration (``headers.yaml``, shipped in ``dibao/policy/``); this module loads and checks it, and
resolves one file's header row. A mistake in the table (an unknown field, one alias claimed by two fields) is
reported naming the YAML file and key, at load time, before any data is read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dibao.errors import ConfigError
from dibao.policy_files import HEADERS, shipped
from dibao.schema import FILE_SPECS, FileSpec

DEFAULT_HEADERS_PATH = shipped(HEADERS)

# A trailing unit or note in brackets: 余额(元), 工资收入（元/月）, 余额[元].
_TRAILING_BRACKET = re.compile(r"[\(\[【（][^\)\]】）]*[\)\]】）]$")


def header_key(header: str) -> str:
    """The comparable form of a header: NFKC, no whitespace, no leading '*', no trailing bracketed unit."""
    text = unicodedata.normalize("NFKC", str(header))
    text = re.sub(r"\s+", "", text).lstrip("*").lower()
    return _TRAILING_BRACKET.sub("", text) or text


class _HeaderFile(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    version: str
    fields: dict[str, list[str]]
    stems: dict[str, dict[str, list[str]]] = {}
    values: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class HeaderTable:
    """Alias lookup for every file stem: header key → canonical field name."""

    version: str
    source: Path
    by_stem: dict[str, dict[str, str]]
    value_aliases: dict[str, dict[str, str]]  # field name (or "yes_no") → written value → contract value

    def resolve(self, stem: str, header: str) -> str | None:
        return self.by_stem[stem].get(header_key(header))


def _stem_aliases(spec: FileSpec, doc: _HeaderFile, source: Path) -> dict[str, str]:
    field_names = {f.name for f in spec.fields}
    table: dict[str, str] = {}

    def claim(alias: str, field: str, where: str) -> None:
        key = header_key(alias)
        owner = table.get(key)
        if owner is not None and owner != field:
            raise ConfigError(
                f"{source}: {where}: header {alias!r} is claimed by both {owner!r} and {field!r} in {spec.stem}"
            )
        table[key] = field

    # Most specific first: stem-specific aliases, then the shared list, then the contract's own names.
    for field, aliases in doc.stems.get(spec.stem, {}).items():
        for alias in aliases:
            claim(alias, field, f"stems.{spec.stem}.{field}")
    stem_specific = set(table)
    for field, aliases in doc.fields.items():
        if field in field_names:
            for alias in aliases:
                if header_key(alias) not in stem_specific:
                    claim(alias, field, f"fields.{field}")
    for f in spec.fields:
        table.setdefault(header_key(f.name), f.name)
        table.setdefault(header_key(f.label), f.name)
    return table


def load_header_table(path: Path = DEFAULT_HEADERS_PATH) -> HeaderTable:
    """Load and check the alias table."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read header aliases: {exc}") from exc
    try:
        doc = _HeaderFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: malformed header aliases: {exc}") from exc
    known_fields = {f.name for spec in FILE_SPECS.values() for f in spec.fields}
    for field in doc.fields:
        if field not in known_fields:
            raise ConfigError(f"{path}: fields.{field}: no file of the contract has a field {field!r}")
    for stem, fields in doc.stems.items():
        if stem not in FILE_SPECS:
            raise ConfigError(f"{path}: stems.{stem}: unknown file stem (known: {', '.join(FILE_SPECS)})")
        for field in fields:
            if field not in {f.name for f in FILE_SPECS[stem].fields}:
                raise ConfigError(f"{path}: stems.{stem}.{field}: {stem} has no field {field!r}")
    choices = {f.name: f.choices for spec in FILE_SPECS.values() for f in spec.fields if f.choices}
    choices["yes_no"] = ("是", "否")
    for field, mapping in doc.values.items():
        if field not in choices:
            raise ConfigError(f"{path}: values.{field}: not a closed-list field (known: {', '.join(choices)})")
        for written, meant in mapping.items():
            if meant not in choices[field]:
                raise ConfigError(f"{path}: values.{field}.{written}: {meant!r} is not one of {choices[field]}")
    by_stem = {stem: _stem_aliases(spec, doc, path) for stem, spec in FILE_SPECS.items()}
    values = {field: {str(k): v for k, v in mapping.items()} for field, mapping in doc.values.items()}
    return HeaderTable(version=str(doc.version), source=path, by_stem=by_stem, value_aliases=values)
