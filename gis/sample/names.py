"""Plausible Chinese names for sample compounds, roads and property companies (deterministic from a generator)."""

from __future__ import annotations

import numpy as np

#: First parts of compound names (幸福家园, 阳光花园 ...).
COMPOUND_STEMS: tuple[str, ...] = (
    "幸福", "阳光", "金色", "锦绣", "翠苑", "碧水", "和平", "东湖", "南苑", "春晓", "明月", "华府", "丽景", "绿城",
    "书香", "康乐", "怡景", "兰亭", "桂花", "紫薇", "海棠", "枫林", "樱花", "香樟", "天河", "星海", "银河", "凤凰",
    "新城", "嘉和", "安居", "长春", "万科", "宁波", "东方", "世纪", "滨江", "湖畔", "江南", "梧桐", "青松", "鸿福",
)
#: Second parts, by compound kind.
COMPOUND_SUFFIXES: dict[str, tuple[str, ...]] = {
    "old_lowrise": ("新村", "小区", "家园", "苑", "公寓", "里", "坊"),
    "new_highrise": ("花园", "华庭", "名邸", "府", "公馆", "城", "湾", "雅苑"),
}
PHASES: tuple[str, ...] = ("", "一期", "二期", "三期", "东区", "西区", "南区", "北区")
#: Road name stems and suffixes (路 for the long east-west roads, 街 for the cross streets).
ROAD_STEMS: tuple[str, ...] = (
    "天童", "中山", "钱湖", "四明", "首南", "鄞州", "日丽", "天智", "学士", "桑田", "惊驾", "宁南", "兴宁", "诚信",
    "泰康", "金辉", "福明", "民安", "江东", "宁穿", "嵩江", "朝晖", "贸城", "会展", "彩虹", "百丈", "曙光", "划船",
    "吴航", "郑和", "十洋", "和平", "航城", "首占", "漳港", "朝阳", "东关", "南山", "仙岩", "洞江", "广场", "胜利",
)
NUMERALS: tuple[str, ...] = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九")
PROPERTY: tuple[str, ...] = (
    "绿城物业", "万科物业", "南都物业", "雅生活", "银亿物业", "宁波房管物业", "街道托管", "业主自管",
)


def compound_names(kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique compound names for compounds of `kinds` (old_lowrise / new_highrise)."""
    out, seen = [], set()
    for kind in kinds:
        suffixes = COMPOUND_SUFFIXES[str(kind)]
        for attempt in range(200):
            phase = PHASES[int(rng.integers(len(PHASES)))] if attempt < 50 else f"{attempt - 49}区"
            name = (COMPOUND_STEMS[int(rng.integers(len(COMPOUND_STEMS)))]
                    + suffixes[int(rng.integers(len(suffixes)))] + phase)
            if name not in seen:
                break
        seen.add(name)
        out.append(name)
    return np.array(out, dtype=object)


def road_names(n: int, suffix: str, rng: np.random.Generator, *, taken: set[str] | None = None) -> list[str]:
    """`n` unique road names ending in `suffix` (路/街); `taken` names are avoided and extended."""
    taken = set() if taken is None else taken
    out: list[str] = []
    stems = rng.permutation(len(ROAD_STEMS))
    k = 0
    while len(out) < n:
        stem = ROAD_STEMS[int(stems[k % len(stems)])]
        numeral = NUMERALS[(k // len(stems)) % len(NUMERALS)]
        extra = "" if k < len(stems) * len(NUMERALS) else str(k // (len(stems) * len(NUMERALS)))
        name = f"{stem}{numeral}{extra}{suffix}"
        k += 1
        if name in taken:
            continue
        taken.add(name)
        out.append(name)
    return out
