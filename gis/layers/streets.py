"""Layer `streets`: 街道办辖区 street-office jurisdictions."""

from gis.layers.base import Layer, text

LAYER = Layer(
    name="streets", label_zh="街道", label_en="Street offices", geometry="MULTIPOLYGON",
    in_compound=False, in_street=False,
    description="街道办事处/乡镇辖区; ref is the 9-digit township code (e.g. 330212001)",
    fields=(
        text("name", "名称", "Name", required=True, max_length=100, aliases=("街道名称", "town")),
        text("district_code", "区县代码", "District code", max_length=6, aliases=("adcode", "区县编码"),
             identifier=True),
        text("district_name", "区县", "District", max_length=50),
    ),
)
