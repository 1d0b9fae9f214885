"""The message catalogue of domain errors: stable code → (zh-CN template, English template).

Templates may use `{field}` (the field at fault), `{message}` (the English message given at the raise
site, which carries the specifics: ids, values) and the `params` of the raise. The English template is
used only when a raise gives no message; the Chinese one always, so every error speaks both languages.
Codes are stable: clients and logs match on them, so rename none.
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # -- generic kinds, shared by every domain
    "invalid": ("请求无效：{message}", "invalid request"),
    "not_found": ("未找到：{message}", "not found"),
    "conflict": ("与当前状态冲突：{message}", "conflict with the current state"),
    "exists": ("已存在：{message}", "already exists"),
    "unauthorized": ("未登录或凭据无效：{message}", "not authenticated"),
    "forbidden": ("无权执行此操作：{message}", "forbidden"),
    "locked": ("账号已暂时锁定：{message}", "account locked"),
    "unavailable": ("服务暂时不可用，请稍后重试：{message}", "temporarily unavailable, retry later"),
    "busy": ("资源正被其他进程占用，请稍后重试：{message}", "busy, retry later"),
    "unsafe_url": ("地址指向内部网络，服务器不会向其发送：{message}", "URL points at an internal address"),
    "throttled": ("登录失败次数过多，请稍后再试：{message}", "too many failed logins from this address"),
    "bad_state": ("当前状态不允许此操作：{message}", "not allowed in the current state"),
    # -- complaints and data-subject requests (complaints/)
    "case_closed": ("该投诉或请求已处理完毕：{message}", "the complaint or request is resolved already"),
    # -- privacy: the public key's participant token (privacy/tokens.py)
    "participant_token": (
        "缺少、无效或已过期的参与者令牌：{message}",
        "missing, invalid or expired participant token",
    ),
    # -- ingest: limits of one uploaded file and of imports running at once
    "file_too_large": ("文件超出导入上限：{message}", "file too large to import"),
    "too_many_imports": (
        "同时进行的导入过多，请稍后重试：{message}",
        "too many imports at once, retry later",
    ),
    # -- the Parquet event store (engine/eventstore.py)
    "event_store": (
        "事件存储未开启或地址不受支持（LIEBIAN_EVENT_STORE）：{message}",
        "event store off or its URL not supported (LIEBIAN_EVENT_STORE)",
    ),
    # -- rewards (ledger, payouts, webhooks)
    "not_payable": ("奖励不可发放：{message}", "reward not payable"),
    "endpoint_deleted": ("Webhook 端点已删除：{message}", "webhook endpoint deleted"),
    "concurrent_change": ("数据已被并发修改，请重试：{message}", "changed concurrently, retry"),
    "illegal_transition": ("奖励状态不能这样变更：{message}", "transition not allowed"),
    "held_for_review": ("奖励正在风控审核中，暂不能变更：{message}", "reward held for fraud review"),
    "idempotency_conflict": ("幂等键已用于另一个请求：{message}", "idempotency key used for another request"),
    # -- points (积分)
    "insufficient_points": ("积分不足：{message}", "not enough points"),
    # -- fraud review
    "already_decided": ("该风控案件已处理：{message}", "case already decided"),
    # -- the campaign engine (a fixed sentence stands alone; ids, times and fields come in {message})
    "unknown_campaign": ("活动不存在：{message}", "unknown campaign"),
    "unknown_version": ("活动版本不存在：{message}", "unknown campaign version"),
    "campaign_exists": ("活动已存在：{message}", "campaign exists already"),
    "campaign_not_live": ("活动未在进行中：{message}", "campaign not live"),
    "outside_pilot": ("活动处于试点阶段，参与者不在试点范围内：{message}", "outside the campaign's pilot"),
    "no_stage_plan": ("活动没有分阶段计划：{message}", "campaign has no stage plan"),
    "stage_gate_not_met": ("本阶段的推进条件未达到：{message}", "the stage gate is not met"),
    "last_stage": ("活动已在最后阶段：{message}", "campaign is in its last stage"),
    "not_live": ("只有已发布的活动才能暂停：{message}", "campaign not launched"),
    "campaign_ended": ("活动已结束：{message}", "campaign ended"),
    # -- money in another currency without a rate to CNY (liebian/fx.py)
    "no_fx_rate": (
        "没有 {currency}→CNY 在 {day} 或之前的可用汇率（{field}）：{message}",
        "no exchange rate to CNY for the amount's currency and day",
    ),
    "bad_fx_rates": (
        "汇率配置无法读取，外币金额暂不能换算：{message}",
        "the configured exchange rates cannot be read",
    ),
    "invalid_rules": ("活动规则无效：{message}", "invalid campaign rules"),
    "contradictory_rules": ("活动规则相互矛盾：{message}", "contradictory campaign rules"),
    "stored_rules_invalid": (
        "已保存的活动规则超出允许范围，请编辑规则：{message}",
        "stored campaign rules out of range",
    ),
    "compliance_failed": ("合规检查未通过：{message}", "compliance check failed"),
    "window_over": ("活动时间窗口已结束，无法发布", "the campaign window has already ended"),
    "malformed_code": ("邀请码格式错误", "the invite code is malformed"),
    "unknown_code": ("邀请码不存在", "no such invite code"),
    "forged_code": ("邀请码签名不匹配", "the invite code's signature does not match"),
    "expired_code": ("邀请码已过期：{message}", "the invite code expired"),
    "bad_poster_signature": (
        "海报链接的签名不正确（链接被改动过），请重新获取海报链接",
        "the poster link's signature does not match (the link was altered); ask for a new poster link",
    ),
    "expired_poster_link": (
        "海报链接已过期，请重新获取海报链接",
        "the poster link has expired; ask for a new one",
    ),
    "own_invite": ("不能接受自己的邀请", "an inviter cannot accept their own invite"),
    "already_accepted": ("该好友已在本活动中接受过邀请", "already accepted an invite in this campaign"),
    "already_qualified": ("该好友已被归因且已达标", "the friend is already attributed and qualified"),
    "friend_not_new": ("该好友不是新用户：{message}", "the friend is not new"),
    "device_not_new": (
        "该设备已被其他账户使用过，本活动要求新好友使用新设备",
        "the device was already used by another account",
    ),
    "claim_window_over": ("首次邀请的认领期已过", "the claim window of the first invite is over"),
    "group_complete": ("该团已满员", "this group is already complete"),
    "group_expired": ("该团已截止：{message}", "the group has closed"),
    "order_conflict": ("该订单已由其他参与者上报：{message}", "order reported for another participant"),
    "unknown_order": ("本活动中没有上报过该订单：{message}", "unknown order"),
    "missing_signature": ("订单回调缺少签名：{message}", "order callback signature missing"),
    "unknown_shop": ("店铺不存在或已停用：{message}", "unknown or revoked shop"),
    "shop_exists": ("店铺已存在：{message}", "shop exists already"),
    "not_share_coupon": ("该活动不是分享领券活动：{message}", "not a share-for-coupon campaign"),
    "not_shared": ("分享链接的打开次数不足：{message}", "the link was not opened often enough"),
    "budget_exhausted": ("活动预算或库存已用完", "the campaign's budget or stock is used up"),
    "bad_identifier": ("参与者标识无效：{message}", "bad participant identifier"),
    "unknown_participant": ("参与者不存在：{message}", "unknown participant"),
    # -- WeCom
    "unknown_state": ("未知的渠道活码 state：{message}", "unknown contact-way state"),
    "state_exists": ("渠道活码 state 已存在：{message}", "contact-way state exists"),
    "deleted": ("已删除：{message}", "deleted"),
    "wecom_api": ("企业微信接口调用失败：{message}", "WeCom API call failed"),
    "missing_parameter": ("回调缺少参数：{message}", "callback parameter missing"),
    "malformed_xml": ("回调 XML 格式错误：{message}", "malformed callback XML"),
    "malformed_event": ("回调事件格式错误：{message}", "malformed callback event"),
    "too_large": ("回调消息过大：{message}", "callback too large"),
    "replayed_nonce": ("回调 nonce 重复（疑似重放）：{message}", "replayed nonce"),
    "not_configured": ("企业微信回调未配置：{message}", "callback not configured"),
    "bad_timestamp": ("回调时间戳无效：{message}", "bad timestamp"),
    "stale_timestamp": ("回调时间戳已过期：{message}", "stale timestamp"),
    "bad_nonce": ("回调 nonce 无效：{message}", "bad nonce"),
    "bad_signature": ("回调签名校验失败：{message}", "bad signature"),
    "bad_ciphertext": ("回调密文无效：{message}", "bad ciphertext"),
    "bad_aes_key": ("EncodingAESKey 无效：{message}", "bad EncodingAESKey"),
    "bad_token": ("回调 Token 无效：{message}", "bad token"),
    "bad_receive_id": ("回调 ReceiveId 不匹配：{message}", "receive id mismatch"),
    "bad_padding": ("回调密文填充错误：{message}", "bad padding"),
    "bad_length": ("回调消息长度错误：{message}", "bad length"),
    # -- analyses, models, tags, reports (bad query input)
    "invalid_rule": ("标签规则无效：{message}", "invalid rule"),
    "not_ready": ("尚未生成完成，请稍后再取：{message}", "not ready yet"),
    "no_data": ("数据不足，无法计算：{message}", "not enough data"),
}
