"""Source adapters: vendor exports (Claude Code OpenTelemetry and Analytics API, LiteLLM, Copilot,
GitHub pull requests, deployments and reviews, git log, OpenTelemetry GenAI spans, Cursor AI Code
Tracking) read as the contract's datasets.

A source's files live in `DIR/sources/<source>/` (searched recursively, sorted, hidden files
skipped; any of its suffixes, optionally compressed `.gz` or `.zst`). Each file goes through its
adapter (one module per source, `read_<source>(path) -> SourceRows`), then through the loader like
a contract file: same validation, rejection with reasons, duplicate check and content-hash
idempotence. A file no adapter reads (another suffix) or without content is never skipped
silently: it is one reject at position 0 (`unknown format: ...`, `empty file`). See
docs/sources.md for the export command of each source.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.ingest import readers
from pipeline.ingest.sources import base, claude_code_otel, copilot, git_log, github, litellm
from pipeline.ingest.sources import claude_code_analytics, cursor_ai_code
from pipeline.ingest.sources import github_reviews, otel_genai
from pipeline.ingest.sources.base import SourceRows, UnreadableSourceError


@dataclass(frozen=True)
class Source:
    """A kind of vendor file and the datasets its adapter fills."""

    name: str  # the folder under DIR/sources/
    read: Callable[..., SourceRows]  # read(path, **options): options only for a source given settings
    datasets: tuple[str, ...]  # the first is primary: records no row came from are rejected under it
    suffixes: tuple[str, ...]
    implied: frozenset[str] = frozenset()  # datasets of implied rows, only offered for identities not yet known


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: Source


class UnknownSourceError(ValueError):
    """A folder under DIR/sources/ that names no source."""


def present_sources(input_dir: Path) -> list[Source]:
    """The sources that have a folder under `input_dir/sources/` (empty or not), by name.

    Raises UnknownSourceError for a folder (or file) under sources/ that names no source, so a
    misspelt folder is not silently ignored.
    """
    root = Path(input_dir) / SOURCES_DIR
    if not root.is_dir():
        return []
    present = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        source = BY_NAME.get(entry.name)
        if source is None or not entry.is_dir():
            known = ", ".join(sorted(BY_NAME))
            raise UnknownSourceError(f"{entry} is not a source folder (known sources: {known})")
        present.append(source)
    return present


def find_source_files(input_dir: Path) -> list[SourceFile]:
    """Every file under `input_dir/sources/<source>/`, in source then path order (see
    present_sources), whatever its suffix (read_source rejects one no adapter reads); hidden
    files and folders (a name starting with '.') are skipped."""
    found: list[SourceFile] = []
    for source in present_sources(input_dir):
        folder = Path(input_dir) / SOURCES_DIR / source.name
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not any(part.startswith(".") for part in path.relative_to(folder).parts):
                found.append(SourceFile(path, source))
    return found


def readable_by(path: Path, source: Source) -> bool:
    """Whether the file's suffix (after `.gz` or `.zst`) is one the source's adapter reads."""
    return readers.strip_compression(path.name.lower()).endswith(source.suffixes)


def read_source(file: SourceFile, options: Mapping[str, Mapping[str, Any]] | None = None) -> SourceRows:
    """The adapter's rows and rejects. The whole file is one reject at position 0 when it has a
    suffix the adapter does not read, no content, or cannot be read (the file's fault: undecodable
    bytes, JSON DuckDB cannot read; anything else is a bug and raises). `options` maps a source
    name to keyword arguments of its adapter (`[sources.NAME]` settings); a source without an
    entry is read with its path alone, so with the adapter's defaults."""
    kwargs = dict((options or {}).get(file.source.name) or {})
    if not readable_by(file.path, file.source):
        return _whole_file_reject(file, readers.unknown_format_reason(file.path.name, "source", file.source.suffixes))
    if readers.blank_file(file.path):
        return _whole_file_reject(file, readers.EMPTY_FILE)
    try:
        return file.source.read(file.path, **kwargs)
    except UnreadableSourceError as exc:
        why = str(exc)
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        why = readers.short_error(exc)
    return _whole_file_reject(file, f"unreadable file: {why}")


def _whole_file_reject(file: SourceFile, reason: str) -> SourceRows:
    """The whole file as one reject at position 0 under the source's primary dataset."""
    reject = pl.DataFrame(
        {"dataset": [file.source.datasets[0]], "position": [0], "raw": [None], "reason": [reason]},
        schema=base.REJECT_SCHEMA,
    )
    return SourceRows({}, reject)


# settings
SOURCES_DIR = "sources"
SOURCES: tuple[Source, ...] = (
    Source("claude_code_otel", claude_code_otel.read_claude_code_otel, ("token_usage", "invocations"), (".jsonl", ".json", ".ndjson")),
    Source("litellm", litellm.read_litellm_spend_logs, ("token_usage", "people"), (".csv", ".json", ".jsonl", ".ndjson"),
           implied=frozenset({"people"})),
    Source("copilot", copilot.read_copilot_user_days, ("token_usage", "invocations"), (".jsonl", ".ndjson", ".json")),
    Source("github_pulls", github.read_github_pulls, ("changes",), (".json", ".jsonl", ".ndjson")),
    Source("github_deployments", github.read_github_deployments, ("deployments",), (".json", ".jsonl", ".ndjson")),
    Source("git_log", git_log.read_git_log, ("changes",), (".txt", ".log")),
    Source("claude_code_analytics", claude_code_analytics.read_claude_code_analytics, ("invocations", "token_usage"),
           (".json", ".jsonl", ".ndjson")),
    Source("cursor_ai_code", cursor_ai_code.read_cursor_ai_commits, ("ai_commits",), (".json", ".jsonl", ".ndjson", ".csv")),
    Source("github_reviews", github_reviews.read_github_reviews, ("reviews",), (".json", ".jsonl", ".ndjson")),
    Source("otel_genai", otel_genai.read_otel_genai, ("token_usage", "invocations"), (".jsonl", ".json", ".ndjson")),
)
BY_NAME = {source.name: source for source in SOURCES}
