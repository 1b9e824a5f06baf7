"""Layer `hydrants`: 消火栓 hydrants."""

from gis.layers.base import Field, Layer, choice, integer, num

LAYER = Layer(
    name="hydrants", label_zh="消火栓", label_en="Hydrants", geometry="POINT",
    description="室外消火栓 outdoor hydrants",
    fields=(
        choice("kind", "类型", "Kind", ("above_ground", "underground", "wall", "other"), default="above_ground",
               aliases=("type", "fire_hydrant:type")),
        choice("status", "状态", "Status", ("in_service", "out_of_service", "low_pressure", "damaged", "unknown"),
               default="in_service", aliases=("状况",)),
        num("flow_lps", "流量", "Flow", unit="L/s", minimum=0, maximum=200, aliases=("flow",)),
        num("pressure_mpa", "压力", "Pressure", unit="MPa", minimum=0, maximum=5, aliases=("pressure",)),
        integer("diameter_mm", "管径", "Diameter", unit="mm", minimum=0, maximum=1000, aliases=("diameter",)),
        Field(name="inspected_at", type="date", label_zh="检查日期", label_en="Inspected", aliases=("检查时间",)),
        choice("supply", "供水", "Supply", ("municipal", "compound", "unknown"), default="unknown",
               description="市政供水 municipal mains (水利) or the compound's own network (物业)"),
    ),
)
