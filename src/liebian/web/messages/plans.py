"""Console messages of the KOC programme (the /community page's KOC section), the budget-to-channel
option, and the journey editor.

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    # -- the KOC programme (web/pages/community.py, templates/community/_koc.html)
    "plans.koc.heading": ("KOC 计划", "KOC programme"),
    "plans.koc.note": (
        "从贡献排行中提名群内发过言的成员为 KOC，给他们设定任务（发 UGC 消息、带来入群的好友、发起打卡）；"
        "任务达标后，奖励通过奖励账本发放，每位 KOC 的每个任务只发一次。",
        "Nominate members who posted in the group (from the contributor ranking) as KOCs and give them "
        "tasks (post UGC messages, bring friends who join the group, host a check-in); a completed "
        "task's reward is granted through the reward ledger, once per KOC and task.",
    ),
    "plans.koc.results": ("KOC 成果（按人，匿名 ID）", "KOC results (per person, pseudonymous ids)"),
    "plans.koc.tasks": ("KOC 任务与进度", "KOC tasks and progress"),
    "plans.koc.nominate": ("提名为 KOC", "Nominate as KOC"),
    "plans.koc.add_task": ("添加任务", "Add task"),
    "plans.koc.set_status": ("更新状态", "Set status"),
    "plans.koc.settle": ("发放已完成任务的奖励", "Grant rewards of completed tasks"),
    "plans.koc.settle_confirm": (
        "确认为所有已达标的任务发放奖励？奖励将写入奖励账本。",
        "Grant the rewards of every completed task? They are written to the reward ledger.",
    ),
    "plans.koc.settled": ("已发放 {n} 个任务的奖励。", "Rewards granted for {n} tasks."),
    "plans.koc.reward_yuan": ("奖励（元）", "Reward (yuan)"),
    "plans.koc.col.koc": ("KOC 编号", "KOC no."),
    "plans.koc.col.task": ("任务编号", "Task no."),
    "plans.koc.col.status": ("状态", "Status"),
    "plans.koc.col.tasks": ("任务数", "Tasks"),
    "plans.koc.col.tasks_done": ("已完成任务", "Tasks done"),
    "plans.koc.col.ugc_messages": ("UGC 消息", "UGC messages"),
    "plans.koc.col.ugc_share": ("占群内 UGC", "Share of group UGC"),
    "plans.koc.col.invitees": ("带来入群好友", "Invitees who joined"),
    "plans.koc.col.reward": ("奖励金额", "Reward"),
    "plans.koc.col.reward_cost": ("奖励成本（已发放）", "Reward cost (issued)"),
    "plans.koc.col.kind": ("任务类型", "Task kind"),
    "plans.koc.col.start": ("开始日期", "Start"),
    "plans.koc.col.end": ("结束日期", "End"),
    "plans.koc.col.target": ("目标", "Target"),
    "plans.koc.col.progress": ("进度", "Progress"),
    "plans.koc.col.reward_id": ("奖励编号", "Reward no."),
    "plans.koc.status.nominated": ("已提名", "Nominated"),
    "plans.koc.status.active": ("进行中", "Active"),
    "plans.koc.status.retired": ("已退出", "Retired"),
    "plans.koc.kind.ugc_messages": ("发布 UGC 消息", "Post UGC messages"),
    "plans.koc.kind.invitees": ("带来入群好友", "Bring invitees who join"),
    "plans.koc.kind.checkin_hosted": ("发起打卡（参与人数）", "Host check-ins (participants)"),
    "plans.koc.invalid.person_id": (
        "成员 ID：请输入该群贡献排行中的成员 ID（在群内发过言的正整数 ID）。",
        "Member id: enter the id of a member in the group's contributor ranking (a positive integer "
        "id of someone who posted in the group).",
    ),
    "plans.koc.invalid.group_id": (
        "群：请输入 1–128 个字符的群 ID。",
        "Group: enter a group id of 1–128 characters.",
    ),
    "plans.koc.invalid.koc_id": (
        "KOC：请选择一位未退出的 KOC。",
        "KOC: choose a KOC who is not retired.",
    ),
    "plans.koc.invalid.kind": ("任务类型：请从列表中选择。", "Task kind: choose one from the list."),
    "plans.koc.invalid.target": (
        "目标：请输入 1–100000 之间的整数。",
        "Target: enter a whole number from 1 to 100000.",
    ),
    "plans.koc.invalid.start": (
        "开始日期：请输入有效日期，且不晚于结束日期。",
        "Start: enter a valid date no later than the end.",
    ),
    "plans.koc.invalid.end": ("结束日期：请输入有效日期。", "End: enter a valid date."),
    "plans.koc.invalid.reward": (
        "奖励（元）：请输入 0–100000 元之间、最多两位小数的金额。",
        "Reward (yuan): enter an amount from 0 to 100,000 with at most two decimals.",
    ),
    "plans.koc.invalid.status": (
        "状态：该 KOC 不能变更为所选状态（已提名 → 进行中或已退出；进行中 → 已退出；已退出 → 进行中）。",
        "Status: this KOC cannot take that status (nominated → active or retired; active → retired; "
        "retired → active).",
    ),
    "plans.koc.invalid.other": ("请求无效，请检查填写的内容。", "The request was refused: check the values."),
    # -- the budget-to-channel option (decisions/channels.py, templates/decisions/options.html)
    "decisions.option.move_budget_to_best_channel": (
        "把最差渠道 20% 的奖励预算移到最佳渠道",
        "Move 20% of the worst channel's reward budget to the best channel",
    ),
    "plans.move.evidence": (
        "从{src}移 {amount} 到{dst}；近 {days} 天各渠道每元奖励带来的被邀请用户：",
        "{amount} from {src} to {dst}; referred users per yuan of reward over the last {days} days: ",
    ),
    "plans.move.per_yuan": (" 人/元", " per yuan"),
    # -- the journey form editor (web/pages/journey_form.py, templates/reports/_journey_editor.html)
    "plans.journey.hint": (
        "逐步填写触发条件、等待、分支与动作；可添加、删除和调整步骤顺序。示例：",
        "Fill in the trigger and each step (wait, branch, action); add, remove and reorder steps. Examples: ",
    ),
    "plans.journey.json_mode": ("以 JSON 编辑", "Edit as JSON"),
    "plans.journey.form_mode": ("以表单编辑", "Edit as a form"),
    "plans.journey.copy": ("复制到编辑器", "Copy into the editor"),
    "plans.journey.fix_fields": (
        "有 {n} 处需要修改，见标红的字段。",
        "{n} fields need a change: see the marked fields.",
    ),
    "plans.journey.trigger": ("触发条件", "Trigger"),
    "plans.journey.trigger_type": ("触发类型", "Trigger type"),
    "plans.journey.trigger.silence": ("沉默用户", "Silent users"),
    "plans.journey.trigger.segment": ("带某标签的人群", "People with a tag"),
    "plans.journey.trigger.event": ("发生某事件", "An event happened"),
    "plans.journey.trigger.churn_risk": ("流失风险", "Churn risk"),
    "plans.journey.tag": ("标签", "Tag"),
    "plans.journey.event": ("事件名", "Event name"),
    "plans.journey.lookback_hours": ("首次回看（小时）", "First look-back (hours)"),
    "plans.journey.threshold": ("风险阈值（0–1）", "Risk threshold (0–1)"),
    "plans.journey.silence_days": ("沉默天数", "Days without activity"),
    "plans.journey.step": ("第 {n} 步", "Step {n}"),
    "plans.journey.kind": ("步骤类型", "Step kind"),
    "plans.journey.kind.action": ("动作", "Action"),
    "plans.journey.kind.wait": ("等待", "Wait"),
    "plans.journey.kind.branch": ("分支", "Branch"),
    "plans.journey.hours": ("等待小时数", "Hours to wait"),
    "plans.journey.cond": ("条件", "Condition"),
    "plans.journey.cond.event": ("进入后发生了事件", "Did an event since entering"),
    "plans.journey.cond.tag": ("带有标签", "Carries a tag"),
    "plans.journey.cond_value": ("事件名或标签", "Event name or tag"),
    "plans.journey.then": ("满足时", "If yes"),
    "plans.journey.else": ("不满足时", "If no"),
    "plans.journey.action": ("动作类型", "Action type"),
    "plans.journey.action.webhook": (
        "调用 Webhook（短信、企业微信、发券等）",
        "Call a webhook (SMS, WeCom, coupon …)",
    ),
    "plans.journey.action.tag": ("打标签", "Add a tag"),
    "plans.journey.action.campaign": ("邀请参加活动", "Invite to a campaign"),
    "plans.journey.action_name.tag": ("标签名", "Tag name"),
    "plans.journey.action_name.campaign": ("活动编号", "Campaign id"),
    "plans.journey.channel": ("触达渠道", "Channel"),
    "plans.journey.url": ("Webhook 地址", "Webhook URL"),
    "plans.journey.secret": ("签名密钥（至少 16 位）", "Signing secret (16 characters or more)"),
    "plans.journey.payload": ("附加内容（JSON，可留空）", "Payload (JSON, optional)"),
    "plans.journey.up": ("上移", "Move up"),
    "plans.journey.down": ("下移", "Move down"),
    "plans.journey.remove": ("删除此步", "Remove step"),
    "plans.journey.add_kind": ("新步骤类型", "New step kind"),
    "plans.journey.add": ("添加步骤", "Add step"),
    "plans.journey.goal": ("转化目标与规则", "Goal and rules"),
    "plans.journey.goal_days": ("目标期限（天）", "Goal within (days)"),
    "plans.journey.holdout_pct": ("对照组比例（%，0–90）", "Hold-out group (%, 0–90)"),
    "plans.journey.quiet_hours": ("免打扰时段（如 22-8，可留空）", "Quiet hours (e.g. 22-8, optional)"),
    "plans.journey.invalid.choice": ("请从列表中选择。", "Choose one from the list."),
    "plans.journey.invalid.label": ("请填写 1–64 个字符。", "Enter 1–64 characters."),
    "plans.journey.invalid.hours": (
        "请输入大于 0、不超过 43800（5 年）的小时数。",
        "Enter a number of hours above 0 and at most 43800 (5 years).",
    ),
    "plans.journey.invalid.threshold": ("请输入大于 0、小于 1 的数。", "Enter a number above 0 and below 1."),
    "plans.journey.invalid.days": ("请输入 1–3650 之间的天数。", "Enter a number of days from 1 to 3650."),
    "plans.journey.invalid.target": (
        "请选择下一步、结束或一个存在的步骤。",
        "Choose next, exit or an existing step.",
    ),
    "plans.journey.invalid.channel": (
        "请填写 1–32 个字符的渠道名。",
        "Enter a channel name of 1–32 characters.",
    ),
    "plans.journey.invalid.url": (
        "请输入以 http:// 或 https:// 开头的完整地址。",
        "Enter a full address starting with http:// or https://.",
    ),
    "plans.journey.invalid.unsafe_url": (
        "该地址指向内部网络，服务器不会向其发送。",
        "This address points into the internal network; the server will not send to it.",
    ),
    "plans.journey.invalid.secret": ("密钥需 16–256 个字符。", "The secret needs 16–256 characters."),
    "plans.journey.invalid.payload": (
        '附加内容需是 JSON 对象，如 {"template": "wake_up_1"}。',
        'The payload must be a JSON object, e.g. {"template": "wake_up_1"}.',
    ),
    "plans.journey.invalid.name": (
        "请填写 1–128 个字符的旅程名称。",
        "Enter a journey name of 1–128 characters.",
    ),
    "plans.journey.invalid.exists": (
        "已有同名旅程，请换一个名称。",
        "A journey with this name exists: choose another.",
    ),
    "plans.journey.invalid.steps": ("旅程至少需要一个步骤。", "A journey needs at least one step."),
    "plans.journey.invalid.holdout": ("请输入 0–90 之间的整数。", "Enter a whole number from 0 to 90."),
    "plans.journey.invalid.quiet_hours": (
        "请按“开始-结束”填写两个不同的整点（0–23），如 22-8。",
        "Enter two different hours 0–23 as START-END, e.g. 22-8.",
    ),
    "plans.journey.invalid.other": ("该值未通过校验，请检查。", "This value was refused: check it."),
}
