"""Readers: find a dataset's input files and expose each one to DuckDB as positioned rows.

A reader never validates values; it only turns a file into rows (`FileRows.relation`, one
row per record with its 1-based `__position`) plus the records it could not split into rows
at all (`FileRows.rejects`: malformed CSV records, malformed JSON lines, unreadable files).

Position convention: `__position` is the 1-based record number in the file.
- Parquet: the row number in the file (`file_row_number + 1`).
- CSV: the record number after the header, blank lines not counted; a quoted field may span
  lines, so a record number is not a line number.
- JSON lines: the line number among non-blank lines (whitespace-only lines are skipped).
- 0 stands for the whole file: an unreadable file, an empty file (no bytes, or only whitespace)
  or a file of an unknown format. For a truncated gzip or zstd file the records decoded before
  the damage are kept and the lost rest is one reject at the next position.

Prompt privacy: rows stay in Python memory (Arrow) or in the file; nothing here writes a table.
Raw texts for rejected rows are redacted through `fingerprint.redacted_*` for `redact` columns.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

from pipeline.ingest import fingerprint


@dataclass(frozen=True)
class InputFile:
    """One input file of a dataset."""

    path: Path
    format: str  # 'parquet' | 'csv' | 'jsonl' | 'unknown' (recorded as one reject, never read)
    compressed: bool  # gzip or zstd, by the name's last suffix (see `codec`)

    @property
    def codec(self) -> str | None:
        """'gzip' | 'zstd' for a compressed file, else None."""
        return (compression_of(self.path) or "gzip") if self.compressed else None


@dataclass
class FileRows:
    """A file as DuckDB sees it: rows to validate and the records already rejected."""

    relation: str | None  # FROM item with __position and the file's columns; None: no rows
    columns: dict[str, str]  # column name -> DuckDB type, as the file holds them
    raw_sql: str  # SQL expression over `relation`: the row as text, prompt text redacted
    rows_given: int  # records in the file: rows of `relation` + `rejects`
    rejects: pa.Table  # (position BIGINT, raw VARCHAR, reason VARCHAR)
    release: Callable[[], None] = field(default=lambda: None)  # drops what the reader registered


def find_dataset_files(input_dir: Path, dataset: str) -> list[InputFile] | None:
    """The dataset's files in sorted path order; None when input_dir has no entry for it.

    An entry is a file `DATASET.<ext>[.gz|.zst]` or a folder `DATASET/` searched recursively for
    such files (any base name). Nothing there is skipped silently: a file of the folder with
    another extension, or a top-level `DATASET.<other ext>`, is kept with format 'unknown' (the
    loader records it as rejected). Hidden files and folders (a name starting with '.') are not
    input files and are skipped.
    """
    found: list[InputFile] = []
    has_entry = False
    for entry in sorted(input_dir.iterdir()):
        if entry.is_dir() and entry.name == dataset:
            has_entry = True
            for path in sorted(p for p in entry.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in path.relative_to(entry).parts):
                    kind = input_kind(path)
                    found.append(InputFile(path, *kind) if kind else InputFile(path, UNKNOWN_FORMAT, False))
        elif entry.is_file():
            kind = input_kind(entry)
            if kind is not None and _strip_extensions(entry.name) == dataset:
                has_entry = True
                found.append(InputFile(entry, *kind))
            elif kind is None and entry.name.startswith(f"{dataset}."):
                has_entry = True
                found.append(InputFile(entry, UNKNOWN_FORMAT, False))
    if not has_entry:
        return None
    return sorted(found, key=lambda f: str(f.path))


def input_kind(path: Path) -> tuple[str, bool] | None:
    """(format, compressed) from a file name, or None for a file of no known format."""
    name = strip_compression(path.name.lower())
    for extension, fmt in FORMATS.items():
        if name.endswith(extension):
            return fmt, compression_of(path) is not None
    return None


def compression_of(path: Path) -> str | None:
    """'gzip' (`.gz`) or 'zstd' (`.zst`) from the file name's last suffix, else None."""
    return COMPRESSIONS.get(path.suffix.lower())


def strip_compression(name: str) -> str:
    """A file name without its compression suffix (`a.jsonl.zst` -> `a.jsonl`)."""
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in COMPRESSIONS else name


def unknown_format_reason(name: str, reader: str, suffixes: tuple[str, ...]) -> str:
    """The reject reason of a file no reader takes: what `reader` ('dataset', 'source') reads instead."""
    compressed = " or ".join(COMPRESSIONS)
    return f"unknown format: {name} (this {reader} reads {', '.join(suffixes)}, optionally compressed {compressed})"


def blank_file(path: Path) -> bool:
    """True for a file without content: no bytes, or only whitespace (after decompression, read
    only as far as the first non-blank byte). A damaged compressed file is not blank: its reader
    reports the damage."""
    codec = compression_of(path)
    try:
        with open(path, "rb") as fh:
            stream = None  # the gzip member or zstd frame being decoded
            while chunk := fh.read(HASH_CHUNK_BYTES):
                if codec is None:
                    if not chunk.isspace():
                        return False
                    continue
                while chunk:
                    stream = stream or _decompressor(codec)
                    out = stream.decompress(chunk)
                    if out and not out.isspace():
                        return False
                    chunk = stream.unused_data if stream.eof else b""
                    stream = None if stream.eof else stream
            return stream is None
    except (OSError, zlib.error, zstandard.ZstdError):
        return False


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 hex of the file's bytes (as stored, compressed or not) and its size."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_file(
    con: duckdb.DuckDBPyConnection,
    file: InputFile,
    *,
    view_name: str,
    list_fields: frozenset[str],
    json_fields: tuple[str, ...],
    redact: frozenset[str],
) -> FileRows:
    """Expose one file to `con` as rows named `view_name`; never raises for bad content.

    `json_fields` are the columns extracted from JSON lines (all other keys are ignored);
    of them, `list_fields` are extracted as JSON so that real lists survive. `redact` names
    columns whose value must never appear in raw text (prompt text).
    """
    if file.format == UNKNOWN_FORMAT:
        return rejected_file(unknown_format_reason(file.path.name, "dataset", tuple(FORMATS)))
    if blank_file(file.path):
        return rejected_file(EMPTY_FILE)
    try:
        if file.format == "parquet":
            return _read_parquet(con, file, view_name, redact)
        data, damage = _read_bytes(file)
        if file.format == "csv":
            return _read_csv(con, data, damage, view_name, redact)
        return _read_json_lines(con, data, damage, view_name, json_fields, list_fields, redact)
    except UnreadableFileError as exc:
        return unreadable_file(str(exc))
    except UnicodeDecodeError:
        return unreadable_file("invalid UTF-8")
    except READ_ERRORS as exc:  # the file's fault; anything else is a reader bug and propagates
        return unreadable_file(short_error(exc))


class UnreadableFileError(Exception):
    """A file that cannot be read at all; the message is the short reason."""


def unreadable_file(message: str) -> FileRows:
    """The whole file as one rejected record at position 0."""
    return rejected_file(f"unreadable file: {message}")


def rejected_file(reason: str) -> FileRows:
    """The whole file as one rejected record at position 0, with `reason`."""
    return FileRows(None, {}, "NULL", 1, _rejects([0], [None], [reason]))


def short_error(exc: BaseException) -> str:
    """A one-line error without quoted values (they may hold prompt text) and without paths."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^[A-Za-z ]+ Error: ", "", text)
    text = re.sub(r"\"[^\"]*\"|'[^']*'|`[^`]*`", "…", text)
    return text[:ERROR_CHARS].strip() or type(exc).__name__


# --- Parquet ---------------------------------------------------------------------------


def _read_parquet(con: duckdb.DuckDBPyConnection, file: InputFile, view_name: str, redact: frozenset[str]) -> FileRows:
    if file.compressed:
        data, damage = _decompress(file.path.read_bytes(), file.codec)
        if damage is not None:
            raise UnreadableFileError(damage)
        table = pq.read_table(pa.BufferReader(data))
        table = table.append_column("__position", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
        con.register(view_name, table)
        relation = view_name
        release: Callable[[], None] = lambda: con.unregister(view_name)
    else:
        relation = (
            f"(SELECT file_row_number + 1 AS __position, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({sql_literal(glob_literal(str(file.path)))}, file_row_number = true))"
        )
        release = lambda: None
    try:
        columns = _describe(con, relation)
        rows = con.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    except duckdb.Error as exc:  # a damaged footer or page may surface as any DuckDB error (thrift: plain Error)
        release()
        raise UnreadableFileError(short_error(exc)) from None
    hidden = redacted_columns(columns, redact)
    return FileRows(relation, columns, fingerprint.redacted_struct_json(list(columns), hidden), rows, _rejects([], [], []), release)


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    described = con.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {name: str(dtype) for name, dtype, *_ in described if name != "__position"}


# --- bytes -----------------------------------------------------------------------------


def read_bytes(path: Path) -> tuple[bytes, str | None]:
    """A file's bytes, decompressed when its name ends in `.gz` or `.zst`, BOM stripped, and for
    a damaged gzip or zstd file what went wrong (the bytes are those decoded before the damage).
    For source adapters."""
    return _read_bytes(InputFile(path, "jsonl", compression_of(path) is not None))


def lines_array(data: bytes) -> pa.LargeStringArray:
    """Every line of `data` (line break included) as one Arrow string; raises UnreadableFileError
    on invalid UTF-8. For source adapters."""
    return _lines_array(data)


def _read_bytes(file: InputFile) -> tuple[bytes, str | None]:
    """The file's decoded bytes and, for a damaged gzip or zstd file, what went wrong (the bytes
    decoded before)."""
    raw = file.path.read_bytes()
    if not file.compressed:
        return _strip_bom(raw), None
    data, damage = _decompress(raw, file.codec)
    return _strip_bom(data), damage


def _decompress(raw: bytes, codec: str | None) -> tuple[bytes, str | None]:
    """gzip or zstd bytes decoded, and what went wrong: `truncated <codec>` when the last member
    (frame) ends early, `corrupt <codec> (...)` for bad data; the bytes are those decoded before."""
    chunks: list[bytes] = []
    pending = raw
    errors = zstandard.ZstdError if codec == "zstd" else zlib.error
    try:
        while pending:  # a gzip file may hold several members, a zstd file several frames
            stream = _decompressor(codec)
            chunks.append(stream.decompress(pending))
            if not stream.eof:
                return b"".join(chunks), f"truncated {codec}"
            pending = stream.unused_data
    except errors as exc:
        return b"".join(chunks), f"corrupt {codec} ({short_error(exc)})"
    return b"".join(chunks), None


def _decompressor(codec: str | None):
    """A fresh decoder of one gzip member or zstd frame (`decompress`, `eof`, `unused_data`)."""
    return zstandard.ZstdDecompressor().decompressobj() if codec == "zstd" else zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


def _strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


# --- CSV -------------------------------------------------------------------------------


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


def _read_csv(
    con: duckdb.DuckDBPyConnection, data: bytes, damage: str | None, view_name: str, redact: frozenset[str]
) -> FileRows:
    records = split_csv_records(data)
    keep = records.ends > records.starts  # blank lines are not records
    if damage is not None:
        keep &= records.complete  # the record cut by the damage goes with the lost rest
    index = np.flatnonzero(keep)
    if len(index) == 0:
        rejects = _damage_reject(0, damage) if damage else _rejects([], [], [])
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
    rejects = _rejects(positions[bad].tolist(), bad_raw, ["malformed CSV record"] * len(bad_raw))
    if damage is not None:
        rejects = pa.concat_tables([rejects, _damage_reject(len(body), damage)])
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


# --- JSON lines ------------------------------------------------------------------------


def _read_json_lines(
    con: duckdb.DuckDBPyConnection,
    data: bytes,
    damage: str | None,
    view_name: str,
    json_fields: tuple[str, ...],
    list_fields: frozenset[str],
    redact: frozenset[str],
) -> FileRows:
    if damage is not None:
        data = data[: data.rfind(b"\n") + 1]  # the line cut by the damage goes with the lost rest
    lines_view = f"{view_name}_lines"
    con.register(lines_view, pa.table({"__line_no": np.arange(_line_count(data), dtype=np.int64), "__line": _lines_array(data)}))
    scalar_fields = [name for name in json_fields if name not in list_fields]
    paths = ", ".join(sql_literal(f"$.{json_path_key(name)}") for name in scalar_fields)
    try:
        # one parse per check; blank lines are told apart only among the (few) invalid ones
        table = con.sql(
            f"""
            SELECT __line_no, __line, __kind,
                   CASE WHEN __kind = 'ok' THEN json_extract_string(__line, [{paths}]) END AS __values
            FROM (
                SELECT __line_no, __line,
                       CASE WHEN json_valid(__line) THEN
                                CASE WHEN json_type(__line) = 'OBJECT' THEN 'ok' ELSE 'not a JSON object' END
                            WHEN trim(__line, chr(32) || chr(9) || chr(13) || chr(10)) = '' THEN 'blank'
                            ELSE 'malformed JSON' END AS __kind
                FROM {lines_view}
            )
            """
        ).to_arrow_table()
    finally:
        con.unregister(lines_view)
    line_no = table["__line_no"].to_numpy()
    if len(line_no) > 1 and not np.all(np.diff(line_no) > 0):  # keep file order whatever the engine did
        table = table.take(np.argsort(line_no, kind="stable"))
    blank = pc.equal(table["__kind"], "blank").to_numpy(zero_copy_only=False).astype(bool)
    table = table.append_column("__position", pa.array(np.cumsum(~blank), pa.int64()))
    if blank.any():
        table = table.filter(pa.array(~blank))
    con.register(view_name, table)

    line = "rtrim(__line, chr(13) || chr(10))"
    extracted = ", ".join(
        [f"__values[{i}] AS {quote_ident(name)}" for i, name in enumerate(scalar_fields, start=1)]
        + [f"json_extract(__line, {sql_literal('$.' + json_path_key(name))}) AS {quote_ident(name)}" for name in json_fields if name in list_fields]
    )
    relation = f"(SELECT __position, __line, {extracted} FROM {view_name} WHERE __kind = 'ok')"
    rejects = con.sql(
        f"SELECT __position AS position, {fingerprint.redacted_json_line(line, redact, valid=False)} AS raw, "
        f"__kind AS reason FROM {view_name} WHERE __kind <> 'ok' ORDER BY __position"
    ).to_arrow_table()
    given = table.num_rows
    if damage is not None:
        rejects = pa.concat_tables([rejects, _damage_reject(given, damage)])
        given += 1
    columns = {name: ("JSON" if name in list_fields else "VARCHAR") for name in json_fields}
    return FileRows(
        relation,
        columns,
        fingerprint.redacted_json_line(line, redact, valid=True),
        given,
        rejects,
        lambda: con.unregister(view_name),
    )


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def _lines_array(data: bytes) -> pa.LargeStringArray:
    """Every line of `data` (line break included) as one Arrow string, without copying; checks UTF-8."""
    buf = np.frombuffer(data, dtype=np.uint8)
    offsets = np.concatenate(([0], np.flatnonzero(buf == NEWLINE) + 1)).astype(np.int64)
    if offsets[-1] != len(buf):
        offsets = np.append(offsets, len(buf))
    lines = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        raise UnreadableFileError("invalid UTF-8") from None
    return lines


# --- SQL text helpers ------------------------------------------------------------------


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


def _rejects(positions: list[int], raws: list[str | None], reasons: list[str]) -> pa.Table:
    return pa.table(
        {
            "position": pa.array(positions, pa.int64()),
            "raw": pa.array(raws, pa.string()),
            "reason": pa.array(reasons, pa.string()),
        }
    )


def _damage_reject(records_before: int, damage: str) -> pa.Table:
    """The part of a damaged file that was lost, as one reject after the records read before it
    (position 0, the whole file, when none was)."""
    return _rejects([records_before + 1 if records_before else 0], [None], [f"unreadable file: {damage}"])


def _strip_extensions(name: str) -> str:
    if input_kind(Path(name)) is None:
        return name
    return strip_compression(name).rsplit(".", 1)[0]


# settings
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}  # outer compression, any format
UNKNOWN_FORMAT = "unknown"
EMPTY_FILE = "empty file"
HASH_CHUNK_BYTES = 1 << 20
ERROR_CHARS = 100
READ_ERRORS = (
    duckdb.InvalidInputException,
    duckdb.IOException,
    pa.ArrowException,
    pl.exceptions.PolarsError,
    csv.Error,
    OSError,
    EOFError,
)
QUOTE, COMMA, NEWLINE, CARRIAGE_RETURN = ord('"'), ord(","), ord("\n"), ord("\r")
