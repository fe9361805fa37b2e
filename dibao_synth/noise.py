"""Record-level noise (ID and name variants) and very rare row-level faults, each recorded in the truth.

Noise is what real exports look like (README.md, "What happens to bad input"): a mistyped or swapped digit, an old
15-digit ID, full-width digits, a homophone (李丽/李力), a traditional character (华/華) … Each record gets at most one
ID noise kind and at most one name noise kind. Kinds are drawn one after the other over the records still clean, so
a loop runs over the handful of kinds, never over records. A row-level fault (bad date, negative or unparseable
amount, blank required field) makes ingestion reject the row; the truth lists it as an expected rejection. """

from __future__ import annotations

import numpy as np
import polars as pl

from dibao.normalise.ids import CHECK_CHARS
from dibao_synth.names import DOT_VARIANTS, HOMOPHONES, MINORITY_DOT, TRADITIONAL
from dibao_synth.params import (
    ADULT_BLANK_RATE,
    DOT_VARIANT_RATE,
    ID_KIND_WEIGHTS,
    INFANT_BLANK_RATE,
    LOWER_X_RATE,
    NAME_KIND_WEIGHTS,
    NOISE_RATES,
    ROW_FAULT_RATE,
)

ID_KINDS = ("bad_check_digit", "digit_typo", "digit_swap", "old_15", "full_width", "lower_x", "spaces", "blank")
NAME_KINDS = ("homophone", "traditional", "dropped_char", "inner_space", "dot_variant")
FAULT_KINDS = ("bad_date", "negative_amount", "unparseable_number", "blank_required")
_REFERENCE_ID_RATE = 0.035  # LOWER_X_RATE and DOT_VARIANT_RATE are stated for a source this noisy
_SCAN = 6  # name positions scanned for a character to replace


def _select(rng: np.random.Generator, applicable: np.ndarray, taken: np.ndarray, rate: float,
            minimum: int) -> np.ndarray:
    """Indices of a random share ``rate`` of the applicable, still clean records (at least ``minimum``)."""
    cand = np.flatnonzero(applicable & ~taken)
    if len(cand) == 0 or rate <= 0:
        return cand[:0]
    k = max(int(rng.binomial(len(cand), min(rate, 1.0))), min(minimum, len(cand)))
    return np.sort(rng.choice(cand, size=k, replace=False))


def _digits(id17: np.ndarray) -> np.ndarray:
    powers = 10 ** np.arange(16, -1, -1, dtype=np.int64)
    return (id17[:, None] // powers) % 10


def _digit_strings(d: np.ndarray) -> pl.Series:
    raw = np.ascontiguousarray((d + ord("0")).astype(np.uint8)).view(f"S{d.shape[1]}").ravel()
    return pl.Series(raw).cast(pl.String)


def _cat(*parts: pl.Series | str, n: int) -> pl.Series:
    """Concatenate Series and literal strings element-wise."""
    cols = {f"c{i}": p if isinstance(p, pl.Series) else pl.Series([p] * n, dtype=pl.String)
            for i, p in enumerate(parts)}
    return pl.DataFrame(cols).select(pl.concat_str(list(cols))).to_series()


def apply_id_noise(rng: np.random.Generator, source: str, ids: pl.Series, id17: np.ndarray,
                   birth_year: np.ndarray, age: np.ndarray, *, allow_blank: bool,
                   true_ids: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Noisy IDs and the kind applied to each record (null = clean)."""
    m = len(ids)
    rate = NOISE_RATES[source][0]
    kind = np.full(m, -1, dtype=np.int64)
    chosen: dict[str, np.ndarray] = {}
    if allow_blank:
        blank = np.flatnonzero(rng.random(m) < np.where(age < 2, INFANT_BLANK_RATE, ADULT_BLANK_RATE))
        chosen["blank"] = blank
        kind[blank] = ID_KINDS.index("blank")
    everyone = np.ones(m, dtype=bool)
    for name, w in ID_KIND_WEIGHTS.items():  # loop over noise kinds
        applicable = (birth_year >= 1900) & (birth_year <= 1999) if name == "old_15" else everyone
        idx = _select(rng, applicable, kind >= 0, rate * w, 1)
        chosen[name] = idx
        kind[idx] = ID_KINDS.index(name)
    ends_x = ids.str.ends_with("X").fill_null(False).to_numpy()
    idx = _select(rng, ends_x, kind >= 0, LOWER_X_RATE * rate / _REFERENCE_ID_RATE, 1)
    chosen["lower_x"] = idx
    kind[idx] = ID_KINDS.index("lower_x")

    values: dict[str, pl.Series] = {}
    for name, idx in chosen.items():  # loop over noise kinds
        sub = ids.gather(idx)
        k = len(idx)
        if name == "bad_check_digit":
            alphabet = pl.Series(list(CHECK_CHARS))
            t = sub.str.slice(17, 1).replace_strict(list(CHECK_CHARS), list(range(11)), return_dtype=pl.Int64)
            new = alphabet.gather((t.to_numpy() + 1 + rng.integers(0, 10, k)) % 11)
            values[name] = _cat(sub.str.slice(0, 17), new, n=k)
        elif name in ("digit_typo", "digit_swap"):
            d = _digits(id17[idx])
            rows = np.arange(k)
            if name == "digit_typo":
                pos = rng.integers(0, 17, k)
                d[rows, pos] = (d[rows, pos] + 1 + rng.integers(0, 9, k)) % 10
            else:
                can = d[:, :-1] != d[:, 1:]
                pos = np.argmax(rng.random((k, 16)) * can, axis=1)
                a, b = d[rows, pos].copy(), d[rows, pos + 1].copy()
                d[rows, pos], d[rows, pos + 1] = b, a
            values[name] = _cat(_digit_strings(d), sub.str.slice(17, 1), n=k)
        elif name == "old_15":
            values[name] = _cat(sub.str.slice(0, 6), sub.str.slice(8, 9), n=k)
        elif name == "full_width":
            values[name] = sub.str.replace_many(list("0123456789X"), list("０１２３４５６７８９Ｘ"))
        elif name == "lower_x":
            values[name] = _cat(sub.str.slice(0, 17), "x", n=k)
        elif name == "spaces":
            values[name] = _spaces(rng, sub)
        else:  # blank
            values[name] = pl.Series([None] * k, dtype=pl.String)
    # A typo must never produce somebody else's real ID: such records stay clean.
    for name in ("digit_typo", "digit_swap"):
        clash = (values[name].is_in(true_ids.implode()) | (values[name] == ids.gather(chosen[name]))).to_numpy()
        if clash.any():
            kind[chosen[name][clash]] = -1
            chosen[name] = chosen[name][~clash]
            values[name] = values[name].filter(pl.Series(~clash))
    out = ids.clone()
    for name, idx in chosen.items():  # loop over noise kinds
        if len(idx):
            out = out.scatter(idx, values[name])
    return out, _kind_series(kind, ID_KINDS)


def _spaces(rng: np.random.Generator, sub: pl.Series) -> pl.Series:
    """Leading, trailing or inner spaces (ASCII, sometimes the ideographic space)."""
    v = pl.Series(rng.integers(0, 6, len(sub)))
    sp = pl.Series(np.where(rng.random(len(sub)) < 0.85, " ", "\u3000"))
    f = pl.DataFrame({"s": sub, "v": v, "sp": sp})
    s, space = pl.col("s"), pl.col("sp")
    return f.select(
        pl.when(pl.col("v") == 0).then(space + s)
        .when(pl.col("v") == 1).then(s + space)
        .when(pl.col("v") == 2).then(s.str.slice(0, 6) + space + s.str.slice(6))
        .when(pl.col("v") == 3).then(s.str.slice(0, 14) + space + s.str.slice(14))
        .when(pl.col("v") == 4).then(space + s + space)
        .otherwise(s.str.slice(0, 6) + space + s.str.slice(6, 8) + space + s.str.slice(14))
    ).to_series()


def _kind_series(kind: np.ndarray, kinds: tuple[str, ...]) -> pl.Series:
    labels = pl.Series([*kinds, None], dtype=pl.String)
    return labels.gather(np.where(kind >= 0, kind, len(kinds)))


def _table(mapping: dict[str, tuple[str, ...]]) -> tuple[list[str], np.ndarray, np.ndarray, pl.Series]:
    keys = list(mapping)
    counts = np.array([len(mapping[k]) for k in keys])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = pl.Series([alt for k in keys for alt in mapping[k]], dtype=pl.String)
    return keys, starts, counts, flat


def apply_name_noise(rng: np.random.Generator, source: str, names: pl.Series, surname_len: np.ndarray,
                     minority: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """Noisy names and the kind applied to each record (null = clean)."""
    m = len(names)
    rate = NOISE_RATES[source][1]
    kind = np.full(m, -1, dtype=np.int64)
    length = names.str.len_chars().fill_null(0).to_numpy()
    chars = [names.str.slice(p, 1) for p in range(_SCAN)]
    tables = {"homophone": _table(HOMOPHONES), "traditional": _table({k: (v,) for k, v in TRADITIONAL.items()})}
    positions: dict[str, np.ndarray] = {}
    applicable: dict[str, np.ndarray] = {}
    for name, (keys, *_rest) in tables.items():  # loop over the two character tables
        hit = np.stack([c.is_in(keys).fill_null(False).to_numpy() for c in chars], axis=1)
        if name == "homophone":  # only the given name is misheard
            hit &= np.arange(_SCAN)[None, :] >= surname_len[:, None]
        applicable[name] = np.asarray(hit.any(axis=1))
        positions[name] = np.argmax(rng.random(hit.shape) * hit, axis=1)
    applicable["dropped_char"] = (length == 3) & (surname_len == 1) & ~minority
    applicable["inner_space"] = (length >= 2) & ~minority
    chosen: dict[str, np.ndarray] = {}
    for name, w in NAME_KIND_WEIGHTS.items():  # loop over noise kinds
        chosen[name] = _select(rng, applicable[name], kind >= 0, rate * w, 1)
        kind[chosen[name]] = NAME_KINDS.index(name)
    has_dot = names.str.contains(MINORITY_DOT, literal=True).fill_null(False).to_numpy()
    chosen["dot_variant"] = _select(rng, has_dot, kind >= 0, DOT_VARIANT_RATE * rate / _REFERENCE_ID_RATE, 1)
    kind[chosen["dot_variant"]] = NAME_KINDS.index("dot_variant")

    out = names.clone()
    for name, idx in chosen.items():  # loop over noise kinds
        k = len(idx)
        if k == 0:
            continue
        sub = names.gather(idx)
        if name in tables:
            keys, starts, counts, flat = tables[name]
            pos = positions[name][idx]
            ch = _char_at(sub, pos)
            key_i = ch.replace_strict(keys, list(range(len(keys))), return_dtype=pl.Int64).to_numpy()
            alt = flat.gather(starts[key_i] + rng.integers(0, 1 << 30, k) % counts[key_i])
            new = _splice(sub, pos, alt, drop=1)
        elif name == "dropped_char":
            new = _splice(sub, 1 + rng.integers(0, 2, k), pl.Series([""] * k), drop=1)
        elif name == "inner_space":
            ln = length[idx]
            pos = np.where(rng.random(k) < 0.7, surname_len[idx], 1 + rng.integers(0, 1 << 30, k) % (ln - 1))
            new = _splice(sub, pos, pl.Series([" "] * k), drop=0)
        else:  # dot_variant
            variant = pl.Series(list(DOT_VARIANTS)).gather(rng.integers(0, len(DOT_VARIANTS), k))
            new = pl.DataFrame({"s": sub, "v": variant}).select(
                pl.col("s").str.replace(MINORITY_DOT, pl.col("v"), literal=True)).to_series()
        out = out.scatter(idx, new)
    return out, _kind_series(kind, NAME_KINDS)


def _char_at(s: pl.Series, pos: np.ndarray) -> pl.Series:
    return pl.DataFrame({"s": s, "p": pos.astype(np.int64)}).select(pl.col("s").str.slice("p", 1)).to_series()


def _splice(s: pl.Series, pos: np.ndarray, insert: pl.Series, *, drop: int) -> pl.Series:
    """s[:pos] + insert + s[pos + drop:] element-wise."""
    f = pl.DataFrame({"s": s, "p": pos.astype(np.int64), "i": insert})
    return f.select(pl.concat_str([
        pl.col("s").str.slice(0, "p"), pl.col("i"), pl.col("s").str.slice(pl.col("p") + drop)])).to_series()


# Row faults: (kind, field, bad values) per source that carries them.
_FAULT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "registry": {"negative_amount": ("wage_income",), "unparseable_number": ("other_net_income",),
                 "blank_required": ("name", "household_id")},
    "dibao_roll": {"bad_date": ("enrolled_date",), "negative_amount": ("monthly_benefit",),
                   "unparseable_number": ("assessed_monthly_income",),
                   "blank_required": ("name", "dibao_household_id")},
}
_BAD_VALUES = {
    "bad_date": ("2023-13-45", "2021-02-30", "2019-00-12", "2022-06-31"),
    "negative_amount": ("-350", "-1200.5", "-80"),
    "unparseable_number": ("12O0", "一千二", "3OO", "八百五", "1O5O"),
    "blank_required": ("",),
}


def apply_row_faults(rng: np.random.Generator, source: str, frame: pl.DataFrame, protected: np.ndarray,
                     at_least_one: bool) -> tuple[pl.DataFrame, pl.Series]:
    """Plant row faults in a text frame; returns it and the expected rejection field per row (null = none)."""
    m = frame.height
    field = np.full(m, -1, dtype=np.int64)
    fields: list[str] = []
    taken = protected.copy()
    for kind, targets in _FAULT_FIELDS.get(source, {}).items():  # loop over fault kinds
        idx = _select(rng, np.ones(m, dtype=bool), taken, ROW_FAULT_RATE, 1 if at_least_one else 0)
        taken[idx] = True
        which = rng.integers(0, len(targets), len(idx))
        bad = _BAD_VALUES[kind]
        for t_i, target in enumerate(targets):  # loop over the one or two target fields
            rows = idx[which == t_i]
            if len(rows) == 0:
                continue
            if target not in fields:
                fields.append(target)
            field[rows] = fields.index(target)
            vals = pl.Series(bad, dtype=pl.String).gather(rng.integers(0, len(bad), len(rows)))
            vals = pl.select(pl.when(vals == "").then(None).otherwise(vals)).to_series()
            frame = frame.with_columns(frame[target].scatter(rows, vals))
    return frame, _kind_series(field, tuple(fields))
