"""Reports as documents: a table as CSV, the incident report as Markdown or one
self-contained HTML page, and the metrics page with its charts as inline SVG.

Everything here renders what it is given, already limited to what the caller may see
(``security/modules/reports.py`` computes it, the response schema shapes it), so a
document cannot show more than the JSON answer of the same request. The HTML pages
load nothing: styles are inline and the charts are SVG drawn by matplotlib's Agg-side
SVG backend with text as paths, so the page needs no font, script or image from
anywhere. Templates are in ``security/modules/report_templates/``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from models.iocs import HASH_TYPES
from models.vocabulary import SEVERITIES

# No display, and no pyplot state shared between request threads: figures are made with
# matplotlib.figure.Figure directly and rendered by the backend their format names.
matplotlib.use("Agg")

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
CHART_SIZE = (9.0, 3.6)
SEVERITY_COLOURS = {"low": "#8fbf7f", "medium": "#f2c14e", "high": "#f08a4b", "critical": "#d1495b"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~-])")


def _markdown_text(value: Any) -> str:
    """Text shown as itself in Markdown: its punctuation escaped, one line per table cell."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))
    return escaped.replace("\r\n", "<br>").replace("\n", "<br>")


def _timeline_event(entry: Mapping[str, Any]) -> str:
    if entry["kind"] == "status_change":
        return f"status {entry['from_status']} -> {entry['to_status']}"
    if entry["kind"] == "edit":
        return "edited " + ", ".join(sorted(entry["changes"]))
    return str(entry["kind"])


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.1f}"


def _percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction:.0%}"


# HTML templates are autoescaped; the Markdown one is not (it is not HTML), and every
# user-written value in it goes through the ``md`` filter instead.
_TEMPLATES = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_TEMPLATES.filters.update(
    md=_markdown_text, timeline_event=_timeline_event, hours=_hours, percent=_percent
)


def table_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A table's rows as CSV with a header; a row's ``group`` mapping becomes one column per
    grouping (``group_severity``, ...), and a list becomes its items joined by spaces."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = [name for column in columns for name in _flat_names(column, rows)]
    writer.writerow(header)
    for row in rows:
        writer.writerow(_flat_values(row, columns))
    return buffer.getvalue()


def _flat_names(column: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if column != "group":
        return [column]
    return [f"group_{name}" for name in (rows[0]["group"] if rows else {})]


def _flat_values(row: Mapping[str, Any], columns: Sequence[str]) -> list[Any]:
    values: list[Any] = []
    for column in columns:
        value = row[column]
        if column == "group":
            values.extend(value.values())
        elif isinstance(value, list):
            values.append(" ".join(map(str, value)))
        else:
            values.append("" if value is None else value)
    return values


def incident_report(export: Mapping[str, Any], media_type: str) -> str:
    """The incident export (as dumped by its response schema) as Markdown or HTML."""
    context = {
        **export,
        "hashes": [ioc for ioc in export["iocs"] if ioc["type"] in HASH_TYPES],
    }
    name = "incident_report.html" if media_type == "text/html" else "incident_report.md"
    return _TEMPLATES.get_template(name).render(context)


@dataclass(frozen=True)
class Chart:
    title: str
    svg: str


def metrics_page(
    *,
    viewer: str,
    period: Mapping[str, Any],
    by_week_and_severity: Sequence[Mapping[str, Any]],
    by_week: Sequence[Mapping[str, Any]],
    by_severity: Sequence[Mapping[str, Any]],
    noisy_rules: Sequence[Mapping[str, Any]],
) -> str:
    """The charts page: opened and resolved per week by severity, the MTTR trend with
    p50/p90, SLA compliance per week, the noisiest rules, and a table by severity."""
    versions = sorted({version for row in by_severity for version in row["sla_policy_versions"]})
    charts = [
        Chart(
            "Incidents opened per week, by severity", _opened_chart(by_week_and_severity, by_week)
        ),
        Chart("Time to resolve (p50 and p90), per week opened", _mttr_chart(by_week)),
        Chart("SLA compliance, per week opened", _sla_chart(by_week)),
        Chart("Noisiest detection rules", _noisy_rules_chart(noisy_rules)),
    ]
    return _TEMPLATES.get_template("metrics.html").render(
        viewer=viewer,
        created_after=period.get("created_after"),
        created_before=period.get("created_before"),
        policy_versions=versions,
        charts=charts,
        by_severity=by_severity,
    )


def _svg(draw: Callable[[Any], None]) -> str:
    """One chart as an ``<svg>`` element to inline (no XML prolog, no DOCTYPE)."""
    figure = Figure(figsize=CHART_SIZE, layout="constrained")
    axes = figure.add_subplot()
    draw(axes)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    document = buffer.getvalue()
    return document[document.index("<svg") :]


def _weeks(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({row["group"]["week"] for row in rows})


def _no_data(axes: Any) -> None:
    axes.text(0.5, 0.5, "no incidents in this range", ha="center", va="center")
    axes.set_axis_off()


def _opened_chart(
    by_week_and_severity: Sequence[Mapping[str, Any]], by_week: Sequence[Mapping[str, Any]]
) -> str:
    weeks = _weeks(by_week)

    def draw(axes: Any) -> None:
        if not weeks:
            return _no_data(axes)
        bottom = [0] * len(weeks)
        for severity in SEVERITIES:
            counts = {
                row["group"]["week"]: row["opened"]
                for row in by_week_and_severity
                if row["group"]["severity"] == severity
            }
            heights = [counts.get(week, 0) for week in weeks]
            axes.bar(
                weeks, heights, bottom=bottom, label=severity, color=SEVERITY_COLOURS[severity]
            )
            bottom = [low + height for low, height in zip(bottom, heights, strict=True)]
        resolved = [row["resolved"] for row in by_week]
        axes.plot(weeks, resolved, color="#1b1f24", marker="o", label="resolved of those")
        axes.set_ylabel("incidents")
        axes.legend(loc="upper left", fontsize="small")
        axes.tick_params(axis="x", labelrotation=45)

    return _svg(draw)


def _mttr_chart(by_week: Sequence[Mapping[str, Any]]) -> str:
    def draw(axes: Any) -> None:
        if not by_week:
            return _no_data(axes)
        weeks = _weeks(by_week)
        for key, label in (("mttr_p50_seconds", "p50"), ("mttr_p90_seconds", "p90")):
            hours = [_as_hours(row[key]) for row in by_week]
            axes.plot(weeks, hours, marker="o", label=label)
        axes.set_ylabel("hours")
        axes.legend(loc="upper left", fontsize="small")
        axes.tick_params(axis="x", labelrotation=45)

    return _svg(draw)


def _sla_chart(by_week: Sequence[Mapping[str, Any]]) -> str:
    def draw(axes: Any) -> None:
        if not by_week:
            return _no_data(axes)
        weeks = _weeks(by_week)
        for key, label in (
            ("response_sla_compliance", "response"),
            ("resolution_sla_compliance", "resolution"),
        ):
            percent = [None if row[key] is None else row[key] * 100 for row in by_week]
            axes.plot(weeks, percent, marker="o", label=label)
        axes.set_ylim(0, 105)
        axes.set_ylabel("% within target")
        axes.legend(loc="lower left", fontsize="small")
        axes.tick_params(axis="x", labelrotation=45)

    return _svg(draw)


def _noisy_rules_chart(rows: Sequence[Mapping[str, Any]]) -> str:
    def draw(axes: Any) -> None:
        if not rows:
            axes.text(0.5, 0.5, "no alerts in this range", ha="center", va="center")
            return axes.set_axis_off()
        names = [str(row["rule"]) for row in reversed(rows)]
        alerts = [row["alerts"] for row in reversed(rows)]
        escalated = [row["escalated"] for row in reversed(rows)]
        axes.barh(names, alerts, color="#f08a4b", label="alerts")
        axes.barh(names, escalated, color="#4b8ff0", label="escalated")
        axes.set_xlabel("alerts")
        axes.legend(loc="lower right", fontsize="small")

    return _svg(draw)


def _as_hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600
