"""Console messages of the holiday calendar (liebian/calendar.py) where pages show it.

Key → (Simplified Chinese, English); i18n reads them through liebian.web.messages.CATALOGUE."""

MESSAGES: dict[str, tuple[str, str]] = {
    # web/pages/data.py: a volume anomaly on a calendar day is labelled, not an error
    "calendar.explained_by": ("节假日/大促", "Holiday / promotion"),
}
