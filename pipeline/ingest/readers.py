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
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from pipeline.ingest import fingerprint
from pipeline.ingest.csv_reader import CsvRecords, csv_field_counts, read_csv, split_csv_records
from pipeline.ingest.json_reader import line_count, lines_array, read_json_lines
from pipeline.ingest.rows import (
    FileRows, UnreadableFileError, glob_literal, json_path_key, quote_ident, redacted_columns, rejected_file,
    rejects_table, short_error, sql_literal, unreadable_file,
)

__all__ = [  # the readers' and their shared names, as one module (pipeline.ingest.rows, csv_reader, json_reader)
    "CsvRecords", "FileRows", "InputFile", "UnreadableFileError", "blank_file", "compression_of", "csv_field_counts",
    "file_digest", "find_dataset_files", "glob_literal", "input_kind", "json_path_key", "line_count", "lines_array",
    "quote_ident", "read_bytes", "read_file", "redacted_columns", "rejected_file", "short_error", "split_csv_records",
    "sql_literal", "strip_compression", "unknown_format_reason", "unreadable_file",
]


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
            return read_csv(con, data, damage, view_name, redact)
        return read_json_lines(con, data, damage, view_name, json_fields, list_fields, redact)
    except UnreadableFileError as exc:
        return unreadable_file(str(exc))
    except UnicodeDecodeError:
        return unreadable_file("invalid UTF-8")
    except READ_ERRORS as exc:  # the file's fault; anything else is a reader bug and propagates
        return unreadable_file(short_error(exc))


# --- Parquet ---------------------------------------------------------------------------


def _read_parquet(con: duckdb.DuckDBPyConnection, file: InputFile, view_name: str, redact: frozenset[str]) -> FileRows:
    if file.compressed:
        data, damage = _decompress(file.path.read_bytes(), file.codec)
        if damage is not None:
            raise UnreadableFileError(damage)
        table = pq.read_table(pa.BufferReader(data))
        table = table.append_column("__position", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
        con.register(view_name, table)
        relation, rows = view_name, table.num_rows
        release: Callable[[], None] = lambda: con.unregister(view_name)
    else:
        relation = (
            f"(SELECT file_row_number + 1 AS __position, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({sql_literal(glob_literal(str(file.path)))}, file_row_number = true))"
        )
        rows, release = None, lambda: None
    try:
        # the columns from binding a query (the footer read, no row: a DESCRIBE and a count(*)
        # took 8 ms a file, 0.9 s of a 116-file load), the rows from the footer's metadata
        bound = con.sql(f"SELECT * FROM {relation}")
        columns = {name: str(dtype) for name, dtype in zip(bound.columns, bound.types) if name != "__position"}
        if rows is None:
            rows = pq.read_metadata(file.path).num_rows
    except (duckdb.Error, pa.ArrowException, OSError) as exc:  # a damaged footer (thrift: a plain duckdb.Error)
        release()
        raise UnreadableFileError(short_error(exc)) from None
    hidden = redacted_columns(columns, redact)
    return FileRows(relation, columns, fingerprint.redacted_struct_json(list(columns), hidden), rows, rejects_table([], [], []), release)


# --- bytes -----------------------------------------------------------------------------


def read_bytes(path: Path) -> tuple[bytes, str | None]:
    """A file's bytes, decompressed when its name ends in `.gz` or `.zst`, BOM stripped, and for
    a damaged gzip or zstd file what went wrong (the bytes are those decoded before the damage).
    For source adapters."""
    return _read_bytes(InputFile(path, "jsonl", compression_of(path) is not None))


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
READ_ERRORS = (
    duckdb.InvalidInputException,
    duckdb.IOException,
    pa.ArrowException,
    pl.exceptions.PolarsError,
    csv.Error,
    OSError,
    EOFError,
)
