"""Console messages of campaign work in the browser (issue 22): the editor's growing tier rows and
its inline reasons, confirmations before irreversible actions, the participants page and posters.

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    # editor: rows added as needed
    "ccamp.add_tier": ("添加档位", "Add a tier"),
    "ccamp.add_rank": ("添加名次", "Add a rank"),
    "ccamp.rows_full": ("已达最多 {n} 行", "At most {n} rows"),
    "ccamp.sec.poster": ("分享海报", "Share poster"),
    "ccamp.poster_help": (
        "下方预览随填写即时更新；每位参与者的海报带各自的二维码和昵称。",
        "The preview below follows what you type; each participant's poster carries their own QR code "
        "and nickname.",
    ),
    "ccamp.preview": ("海报预览", "Poster preview"),
    "ccamp.preview_alt": ("按当前填写生成的分享海报预览", "Share poster preview from the form as filled in"),
    "ccamp.f.background": ("背景颜色", "Background colour"),
    "ccamp.f.pattern": ("背景图案", "Background image"),
    "ccamp.pattern.none": ("纯色", "Plain"),
    "ccamp.pattern.gradient": ("渐变", "Gradient"),
    "ccamp.pattern.dots": ("圆点", "Dots"),
    "ccamp.pattern.stripes": ("斜纹", "Stripes"),
    "ccamp.f.brand": ("品牌名称", "Brand"),
    "ccamp.f.reward_text": (
        "奖励文案（留空按奖励自动生成）",
        "Reward text (empty: written from the rewards)",
    ),
    "ccamp.f.show_avatar": ("显示邀请人头像", "Show the inviter's avatar"),
    "ccamp.f.show_deadline": ("显示截止时间", "Show the deadline"),
    # the service's reasons, in the console's language (web/pages/campaign_form.py REASONS)
    "ccamp.rp.window": ("结束时间早于开始时间", "the window ends before it starts"),
    "ccamp.rp.tiers_increase": ("档位门槛必须逐档递增", "tier thresholds must increase"),
    "ccamp.rp.tier_value": ("更高档位的奖励不能更少", "a higher tier must not be worth less"),
    "ccamp.rp.cap_zero": (
        "邀请上限为 0 时无法发放任何奖励",
        "a cap of 0 allows no reward although rewards are defined",
    ),
    "ccamp.rp.top_tier_cap": (
        "最高档位需要 {need} 位好友，但邀请上限是 {cap}",
        "the top tier needs {need} friends but the cap is {cap}",
    ),
    "ccamp.rp.budget_small": (
        "预算小于一份奖励（{smallest} 分）",
        "the budget is smaller than one reward ({smallest} fen)",
    ),
    "ccamp.rp.stock_zero": (
        "库存为 0 时无法发放任何奖励",
        "a stock of 0 allows no reward although rewards are defined",
    ),
    "ccamp.rp.min_amount": ("满额订单需要一个大于 0 的金额", "order_min_amount needs a positive amount"),
    "ccamp.rp.event_name": ("自定义事件需要填写事件名称", "a custom qualifying event needs its name"),
    "ccamp.rp.needs": ("这一类型的活动必须填写此项", "this campaign type needs it"),
    "ccamp.rp.one_reward": ("至少需要一个奖励", "at least one reward is needed"),
    "ccamp.rp.block_hold": ("拦截分数不能低于待审核分数", "block_at must not be below hold_at"),
    "ccamp.err.rules_text_short": (
        "活动规则至少 10 个字（公示规则是发布前的合规要求）",
        "the rules text needs 10 characters or more (published rules are required to launch)",
    ),
    "ccamp.err.too_long": ("内容过长（最多 {max} 个字符）", "too long (at most {max} characters)"),
    "ccamp.err.color": ("请选择颜色（形如 #c41e3a）", "must be a colour like #c41e3a"),
    # confirmations before irreversible actions
    "ccamp.confirm.launch": (
        "确定发布这个活动吗？发布后参与者即可邀请好友，规则变更只能以新版本生效。",
        "Launch this campaign? Participants can invite friends at once; later rule changes only take "
        "effect as a new version.",
    ),
    "ccamp.confirm.end": (
        "确定结束这个活动吗？结束后不能恢复，排行榜将立即结算。",
        "End this campaign? It cannot be resumed, and a leaderboard is settled at once.",
    ),
    "ccamp.confirm.reject": (
        "确定判定为作弊并拒绝吗？推荐将被拦截，相关奖励被拒绝或撤销，不能撤回。",
        "Reject as fraud? The referral is blocked and its rewards rejected or revoked; this cannot be "
        "undone.",
    ),
    "ccamp.confirm_required": (
        "此操作不可撤销，需要先确认：请在页面上点击按钮并在确认框中选择“确定”。",
        "This action cannot be undone and needs confirmation: use the button on the page and confirm "
        "in the dialog.",
    ),
    # participants
    "ccamp.participants": ("参与者", "Participants"),
    "ccamp.participants_of": ("参与者 · {title}", "Participants · {title}"),
    "ccamp.participants_note": (
        "每位参与者按邀请时留下的昵称和脱敏标识显示；进度按已达标好友数计算。",
        "Each participant by the nickname sent with their invite and a masked identifier; progress "
        "counts qualified friends.",
    ),
    "ccamp.participants_empty": ("还没有人领取邀请链接。", "Nobody has taken an invite link yet."),
    "ccamp.col.nickname": ("昵称", "Nickname"),
    "ccamp.col.masked": ("标识（脱敏）", "Identifier (masked)"),
    "ccamp.col.link": ("邀请链接", "Invite link"),
    "ccamp.col.poster": ("海报", "Poster"),
    "ccamp.col.progress": ("档位进度", "Tier progress"),
    "ccamp.col.accepted": ("已接受", "Accepted"),
    "ccamp.col.verified": ("已核验", "Verified"),
    "ccamp.col.rewards": ("奖励", "Rewards"),
    "ccamp.col.clicks": ("点击", "Clicks"),
    "ccamp.col.joined": ("领取链接时间", "Link taken"),
    "ccamp.no_nickname": ("（未留昵称）", "(no nickname)"),
    "ccamp.no_rewards": ("无", "none"),
    "ccamp.tier_n": ("第 {n} 档", "Tier {n}"),
    "ccamp.open_poster": ("查看海报", "Open the poster"),
    "ccamp.poster_of": ("{name} 的分享海报", "Share poster of {name}"),
    "ccamp.page": ("第 {page} / {pages} 页，共 {total} 人", "Page {page} of {pages}, {total} people"),
    "ccamp.prev": ("上一页", "Previous"),
    "ccamp.next": ("下一页", "Next"),
}
