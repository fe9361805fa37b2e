"""Person linkage: one ``person_key`` per input record, across registry, monitoring, roll, bank and departments.

Stages, each vectorised (Polars joins, rapidfuzz ``cpdist`` on candidate pairs; no Python loop over records):

1. ``exact`` / ``upgraded_15`` — a usable ID is the key. Two different valid IDs are never merged.
2. ``repaired_id`` — a mistyped ID (bad check digit or impossible date) is linked to a known ID one edit away, only
   when the names agree (characters or pinyin), the county agrees, and exactly one candidate passes.
3. ``name_match`` — a record without a usable ID (infants, blanks, unrepairable) is matched by name, birth date
   and sex against the persons of its own cross-walked household, only when one candidate is clearly best and no
   other record of the same household claims it.
4. ``internal`` — anything else gets an internal key; ambiguous cases go to the review list, never guessed.

The invariant: evidence (a death, a balance, a vehicle) reaches a person only through a stated piece of evidence,
and ``evidence`` names it. No join, window or group is keyed on a null or blank value: Polars' ``over`` and
``group_by`` put all nulls in one group, which would make strangers one person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from dibao.link.households import group_roots, household_numbers
from dibao.link.records import KEY_TEXT, blank_is_null
from dibao.link.repair import repair_codes
from dibao.normalise.ids import ID_SHAPE, USABLE_STATUSES, IdStatus, id_codes, id_text
from dibao.publish.contract import LINK_SCHEMA, REVIEW_SCHEMA


@dataclass(frozen=True)
class LinkSettings:
    """Thresholds of the linkage; similarities are 0–1 (rapidfuzz ratio / 100)."""

    repair_name_min: float = 0.66  # a repaired ID's name must be at least this similar (李小明/李明 = 0.8)
    household_name_min: float = 0.8  # a no-ID record's best in-household candidate must reach this
    household_margin: float = 0.1  # …and beat the second best by this much
    pinyin_weight: float = 0.95  # a pinyin-only agreement (homophone) counts slightly less than the characters
    mismatch_review_below: float = 0.5  # an exact ID link whose name is this dissimilar is sent to review


@dataclass
class LinkResult:
    """``links``: one row per input record (the contract's person_links); ``review``: cases for a person."""

    links: pl.DataFrame
    review: pl.DataFrame
    households: pl.DataFrame  # household cross-walk: household → household_group


def name_similarity(a_norm: pl.Series, b_norm: pl.Series, a_pinyin: pl.Series, b_pinyin: pl.Series,
                    pinyin_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise name similarity (0–1) and whether the characters (not just the sound) carried it."""
    chars = process.cpdist(a_norm.fill_null("").to_list(), b_norm.fill_null("").to_list(),
                           scorer=fuzz.ratio, workers=-1).astype(np.float64) / 100.0
    sound = process.cpdist(a_pinyin.fill_null("").to_list(), b_pinyin.fill_null("").to_list(),
                           scorer=fuzz.ratio, workers=-1).astype(np.float64) / 100.0 * pinyin_weight
    return np.maximum(chars, sound), chars >= sound


# The profiles are grouped in this many parts by a hash of the person key: every person's rows fall in one part,
# so the result is the same, and each group-by holds a part's keys at a time. In one piece, grouping the 10 million
# exactly linked records of a province by their text keys took +3 GiB over the records themselves.
PROFILE_PARTS = 8


def person_profiles(exact: pl.DataFrame, parts: int = PROFILE_PARTS) -> pl.DataFrame:
    """Per known ID (``person``): its usual name, pinyin, counties, birth date and sex (from the exactly linked
    records).

    The usual name is the most frequent one (ties: the first in sort order), found by counting, not per-group mode.
    """
    part = exact.select(pl.col("person").hash(seed=0) % parts).to_series()
    return pl.concat([_profiles_of(exact.filter(part == index)) for index in range(parts)])


def _profiles_of(exact: pl.DataFrame) -> pl.DataFrame:
    usual_name = (
        exact.drop_nulls("name_norm").group_by("person", "name_norm", "name_pinyin").len()
        .sort(["person", "len", "name_norm"], descending=[False, True, False])
        .unique("person", keep="first", maintain_order=True)
        .select("person", pl.col("name_norm").alias("p_name"), pl.col("name_pinyin").alias("p_pinyin"))
    )
    rest = exact.group_by("person").agg(
        pl.col("county_code").drop_nulls().unique().alias("p_counties"),
        pl.col("id_birth_date").first().alias("p_birth"),
        pl.col("id_sex").first().alias("p_sex"),
    )
    return rest.join(usual_name, on="person", how="left")


def _with_similarity(pairs: pl.DataFrame, settings: LinkSettings) -> pl.DataFrame:
    """Add ``sim``, ``by_chars`` and ``named``; identical names score 1 without calling rapidfuzz (most pairs).

    A pair where either side has no name scores 0 (``named`` false): two missing names are no evidence, although
    rapidfuzz rates two empty strings 100.
    """
    named = pairs.select(pl.col("name_norm").is_not_null() & pl.col("p_name").is_not_null()).to_series()
    same = named & pairs.select(pl.col("name_norm") == pl.col("p_name")).to_series().fill_null(False)
    differ = (named & ~same).arg_true()
    sim = same.cast(pl.Float64)
    by_chars = same.clone()
    if differ.len():
        sub = pairs[differ]
        s, c = name_similarity(sub["name_norm"], sub["p_name"], sub["name_pinyin"], sub["p_pinyin"],
                               settings.pinyin_weight)
        sim = sim.scatter(differ, pl.Series(s))
        by_chars = by_chars.scatter(differ, pl.Series(c))
    return pairs.with_columns(sim.alias("sim"), by_chars.alias("by_chars"), named.alias("named"))


def _name_evidence() -> pl.Expr:
    """Which part of the name agreed: the characters, or only their sound (a homophone typed by an IME)."""
    return pl.when(pl.col("by_chars")).then(pl.lit("name")).otherwise(pl.lit("name_pinyin"))


# An exact link's evidence: the ID, and what the name says (numbered as in ``_stage_exact``).
_EXACT_EVIDENCE = pl.Series([["id", "no_name"], ["id", "name"], ["id", "name_pinyin"], ["id", "name_differs"]],
                            dtype=pl.List(pl.String))


def _stage_exact(recs: pl.DataFrame, settings: LinkSettings) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    # The columns read here only, not the records whole: at a province's 10 million exact links a copy of every
    # column was the stage's largest frame.
    exact = recs.lazy().filter(pl.col("person").is_not_null())
    profiles = person_profiles(exact.select("person", "name_norm", "name_pinyin", "county_code",
                                            "id_birth_date", "id_sex").collect())
    # Only the columns the check reads, filtered again rather than kept from the profiles' frame (1.2 GiB at a
    # province's 10 million exact links): the full records joined to the full profiles would be the stage's
    # largest frame.
    checked = _with_similarity(
        exact.select("rid", "person", "id_status", "name_norm", "name_pinyin").collect()
        .join(profiles.select("person", "p_name", "p_pinyin"), on="person"), settings)
    # The evidence is one of four lists, gathered by number: built with concat_list, 11 million lists of a
    # province took 6 s; gathered, 0.3 s.
    evidence = pl.when(~pl.col("named")).then(0).when(pl.col("sim") >= settings.household_name_min).then(
        pl.when(pl.col("by_chars")).then(1).otherwise(2)).otherwise(3)
    links = checked.select(
        "rid", "person",
        pl.when(pl.col("id_status") == IdStatus.UPGRADED.value).then(pl.lit("upgraded_15"))
        .otherwise(pl.lit("exact")).alias("method"),
        pl.lit(1.0).alias("score"),
        _EXACT_EVIDENCE.gather(checked.select(evidence.cast(pl.UInt32)).to_series()).alias("evidence"),
    )
    # A missing name (bank and department files may omit it) is not a mismatch: nothing to review.
    review = checked.filter(pl.col("named") & (pl.col("sim") < settings.mismatch_review_below)).select(
        "rid", pl.lit("id_name_mismatch").alias("reason"),
        pl.concat_list(id_text(pl.col("person"))).alias("candidates"),
        pl.concat_list("sim").alias("scores"),
    )
    return links, review, profiles


def _county_agrees() -> pl.Expr:
    return (
        pl.col("county_code").is_null() | (pl.col("p_counties").list.len() == 0)
        | pl.col("p_counties").list.contains(pl.col("county_code"))
    )


def _stage_repair(recs: pl.DataFrame, profiles: pl.DataFrame, settings: LinkSettings
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    repairable = [IdStatus.BAD_CHECK_DIGIT.value, IdStatus.BAD_DATE.value]
    bad = recs.filter(pl.col("id_status").is_in(repairable) & pl.col("id_norm").str.contains(ID_SHAPE))
    candidates = repair_codes(bad.select("rid", id_codes(pl.col("id_norm")).alias("code")), profiles["person"])
    pairs = (
        candidates.join(bad.select("rid", "name_norm", "name_pinyin", "county_code"), on="rid")
        .join(profiles, left_on="candidate", right_on="person")
    )
    pairs = _with_similarity(pairs, settings).with_columns(
        (pl.col("named") & (pl.col("sim") >= settings.repair_name_min) & _county_agrees()).alias("passes")
    )
    passing = pairs.filter("passes").with_columns(pl.len().over("rid").alias("n_pass"))
    links = passing.filter(pl.col("n_pass") == 1).select(
        "rid", pl.col("candidate").alias("person"), pl.lit("repaired_id").alias("method"),
        pl.col("sim").alias("score"),
        pl.concat_list(pl.lit("id_one_edit:") + pl.col("edit"), _name_evidence(),
                       pl.when(pl.col("county_code").is_not_null()).then(pl.lit("county"))).list.drop_nulls()
        .alias("evidence"),
    )
    review = passing.filter(pl.col("n_pass") > 1).group_by("rid").agg(
        pl.lit("ambiguous_id_repair").alias("reason"), id_text(pl.col("candidate")).alias("candidates"),
        pl.col("sim").alias("scores"),
    )
    return links, review


def _stage_household(recs: pl.DataFrame, linked: pl.DataFrame, profiles: pl.DataFrame, group_of: pl.Series,
                     settings: LinkSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Match records without a usable ID to the persons of their own cross-walked household.

    A person already listed (by ID) in the record's own source household is no candidate: that is another member.
    """
    keyed = _with_person_and_group(
        recs.select("rid", "hid", "name_norm", "name_pinyin", "id_birth_date", "id_sex"), linked, group_of)
    pending = keyed.filter(pl.col("person").is_null() & pl.col("hid").is_not_null()).drop("person")
    # Only the groups with a record to match are read (a few per cent of a province's households).
    members = (
        keyed.filter(pl.col("person").is_not_null() & pl.col("ghid").is_in(pending["ghid"].unique().implode()))
        .select("ghid", "hid", "person").unique()
    )
    del keyed
    # Persons of the group, less those already linked from the record's own household (its other members).
    pairs = (
        pending.join(members.select("ghid", "person").unique(), on="ghid")
        .join(members.select("hid", "person"), on=["hid", "person"], how="anti")
        .join(profiles.select("person", "p_name", "p_pinyin", "p_birth", "p_sex"), on="person")
    )
    pairs = _with_similarity(pairs, settings).with_columns(
        (pl.col("sim")
         + pl.when(pl.col("id_birth_date").is_null() | pl.col("p_birth").is_null()).then(0.0)
         .when(pl.col("id_birth_date") == pl.col("p_birth")).then(0.05).otherwise(-0.3)
         + pl.when(pl.col("id_sex").is_null() | pl.col("p_sex").is_null()).then(0.0)
         .when(pl.col("id_sex") == pl.col("p_sex")).then(0.0).otherwise(-0.3)).clip(0.0, 1.0).alias("match")
    ).sort(["rid", "match", "person"], descending=[False, True, False])  # codes sort as the IDs do
    ranked = pairs.with_columns(
        pl.col("match").shift(-1).over("rid").alias("second"), pl.int_range(pl.len()).over("rid").alias("rank")
    ).filter(pl.col("rank") == 0)
    clear = pl.col("named") & (pl.col("match") >= settings.household_name_min) & (
        pl.col("second").is_null() | (pl.col("match") - pl.col("second") >= settings.household_margin))
    # One listed person is one person: when two records of the same source household both pick the same
    # candidate (two children, one of them not in the other system), neither is linked; both go to review.
    claims = pl.len().over("hid", "person")
    decided = ranked.filter(clear).with_columns(claims.alias("claims"))
    links = decided.filter(pl.col("claims") == 1).select(
        "rid", "person", pl.lit("name_match").alias("method"), pl.col("match").alias("score"),
        pl.concat_list(pl.lit("household"), _name_evidence(),
                       pl.when(pl.col("id_birth_date") == pl.col("p_birth")).then(pl.lit("birth_date")))
        .list.drop_nulls().alias("evidence"),
    )
    contested = pl.concat([
        ranked.filter(~clear & pl.col("named") & (pl.col("match") >= settings.household_name_min)).select("rid"),
        decided.filter(pl.col("claims") > 1).select("rid"),
    ])
    review = (
        pairs.join(contested, on="rid").filter(pl.col("named") & (pl.col("match") >= settings.household_name_min))
        .group_by("rid").agg(pl.lit("ambiguous_name_match").alias("reason"),
                             id_text(pl.col("person")).alias("candidates"), pl.col("match").alias("scores"))
    )
    return links, review


def _with_person_and_group(recs: pl.DataFrame, linked: pl.DataFrame, group_of: pl.Series) -> pl.DataFrame:
    """``recs`` with each record's linked ``person`` (null: not linked) and its household's group ``ghid``, set
    by record number rather than joined (records are numbered by ``rid`` in order, households by ``hid``)."""
    person = pl.repeat(None, recs.height, dtype=pl.Int64, eager=True).scatter(linked["rid"], linked["person"])
    return recs.with_columns(person.alias("person"), group_of.gather(recs["hid"]).alias("ghid"))


def _identifying_names(keyed: pl.DataFrame, wanted: pl.Series) -> pl.DataFrame:
    """(group ``ghid``, name_norm) pairs where the name stands for one person in the whole cross-walked family,
    for the ``wanted`` groups (those of the records still without a key: the only ones asked about).

    A name does not, when any source household of the group lists two persons by it: two linked IDs (twins), a
    linked ID and an unlinked record (father and son both 张伟), or two unlinked records.
    """
    return (
        keyed.filter(pl.col("ghid").is_in(wanted.implode())).drop_nulls("name_norm")
        # Persons: the distinct linked keys, plus each unlinked record on its own (no string is built per record).
        .group_by("hid", "name_norm").agg(
            pl.col("ghid").first(),
            (pl.col("person").drop_nulls().n_unique() + pl.col("person").null_count()).alias("persons"))
        .group_by("ghid", "name_norm").agg(pl.col("persons").max())
        .filter(pl.col("persons") == 1).select("ghid", "name_norm", pl.lit(True).alias("__one"))
    )


def _internal_keys(recs: pl.DataFrame, linked: pl.DataFrame, group_of: pl.Series, households: pl.Series
                   ) -> pl.DataFrame:
    """Keys for records nobody could link; a key is shared only through a stated piece of evidence.

    - ``H:group:name`` — same household group + same name, where the name is one person's in the whole group
      (``_identifying_names``): an infant without an ID is one person across files (evidence ``household``,
      ``name``).
    - Records whose IDs are damaged only in the check character and agree on the other 17 digits and the name's
      sound are one person (the 17 digits define the ID): they share the household key of any of them (evidence
      ``id_first17``, ``name_pinyin``), else ``D:first17:pinyin``.
    - Anything else — no household, an ID too broken to compare — gets ``R:source:row``, a key of its own.

    Every window and join below is taken only where its key is not null: Polars' ``over`` groups nulls together,
    which once gave every unusable bank or department ID the run's smallest household key (a stranger's death and
    balance landed on a living family).
    """
    keyed = _with_person_and_group(recs, linked, group_of)
    rest = keyed.filter(pl.col("person").is_null())
    rest = rest.join(_identifying_names(keyed, rest["ghid"].drop_nulls().unique()), on=["ghid", "name_norm"],
                     how="left")
    del keyed
    rest = rest.with_columns(households.gather(rest["ghid"]).alias("household_group"))
    group_key = pl.when(pl.col("__one").fill_null(False)).then(
        pl.lit("H:") + pl.col("household_group") + pl.lit(":") + pl.col("name_norm"))
    damaged = pl.when((pl.col("id_status") == IdStatus.BAD_CHECK_DIGIT.value) & pl.col("name_pinyin").is_not_null()
                      & pl.col("id_norm").str.contains(ID_SHAPE)
                      ).then(pl.col("id_norm").str.slice(0, 17) + pl.lit(":") + pl.col("name_pinyin"))
    row_key = pl.lit("R:") + pl.col("source") + pl.lit(":") + pl.col("row").cast(pl.String)
    keyed = rest.with_columns(group_key.alias("__h"), damaged.alias("__d"))
    keyed = keyed.with_columns(pl.when(pl.col("__d").is_not_null()).then(pl.col("__h").min().over("__d"))
                               .alias("__dh"))
    status = pl.lit("id_") + pl.col("id_status").fill_null("unknown")
    evidence = (
        pl.when(pl.col("__h").is_not_null()).then(pl.concat_list(status, pl.lit("household"), pl.lit("name")))
        .when(pl.col("__d").is_not_null()).then(pl.concat_list(status, pl.lit("id_first17"), pl.lit("name_pinyin")))
        .otherwise(pl.concat_list(status))
    )
    return keyed.select(
        "rid",
        pl.coalesce("__h", "__dh", pl.lit("D:") + pl.col("__d"), row_key).alias("person_key"),
        pl.lit("internal").alias("method"), pl.lit(0.0).alias("score"), evidence.alias("evidence"),
    )


def _blanks_as_null(records: pl.DataFrame) -> pl.DataFrame:
    """The records with blank key text as null; only the columns that hold a blank are rewritten (those of
    ``person_records`` hold none, and rewriting them all copied 1.6 GiB of text at province scale)."""
    blank = records.select(pl.col(c).str.len_chars().eq(0).any().alias(c) for c in KEY_TEXT).row(0, named=True)
    return records.with_columns(blank_is_null(c) for c in KEY_TEXT if blank[c])


def _best_first(review: pl.DataFrame) -> pl.DataFrame:
    """Each review case's candidates best first (score, then key): group-bys collect them in thread order, and
    the same inputs must publish the same bytes."""
    if review.is_empty():
        return review
    return (
        review.with_row_index("__case").explode(["candidates", "scores"])
        .sort(["__case", "scores", "candidates"], descending=[False, True, False], nulls_last=True)
        .group_by("__case", maintain_order=True)
        .agg(pl.exclude("candidates", "scores").first(), pl.col("candidates"), pl.col("scores"))
        .drop("__case")
    )


def _assemble(recs: pl.DataFrame, parts: list[pl.DataFrame], internal: pl.DataFrame, group_of: pl.Series,
              households: pl.Series) -> pl.DataFrame:
    """person_links in record order: each record's own columns beside its key, method, score and evidence, and
    its household's group. Every record has exactly one key (the stages partition the records), so the keys are
    put in record order and set beside the records, not joined to them: a join carried every column of the
    records through a hash join and a sort, the linkage's largest transient (≈ 4 GiB for a province).

    ``parts``: the stages' records linked to an ID (``person`` codes); the list is emptied once they are sorted,
    so that the caller holds no second copy of 11 million evidence lists. ``internal``: the rest, with text keys.
    An exactly linked record's key is its own ID, so only the others' keys are made: the codes of the repaired
    and name-matched records in text, and the internal keys."""
    linked = pl.concat(parts)
    parts.clear()
    keys = pl.concat([
        linked.filter(~pl.col("method").is_in(["exact", "upgraded_15"]))
        .select("rid", id_text(pl.col("person")).alias("person_key")),
        internal.select("rid", "person_key"),
    ])
    keyed = pl.concat([linked.drop("person"), internal.drop("person_key")]).sort("rid")
    del linked
    if keyed.height != recs.height or not keyed["rid"].equals(recs["rid"], check_names=False):
        raise AssertionError("linkage: not exactly one person key per record")  # the stages partition the records
    own = recs.rename({"name_norm": "name"})
    columns = {**{c: own[c] for c in LINK_SCHEMA if c in own.columns},
               **{c: keyed[c] for c in LINK_SCHEMA if c in keyed.columns and c != "rid"},
               "person_key": own["id_norm"].clone().scatter(keys["rid"], keys["person_key"]),
               "household_group": households.gather(group_of.gather(own["hid"]))}
    return pl.DataFrame([columns[c].alias(c) for c in LINK_SCHEMA]).cast(LINK_SCHEMA)  # type: ignore[arg-type]


def _numbered(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """The records with ``rid`` (their row), ``person`` (the code of a usable ID, ``id_codes``) and ``hid`` (the
    household's number in sort order), and the households in that order: every join, group and sort of the
    stages is on these integers, not on the text they stand for."""
    households, numbers = household_numbers(records["household"])
    usable = pl.col("id_status").is_in([s.value for s in USABLE_STATUSES])
    recs = records.with_row_index("rid").with_columns(
        pl.when(usable).then(id_codes(pl.col("id_norm"))).alias("person"), numbers.alias("hid"))
    if recs.select((usable & pl.col("person").is_null()).any()).item():
        raise AssertionError("linkage: a usable ID without 17 digits and a check character")
    return recs, households


def link_persons(records: pl.DataFrame, settings: LinkSettings | None = None) -> LinkResult:
    """Give every record a ``person_key`` with its method, score and evidence; list what needs a person."""
    settings = settings or LinkSettings()
    recs, households = _numbered(_blanks_as_null(records))
    exact, review_exact, profiles = _stage_exact(recs, settings)
    repaired, review_repair = _stage_repair(recs, profiles, settings)
    # Each frame is let go once the last stage reading it is done: at a province's 11 million records the
    # stages' results and the profiles held together were 1.5 GiB of the linkage's peak.
    linked = pl.concat([exact, repaired])
    del exact, repaired
    root = group_roots(households.len(), recs["hid"].gather(linked["rid"]), linked["person"])
    group_of = pl.Series("ghid", root, dtype=pl.UInt32)  # per household number, its group's number
    matched, review_household = _stage_household(recs, linked, profiles, group_of, settings)
    del profiles
    linked = pl.concat([linked, matched])
    del matched
    internal = _internal_keys(recs, linked, group_of, households)
    parts = [linked]
    del linked
    links = _assemble(recs, parts, internal, group_of, households)
    del internal
    review = (
        pl.concat([review_exact, review_repair, review_household], how="vertical_relaxed")
        .join(recs.select("rid", "source", "row"), on="rid")
        .pipe(_best_first)
        .sort("rid", "reason")
        .select(list(REVIEW_SCHEMA)).cast(REVIEW_SCHEMA)  # type: ignore[arg-type]
    )
    return LinkResult(links, review, pl.DataFrame([households, households.gather(root).alias("household_group")]))
