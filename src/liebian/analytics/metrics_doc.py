"""docs/metrics.md's metric tables, generated from the metric catalogue (analytics/catalogue.py).

The page's prose (conventions, funnel, cohorts…) is hand-written around one generated block between
`BEGIN` and `END`; `python -m liebian.analytics.metrics_doc --write` regenerates the block, `--check`
fails when the page differs from what the catalogue generates (a test runs the check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liebian.analytics import catalogue
from liebian.analytics.catalogue import Metric

BEGIN = (
    "<!-- metrics:begin — generated from src/liebian/analytics/catalogue.py; edit the catalogue, not this -->"
)
END = "<!-- metrics:end -->"
DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(m: Metric) -> str:
    unit = catalogue.UNIT_NAMES[m.unit][1]
    cells = (f"`{m.key}`", f"{m.zh} {m.en}", unit, m.formula, m.population, m.time, m.filters)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _section(name: str, metrics: tuple[Metric, ...]) -> list[str]:
    zh, en = catalogue.SECTIONS[name]
    lines = [
        f"### {zh} {en}",
        "",
        "| Key | 名称 Name | Unit | Formula | Population | Time | Default filters |",
        "|---|---|---|---|---|---|---|",
        *(_row(m) for m in metrics),
    ]
    differs = [m for m in metrics if m.differs]
    if differs:
        lines += ["", "Where these differ from PostHog and the source plans, and why:", ""]
        lines += [f"- **{m.key}** ({m.zh}). {m.differs}" for m in differs]
    return [*lines, ""]


def generated_block() -> str:
    """The generated part of docs/metrics.md, markers included."""
    metrics = catalogue.METRICS
    lines = [
        BEGIN,
        "",
        "Units: **count**; **fen** (integer CNY fen, averages with decimals); **ratio** (a quotient that "
        "can exceed 1, shown as a number); **probability** (a count of persons over a count that contains "
        "it, in [0, 1] for any data, the only unit shown as a percentage); **days**. A rate whose base is "
        "0 is null (n/a), never 0. Retention is listed for the default days (1, 7, 30); any N of "
        "`MetricConfig.retention_days` is defined the same way.",
        "",
        "Named counts the formulas use besides the metrics themselves (`kpis.kpi_counts`): "
        + "; ".join(f"`{k}` = {v}" for k, v in catalogue.INPUT_COUNTS.items())
        + ".",
        "",
    ]
    for name in catalogue.SECTIONS:
        lines += _section(name, tuple(m for m in metrics if m.section == name))
    sheet = ", ".join(f"`{m.key}`" for m in catalogue.sheet_metrics())
    lines += [
        f"The KPI sheet (`kpis`, `GET /api/v1/analytics/kpis`, `liebian analyze kpis`) holds: {sheet}.",
        "",
    ]
    return "\n".join([*lines, END])


def render(current: str) -> str:
    """`current` (the page) with its generated block replaced by the catalogue's."""
    if BEGIN not in current or END not in current:
        raise ValueError(f"{DOC.name}: the generated-block markers are missing")
    head, rest = current.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return head + generated_block() + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite docs/metrics.md's generated block")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/metrics.md is out of date")
    args = parser.parse_args(argv)
    current = DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if args.write:
        DOC.write_text(wanted, encoding="utf-8")
        return 0
    if args.check:
        if wanted != current:
            print(f"{DOC} differs from the catalogue: run python -m liebian.analytics.metrics_doc --write")
            return 1
        return 0
    sys.stdout.write(generated_block() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
