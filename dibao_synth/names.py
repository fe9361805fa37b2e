"""Name pools and the character tables that name noise draws from.

The pools are small on purpose (about 300 given-name characters, 100 surnames weighted by their real frequency)
so that common names repeat, which is exactly what makes name-based linkage hard. The homophone and
traditional-character tables are real confusions seen in civil-affairs data (李丽/李力, 华/華).
"""

from __future__ import annotations

import numpy as np
import polars as pl

# (surname, weight ‰) — roughly the 2020 census ranking; compound surnames are rare.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71), ("李", 70), ("张", 67), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 22), ("赵", 20),
    ("吴", 20), ("周", 19), ("徐", 15), ("孙", 15), ("马", 14), ("朱", 13), ("胡", 13), ("郭", 12),
    ("何", 12), ("高", 11), ("林", 11), ("罗", 11), ("郑", 10), ("梁", 9), ("谢", 8), ("宋", 8),
    ("唐", 8), ("许", 7), ("韩", 7), ("冯", 7), ("邓", 7), ("曹", 7), ("彭", 6), ("曾", 6), ("肖", 6),
    ("田", 6), ("董", 5), ("袁", 5), ("潘", 5), ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 5), ("杜", 5),
    ("叶", 4), ("程", 4), ("苏", 4), ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4), ("沈", 4), ("姚", 4),
    ("卢", 4), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 3), ("范", 3), ("金", 3),
    ("石", 3), ("廖", 3), ("贾", 3), ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 3), ("邹", 3),
    ("孟", 3), ("熊", 3), ("秦", 3), ("邱", 3), ("江", 3), ("尹", 3), ("薛", 3), ("闫", 2), ("段", 2),
    ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2), ("顾", 2), ("毛", 2),
    ("郝", 2), ("龚", 2), ("邵", 2), ("万", 2), ("钱", 2), ("严", 2), ("覃", 2), ("武", 2), ("戴", 2),
    ("莫", 2), ("孔", 2), ("向", 2), ("汤", 2),
    ("欧阳", 0.2), ("司马", 0.05), ("诸葛", 0.05), ("上官", 0.05), ("司徒", 0.05), ("东方", 0.03),
)

_MALE_CHARS = (
    "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信"
    "杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪邦承乐绍功松善厚庆磊民友裕河哲江超浩亮"
    "政谦奇翰朗伯宏鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士建家致树德行泰盛雄钧冠腾楠航弘金春华红长云登宝喜根"
    "锋凯继卫为书长铭钢纲"
)
_FEMALE_CHARS = (
    "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月媛艳瑞佳嘉琼"
    "勤珍贞莉桂娣叶璐琦晶妍茜秋珊莎锦青倩婷婉娴瑾颖露瑶怡婵雁蓓仪荷丹蓉眉君琴蕊薇菁梦岚婕馨韵园艺咏卿"
    "聪澜纯毓悦昭冰爽茗羽希宁欣育滢筠柔竹凝晓欢枫芸菲伊亚宜可舒影荔丽阳妮宝贝晴容睿雯萱彦宇雨洋曼紫逸"
    "贤蝶蓝小敏莹"
)


def _unique(chars: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(chars))


MALE_GIVEN: tuple[str, ...] = _unique(_MALE_CHARS)
FEMALE_GIVEN: tuple[str, ...] = _unique(_FEMALE_CHARS)

# Minority names (维吾尔族 style): "given·father's name".
MINORITY_MALE: tuple[str, ...] = (
    "买买提", "艾力", "热合曼", "吐尔逊", "阿不都", "艾买提", "努尔", "肉孜", "亚森", "依明", "阿里木",
    "卡德尔", "司马义", "玉素甫", "麦麦提", "吾买尔", "阿布来提", "帕尔哈提",
)
MINORITY_FEMALE: tuple[str, ...] = (
    "阿依古丽", "古丽娜尔", "热依拉", "米娜", "帕提古丽", "再努尔", "阿米娜", "努尔古丽", "古丽米拉",
    "迪丽娜尔", "孜巴", "海尼古丽", "祖丽菲亚",
)
MINORITY_DOT = "·"
DOT_VARIANTS: tuple[str, ...] = ("•", "・", ".")

# Same pinyin, different character: what a caseworker types from hearing a name.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "丽": ("力", "莉", "利", "立"), "伟": ("玮", "炜"), "芳": ("方",), "军": ("君", "均", "钧"),
    "华": ("骅", "铧"), "明": ("铭", "鸣"), "静": ("婧", "靖", "敬"), "敏": ("闽", "珉"), "强": ("蔷",),
    "红": ("虹", "宏", "洪", "鸿"), "玲": ("灵", "铃", "龄", "伶"), "燕": ("艳", "雁", "彦"), "霞": ("侠", "峡"),
    "梅": ("玫", "眉"), "英": ("瑛", "鹰"), "兰": ("岚", "蓝"), "娟": ("鹃",), "平": ("萍", "苹"),
    "杰": ("洁", "婕", "捷"), "涛": ("韬", "滔"), "勇": ("永", "咏"), "峰": ("锋", "丰", "枫", "风"),
    "斌": ("彬", "宾"), "鹏": ("朋", "彭"), "建": ("健", "剑", "键"), "国": ("帼",), "文": ("雯", "闻"),
    "志": ("智", "治", "致"), "秀": ("绣",), "玉": ("钰", "毓", "育"), "凤": ("奉",), "云": ("芸", "耘"),
    "荣": ("蓉", "容", "融"), "桂": ("贵",), "成": ("诚", "程", "承"), "林": ("琳", "霖", "麟"),
    "辉": ("晖", "徽"), "磊": ("蕾",), "刚": ("钢", "纲"), "飞": ("菲", "非"), "欣": ("新", "馨", "鑫"),
    "婷": ("亭", "庭"), "琴": ("勤", "芹"), "宁": ("凝",), "晓": ("小",), "龙": ("隆", "珑"), "东": ("冬",),
    "波": ("博",), "海": ("亥",), "春": ("椿",), "萍": ("平", "苹"), "莉": ("丽", "力"), "方": ("芳",),
}

# Simplified → traditional (an old register, a Hong Kong–educated clerk, or an OCR'd form).
TRADITIONAL: dict[str, str] = {
    "华": "華", "丽": "麗", "国": "國", "伟": "偉", "军": "軍", "东": "東", "红": "紅", "兰": "蘭", "刚": "剛",
    "凤": "鳳", "龙": "龍", "飞": "飛", "云": "雲", "刘": "劉", "陈": "陳", "张": "張", "杨": "楊", "黄": "黃",
    "赵": "趙", "吴": "吳", "孙": "孫", "马": "馬", "郑": "鄭", "罗": "羅", "谢": "謝", "许": "許", "韩": "韓",
    "冯": "馮", "邓": "鄧", "叶": "葉", "苏": "蘇", "卢": "盧", "钟": "鍾", "陆": "陸", "贾": "賈", "韦": "韋",
    "邹": "鄒", "龚": "龔", "钱": "錢", "严": "嚴", "汤": "湯", "贺": "賀", "顾": "顧", "万": "萬", "兴": "興",
    "义": "義", "贵": "貴", "宝": "寶", "庆": "慶", "发": "發", "胜": "勝", "学": "學", "进": "進", "辉": "輝",
    "涛": "濤", "鹏": "鵬", "杰": "傑", "强": "強", "艳": "艷", "荣": "榮", "琼": "瓊", "莲": "蓮", "爱": "愛",
    "洁": "潔", "静": "靜", "宁": "寧", "长": "長", "广": "廣", "伦": "倫", "达": "達", "鸣": "鳴", "凯": "凱",
    "颖": "穎", "艺": "藝", "晓": "曉", "书": "書", "莹": "瑩", "卫": "衛", "继": "繼", "为": "為", "乐": "樂",
    "岚": "嵐", "纯": "純", "绍": "紹", "树": "樹", "贤": "賢", "欢": "歡", "亚": "亞", "钢": "鋼", "铭": "銘",
    "锋": "鋒", "锦": "錦", "钧": "鈞", "买": "買", "热": "熱", "尔": "爾",
}


def surname_table() -> tuple[pl.Series, np.ndarray]:
    """Surnames as a Series (gathered by index) and their sampling probabilities."""
    names = pl.Series("surname", [s for s, _ in SURNAMES], dtype=pl.String)
    w = np.array([w for _, w in SURNAMES], dtype=np.float64)
    return names, w / w.sum()


def draw_han_names(rng: np.random.Generator, surname_idx: np.ndarray, male: np.ndarray,
                   two_char_share: float = 0.75) -> tuple[pl.Series, pl.Series]:
    """Full Han names (surname + 1–2 given characters by sex) and the surname length, vectorised."""
    n = len(male)
    surnames, _ = surname_table()
    pools = {True: pl.Series(MALE_GIVEN), False: pl.Series(FEMALE_GIVEN)}
    # Mostly sex-typed characters, a few drawn from the other pool (伟 for a girl, 丽 for a boy happen).
    from_male = np.where(rng.random(n) < 0.93, male, ~male)
    from_male2 = np.where(rng.random(n) < 0.93, male, ~male)
    c1 = _pick(rng, pools, from_male)
    c2 = _pick(rng, pools, from_male2)
    two = rng.random(n) < two_char_share
    frame = pl.DataFrame({"s": surnames.gather(surname_idx), "c1": c1, "c2": c2, "two": two})
    out = frame.select(
        pl.concat_str(["s", "c1", pl.when("two").then("c2").otherwise(pl.lit(""))]).alias("name"),
        pl.col("s").str.len_chars().alias("surname_len"),
    )
    return out["name"], out["surname_len"]


def _pick(rng: np.random.Generator, pools: dict[bool, pl.Series], from_male: np.ndarray) -> pl.Series:
    n = len(from_male)
    m_idx = rng.integers(0, len(pools[True]), n)
    f_idx = rng.integers(0, len(pools[False]), n)
    return pools[True].gather(m_idx).zip_with(pl.Series(from_male), pools[False].gather(f_idx))


def draw_minority_names(rng: np.random.Generator, male: np.ndarray) -> pl.Series:
    """Names like 阿依古丽·买买提: own name by sex, then a (male) father's name."""
    n = len(male)
    mm, ff = pl.Series(MINORITY_MALE), pl.Series(MINORITY_FEMALE)
    own = mm.gather(rng.integers(0, len(mm), n)).zip_with(
        pl.Series(male), ff.gather(rng.integers(0, len(ff), n)))
    father = mm.gather(rng.integers(0, len(mm), n))
    return pl.DataFrame({"a": own, "b": father}).select(
        pl.concat_str(["a", "b"], separator=MINORITY_DOT)).to_series()
