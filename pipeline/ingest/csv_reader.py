"""The CSV reader: records split set-wise (RFC 4180 quoting), well-formed ones parsed as text columns.

Positions are record numbers after the header, blank lines not counted; a malformed record (quote
misuse, wrong field count) is one reject with its raw text (withheld in a file with prompt text).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from pipeline.ingest import fingerprint
from pipeline.ingest.rows import FileRows, UnreadableFileError, damage_reject, redacted_columns, rejects_table, unreadable_file


@dataclass(frozen=True)
class CsvRecords:
    """Record boundaries of a CSV text: [starts[i], ends[i]) without the line break."""

    starts: np.ndarray
    ends: np.ndarray
    malformed: np.ndarray  # bool per record: quote misuse or unterminated quote
    complete: np.ndarray  # bool per record: ended by a line break (not cut by the end of data)


def split_csv_records(data: bytes) -> CsvRecords:
    """Split CSV bytes into records, set-wise (RFC 4180 quoting, `"` escaped as `""`).

    A line break ends a record when an even number of quotes precede it. A quote must open at
    the start of a field and close before a separator, a line break or the end; a record
    breaking that rule, or whose quote never closes, is malformed.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buf == QUOTE)
    newlines = np.flatnonzero(buf == NEWLINE)
    breaks = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate(([0], breaks + 1)).astype(np.int64)
    ends = np.concatenate((breaks, [len(buf)])).astype(np.int64)
    complete = np.ones(len(starts), dtype=bool)
    complete[-1] = False
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == CARRIAGE_RETURN) if len(buf) else np.zeros(len(ends), bool)
    ends = ends - has_cr

    malformed = np.zeros(len(starts), dtype=bool)
    if len(quotes):
        opening = np.arange(len(quotes)) % 2 == 0
        before = np.where(quotes > 0, buf[np.maximum(quotes - 1, 0)], NEWLINE)
        after = np.where(quotes + 1 < len(buf), buf[np.minimum(quotes + 1, len(buf) - 1)], NEWLINE)
        bad_open = opening & ~np.isin(before, (COMMA, NEWLINE, QUOTE))
        bad_close = ~opening & ~np.isin(after, (COMMA, NEWLINE, CARRIAGE_RETURN, QUOTE))
        bad_quotes = quotes[bad_open | bad_close]
        malformed[np.searchsorted(starts, bad_quotes, side="right") - 1] = True
        if len(quotes) % 2:
            malformed[-1] = True
    return CsvRecords(starts, ends, malformed, complete)


def csv_field_counts(data: bytes, records: CsvRecords) -> np.ndarray:
    """Number of fields of each record: separators outside quotes, plus one."""
    buf = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buf == QUOTE)
    commas = np.flatnonzero(buf == COMMA)
    separators = commas[np.searchsorted(quotes, commas) % 2 == 0]
    owner = np.searchsorted(records.starts, separators, side="right") - 1
    return np.bincount(owner, minlength=len(records.starts)) + 1


def read_csv(
    con: duckdb.DuckDBPyConnection, data: bytes, damage: str | None, view_name: str, redact: frozenset[str]
) -> FileRows:
    records = split_csv_records(data)
    keep = records.ends > records.starts  # blank lines are not records
    if damage is not None:
        keep &= records.complete  # the record cut by the damage goes with the lost rest
    index = np.flatnonzero(keep)
    if len(index) == 0:
        rejects = damage_reject(0, damage) if damage else rejects_table([], [], [])
        return FileRows(None, {}, "NULL", rejects.num_rows, rejects)

    header_at = index[0]
    if records.malformed[header_at]:
        return unreadable_file("malformed CSV header")
    header_text = data[records.starts[header_at] : records.ends[header_at]].decode("utf-8")
    names = _unique_names(next(csv.reader([header_text])))
    body = index[1:]
    counts = csv_field_counts(data, records)[body]
    bad = records.malformed[body] | (counts != len(names))
    positions = np.arange(1, len(body) + 1, dtype=np.int64)

    good = body[~bad]
    frame = _parse_csv(_join_records(data, records, good), names)
    if frame.height != len(good):
        return unreadable_file("CSV records could not be split consistently")
    frame = frame.with_columns(pl.Series("__position", positions[~bad]))
    con.register(view_name, frame)

    hidden = redacted_columns(names, redact)
    withhold = bool(hidden)
    bad_raw = [
        fingerprint.withheld("malformed CSV record in a file with prompt text", data[records.starts[i] : records.ends[i]])
        if withhold
        else data[records.starts[i] : records.ends[i]].decode("utf-8", errors="replace")
        for i in body[bad]
    ]
    rejects = rejects_table(positions[bad].tolist(), bad_raw, ["malformed CSV record"] * len(bad_raw))
    if damage is not None:
        rejects = pa.concat_tables([rejects, damage_reject(len(body), damage)])
    return FileRows(
        view_name,
        {name: "VARCHAR" for name in names},
        fingerprint.redacted_struct_json(names, hidden),
        len(body) + (damage is not None),
        rejects,
        lambda: con.unregister(view_name),
    )


def _parse_csv(data: bytes, names: list[str]) -> pl.DataFrame:
    """Well-formed CSV records (no header) as a frame of strings."""
    schema = {name: pl.String for name in names}
    if not data:
        return pl.DataFrame(schema=schema)
    try:
        return pl.read_csv(
            io.BytesIO(data), has_header=False, new_columns=names, schema=schema, quote_char='"', raise_if_empty=False
        )
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise UnreadableFileError("invalid UTF-8") from None
        raise


def _join_records(data: bytes, records: CsvRecords, chosen: np.ndarray) -> bytes:
    """The chosen records as CSV bytes, one per line; contiguous runs are copied as one slice."""
    if len(chosen) == 0:
        return b""
    run_breaks = np.flatnonzero(np.diff(chosen) != 1) + 1
    pieces = []
    for run in np.split(chosen, run_breaks):
        first, last = run[0], run[-1]
        piece = data[records.starts[first] : records.ends[last]]
        pieces.append(piece)
    return b"\n".join(pieces) + b"\n"


def _unique_names(names: list[str]) -> list[str]:
    """Header names made unique and non-empty (the first of equal names keeps it); equal ignoring case
    counts as equal, as DuckDB's identifiers do (`extra` and `Extra` would be one ambiguous column)."""
    seen: set[str] = set()
    unique = []
    for i, name in enumerate(names, start=1):
        candidate = name.replace("\x00", "\ufffd") or f"column_{i}"  # a NUL in a name breaks the Arrow hand-over
        while candidate.lower() in seen:
            candidate = f"{candidate}_{i}"
        seen.add(candidate.lower())
        unique.append(candidate)
    return unique


QUOTE, COMMA, NEWLINE, CARRIAGE_RETURN = ord('"'), ord(","), ord("\n"), ord("\r")
