"""Layer `illegal_structures`: 违章建筑 illegal structures."""

from gis.layers.base import Field, Layer, choice, num

LAYER = Layer(
    name="illegal_structures", label_zh="违章建筑", label_en="Illegal structures", geometry="MULTIPOLYGON",
    description="违法建筑 illegal structures (sheds, colour-steel extensions, enclosures)",
    fields=(
        choice("kind", "类型", "Kind", ("shed", "colour_steel", "enclosure", "extension", "other"),
               default="other", aliases=("type", "类型")),
        num("height_m", "高度", "Height", unit="m", minimum=0, maximum=100, aliases=("height",)),
        choice("fire_resistance_grade", "耐火等级", "Fire-resistance grade", ("1", "2", "3", "4"), default="4"),
        choice("status", "状态", "Status", ("reported", "confirmed", "demolished"), default="reported"),
        Field(name="reported_at", type="date", label_zh="发现日期", label_en="Reported"),
    ),
)
