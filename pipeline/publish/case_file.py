"""A case file per flag: one self-contained HTML page telling why a user-week or a session was flagged.

    page = write_case_file(Path("goodhart.duckdb"), "user_week:u0042:2026-10-05", Path("cases/"))

opens the database read-only and writes `cases/case-user_week-u0042-2026-10-05.html` (the
`case_file` column of the flagged views names it): the flag's week hour by hour (tokens by what
their session fed, prompts, sessions started, against the person's merged changes and
deployments), the features against the person's own history and their team's, org's and
company's distribution, each rule's and model's contribution, the sessions and their links with
method, credit and evidence, and the verdict history.

The rows come from pipeline/publish/sql/case_*.sql, built set-wise in temporary tables of the read-only
connection. Charts are Altair (Vega-Lite) specs drawn by vega-embed, whose JavaScript (Vega,
Vega-Lite, vega-embed) vl-convert bundles into the page: it opens offline, with no network.
Prompt text is never stored, so never shown; an unknown value is shown as "unknown", never as 0.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import altair as alt
import duckdb
import jinja2
import polars as pl
import vl_convert

from pipeline.ops import permissions
from pipeline.errors import UsageError
from pipeline import sql_models
from pipeline.storage import connect

# the page's temporary tables: case_flag, then the models of pipeline/publish/sql/ tagged
# case_file, in the order their references give (pipeline/sql_models.py)

# row order of each table when shown
_ORDER = {
    "case_timeline": "hour, measure, part",
    "case_events": "ts, event, change_id",
    "case_features": "contribution DESC NULLS LAST, feature, scope_order",
    "case_contributions": "kind DESC, detector, contribution DESC, feature",
    "case_sessions": "started_at, session_id",
    "case_links": "session_id, credit DESC, change_id",
    "case_verdicts": "recorded_at",
}

SCOPES = ("own", "team", "org", "company")
_WIDTH = 860


class UnknownCaseError(UsageError):
    """The flag id is not among the flags of the database's last run."""


def case_file_name(flag_id: str) -> str:
    """The file a flag's case file is written to (the SQL of the `case_file` column says the same)."""
    return "case-" + re.sub(r"[^A-Za-z0-9_.-]", "-", flag_id) + ".html"


def write_case_file(db_path: Path, flag_id: str, out_dir: Path, *, group_readable: bool | None = None) -> Path:
    """Write the case file of `flag_id` (a `flags.flag_id`) into `out_dir` and return its path.
    Readable by its owner only, or the group too when `group_readable` (None: as the database)."""
    db_path, out_dir = Path(db_path), Path(out_dir)
    if not db_path.is_file():
        raise UnknownCaseError(f"no database at {db_path}")
    with connect(db_path, read_only=True) as con:
        data = case_data(con, flag_id, db_name=db_path.name)
    modes = permissions.for_output(db_path, group_readable)
    permissions.make_dir(out_dir, modes)
    page = out_dir / case_file_name(flag_id)
    with permissions.creating(modes):
        page.write_text(render_case_file(data), encoding="utf-8")
    permissions.restrict(page, modes)
    return page


def case_data(con: duckdb.DuckDBPyConnection, flag_id: str, *, db_name: str = "") -> dict[str, Any]:
    """Everything the page shows, as rows (lists of dicts), from the database `con` reads."""
    has_flags = con.sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'flags'"
    ).fetchall()[0][0]
    if not has_flags:
        raise UnknownCaseError("no flags table: not a Goodhart database, or no run has completed in it")
    con.execute("SET VARIABLE case_flag_id = ?", [flag_id])
    models = sql_models.load("pipeline.publish")
    models.build(con, "case_flag")
    flag_rows = _records(con, "case_flag")
    if not flag_rows:
        raise UnknownCaseError(f"no flag {flag_id!r} in the last run of {db_name or 'the database'}")
    tables = models.run(con, "case_file")  # the models tagged case_file, over case_flag
    data = {table.removeprefix("case_"): _records(con, table) for table in tables}
    data["flag"] = flag_rows[0]
    data["db_name"] = db_name
    data["peer_table"] = _records(con, "case_features", pivot=True)
    return data


def _records(con: duckdb.DuckDBPyConnection, table: str, *, pivot: bool = False) -> list[dict[str, Any]]:
    """A table's rows in display order; timestamps as ISO 8601 UTC text (what Vega-Lite parses as UTC).
    With `pivot`, case_features as one row per feature with a (median, z) pair per scope."""
    if pivot:
        frame = con.sql(
            "PIVOT case_features ON scope IN ('own', 'team', 'org', 'company') USING first(median) AS median, first(z) AS z "
            "GROUP BY feature, value, contribution ORDER BY contribution DESC NULLS LAST, feature"
        ).pl()
    else:
        order = f" ORDER BY {_ORDER[table]}" if table in _ORDER else ""
        frame = con.sql(f"SELECT * FROM {table}{order}").pl()
    frame = frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ"), pl.col(pl.Date).cast(pl.String))
    return frame.to_dicts()


def charts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The page's Vega-Lite specs by element id (a chart is left out when it has no rows)."""
    flag = data["flag"]
    specs = {"timeline": timeline_chart(data["timeline"], data["events"], flag["window_start"], flag["window_end"])}
    compared = [row for row in data["features"] if row["z"] is not None]
    if compared:
        specs["peers"] = peers_chart(compared)
    for kind in ("rule", "model"):
        rows = [row for row in data["contributions"] if row["kind"] == kind]
        if rows:
            specs[f"{kind}_contributions"] = contributions_chart(rows, kind)
    return {name: chart.to_dict() for name, chart in specs.items()}


def timeline_chart(timeline: list[dict], events: list[dict], start: str, end: str) -> alt.VConcatChart:
    """Tokens per hour by what their session fed, prompts and sessions started per hour, and the
    person's merged changes and deployments, on one UTC time axis over the flag's week."""
    x = alt.X("hour:T", title=None, scale=alt.Scale(type="utc", domain=[start, end]), axis=alt.Axis(format="%a %d %H:00"))
    hourly = alt.Data(values=timeline)
    tokens = alt.Chart(hourly, title="Tokens per hour, by what their session fed").mark_bar().encode(
        x=x, y=alt.Y("sum(value):Q", title="tokens"),
        color=alt.Color("part:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["hour:T", "part:N", alt.Tooltip("sum(value):Q", title="tokens", format=",")],
    ).transform_filter(alt.datum.measure == "tokens")
    activity = alt.Chart(hourly, title="Prompts and sessions started per hour").mark_bar().encode(
        x=x, y=alt.Y("value:Q", title="count"),
        color=alt.Color("measure:N", title=None, scale=alt.Scale(range=["#6f42c1", "#e8a33d"]), legend=alt.Legend(orient="top")),
        tooltip=["hour:T", "measure:N", alt.Tooltip("value:Q", format=",")],
    ).transform_filter(alt.datum.measure != "tokens")
    shipped = alt.Chart(alt.Data(values=events), title="Their merged changes and deployments").mark_tick(thickness=2, size=18).encode(
        x=alt.X("ts:T", title=None, scale=alt.Scale(type="utc", domain=[start, end]), axis=alt.Axis(format="%a %d %H:00")),
        y=alt.Y("event:N", title=None),
        color=alt.Color("ai_linked:N", title="AI session linked", scale=alt.Scale(domain=[True, False], range=["#2e7d32", "#9e9e9e"])),
        tooltip=["ts:T", "event:N", "change_id:N", "repo:N", "lines_changed:Q", "ai_linked:N"],
    )
    return alt.vconcat(
        tokens.properties(width=_WIDTH, height=160), activity.properties(width=_WIDTH, height=90),
        shipped.properties(width=_WIDTH, height=50),
    ).resolve_scale(color="independent")


def peers_chart(features: list[dict]) -> alt.LayerChart:
    """Robust z of each feature against the person's own weeks and their team, org and company."""
    order = list(dict.fromkeys(row["feature"] for row in features))
    base = alt.Chart(alt.Data(values=features), title="Features against their own history and their peers (robust z)")
    points = base.mark_point(filled=True, size=90).encode(
        x=alt.X("z:Q", title="robust z (0: the group's median)"),
        y=alt.Y("feature:N", sort=order, title=None),
        color=alt.Color("scope:N", scale=alt.Scale(domain=list(SCOPES)), title="against",
                        legend=alt.Legend(orient="top")),
        shape=alt.Shape("scope:N", scale=alt.Scale(domain=list(SCOPES))),
        tooltip=["feature:N", "scope:N", alt.Tooltip("value:Q", format=",.3~f"), alt.Tooltip("median:Q", format=",.3~f"),
                 alt.Tooltip("z:Q", format=".2f")],
    )
    zero = alt.Chart(alt.Data(values=[{"z": 0}])).mark_rule(color="#555").encode(x="z:Q")
    return alt.layer(zero, points).properties(width=_WIDTH - 200, height=max(120, 22 * len(order)))


def contributions_chart(rows: list[dict], kind: str) -> alt.Chart:
    """Each rule's (or model's) contribution, split by the features that made it."""
    title = ("Rules: each condition's part of the rule's strength" if kind == "rule"
             else "Models: each feature's occlusion attribution (drop of the score without it)")
    return alt.Chart(alt.Data(values=rows), title=title).mark_bar().encode(
        x=alt.X("sum(contribution):Q", title="contribution"),
        y=alt.Y("detector:N", title=None),
        color=alt.Color("feature:N", title="feature", legend=alt.Legend(orient="right", columns=1)),
        tooltip=["detector:N", "feature:N", alt.Tooltip("value:Q", format=",.3~f"),
                 alt.Tooltip("baseline:Q", format=",.3~f"), alt.Tooltip("contribution:Q", format=".3f"), "text:N"],
    ).properties(width=_WIDTH - 260, height=max(60, 28 * len({row["detector"] for row in rows})))


@lru_cache(maxsize=1)
def _vega_bundle(vl_version: str) -> str:
    """Vega, Vega-Lite and vega-embed as one script (made by vl-convert, no network), safe inside <script>."""
    return vl_convert.javascript_bundle(vl_version=vl_version).replace("</script", "<\\/script")


def _shown(value: Any, digits: int = 3) -> str:
    """A value for a table cell: NULL is "unknown", never 0."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def render_case_file(data: dict[str, Any]) -> str:
    """The page: the template with its data, its chart specs and the Vega bundle inline."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["shown"] = _shown
    template = environment.from_string(
        resources.files("pipeline.publish").joinpath("case_file_template.html").read_text(encoding="utf-8")
    )
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return template.render(data=data, flag=data["flag"], charts=charts(data), scopes=SCOPES,
                           vega_bundle=_vega_bundle(major_minor))
