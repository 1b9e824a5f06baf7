"""Layer `ebike_sites`: 电动自行车停放充电 e-bike sites."""

from gis.layers.base import Layer, choice, flag, integer, text

LAYER = Layer(
    name="ebike_sites", label_zh="电动自行车", label_en="E-bike sites", geometry="GEOMETRY",
    description="电动自行车集中停放充电场所与违规停放充电点位 e-bike sites and indoor reports",
    fields=(
        choice("kind", "类型", "Kind", ("centralised_site", "indoor_report"), required=True, aliases=("type",)),
        choice("location", "位置", "Location", ("outdoor", "lobby", "stairwell", "corridor", "exit", "other"),
               default="outdoor"),
        flag("charging", "充电", "Charging"),
        text("building_ref", "所在建筑编号", "Building", max_length=200, identifier=True),
        integer("capacity", "车位数", "Capacity", minimum=0, maximum=10000),
    ),
)
