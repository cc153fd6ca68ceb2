"""The finance report's page: string.Template over pipeline/publish/report_template.html, from
the few aggregate rows pipeline/publish/report.py reads. Every value goes through html.escape."""
from __future__ import annotations

import datetime
import html
import math
from decimal import Decimal
from importlib import resources
from string import Template
from typing import Any

from pipeline.publish import leaderboard, root_cause

PEOPLE_FILE = "wasted_by_person.csv"

TOP_TEAMS = 10
TOP_PEOPLE = 15
CHART_WIDTH = 720
MINUS = "\u2212"


def render_html(data: dict[str, Any], *, db_name: str = "") -> str:
    """The report page from `_report_data`'s aggregates (a few dozen rows at most)."""
    template = Template(resources.files("pipeline.publish").joinpath("report_template.html").read_text(encoding="utf-8"))
    s = data["summary"]
    weeks, teams, models = data["weeks"], data["teams"], data["models"]
    min_team_size = int(s["min_team_size"])
    merged = int(s["teams_merged_into_other"])
    charted_teams = [t for t in teams if t["wasted_cost_usd"] > 0][:TOP_TEAMS]
    charted_models = [m for m in models if m["wasted_cost_usd"] > 0]
    return template.substitute(
        title=escape(f"Wasted AI compute, {_period(s)}"),
        meta=_meta(s, data["run"]),
        cards=_cards(s),
        notes="\n".join(f'<p class="note">{escape(n)}</p>' for n in (_unpriced_note(s), _partial_note(s, weeks)) if n),
        share_chart=_share_chart(s),
        share_caption=escape(
            f"{_money(s['wasted_cost_usd'])} of {_money(s['total_cost_usd'])} total AI spend "
            f"({_pct(s['wasted_share'])}) went on work the detectors found produced nothing."
        ),
        week_chart=_week_chart(weeks),
        week_caption=escape(_week_caption(weeks)),
        week_table=_week_table(weeks),
        team_chart=_hbar_chart("chart-team", "Wasted cost by team", [(t["team"], t["wasted_cost_usd"]) for t in charted_teams]),
        team_caption=escape(
            (f"The top {TOP_TEAMS} of {len(teams)} teams by wasted cost." if len(charted_teams) == TOP_TEAMS
             else f"{len(charted_teams)} of {len(teams)} teams have wasted cost.")
            + f" Teams with fewer than {min_team_size} people are reported together as \u201cother\u201d"
            + f" ({merged} team{'s' if merged != 1 else ''} merged)."
        ),
        team_table=_team_table(teams),
        team_note=_flags_without_waste_note(s, teams, data["flags_without_waste"], data["rules"]),
        model_chart=_hbar_chart("chart-model", "Wasted cost by model", [(m["model"], m["wasted_cost_usd"]) for m in charted_models]),
        model_table=_model_table(models),
        people_section=_people_section(data["people"]),
        root_cause_section=root_cause.html_section(data.get("root_cause")),
        leaderboard_section=leaderboard.html_section(data.get("leaderboard")),
        method=_method(min_team_size, people=data["people"] is not None),
        footer=escape(
            f"Goodhart report of run {s['run_id'] or 'none'}"
            + (f" from {db_name}" if db_name else "")
            + ". Same numbers in: " + ", ".join(data["files"]) + "."
        ),
    )


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _money(value: Any) -> str:
    if value is None:
        return "\u2013"
    v = Decimal(str(value)).quantize(Decimal("0.01"))
    sign = MINUS if v < 0 else ""
    return f"{sign}${abs(v):,.2f}"


def _signed_money(value: Any) -> str:
    if value is None:
        return "\u2013"
    return ("+" if value > 0 else "") + _money(value)


def _pct(ratio: Any, digits: int = 1) -> str:
    if ratio is None:
        return "\u2013"
    return f"{float(ratio) * 100:.{digits}f}%"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _period(s: dict[str, Any]) -> str:
    if s["period_start"] is None:
        return "no data"
    return f"{s['period_start']:%d %b %Y} to {s['period_end']:%d %b %Y}"


def _instant(iso: str | None) -> str:
    """'2026-11-01T17:09:23Z' as 'Sun 01 Nov 2026 17:09 UTC'."""
    if not iso:
        return "\u2013"
    return f"{datetime.datetime.fromisoformat(iso):%a %d %b %Y %H:%M} UTC"


def _meta(s: dict[str, Any], run: dict[str, Any] | None) -> str:
    parts = [f"Period: {_period(s)} ({s['weeks']} ISO week{'s' if s['weeks'] != 1 else ''}, Monday to Sunday, UTC)"]
    if s["data_end"]:
        parts.append(f"data to {_instant(s['data_end'])}")
    parts.append(f"Run: {s['run_id'] or 'none'}")
    if run and run.get("ended_at"):
        parts.append(f"finished {run['ended_at']:%Y-%m-%d %H:%M} UTC")
    parts.append(f"{s['people']} people with AI usage in {s['teams']} reported teams")
    return " \u00b7 ".join(escape(p) for p in parts)


def _cards(s: dict[str, Any]) -> str:
    cards = [
        ("Total AI spend", _money(s["total_cost_usd"]), ""),
        ("Wasted cost", _money(s["wasted_cost_usd"]), " waste"),
        ("Share of AI spend", _pct(s["wasted_share"]), " waste"),
        ("Flagged user-weeks", f"{s['flagged_user_weeks']:,} of {s['user_weeks']:,}", ""),
    ]
    return "\n".join(
        f'<div class="card{cls}"><div class="label">{escape(label)}</div><div class="value">{escape(value)}</div></div>'
        for label, value, cls in cards
    )


def _unpriced_note(s: dict[str, Any]) -> str:
    """What the figures leave at $0: requests with no price (summary.csv unpriced_*)."""
    requests, tokens = int(s["unpriced_requests"]), int(s["unpriced_tokens"])
    if not requests:
        return "Every request in the period has a price: no usage is counted at $0."
    models = s["unpriced_models"]
    return (
        f"{_plural(requests, 'request')}, {_plural(tokens, 'token')} of models with no price are counted at $0"
        + (f" ({models})" if models else "")
        + ": the model is not in the price list and the tool reported no cost. They are in every token count"
        " here, wasted tokens included, but add nothing to AI spend or wasted cost."
    )


def _partial_note(s: dict[str, Any], weeks: list[dict[str, Any]]) -> str:
    """Which weeks are partial (not covered on all seven days, or still young) and what that changes."""
    partial = [w for w in weeks if not w["complete"]]
    if not partial:
        return ""
    sentences = []
    for week in partial:
        if week is weeks[-1] and s["data_end"]:
            sentences.append(
                f"The data ends {_instant(s['data_end'])}, inside {week['iso_week']}"
                + (f" ({_coverage(week)})" if week["coverage_days"] < 7 else "")
                + ": that week is partial (young), its usage may still be arriving and flags that need later "
                "evidence (such as deployments) may still come."
            )
        else:
            starts = f", the data starts {_instant(s['data_start'])}" if week is weeks[0] and s["data_start"] else ""
            sentences.append(f"{week['iso_week']} is partial ({_coverage(week)}{starts}).")
    sentences.append(
        "Partial weeks are shown but left out of the trend and of week-over-week changes, so a short week does "
        "not read as a drop."
    )
    return " ".join(sentences)


def _coverage(week: dict[str, Any]) -> str:
    """Why a week is partial: the days it has data on, or that the data ends in it."""
    days = int(week["coverage_days"])
    return f"{days} of 7 days with data" if days < 7 else "the data ends in it"


def _share_chart(s: dict[str, Any]) -> str:
    width, height = CHART_WIDTH, 34
    share = min(max(float(s["wasted_share"] or 0), 0.0), 1.0)
    wasted_w = round(width * share, 1)
    title = f"Wasted {_money(s['wasted_cost_usd'])} of {_money(s['total_cost_usd'])} ({_pct(share)})"
    return (
        f'<svg id="chart-share" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<rect class="rest" x="0" y="4" width="{width}" height="26"><title>{escape("AI spend that shipped or was not flagged")}</title></rect>'
        f'<rect class="bar share" x="0" y="4" width="{wasted_w}" height="26"><title>{escape(title)}</title></rect>'
        f'<text class="value" x="{round(wasted_w + 8, 1)}" y="22">{escape(f"{_pct(share)} wasted")}</text>'
        "</svg>"
    )


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def _axis_money(v: float) -> str:
    """Short dollars for axis ticks and bar labels: $12.34, $1,234, $12.3k."""
    sign, v = (MINUS if v < 0 else ""), abs(float(v))
    if v >= 10_000:
        return f"{sign}${v / 1000:,.1f}k"
    if v >= 100 or v == int(v):
        return f"{sign}${v:,.0f}"
    return f"{sign}${v:,.2f}"


def _week_chart(weeks: list[dict[str, Any]]) -> str:
    if not weeks:
        return '<p class="note">No AI usage in this database.</p>'
    width, height, left, right, top, bottom = CHART_WIDTH, 280, 64, 16, 14, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(w["wasted_cost_usd"]) for w in weeks]
    trend = [(i, float(w["trend_wasted_cost_usd"])) for i, w in enumerate(weeks) if w["trend_wasted_cost_usd"] is not None]
    trend_values = [v for _, v in trend]
    step = _nice_step(max(values + trend_values + [0.0]) - min(trend_values + [0.0]))
    lo = math.floor(min(trend_values + [0.0]) / step) * step
    hi = max(math.ceil(max(values + trend_values + [0.0]) / step) * step, lo + step)

    def y(v: float) -> float:
        return round(top + (hi - v) / (hi - lo) * plot_h, 1)

    out = [
        f'<svg id="chart-week" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape("Wasted cost by week, bars, with a least-squares trend line over the complete weeks")}">'
    ]
    tick = lo
    while tick <= hi + step / 1000:
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(tick)}" y2="{y(tick)}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{escape(_axis_money(tick))}</text>')
        tick += step
    band = plot_w / len(weeks)
    bar_w = round(max(band * 0.62, 1.0), 1)
    label_every = max(1, math.ceil(len(weeks) / 12))
    for i, (week, value) in enumerate(zip(weeks, values)):
        x = round(left + i * band + (band - bar_w) / 2, 1)
        top_y, base_y = y(max(value, 0.0)), y(0.0)
        partial = not week["complete"]
        tip = (
            f"week of {week['week_start']:%Y-%m-%d} ({week['iso_week']}): wasted {_money(week['wasted_cost_usd'])}, "
            f"{_pct(week['wasted_share'])} of {_money(week['cost_usd'])}"
            + (f"; partial week ({_coverage(week)}), not final" if partial else "")
        )
        out.append(
            f'<rect class="bar{" partial" if partial else ""}" data-week="{escape(week["week_start"])}" x="{x}" y="{top_y}" '
            f'width="{bar_w}" height="{round(base_y - top_y, 1)}"><title>{escape(tip)}</title></rect>'
        )
        cx = round(left + i * band + band / 2, 1)
        if len(weeks) <= 16:
            label = _axis_money(value) + (" (partial)" if partial else "")
            out.append(f'<text class="value" x="{cx}" y="{top_y - 4}" text-anchor="middle">{escape(label)}</text>')
        if i % label_every == 0:
            day, iso = f"{week['week_start']:%d %b}", week["iso_week"][-3:]
            out.append(f'<text class="tick" x="{cx}" y="{height - bottom + 16}" text-anchor="middle">{escape(day)}</text>')
            out.append(f'<text class="tick" x="{cx}" y="{height - bottom + 30}" text-anchor="middle">{escape(iso)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0.0)}" y2="{y(0.0)}"/>')
    if len(trend) >= 2:
        (i1, v1), (i2, v2) = trend[0], trend[-1]
        x1, x2 = round(left + (i1 + 0.5) * band, 1), round(left + (i2 + 0.5) * band, 1)
        slope = weeks[0]["trend_usd_per_week"]
        out.append(
            f'<line class="trend" x1="{x1}" y1="{y(v1)}" x2="{x2}" y2="{y(v2)}">'
            f'<title>{escape(f"least-squares trend over the complete weeks: {_signed_money(slope)} per week")}</title></line>'
        )
    out.append("</svg>")
    return "".join(out)


def _week_caption(weeks: list[dict[str, Any]]) -> str:
    complete = [w for w in weeks if w["complete"]]
    partial = " Faded bars: partial weeks, not final." if len(complete) < len(weeks) else ""
    if len(complete) < 2:
        return "Bars: wasted cost per ISO week. A trend needs at least two complete weeks." + partial
    slope = weeks[0]["trend_usd_per_week"]
    direction = "rising" if slope > 0 else "falling" if slope < 0 else "flat"
    text = (
        f"Bars: wasted cost per ISO week; dashed line: least-squares trend over the {len(complete)} complete weeks, "
        f"{direction} by {_money(abs(slope))} a week."
    )
    compared = [w for w in weeks if w["wow_change_usd"] is not None]
    if compared:
        last = compared[-1]
        text += (
            f" Last complete week ({last['iso_week']}) against the week before: {_signed_money(last['wow_change_usd'])}"
            + (f" ({_signed_pct(last['wow_change_ratio'])})." if last["wow_change_ratio"] is not None else ".")
        )
    return text + partial


def _signed_pct(ratio: Any) -> str:
    if ratio is None:
        return "\u2013"
    return ("+" if ratio > 0 else MINUS if ratio < 0 else "") + _pct(abs(ratio))


def _hbar_chart(chart_id: str, label: str, items: list[tuple[str, Any]]) -> str:
    if not items:
        return '<p class="note">No wasted cost in this period.</p>'
    row_h, label_w, value_w = 26, 170, 96
    width, height = CHART_WIDTH, row_h * len(items) + 8
    plot_w = width - label_w - value_w
    top_value = max(float(v) for _, v in items) or 1.0
    out = [f'<svg id="{escape(chart_id)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{escape(label)}">']
    for i, (name, value) in enumerate(items):
        y = 4 + i * row_h
        w = round(plot_w * float(value) / top_value, 1)
        shown = name if len(name) <= 24 else name[:23] + "\u2026"
        out.append(f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(shown)}<title>{escape(name)}</title></text>')
        out.append(f'<rect class="bar" data-label="{escape(name)}" x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}"><title>{escape(f"{name}: {_money(value)}")}</title></rect>')
        out.append(f'<text class="value" x="{label_w + w + 6}" y="{y + 16}">{escape(_money(value))}</text>')
    out.append("</svg>")
    return "".join(out)


def table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(
            f'<td class="text">{escape(c)}</td>' if j < text_columns else f"<td>{escape(c)}</td>" for j, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _week_table(weeks: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"{w['iso_week']} ({w['week_start']:%d %b} \u2013 {w['week_end']:%d %b})"
            + ("" if w["complete"] else f", partial: {_coverage(w)}"),
            _money(w["cost_usd"]),
            _money(w["wasted_cost_usd"]),
            _pct(w["wasted_share"]),
            "partial week" if not w["complete"] else _signed_money(w["wow_change_usd"]),
            "\u2013" if not w["complete"] else _signed_pct(w["wow_change_ratio"]),
            f"{w['flagged_user_weeks']:,} of {w['user_weeks']:,}",
        ]
        for w in weeks
    ]
    return table(["Week", "AI spend", "Wasted", "Share", "Change vs previous week", "Change %", "Flagged user-weeks"], rows)


def _team_table(teams: list[dict[str, Any]]) -> str:
    rows = [
        [
            t["team"], t["org"], f"{t['people']:,}", _money(t["cost_usd"]), _money(t["wasted_cost_usd"]),
            _pct(t["wasted_share"]), _pct(t["share_of_all_wasted"]),
            f"{t['flagged_user_weeks']:,} of {t['user_weeks']:,}"
            + (f" ({t['flagged_user_weeks_without_waste']:,} at $0)" if t["flagged_user_weeks_without_waste"] else ""),
        ]
        for t in teams
    ]
    return table(["Team", "Org", "People", "AI spend", "Wasted", "Share of its spend", "Share of all wasted", "Flagged user-weeks"], rows, 2)


def _detector_name(detector: str) -> str:
    """'rule:deployment_splitting' -> 'deployment splitting'."""
    return detector.removeprefix("rule:").replace("_", " ")


def _flags_without_waste_note(
    s: dict[str, Any], teams: list[dict[str, Any]], causes: list[dict[str, Any]], rules: dict[str, dict[str, str]]
) -> str:
    """Why flagged user-weeks can carry $0.00, from the flags themselves (report_flags_without_waste)."""
    count = int(s["flagged_user_weeks_without_waste"])
    if not count:
        return ""
    zero_teams = [t["team"] for t in teams if t["flagged_user_weeks"] and t["wasted_cost_usd"] == 0]
    text = (
        f"{count:,} of {s['flagged_user_weeks']:,} flagged user-weeks carry no wasted cost"
        + (f", so {'these teams are flagged yet show' if len(zero_teams) > 1 else 'this team is flagged yet shows'} $0.00 wasted: "
           + ", ".join(zero_teams) if zero_teams else "")
        + ". Why:"
    )
    reasons = []
    for c in causes:
        n = _plural(int(c["user_weeks"]), "user-week")
        if c["cause"] == "rule":
            rule = rules.get(c["detector"], {})
            description = rule.get("description", "").strip().rstrip(".")
            by_design = rule.get("wasted_cost", "").strip() in {"0", "0.0", "0.00"}
            reasons.append(
                f"{n} raised by the {_detector_name(c['detector'])} rule"
                + (f" ({description})" if description else "")
                + (", which flags gaming of a metric, not wasted compute: its wasted cost is $0 by design"
                   if by_design else ", whose evidence points at no spend in those weeks")
            )
        elif c["cause"] == "models_only":
            reasons.append(f"{n} flagged by the anomaly models alone, with none of their spend on unshipped work")
        else:
            reasons.append(f"{n} with no priced spend (only requests with no price, counted at $0)")
    return f'<p class="note" id="flags-without-waste">{escape(text + " " + "; ".join(reasons) + ".")}</p>'


def _model_table(models: list[dict[str, Any]]) -> str:
    rows = [
        [
            m["model"], m["provider"], f"{m['tokens']:,}", f"{m['wasted_tokens']:,}", f"{m['unpriced_tokens']:,}",
            _money(m["cost_usd"]), _money(m["wasted_cost_usd"]), _pct(m["wasted_share"]), _pct(m["share_of_all_wasted"]),
        ]
        for m in models
    ]
    return table(
        ["Model", "Provider", "Tokens", "Wasted tokens", "Tokens with no price", "AI spend", "Wasted", "Share of its spend",
         "Share of all wasted"],
        rows, 2,
    )


def _people_section(people: list[dict[str, Any]] | None) -> str:
    if people is None:
        return ""
    rows = [
        [
            p["user_id"], p["team"], _money(p["cost_usd"]), _money(p["wasted_cost_usd"]), _pct(p["wasted_share"]),
            f"{p['flagged_user_weeks']:,} of {p['user_weeks']:,}",
        ]
        for p in people
        if p["wasted_cost_usd"] > 0
    ]
    return (
        f"\n<h2>Top people by wasted cost</h2>\n"
        f'<p class="note">{escape(f"Named because this report was made with people included; every person is in {PEOPLE_FILE}.")}</p>\n'
        + (table(["Person", "Team", "AI spend", "Wasted", "Share of their spend", "Flagged user-weeks"], rows, 2) if rows
           else '<p class="note">Nobody has wasted cost in this period.</p>')
        + "\n"
    )


def _method(min_team_size: int, *, people: bool) -> str:
    paragraphs = [
        "AI spend is the cost of every model request in the period: the price the tools reported, or else the "
        "request's tokens times the model's list price per million tokens. Requests with neither (a model "
        "missing from the price list) count $0; their number and tokens are stated at the top of this page and "
        "in summary.csv, and they stay in every token count.",
        "Wasted cost is the part of that spend which the detectors' evidence says produced nothing. Every person's "
        "week is scored. When a week is flagged, its wasted cost is the spend the evidence of the rule that fired "
        "points at, for instance the spend on sessions linked to no deployed change, or the part spent on "
        "near-identical repeated prompts (the largest such amount when several rules fire; the spend on sessions "
        "linked to nothing deployed when only the statistical models flagged it). It never exceeds the week's "
        "spend. Weeks that are not flagged count zero, and so do flags an analyst reviewed and judged legitimate, "
        "and flags of rules that find gaming without wasted compute (such as splitting work into tiny deployments).",
        "By model: each flagged week's wasted cost is split over the models it used, in proportion to that "
        "week's spend on each model. Wasted tokens are each model's tokens times the week's wasted share of spend, "
        "so a model with no price can have wasted tokens at $0.",
        "Weeks are ISO weeks, Monday to Sunday, UTC. A week is complete when the data covers all seven days and "
        "goes on after it; the week the data ends in is partial (young). The trend is the least-squares line "
        "through the weekly wasted cost of the complete weeks; the week-over-week change compares each complete "
        "week with the complete week before.",
        "Amounts are rounded to the cent, and tokens to the token, so that every table and file adds up to the "
        "same totals exactly: each amount is within one cent (one token) of its unrounded value.",
        f"Privacy: finance sees teams, not people. Teams with fewer than {min_team_size} people are reported "
        "together as \u201cother\u201d. "
        + ("This copy names people because it was made with people included." if people else "No person is named."),
    ]
    return "\n".join(f'<p class="note">{escape(p)}</p>' for p in paragraphs)
