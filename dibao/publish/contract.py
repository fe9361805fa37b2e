"""The published-run contract, declared once: every file a run publishes (``STORE/runs/YYYY-MM-DD/``), its key,
columns, Polars types and what each column means; every label a reader sees (the three lists, changes, link
methods, sources); and one reader that takes a run of any age.

Everything that writes or reads a published run imports from here: the rules stage (``rules/decisions.py``,
``rules/evaluate.py``), linkage and ingest (their published tables), ``state``, ``coverage``, ``worklists``,
``explain``/``household``, the CLI and the service. ``tests/test_contract.py`` fails when a published schema or
one of these labels is declared anywhere else in the package.

Compatibility: a published file only gains columns, appended at its end; no column is renamed or retyped.
``PublishedRun.read`` gives a file of an older run every column of today's contract: a column the run predates is
derived where an older column says the same (``subject_id`` of an exit list is its ``dibao_household_id``), else
null. A file the run predates entirely (``coverage.parquet`` before coverage existed) is an empty frame.

``figures`` (lists and decisions) and ``parameters`` (decisions) are JSON objects stored as UTF-8 text, which
DuckDB reads as JSON directly::

    SELECT dibao_household_id, figures->'$.income_above_standard'->>'$.per_capita_income' AS income
    FROM 'runs/2026-11-20/exit_candidates.parquet' WHERE json_valid(figures);

On a list, ``figures`` is ``{reason code: {figure: value, …}, …}`` (a flag: the one reason's ``{figure: value}``);
on a decision, ``{figure: value}`` and ``parameters`` ``{name: {"value", "from", "unit"}}``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import polars as pl

from dibao.schema import FILE_SPECS

# --- labels ----------------------------------------------------------------------------------------------------

ListName = Literal["exit", "inclusion", "flag"]
LISTS: tuple[ListName, ...] = get_args(ListName)
LIST_LABELS: dict[str, str] = {"exit": "应退尽退", "inclusion": "应保尽保", "flag": "其他核查"}
# A rule's outcome names the list it puts a household on: the same codes, the same labels.
OUTCOME_LABELS = LIST_LABELS

Change = Literal["added", "resolved", "changed"]
CHANGES: tuple[Change, ...] = get_args(Change)
CHANGE_LABELS: dict[str, str] = {"added": "新增", "resolved": "已解决", "changed": "有变化"}

# person_links.method: how a record got its person_key (README "Linkage").
LinkMethod = Literal["exact", "upgraded_15", "repaired_id", "name_match", "internal"]
LINK_METHODS: tuple[LinkMethod, ...] = get_args(LinkMethod)
METHOD_LABELS: dict[str, str] = {"exact": "证件号一致", "upgraded_15": "15位升18位", "repaired_id": "证件号纠错",
                                 "name_match": "户内姓名匹配", "internal": "未关联"}
# Records linked through their ID number (as opposed to a name match or an internal key).
ID_METHODS: tuple[LinkMethod, ...] = ("exact", "upgraded_15", "repaired_id")

# ``source`` columns hold the drop's file stems; their titles are the input contract's (dibao/schema.py).
SOURCE_TITLES: dict[str, str] = {stem: spec.label for stem, spec in FILE_SPECS.items()}
# The household a list item stands for, by its source, as a work list prints it (来源).
HOUSEHOLD_SOURCE_LABELS: dict[str, str] = {"dibao_roll": "低保户", "registry": "脱贫户", "monitoring": "监测户"}
# A flag's subject_type (对象类型).
FLAG_SUBJECT_LABELS: dict[str, str] = {"household": "家庭", "person": "个人"}
# A household_facts / decisions row's subject_type: a household on the roll, or a registry/monitoring family.
HOUSEHOLD_KIND_LABELS: dict[str, str] = {"roll": "低保/特困在保家庭", "household": "脱贫/监测家庭"}

# coverage.parquet: measure → label (numerator / denominator in dibao/publish/coverage.py).
CoverageLevel = Literal["county", "city", "province"]
COVERAGE_LEVELS: tuple[CoverageLevel, ...] = get_args(CoverageLevel)
COVERAGE_MEASURES: dict[str, str] = {
    "rural_dibao_coverage": "农村低保覆盖率",
    "escaped_poverty_covered_share": "脱贫人口纳入低保或特困比例",
    "monitored_covered_share": "监测对象纳入低保或特困比例",
    "edge_covered_share": "边缘易致贫人口纳入低保或特困比例",
    "exit_candidates_per_10k": "每万保障人口应退尽退户数",  # numerator: households; denominator: covered persons
    "inclusion_candidates_per_10k": "每万保障人口应保尽保户数",
}

# --- published files -------------------------------------------------------------------------------------------

Fill = Callable[[dt.date | None], pl.Expr]


@dataclass(frozen=True)
class Column:
    """One published column: name, Polars type, meaning, and how a run published before it existed gets it."""

    name: str
    dtype: pl.DataType
    meaning: str
    fill: Fill | None = None  # from other columns of an older file (given the run date); None: null
    added_at_publish: bool = False  # added by the publish stage (dibao.publish.state), not by the rules stage


@dataclass(frozen=True, eq=False)  # one object per file: compared and hashed by identity
class PublishedFile:
    """One Parquet file of a published run."""

    name: str  # the file is ``{name}.parquet``
    title: str
    description: str
    key: tuple[str, ...]  # the columns that identify a row (unique within a run)
    columns: tuple[Column, ...]
    more_columns: str | None = None  # files whose further columns come from configuration (facts, parameters)

    @property
    def filename(self) -> str:
        return f"{self.name}.parquet"

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Every declared column, in published order."""
        return {c.name: c.dtype for c in self.columns}

    @property
    def rules_schema(self) -> dict[str, pl.DataType]:
        """The columns the rules stage produces (the publish stage adds the rest)."""
        return {c.name: c.dtype for c in self.columns if not c.added_at_publish}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.filename} has no column {name!r}")


S, D, F = pl.String(), pl.Date(), pl.Float64()
TEXTS = pl.List(pl.String())


def _copy(name: str) -> Fill:
    return lambda _date: pl.col(name)


def _run_date(date: dt.date | None) -> pl.Expr:
    return pl.lit(date, dtype=pl.Date)


_JSON = "JSON text (see the module docstring)"
_PLACE = (
    Column("town", S, "乡镇 township"),
    Column("village", S, "行政村 village"),
    Column("head_name", S, "户主姓名 household head's name"),
    Column("head_id", S, "户主证件号码 household head's ID number"),
)
_FIGURES = Column("figures", S, f"the figures each reason read, {{reason: {{figure: value}}}}: {_JSON}")
_REASONS = (
    Column("reasons", TEXTS, "原因代码 reason codes (rule ids of dibao/policy/eligibility.yaml), in rule order"),
    Column("reason_labels", TEXTS, "原因 the reasons' Chinese labels, in the same order"),
)
_COUNTY_NAME = Column("county_name", S, "县名 county name (the drop's counties file); null for a code it lacks",
                      added_at_publish=True)

EXIT_CANDIDATES = PublishedFile(
    "exit_candidates", "应退尽退", "Roll households that look no longer eligible, one row each.",
    ("dibao_household_id",),
    (
        Column("dibao_household_id", S, "低保家庭编号 the roll household"),
        Column("county_code", S, "县级区划代码 county code"),
        *_PLACE, *_REASONS, _FIGURES,
        Column("detail", S, "核查依据 one line per reason with its figures"),
        Column("first_seen", D, "首次发现日期 first run this household was on the list (carried run to run)"),
        Column("grace_start", D, "渐退期起始 first day its income was seen above the standard; null otherwise"),
        Column("grace_until", D, "渐退期至 last day of the 渐退 grace period, while income is the only reason"),
        Column("subject_id", S, "对象编号 the same household number: the one ID column all three lists share",
               fill=_copy("dibao_household_id"), added_at_publish=True),
        _COUNTY_NAME,
    ),
)
INCLUSION_CANDIDATES = PublishedFile(
    "inclusion_candidates", "应保尽保",
    "Registry and monitoring families that look eligible but are not on the roll, one row each.",
    ("household_id", "source"),
    (
        Column("household_id", S, "户编号 the family's number in its source"),
        Column("source", S, "数据来源 registry (脱贫户) or monitoring (监测户)"),
        Column("county_code", S, "县级区划代码 county code"),
        *_PLACE, *_REASONS, _FIGURES,
        Column("detail", S, "核查依据 one line per reason with its figures"),
        Column("first_seen", D, "首次发现日期 first run this family was on the list"),
        Column("subject_id", S, "对象编号 the same household number: the one ID column all three lists share",
               fill=_copy("household_id"), added_at_publish=True),
        _COUNTY_NAME,
    ),
)
FLAGS = PublishedFile(
    "flags", "其他核查", "Findings to check by hand, one row per (subject, finding).",
    ("subject_type", "subject_id", "source", "code"),
    (
        Column("subject_type", S, "对象类型 household (家庭) or person (个人)"),
        Column("subject_id", S, "对象编号 household number (a person: the ID number)"),
        Column("source", S, "数据来源 the subject's source file"),
        Column("county_code", S, "县级区划代码 county code"),
        *_PLACE,
        Column("code", S, "核查事项代码 the finding's rule id"),
        Column("label", S, "核查事项 the finding's Chinese label"),
        Column("detail", S, "核查依据 the finding with its figures"),
        Column("figures", S, f"the figures the finding read, {{figure: value}}: {_JSON}"),
        Column("first_seen", D, "首次发现日期 first run this finding was listed"),
        _COUNTY_NAME,
        Column("due_date", D, "办理期限 when the finding falls due (a death's re-check, a review, an 18th "
               "birthday; the rule's ``due``); null for findings without one"),
    ),
)
DIFF = PublishedFile(
    "diff", "今日变化", "What changed on each list since the previous published run.",
    ("list", "subject_id", "code", "change"),
    (
        Column("list", S, "清单 exit, inclusion or flag"),
        Column("subject_id", S, "编号 the list item's household number (a person flag: the ID number)"),
        Column("county_code", S, "县级区划代码 county code"),
        Column("town", S, "乡镇 township"),
        Column("code", S, "核查事项代码 a flag's code (null for the other lists)"),
        Column("change", S, "变化 added (新增), resolved (已解决) or changed (有变化)"),
        Column("detail", S, "说明 the reasons before and after"),
        Column("date", D, "变化日期 the run date"),
    ),
)
COVERAGE = PublishedFile(
    "coverage", "覆盖率", "Coverage rates per county, city and province.",
    ("level", "area_code", "measure"),
    (
        Column("level", S, "层级 county, city or province"),
        Column("area_code", S, "区划代码 area code"),
        Column("area_name", S, "区划名称 area name"),
        Column("measure", S, "指标 measure code"),
        Column("label", S, "指标名称 the measure's Chinese label"),
        Column("numerator", F, "分子 numerator"),
        Column("denominator", F, "分母 denominator"),
        Column("rate", F, "比率 numerator / denominator (× 10,000 for the per_10k measures)"),
        Column("reference_rate", F, "参考值 national reference (dibao/policy/coverage.yaml)"),
        Column("run_date", D, "运行日期 the run date", fill=_run_date),
    ),
)
DECISIONS = PublishedFile(
    "decisions", "判定", "One row per (household, fired rule), with its trace.",
    ("subject_type", "subject_id", "source", "rule_id"),
    (
        Column("subject_type", S, "对象类型 roll (低保/特困在保家庭) or household (脱贫/监测家庭)"),
        Column("subject_id", S, "家庭编号 household number in its source"),
        Column("source", S, "数据来源 dibao_roll, registry or monitoring"),
        Column("county_code", S, "县级区划代码 county code"),
        Column("rule_id", S, "规则代码 rule id"),
        Column("outcome", S, "结果 exit, inclusion or flag (the list it puts the household on)"),
        Column("label", S, "规则名称 the rule's Chinese label"),
        Column("reference", S, "政策依据 policy reference"),
        Column("figures", S, f"the figures the rule read, {{figure: value}}: {_JSON}"),
        Column("parameters", S, f"parameters in force, {{name: {{value, from, unit}}}}: {_JSON}"),
        Column("detail", S, "说明 one-line Chinese explanation with the figures"),
        Column("due_date", D, "办理期限 when the finding falls due (the rule's ``due`` fact); null otherwise"),
    ),
)
HOUSEHOLD_FACTS = PublishedFile(
    "household_facts", "家庭事实", "The facts every rule read: one row per roll household and per registry or "
    "monitoring family.",
    ("subject_type", "subject_id", "source"),
    (
        Column("subject_type", S, "对象类型 roll or household"),
        Column("subject_id", S, "家庭编号 household number in its source"),
        Column("source", S, "数据来源 dibao_roll, registry or monitoring"),
        Column("county_code", S, "县级区划代码 county code"),
        Column("household_key", S, "``source:number``, as person_links.household"),
    ),
    more_columns="one column per household fact of the catalogue (dibao/rules/catalog.py)",
)
PARAMETERS_IN_FORCE = PublishedFile(
    "parameters_in_force", "适用参数", "Every parameter's value and start date per county and area on the run "
    "date.",
    ("county_code", "area"),
    (
        Column("county_code", S, "县级区划代码 county code"),
        Column("area", S, "城乡类别 城市 or 农村"),
    ),
    more_columns="per parameter of dibao/policy/parameters.yaml: ``NAME`` (value), ``NAME__from`` (in force since) "
                 "and, for a carry_forward parameter, ``NAME__carried`` (its last value has expired and is used on)",
)
PERSON_LINKS = PublishedFile(
    "person_links", "人员关联", "One row per input record of every person-level file: who it is.",
    ("source", "row"),
    (
        Column("source", S, "数据来源 the input file stem"),
        Column("row", pl.UInt32(), "行号 1-based data row in that file"),
        Column("person_key", S, "人员标识 canonical 18-digit ID, or an internal key (H:… in one family, R:… alone)"),
        Column("method", S, "关联方式 exact, upgraded_15, repaired_id, name_match or internal"),
        Column("score", F, "关联得分 link score, 0–1"),
        Column("evidence", TEXTS, "关联依据 the evidence the link rests on"),
        Column("id_status", S, "证件号状态 the record's ID status (dibao/normalise/ids.py IdStatus)"),
        Column("household", S, "``source:number`` of the record's household (null: bank, department rows)"),
        Column("household_group", S, "跨系统家庭 the cross-walk group of that household"),
        Column("name", S, "姓名 the name as written"),
    ),
)
LINK_REVIEW = PublishedFile(
    "link_review", "待人工关联", "Records that need a person: ambiguous cases, never guessed.",
    ("source", "row", "reason"),
    (
        Column("source", S, "数据来源 the input file stem"),
        Column("row", pl.UInt32(), "行号 1-based data row"),
        Column("reason", S, "原因 why no link was made"),
        Column("candidates", TEXTS, "候选人员 the person keys it could be"),
        Column("scores", pl.List(pl.Float64()), "候选得分 their scores"),
    ),
)
HOUSEHOLD_LINKS = PublishedFile(
    "household_links", "家庭关联", "The household cross-walk: per household of each source, its group.",
    ("source", "household_id"),
    (
        Column("household_group", S, "跨系统家庭 cross-walk group"),
        Column("source", S, "数据来源 dibao_roll, registry or monitoring"),
        Column("household_id", S, "家庭编号 household number in that source"),
        Column("member_records", pl.UInt32(), "成员记录数 member records"),
        Column("linked_by_id", pl.UInt32(), "按证件号关联数 records linked through their ID number"),
        Column("persons", pl.UInt32(), "人数 distinct persons"),
    ),
)
REJECTED = PublishedFile(
    "rejected", "拒收与置空", "Every input line not used, and every field cleared, with the reason.",
    ("source", "row", "field", "reason_code"),
    (
        Column("source", S, "数据来源 the input file stem"),
        Column("row", pl.UInt32(), "行号 1-based data row"),
        Column("field", S, "字段 canonical field (null for a whole-line reason)"),
        Column("header", S, "表头 the header as written"),
        Column("value", S, "原值 the value as written"),
        Column("reason_code", S, "原因代码 reason code"),
        Column("reason", S, "原因 the reason in Chinese and English"),
        Column("action", S, "处理 row_rejected (整行剔除) or field_cleared (字段置空)"),
    ),
)
INPUT_NOTES = PublishedFile(
    "input_notes", "输入不一致", "What the input said inconsistently, with every value and the one chosen.",
    ("source", "code", "household", "field"),
    (
        Column("source", S, "数据来源 the input file stem"),
        Column("code", S, "类型 household_value_conflict, multiple_heads, …"),
        Column("household", S, "家庭编号 the household"),
        Column("field", S, "字段 the field"),
        Column("rows", pl.List(pl.UInt32()), "行号 the rows involved"),
        Column("values", TEXTS, "取值 every value written"),
        Column("chosen", S, "采用值 the value used"),
        Column("detail", S, "说明 why that one"),
    ),
)

# In the order the daily run writes them.
PUBLISHED: dict[str, PublishedFile] = {f.name: f for f in (
    EXIT_CANDIDATES, INCLUSION_CANDIDATES, FLAGS, DIFF, COVERAGE, DECISIONS, HOUSEHOLD_FACTS, PARAMETERS_IN_FORCE,
    PERSON_LINKS, LINK_REVIEW, HOUSEHOLD_LINKS, REJECTED, INPUT_NOTES)}
MANIFEST_FILE = "manifest.json"  # inputs, skipped checks, guards, counts, rule versions, timings, content hash
WORKLISTS_DIR = "worklists"  # the printable workbooks (dibao/publish/worklists.py)

LIST_FILES: dict[str, PublishedFile] = {"exit": EXIT_CANDIDATES, "inclusion": INCLUSION_CANDIDATES, "flag": FLAGS}
# The household-number column each list had before ``subject_id`` was added to all three.
LIST_HOUSEHOLD_COLUMN: dict[str, str] = {"exit": "dibao_household_id", "inclusion": "household_id",
                                         "flag": "subject_id"}

# The schemas by the names the stages use.
EXIT_SCHEMA = EXIT_CANDIDATES.rules_schema
INCLUSION_SCHEMA = INCLUSION_CANDIDATES.rules_schema
FLAG_SCHEMA = FLAGS.rules_schema
DIFF_SCHEMA = DIFF.schema
COVERAGE_SCHEMA = COVERAGE.schema
DECISION_SCHEMA = DECISIONS.schema
LINK_SCHEMA = PERSON_LINKS.schema
REVIEW_SCHEMA = LINK_REVIEW.schema
CROSSWALK_SCHEMA = HOUSEHOLD_LINKS.schema
REJECTED_SCHEMA = REJECTED.schema
NOTES_SCHEMA = INPUT_NOTES.schema
PLACE_COLUMNS: tuple[str, ...] = tuple(c.name for c in _PLACE)


# --- reading a published run -----------------------------------------------------------------------------------


def _as_file(file: PublishedFile | str) -> PublishedFile:
    return file if isinstance(file, PublishedFile) else PUBLISHED[file]


@dataclass(frozen=True)
class PublishedRun:
    """One published run folder, read through the contract whatever its age."""

    folder: Path

    @property
    def date(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.folder.name)
        except ValueError:
            return None

    def path(self, file: PublishedFile | str) -> Path:
        return self.folder / _as_file(file).filename

    def has(self, file: PublishedFile | str) -> bool:
        return self.path(file).is_file()

    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        return result

    def _plan(self, spec: PublishedFile, present: dict[str, pl.DataType],
              columns: Sequence[str] | None) -> tuple[list[str], list[pl.Expr], list[str]]:
        """(the columns to read from the file, expressions adding or retyping columns, the columns returned)."""
        declared = spec.schema
        wanted = list(columns) if columns is not None else [*declared, *(c for c in present if c not in declared)]
        read: dict[str, None] = {}
        exprs: list[pl.Expr] = []
        names: list[str] = []
        for name in wanted:
            dtype = declared.get(name)
            if name in present:
                read[name] = None
                if dtype is not None and present[name] != dtype:
                    exprs.append(pl.col(name).cast(dtype))
            elif dtype is not None:  # a column this run predates
                fill = spec.column(name).fill
                expr = fill(self.date) if fill is not None else None
                inputs = set(expr.meta.root_names()) if expr is not None else set()
                if expr is None or not inputs <= present.keys():
                    expr = pl.lit(None, dtype=dtype)
                read.update(dict.fromkeys(sorted(inputs)))
                exprs.append(expr.cast(dtype).alias(name))
            else:  # neither in the file nor in the contract (a configured column this run lacks)
                continue
            names.append(name)
        if not read and present:  # only filled columns: one column read gives the number of rows
            read[next(iter(present))] = None
        return list(read), exprs, names

    def read(self, file: PublishedFile | str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The file with every column of the contract (or just ``columns``), in contract order, then any further
        columns it has; an older file gets newer columns filled; a missing file is an empty frame."""
        spec = _as_file(file)
        path = self.path(spec)
        if not path.is_file():
            wanted = list(columns) if columns is not None else list(spec.schema)
            return pl.DataFrame(schema={c: spec.schema[c] for c in wanted if c in spec.schema})
        read, exprs, names = self._plan(spec, dict(pl.read_parquet_schema(path)), columns)
        frame = pl.read_parquet(path, columns=read)
        return frame.with_columns(exprs).select(names) if exprs or names != read else frame

    def scan(self, file: PublishedFile | str, columns: Sequence[str] | None = None) -> pl.LazyFrame:
        """``read`` as a LazyFrame (filters are pushed down to the Parquet reader)."""
        spec = _as_file(file)
        path = self.path(spec)
        if not path.is_file():
            return self.read(spec, columns).lazy()
        _, exprs, names = self._plan(spec, dict(pl.read_parquet_schema(path)), columns)
        return pl.scan_parquet(path).with_columns(exprs).select(names)


def read_published(folder: Path, file: PublishedFile | str, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """``PublishedRun(folder).read(file, columns)``."""
    return PublishedRun(folder).read(file, columns)
