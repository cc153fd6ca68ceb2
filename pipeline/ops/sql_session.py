"""`goodhart sql FILE [QUERY]`: a read-only SQL session on a published database.

With a query, run it and print every result whole; without, read statements ending in `;` from
stdin until `.quit` or end of input. Results print as a table when it fits the terminal, else one
record per block with long values wrapped, never cut off.
"""
from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

import duckdb

from pipeline.storage import connect

PROMPT = "goodhart> "
CONTINUE = "      ...> "
HISTORY = Path("~/.goodhart_sql_history")
HELP = """\
Statements end with ';' and may span lines. The database is open read-only.
  .tables       list the tables and views
  .quit, .exit  leave (or Ctrl-D)
  .help         this text"""
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


class SessionError(Exception):
    """The database cannot be opened."""


def sql_session(
    db: Path, query: str | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
    stdin: TextIO | None = None, width: int | None = None,
) -> int:
    """Run `query` on `db` read-only, or an interactive session when None; the exit code: 0, 1 when
    the query failed, 2 when `db` cannot be opened."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    stdin = sys.stdin if stdin is None else stdin
    width = width or shutil.get_terminal_size((120, 24)).columns
    try:
        con = open_read_only(db)
    except SessionError as error:
        print(f"goodhart sql: {error}", file=err)
        return 2
    with con:
        try:
            if query is not None:
                return 0 if run_statements(con, query, out, err, width) else 1
            interactive(con, stdin, out, err, width)
        except BrokenPipeError:  # e.g. `goodhart sql ... | head`: the reader has seen enough
            if out is sys.stdout:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def open_read_only(db: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to an existing DuckDB file (SessionError otherwise)."""
    if not db.exists():
        raise SessionError(f"no such file: {db}")
    if not db.is_file():
        raise SessionError(f"not a file: {db}")
    try:
        return connect(db, read_only=True)
    except duckdb.Error as error:
        raise SessionError(f"cannot open {db} as a DuckDB database: {one_line(error)}") from None


def run_statements(con: duckdb.DuckDBPyConnection, text: str, out: TextIO, err: TextIO, width: int) -> bool:
    """Run each statement of `text` and print its result; stop at the first error (one line on `err`)."""
    try:
        for statement in con.extract_statements(text):
            if statement.expected_result_type != [duckdb.ExpectedResultType.QUERY_RESULT]:
                con.execute(statement.query)  # SET, CREATE TEMP ...: nothing to print
                continue
            relation = con.sql(statement.query)
            print_result(relation.columns, [str(t) for t in relation.types], text_rows(relation), out, width)
    except duckdb.Error as error:
        print(f"Error: {one_line(error)}", file=err)
        return False
    except KeyboardInterrupt:
        con.interrupt()
        print("Error: interrupted", file=err)
        return False
    return True


def text_rows(relation: duckdb.DuckDBPyRelation) -> list[tuple[str | None, ...]]:
    """The rows with every value as DuckDB prints it (dates, lists, structs...); NULL as None."""
    return relation.query("__result", "SELECT COLUMNS(*)::VARCHAR FROM __result").fetchall()


def interactive(con: duckdb.DuckDBPyConnection, stdin: TextIO, out: TextIO, err: TextIO, width: int) -> None:
    """Read statements from `stdin` until `.quit` or end of input; errors do not end the session."""
    tty = stdin.isatty() and stdin is sys.stdin
    if tty:
        print("goodhart sql: read-only; statements end with ';', .help for help, .quit to leave", file=out)
    with readline_history(enabled=tty):
        buffer: list[str] = []
        for line in read_lines(stdin, out, tty, pending=lambda: bool(buffer)):
            if line is None:  # Ctrl-C: drop the statement being typed
                buffer.clear()
                continue
            if not buffer and line.strip().startswith("."):
                if not dot_command(con, line.strip(), out, err, width):
                    return
                continue
            buffer.append(line)
            text = "\n".join(buffer)
            if text.strip() and complete(con, text):
                run_statements(con, text, out, err, width)
                buffer.clear()
        if "".join(buffer).strip():
            print("Error: input ended inside a statement (no ';')", file=err)


def read_lines(stdin: TextIO, out: TextIO, tty: bool, pending: Callable[[], bool]) -> Iterator[str | None]:
    """Lines typed (with prompts and readline on a terminal) or piped in; None after Ctrl-C."""
    while True:
        if tty:
            try:
                yield input(CONTINUE if pending() else PROMPT)
            except EOFError:
                print(file=out)
                return
            except KeyboardInterrupt:
                print(file=out)
                yield None
        else:
            line = stdin.readline()
            if not line:
                return
            yield line.rstrip("\n")


def complete(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """Whether `text` ends a statement: it ends in ';' outside a string or comment."""
    if not text.rstrip().endswith(";"):
        return False
    try:
        con.extract_statements(text)
    except duckdb.ParserException as error:
        return "unterminated" not in str(error)
    return True


def dot_command(con: duckdb.DuckDBPyConnection, command: str, out: TextIO, err: TextIO, width: int) -> bool:
    """Run a dot command; False when it ends the session."""
    name = command.split()[0].lower()
    if name in (".quit", ".exit", ".q"):
        return False
    if name == ".help":
        print(HELP, file=out)
    elif name == ".tables":
        run_statements(con, "SELECT table_name AS name, table_type AS type FROM information_schema.tables "
                            "ORDER BY table_type, table_name", out, err, width)
    else:
        print(f"Error: unknown command {name} (.help lists them)", file=err)
    return True


def one_line(error: BaseException) -> str:
    """An error message on one line."""
    return " ".join(str(error).split())


def print_result(
    columns: Sequence[str], types: Sequence[str], rows: Sequence[tuple[str | None, ...]], out: TextIO, width: int,
) -> None:
    """A table when every row fits in `width` on one line, else one block per record."""
    cells = [["NULL" if value is None else value for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    one_line_values = not any("\n" in value for row in cells for value in row)
    if one_line_values and sum(widths) + 2 * (len(widths) - 1) <= width:
        print_table(columns, types, cells, widths, out)
    else:
        print_records(columns, cells, out, width)
    print(f"({len(rows)} row{'' if len(rows) == 1 else 's'})", file=out)


def print_table(columns: Sequence[str], types: Sequence[str], cells: list[list[str]], widths: list[int], out: TextIO) -> None:
    numeric = [t.split("(")[0] in NUMERIC for t in types]

    def line(values: Sequence[str], right: Sequence[bool]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    print(line(columns, [False] * len(columns)), file=out)
    print(line(["-" * w for w in widths], [False] * len(widths)), file=out)
    for row in cells:
        print(line(row, numeric), file=out)


def print_records(columns: Sequence[str], cells: list[list[str]], out: TextIO, width: int) -> None:
    label = max(len(name) for name in columns)
    room = max(20, width - label - 3)
    for number, row in enumerate(cells, 1):
        print(f"-[ record {number} ]".ljust(min(width, label + 3 + room), "-"), file=out)
        for name, value in zip(columns, row):
            lines = [piece for paragraph in value.split("\n") for piece in wrap(paragraph, room)]
            for i, piece in enumerate(lines):
                print(f"{name if i == 0 else '':<{label}} | {piece}".rstrip(), file=out)


def wrap(text: str, room: int) -> list[str]:
    """`text` in lines of at most `room` characters, split at spaces where it can; nothing dropped
    but the spaces the lines are split at."""
    return textwrap.wrap(text, room, break_on_hyphens=False, replace_whitespace=False) or [""]


@contextmanager
def readline_history(*, enabled: bool) -> Iterator[None]:
    """Line editing and a history file for a terminal session (nothing without readline)."""
    readline = None
    if enabled:
        with suppress(ImportError):
            import readline  # input() edits lines and recalls history once it is imported
    path = HISTORY.expanduser()
    if readline is not None:
        with suppress(OSError):
            readline.read_history_file(path)
    try:
        yield
    finally:
        if readline is not None:
            with suppress(OSError):
                readline.set_history_length(1000)
                readline.write_history_file(path)
