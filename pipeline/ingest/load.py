"""Load the contract's input datasets into the raw tables: validate, reject, deduplicate, price.

Every record of every new input file ends up either in its raw table or in `rejected_rows`
(with a reason); the loader checks loaded + rejected == given per file and per dataset.
Work is set-wise: one validation SQL per file (the dataset's checks applied to that file's
columns, typed or text; Parquet files with the same columns share one), one duplicate pass and
one insert per dataset. The raw tables' row order is not kept (readers order explicitly).

Reasons (the first failing check wins; fields are checked in contract order):
    missing required field: <f>     absent, null, empty or blank
    unparseable timestamp: <f>      not ISO-8601 (offset Z, +HH:MM, +HHMM, +HH or none = UTC)
    timestamp in the future: <f>    later than now + max_future_skew
    not an integer: <f>             not a whole number ("12", 12.0 and "1e3" are; "12.5", "abc" are not)
    not a number: <f>               cost and prices: not a finite number
    negative value: <f>
    out of range: <f>               a number past its bound (COUNT_MAX, COST_MAX, PRICE_MAX, column size)
    not a list: <f>                 a JSON value that is neither a list nor a ';'-separated string
    unknown status: <value>         deployments.status not success | failure | rolled_back
    unknown state: <value>          reviews.state not approved | changes_requested | commented
    duplicate                       the id was loaded before (earlier run, file or position)
    malformed JSON | not a JSON object | malformed CSV record
    unreadable file: <short error>  position 0: the whole file; after a truncated gzip or zstd
                                    file, the lost rest at the position after the last record read
    unknown format: <name> (...)    position 0: a file in a dataset's folder (or a top-level
                                    DATASET.<ext>) or a source's folder with a suffix not read there
    empty file                      position 0: no bytes, or only whitespace (after decompression)
Positions are 1-based record numbers: see `pipeline.ingest.readers`.

Vendor exports under `DIR/sources/<source>/` go through their adapter first (`pipeline.ingest.sources`),
then through the same checks as contract files, adapter rejects included. After every dataset is
loaded, `pipeline.ingest.reconcile` resolves people aliases, derives deployment change_ids from commits
and counts `unmapped_identities`, over the whole raw tables (a load without people rows: its own rows).
"""
from __future__ import annotations

import datetime
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from pipeline import progress, storage
from pipeline.errors import UsageError
from pipeline.ingest import readers, reconcile, sources
from pipeline.ingest.checks import CHECKED, REJECTED, ts_literal
from pipeline.ingest.contract import (  # re-exported: the contract's names as the loader's
    COST_MAX, COUNT_MAX, DATASETS, INTEGER_MAX, PRICE_MAX, REDACT, REVIEW_STATES, STATUSES, DatasetSpec, Field, SideList,
)
from pipeline.ingest.fingerprint import FingerprintKey, keyed_raw_sql, use_key
from pipeline.ingest.identities import mark_claimed_identities
from pipeline.ingest.pricing import PRICES, count_unpriced, create_price_table, priced_insert_sql
from pipeline.ingest.readers import sql_literal
from pipeline.ingest.staging import (
    NewFile, SourcePart, create_staging_tables, free_row_order, insert_rejects, mark_duplicates, read_and_check_files,
    reject_checked, restore_row_order,
)

__all__ = [
    "COST_MAX", "COUNT_MAX", "DATASETS", "INTEGER_MAX", "PRICE_MAX", "REDACT", "REVIEW_STATES", "STATUSES",
    "DatasetLoad", "DatasetSpec", "Field", "LoadCountError", "LoadSummary", "MissingDatasetError", "SideList",
    "check_input_dir", "empty_required_datasets", "insert_sql", "load_inputs",
]


@dataclass(frozen=True)
class DatasetLoad:
    dataset: str
    files_seen: int
    files_loaded: int
    files_skipped: int
    rows_given: int
    rows_loaded: int
    rows_rejected: int
    rows_unpriced: int


@dataclass(frozen=True)
class LoadSummary:
    datasets: dict[str, DatasetLoad]
    inputs_seen: list[str]  # every input file path the run looked at


class MissingDatasetError(UsageError):
    """A required dataset has no entry in the input dir."""


class LoadCountError(AssertionError):
    """Loaded + rejected rows differ from the rows given: a loader bug, never expected."""


def load_inputs(
    con: duckdb.DuckDBPyConnection,
    input_dir: Path,
    run_id: str,
    *,
    max_future_skew: datetime.timedelta,
    now: datetime.datetime,
    default_prices: Path,
    source_options: Mapping[str, Mapping[str, Any]] | None = None,
    key: FingerprintKey,
) -> LoadSummary:
    """Load every dataset of the contract found in `input_dir`; files loaded before are skipped.

    Writes the raw tables, `rejected_rows`, `loaded_files` (one row per new file) and
    `run_datasets` (one row per dataset); never `runs`. Each dataset is committed on its own.
    Timestamps later than `now + max_future_skew` are rejected. Rows without cost_usd are priced
    from the input `prices` dataset, falling back per model to `default_prices`. `source_options`
    maps a source name to keyword arguments for its adapter (the run's `[sources.NAME]` settings).
    Prompts are fingerprinted under `key` (pipeline.ingest.fingerprint), which stays in the connection's memory.
    """
    storage.create_raw_tables(con)
    use_key(con, key)
    _require_utc_session(con)
    input_dir = Path(input_dir)
    found = check_input_dir(input_dir)
    source_files = sources.find_source_files(input_dir)

    state = _RunState(
        run_id=run_id,
        ts_limit=_naive_utc(now + max_future_skew),
        loaded_at=_naive_utc(now),
        known_hashes={sha for (sha,) in con.sql("SELECT sha256 FROM loaded_files").fetchall()},
        known_stats=set(con.sql(
            "SELECT DISTINCT path, bytes, mtime_ns FROM loaded_files WHERE mtime_ns IS NOT NULL").fetchall()),
        next_file_id=con.sql("SELECT coalesce(max(file_id), 0) + 1 FROM loaded_files").fetchall()[0][0],
        default_prices=Path(default_prices),
        source_options=dict(source_options or {}),
    )
    first_new_file_id = state.next_file_id
    report = progress.current()
    report.set_total(sum(len(files or []) for files in found.values()) + len(source_files))
    parts = _read_sources(source_files, state)
    loads = {
        spec.name: _load_dataset(
            con, spec, found[spec.name] or [], state,
            parts.get(spec.name, []), sum(spec.name in file.source.datasets for file in source_files),
        )
        for spec in DATASETS
    }
    reconcile.reconcile(con, first_new_file_id=first_new_file_id)
    inputs_seen = [str(file.path) for spec in DATASETS for file in found[spec.name] or []]
    inputs_seen += [str(file.path) for file in source_files]
    return LoadSummary(loads, inputs_seen)


def check_input_dir(input_dir: Path) -> dict[str, list[readers.InputFile] | None]:
    """The files of each dataset in `input_dir` (None: no entry); MissingDatasetError when a
    required dataset has no entry (neither a file or folder of its own nor a source adapter's
    folder that fills it). Cheap: only lists files, so the CLI checks it before anything starts."""
    found = {spec.name: readers.find_dataset_files(input_dir, spec.name) for spec in DATASETS}
    try:  # a source folder, even empty, is an entry for the datasets its adapter fills
        fed = {dataset for source in sources.present_sources(input_dir) for dataset in source.datasets}
    except sources.UnknownSourceError as exc:
        raise MissingDatasetError(str(exc)) from None  # an unusable input dir: the CLI exits 2
    missing = [spec.name for spec in DATASETS if spec.required and found[spec.name] is None and spec.name not in fed]
    if missing:
        raise MissingDatasetError(f"no entry for required dataset {', '.join(missing)} in {input_dir}")
    return found


def empty_required_datasets(con: duckdb.DuckDBPyConnection) -> str | None:
    """None when every required dataset holds rows; else one line naming each empty one with the
    rows given to it and the commonest reason they were rejected (from `rejected_rows`)."""
    empty = [spec.name for spec in DATASETS
             if spec.required and not con.sql(f"SELECT count(*) FROM (FROM main.{spec.name} LIMIT 1)").fetchall()[0][0]]
    if not empty:
        return None
    said = []
    for name in empty:
        reasons = con.sql(
            "SELECT reason, count(*) AS n, sum(n) OVER () FROM rejected_rows WHERE dataset = $d "
            "GROUP BY reason ORDER BY n DESC, reason LIMIT 1", params={"d": name},
        ).fetchall()
        if reasons:
            (reason, times, rejected), = reasons
            said.append(f"{name} ({int(rejected):,} rows rejected, most for {reason!r}: {times:,})")
        else:
            said.append(f"{name} (no rows given)")
    return f"required dataset{'s' if len(empty) > 1 else ''} loaded no rows: {'; '.join(said)}"


# --- one dataset -----------------------------------------------------------------------


@dataclass
class _RunState:
    run_id: str
    ts_limit: datetime.datetime
    loaded_at: datetime.datetime
    known_hashes: set[str]
    known_stats: set[tuple[str, int, int]]  # (path, bytes, mtime_ns) of loaded files: see file_identity
    next_file_id: int
    default_prices: Path
    source_options: dict[str, Mapping[str, Any]]  # source name -> keyword arguments of its adapter


def _read_sources(files: list[sources.SourceFile], state: _RunState) -> dict[str, list[SourcePart]]:
    """Run the adapter of every new source file (a file whose content was loaded before is skipped);
    each gives one part per dataset its source fills, empty or not, so the file is recorded. Files
    are read SOURCE_THREADS at a time (each adapter on its own DuckDB connection, which parses a file
    of OTLP JSON on about one core), each as soon as it is hashed, while the next files are; the
    parts keep the files' order."""
    parts: dict[str, list[SourcePart]] = {}
    with ThreadPoolExecutor(SOURCE_THREADS) as pool:
        reading = []
        for file in files:
            identity = file_identity(file.path, state)
            if identity is None or identity.sha256 in state.known_hashes:
                progress.current().advance()
                continue
            state.known_hashes.add(identity.sha256)
            reading.append((file, identity, pool.submit(sources.read_source, file, state.source_options)))
        for file, identity, out in reading:
            progress.current().advance()
            _add_source_parts(parts, file, identity, out.result())
    return parts


def _add_source_parts(parts: dict[str, list[SourcePart]], file: sources.SourceFile, identity: FileIdentity,
                      out: sources.SourceRows) -> None:
    for dataset in file.source.datasets:
        rejects = out.rejects.filter(pl.col("dataset") == dataset).select("position", "raw", "reason").to_arrow()
        parts.setdefault(dataset, []).append(SourcePart(
            file.path, file.source.name, identity.sha256, identity.size, out.rows.get(dataset), rejects,
            dataset in file.source.implied, identity.mtime_ns,
        ))


def _load_dataset(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files: list[readers.InputFile],
    state: _RunState,
    source_parts: tuple[SourcePart, ...] | list[SourcePart] = (),
    source_files_seen: int = 0,
) -> DatasetLoad:
    report = progress.current()
    new_files: list[NewFile] = []
    for file in files:
        identity = file_identity(file.path, state)  # None: unchanged since it was loaded
        # a copy of a loaded file, or of a file in this same run, is skipped by its hash
        if identity is not None and identity.sha256 not in state.known_hashes:
            state.known_hashes.add(identity.sha256)
            new_files.append(NewFile(state.next_file_id, file, identity.sha256, identity.size, identity.mtime_ns))
            state.next_file_id += 1
        else:
            report.advance()
    for part in source_parts:  # after the contract files: their rows stand first
        new_files.append(NewFile(state.next_file_id, part, part.sha256, part.size, part.mtime_ns))
        state.next_file_id += 1

    create_staging_tables(con, spec)
    if spec.priced:
        create_price_table(con, state.default_prices)

    given: dict[int, int] = {}
    opened: list[tuple[int, readers.FileRows]] = []
    try:
        for new, rows in read_and_check_files(con, spec, new_files, state.ts_limit):
            if not isinstance(new.input, SourcePart):  # source files advanced as their adapter read them
                report.advance()
            opened.append((new.file_id, rows))
            given[new.file_id] = rows.rows_given
            if rows.rejects.num_rows:
                insert_rejects(con, new.file_id, rows.rejects)
        mark_duplicates(con, spec)
        if spec.claims_identities:
            mark_claimed_identities(con, spec)
        failed = {f for (f,) in con.sql(f"SELECT DISTINCT __file_id FROM {CHECKED} WHERE __reason IS NOT NULL").fetchall()}
        for file_id, rows in opened:
            if file_id in failed:
                reject_checked(con, file_id, rows)
    finally:
        for _, rows in opened:
            rows.release()

    load = _commit_dataset(con, spec, len(files) + source_files_seen, new_files, given, state)
    con.execute(f"DROP TABLE IF EXISTS {CHECKED}; DROP TABLE IF EXISTS {REJECTED}; DROP TABLE IF EXISTS {PRICES}")
    return load


@dataclass(frozen=True)
class FileIdentity:
    sha256: str
    size: int
    mtime_ns: int | None  # what loaded_files records: None when the file is too recent to be trusted


def file_identity(path: Path, state: _RunState) -> FileIdentity | None:
    """The content hash of an input file, or None for a file taken as one loaded before unread.

    The rule (docs/guarantees.md, "Reruns add nothing"): a file whose path (as given), size and
    st_mtime_ns all equal those recorded for a loaded file is that file, and is not read again.
    Any other file is hashed, and a copy of a loaded file under another path or with another
    mtime is still skipped by its hash. The stat is taken before the bytes are read, so a file
    changed while it is hashed records the older mtime and is hashed again next time. A file
    whose mtime is within TRUSTED_MTIME_AGE_NS of the moment it was hashed records no mtime (it
    is always hashed again): a writer could still change it within the filesystem's timestamp
    granularity without changing its mtime (git's "racily clean" entries). The risk left: a file
    rewritten in place with the same size and its old mtime put back (`touch -r`, `cp -p`,
    `rsync -t`, a clock set back) is taken as the loaded file and its new content is not loaded.
    """
    stat = os.stat(path)
    if (str(path), stat.st_size, stat.st_mtime_ns) in state.known_stats:
        return None
    sha, size = readers.file_digest(path)
    trusted = size == stat.st_size and time.time_ns() - stat.st_mtime_ns >= TRUSTED_MTIME_AGE_NS
    return FileIdentity(sha, size, stat.st_mtime_ns if trusted else None)


def insert_sql(spec: DatasetSpec) -> str:
    """INSERT the staging table's valid rows into the raw table (a priced dataset: priced)."""
    if spec.priced:
        return priced_insert_sql(spec)
    return (
        f"INSERT INTO main.{spec.name} ({', '.join(spec.columns)}, file_id, position) "
        f"SELECT {', '.join(spec.columns)}, __file_id, __position FROM {CHECKED} WHERE __reason IS NULL"
    )


def side_list_insert_sql(spec: DatasetSpec, side: SideList) -> str:
    """INSERT the staged valid rows' distinct non-blank values of a side list into its table."""
    id_field = spec.id_field
    not_self = f" AND lower(v) <> lower(trim({id_field}))" if side.not_self else ""
    return (
        f"INSERT INTO main.{side.table} ({id_field}, {side.column}, file_id, position) "
        f"SELECT {id_field}, v, __file_id, __position FROM ("
        f"SELECT {id_field}, trim(unnest(list_distinct({side.field}))) AS v, __file_id, __position "
        f"FROM {CHECKED} WHERE __reason IS NULL) WHERE v <> ''{not_self} ORDER BY __file_id, __position"
    )


def _commit_dataset(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files_seen: int,
    new_files: list[NewFile],
    given: dict[int, int],
    state: _RunState,
) -> DatasetLoad:
    """Insert the dataset's loaded rows, rejects and bookkeeping in one transaction, counts checked."""
    files_view = "__load_files"
    con.register(
        files_view,
        pa.table(
            {
                "file_id": pa.array([f.file_id for f in new_files], pa.int32()),
                "path": pa.array([str(f.input.path) for f in new_files], pa.string()),
                "sha256": pa.array([f.sha256 for f in new_files], pa.string()),
                "bytes": pa.array([f.size for f in new_files], pa.int64()),
                "mtime_ns": pa.array([f.mtime_ns for f in new_files], pa.int64()),
                "rows_given": pa.array([given[f.file_id] for f in new_files], pa.int64()),
                "source": pa.array([getattr(f.input, "source", "contract") for f in new_files], pa.string()),
            }
        ),
    )
    # the new files' rows only (file ids grow): the counts need not scan what earlier runs loaded
    ids = [f.file_id for f in new_files]
    new_ids = f"file_id BETWEEN {min(ids)} AND {max(ids)}" if ids else "false"
    order = free_row_order(con)  # set outside the transaction: a failed statement aborts it, SET included
    con.begin()
    try:
        loaded = con.execute(insert_sql(spec)).fetchall()[0][0]
        for side in spec.side_lists:
            con.execute(side_list_insert_sql(spec, side))
        rejected = con.execute(
            f"""
            INSERT INTO rejected_rows (run_id, dataset, source_file, position, raw, reason)
            SELECT {sql_literal(state.run_id)}, {sql_literal(spec.name)}, f.path, r.position, {keyed_raw_sql('r.raw')}, r.reason
            FROM {REJECTED} r JOIN {files_view} f USING (file_id)
            ORDER BY r.file_id, r.position
            """
        ).fetchall()[0][0]
        per_file = con.sql(
            f"""
            SELECT f.file_id, f.rows_given,
                   coalesce(l.n, 0) AS rows_loaded, coalesce(r.n, 0) AS rows_rejected
            FROM {files_view} f
            LEFT JOIN (SELECT file_id, count(*) AS n FROM main.{spec.name} WHERE {new_ids} GROUP BY ALL) l USING (file_id)
            LEFT JOIN (SELECT file_id, count(*) AS n FROM {REJECTED} GROUP BY ALL) r USING (file_id)
            WHERE f.rows_given <> coalesce(l.n, 0) + coalesce(r.n, 0)
            """
        ).fetchall()
        rows_given = sum(given.values())
        if per_file or loaded + rejected != rows_given:
            raise LoadCountError(
                f"{spec.name}: loaded {loaded} + rejected {rejected} != given {rows_given} (files off: {per_file})"
            )
        con.execute(
            f"""
            INSERT INTO loaded_files (file_id, run_id, dataset, path, sha256, bytes, rows_given, rows_loaded,
                                      rows_rejected, loaded_at, source, mtime_ns)
            SELECT f.file_id, {sql_literal(state.run_id)}, {sql_literal(spec.name)}, f.path, f.sha256, f.bytes,
                   f.rows_given, coalesce(l.n, 0), coalesce(r.n, 0), {ts_literal(state.loaded_at)}, f.source, f.mtime_ns
            FROM {files_view} f
            LEFT JOIN (SELECT file_id, count(*) AS n FROM main.{spec.name} WHERE {new_ids} GROUP BY ALL) l USING (file_id)
            LEFT JOIN (SELECT file_id, count(*) AS n FROM {REJECTED} GROUP BY ALL) r USING (file_id)
            ORDER BY f.file_id
            """
        )
        unpriced = count_unpriced(con, spec, files_view) if spec.priced else 0
        load = DatasetLoad(
            dataset=spec.name,
            files_seen=files_seen,
            files_loaded=len(new_files),
            files_skipped=files_seen - len(new_files),
            rows_given=rows_given,
            rows_loaded=loaded,
            rows_rejected=rejected,
            rows_unpriced=unpriced,
        )
        con.execute(
            "INSERT INTO run_datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [state.run_id, load.dataset, load.files_seen, load.files_loaded, load.files_skipped,
             load.rows_given, load.rows_loaded, load.rows_rejected, load.rows_unpriced],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        restore_row_order(con, order)
        con.unregister(files_view)
    return load


def _require_utc_session(con: duckdb.DuckDBPyConnection) -> None:
    """Timestamps without an offset are read as UTC through the session time zone: insist on UTC."""
    offset = con.sql("SELECT CAST(TIMESTAMP '2026-01-01 00:00:00' AS TIMESTAMPTZ) = TIMESTAMPTZ '2026-01-01 00:00:00+00'")
    if not offset.fetchall()[0][0]:
        raise ValueError("the DuckDB session TimeZone must be UTC (use pipeline.storage.connect)")


def _naive_utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


# settings
TRUSTED_MTIME_AGE_NS = 2_000_000_000  # a file's mtime is recorded when at least this old (2 s: FAT's granularity)
SOURCE_THREADS = min(4, os.cpu_count() or 1)  # source files whose adapters run at once
