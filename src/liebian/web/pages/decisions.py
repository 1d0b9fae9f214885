"""An alert's options with their expected effects (liebian.decisions.options), and the button that
turns one into a campaign change proposal (liebian.decisions.service; docs/monitoring.md)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from liebian.auth.deps import principal_of, write_refused
from liebian.db.session import session_scope
from liebian.decisions import options as decision_options
from liebian.decisions import service as decisions
from liebian.errors import DomainError
from liebian.monitor import service as monitor
from liebian.schemas import Int64
from liebian.web.console import flash_fragment, render
from liebian.web.i18n import locale_of, translator

router = APIRouter(include_in_schema=False)


@router.get("/alerts/{alert_id}/options")
def alert_options(request: Request, alert_id: Int64) -> Response:
    """The alert, its evidence and two or three options with effect, range and cost."""
    with session_scope() as s:
        alert = monitor.get_alert(s, alert_id)
        found = decision_options.for_alert(s, alert_id)
    context = {
        "alert": alert,
        "options": found["options"],
        "days": decision_options.HORIZON_DAYS,
        "can_write": principal_of(request).can("campaign:write"),
    }
    return render(request, "decisions/options.html", context)


@router.post("/alerts/{alert_id}/options/propose")
def propose(request: Request, alert_id: Int64, option: str = Form("")) -> Response:
    t = translator(locale_of(request))
    try:
        with session_scope() as s:
            p = decisions.propose(s, alert_id, option, actor=principal_of(request).name)
    except DomainError as exc:
        write_refused(request)  # nothing changed: no http.* audit entry
        return flash_fragment(exc.message_zh if locale_of(request) == "zh-CN" else exc.message, ok=False)
    return flash_fragment(t("decisions.proposed").format(id=p["id"]))
