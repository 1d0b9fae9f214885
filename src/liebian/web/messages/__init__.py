"""The console's message catalogue: every user-facing string of the console, key → (Simplified
Chinese, English), one module per page group. Data only: nothing adds to it at import or later."""

from __future__ import annotations

from types import MappingProxyType

from liebian.web.messages import analytics, campaigns, core, data, models, operations, stages

GROUPS = (core, analytics, models, campaigns, operations, data, stages)

# Read-only: a page that wants another message adds it to its group's module, never at run time.
CATALOGUE: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {key: texts for group in GROUPS for key, texts in group.MESSAGES.items()}
)
