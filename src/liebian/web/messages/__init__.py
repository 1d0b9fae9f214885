"""The console's message catalogue: every user-facing string of the console, key → (Simplified
Chinese, English), one module per page group. Data only: nothing adds to it at import or later."""

from __future__ import annotations

from types import MappingProxyType

from liebian.web.messages import (
    account,
    analytics,
    calendar,
    campaigns,
    ccamp,
    codes,
    community,
    complaints,
    core,
    costs,
    cpeople,
    data,
    decisions,
    fraud_review,
    insights,
    l10n_fix,
    metrics,
    models,
    operations,
    plans,
    stages,
)

GROUPS = (
    core,
    analytics,
    models,
    campaigns,
    operations,
    data,
    stages,
    calendar,
    metrics,
    complaints,
    fraud_review,
    costs,
    community,
    decisions,
    account,
    codes,
    insights,
    cpeople,
    ccamp,
    plans,
    l10n_fix,
)

# Read-only: a page that wants another message adds it to its group's module, never at run time.
CATALOGUE: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {key: texts for group in GROUPS for key, texts in group.MESSAGES.items()}
)
