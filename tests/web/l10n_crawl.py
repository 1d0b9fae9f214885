"""What the localisation crawl reads on a console page, and what it allows.

A page's words are its visible text (`innerText`) minus what is not the console's own language:
code samples (<code>, <pre>, <kbd>, <samp>), data values marked `translate="no"` (campaign titles,
user names, ids, imported values) and text marked with another `lang` (the language switch). In
the Chinese console no English word may remain outside ALLOWED_EN; in the English console no
Chinese character outside ALLOWED_ZH. A legitimate new brand, unit or product name is added to
the allow-list here, and nothing else needs to change.
"""

from __future__ import annotations

import re

from liebian.web.messages import CATALOGUE

# Every console page, and some of their states (filters applied); the tests add pages of arranged states.
PAGES = [
    "/", "/funnel", "/retention", "/referrals", "/channels", "/scorecard", "/ltv", "/attribution",
    "/experiments", "/campaigns", "/campaigns/new", "/fraud", "/alerts", "/reports", "/journeys",
    "/journeys/new", "/quality", "/import", "/settings", "/password", "/community", "/complaints", "/costs",
    "/rewards", "/rewards?state=all", "/people", "/people?q=138",
    # filters applied
    "/?channel=douyin", "/funnel?channel=wecom", "/channels?start=2026-10-01&end=2026-10-31",
    "/fraud?status=open", "/quality?start=2026-10-01&end=2026-10-31", "/campaigns?status=live",
    "/insights", "/insights?kind=retention", "/insights?kind=trends&event=page_view&event=invite_share",
    "/insights?kind=funnel&step=exposure&step=signup&mode=strict&ex_event=app_open&ex_from=1&ex_to=2&breakdown=channel",
    "/insights/saved", "/dashboards",
    "/journeys/new?example=churn", "/journeys/new?example=segment", "/journeys/new?mode=json",
]  # fmt: skip

# Brand, product and unit names and abbreviations an operator reads as they are in Chinese too.
ALLOWED_EN = frozenset(
    {
        "liebian", "CSV", "Excel", "PNG", "XLSX", "JSONL", "JSON", "HTML", "Parquet", "UTF", "BOM", "GBK",
        "GB", "MB", "KB", "LTV", "CAC", "ROI", "GMV", "AOV", "DAU", "MAU", "ID", "IP", "API", "URL",
        "Webhook", "OneID", "K-Means", "BG", "NBD", "Gamma-Gamma", "RFM", "SMART", "App", "vs", "SMS",
        "HMAC", "UTC", "CST", "P95", "SHA", "HTTPS", "H5", "QR", "PDF", "A/B", "AB", "KOC", "KOL",
        "UV", "PV", "SKU", "UID", "UTF-8", "GB18030", "NPS", "UGC", "P10", "P90",
    }
)  # fmt: skip
ALLOWED_ZH = frozenset({"裂变"})  # the brand of the product, in both consoles

# innerText of the page, minus code, data values and other-language text (see the docstring).
PAGE_TEXT = """(lang) => {
  const copy = document.body.cloneNode(true);
  const drop = 'code, pre, kbd, samp, script, style, template, [translate="no"], [hidden]';
  copy.querySelectorAll(drop).forEach((el) => el.remove());
  copy.querySelectorAll('[lang]').forEach((el) => { if (el.lang !== lang) el.remove(); });
  copy.style.position = 'absolute'; copy.style.left = '-99999px';
  document.documentElement.appendChild(copy);
  const text = copy.innerText;
  copy.remove();
  return text;
}"""

ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")
CHINESE = re.compile(r"[\u3400-\u9fff]+")
_NAMESPACES = {key.split(".", 1)[0] for key in CATALOGUE}
RAW_KEY = re.compile(r"\b([a-z][a-z0-9_]*)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\b")


def raw_keys(text: str) -> list[str]:
    """Message keys shown as they are (a translation missing from the catalogue)."""
    return [m.group(0) for m in RAW_KEY.finditer(text) if m.group(1) in _NAMESPACES]


def foreign_words(text: str, locale: str) -> list[str]:
    if locale == "zh-CN":
        words = ENGLISH_WORD.findall(text)
        return [w for w in words if len(w) > 1 and w not in ALLOWED_EN and not w.isdigit()]
    return [w for w in CHINESE.findall(text) if w not in ALLOWED_ZH]


def problems_of(page, locale: str) -> dict[str, list[str]]:
    text = page.evaluate(PAGE_TEXT, locale)
    found = {"foreign": sorted(set(foreign_words(text, locale))), "raw_keys": sorted(set(raw_keys(text)))}
    return {k: v for k, v in found.items() if v}
