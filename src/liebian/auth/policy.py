"""The authorisation policy: roles → permissions, and every route and CLI command → one permission.

This table is the single place that says who may do what. `auth.deps.authorize` enforces ROUTES for
every HTTP request (installed once in web/app.py); `auth.cli_guard` enforces COMMANDS for every CLI
command. A route or command missing here is refused to everyone but admin at run time, and fails
the test suite (tests/auth/test_auth_matrix.py walks `app.routes` and the Typer tree).
"""

from __future__ import annotations

# Special permission: no credential needed (health, the short link a WeChat user taps, docs).
ANONYMOUS = "anonymous"

PERMISSIONS: dict[str, str] = {
    "ingest:write": "send events and orders (front ends, collectors)",
    "frontend": "front-end flows: invites, accept, conversions, progress, leaderboard, my rewards",
    "consent:record": "record a person's consent or withdrawal (front ends)",
    "console:view": "open the console",
    "identity:read": "look up persons (identifiers shown masked)",
    "identity:write": "link identifiers",
    "quality:read": "data-quality report",
    "campaign:read": "read campaigns, referrals, compliance reports, campaign audit",
    "campaign:write": "create, edit, launch, pause, end campaigns; refunds and claims",
    "rewards:read": "read rewards, the ledger, payouts, webhooks",
    "rewards:write": "move rewards, payouts, webhook endpoints",
    "fraud:read": "read fraud cases and rates",
    "fraud:review": "decide fraud cases, hold rewards for review, run scans",
    "analytics:read": "aggregated analytics",
    "models:write": "fit predictive models, define and recompute tags",
    "segments:read": "person-level scores and tag members (pseudonymous person ids)",
    "privacy:read": "privacy notices, consent state, data inventory",
    "privacy:admin": "publish privacy notices",
    "privacy:dsr": "data-subject requests: export, delete; key rotation",
    "pii:reveal": "reveal a decrypted identifier (audited)",
    "auth:admin": "users, roles and API keys",
    "audit:read": "read, verify and export the audit log",
    "reports:write": "set SMART targets, subscribe addresses to reports, send due reports",
}

PUBLIC_SCOPES = frozenset({"ingest:write", "frontend", "consent:record"})
ROLES = ("admin", "operator", "analyst", "reviewer", "auditor", "viewer")

# Least privilege: each role gets what its job needs. Admin has everything but the audit log, which
# only auditors read (separation of duties: whoever administers cannot read or export the trail of
# their own actions without a second person holding the auditor role).
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(set(PERMISSIONS) - {"audit:read"}),
    "operator": frozenset(
        {
            "ingest:write",
            "frontend",
            "consent:record",
            "console:view",
            "identity:read",
            "identity:write",
            "quality:read",
            "campaign:read",
            "campaign:write",
            "rewards:read",
            "rewards:write",
            "fraud:read",
            "analytics:read",
            "models:write",
            "segments:read",
            "privacy:read",
            "reports:write",
        }
    ),
    "analyst": frozenset(
        {"console:view", "analytics:read", "quality:read", "campaign:read", "models:write", "segments:read"}
    ),
    "reviewer": frozenset({"console:view", "fraud:read", "fraud:review", "rewards:read", "campaign:read"}),
    "auditor": frozenset(
        {
            "console:view",
            "audit:read",
            "campaign:read",
            "rewards:read",
            "fraud:read",
            "privacy:read",
            "quality:read",
        }
    ),
    "viewer": frozenset({"console:view", "analytics:read"}),
}

# (method, path template) → permission. Every route of the app, docs included.
ROUTES: dict[tuple[str, str], str] = {
    # system and docs
    ("GET", "/api/v1/health"): ANONYMOUS,
    ("GET", "/openapi.json"): ANONYMOUS,
    ("GET", "/docs"): ANONYMOUS,
    ("GET", "/docs/oauth2-redirect"): ANONYMOUS,
    ("GET", "/redoc"): ANONYMOUS,
    # console
    ("GET", "/"): "console:view",
    ("GET", "/login"): ANONYMOUS,
    ("POST", "/login"): ANONYMOUS,
    ("POST", "/logout"): ANONYMOUS,
    ("GET", "/alerts"): "analytics:read",
    ("POST", "/alerts/{alert_id}/acknowledge"): "campaign:write",  # as the monitor API
    ("POST", "/alerts/{alert_id}/resolve"): "campaign:write",
    ("POST", "/alerts/rules/defaults"): "campaign:write",
    ("GET", "/quality"): "quality:read",
    # import: uploading is ingestion; batch records and their rejected lines are quality data
    # (the public front-end key holds ingest:write but must not read them)
    ("GET", "/import"): "quality:read",
    ("POST", "/import"): "ingest:write",
    ("GET", "/import/jobs/{job_id}"): "quality:read",
    ("GET", "/import/batches/{batch_id}"): "quality:read",
    ("GET", "/settings"): "auth:admin",
    ("POST", "/settings/users"): "auth:admin",
    ("POST", "/settings/users/{username}/role"): "auth:admin",
    ("POST", "/settings/users/{username}/active"): "auth:admin",
    ("POST", "/settings/users/{username}/password"): "auth:admin",
    ("POST", "/settings/keys"): "auth:admin",
    ("POST", "/settings/keys/{key_id}/revoke"): "auth:admin",
    ("POST", "/settings/channels"): "auth:admin",
    ("POST", "/settings/channels/{channel_id}/test"): "auth:admin",
    ("POST", "/settings/channels/{channel_id}/remove"): "auth:admin",
    # console: reports (reading is analytics; generating, targets and subscriptions are reports work)
    ("GET", "/reports"): "analytics:read",
    ("GET", "/reports/documents"): "analytics:read",
    ("GET", "/reports/{document_id}/report.html"): "analytics:read",
    ("GET", "/reports/{document_id}/report.xlsx"): "analytics:read",
    ("POST", "/reports/generate"): "reports:write",
    ("POST", "/reports/targets"): "reports:write",
    ("PUT", "/reports/targets/{target_id}"): "reports:write",
    ("DELETE", "/reports/targets/{target_id}"): "reports:write",
    ("POST", "/reports/subscriptions"): "reports:write",
    ("DELETE", "/reports/subscriptions/{subscription_id}"): "reports:write",
    # console: journeys (they contact persons: changing them is campaign work)
    ("GET", "/journeys"): "campaign:read",
    ("GET", "/journeys/new"): "campaign:write",
    ("POST", "/journeys"): "campaign:write",
    ("GET", "/journeys/{journey_id}"): "campaign:read",
    ("POST", "/journeys/{journey_id}/pause"): "campaign:write",
    ("POST", "/journeys/{journey_id}/activate"): "campaign:write",
    ("GET", "/funnel"): "analytics:read",
    ("GET", "/funnel/dropped"): "identity:read",  # lists persons, like its API
    ("GET", "/retention"): "analytics:read",
    ("GET", "/referrals"): "analytics:read",
    ("GET", "/channels"): "analytics:read",
    ("GET", "/scorecard"): "analytics:read",
    # console: campaigns
    ("GET", "/campaigns"): "campaign:read",
    ("GET", "/campaigns/new"): "campaign:write",
    ("POST", "/campaigns/new"): "campaign:write",
    ("GET", "/campaigns/{campaign_id}"): "campaign:read",
    ("GET", "/campaigns/{campaign_id}/edit"): "campaign:write",
    ("POST", "/campaigns/{campaign_id}/edit"): "campaign:write",
    ("GET", "/campaigns/{campaign_id}/poster.png"): "campaign:read",
    ("POST", "/campaigns/{campaign_id}/launch"): "campaign:write",
    ("POST", "/campaigns/{campaign_id}/pause"): "campaign:write",
    ("POST", "/campaigns/{campaign_id}/end"): "campaign:write",
    # console: fraud review
    ("GET", "/fraud"): "fraud:read",
    ("GET", "/fraud/cases/{case_id}"): "fraud:read",
    ("POST", "/fraud/cases/{case_id}/approve"): "fraud:review",
    ("POST", "/fraud/cases/{case_id}/reject"): "fraud:review",
    ("POST", "/fraud/bulk"): "fraud:review",
    ("POST", "/fraud/sync"): "fraud:review",
    # console: models (LTV pages show person ids: segments:read, as the menu says)
    ("GET", "/ltv"): "segments:read",
    ("POST", "/ltv/refit"): "models:write",
    ("GET", "/ltv/refit"): "segments:read",
    ("GET", "/attribution"): "analytics:read",  # computes and keeps the report like the API's GET
    ("GET", "/attribution/status"): "analytics:read",
    ("GET", "/experiments"): "analytics:read",
    ("POST", "/experiments"): "models:write",  # reads out and keeps an experiment
    ("GET", "/experiments/plan"): "analytics:read",
    # ingestion
    ("POST", "/api/v1/events/batch"): "ingest:write",
    ("POST", "/api/v1/orders/batch"): "ingest:write",
    # identity
    ("GET", "/api/v1/persons/lookup"): "identity:read",
    ("GET", "/api/v1/persons/{person_id}"): "identity:read",
    ("POST", "/api/v1/identities/link"): "identity:write",
    # quality
    ("GET", "/api/v1/quality/report"): "quality:read",
    # campaigns (operators)
    ("POST", "/api/v1/campaigns"): "campaign:write",
    ("GET", "/api/v1/campaigns"): "campaign:read",
    ("GET", "/api/v1/campaigns/{campaign_id}"): "campaign:read",
    ("PUT", "/api/v1/campaigns/{campaign_id}"): "campaign:write",
    ("GET", "/api/v1/campaigns/{campaign_id}/versions"): "campaign:read",
    ("POST", "/api/v1/campaigns/{campaign_id}/launch"): "campaign:write",
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): "campaign:write",
    ("POST", "/api/v1/campaigns/{campaign_id}/end"): "campaign:write",
    ("GET", "/api/v1/campaigns/{campaign_id}/compliance"): "campaign:read",
    ("GET", "/api/v1/campaigns/{campaign_id}/audit"): "campaign:read",
    ("GET", "/api/v1/campaigns/{campaign_id}/referrals"): "campaign:read",
    ("POST", "/api/v1/campaigns/{campaign_id}/refunds"): "campaign:write",
    ("POST", "/api/v1/campaigns/{campaign_id}/claims"): "campaign:write",
    # campaigns (front ends: the public key)
    ("POST", "/api/v1/campaigns/{campaign_id}/invites"): "frontend",
    ("GET", "/api/v1/invites/{code}"): "frontend",
    ("GET", "/api/v1/invites/{code}/poster.png"): "frontend",
    # a tapped link carries no header: anonymous, rate-limited per client
    ("GET", "/i/{code}"): ANONYMOUS,
    ("POST", "/api/v1/invites/accept"): "frontend",
    ("POST", "/api/v1/campaigns/{campaign_id}/conversions"): "frontend",
    # trusted orders: shops' servers sign their callbacks (no key); operators manage the shops
    ("POST", "/api/v1/orders/callback"): ANONYMOUS,
    ("POST", "/api/v1/orders/shops"): "campaign:write",
    ("GET", "/api/v1/orders/shops"): "campaign:read",
    ("DELETE", "/api/v1/orders/shops/{shop_id}"): "campaign:write",
    ("GET", "/api/v1/campaigns/{campaign_id}/progress"): "frontend",
    ("GET", "/api/v1/campaigns/{campaign_id}/leaderboard"): "frontend",
    ("GET", "/api/v1/my/rewards"): "frontend",
    # rewards, ledger, payouts, webhooks
    ("GET", "/api/v1/rewards"): "rewards:read",
    ("GET", "/api/v1/rewards/{reward_id}"): "rewards:read",
    ("POST", "/api/v1/rewards/{reward_id}/approve"): "rewards:write",
    ("POST", "/api/v1/rewards/{reward_id}/issue"): "rewards:write",
    ("POST", "/api/v1/rewards/{reward_id}/redeem"): "rewards:write",
    ("POST", "/api/v1/rewards/{reward_id}/reject"): "rewards:write",
    ("POST", "/api/v1/rewards/{reward_id}/revoke"): "rewards:write",
    ("POST", "/api/v1/rewards/{reward_id}/review-hold"): "fraud:review",
    ("GET", "/api/v1/ledger/verify"): "rewards:read",
    ("GET", "/api/v1/ledger/entries"): "rewards:read",
    ("GET", "/api/v1/ledger/balances"): "rewards:read",
    ("POST", "/api/v1/ledger/release"): "rewards:write",
    ("GET", "/api/v1/payouts/export"): "rewards:write",
    ("POST", "/api/v1/payouts/issue"): "rewards:write",
    ("POST", "/api/v1/webhooks/endpoints"): "rewards:write",
    ("GET", "/api/v1/webhooks/endpoints"): "rewards:read",
    ("GET", "/api/v1/webhooks/endpoints/{endpoint_id}"): "rewards:read",
    ("PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"): "rewards:write",
    ("DELETE", "/api/v1/webhooks/endpoints/{endpoint_id}"): "rewards:write",
    ("GET", "/api/v1/webhooks/deliveries"): "rewards:read",
    ("GET", "/api/v1/webhooks/deliveries/{delivery_id}"): "rewards:read",
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"): "rewards:write",
    ("POST", "/api/v1/webhooks/deliver"): "rewards:write",
    # fraud
    ("GET", "/api/v1/fraud/cases"): "fraud:read",
    ("GET", "/api/v1/fraud/cases/{case_id}"): "fraud:read",
    ("POST", "/api/v1/fraud/cases/{case_id}/approve"): "fraud:review",
    ("POST", "/api/v1/fraud/cases/{case_id}/reject"): "fraud:review",
    ("POST", "/api/v1/fraud/cases/bulk"): "fraud:review",
    ("GET", "/api/v1/fraud/rate"): "fraud:read",
    ("GET", "/api/v1/fraud/reasons"): "fraud:read",
    ("GET", "/api/v1/fraud/persons/{person_id}"): "fraud:read",
    ("POST", "/api/v1/fraud/scan"): "fraud:review",
    # analytics (aggregates)
    ("GET", "/api/v1/analytics/kpis"): "analytics:read",
    ("GET", "/api/v1/analytics/funnel"): "analytics:read",
    ("GET", "/api/v1/analytics/funnel/dropped"): "identity:read",  # lists persons, not an aggregate
    ("GET", "/api/v1/analytics/retention"): "analytics:read",
    ("GET", "/api/v1/analytics/revenue"): "analytics:read",
    ("GET", "/api/v1/analytics/referral-tree"): "analytics:read",
    ("GET", "/api/v1/analytics/channels"): "analytics:read",
    ("GET", "/api/v1/analytics/scorecard"): "analytics:read",
    ("GET", "/api/v1/analytics/benchmarks"): "analytics:read",
    # predictive models and experiments
    ("POST", "/api/v1/predict/ltv"): "models:write",
    ("POST", "/api/v1/predict/lifecycle"): "models:write",
    ("POST", "/api/v1/predict/churn"): "models:write",
    ("GET", "/api/v1/predict/churn/risk"): "segments:read",
    ("POST", "/api/v1/predict/segments"): "models:write",
    ("GET", "/api/v1/predict/attribution"): "analytics:read",
    ("GET", "/api/v1/predict/models"): "analytics:read",
    ("POST", "/api/v1/predict/experiments/assign"): "analytics:read",  # a pure hash, stores nothing
    ("GET", "/api/v1/predict/experiments/plan"): "analytics:read",
    ("POST", "/api/v1/predict/experiments/readout"): "analytics:read",
    ("POST", "/api/v1/predict/simulate"): "analytics:read",
    # tags
    ("GET", "/api/v1/tags/features"): "analytics:read",
    ("POST", "/api/v1/tags/validate"): "analytics:read",
    ("GET", "/api/v1/tags"): "analytics:read",
    ("POST", "/api/v1/tags"): "models:write",
    ("POST", "/api/v1/tags/defaults"): "models:write",
    ("POST", "/api/v1/tags/recompute"): "models:write",
    ("GET", "/api/v1/tags/runs"): "analytics:read",
    ("GET", "/api/v1/tags/persons/{person_id}"): "segments:read",
    ("GET", "/api/v1/tags/history"): "analytics:read",
    ("GET", "/api/v1/tags/{name}/members"): "segments:read",
    ("DELETE", "/api/v1/tags/{name}"): "models:write",
    # privacy
    ("GET", "/api/v1/privacy/notices"): "privacy:read",
    ("GET", "/api/v1/privacy/notices/current"): "frontend",
    ("POST", "/api/v1/privacy/notices"): "privacy:admin",
    ("POST", "/api/v1/privacy/consents"): "consent:record",
    ("GET", "/api/v1/privacy/consents/{person_id}"): "privacy:read",
    ("GET", "/api/v1/privacy/inventory"): "privacy:read",
    ("POST", "/api/v1/privacy/requests/export"): "privacy:dsr",
    ("POST", "/api/v1/privacy/requests/delete"): "privacy:dsr",
    ("GET", "/api/v1/privacy/requests"): "privacy:dsr",
    ("POST", "/api/v1/privacy/persons/{person_id}/reveal"): "pii:reveal",
    # auth
    ("POST", "/api/v1/auth/login"): ANONYMOUS,
    ("POST", "/api/v1/auth/logout"): ANONYMOUS,
    ("GET", "/api/v1/auth/me"): "console:view",
    ("GET", "/api/v1/auth/users"): "auth:admin",
    ("POST", "/api/v1/auth/users"): "auth:admin",
    ("PATCH", "/api/v1/auth/users/{username}"): "auth:admin",
    ("GET", "/api/v1/auth/keys"): "auth:admin",
    ("POST", "/api/v1/auth/keys"): "auth:admin",
    ("DELETE", "/api/v1/auth/keys/{key_id}"): "auth:admin",
    ("GET", "/api/v1/auth/policy"): "auth:admin",
    ("GET", "/api/v1/auth/audit"): "audit:read",
    ("GET", "/api/v1/auth/audit/verify"): "audit:read",
    ("GET", "/api/v1/auth/audit/export"): "audit:read",
    # monitoring and alerts: analysts read, operators run the lifecycle and the rules
    ("GET", "/api/v1/monitor/rules"): "analytics:read",
    ("POST", "/api/v1/monitor/rules"): "campaign:write",
    ("POST", "/api/v1/monitor/rules/defaults"): "campaign:write",
    ("PATCH", "/api/v1/monitor/rules/{rule_id}"): "campaign:write",
    ("DELETE", "/api/v1/monitor/rules/{rule_id}"): "campaign:write",
    ("POST", "/api/v1/monitor/rules/evaluate"): "campaign:write",  # may auto-adjust campaigns
    ("GET", "/api/v1/monitor/alerts"): "analytics:read",
    ("GET", "/api/v1/monitor/alerts/{alert_id}"): "analytics:read",
    ("POST", "/api/v1/monitor/alerts/{alert_id}/acknowledge"): "campaign:write",
    ("POST", "/api/v1/monitor/alerts/{alert_id}/resolve"): "campaign:write",
    ("POST", "/api/v1/monitor/escalate"): "campaign:write",
    ("GET", "/api/v1/monitor/channels"): "analytics:read",
    ("POST", "/api/v1/monitor/channels"): "campaign:write",
    ("GET", "/api/v1/monitor/deliveries"): "analytics:read",
    ("POST", "/api/v1/monitor/scan"): "analytics:read",  # computes; opens alerts only when asked
    ("GET", "/api/v1/monitor/series"): "analytics:read",
    ("GET", "/api/v1/monitor/series/live"): "analytics:read",
    # community health
    ("GET", "/api/v1/community/groups"): "analytics:read",
    ("GET", "/api/v1/community/negative"): "analytics:read",
    ("GET", "/api/v1/community/contributors"): "segments:read",  # person ids
    ("POST", "/api/v1/community/sentiment"): "analytics:read",
    # WeCom: WeCom itself calls the callback; its authentication is the msg_signature (wecom.crypto),
    # checked with the replay window and nonce store in wecom.service — no operator login.
    ("GET", "/api/v1/wecom/callback"): ANONYMOUS,
    ("POST", "/api/v1/wecom/callback"): ANONYMOUS,
    ("POST", "/api/v1/wecom/contact-ways"): "campaign:write",
    ("GET", "/api/v1/wecom/contact-ways"): "campaign:read",
    ("GET", "/api/v1/wecom/contact-ways/{state}"): "campaign:read",
    ("PUT", "/api/v1/wecom/contact-ways/{state}"): "campaign:write",
    ("DELETE", "/api/v1/wecom/contact-ways/{state}"): "campaign:write",
    ("GET", "/api/v1/wecom/follows"): "identity:read",  # person-level
    ("GET", "/api/v1/wecom/groups/{chat_id}/members"): "identity:read",  # person-level
    ("GET", "/api/v1/wecom/callbacks"): "identity:read",  # carries external_userids
    # journeys (marketing automation): they contact persons, so defining and running them is campaign work
    ("POST", "/api/v1/journeys"): "campaign:write",
    ("GET", "/api/v1/journeys"): "campaign:read",
    ("GET", "/api/v1/journeys/{journey_id}"): "campaign:read",
    ("POST", "/api/v1/journeys/{journey_id}/pause"): "campaign:write",
    ("POST", "/api/v1/journeys/{journey_id}/resume"): "campaign:write",
    ("POST", "/api/v1/journeys/{journey_id}/run"): "campaign:write",
    ("GET", "/api/v1/journeys/{journey_id}/stats"): "campaign:read",
    # reports: reading one is analytics; sending data to addresses and setting targets is not
    ("GET", "/api/v1/reports/report.json"): "analytics:read",
    ("GET", "/api/v1/reports/report.html"): "analytics:read",
    ("GET", "/api/v1/reports/report.xlsx"): "analytics:read",
    ("GET", "/api/v1/reports/targets"): "analytics:read",
    ("GET", "/api/v1/reports/documents"): "analytics:read",
    ("POST", "/api/v1/reports/documents"): "reports:write",
    ("GET", "/api/v1/reports/documents/{document_id}"): "analytics:read",
    ("GET", "/api/v1/reports/documents/{document_id}/report.html"): "analytics:read",
    ("GET", "/api/v1/reports/documents/{document_id}/report.xlsx"): "analytics:read",
    ("POST", "/api/v1/reports/targets"): "reports:write",
    ("DELETE", "/api/v1/reports/targets/{target_id}"): "reports:write",
    ("GET", "/api/v1/reports/subscriptions"): "reports:write",  # recipients' addresses
    ("POST", "/api/v1/reports/subscriptions"): "reports:write",
    ("DELETE", "/api/v1/reports/subscriptions/{subscription_id}"): "reports:write",
    ("GET", "/api/v1/reports/runs"): "reports:write",
    ("POST", "/api/v1/reports/send-due"): "reports:write",
}

# CLI command paths (as typed, without options) → permission. `liebian auth …` for users and keys.
COMMANDS: dict[str, str] = {
    "db upgrade": "auth:admin",
    "db current": "auth:admin",
    "db warehouse": "auth:admin",
    "import events": "ingest:write",
    "import orders": "ingest:write",
    "import identities": "identity:write",
    "import messages": "ingest:write",
    "identity show": "identity:read",
    "identity link": "identity:write",
    "identity sync": "identity:write",
    "quality report": "quality:read",
    # `make demo` must work again after the server created the first admin; the demo refuses a data
    # directory holding other data unless --force, and whoever runs it can delete the directory anyway
    "demo": ANONYMOUS,
    "serve": ANONYMOUS,  # grants nothing by itself: the server checks every request
    "campaign create": "campaign:write",
    "campaign edit": "campaign:write",
    "campaign launch": "campaign:write",
    "campaign pause": "campaign:write",
    "campaign end": "campaign:write",
    "campaign list": "campaign:read",
    "campaign show": "campaign:read",
    "campaign compliance": "campaign:read",
    "campaign poster": "frontend",
    "campaign leaderboard": "campaign:read",
    "campaign close-due": "campaign:write",
    "campaign flush": "campaign:write",
    "ledger verify": "rewards:read",
    "ledger balances": "rewards:read",
    "ledger export": "rewards:write",
    "ledger issue": "rewards:write",
    "ledger release": "rewards:write",
    "ledger deliver": "rewards:write",
    "ledger replay": "rewards:write",
    "ledger webhooks add": "rewards:write",
    "ledger webhooks list": "rewards:read",
    "ledger webhooks deliveries": "rewards:read",
    "fraud scan": "fraud:review",
    "fraud evaluate": "fraud:review",
    "fraud queue": "fraud:read",
    "fraud show": "fraud:read",
    "fraud approve": "fraud:review",
    "fraud reject": "fraud:review",
    "fraud rate": "fraud:read",
    "fraud reasons": "fraud:read",
    "analyze kpis": "analytics:read",
    "analyze funnel": "analytics:read",
    "analyze dropped": "identity:read",  # lists persons, not an aggregate
    "analyze retention": "analytics:read",
    "analyze revenue": "analytics:read",
    "analyze referral-tree": "analytics:read",
    "analyze channels": "analytics:read",
    "analyze scorecard": "analytics:read",
    "analyze benchmarks": "analytics:read",
    "analyze export-parquet": "identity:read",  # person-level rows
    "predict ltv": "models:write",
    "predict lifecycle": "models:write",
    "predict churn": "models:write",
    "predict risk": "segments:read",
    "predict segments": "models:write",
    "predict attribution": "analytics:read",
    "predict models": "analytics:read",
    "predict ab-assign": "analytics:read",
    "predict ab-plan": "analytics:read",
    "predict ab-readout": "analytics:read",
    "predict simulate": "analytics:read",
    "tags features": "analytics:read",
    "tags check": "analytics:read",
    "tags define": "models:write",
    "tags retire": "models:write",
    "tags list": "analytics:read",
    "tags init": "models:write",
    "tags recompute": "models:write",
    "tags members": "segments:read",
    "tags history": "analytics:read",
    "tags person": "segments:read",
    "privacy notice publish": "privacy:admin",
    "privacy notice list": "privacy:read",
    "privacy consent record": "consent:record",
    "privacy consent show": "privacy:read",
    "privacy inventory": "privacy:read",
    "privacy export": "privacy:dsr",
    "privacy delete": "privacy:dsr",
    "privacy requests": "privacy:dsr",
    "privacy reveal": "pii:reveal",
    "privacy rotate-key": "privacy:dsr",
    "privacy reencrypt": "privacy:dsr",
    "privacy retention": "privacy:dsr",
    "auth create-user": "auth:admin",
    "auth users": "auth:admin",
    "auth set-role": "auth:admin",
    "auth deactivate": "auth:admin",
    "auth reset-password": "auth:admin",
    "auth create-key": "auth:admin",
    "auth keys": "auth:admin",
    "auth revoke-key": "auth:admin",
    "auth policy": "auth:admin",
    "auth whoami": ANONYMOUS,
    "auth audit list": "audit:read",
    "auth audit verify": "audit:read",
    "auth audit export": "audit:read",
    "alerts rules list": "analytics:read",
    "alerts rules add": "campaign:write",
    "alerts rules defaults": "campaign:write",
    "alerts rules disable": "campaign:write",
    "alerts evaluate": "campaign:write",
    "alerts scan": "analytics:read",
    "alerts series": "analytics:read",
    "alerts live": "analytics:read",
    "alerts list": "analytics:read",
    "alerts show": "analytics:read",
    "alerts ack": "campaign:write",
    "alerts resolve": "campaign:write",
    "alerts escalate": "campaign:write",
    "alerts channels add": "campaign:write",
    "alerts channels list": "analytics:read",
    "alerts deliveries": "analytics:read",
    "community health": "analytics:read",
    "community negative": "analytics:read",
    "community contributors": "segments:read",
    "community sentiment": "analytics:read",
    "wecom flush": "campaign:write",
    "wecom contact-ways": "campaign:read",
    "wecom callbacks": "identity:read",
    "journey create": "campaign:write",
    "journey list": "campaign:read",
    "journey run": "campaign:write",
    "journey pause": "campaign:write",
    "journey resume": "campaign:write",
    "journey stats": "campaign:read",
    "report generate": "analytics:read",
    "report keep": "reports:write",
    "report documents": "analytics:read",
    "report document": "analytics:read",
    "report target-add": "reports:write",
    "report targets": "analytics:read",
    "report subscribe": "reports:write",
    "report subscriptions": "reports:write",
    "report send-due": "reports:write",
    "report runs": "reports:write",
    "job run": "auth:admin",
    "job scheduler": "auth:admin",
    "job list": "console:view",
}


def permissions_of(role: str | None) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role or "", frozenset())


def route_permission(method: str, path: str) -> str | None:
    method = "GET" if method == "HEAD" else method
    return ROUTES.get((method, path))


def command_permission(path: str) -> str | None:
    return COMMANDS.get(" ".join(path.split()))


def allowed(granted: frozenset[str] | set[str], permission: str | None, is_admin: bool = False) -> bool:
    """Deny by default: an unmapped route/command is for admin only (and fails the tests)."""
    if permission == ANONYMOUS:
        return True
    if permission is None:
        return is_admin
    return permission in granted
