"""Towns (乡镇) and villages (行政村/社区) of the nine sample counties.

Town names are the real ones of each county (a seed-dependent subset of 3–8); village names are composed from
common rural place-name parts, so they look right and repeat across towns the way real ones do (every county
has a 王庄村).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao_synth.params import COUNTIES

TOWNS: dict[str, tuple[str, ...]] = {
    "340402": ("洛河镇", "上窑镇", "九龙岗镇", "孔店乡", "大通街道", "淮舜街道"),
    "340403": ("安成镇", "曹庵镇", "三和镇", "史院乡", "舜耕镇", "田东街道", "洞山街道"),
    "340404": ("望峰岗镇", "李郢孜镇", "唐山镇", "杨公镇", "孤堆回族乡", "孙庙乡", "谢家集街道"),
    "340405": ("山王镇", "八公山镇", "新庄孜街道", "土坝孜街道"),
    "340406": ("潘集镇", "芦集镇", "高皇镇", "平圩镇", "泥河镇", "架河镇", "夹沟镇", "祁集镇", "贺疃镇",
               "古沟回族乡"),
    "340421": ("城关镇", "新集镇", "朱马店镇", "岳张集镇", "顾桥镇", "夏集镇", "桂集镇", "焦岗湖镇", "凤凰镇",
               "杨村镇", "丁集镇", "刘集乡", "大兴集乡", "李冲回族乡", "关店乡", "钱庙乡"),
    "340422": ("寿春镇", "双桥镇", "涧沟镇", "丰庄镇", "正阳关镇", "迎河镇", "板桥镇", "安丰塘镇", "众兴镇",
               "茶庵镇", "三觉镇", "炎刘镇", "刘岗镇", "隐贤镇", "瓦埠镇", "小甸镇", "堰口镇", "保义镇",
               "陶店回族乡", "张李乡"),
    "422827": ("翔凤镇", "百福司镇", "大河镇", "绿水镇", "漫水乡", "革勒车镇", "旧司镇", "三胡乡"),
    "429005": ("园林街道", "杨市街道", "周矶街道", "广华街道", "泰丰街道", "竹根滩镇", "渔洋镇", "王场镇",
               "高石碑镇", "熊口镇", "老新镇", "浩口镇", "积玉口镇", "张金镇", "龙湾镇"),
}

_VILLAGE_HEADS = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高罗郑梁谢宋唐许韩冯邓曹彭曾田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚"
    "东西南北新前后大小上下中"
)
_VILLAGE_TAILS = ("庄", "圩", "集", "岗", "湾", "店", "桥", "湖", "塘", "台", "营", "郢", "岭", "沟", "坝", "楼",
                  "寨", "庙", "桥头", "家湾", "老庄", "新庄", "大郢", "小圩")
_VILLAGE_WORDS = ("新华", "红星", "光明", "胜利", "团结", "幸福", "和平", "永丰", "联合", "建设", "东风",
                  "前进", "民主", "花园", "丰收", "白果", "桃园", "柳林", "凤凰", "青龙", "金桥", "双河")
_COMMUNITY_WORDS = ("朝阳", "滨河", "建设", "和平", "文化", "人民", "幸福", "花园", "新村", "车站", "向阳",
                    "光华", "东城", "西城", "南苑", "北苑", "龙泉", "翠湖", "锦绣", "惠民")


@dataclass(frozen=True)
class Places:
    """Flat tables of towns and villages; households draw indices into them."""

    towns: pl.DataFrame  # county_idx, town_idx (0..k-1 within county), town, town_code (3 digits)
    villages: pl.DataFrame  # county_idx, town_idx, village_idx, village, community (bool), village_code


def build_places(rng: np.random.Generator) -> Places:
    """Pick 3–8 towns per county and 8–24 villages (and 1–4 urban communities) per town."""
    town_rows: list[tuple[int, int, str, str]] = []
    village_rows: list[tuple[int, int, int, str, bool, str]] = []
    for ci, county in enumerate(COUNTIES):  # loops over the 9 counties and their towns only
        pool = TOWNS[county.code]
        k = int(rng.integers(3, min(8, len(pool)) + 1))
        chosen = sorted(rng.choice(len(pool), size=k, replace=False).tolist())
        for ti, pi in enumerate(chosen):
            town_rows.append((ci, ti, pool[pi], f"{pi + 1:03d}"))
            n_vil = int(rng.integers(8, 25))
            n_com = int(rng.integers(1, 5))
            names = _village_names(rng, n_vil, community=False) + _village_names(rng, n_com, community=True)
            for vi, name in enumerate(names):
                village_rows.append((ci, ti, vi, name, vi >= n_vil, f"{vi + 1:03d}"))
    towns = pl.DataFrame(town_rows, schema=["county_idx", "town_idx", "town", "town_code"], orient="row")
    villages = pl.DataFrame(
        village_rows, schema=["county_idx", "town_idx", "village_idx", "village", "community", "village_code"],
        orient="row",
    )
    return Places(towns, villages)


def _village_names(rng: np.random.Generator, n: int, *, community: bool) -> list[str]:
    """Distinct names within one town: 王庄村, 新华村, 朝阳社区."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        if community:
            name = _COMMUNITY_WORDS[int(rng.integers(len(_COMMUNITY_WORDS)))] + "社区"
        elif rng.random() < 0.7:
            name = (_VILLAGE_HEADS[int(rng.integers(len(_VILLAGE_HEADS)))]
                    + _VILLAGE_TAILS[int(rng.integers(len(_VILLAGE_TAILS)))] + "村")
        else:
            name = _VILLAGE_WORDS[int(rng.integers(len(_VILLAGE_WORDS)))] + "村"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out
