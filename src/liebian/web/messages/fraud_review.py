"""Console messages of a fraud case's evidence graph (web/pages/fraud.py, case detail).

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    "fraud.source.merge": ("OneID 合并", "OneID merge"),
    "fraud_review.graph": (
        "证据图：人员、共用的设备 / IP / 标识与邀请关系",
        "Evidence graph: persons, shared devices / IPs / identifiers and referral links",
    ),
    "fraud_review.table": ("证据明细", "Evidence"),
    "fraud_review.empty": ("该案件没有可显示的证据", "No evidence to show for this case"),
    "fraud_review.col.from": ("从", "From"),
    "fraud_review.col.relation": ("关系", "Relation"),
    "fraud_review.col.to": ("到", "To"),
    "fraud_review.col.origin": ("依据", "Evidence from"),
    "fraud_review.kind.person": ("人员", "Person"),
    "fraud_review.kind.device": ("设备", "Device"),
    "fraud_review.kind.ip": ("IP 地址", "IP address"),
    "fraud_review.kind.identifier": ("标识", "Identifier"),
    "fraud_review.role.friend": ("好友", "friend"),
    "fraud_review.role.inviter": ("邀请人", "inviter"),
    "fraud_review.role.same": ("邀请人 = 好友", "inviter = friend"),
    "fraud_review.role.merged": ("已合并", "merged"),
    "fraud_review.role.other": ("其他账户", "other account"),
    "fraud_review.rel.invited": ("邀请了", "invited"),
    "fraud_review.rel.used": ("使用了", "used"),
    "fraud_review.rel.holds": ("持有", "holds"),
    "fraud_review.rel.merged": ("合并入", "merged into"),
    "fraud_review.origin.sighting": ("活动实时记录", "campaign sighting"),
    "fraud_review.origin.import": ("导入的事件", "imported events"),
    "fraud_review.origin.oneid": ("OneID", "OneID"),
}
