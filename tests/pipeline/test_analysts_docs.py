"""docs/analysts.md works as written: every ```sql block returns rows on a published database of a
generated world, its ```sh commands (goodhart sql, goodhart label) and ```python blocks run.

The doc's commands name `demo/goodhart.duckdb`; here it is the test's database, and FLAG_ID (the
flag an analyst picked) is the top flagged user-week.
"""
from __future__ import annotations

import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from data.generate import generate_world
from pipeline import cli
from pipeline.settings import Settings
from pipeline.ops.sql_session import sql_session
from flows import run_local

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
DEMO_DB = "demo/goodhart.duckdb"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w+)\n(?P<body>.*?)^(?P=indent)```$", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[tuple[int, str]]:
    """(line number, text) of the doc's fenced blocks in `lang`, dedented."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match["lang"] == lang:
            indent = len(match["indent"])
            body = "\n".join(line[indent:] for line in match["body"].splitlines())
            found.append((text.count("\n", 0, match.start()) + 1, body))
    return found


def commands(block: str) -> list[list[str]]:
    """The shell commands of a block: continuation lines joined, comments dropped."""
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


SQL = blocks("sql")
SHELL = [command for _, block in blocks("sh") for command in commands(block)]
PYTHON = blocks("python")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A published database of a generated world (60 people, 3 weeks: enough rows for the models,
    so near misses exist; ~3 s) after the doc's `goodhart label` commands; and the flag they judged."""
    root = tmp_path_factory.mktemp("analysts")
    generate_world(root / "world", users=60, weeks=3, seed=3)
    db = root / "goodhart.duckdb"
    run_local(root / "world", db, Settings())
    with duckdb.connect(str(db), read_only=True) as con:
        (flag_id,), = con.sql("SELECT flag_id FROM flagged_user_weeks ORDER BY score DESC LIMIT 1").fetchall()
    for command in SHELL:
        if command[:2] == ["goodhart", "label"]:
            cli.main([_in_test(arg, db, flag_id) for arg in command[1:]])
    return db, flag_id


def _in_test(arg: str, db: Path, flag_id: str) -> str:
    return arg.replace(DEMO_DB, str(db)).replace("FLAG_ID", flag_id)


def test_the_doc_has_the_blocks_this_test_reads() -> None:
    assert len(SQL) >= 10
    assert ["goodhart", "label"] in [command[:2] for command in SHELL]
    assert len(PYTHON) >= 1
    prose = FENCE.sub("", DOC.read_text(encoding="utf-8"))
    assert not re.search(r"^ {4,}\S", prose, re.MULTILINE), "an indented (unfenced) code block: fence it so this test runs it"


@pytest.mark.parametrize(("line", "query"), SQL, ids=[f"line-{line}" for line, _ in SQL])
def test_every_query_returns_rows(published: tuple[Path, str], line: int, query: str) -> None:
    db, _ = published
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql(query).fetchall()
    assert rows, f"docs/analysts.md line {line} returned no rows"


def test_the_recorded_verdict_shows_in_the_views(published: tuple[Path, str]) -> None:
    db, flag_id = published
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT verdict FROM flagged_user_weeks WHERE flag_id = ?", [flag_id]).fetchall() == [("confirmed",)]


@pytest.mark.parametrize("command", [c for c in SHELL if c[:2] == ["goodhart", "sql"]], ids=lambda c: " ".join(c[2:])[:40])
def test_goodhart_sql_commands_print_rows(published: tuple[Path, str], command: list[str]) -> None:
    db, flag_id = published
    db_arg, *query = (_in_test(arg, db, flag_id) for arg in command[2:])
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("SELECT count(*) AS flags FROM flags;\n")  # what the session without a query reads
    assert sql_session(Path(db_arg), query[0] if query else None, out=out, err=err, stdin=stdin) == 0
    assert err.getvalue() == ""
    assert re.search(r"^\(\d+ rows?\)$", out.getvalue(), re.MULTILINE), out.getvalue()


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"line-{line}" for line, _ in PYTHON])
def test_python_examples_print_whole_reasons(published: tuple[Path, str], line: int, code: str) -> None:
    db, _ = published
    done = subprocess.run([sys.executable, "-c", code.replace(DEMO_DB, str(db))],
                          capture_output=True, text=True, timeout=60, check=True)
    with duckdb.connect(str(db), read_only=True) as con:
        (reasons,), = con.sql("SELECT reasons FROM flagged_user_weeks LIMIT 1").fetchall()
    assert reasons in done.stdout


@pytest.mark.parametrize("command", [c for c in SHELL if c[:2] == ["goodhart", "explain"]], ids=lambda c: c[1])
def test_goodhart_explain_writes_the_case_file_the_views_name(
    published: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    db, flag_id = published
    monkeypatch.chdir(tmp_path)  # the doc's --out is relative
    cli.main([_in_test(arg, db, flag_id) for arg in command[1:]])
    with duckdb.connect(str(db), read_only=True) as con:
        (case_file,), = con.execute("SELECT case_file FROM flagged_user_weeks WHERE flag_id = ?", [flag_id]).fetchall()
    out = Path(command[command.index("--out") + 1])
    assert flag_id in (tmp_path / out / case_file).read_text(encoding="utf-8")
