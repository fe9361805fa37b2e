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

from dibao.link.households import household_groups
from dibao.link.records import KEY_TEXT, blank_is_null
from dibao.link.repair import ID_SHAPE, repair_candidates
from dibao.normalise.ids import USABLE_STATUSES, IdStatus
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
    """Per known ID: its usual name, pinyin, counties, birth date and sex (from the exactly linked records).

    The usual name is the most frequent one (ties: the first in sort order), found by counting, not per-group mode.
    """
    part = exact.select(pl.col("person_key").hash(seed=0) % parts).to_series()
    return pl.concat([_profiles_of(exact.filter(part == index)) for index in range(parts)])


def _profiles_of(exact: pl.DataFrame) -> pl.DataFrame:
    usual_name = (
        exact.drop_nulls("name_norm").group_by("person_key", "name_norm", "name_pinyin").len()
        .sort(["person_key", "len", "name_norm"], descending=[False, True, False])
        .unique("person_key", keep="first", maintain_order=True)
        .select("person_key", pl.col("name_norm").alias("p_name"), pl.col("name_pinyin").alias("p_pinyin"))
    )
    rest = exact.group_by("person_key").agg(
        pl.col("county_code").drop_nulls().unique().alias("p_counties"),
        pl.col("id_birth_date").first().alias("p_birth"),
        pl.col("id_sex").first().alias("p_sex"),
    )
    return rest.join(usual_name, on="person_key", how="left")


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


def _stage_exact(recs: pl.DataFrame, settings: LinkSettings) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    usable = [s.value for s in USABLE_STATUSES]
    # The columns read here only, not the records whole: at a province's 10 million exact links a copy of every
    # column was the stage's largest frame.
    exact = recs.lazy().filter(pl.col("id_status").is_in(usable)).rename({"id_norm": "person_key"})
    profiles = person_profiles(exact.select("person_key", "name_norm", "name_pinyin", "county_code",
                                            "id_birth_date", "id_sex").collect())
    # Only the columns the check reads, filtered again rather than kept from the profiles' frame (1.2 GiB at a
    # province's 10 million exact links): the full records joined to the full profiles would be the stage's
    # largest frame.
    checked = _with_similarity(
        exact.select("rid", "person_key", "id_status", "name_norm", "name_pinyin").collect()
        .join(profiles.select("person_key", "p_name", "p_pinyin"), on="person_key"), settings)
    links = checked.select(
        "rid", "person_key",
        pl.when(pl.col("id_status") == IdStatus.UPGRADED.value).then(pl.lit("upgraded_15"))
        .otherwise(pl.lit("exact")).alias("method"),
        pl.lit(1.0).alias("score"),
        pl.concat_list(pl.lit("id"), pl.when(~pl.col("named")).then(pl.lit("no_name"))
                       .when(pl.col("sim") >= settings.household_name_min).then(_name_evidence())
                       .otherwise(pl.lit("name_differs"))).alias("evidence"),
    )
    # A missing name (bank and department files may omit it) is not a mismatch: nothing to review.
    review = checked.filter(pl.col("named") & (pl.col("sim") < settings.mismatch_review_below)).select(
        "rid", pl.lit("id_name_mismatch").alias("reason"), pl.concat_list("person_key").alias("candidates"),
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
    candidates = repair_candidates(bad.select("rid", pl.col("id_norm").alias("id_clean")), profiles["person_key"])
    pairs = (
        candidates.join(bad.select("rid", "name_norm", "name_pinyin", "county_code"), on="rid")
        .join(profiles, left_on="candidate", right_on="person_key")
    )
    pairs = _with_similarity(pairs, settings).with_columns(
        (pl.col("named") & (pl.col("sim") >= settings.repair_name_min) & _county_agrees()).alias("passes")
    )
    passing = pairs.filter("passes").with_columns(pl.len().over("rid").alias("n_pass"))
    links = passing.filter(pl.col("n_pass") == 1).select(
        "rid", pl.col("candidate").alias("person_key"), pl.lit("repaired_id").alias("method"),
        pl.col("sim").alias("score"),
        pl.concat_list(pl.lit("id_one_edit:") + pl.col("edit"), _name_evidence(),
                       pl.when(pl.col("county_code").is_not_null()).then(pl.lit("county"))).list.drop_nulls()
        .alias("evidence"),
    )
    review = passing.filter(pl.col("n_pass") > 1).group_by("rid").agg(
        pl.lit("ambiguous_id_repair").alias("reason"), pl.col("candidate").alias("candidates"),
        pl.col("sim").alias("scores"),
    )
    return links, review


def _stage_household(recs: pl.DataFrame, linked: pl.DataFrame, profiles: pl.DataFrame, groups: pl.DataFrame,
                     settings: LinkSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Match records without a usable ID to the persons of their own cross-walked household.

    A person already listed (by ID) in the record's own source household is no candidate: that is another member.
    """
    members = (  # only the two columns read: joining ``linked`` whole carried its evidence lists through the joins
        linked.select("rid", "person_key").join(recs.select("rid", "household"), on="rid").drop_nulls("household")
        .join(groups, on="household").select("household_group", "household", "person_key").unique()
    )
    pending = (
        recs.select("rid", "household", "name_norm", "name_pinyin", "id_birth_date", "id_sex")
        .join(linked.select("rid"), on="rid", how="anti").drop_nulls("household")
        .join(groups, on="household")
    )
    # Persons of the group, less those already linked from the record's own household (its other members).
    pairs = (
        pending.join(members.select("household_group", "person_key").unique(), on="household_group")
        .join(members.select("household", "person_key"), on=["household", "person_key"], how="anti")
        .join(profiles.select("person_key", "p_name", "p_pinyin", "p_birth", "p_sex"), on="person_key")
    )
    pairs = _with_similarity(pairs, settings).with_columns(
        (pl.col("sim")
         + pl.when(pl.col("id_birth_date").is_null() | pl.col("p_birth").is_null()).then(0.0)
         .when(pl.col("id_birth_date") == pl.col("p_birth")).then(0.05).otherwise(-0.3)
         + pl.when(pl.col("id_sex").is_null() | pl.col("p_sex").is_null()).then(0.0)
         .when(pl.col("id_sex") == pl.col("p_sex")).then(0.0).otherwise(-0.3)).clip(0.0, 1.0).alias("match")
    ).sort(["rid", "match", "person_key"], descending=[False, True, False])
    ranked = pairs.with_columns(
        pl.col("match").shift(-1).over("rid").alias("second"), pl.int_range(pl.len()).over("rid").alias("rank")
    ).filter(pl.col("rank") == 0)
    clear = pl.col("named") & (pl.col("match") >= settings.household_name_min) & (
        pl.col("second").is_null() | (pl.col("match") - pl.col("second") >= settings.household_margin))
    # One listed person is one person: when two records of the same source household both pick the same
    # candidate (two children, one of them not in the other system), neither is linked; both go to review.
    claims = pl.len().over("household", "person_key")
    decided = ranked.filter(clear).with_columns(claims.alias("claims"))
    links = decided.filter(pl.col("claims") == 1).select(
        "rid", "person_key", pl.lit("name_match").alias("method"), pl.col("match").alias("score"),
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
                             pl.col("person_key").alias("candidates"), pl.col("match").alias("scores"))
    )
    return links, review


def _identifying_names(recs: pl.DataFrame, linked: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """(household_group, name_norm) pairs where the name stands for one person in the whole cross-walked family.

    A name does not, when any source household of the group lists two persons by it: two linked IDs (twins), a
    linked ID and an unlinked record (father and son both 张伟), or two unlinked records.
    """
    return (
        recs.drop_nulls(["household", "name_norm"]).join(linked.select("rid", "person_key"), on="rid", how="left")
        .select("household", "name_norm", "person_key")
        # Persons: the distinct linked keys, plus each unlinked record on its own (no string is built per record).
        .group_by("household", "name_norm").agg(
            (pl.col("person_key").drop_nulls().n_unique() + pl.col("person_key").null_count()).alias("persons"))
        .join(groups, on="household")
        .group_by("household_group", "name_norm").agg(pl.col("persons").max())
        .filter(pl.col("persons") == 1).select("household_group", "name_norm", pl.lit(True).alias("__one"))
    )


def _internal_keys(recs: pl.DataFrame, linked: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
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
    rest = (
        recs.join(linked.select("rid"), on="rid", how="anti").join(groups, on="household", how="left")
        .join(_identifying_names(recs, linked, groups), on=["household_group", "name_norm"], how="left")
    )
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


def _assemble(recs: pl.DataFrame, parts: list[pl.DataFrame], groups: pl.DataFrame) -> pl.DataFrame:
    """person_links in record order: each record's own columns beside its key, method, score and evidence, and
    its household's group. Every record has exactly one key (the stages partition the records), so the keys are
    put in record order and set beside the records, not joined to them: a join carried every column of the
    records through a hash join and a sort, the linkage's largest transient (≈ 4 GiB for a province).

    ``parts``: the stages' keyed records; the list is emptied once they are sorted, so that the caller holds no
    second copy of 11 million evidence lists."""
    keyed = pl.concat(parts).sort("rid")
    parts.clear()
    if keyed.height != recs.height or not keyed["rid"].equals(recs["rid"], check_names=False):
        raise AssertionError("linkage: not exactly one person key per record")  # the stages partition the records
    own = recs.rename({"name_norm": "name"})
    group = own.select("household").join(groups, on="household", how="left", maintain_order="left")
    columns = {**{c: own[c] for c in LINK_SCHEMA if c in own.columns},
               **{c: keyed[c] for c in LINK_SCHEMA if c in keyed.columns and c != "rid"},
               "household_group": group["household_group"]}
    return pl.DataFrame([columns[c].alias(c) for c in LINK_SCHEMA]).cast(LINK_SCHEMA)  # type: ignore[arg-type]


def link_persons(records: pl.DataFrame, settings: LinkSettings | None = None) -> LinkResult:
    """Give every record a ``person_key`` with its method, score and evidence; list what needs a person."""
    settings = settings or LinkSettings()
    recs = _blanks_as_null(records).with_row_index("rid")
    exact, review_exact, profiles = _stage_exact(recs, settings)
    repaired, review_repair = _stage_repair(recs, profiles, settings)
    # Each frame is let go once the last stage reading it is done: at a province's 11 million records the
    # stages' results and the profiles held together were 1.5 GiB of the linkage's peak.
    linked = pl.concat([exact, repaired])
    del exact, repaired
    groups = household_groups(recs, linked)
    matched, review_household = _stage_household(recs, linked, profiles, groups, settings)
    del profiles
    linked = pl.concat([linked, matched])
    del matched
    parts = [linked, _internal_keys(recs, linked, groups)]
    del linked
    links = _assemble(recs, parts, groups)
    review = (
        pl.concat([review_exact, review_repair, review_household], how="vertical_relaxed")
        .join(recs.select("rid", "source", "row"), on="rid")
        .pipe(_best_first)
        .sort("rid", "reason")
        .select(list(REVIEW_SCHEMA)).cast(REVIEW_SCHEMA)  # type: ignore[arg-type]
    )
    return LinkResult(links, review, groups)
