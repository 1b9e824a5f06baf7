"""The OSM import report: per layer what was found, estimated, written, kept and dropped, as a summary table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from gis.layers import get_layer
from gis.osm.derive import ATTRIBUTION
from gis.osm.sync import LayerSync

_SHOW = 5  # refs listed per kind of skip/drop before "…"


@dataclass
class LayerReport:
    """One layer of an OSM import."""

    found: int = 0
    #: field -> features whose value is an estimate (e.g. height_m from building:levels)
    estimated: Counter = field(default_factory=Counter)
    estimated_features: int = 0
    #: (ref, reason) of OSM objects that could not become valid geometries
    dropped: list[tuple[str, str]] = field(default_factory=list)
    sync: LayerSync = field(default_factory=LayerSync)


@dataclass
class OsmImportReport:
    """What `import_osm` did; `summary()` is what the CLI prints."""

    path: Path
    layers: dict[str, LayerReport]
    bounds: tuple[float, float, float, float] | None
    node_index: str
    objects_read: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    attribution: str = ATTRIBUTION

    @property
    def counts(self) -> dict[str, int]:
        """Features derived per layer (before re-import decisions)."""
        return {name: r.found for name, r in self.layers.items()}

    @property
    def skipped(self) -> dict[str, list[str]]:
        """Refs of user-edited features kept unchanged, per layer."""
        return {name: r.sync.skipped_edited for name, r in self.layers.items() if r.sync.skipped_edited}

    def summary(self) -> str:
        head = ("图层 layer", "发现 found", "推算 estimated", "新增 new", "更新 updated", "未变 unchanged",
                "跳过 skipped", "丢弃 dropped")
        rows = [head]
        for name, r in self.layers.items():
            s = r.sync
            rows.append((f"{get_layer(name).label_zh} {name}", str(r.found), str(r.estimated_features),
                         str(s.inserted), str(s.updated), str(s.unchanged),
                         str(len(s.skipped_edited) + len(s.skipped_deleted)), str(len(r.dropped))))
        widths = [max(_width(row[k]) for row in rows) for k in range(len(head))]
        lines = [f"OpenStreetMap 导入 import: {self.path.name}"
                 + (f" (bbox {', '.join(f'{b:.5f}' for b in self.bounds)})" if self.bounds else "")
                 + f" — {self.objects_read} OSM objects read, {self.seconds:.1f} s"]
        for row in rows:
            lines.append("  ".join(_pad(cell, widths[k], left=k == 0) for k, cell in enumerate(row)))
        estimated = [f"{name}.{f} {n}" for name, r in self.layers.items() for f, n in sorted(r.estimated.items())]
        if estimated:
            lines.append("推算值 estimated values (documented defaults, marked estimated=true): " + ", ".join(estimated))
        for name, r in self.layers.items():
            if r.sync.skipped_edited:
                lines.append(f"跳过(用户已编辑, 保留不变) skipped, edited by users and kept: {name} "
                             + _refs(r.sync.skipped_edited))
            if r.sync.skipped_deleted:
                lines.append(f"跳过(用户已删除) skipped, deleted by users: {name} " + _refs(r.sync.skipped_deleted))
            if r.sync.not_in_file:
                lines.append(f"保留(本文件中没有) kept, not in this file: {name} {r.sync.not_in_file}")
        for name, r in self.layers.items():
            reasons = Counter(reason for _, reason in r.dropped)
            for reason, n in reasons.most_common():
                refs = [ref for ref, why in r.dropped if why == reason]
                lines.append(f"丢弃 dropped {name} {n}: {reason}: {_refs(refs)}")
        lines.extend(self.notes)
        lines.append(f"数据来源 source=osm: {self.attribution}, ODbL 1.0 — 展示或导出时须注明 "
                     "attribution required wherever these data are shown or exported")
        return "\n".join(lines)


def _refs(refs: list[str]) -> str:
    shown = ", ".join(refs[:_SHOW])
    return shown + (f" … (+{len(refs) - _SHOW})" if len(refs) > _SHOW else "")


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    gap = " " * (width - _width(text))
    return text + gap if left else gap + text
