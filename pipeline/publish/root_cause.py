"""Monitors and root cause: wasted cost per dimension and week, and each week's change decomposed.

At publish (`pipeline.publish.scores.publish_models`) two tables are built from the run's scores
(pipeline/publish/sql/<name>.sql):

    waste_by_dimension_week  wasted cost, spend and flags per team, org, model, tool, repository and week
                             (each user-week split over models, tools and repositories by
                             user_week_spend_shares, kept per week so a daily run splits its weeks only)
    waste_root_cause         each week's change in wasted cost against the week before, per member of
                             each dimension, ranked by dollar impact; the members of a dimension add
                             up to the week's change to the cent

`headline(rows)` says it in one line ("2026-W43 waste +$816.00: team edge +$540.00 (2 people,
idle agents), model opus-4.5 +$410.00 ..."); the run's Prefect artifact, the finance report (a
section and waste_root_cause.csv, small teams merged into "other") and alerts show it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql_models
from pipeline.storage import connect, has_table, write_csv

DIMENSIONS = ("team", "org", "model", "tool", "repository")
REPORT_FILE = "waste_root_cause.csv"


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database holds the monitor tables (a run before them does not)."""
    return has_table(con, "waste_root_cause")


def rows(con: duckdb.DuckDBPyConnection, table: str = "waste_root_cause", *, week: Any = None,
         top: int = 3) -> list[dict[str, Any]]:
    """The `top` members of each dimension of one week (default: the last complete week with a
    change), largest change first."""
    where = "week_start = $week" if week is not None else (
        f"week_start = (SELECT max(week_start) FROM {table} WHERE complete)")
    relation = con.sql(
        f"SELECT * FROM {table} WHERE {where} AND rank <= $top ORDER BY abs(change_usd) DESC, dimension, member",
        params={"top": top} | ({"week": week} if week is not None else {}),
    )
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def _money(value: Any) -> str:
    sign = "+" if value > 0 else "\u2212" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _why(row: dict[str, Any], detectors: int = 2) -> str:
    """Who and what is behind a rise: the member's people with waste this week and its first
    detectors (nothing for a fall: this week's detectors do not explain what went away)."""
    people = int(row["people_with_waste"] or 0)
    if row["change_usd"] <= 0 or not people:
        return ""
    names = [d.removeprefix("rule:").replace("_", " ") for d in (row["waste_detectors"] or "").split(", ") if d]
    shown = ", ".join(names[:detectors]) + (", \u2026" if len(names) > detectors else "")
    return f" ({people} {'person' if people == 1 else 'people'}" + (f"; {shown})" if shown else ")")


def headline(week_rows: Sequence[dict[str, Any]], *, per_dimension: int = 1) -> str:
    """One week's change in a line: the week's total, then the largest member change of each
    dimension (`per_dimension` of them), largest first. Empty when there are no rows."""
    if not week_rows:
        return ""
    first = week_rows[0]
    causes = [r for r in week_rows if r["rank"] <= per_dimension and r["change_usd"] != 0]
    causes.sort(key=lambda r: (-abs(r["change_usd"]), DIMENSIONS.index(r["dimension"]), r["member"]))
    text = f"{first['iso_week']} waste {_money(first['week_change_usd'])}"
    return text + (": " + ", ".join(f"{r['dimension']} {r['member']} {_money(r['change_usd'])}{_why(r)}"
                                    for r in causes) if causes else "")


def markdown(db_path: Path) -> str:
    """The last complete week's root cause as markdown lines for the run's artifact ("" without one)."""
    with connect(db_path, read_only=True) as con:
        if not has_tables(con):
            return ""
        line = headline(rows(con))
    return f"- root cause of the last complete week's change: {line}\n" if line else ""


def report_files(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """Build report_root_cause on the report's connection (after report_user_weeks) and write
    REPORT_FILE; nothing when the database predates the monitor tables."""
    if not has_tables(con):
        return []
    sql_models.load("pipeline.publish").build(con, "report_root_cause")
    return [write_csv(con, "SELECT * FROM report_root_cause ORDER BY week_start, dimension, rank", out_dir / REPORT_FILE)]


def report_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]] | None:
    """The last complete week's top members per dimension for the report page (None: no table)."""
    if not has_tables(con):
        return None
    return rows(con, "report_root_cause")


def html_section(week_rows: list[dict[str, Any]] | None) -> str:
    """The report's root-cause section: the last complete week's change and its largest causes."""
    from pipeline.publish.report_html import escape, table  # the report page's escaping and tables (it imports this module)

    if week_rows is None:
        return ""
    out = ['\n<h2 id="root-cause">What changed last week</h2>']
    if not week_rows:
        return out[0] + '\n<p class="note">No two complete weeks to compare yet.</p>\n'
    out.append(f'<p class="note">{escape(headline(week_rows))}.</p>')
    table_rows = [
        [r["dimension"], r["member"], _money(r["change_usd"]), f"${r['previous_wasted_cost_usd']:,.2f}",
         f"${r['wasted_cost_usd']:,.2f}", f"{r['flagged_user_weeks']:,}", (r["waste_detectors"] or "").replace("rule:", "")]
        for r in sorted(week_rows, key=lambda r: (DIMENSIONS.index(r["dimension"]), r["rank"]))
    ]
    out.append(table(["Dimension", "Member", "Change", "Week before", "This week", "Flagged user-weeks", "Detectors"],
                      table_rows, 2))
    out.append(f'<p class="note">{escape(f"Each dimension splits the week-over-week change in wasted cost over its members; the members of a dimension add up to the week’s change to the cent. Top 3 per dimension; all in {REPORT_FILE}.")}</p>')
    return "\n".join(out) + "\n"
