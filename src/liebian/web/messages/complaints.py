"""Console messages of complaints and data-subject requests (web/pages/complaints.py) and of the
export footer (privacy/watermark.py draws its own bilingual line; these label the page).

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    "nav.complaints": ("投诉与请求", "Complaints & requests"),
    "complaints.heading": ("待处理的投诉与个人信息请求", "What is due: complaints and data-subject requests"),
    "complaints.intro": (
        "投诉须在 24 小时内处理（可按类别配置），个人信息权利请求须在法定期限内答复；临近截止提醒负责人，超时通过告警渠道升级。",
        "Complaints are handled within 24 hours (configurable per category), data-subject requests "
        "within the legal deadline; owners are reminded before the deadline and overdue cases escalate "
        "through the alert channels.",
    ),
    "complaints.counts": ("按状态计数", "Counts by state"),
    "complaints.list": ("待处理事项", "Due items"),
    "complaints.none": ("没有待处理的投诉或请求。", "Nothing is due."),
    "complaints.id": ("编号", "No."),
    "complaints.kind": ("类型", "Kind"),
    "complaints.kind.complaint": ("投诉", "Complaint"),
    "complaints.kind.subject_request": ("个人信息权利请求", "Data-subject request"),
    "complaints.category": ("类别", "Category"),
    "complaints.channel": ("渠道", "Channel"),
    "complaints.text": ("内容（已脱敏）", "Text (masked)"),
    "complaints.owner": ("负责人", "Owner"),
    "complaints.unassigned": ("未分配", "Unassigned"),
    "complaints.state": ("状态", "State"),
    "complaints.state.open": ("处理中", "Open"),
    "complaints.state.due_soon": ("即将超时", "Due soon"),
    "complaints.state.overdue": ("已超时", "Overdue"),
    "complaints.state.resolved": ("已处理", "Resolved"),
    "complaints.received": ("接收时间", "Received"),
    "complaints.due": ("截止时间", "Due"),
    "complaints.escalations": ("升级次数", "Escalations"),
    "complaints.category.reward": ("奖励未到账", "Reward"),
    "complaints.category.product": ("商品质量", "Product"),
    "complaints.category.food_safety": ("食品安全", "Food safety"),
    "complaints.category.service": ("服务态度", "Service"),
    "complaints.category.delivery": ("配送", "Delivery"),
    "complaints.category.refund": ("退款", "Refund"),
    "complaints.category.campaign_rules": ("活动规则", "Campaign rules"),
    "complaints.category.privacy": ("隐私", "Privacy"),
    "complaints.category.harassment": ("骚扰", "Harassment"),
    "complaints.category.other": ("其他", "Other"),
    "complaints.category.access": ("查阅", "Access"),
    "complaints.category.copy": ("复制", "Copy"),
    "complaints.category.portability": ("转移", "Portability"),
    "complaints.category.correction": ("更正", "Correction"),
    "complaints.category.deletion": ("删除", "Deletion"),
    "complaints.category.explanation": ("解释说明", "Explanation"),
    "complaints.category.withdraw_consent": ("撤回同意", "Withdraw consent"),
}
