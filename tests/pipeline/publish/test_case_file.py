"""`goodhart explain`: a case file for every kind of flag (each detector at each level that flags in
an agentic world) renders in headless Chromium: every chart drawn by vega-embed, no console message
at all (the page logs nothing when it works), a screenshot that shows the charts' colours.

Chromium is Debian's `chromium` (`.ci/run` installs it); without it these tests skip. Set
GOODHART_CASE_FILE_PNG=docs/images/case-file.png to refresh the README's screenshot from this test.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from PIL import Image

from data.generate import generate_world
from pipeline.publish.case_file import case_file_name, write_case_file
from pipeline.settings import Settings
from flows import run_local
from pipeline.ops.verdicts import record_verdict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; .ci/run does it)")

# Vega's default category colours (tableau10): blue and orange are the first two series of every chart
VEGA_BLUE, VEGA_ORANGE = (0x4C, 0x78, 0xA8), (0xF5, 0x85, 0x18)
CHART = re.compile(r'<div (?P<attrs>[^>]*\bid="chart-(?P<name>\w+)"[^>]*)>(?P<body>.*?)(?=<div [^>]*\bid="chart-|<h2)', re.DOTALL)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An agentic world where many kinds flag (60 people, 3 weeks: ~8 s), with two verdicts on its top flag."""
    root = tmp_path_factory.mktemp("case_file")
    generate_world(root / "world", users=60, weeks=3, seed=3, style="agentic")
    db = root / "goodhart.duckdb"
    run_local(root / "world", db, Settings())
    top = _query(db, "SELECT flag_id FROM flags ORDER BY score DESC LIMIT 1")[0][0]
    record_verdict(db, top, "unsure", now=datetime(2026, 10, 1, 9, tzinfo=timezone.utc), note="ask the team", analyst="ana")
    record_verdict(db, top, "confirmed", now=datetime(2026, 10, 2, 9, tzinfo=timezone.utc), note="script loop", analyst="ana")
    return db


def _query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def flag_kinds(db: Path) -> dict[tuple[str, str], str]:
    """(level, detector) -> one flag it raised, for every kind that flagged: the flag raised by the most
    detectors (then the highest score), so that few pages cover every kind."""
    rows = _query(db, "SELECT level, d, arg_max(flag_id, (len(detectors), score)) FROM flags, unnest(detectors) AS t(d) "
                      "GROUP BY ALL ORDER BY ALL")
    return {(level, detector): flag_id for level, detector, flag_id in rows}


def chromium(page: Path, profile: Path, *, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """Open `page` in headless Chromium until its scripts are idle: (the DOM after them, or "" with
    a screenshot; every console message the page logged)."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
        "--window-size=1150,2300",
    ]
    command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*command, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def drawn_charts(dom: str) -> dict[str, bool]:
    """Each chart container of the DOM: whether vega-embed drew an SVG into it and marked it rendered."""
    return {m["name"]: 'data-rendered="true"' in m["attrs"] and "<svg" in m["body"] for m in CHART.finditer(dom)}


def test_the_world_flags_every_level_and_many_kinds(published: Path) -> None:
    kinds = flag_kinds(published)
    for level in ("user_week", "session"):
        assert {(level, "iforest"), (level, "ensemble")} <= set(kinds), kinds
    rules = {(level, detector) for level, detector in kinds if detector.startswith("rule:")}
    assert len({d for level, d in rules if level == "user_week"}) >= 8, rules
    assert len({d for level, d in rules if level == "session"}) >= 4, rules


@needs_chromium
def test_the_console_check_catches_a_page_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<html><body><script>throw new Error("broken chart")</script></body></html>')
    _, console = chromium(page, tmp_path / "profile")
    assert any("broken chart" in line for line in console), console


@needs_chromium
@pytest.mark.slow
def test_a_case_file_of_every_flag_kind_renders_its_charts_without_console_messages(
    published: Path, tmp_path: Path
) -> None:
    kinds = flag_kinds(published)
    for flag_id in sorted(set(kinds.values())):  # one page per flag, checked for each kind it stands for
        dom, console = chromium(write_case_file(published, flag_id, tmp_path / "cases"), tmp_path / "profile")
        charts = drawn_charts(dom)
        for level, detector in (kind for kind, flag in kinds.items() if flag == flag_id):
            what = f"{level} flag {flag_id} ({detector})"
            assert console == [], f"{what}: console messages {console}"
            contributions = "rule_contributions" if detector.startswith(("rule:", "week_rule:")) else "model_contributions"
            assert {"timeline", "peers", contributions} <= set(charts), f"{what}: charts {charts}"
            assert all(charts.values()), f"{what}: charts not drawn {charts}"
        text = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)
        assert flag_id in text and not re.search(r">\s*(None|nan|NaN)\s*<", text), flag_id


@needs_chromium
@pytest.mark.slow
def test_the_screenshot_shows_the_charts(published: Path, tmp_path: Path) -> None:
    flag_id = _query(published, "SELECT flag_id FROM flagged_user_weeks ORDER BY score DESC LIMIT 1")[0][0]
    page = write_case_file(published, flag_id, tmp_path / "cases")
    png = tmp_path / "case-file.png"
    chromium(page, tmp_path / "profile", screenshot=png)
    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "a near-blank screenshot"
    present = {colour for _, colour in colours}
    assert VEGA_BLUE in present and VEGA_ORANGE in present, "the charts' series colours are not on the screenshot"
    if target := os.environ.get("GOODHART_CASE_FILE_PNG"):
        top = image.crop((0, 0, image.width, 1500)).quantize(colors=256)  # the flag, its timeline and peer chart
        top.save(target, optimize=True)


def test_the_verdict_history_is_on_the_page(published: Path, tmp_path: Path) -> None:
    flag_id = _query(published, "SELECT flag_id FROM flags ORDER BY score DESC LIMIT 1")[0][0]
    page = write_case_file(published, flag_id, tmp_path).read_text(encoding="utf-8")
    history = page[page.index("Verdict history"):]
    assert history.index("unsure") < history.index("confirmed") and "ask the team" in history and "script loop" in history


def test_explain_writes_the_file_the_flagged_views_name(published: Path, tmp_path: Path) -> None:
    (flag_id, case_file), = _query(published, "SELECT flag_id, case_file FROM flagged_sessions ORDER BY score DESC LIMIT 1")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "explain", flag_id, "--db", str(published),
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert case_file == case_file_name(flag_id) and (tmp_path / case_file).is_file()
    assert done.stdout.strip() == f"wrote {tmp_path / case_file}"


def test_an_unknown_flag_is_one_line_and_exit_code_2(published: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "explain", "user_week:nobody:2026-01-05",
                           "--db", str(published), "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"goodhart: error: no flag 'user_week:nobody:2026-01-05' in the last run of {published.name}"]
    assert not list(tmp_path.iterdir())
