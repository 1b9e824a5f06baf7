"""Layer `compounds`: 住宅小区 residential compounds."""

from gis.layers.base import Layer, choice, flag, integer, text

LAYER = Layer(
    name="compounds", label_zh="小区", label_en="Compounds", geometry="MULTIPOLYGON",
    in_compound=False,
    description="住宅小区边界 residential compound boundaries",
    fields=(
        text("name", "小区名称", "Name", required=True, max_length=200, aliases=("小区名", "compound_name")),
        text("address", "地址", "Address", max_length=300),
        choice("kind", "小区类型", "Kind", ("old_lowrise", "new_highrise", "mixed", "other"),
               default="other", aliases=("type", "类型")),
        integer("built_year", "建成年份", "Year built", minimum=1900, maximum=2100, aliases=("year", "建成年代")),
        integer("households", "户数", "Households", minimum=0, maximum=100000),
        text("property_company", "物业公司", "Property management", max_length=200, aliases=("物业",)),
        flag("gated", "封闭管理", "Gated", default=True),
    ),
)
