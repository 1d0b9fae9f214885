"""Console messages of decision support: an alert's options with expected effects, proposals
(web/pages/decisions.py). Key → (Simplified Chinese, English)."""

MESSAGES: dict[str, tuple[str, str]] = {
    "decisions.heading": ("告警 #{id} 的处理方案", "Options for alert #{id}"),
    "decisions.intro": (
        "每个方案的预期效果来自增长模拟：现状与方案各运行一次（同一随机种子），统计 {days} 天内新增用户与成本的差值；区间为逐次差值的第 10–90 百分位。",
        "Each option's expected effect comes from the growth simulation: the current campaign and the option run with the same seed; the difference in users acquired and their cost over {days} days; the range is the 10th–90th percentile of the per-run difference.",
    ),
    "decisions.link": ("方案", "Options"),
    "decisions.back": ("返回告警", "Back to alerts"),
    "decisions.option": ("方案", "Option"),
    "decisions.users": ("新增用户变化", "Δ users"),
    "decisions.range": ("区间（P10–P90）", "Range (P10–P90)"),
    "decisions.cost": ("成本变化（元）", "Δ cost (¥)"),
    "decisions.evidence": ("依据", "Evidence"),
    "decisions.baseline": ("现状预计新增", "Current projection"),
    "decisions.observed": ("实际值", "observed"),
    "decisions.threshold": ("阈值", "threshold"),
    "decisions.lift_from": ("奖励提升幅度来源", "reward lift from"),
    "decisions.lift_assumption": ("假设值（无可比 A/B 实验）", "assumption (no comparable A/B test)"),
    "decisions.params_from": ("参数来源", "parameters from"),
    "decisions.too_large": (
        "预测规模超出模拟上限，无法给出数值",
        "The projection outgrows what the simulation holds: no figure",
    ),
    "decisions.propose": ("提交变更提案", "Propose this change"),
    "decisions.proposed": (
        "已提交提案 #{id}，待另一位同事审批后生效",
        "Proposal #{id} submitted; live once a colleague approves it",
    ),
    "decisions.not_proposable": ("非规则变更，请在活动页操作", "Not a rules change: use the campaign page"),
    "decisions.option.raise_invitee_reward": ("每档奖励提高 ¥5", "Raise every tier's reward by ¥5"),
    "decisions.option.shorten_window": ("领奖窗口缩短 20%", "Shorten the claim window by 20%"),
    "decisions.option.cap_per_inviter": (
        "每位邀请人最多计 10 位好友",
        "Cap counted friends at 10 per inviter",
    ),
    "decisions.option.pause_campaign": ("暂停活动", "Pause the campaign"),
}
