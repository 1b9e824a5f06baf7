"""Layer and field declarations: one declaration drives a layer's table, validation, import mapping and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["text", "int", "float", "bool", "date", "timestamp", "json"]
GeometryKind = Literal["POINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRY"]

#: Storage CRS: CGCS2000 geographic (EPSG:4490), the national datum that Chinese government geodata must use
#: since 2018 and the datum of the Tianditu basemap; WGS84 data are within decimetres of it here.
STORAGE_SRID = 4490

#: Geometry types a layer of each kind accepts on import (before promotion to the stored kind).
ACCEPTED_GEOMETRIES: dict[str, tuple[str, ...]] = {
    "POINT": ("Point",),
    "MULTILINESTRING": ("LineString", "MultiLineString"),
    "MULTIPOLYGON": ("Polygon", "MultiPolygon"),
    "GEOMETRY": ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"),
}


@dataclass(frozen=True, kw_only=True)
class Field:
    """One attribute of a layer, with its type, constraints, unit, labels and import aliases."""

    name: str
    type: FieldType = "text"
    label_zh: str = ""
    label_en: str = ""
    required: bool = False
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    default: Any = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: a ref or a code: one visible line (gis.text_rules), so two that look the same are the same
    identifier: bool = False

    def column_names(self) -> tuple[str, ...]:
        """Every column name an import may use for this field (case-insensitive match)."""
        names = [self.name, *self.aliases]
        if self.label_zh:
            names.append(self.label_zh)
        if self.label_en:
            names.append(self.label_en)
        return tuple(dict.fromkeys(n.lower() for n in names))


@dataclass(frozen=True, kw_only=True)
class Layer:
    """A firelane layer (an OGC API collection): table, geometry kind, own fields, labels."""

    name: str
    label_zh: str
    label_en: str
    geometry: GeometryKind
    fields: tuple[Field, ...]
    description: str = ""
    editable: bool = True
    #: whether features belong to a compound (compound_id derived spatially on import when missing)
    in_compound: bool = True
    #: whether features carry a street_code (derived spatially on import when missing)
    in_street: bool = True
    #: refs are unique within the layer (a unique index; NULL refs allowed): refs are the user's identifiers, so two
    #: features sharing one would make findings, edits and exports ambiguous. Only the ledger (keyed by `key`) is not.
    unique_ref: bool = True
    #: timestamped layers support the OGC `datetime` filter on this field
    datetime_field: str | None = "updated_at"
    #: geometry types a mixed (GEOMETRY) layer accepts when fewer than every type (roads: centre lines or
    #: road-surface polygons, never points); such a layer stores each feature as its Multi type
    accepts: tuple[str, ...] | None = None

    @property
    def accepted_geometries(self) -> tuple[str, ...]:
        return self.accepts or ACCEPTED_GEOMETRIES[self.geometry]

    @property
    def multi(self) -> bool:
        """Whether features are stored as Multi types (ST_Multi on write)."""
        return self.geometry.startswith("MULTI") or (self.accepts is not None and "Point" not in self.accepts)

    @property
    def dimensions(self) -> tuple[int, ...]:
        """The geometry dimensions the layer holds (0 points, 1 lines, 2 polygons)."""
        dims = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1, "Polygon": 2, "MultiPolygon": 2}
        return tuple(sorted({dims[t] for t in self.accepted_geometries}))

    def field(self, name: str) -> Field:
        """The declared field `name`, own or common (ref, compound_ref, street_code, estimated, source)."""
        for f in (*self.fields, *COMMON_FIELDS):
            if f.name == name:
                return f
        raise KeyError(f"layer {self.name!r} has no field {name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def label(self, lang: str = "zh") -> str:
        return self.label_zh if lang.startswith("zh") else self.label_en


#: Fields every layer has, managed by the store (not imported from user columns except `ref`, links and `extra`).
COMMON_FIELDS: tuple[Field, ...] = (
    Field(name="ref", label_zh="编号", label_en="Reference", max_length=200, identifier=True,
          aliases=("id_user", "code", "编码", "名称编号", "ref_id"),
          description="the user's own identifier, kept verbatim from imports and reported in findings"),
    Field(name="compound_ref", label_zh="所属小区编号", label_en="Compound ref", max_length=200, identifier=True,
          aliases=("compound", "小区编号", "小区")),
    Field(name="street_code", label_zh="街道代码", label_en="Street code", max_length=12, identifier=True,
          aliases=("street", "街道编码", "乡镇街道代码")),
    Field(name="estimated", type="bool", label_zh="推算值", label_en="Estimated", default=False,
          description="derived values are estimates (e.g. height from floors, lane width from a default)"),
    Field(name="source", label_zh="数据来源", label_en="Source", max_length=200,
          aliases=("数据源",)),
)

#: Store-managed columns (never taken from an import file).
MANAGED_COLUMNS: tuple[str, ...] = (
    "id", "compound_id", "version", "created_at", "updated_at", "updated_by", "extra", "geom",
)


def text(name: str, zh: str, en: str, **kw: Any) -> Field:
    return Field(name=name, type="text", label_zh=zh, label_en=en, **kw)


def num(name: str, zh: str, en: str, **kw: Any) -> Field:
    return Field(name=name, type="float", label_zh=zh, label_en=en, **kw)


def integer(name: str, zh: str, en: str, **kw: Any) -> Field:
    return Field(name=name, type="int", label_zh=zh, label_en=en, **kw)


def flag(name: str, zh: str, en: str, **kw: Any) -> Field:
    return Field(name=name, type="bool", label_zh=zh, label_en=en, **kw)


def choice(name: str, zh: str, en: str, choices: tuple[str, ...], **kw: Any) -> Field:
    return Field(name=name, type="text", label_zh=zh, label_en=en, choices=choices, **kw)
