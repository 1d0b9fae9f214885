"""Console messages of the costs page (web/pages/costs.py): other costs per campaign and period;
and the campaign titles breakdowns show (imported campaigns included).

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    "nav.costs": ("成本录入", "Costs"),
    "costs.heading": ("其他成本（按活动与周期）", "Other costs by campaign and period"),
    "costs.hint": (
        "媒介、人力、工具等成本按天平均分摊：分析某一时段时，计入该成本落在时段内的天数所占的份额，"
        "与奖励成本一起进入获客成本（CAC）、ROI 与 LTV/CAC。未选活动的成本只在不按活动筛选时计入。",
        "Media, staff, tools and other costs are spread evenly over their days: a period counts the share "
        "of a cost's days inside it, added to the reward cost in CAC, ROI and LTV/CAC. A cost without a "
        "campaign counts only when no campaign is selected.",
    ),
    "costs.add": ("录入成本", "Add cost"),
    "costs.campaign": ("活动", "Campaign"),
    "costs.all_campaigns": ("全部活动（品牌级）", "All campaigns (brand-wide)"),
    "costs.category": ("类别", "Category"),
    "costs.category.media": ("媒介投放", "Media"),
    "costs.category.staff": ("人力", "Staff"),
    "costs.category.tools": ("工具", "Tools"),
    "costs.category.other": ("其他", "Other"),
    "costs.amount_yuan": ("金额（元）", "Amount (CNY)"),
    "costs.amount": ("金额", "Amount"),
    "costs.start_date": ("开始日期", "First day"),
    "costs.end_date": ("结束日期（含）", "Last day (inclusive)"),
    "costs.note": ("备注", "Note"),
    "costs.created_by": ("录入人", "Entered by"),
    "costs.actions": ("操作", "Actions"),
    "costs.remove": ("删除", "Remove"),
    "costs.none": ("尚未录入成本。", "No costs entered yet."),
    "costs.list": ("已录入的成本", "Costs entered"),
    "costs.added": ("已录入成本。", "Cost added."),
    "costs.removed": ("已删除成本。", "Cost removed."),
    "costs.bad_amount": (
        "金额：请输入大于 0 的元金额，最多两位小数。",
        "amount: enter a positive amount in yuan with at most two decimals.",
    ),
    # a campaign's title beside its id in breakdowns by campaign (fraud rate)
    "fraud.campaign_title": ("活动名称", "Campaign title"),
}
