"""Tests of the finance report (pipeline/publish/report.py) on small databases written by the test itself.

`build_db` writes the two tables the report reads, token_usage (through the real raw schema) and
user_week_scores (per user-week: the requests' tokens and cost, plus a hand-set wasted cost), and
a runs row. Teams: "alpha" and "R&D <beta>" have five people each; "skunkworks" (2) and
"lonewolf" (1) are under the default min_team_size and must show up only as "other".
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import html
import json
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipeline.publish.report import PEOPLE_FILE, ReportError, ReportSummary, _build_tables, write_report
from pipeline.storage import connect, create_raw_tables

W1, W2, W4 = datetime.date(2026, 9, 7), datetime.date(2026, 9, 14), datetime.date(2026, 9, 28)  # no usage in W3
RUN_ID = "20261001T000000Z-testrun0"

PEOPLE = {
    **{f"usr-a{i}": ("alpha", "eng") for i in range(1, 6)},
    **{f"usr-b{i}": ("R&D <beta>", "research") for i in range(1, 6)},
    "usr-s1": ("skunkworks", "eng"),
    "usr-s2": ("skunkworks", "eng"),
    "usr-l1": ("lonewolf", "ops"),
}
SECRET_REASON = "SECRET-REASON-TEXT"


def standard_requests() -> list[tuple]:
    """(user_id, ts, model, input_tokens, output_tokens, cost_usd) for every user-week."""
    rows: list[tuple] = [
        # the hand-computed user-week: usr-a1 in W1 spends 10.00, 7.50 on opus (1,000 tokens) and 2.50 on haiku (3,000)
        ("usr-a1", "2026-09-07 10:00:00", "opus-4.5", 600, 400, 7.50),
        ("usr-a1", "2026-09-08 11:00:00", "haiku-4.5", 2000, 1000, 2.50),
    ]
    for k, user in enumerate(sorted(PEOPLE)):
        weeks = [W1, W2, W4] if user.startswith("usr-a") else [W1, W2]
        for j, week in enumerate(weeks):
            if (user, week) == ("usr-a1", W1):
                continue
            day = f"{week + datetime.timedelta(days=1 + j)} 09:30:00"
            # awkward amounts so rounding to the cent matters
            rows.append((user, day, "sonnet-4.5", 1000 + 37 * k, 300 + 11 * j, round(3.0 + 0.731 * k + 0.1234567 * j, 7)))
            rows.append((user, day.replace("09:30", "15:45"), "gpt-5", 500 + 13 * k, 200, round(1.0 + 0.333333 * (k + j), 7)))
    return rows


# (user_id, week) -> wasted as a fraction of that user-week's cost (exact 4.00 for usr-a1 in W1)
WASTE = {
    ("usr-a1", W1): 0.4,
    ("usr-a2", W4): 1 / 7,
    ("usr-b1", W1): 1 / 3,
    ("usr-b2", W1): 1 / 3,
    ("usr-b3", W2): 0.9,
    ("usr-s1", W2): 0.5,
    ("usr-l1", W1): 0.7,
}


WASTE_DETECTORS = ["rule:burn_without_shipping", "iforest"]


def build_db(
    path: Path, requests: list[tuple], waste: dict, people: dict = PEOPLE, extra_user_weeks: list[tuple] = (),
    zero_flags: dict | None = None,
) -> Path:
    """A database with token_usage, user_week_scores and runs; `extra_user_weeks`: (user, week, cost, wasted)
    user-weeks without any request; `zero_flags`: (user, week) -> detectors, flagged weeks with no wasted cost.
    Weeks in `waste` are raised by WASTE_DETECTORS."""
    con = connect(path)
    create_raw_tables(con)
    if requests:
        con.executemany(
            "INSERT INTO token_usage VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, ?, ?, 0, 0, ?, 'input', 'cursor', 1, ?)",
            [
                (f"r-{n}", ts, user, f"s-{user}-{ts[:10]}", model, tin, tout, cost, n + 1)
                for n, (user, ts, model, tin, tout, cost) in enumerate(requests)
            ],
        )
    con.execute("CREATE TABLE directory (user_id VARCHAR, team VARCHAR, org VARCHAR)")
    con.executemany("INSERT INTO directory VALUES (?, ?, ?)", [(u, t, o) for u, (t, o) in people.items()])
    con.execute("CREATE TABLE waste (user_id VARCHAR, week_start DATE, fraction DOUBLE)")
    if waste:
        con.executemany("INSERT INTO waste VALUES (?, ?, ?)", [(u, w, f) for (u, w), f in waste.items()])
    con.execute("CREATE TABLE extra (user_id VARCHAR, week_start DATE, cost_usd DOUBLE, wasted DOUBLE)")
    if extra_user_weeks:
        con.executemany("INSERT INTO extra VALUES (?, ?, ?, ?)", list(extra_user_weeks))
    con.execute("CREATE TABLE zero_flags (user_id VARCHAR, week_start DATE, detectors VARCHAR[])")
    if zero_flags:
        con.executemany("INSERT INTO zero_flags VALUES (?, ?, ?)", [(u, w, d) for (u, w), d in zero_flags.items()])
    con.execute(
        f"""
        CREATE TABLE user_week_scores AS
        WITH weeks AS (
            SELECT user_id, CAST(date_trunc('week', ts) AS DATE) AS week_start,
                   sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) AS tokens,
                   sum(coalesce(cost_usd, 0)) AS cost_usd, count(*) AS requests
            FROM token_usage GROUP BY ALL
            UNION ALL
            SELECT user_id, week_start, 0, cost_usd, 0 FROM extra
        )
        SELECT '{RUN_ID}' AS run_id, weeks.user_id, directory.team, directory.org, weeks.week_start,
               CAST(weeks.tokens AS HUGEINT) AS tokens, weeks.cost_usd, 1 AS sessions, weeks.requests, 1 AS prompts,
               0 AS merged_changes, 0 AS deployed_changes,
               CAST(coalesce(waste.fraction, extra.wasted, 0) > 0 OR zero_flags.user_id IS NOT NULL AS BOOLEAN) AS flagged,
               CASE WHEN coalesce(waste.fraction, extra.wasted, 0) > 0 OR zero_flags.user_id IS NOT NULL THEN 'high' END AS severity,
               coalesce(zero_flags.detectors,
                        CASE WHEN coalesce(waste.fraction, extra.wasted, 0) > 0 THEN {WASTE_DETECTORS!r} END) AS detectors,
               '{SECRET_REASON} for ' || weeks.user_id AS reasons,
               coalesce(waste.fraction * weeks.cost_usd, extra.wasted, 0) AS wasted_cost_usd
        FROM weeks
        JOIN directory USING (user_id)
        LEFT JOIN waste USING (user_id, week_start)
        LEFT JOIN extra USING (user_id, week_start)
        LEFT JOIN zero_flags USING (user_id, week_start)
        """
    )
    con.execute("DROP TABLE directory; DROP TABLE waste; DROP TABLE extra; DROP TABLE zero_flags")
    con.execute(
        "INSERT INTO runs (run_id, started_at, ended_at, status) VALUES (?, TIMESTAMP '2026-10-01 00:00:00', "
        "TIMESTAMP '2026-10-01 00:05:00', 'completed')",
        [RUN_ID],
    )
    con.close()
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: the report only reads it (test_database_is_opened_read_only_and_left_unchanged)."""
    return build_db(tmp_path_factory.mktemp("report") / "g.duckdb", standard_requests(), WASTE)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def cents(rows: list[dict[str, str]], column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows), Decimal("0"))


def db_total(db_path: Path, column: str) -> Decimal:
    with duckdb.connect(str(db_path), read_only=True) as con:
        (value,), = con.sql(f"SELECT sum({column}) FROM user_week_scores").fetchall()
    return Decimal(str(value)).quantize(Decimal("0.01"))


class Page(HTMLParser):
    """Each <svg> by id with its rect classes and trend lines; every tag and URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: dict[str, dict[str, list]] = {}
        self.current: str | None = None
        self.tags: list[str] = []
        self.attr_values: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attr_values.extend(v for v in attrs.values() if v)
        if tag == "svg":
            self.current = attrs.get("id", f"svg{len(self.svgs)}")
            self.svgs[self.current] = {"bars": [], "trend": []}
        elif self.current and tag == "rect" and "bar" in attrs.get("class", "").split():
            self.svgs[self.current]["bars"].append(attrs)
        elif self.current and tag == "line" and attrs.get("class") == "trend":
            self.svgs[self.current]["trend"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "svg":
            self.current = None


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def all_output_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.iterdir()))


# ------------------------------------------------------------------------------------------------

def test_writes_every_file_and_returns_the_summary(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = write_report(db, out)
    assert isinstance(summary, ReportSummary)
    assert {p.name for p in summary.files} == {
        "report.html", "summary.csv", "wasted_by_week.csv", "wasted_by_team.csv", "wasted_by_model.csv", "focus_wasted_cost.csv",
    }
    assert all(p.parent == out and p.is_file() for p in summary.files)
    assert summary.total_cost_usd == float(db_total(db, "cost_usd"))
    assert summary.wasted_cost_usd == float(db_total(db, "wasted_cost_usd"))
    assert summary.weeks == 4  # W1..W4, the empty W3 included
    assert summary.teams == 3  # alpha, R&D <beta>, other
    (row,) = read_csv(out / "summary.csv")
    assert row["run_id"] == RUN_ID
    assert (row["period_start"], row["period_end"]) == ("2026-09-07", "2026-10-04")
    assert row["flagged_user_weeks"] == str(len(WASTE))
    assert row["flagged_user_weeks_without_waste"] == "0"
    assert row["teams_merged_into_other"] == "2"
    assert (row["unpriced_requests"], row["unpriced_tokens"], row["unpriced_models"]) == ("0", "0", "")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Every request in the period has a price" in page
    assert 'id="flags-without-waste"' not in page


def test_database_is_opened_read_only_and_left_unchanged(db: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    write_report(db, tmp_path / "out", include_people=True)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not db.with_name(db.name + ".wal").exists()


def test_csv_sums_equal_the_database_to_the_cent(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out, include_people=True)
    wasted, cost = db_total(db, "wasted_cost_usd"), db_total(db, "cost_usd")
    for name in ("wasted_by_week.csv", "wasted_by_team.csv", "wasted_by_model.csv", PEOPLE_FILE):
        rows = read_csv(out / name)
        assert cents(rows, "wasted_cost_usd") == wasted, name
        assert cents(rows, "cost_usd") == cost, name
        assert all(len(r["wasted_cost_usd"].split(".")[1]) == 2 for r in rows), name
    focus = read_csv(out / "focus_wasted_cost.csv")
    for column in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        assert cents(focus, column) == wasted
    assert cents(focus, "x_TotalCost") == cost
    (summary,) = read_csv(out / "summary.csv")
    assert Decimal(summary["wasted_cost_usd"]) == wasted and Decimal(summary["total_cost_usd"]) == cost


def test_csv_token_sums_equal_the_database_to_the_token(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out, include_people=True)
    with duckdb.connect(str(db), read_only=True) as con:
        (tokens, wasted_tokens), = con.sql(
            "SELECT sum(tokens), round(sum(CASE WHEN cost_usd > 0 THEN tokens * wasted_cost_usd / cost_usd ELSE 0 END)) "
            "FROM user_week_scores"
        ).fetchall()
    (summary,) = read_csv(out / "summary.csv")
    assert (int(summary["total_tokens"]), int(summary["wasted_tokens"])) == (tokens, wasted_tokens)
    for name in ("wasted_by_week.csv", "wasted_by_team.csv", "wasted_by_model.csv", PEOPLE_FILE):
        rows = read_csv(out / name)
        assert sum(int(r["tokens"]) for r in rows) == tokens, name
        assert sum(int(r["wasted_tokens"]) for r in rows) == wasted_tokens, name
    focus = read_csv(out / "focus_wasted_cost.csv")
    assert sum(int(r["x_TotalTokens"]) for r in focus) == tokens
    assert sum(Decimal(r["ConsumedQuantity"]) for r in focus) == sum(Decimal(r["PricingQuantity"]) for r in focus) == wasted_tokens


def test_every_rounded_amount_is_within_a_cent_of_the_exact_one(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out)
    with duckdb.connect(str(db), read_only=True) as con:
        exact = dict(con.sql("SELECT week_start::VARCHAR, sum(wasted_cost_usd) FROM user_week_scores GROUP BY 1").fetchall())
    for row in read_csv(out / "wasted_by_week.csv"):
        assert abs(Decimal(row["wasted_cost_usd"]) - Decimal(str(exact.get(row["week_start"], 0.0)))) < Decimal("0.01")


def test_weeks_without_usage_are_zero_rows_with_change_and_trend(db: Path, tmp_path: Path) -> None:
    """W4 is the week the data ends in (last request Thu 1 Oct): partial, so it has no week-over-week change and
    is left out of the trend. (Before issue 12 the change and trend took it in: that test encoded the old rule.)"""
    out = tmp_path / "out"
    write_report(db, out)
    weeks = read_csv(out / "wasted_by_week.csv")
    assert [w["week_start"] for w in weeks] == ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28"]
    assert [w["iso_week"] for w in weeks] == ["2026-W37", "2026-W38", "2026-W39", "2026-W40"]
    assert [w["complete"] for w in weeks] == ["true", "true", "true", "false"]
    assert [w["coverage_days"] for w in weeks] == ["7", "7", "7", "4"]  # W4: Monday 28 Sep to Thursday 1 Oct
    gap = weeks[2]
    assert (gap["cost_usd"], gap["wasted_cost_usd"], gap["user_weeks"], gap["tokens"]) == ("0.00", "0.00", "0", "0")
    values = [Decimal(w["wasted_cost_usd"]) for w in weeks]
    assert weeks[0]["wow_change_usd"] == ""
    assert [Decimal(w["wow_change_usd"]) for w in weeks[1:3]] == [b - a for a, b in zip(values, values[1:3])]
    assert (weeks[3]["wow_change_usd"], weeks[3]["wow_change_ratio"], weeks[3]["trend_wasted_cost_usd"]) == ("", "", "")
    # least squares by hand over the complete weeks, x = 0..2
    xs, ys = [0, 1, 2], [float(v) for v in values[:3]]
    mx, my = sum(xs) / 3, sum(ys) / 3
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    for x, w in zip(xs, weeks):
        assert float(w["trend_wasted_cost_usd"]) == pytest.approx(my + slope * (x - mx), abs=0.006)
    assert all(float(w["trend_usd_per_week"]) == pytest.approx(slope, abs=0.006) for w in weeks)
    (summary,) = read_csv(out / "summary.csv")
    assert (summary["complete_weeks"], summary["last_week_complete"]) == ("3", "false")
    assert (summary["data_start"], summary["data_end"]) == ("2026-09-07T10:00:00Z", "2026-10-01T15:45:00Z")


def test_a_week_is_complete_only_inside_the_data(tmp_path: Path) -> None:
    """Data from Wednesday of W1 to Monday of W3: W1 covers 5 days, W2 is complete, W3 is where the data ends."""
    people = {f"usr-{i}": ("alpha", "eng") for i in range(5)}
    requests = [
        ("usr-0", "2026-09-09 10:00:00", "sonnet-4.5", 100, 100, 1.00),
        ("usr-0", "2026-09-16 10:00:00", "sonnet-4.5", 100, 100, 2.00),
        ("usr-0", "2026-09-21 08:00:00", "sonnet-4.5", 100, 100, 3.00),
    ]
    out = tmp_path / "out"
    write_report(build_db(tmp_path / "c.duckdb", requests, {}, people), out)
    weeks = read_csv(out / "wasted_by_week.csv")
    assert [(w["iso_week"], w["coverage_days"], w["complete"]) for w in weeks] == [
        ("2026-W37", "5", "false"), ("2026-W38", "7", "true"), ("2026-W39", "1", "false"),
    ]
    assert [w["wow_change_usd"] for w in weeks] == ["", "", ""]  # no two complete weeks in a row
    assert [w["trend_wasted_cost_usd"] for w in weeks] == ["", "", ""]  # a trend needs two complete weeks
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "2026-W37 is partial (5 of 7 days with data, the data starts Wed 09 Sep 2026 10:00 UTC)." in page
    assert "The data ends Mon 21 Sep 2026 08:00 UTC, inside 2026-W39 (1 of 7 days with data): that week is partial" in page
    assert "A trend needs at least two complete weeks" in page


def test_focus_columns_and_a_hand_computed_row(db: Path, tmp_path: Path) -> None:
    """The cell values; the columns against the FOCUS specification are checked in test_report_focus.py."""
    out = tmp_path / "out"
    write_report(db, out)
    rows = read_csv(out / "focus_wasted_cost.csv")
    alpha_w1 = {r["SkuId"]: r for r in rows if r["SubAccountName"] == "alpha" and r["ChargePeriodStart"] == "2026-09-07T00:00:00Z"}
    # usr-a1 is alpha's only waste in W1: 4.00 of 10.00, split 7.50 : 2.50 -> 3.00 opus, 1.00 haiku; the other
    # alpha people used sonnet and gpt-5 that week with no waste: rows of $0, kept
    assert set(alpha_w1) == {"opus-4.5", "haiku-4.5", "sonnet-4.5", "gpt-5"}
    opus = alpha_w1["opus-4.5"]
    assert opus["BilledCost"] == opus["EffectiveCost"] == opus["ListCost"] == opus["ContractedCost"] == "3.00"
    assert alpha_w1["haiku-4.5"]["BilledCost"] == "1.00"
    assert alpha_w1["sonnet-4.5"]["BilledCost"] == alpha_w1["gpt-5"]["BilledCost"] == "0.00"
    assert alpha_w1["sonnet-4.5"]["ConsumedQuantity"] == "0.0" and int(alpha_w1["sonnet-4.5"]["x_TotalTokens"]) > 0
    assert opus["ConsumedQuantity"] == opus["PricingQuantity"] == "400.0"  # 1,000 opus tokens x 40% wasted (FOCUS: Decimal)
    assert alpha_w1["haiku-4.5"]["ConsumedQuantity"] == "1200.0"
    assert (opus["x_TotalCost"], opus["x_TotalTokens"], opus["x_UnpricedTokens"]) == ("7.50", "1000", "0")
    assert opus["ConsumedUnit"] == opus["PricingUnit"] == "Tokens"
    assert opus["BillingCurrency"] == "USD"
    assert (opus["ChargePeriodStart"], opus["ChargePeriodEnd"]) == ("2026-09-07T00:00:00Z", "2026-09-14T00:00:00Z")
    assert (opus["BillingPeriodStart"], opus["BillingPeriodEnd"]) == ("2026-09-07T00:00:00Z", "2026-09-14T00:00:00Z")
    assert opus["ChargeCategory"] == "Usage" and opus["ChargeClass"] == ""
    assert opus["ServiceCategory"] == "AI and Machine Learning" and opus["ServiceSubcategory"] == "Generative AI"
    assert opus["ServiceName"] == "AI coding assistant"
    for column in ("ProviderName", "PublisherName", "ServiceProviderName", "HostProviderName", "InvoiceIssuerName"):
        assert opus[column] == "Anthropic", column
    assert alpha_w1["gpt-5"]["ServiceProviderName"] == "OpenAI"
    assert opus["SkuId"] == opus["SkuPriceId"] == "opus-4.5"
    assert (opus["BillingAccountId"], opus["BillingAccountName"]) == ("goodhart", "Goodhart (g.duckdb)")
    assert (opus["SubAccountId"], opus["SubAccountName"]) == ("alpha", "alpha")
    tags = json.loads(opus["Tags"])
    assert tags["goodhart:org"] == "eng" and tags["goodhart:kind"] == "wasted_ai_compute"
    assert opus["x_GoodhartRunId"] == RUN_ID
    assert all(Decimal(r["BilledCost"]) >= 0 for r in rows)
    assert len({(r["SubAccountName"], r["ChargePeriodStart"], r["SkuId"]) for r in rows}) == len(rows)


def test_small_teams_are_merged_into_other_everywhere(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out, include_people=True)
    teams = {r["team"]: r for r in read_csv(out / "wasted_by_team.csv")}
    assert set(teams) == {"alpha", "R&D <beta>", "other"}
    assert teams["other"]["people"] == "3" and teams["other"]["org"] == "multiple"
    assert {r["SubAccountName"] for r in read_csv(out / "focus_wasted_cost.csv")} <= set(teams)
    assert {r["team"] for r in read_csv(out / PEOPLE_FILE)} == set(teams)
    text = all_output_text(out)
    assert "skunkworks" not in text and "lonewolf" not in text
    # a smaller threshold keeps every team; a larger one merges them all
    write_report(db, tmp_path / "all", min_team_size=1)
    assert {r["team"] for r in read_csv(tmp_path / "all" / "wasted_by_team.csv")} == {"alpha", "R&D <beta>", "skunkworks", "lonewolf"}
    write_report(db, tmp_path / "none", min_team_size=6)
    assert [r["team"] for r in read_csv(tmp_path / "none" / "wasted_by_team.csv")] == ["other"]


def test_no_person_is_named_unless_asked(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out)
    text = all_output_text(out)
    assert not (out / PEOPLE_FILE).exists()
    assert not [u for u in PEOPLE if u in text]
    assert SECRET_REASON not in text

    named = tmp_path / "named"
    write_report(db, named, include_people=True)
    people = read_csv(named / PEOPLE_FILE)
    assert {p["user_id"] for p in people} == set(PEOPLE)
    assert "usr-b3" in (named / "report.html").read_text(encoding="utf-8")  # the top wasted person is in the table
    assert SECRET_REASON not in all_output_text(named)

    # the same folder rewritten without people loses the people file
    write_report(db, named)
    assert not (named / PEOPLE_FILE).exists()
    assert not [u for u in PEOPLE if u in all_output_text(named)]


def test_model_split_adds_up_to_each_user_weeks_wasted_cost(db: Path) -> None:
    with connect(db, read_only=True) as con:
        _build_tables(con, min_team_size=5, include_people=False)
        mismatched = con.sql(
            """
            SELECT s.user_id, s.week_start, s.wasted_cost_usd, sum(m.wasted_cost_usd), s.cost_usd, sum(m.cost_usd)
            FROM user_week_scores AS s
            JOIN report_user_week_models AS m USING (user_id, week_start)
            GROUP BY ALL
            HAVING abs(s.wasted_cost_usd - sum(m.wasted_cost_usd)) > 1e-9 OR abs(s.cost_usd - sum(m.cost_usd)) > 1e-9
            """
        ).fetchall()
        assert mismatched == []
        split = dict(con.sql(
            "SELECT model, wasted_cost_usd FROM report_user_week_models WHERE user_id = 'usr-a1' AND week_start = DATE '2026-09-07'"
        ).fetchall())
    assert split == pytest.approx({"opus-4.5": 3.0, "haiku-4.5": 1.0})


def test_model_csv_follows_the_split(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out)
    models = {r["model"]: r for r in read_csv(out / "wasted_by_model.csv")}
    assert set(models) == {"opus-4.5", "haiku-4.5", "sonnet-4.5", "gpt-5"}
    assert models["opus-4.5"]["wasted_cost_usd"] == "3.00" and models["opus-4.5"]["cost_usd"] == "7.50"
    assert models["gpt-5"]["provider"] == "OpenAI"
    # a model's FOCUS rows add up to its line exactly: they are rounded within the model to that line
    focus_by_model: dict[str, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0])
    for r in read_csv(out / "focus_wasted_cost.csv"):
        cell = focus_by_model[r["SkuId"]]
        cell[0] += Decimal(r["BilledCost"])
        cell[1] += Decimal(r["x_TotalCost"])
        cell[2] += int(Decimal(r["ConsumedQuantity"]))
        cell[3] += int(r["x_TotalTokens"])
    for model, row in models.items():
        expected = [Decimal(row["wasted_cost_usd"]), Decimal(row["cost_usd"]), int(row["wasted_tokens"]), int(row["tokens"])]
        assert focus_by_model[model] == expected, model


def test_unpriced_and_missing_requests(tmp_path: Path) -> None:
    people = {f"usr-{i}": ("alpha", "eng") for i in range(5)}
    requests = [
        ("usr-0", "2026-09-07 10:00:00", "sonnet-4.5", 100, 100, 2.00),
        ("usr-0", "2026-09-07 11:00:00", "mystery-model", 500, 500, None),  # unpriced: no share of the cost
    ]
    db = build_db(
        tmp_path / "u.duckdb", requests, {("usr-0", W1): 0.5}, people,
        extra_user_weeks=[("usr-1", W1, 3.0, 1.25)],  # waste recorded, no request to split it by
    )
    out = tmp_path / "out"
    write_report(db, out)
    models = {r["model"]: r for r in read_csv(out / "wasted_by_model.csv")}
    assert models["sonnet-4.5"]["wasted_cost_usd"] == "1.00"
    assert models["mystery-model"]["wasted_cost_usd"] == "0.00"
    assert models["unattributed"]["wasted_cost_usd"] == "1.25"
    assert models["unattributed"]["provider"] == "Unknown"
    assert cents(list(models.values()), "wasted_cost_usd") == Decimal("2.25")
    # the unpriced request: $0, but its tokens (and its wasted tokens: half the week was wasted) are counted
    mystery = models["mystery-model"]
    assert (mystery["unpriced_requests"], mystery["unpriced_tokens"], mystery["tokens"]) == ("1", "1000", "1000")
    assert (mystery["cost_usd"], mystery["wasted_tokens"]) == ("0.00", "500")  # 1,000 of 1,200 tokens x 50%
    assert models["sonnet-4.5"]["unpriced_tokens"] == "0"
    (summary,) = read_csv(out / "summary.csv")
    assert (summary["unpriced_requests"], summary["unpriced_tokens"], summary["unpriced_models"]) == ("1", "1000", "mystery-model")
    # kept in FOCUS as a $0 row with its quantity
    (row,) = [r for r in read_csv(out / "focus_wasted_cost.csv") if r["SkuId"] == "mystery-model"]
    assert (row["BilledCost"], row["ConsumedQuantity"], row["x_UnpricedTokens"], row["x_TotalTokens"]) == ("0.00", "500.0", "1000", "1000")
    assert row["ProviderName"] == row["InvoiceIssuerName"] == "Unknown"
    assert "requests with no price counted at $0" in row["ChargeDescription"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "1 request, 1,000 tokens of models with no price are counted at $0 (mystery-model)" in page


def test_flags_without_wasted_cost_are_explained(tmp_path: Path) -> None:
    """A team flagged only for deployment splitting shows $0.00 wasted, and the page says why."""
    people = {**{f"usr-a{i}": ("alpha", "eng") for i in range(5)}, **{f"usr-z{i}": ("zeta", "eng") for i in range(5)}}
    requests = [(u, "2026-09-08 10:00:00", "sonnet-4.5", 1000, 100, 2.0) for u in people]
    splitting = ["iforest", "rule:deployment_splitting"]
    db = build_db(
        tmp_path / "z.duckdb", requests, {("usr-a0", W1): 0.5}, people,
        zero_flags={("usr-z0", W1): splitting, ("usr-z1", W1): splitting, ("usr-a1", W1): ["iforest"]},
    )
    with duckdb.connect(str(db)) as con:  # the run's settings, as the pipeline records them
        con.execute("UPDATE runs SET config = ?", [json.dumps({"detectors": {"rules": [
            {"name": "deployment_splitting", "level": "user_week", "wasted_cost": "0",
             "description": "Work split into many tiny changes, each deployed on its own."},
            {"name": "deployment_splitting", "level": "session", "wasted_cost": "cost_usd", "description": "not this one"},
        ]}})])
    out = tmp_path / "out"
    write_report(db, out)
    teams = {r["team"]: r for r in read_csv(out / "wasted_by_team.csv")}
    zeta, alpha = teams["zeta"], teams["alpha"]
    assert (zeta["flagged_user_weeks"], zeta["flagged_user_weeks_without_waste"], zeta["wasted_cost_usd"]) == ("2", "2", "0.00")
    assert zeta["detectors_without_waste"] == "iforest, rule:deployment_splitting"
    assert (alpha["flagged_user_weeks"], alpha["flagged_user_weeks_without_waste"], alpha["detectors_without_waste"]) == ("2", "1", "iforest")
    (summary,) = read_csv(out / "summary.csv")
    assert (summary["flagged_user_weeks"], summary["flagged_user_weeks_without_waste"]) == ("4", "3")
    page = (out / "report.html").read_text(encoding="utf-8")
    note = html.unescape(page[page.index('id="flags-without-waste"'):].split("</p>")[0])
    assert "3 of 4 flagged user-weeks carry no wasted cost, so this team is flagged yet shows $0.00 wasted: zeta." in note
    assert ("2 user-weeks raised by the deployment splitting rule (Work split into many tiny changes, each deployed "
            "on its own), which flags gaming of a metric, not wasted compute: its wasted cost is $0 by design") in note
    assert "1 user-week flagged by the anomaly models alone" in note
    cell = [r for r in page.split("<tr>") if '<td class="text">zeta</td>' in r][0]
    assert "2 of 5 (2 at $0)" in cell


def test_html_parses_and_holds_its_charts(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(db, out)
    path = out / "report.html"
    raw = path.read_text(encoding="utf-8")
    page = parse(path)
    assert {"chart-share", "chart-week", "chart-team", "chart-model"} <= set(page.svgs)
    week = page.svgs["chart-week"]
    assert [b["data-week"] for b in week["bars"]] == ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28"]
    assert float(week["bars"][2]["height"]) == 0.0  # the empty week
    assert len(week["trend"]) == 1
    teams = [r for r in read_csv(out / "wasted_by_team.csv") if Decimal(r["wasted_cost_usd"]) > 0]
    assert [b["data-label"] for b in page.svgs["chart-team"]["bars"]] == [r["team"] for r in teams]
    assert len(page.svgs["chart-model"]["bars"]) == 4
    bar_heights = [float(b["height"]) for b in page.svgs["chart-team"]["bars"]]
    assert bar_heights == sorted(bar_heights, reverse=True)
    # self-contained: no external resource, nothing fetched
    assert "http://" not in raw and "https://" not in raw
    assert not {"script", "link", "img", "iframe", "object"} & set(page.tags)
    assert not [v for v in page.attr_values if v.startswith(("//", "data:"))]
    # escaped values, headline numbers, run and period
    assert "R&amp;D &lt;beta&gt;" in raw and "<beta>" not in raw
    summary = read_csv(out / "summary.csv")[0]
    assert f"${Decimal(summary['wasted_cost_usd']):,.2f}" in raw
    assert f"${Decimal(summary['total_cost_usd']):,.2f}" in raw
    assert RUN_ID in raw and "07 Sep 2026" in raw
    assert "How this is computed" in raw


def test_empty_database_gives_an_empty_report(tmp_path: Path) -> None:
    db = build_db(tmp_path / "e.duckdb", [], {})
    out = tmp_path / "out"
    summary = write_report(db, out)
    assert (summary.total_cost_usd, summary.wasted_cost_usd, summary.weeks, summary.teams) == (0.0, 0.0, 0, 0)
    assert read_csv(out / "wasted_by_week.csv") == []
    assert read_csv(out / "focus_wasted_cost.csv") == []
    assert "No AI usage" in (out / "report.html").read_text(encoding="utf-8")


def test_unusable_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing.duckdb", tmp_path / "out")
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    with pytest.raises(ReportError, match="user_week_scores"):
        write_report(bare, tmp_path / "out")
    with pytest.raises(ValueError):
        write_report(bare, tmp_path / "out", min_team_size=0)


def rules_only_run(root: Path, *, users: int, weeks: int, seed: int) -> Path:
    """A generated world run through the whole pipeline, scored by the rules alone (no model
    fitting: fast); its database."""
    from data.generate import generate_world
    from pipeline.settings import Settings
    from flows import run_local

    generate_world(root / "world", users=users, weeks=weeks, seed=seed)
    config = root / "rules_only.toml"
    config.write_text("[detectors.policy]\nmin_model_rows = 1000000\n", encoding="utf-8")
    db = root / "g.duckdb"
    run_local(root / "world", db, Settings.from_file(config))
    return db


def test_report_of_a_tiny_generated_world(tmp_path: Path) -> None:
    """The whole pipeline on a generated world, scored by the rules alone (~2 s)."""
    db = rules_only_run(tmp_path, users=15, weeks=2, seed=1)
    out = tmp_path / "out"
    summary = write_report(db, out)
    wasted = db_total(db, "wasted_cost_usd")
    assert wasted > 0
    assert Decimal(str(summary.wasted_cost_usd)) == wasted
    for name in ("wasted_by_week.csv", "wasted_by_team.csv", "wasted_by_model.csv"):
        assert cents(read_csv(out / name), "wasted_cost_usd") == wasted, name
    assert cents(read_csv(out / "focus_wasted_cost.csv"), "BilledCost") == wasted
    with duckdb.connect(str(db), read_only=True) as con:
        users = [u for (u,) in con.sql("SELECT DISTINCT user_id FROM user_week_scores").fetchall()]
    text = all_output_text(out)
    assert users and not [u for u in users if u in text]
    assert len(parse(out / "report.html").svgs["chart-week"]["bars"]) == summary.weeks == 2
    # the honest leaderboard: teams by AI-assisted shipped work, adding up to the run's shipped_work
    board = read_csv(out / "honest_leaderboard.csv")
    units = [Decimal(row["shipped_units"]) for row in board]
    assert board and units == sorted(units, reverse=True) and board[0]["rank"] == "1"
    with duckdb.connect(str(db), read_only=True) as con:
        (shipped,), = con.sql("SELECT sum(shipped_units) FROM shipped_work").fetchall()
    assert abs(sum(units) - Decimal(str(shipped))) <= Decimal("0.01") * len(board)
    assert 'id="honest-leaderboard"' in (out / "report.html").read_text(encoding="utf-8")
