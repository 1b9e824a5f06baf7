"""Layer `hazards`: 隐患台账 hazards ledger (states from gis.campaign.lifecycle)."""

from gis.campaign.lifecycle import MAX_DEPARTMENT, MAX_PERSON, MAX_UNIT, STATES
from gis.layers.base import Field, Layer, choice, integer, num, text

LAYER = Layer(
    name="hazards", label_zh="隐患台账", label_en="Hazards", geometry="GEOMETRY",
    description="隐患台账: one row per finding key (rule + subjects), followed from discovery to close-out",
    editable=False, unique_ref=False,
    fields=(
        text("key", "隐患键", "Key", required=True, max_length=400),
        text("rule", "规则", "Rule", required=True, max_length=40),
        text("clause", "条款", "Clause", max_length=200),
        choice("verdict", "结论", "Verdict", ("fail", "pass", "cannot_judge"), required=True),
        choice("strength", "强度", "Strength", ("mandatory", "advisory")),
        num("severity", "严重度", "Severity", minimum=0),
        choice("status", "状态", "Status", STATES, default="open",
               description="the life-cycle state (gis.campaign.lifecycle); empty for a cannot_judge data gap"),
        text("subject_layer", "对象图层", "Subject layer", max_length=40),
        text("subject_ref", "对象编号", "Subject ref", max_length=200, identifier=True),
        Field(name="other_refs", type="json", label_zh="关联对象", label_en="Other refs"),
        num("measured", "实测值", "Measured"),
        num("required_value", "要求值", "Required"),
        text("unit", "单位", "Unit", max_length=20),
        text("message_zh", "说明", "Message (zh)"),
        text("message_en", "说明(英)", "Message (en)"),
        text("department", "责任部门", "Department", max_length=MAX_DEPARTMENT),
        text("responsible_unit", "责任单位", "Responsible unit", max_length=MAX_UNIT),
        text("person", "责任人", "Responsible person", max_length=MAX_PERSON),
        Field(name="deadline", type="date", label_zh="整改期限", label_en="Deadline"),
        Field(name="assigned_at", type="timestamp", label_zh="交办时间", label_en="Assigned"),
        Field(name="rectified_at", type="timestamp", label_zh="整改完成时间", label_en="Rectified"),
        Field(name="verified_at", type="timestamp", label_zh="复核时间", label_en="Verified"),
        Field(name="first_seen_at", type="timestamp", label_zh="发现时间", label_en="First seen"),
        Field(name="last_seen_at", type="timestamp", label_zh="最近检查", label_en="Last seen"),
        integer("first_run_id", "首次检查批次", "First run"),
        integer("last_run_id", "最近检查批次", "Last run"),
        Field(name="closed_at", type="timestamp", label_zh="销号时间", label_en="Closed"),
    ),
)
