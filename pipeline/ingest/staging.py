"""Staging: a dataset's new files read, checked and marked into one staging table.

Every record of a new file ends up in the staging table (typed, with the first failing check as
`__reason`, NULL when valid) or in the rejects table (records a reader could not split into rows).
Duplicates and claimed identities are then marked over the whole staging table, and the failed
rows move to the rejects with their raw text. `pipeline.ingest.load` commits what is left.
"""
from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest import readers
from pipeline.ingest.checks import CHECKED, REJECTED, check_sql, text_of
from pipeline.ingest.contract import REDACT, DatasetSpec
from pipeline.ingest.fingerprint import simhash64, simhash_key_of, text_fingerprint_sql
from pipeline.ingest.identities import claimed_keys_sql
from pipeline.ingest.readers import glob_literal, quote_ident, sql_literal


@dataclass(frozen=True)
class SourcePart:
    """What one new source file gives one dataset: the adapter's rows and rejects for it."""

    path: Path
    source: str
    sha256: str
    size: int
    rows: pl.DataFrame | None  # __position, __raw and contract columns
    rejects: pa.Table  # position, raw, reason
    implied: bool  # rows only offered for ids not known yet (LiteLLM's people)
    mtime_ns: int | None = None  # recorded in loaded_files (pipeline.ingest.load.file_identity)


@dataclass(frozen=True)
class NewFile:
    """A file (or source part) not loaded before, with the file_id it is loaded under."""

    file_id: int
    input: readers.InputFile | SourcePart
    sha256: str
    size: int
    mtime_ns: int | None = None  # recorded in loaded_files (pipeline.ingest.load.file_identity)


def create_staging_tables(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """The (empty) staging table of `spec`'s checked rows, and the rejects table."""
    extras = "".join(f"NULL::VARCHAR[] AS {side.field}, " for side in spec.side_lists)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS SELECT {', '.join(spec.columns)}, {extras}"
        f"NULL::INTEGER AS __file_id, NULL::BIGINT AS __position, NULL::VARCHAR AS __reason "
        f"FROM main.{spec.name} WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REJECTED} (file_id INTEGER, position BIGINT, raw VARCHAR, reason VARCHAR)")


def read_and_check_files(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new_files: list[NewFile], ts_limit: datetime.datetime
) -> Iterator[tuple[NewFile, readers.FileRows]]:
    """Read each file and insert its rows, validated, into the staging table, in file order.

    Runs of plain Parquet files with the same columns are checked together, up to BATCH_ROWS rows:
    DuckDB reads a file's row group on one thread, so one scan of several files is what runs in
    parallel. Every file is checked before the next non-Parquet file is read (implied source
    rows depend on the ids staged before them).
    """
    batch: list[tuple[NewFile, readers.FileRows]] = []
    try:
        for new in new_files:
            rows = _read(con, spec, new)
            if _batchable(new, rows):
                if batch and (
                    list(rows.columns.items()) != list(batch[0][1].columns.items())
                    or sum(r.rows_given for _, r in batch) + rows.rows_given > BATCH_ROWS
                ):
                    yield from _check_batch(con, spec, batch, ts_limit)
                    batch = []
                batch.append((new, rows))
                continue
            yield from _check_batch(con, spec, batch, ts_limit)
            batch = []
            yield new, _check_file(con, spec, new, rows, ts_limit)
        yield from _check_batch(con, spec, batch, ts_limit)
    except BaseException:
        for _, rows in batch:
            rows.release()
        raise


def insert_rejects(con: duckdb.DuckDBPyConnection, file_id: int, rejects: pa.Table) -> None:
    """Add a reader's or adapter's rejects of one file to the rejects table."""
    view = f"__load_rejects_{file_id}"
    con.register(view, rejects)
    try:
        con.execute(f"INSERT INTO {REJECTED} SELECT {file_id}, position, raw, reason FROM {view}")
    finally:
        con.unregister(view)


def mark_duplicates(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Valid rows whose id is already loaded, or seen earlier in this batch, become 'duplicate'."""
    key = spec.id_field
    repeated = _repeated_id_hashes(con, key)
    # only ids whose 64-bit hash repeats can repeat (a collision of different ids only adds
    # candidates): the first-copy window runs over those rows alone, never over every staged id
    later_copies = "" if repeated is None else f"""
        SELECT rowid FROM (
            SELECT rowid, row_number() OVER (PARTITION BY {key} ORDER BY __file_id, __position) AS copy
            FROM {CHECKED}
            WHERE __reason IS NULL AND hash({key}) IN ({repeated})
        ) WHERE copy > 1
        UNION ALL
    """
    try:
        con.execute(
            f"""
            UPDATE {CHECKED} SET __reason = 'duplicate'
            WHERE rowid IN (
                {later_copies}
                SELECT c.rowid FROM {CHECKED} c JOIN main.{spec.name} t ON c.{key} = t.{key} WHERE c.__reason IS NULL
            )
            """
        )
    finally:
        con.unregister("__repeated_hashes")  # registered by _repeated_id_hashes when polars found repeats


def reject_checked(con: duckdb.DuckDBPyConnection, file_id: int, rows: readers.FileRows) -> None:
    """Move the file's failed staged rows to the rejects, with their raw text (read again from the source)."""
    if rows.relation is None:
        return
    failed = f"(SELECT __position, __reason FROM {CHECKED} WHERE __file_id = {file_id} AND __reason IS NOT NULL)"
    try:
        con.execute(
            f"""
            INSERT INTO {REJECTED}
            SELECT {file_id}, f.__position, {rows.raw_sql}, f.__reason
            FROM {rows.relation} src JOIN {failed} f ON src.__position = f.__position
            """
        )
    except duckdb.Error:  # the raw text cannot be read back (a Parquet page with invalid UTF-8 or damage):
        # the rows stay rejected with their reasons, without raw text
        con.execute(f"INSERT INTO {REJECTED} SELECT {file_id}, __position, NULL, __reason FROM {failed}")


def free_row_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Let inserts without ORDER BY store rows in any order, so that DuckDB writes on all its
    threads (the staging and raw tables' row order means nothing: readers order explicitly).
    Returns the setting to restore."""
    previous = bool(con.sql("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])
    con.execute("SET preserve_insertion_order = false")
    return previous


def restore_row_order(con: duckdb.DuckDBPyConnection, previous: bool) -> None:
    con.execute(f"SET preserve_insertion_order = {str(previous).lower()}")


# --- helpers -----------------------------------------------------------------------------


def _repeated_id_hashes(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """SQL of the hashes of the valid staged ids that occur more than once, or None when none do.
    Up to HASHED_IDS_MAX ids polars finds them (5x faster than a GROUP BY at 10M ids), registered
    as __repeated_hashes; past it the hashes would take too much memory here, and DuckDB's
    GROUP BY finds them in the query (108M token rows: 49 s when the window partitioned every id)."""
    (valid,) = con.sql(f"SELECT count(*) FROM {CHECKED} WHERE __reason IS NULL").fetchall()[0]
    if valid > HASHED_IDS_MAX:
        return f"SELECT hash({key}) FROM {CHECKED} WHERE __reason IS NULL GROUP BY ALL HAVING count(*) > 1"
    hashes = pl.Series(con.sql(f"SELECT hash({key}) AS h FROM {CHECKED} WHERE __reason IS NULL").to_arrow_table()["h"])
    if hashes.n_unique() == len(hashes):
        return None
    con.register("__repeated_hashes", pl.DataFrame({"h": hashes.filter(hashes.is_duplicated()).unique()}))
    return "SELECT h FROM __repeated_hashes"


def _read(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new: NewFile) -> readers.FileRows:
    if isinstance(new.input, SourcePart):
        return _source_rows(con, spec, new.input, f"__load_source_{new.file_id}")
    return readers.read_file(
        con,
        new.input,
        view_name=f"__load_source_{new.file_id}",
        list_fields=frozenset(f.name for f in spec.fields if f.kind == "list"),
        json_fields=tuple(f.name for f in spec.fields),
        redact=REDACT,
    )


def _batchable(new: NewFile, rows: readers.FileRows) -> bool:
    """A plain Parquet file whose columns leave room for the batch's own (__file_id, file_index...)."""
    file = new.input
    return (
        isinstance(file, readers.InputFile) and file.format == "parquet" and not file.compressed
        and rows.relation is not None and not {name.lower() for name in rows.columns} & BATCH_RESERVED
    )


def _check_batch(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    batch: list[tuple[NewFile, readers.FileRows]],
    ts_limit: datetime.datetime,
) -> list[tuple[NewFile, readers.FileRows]]:
    """Check Parquet files with the same columns in one scan; when that fails (a damaged file),
    each file on its own, so that only the damaged one is rejected as unreadable."""
    if len(batch) > 1:
        paths = ", ".join(sql_literal(glob_literal(str(new.input.path))) for new, _ in batch)
        ids = ", ".join(str(new.file_id) for new, _ in batch)
        relation = (  # file_index: the file's place in the list
            f"(SELECT [{ids}][CAST(file_index AS BIGINT) + 1] AS __file_id, file_row_number + 1 AS __position, "
            f"* EXCLUDE (file_row_number) FROM read_parquet([{paths}], file_row_number = true))"
        )
        try:
            _check_relation(con, spec, relation, batch[0][1].columns, "__file_id", f"__load_simhash_{batch[0][0].file_id}", ts_limit)
            return batch
        except duckdb.Error:
            con.execute(f"DELETE FROM {CHECKED} WHERE __file_id IN ({ids})")
    return [(new, _check_file(con, spec, new, rows, ts_limit)) for new, rows in batch]


def _check_file(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new: NewFile, rows: readers.FileRows, ts_limit: datetime.datetime
) -> readers.FileRows:
    """Insert one file's rows, validated, into the staging table; a file DuckDB cannot read
    through (a corrupt Parquet page) becomes an unreadable file."""
    if rows.relation is None:
        return rows
    try:
        _check_relation(con, spec, rows.relation, rows.columns, str(new.file_id), f"__load_simhash_{new.file_id}", ts_limit)
    except duckdb.Error as exc:  # e.g. a corrupt Parquet page (a thrift error is a plain duckdb.Error)
        if getattr(new.input, "format", None) != "parquet" and not isinstance(
            exc, (duckdb.InvalidInputException, duckdb.IOException)
        ):
            raise
        rows.release()
        con.execute(f"DELETE FROM {CHECKED} WHERE __file_id = {new.file_id}")
        return readers.unreadable_file(readers.short_error(exc))
    return rows


def _check_relation(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    relation: str,
    columns: dict[str, str],
    file_id: str,
    simhash_view: str,
    ts_limit: datetime.datetime,
) -> None:
    has_text = "prompt_text" in columns and any(f.kind == "text" for f in spec.fields)
    order = free_row_order(con)
    try:
        if has_text:
            _register_simhashes(con, relation, columns, file_id, simhash_view)
        con.execute(check_sql(spec, relation, columns, file_id, ts_limit, simhash_view if has_text else None))
    finally:
        restore_row_order(con, order)
        con.unregister(simhash_view)


def _source_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, part: SourcePart, view_name: str) -> readers.FileRows:
    """A source part as the rows of a file: the adapter's frame (text columns, lists as VARCHAR[]),
    its `__raw` as the raw text and its rejects. Implied rows whose id is already claimed (by a
    loaded or staged row, as id or alias) are not offered at all."""
    kinds = {f.name: f.kind for f in spec.fields}
    if part.rows is None or part.rows.height == 0:
        return readers.FileRows(None, {}, "NULL", part.rejects.num_rows, part.rejects)
    names = [name for name in part.rows.columns if name in kinds]
    frame = part.rows.select(
        pl.col("__position").cast(pl.Int64),
        pl.col("__raw").cast(pl.String),
        *(pl.col(n).cast(pl.List(pl.String) if kinds[n] == "list" else pl.String) for n in names),
    )
    if part.implied:
        con.register(view_name, frame)
        try:
            key = spec.id_field
            frame = con.sql(
                f"SELECT * FROM {view_name} WHERE lower(trim({key})) NOT IN ({claimed_keys_sql(spec)})"
            ).pl()
        finally:
            con.unregister(view_name)
        if frame.height == 0:
            return readers.FileRows(None, {}, "NULL", part.rejects.num_rows, part.rejects)
    con.register(view_name, frame)
    return readers.FileRows(
        view_name,
        {name: "VARCHAR[]" if kinds[name] == "list" else "VARCHAR" for name in names},
        "__raw",
        frame.height + part.rejects.num_rows,
        part.rejects,
        lambda: con.unregister(view_name),
    )


def _register_simhashes(
    con: duckdb.DuckDBPyConnection, relation: str, columns: dict[str, str], file_id: str, view_name: str
) -> None:
    """Per row with a prompt text: its keyed fingerprint, length and SimHash, by (__file_id, __position).
    A view over Python memory, not a table; the texts themselves are dropped once hashed."""
    text = text_of(quote_ident("prompt_text"), columns["prompt_text"])
    rows = con.sql(
        f"SELECT __file_id, __position, {text_fingerprint_sql('text')} AS fingerprint, length(text) AS length, "
        f"hash(text) AS __text_hash, text "
        f"FROM (SELECT {file_id} AS __file_id, __position, {text} AS text FROM {relation}) WHERE text IS NOT NULL"
    ).to_arrow_table()
    simhashes = distinct_simhashes(rows["text"], rows["__text_hash"], rows["fingerprint"], simhash_key_of(con))
    view = rows.drop_columns(["text", "__text_hash"]).append_column("simhash", simhashes)
    del rows
    # in record batches, so that DuckDB scans the view on all its threads
    con.register(view_name, pa.Table.from_batches(view.to_batches(max_chunksize=VIEW_BATCH_ROWS), view.schema))


def distinct_simhashes(
    texts: pa.ChunkedArray, text_hashes: pa.ChunkedArray, fingerprints: pa.ChunkedArray, key: bytes
) -> pa.Array | pa.ChunkedArray:
    """SimHash of each text (fingerprint.simhash64), each distinct text hashed once when texts repeat.

    Texts are grouped by a 64-bit hash (DuckDB's `hash`, only within this call, never stored);
    a row is taken as its group's first text only when their exact fingerprints agree, so a
    collision of the 64-bit hash is hashed on its own and the values equal simhash64's. When
    at least DISTINCT_SHARE_MAX of the texts are distinct, all are hashed (gathering the distinct
    texts would cost more than it saves)."""
    hashes = text_hashes.to_numpy()
    # counted first (a hash table on all threads), sorted only when the distinct texts are few enough
    if len(hashes) == 0 or pl.Series(hashes).n_unique() >= DISTINCT_SHARE_MAX * len(hashes):
        return simhash64(texts, key=key).to_arrow()
    _, first, group = np.unique(hashes, return_index=True, return_inverse=True)
    group = group.ravel()
    same = pc.equal(fingerprints, fingerprints.take(pa.array(first[group]))).to_numpy(zero_copy_only=False)
    own = np.flatnonzero(~same)  # a 64-bit hash shared by different texts: hashed on their own
    where = group.astype(np.int64)
    where[own] = len(first) + np.arange(len(own))
    hashed = simhash64(texts.take(pa.array(np.concatenate([first, own]))), key=key).to_arrow()
    return hashed.take(pa.array(where))


# settings
DISTINCT_SHARE_MAX = 0.75  # distinct texts / texts up to which repeated prompt texts are hashed once
BATCH_ROWS = 1_000_000  # Parquet rows checked in one scan (their prompt texts are in memory at once)
HASHED_IDS_MAX = 25_000_000  # ids whose 64-bit hashes are checked for repeats in memory (~0.6 GB)
VIEW_BATCH_ROWS = 50_000  # record batch of the prompt hashes' view (DuckDB scans batches in parallel)
BATCH_RESERVED = frozenset({"__file_id", "__position", "file_index", "file_row_number"})
