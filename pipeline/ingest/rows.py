"""What a reader gives: a file's positioned rows (`FileRows`) and its rejected records, and the SQL
text helpers readers and the loader share (literals, identifiers, redacted columns)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class FileRows:
    """A file as DuckDB sees it: rows to validate and the records already rejected."""

    relation: str | None  # FROM item with __position and the file's columns; None: no rows
    columns: dict[str, str]  # column name -> DuckDB type, as the file holds them
    raw_sql: str  # SQL expression over `relation`: the row as text, prompt text redacted
    rows_given: int  # records in the file: rows of `relation` + `rejects`
    rejects: pa.Table  # (position BIGINT, raw VARCHAR, reason VARCHAR)
    release: Callable[[], None] = field(default=lambda: None)  # drops what the reader registered


class UnreadableFileError(Exception):
    """A file that cannot be read at all; the message is the short reason."""


def unreadable_file(message: str) -> FileRows:
    """The whole file as one rejected record at position 0."""
    return rejected_file(f"unreadable file: {message}")


def rejected_file(reason: str) -> FileRows:
    """The whole file as one rejected record at position 0, with `reason`."""
    return FileRows(None, {}, "NULL", 1, rejects_table([0], [None], [reason]))


def short_error(exc: BaseException) -> str:
    """A one-line error without quoted values (they may hold prompt text) and without paths."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^[A-Za-z ]+ Error: ", "", text)
    text = re.sub(r"\"[^\"]*\"|'[^']*'|`[^`]*`", "…", text)
    return text[:ERROR_CHARS].strip() or type(exc).__name__


# --- rejected records ------------------------------------------------------------------


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def redacted_columns(columns, redact: frozenset[str]) -> frozenset[str]:
    """The columns whose text raw rows must never show: a `redact` name ignoring case and blanks,
    also with the `_N` suffix a repeated header name gets (`prompt_text,prompt_text` or `Prompt_Text`)."""
    wanted = {name.lower() for name in redact}
    return frozenset(c for c in columns if re.sub(r"(_\d+)+$", "", c.strip().lower()) in wanted)


def glob_literal(path: str) -> str:
    """A path for DuckDB's file readers that matches only itself: they expand `*`, `?` and `[...]`
    (a folder `in[1]` would read `in1`), so each is put in a one-character class."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_path_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rejects_table(positions: list[int], raws: list[str | None], reasons: list[str]) -> pa.Table:
    return pa.table(
        {
            "position": pa.array(positions, pa.int64()),
            "raw": pa.array(raws, pa.string()),
            "reason": pa.array(reasons, pa.string()),
        }
    )


def damage_reject(records_before: int, damage: str) -> pa.Table:
    """The part of a damaged file that was lost, as one reject after the records read before it
    (position 0, the whole file, when none was)."""
    return rejects_table([records_before + 1 if records_before else 0], [None], [f"unreadable file: {damage}"])


# settings
ERROR_CHARS = 100  # characters of an error message kept in a reason
