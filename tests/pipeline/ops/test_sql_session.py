"""`goodhart sql`: a read-only SQL session that prints results whole."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import duckdb
import pytest

from pipeline.ops.sql_session import sql_session

LONG = " ".join(f"reason-{i} of the flag;" for i in range(60))  # ~1.3k characters, wider than any terminal


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "g.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE flags (flag_id VARCHAR, score DOUBLE, reasons VARCHAR, detectors VARCHAR[])")
        con.execute("INSERT INTO flags VALUES ('user_week:u1:2026-10-05', 0.97, ?, ['rule:a', 'iforest']), "
                    "('user_week:u2:2026-10-05', 0.5, NULL, [])", [LONG])
        con.execute("CREATE VIEW flagged AS FROM flags WHERE score > 0.9")
    return path


def run(db: Path, query: str | None = None, stdin: str = "", width: int = 100) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = sql_session(db, query, out=out, err=err, stdin=io.StringIO(stdin), width=width)
    return code, out.getvalue(), err.getvalue()


def record_value(text: str, column: str) -> str:
    """A column's value in the one-record-per-block output, its wrapped lines joined again."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split(" | ")[0].strip() == column)
    pieces = [lines[start].split(" | ", 1)[1]]
    for line in lines[start + 1:]:
        label, _, value = line.partition(" | ")
        if label.strip() or not _:
            break
        pieces.append(value)
    return " ".join(pieces)


def test_a_query_prints_long_text_whole_one_record_per_block(db: Path) -> None:
    code, out, err = run(db, "SELECT flag_id, reasons, detectors FROM flagged", width=80)
    assert (code, err) == (0, "")
    assert max(len(line) for line in out.splitlines()) <= 80
    assert record_value(out, "reasons") == LONG
    assert record_value(out, "flag_id") == "user_week:u1:2026-10-05"
    assert record_value(out, "detectors").replace("'", "") == "[rule:a, iforest]"  # as DuckDB casts a list
    assert out.splitlines()[-1] == "(1 row)"


def test_a_result_that_fits_prints_as_a_table(db: Path) -> None:
    code, out, _ = run(db, "SELECT flag_id, score, reasons IS NULL AS no_reasons FROM flags ORDER BY score DESC")
    assert code == 0
    assert out.splitlines() == [
        "flag_id                  score  no_reasons",
        "-----------------------  -----  ----------",
        "user_week:u1:2026-10-05   0.97  false",
        "user_week:u2:2026-10-05    0.5  true",
        "(2 rows)",
    ]


def test_null_and_several_statements(db: Path) -> None:
    code, out, _ = run(db, "SELECT reasons FROM flags WHERE score < 0.9; SET VARIABLE x = 2; SELECT getvariable('x') AS x")
    assert code == 0
    assert out.splitlines() == ["reasons", "-------", "NULL", "(1 row)", "x", "-", "2", "(1 row)"]


def test_a_bad_query_is_one_line_on_stderr_and_exit_code_1(db: Path) -> None:
    code, out, err = run(db, "SELECT * FROM flag")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("Error: Catalog Error: Table with name flag does not exist")


def test_the_session_is_read_only(db: Path) -> None:
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    code, _, err = run(db, "DELETE FROM flags")
    assert code == 1 and "read-only" in err
    code, out, _ = run(db, "CREATE TEMP TABLE mine AS SELECT 1 AS i; SELECT i FROM mine")  # scratch tables are fine
    assert code == 0 and "(1 row)" in out
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("make", ["missing", "text", "directory"])
def test_a_file_that_is_not_a_duckdb_database_is_exit_code_2(tmp_path: Path, make: str) -> None:
    path = tmp_path / "g.duckdb"
    if make == "text":
        path.write_text("not a database\n")
    elif make == "directory":
        path.mkdir()
    code, out, err = run(path, "SELECT 1")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("goodhart sql: ") and str(path) in err
    assert make != "missing" or not path.exists()


def test_an_interactive_session_reads_statements_until_quit(db: Path) -> None:
    stdin = (
        "SELECT count(*) AS n\n"
        "FROM flags;\n"
        "SELECT nope;\n"                      # an error: one line, the session goes on
        "SELECT 'a;\nb' AS s; SELECT 2 AS two;\n"  # a ';' inside a string does not end the statement
        ".tables\n"
        ".frobnicate\n"
        ".quit\n"
        "SELECT 3 AS three;\n"
    )
    code, out, err = run(db, None, stdin)
    assert code == 0
    assert out.splitlines()[:4] == ["n", "-", "2", "(1 row)"]
    assert "two\n---\n  2\n(1 row)" in out
    assert "\ns | a;\n  | b\n" in out
    assert "flagged  VIEW" in out and "flags    BASE TABLE" in out
    assert "three" not in out
    assert err.splitlines() == [err.splitlines()[0], "Error: unknown command .frobnicate (.help lists them)"]
    assert err.startswith("Error: Binder Error:") and "nope" in err.splitlines()[0]


def test_an_interactive_session_ends_at_end_of_input(db: Path) -> None:
    code, out, err = run(db, None, "SELECT 1 AS one;\nSELECT 2")
    assert code == 0 and "one" in out
    assert err == "Error: input ended inside a statement (no ';')\n"
