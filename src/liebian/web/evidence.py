"""Fraud evidence in the console's language.

The fraud rules (fraud/inline.py, fraud/graph.py) record each reason's evidence as a short English
sentence with its numbers ("34 invitees of 5591… on 3 devices"). The console says it in zh-CN or
English from the catalogue (`fraud.detail.<name>`), the numbers and ids taken from the sentence;
evidence of a shape not listed here is shown as recorded.
"""

from __future__ import annotations

import re

from liebian.web.i18n import translator

# name → the English evidence of the rules, with the values as named groups
SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("same_person", r"^inviter and friend resolve to one person$"),
        ("registered", r"^(?P<id_type>\S+) registered to the inviter$"),
        ("device_before", r"^the inviter used this device before$"),
        ("ip_ua", r"^the inviter was seen with this IP and user agent$"),
        ("velocity", r"^(?P<n>\d+) accepts for this inviter within (?P<minutes>[\d.]+) min$"),
        ("device_burst", r"^(?P<n>\d+) new accounts from this device$"),
        ("ip_burst", r"^(?P<n>\d+) new accounts from this IP$"),
        ("prefix", r"^prefix (?P<prefix>\d+)$"),
        ("device_not_new", r"^the device was used by another account before$"),
        ("scope_cap", r"^more than (?P<cap>\d+) friends from one (?P<scope>\w+)$"),
        ("cap_hit", r"^friend (?P<n>\d+) for an inviter capped at (?P<cap>\d+)$"),
        ("circular_before", r"^the friend invited the inviter before$"),
        ("self_clicks", r"^the inviter opened their own link (?P<n>\d+) times$"),
        ("farm_member", r"^(?P<n>\d+) invitees of (?P<inviter>\S+) on (?P<devices>\d+) devices$"),
        ("farm_inviter", r"^(?P<n>\d+) invitees on (?P<devices>\d+) devices$"),
        ("star", r"^(?P<n>\d+) invitees, (?P<pct>\d+)% churned same day$"),
        ("star_invitee", r"^inviter (?P<inviter>\S+)$"),
        ("cycle", r"^cycle of (?P<n>\d+) persons$"),
        ("crowded_device", r"^device shared by (?P<n>\d+) persons$"),
        ("anomaly", r"^strength (?P<strength>[\d.]+)$"),
        ("held_inline", r"^held inline, score (?P<score>[\d.]+)$"),
    )
)


def evidence(text: str | None, locale: str) -> str:
    """A recorded piece of evidence (or audit note) in `locale`; unknown shapes as recorded."""
    if not text:
        return ""
    t = translator(locale)
    for name, shape in SHAPES:
        found = shape.match(text.strip())
        if found:
            values = found.groupdict()
            if "scope" in values:
                values["scope"] = t(f"fraud.detail.scope.{values['scope']}")
            return t(f"fraud.detail.{name}").format(**values)
    return text
