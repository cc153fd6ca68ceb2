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
and rebuilds `unmapped_identities`, over the whole raw tables.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from pipeline import progress, storage
from pipeline.ingest import readers, reconcile, sources
from pipeline.errors import UsageError
from pipeline.ingest.fingerprint import (
    FingerprintKey, keyed_raw_sql, keyed_sql, simhash64, simhash_key_of, text_fingerprint_sql, use_key,
)
from pipeline.ingest.readers import glob_literal, quote_ident, sql_literal


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
        next_file_id=con.sql("SELECT coalesce(max(file_id), 0) + 1 FROM loaded_files").fetchall()[0][0],
        default_prices=Path(default_prices),
        source_options=dict(source_options or {}),
    )
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
    reconcile.reconcile(con)
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
    next_file_id: int
    default_prices: Path
    source_options: dict[str, Mapping[str, Any]]  # source name -> keyword arguments of its adapter


@dataclass(frozen=True)
class _SourcePart:
    """What one new source file gives one dataset: the adapter's rows and rejects for it."""

    path: Path
    source: str
    sha256: str
    size: int
    rows: pl.DataFrame | None  # __position, __raw and contract columns
    rejects: pa.Table  # position, raw, reason
    implied: bool  # rows only offered for ids not known yet (LiteLLM's people)


@dataclass(frozen=True)
class _NewFile:
    file_id: int
    input: readers.InputFile | _SourcePart
    sha256: str
    size: int


def _read_sources(files: list[sources.SourceFile], state: _RunState) -> dict[str, list[_SourcePart]]:
    """Run the adapter of every new source file (a file whose content was loaded before is skipped);
    each gives one part per dataset its source fills, empty or not, so the file is recorded."""
    parts: dict[str, list[_SourcePart]] = {}
    for file in files:
        progress.current().advance()
        sha, size = readers.file_digest(file.path)
        if sha in state.known_hashes:
            continue
        state.known_hashes.add(sha)
        out = sources.read_source(file, state.source_options)
        for dataset in file.source.datasets:
            rejects = out.rejects.filter(pl.col("dataset") == dataset).select("position", "raw", "reason").to_arrow()
            parts.setdefault(dataset, []).append(_SourcePart(
                file.path, file.source.name, sha, size, out.rows.get(dataset), rejects, dataset in file.source.implied,
            ))
    return parts


def _load_dataset(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files: list[readers.InputFile],
    state: _RunState,
    source_parts: tuple[_SourcePart, ...] | list[_SourcePart] = (),
    source_files_seen: int = 0,
) -> DatasetLoad:
    report = progress.current()
    new_files: list[_NewFile] = []
    for file in files:
        sha, size = readers.file_digest(file.path)
        if sha not in state.known_hashes:  # a copy of a file in this same run is skipped too
            state.known_hashes.add(sha)
            new_files.append(_NewFile(state.next_file_id, file, sha, size))
            state.next_file_id += 1
        else:
            report.advance()
    for part in source_parts:  # after the contract files: their rows stand first
        new_files.append(_NewFile(state.next_file_id, part, part.sha256, part.size))
        state.next_file_id += 1

    extras = "".join(f"NULL::VARCHAR[] AS {side.field}, " for side in spec.side_lists)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS SELECT {', '.join(spec.columns)}, {extras}"
        f"NULL::INTEGER AS __file_id, NULL::BIGINT AS __position, NULL::VARCHAR AS __reason "
        f"FROM main.{spec.name} WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REJECTED} (file_id INTEGER, position BIGINT, raw VARCHAR, reason VARCHAR)")
    if spec.name == "token_usage":
        _create_price_table(con, state.default_prices)

    given: dict[int, int] = {}
    opened: list[tuple[int, readers.FileRows]] = []
    try:
        for new, rows in _read_and_check_files(con, spec, new_files, state.ts_limit):
            if not isinstance(new.input, _SourcePart):  # source files advanced as their adapter read them
                report.advance()
            opened.append((new.file_id, rows))
            given[new.file_id] = rows.rows_given
            if rows.rejects.num_rows:
                _insert_rejects(con, new.file_id, rows.rejects)
        _mark_duplicates(con, spec)
        if spec.name == "people":
            _mark_claimed_identities(con)
        failed = {f for (f,) in con.sql(f"SELECT DISTINCT __file_id FROM {CHECKED} WHERE __reason IS NOT NULL").fetchall()}
        for file_id, rows in opened:
            if file_id in failed:
                _reject_checked(con, file_id, rows)
    finally:
        for _, rows in opened:
            rows.release()

    load = _commit_dataset(con, spec, len(files) + source_files_seen, new_files, given, state)
    con.execute(f"DROP TABLE IF EXISTS {CHECKED}; DROP TABLE IF EXISTS {REJECTED}; DROP TABLE IF EXISTS {PRICES}")
    return load


def _read_and_check_files(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new_files: list[_NewFile], ts_limit: datetime.datetime
) -> Iterator[tuple[_NewFile, readers.FileRows]]:
    """Read each file and insert its rows, validated, into the staging table, in file order.

    Runs of plain Parquet files with the same columns are checked together, up to BATCH_ROWS rows:
    DuckDB reads a file's row group on one thread, so one scan of several files is what runs in
    parallel. Every file is checked before the next non-Parquet file is read (implied source
    rows depend on the ids staged before them).
    """
    batch: list[tuple[_NewFile, readers.FileRows]] = []
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


def _read(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new: _NewFile) -> readers.FileRows:
    if isinstance(new.input, _SourcePart):
        return _source_rows(con, spec, new.input, f"__load_source_{new.file_id}")
    return readers.read_file(
        con,
        new.input,
        view_name=f"__load_source_{new.file_id}",
        list_fields=frozenset(f.name for f in spec.fields if f.kind == "list"),
        json_fields=tuple(f.name for f in spec.fields),
        redact=REDACT,
    )


def _batchable(new: _NewFile, rows: readers.FileRows) -> bool:
    """A plain Parquet file whose columns leave room for the batch's own (__file_id, file_index...)."""
    file = new.input
    return (
        isinstance(file, readers.InputFile) and file.format == "parquet" and not file.compressed
        and rows.relation is not None and not {name.lower() for name in rows.columns} & BATCH_RESERVED
    )


def _check_batch(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    batch: list[tuple[_NewFile, readers.FileRows]],
    ts_limit: datetime.datetime,
) -> list[tuple[_NewFile, readers.FileRows]]:
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
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, new: _NewFile, rows: readers.FileRows, ts_limit: datetime.datetime
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
    order = _free_row_order(con)
    try:
        if has_text:
            _register_simhashes(con, relation, columns, file_id, simhash_view)
        con.execute(_check_sql(spec, relation, columns, file_id, ts_limit, simhash_view if has_text else None))
    finally:
        _restore_row_order(con, order)
        con.unregister(simhash_view)


def _free_row_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Let inserts without ORDER BY store rows in any order, so that DuckDB writes on all its
    threads (the staging and raw tables' row order means nothing: readers order explicitly).
    Returns the setting to restore."""
    previous = bool(con.sql("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])
    con.execute("SET preserve_insertion_order = false")
    return previous


def _restore_row_order(con: duckdb.DuckDBPyConnection, previous: bool) -> None:
    con.execute(f"SET preserve_insertion_order = {str(previous).lower()}")


def _source_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, part: _SourcePart, view_name: str) -> readers.FileRows:
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
                f"SELECT * FROM {view_name} WHERE lower(trim({key})) NOT IN ({_claimed_keys_sql(spec)})"
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


def _claimed_keys_sql(spec: DatasetSpec) -> str:
    """SQL: the lowercased identities already claimed, loaded or staged (people ids and aliases)."""
    key = spec.id_field
    aliases = "UNION ALL SELECT lower(trim(alias)) FROM main.people_aliases" if spec.name == "people" else ""
    staged_aliases = (
        f"UNION ALL SELECT lower(trim(unnest(aliases))) FROM {CHECKED} WHERE __reason IS NULL" if spec.name == "people" else ""
    )
    return (
        f"SELECT k FROM (SELECT lower(trim({key})) AS k FROM main.{spec.name} {aliases} "
        f"UNION ALL SELECT lower(trim({key})) FROM {CHECKED} WHERE __reason IS NULL {staged_aliases}) WHERE k IS NOT NULL"
    )


def _register_simhashes(
    con: duckdb.DuckDBPyConnection, relation: str, columns: dict[str, str], file_id: str, view_name: str
) -> None:
    """Per row with a prompt text: its keyed fingerprint, length and SimHash, by (__file_id, __position).
    A view over Python memory, not a table; the texts themselves are dropped once hashed."""
    text = _text_of(quote_ident("prompt_text"), columns["prompt_text"])
    rows = con.sql(
        f"SELECT __file_id, __position, {text_fingerprint_sql('text')} AS fingerprint, length(text) AS length, text "
        f"FROM (SELECT {file_id} AS __file_id, __position, {text} AS text FROM {relation}) WHERE text IS NOT NULL"
    ).to_arrow_table()
    view = rows.drop_columns(["text"]).append_column("simhash", simhash64(rows["text"], key=simhash_key_of(con)).to_arrow())
    del rows
    # in record batches, so that DuckDB scans the view on all its threads
    con.register(view_name, pa.Table.from_batches(view.to_batches(max_chunksize=VIEW_BATCH_ROWS), view.schema))


def _check_sql(
    spec: DatasetSpec,
    relation: str,
    columns: dict[str, str],
    file_id: str,
    ts_limit: datetime.datetime,
    simhash_view: str | None,
) -> str:
    """INSERT INTO the staging table: the rows of `relation` typed, with the first failing check as
    __reason. `file_id`: SQL over the relation (a constant, or its __file_id column)."""
    parsed: dict[str, str] = {}
    values: dict[str, str] = {}
    checks: list[tuple[str, str]] = []
    for field in spec.fields:
        source_type = columns.get(field.name)
        source = quote_ident(field.name) if source_type is not None else "NULL"
        field_parsed, value, field_checks = field.compile(source, source_type or "VARCHAR", ts_limit)
        parsed.update(field_parsed)
        values[field.name] = value
        checks.extend(field_checks)
    outputs = spec.outputs(values, has_text=simhash_view is not None)
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {why}" for cond, why in checks) + " END" if checks else "NULL"
    # prompt texts: hashed beforehand (in memory only), joined by row
    simhash_join = (
        f"LEFT JOIN {simhash_view} s ON s.__file_id = p.__file_id AND s.__position = p.__position" if simhash_view else ""
    )
    staged = spec.columns + tuple(side.field for side in spec.side_lists)
    return f"""
        INSERT INTO {CHECKED} ({', '.join(staged)}, __file_id, __position, __reason)
        WITH p AS (
            SELECT {file_id} AS __file_id, __position, {', '.join(f'{expr} AS {alias}' for alias, expr in parsed.items())}
            FROM {relation}
        )
        SELECT {', '.join(outputs[c] for c in staged)}, p.__file_id, p.__position, {reason}
        FROM p {simhash_join}
    """


def _insert_rejects(con: duckdb.DuckDBPyConnection, file_id: int, rejects: pa.Table) -> None:
    view = f"__load_rejects_{file_id}"
    con.register(view, rejects)
    try:
        con.execute(f"INSERT INTO {REJECTED} SELECT {file_id}, position, raw, reason FROM {view}")
    finally:
        con.unregister(view)


def _mark_duplicates(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Valid rows whose id is already loaded, or seen earlier in this batch, become 'duplicate'."""
    key = spec.id_field
    repeated = f"""
        SELECT rowid FROM (
            SELECT rowid, row_number() OVER (PARTITION BY {key} ORDER BY __file_id, __position) AS copy
            FROM {CHECKED} WHERE __reason IS NULL
        ) WHERE copy > 1
        UNION ALL
    """
    # the window over every id is searched only when two valid ids hash alike: ids that all hash
    # apart are all different (a collision of different ids only costs the search); past
    # HASHED_IDS_MAX ids the hashes would take too much memory here, DuckDB searches (and spills)
    (valid,) = con.sql(f"SELECT count(*) FROM {CHECKED} WHERE __reason IS NULL").fetchall()[0]
    if valid <= HASHED_IDS_MAX:
        hashes = con.sql(f"SELECT hash({key}) AS h FROM {CHECKED} WHERE __reason IS NULL").to_arrow_table()["h"]
        if pl.Series(hashes).n_unique() == len(hashes):
            repeated = ""
    con.execute(
        f"""
        UPDATE {CHECKED} SET __reason = 'duplicate'
        WHERE rowid IN (
            {repeated}
            SELECT c.rowid FROM {CHECKED} c JOIN main.{spec.name} t ON c.{key} = t.{key} WHERE c.__reason IS NULL
        )
        """
    )


def _mark_claimed_identities(con: duckdb.DuckDBPyConnection) -> None:
    """people: a valid row whose user_id or an alias (case-insensitive) is already another person's
    id or alias, loaded or earlier in this batch, is rejected: an identity belongs to one person."""
    con.execute(
        f"""
        UPDATE {CHECKED} SET __reason = 'identity already claimed: ' || left(c.identity, 80)
        FROM (
            WITH ids AS (
                SELECT rid, f, p, owner, identity, lower(trim(identity)) AS key
                FROM (SELECT rowid AS rid, __file_id AS f, __position AS p, user_id AS owner,
                             unnest(list_distinct(list_prepend(user_id, coalesce(aliases, [])))) AS identity
                      FROM {CHECKED} WHERE __reason IS NULL)
                WHERE trim(identity) <> ''
            ),
            loaded AS (
                SELECT lower(trim(user_id)) AS key, user_id AS owner FROM main.people
                UNION ALL SELECT lower(trim(alias)), user_id FROM main.people_aliases
            )
            SELECT rid, min(identity) AS identity FROM ids
            WHERE EXISTS (SELECT 1 FROM loaded l WHERE l.key = ids.key AND l.owner <> ids.owner)
               OR EXISTS (SELECT 1 FROM ids j WHERE j.key = ids.key AND j.owner <> ids.owner
                                                AND (j.f < ids.f OR (j.f = ids.f AND j.p < ids.p)))
            GROUP BY rid
        ) c
        WHERE {CHECKED}.rowid = c.rid
        """
    )


def _reject_checked(con: duckdb.DuckDBPyConnection, file_id: int, rows: readers.FileRows) -> None:
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


def _commit_dataset(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files_seen: int,
    new_files: list[_NewFile],
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
                "rows_given": pa.array([given[f.file_id] for f in new_files], pa.int64()),
                "source": pa.array([getattr(f.input, "source", "contract") for f in new_files], pa.string()),
            }
        ),
    )
    order = _free_row_order(con)  # set outside the transaction: a failed statement aborts it, SET included
    con.begin()
    try:
        loaded = con.execute(spec.insert_sql()).fetchall()[0][0]
        for side in spec.side_lists:
            con.execute(side.insert_sql(spec.id_field))
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
            LEFT JOIN (SELECT file_id, count(*) AS n FROM main.{spec.name} GROUP BY ALL) l USING (file_id)
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
                                      rows_rejected, loaded_at, source)
            SELECT f.file_id, {sql_literal(state.run_id)}, {sql_literal(spec.name)}, f.path, f.sha256, f.bytes,
                   f.rows_given, coalesce(l.n, 0), coalesce(r.n, 0), {_ts_literal(state.loaded_at)}, f.source
            FROM {files_view} f
            LEFT JOIN (SELECT file_id, count(*) AS n FROM main.{spec.name} GROUP BY ALL) l USING (file_id)
            LEFT JOIN (SELECT file_id, count(*) AS n FROM {REJECTED} GROUP BY ALL) r USING (file_id)
            ORDER BY f.file_id
            """
        )
        unpriced = 0
        if spec.name == "token_usage":
            unpriced = con.sql(
                f"SELECT count(*) FROM main.token_usage t JOIN {files_view} f USING (file_id) "
                f"WHERE t.cost_source = 'unpriced'"
            ).fetchall()[0][0]
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
        _restore_row_order(con, order)
        con.unregister(files_view)
    return load


def _create_price_table(con: duckdb.DuckDBPyConnection, default_prices: Path) -> None:
    """Effective prices: the loaded `prices` rows, and the default table for the other models."""
    columns = "{'model': 'VARCHAR', 'input_per_mtok': 'DOUBLE', 'output_per_mtok': 'DOUBLE', " \
              "'cache_read_per_mtok': 'DOUBLE', 'cache_write_per_mtok': 'DOUBLE'}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {PRICES} AS
        SELECT model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok FROM main.prices
        UNION ALL
        SELECT DISTINCT ON (model) model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok
        FROM read_csv({sql_literal(glob_literal(str(default_prices)))}, header = true, auto_detect = false, columns = {columns})
        WHERE model NOT IN (SELECT model FROM main.prices)
        """
    )


def _require_utc_session(con: duckdb.DuckDBPyConnection) -> None:
    """Timestamps without an offset are read as UTC through the session time zone: insist on UTC."""
    offset = con.sql("SELECT CAST(TIMESTAMP '2026-01-01 00:00:00' AS TIMESTAMPTZ) = TIMESTAMPTZ '2026-01-01 00:00:00+00'")
    if not offset.fetchall()[0][0]:
        raise ValueError("the DuckDB session TimeZone must be UTC (use pipeline.storage.connect)")


def _naive_utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


def _ts_literal(moment: datetime.datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _tstz_literal(moment: datetime.datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat(sep=' ')}+00'"


# --- checks per kind of field ----------------------------------------------------------

Compiled = tuple[dict[str, str], str, list[tuple[str, str]]]  # (parsed columns, value expr, checks)

INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE", "TIMESTAMP WITHOUT TIME ZONE"}
TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
FAST_UTC_RANGE = (datetime.datetime(1900, 1, 1), datetime.datetime(2200, 1, 1))
BIGINT_MAX = 9_223_372_036_854_775_807
INTEGER_MAX = 2_147_483_647
# Bounds far beyond any real value, so that sums and products downstream (features, report
# cents) never overflow: tokens per call and lines per change, USD per call, USD per million tokens.
COUNT_MAX = 10**12
COST_MAX = 10**9
PRICE_MAX = 10**4


def _is_numeric(source_type: str) -> bool:
    return source_type in INTEGER_TYPES or source_type in FLOAT_TYPES or source_type.startswith("DECIMAL")


@dataclass(frozen=True)
class Field:
    """One contract column: how to read it and what makes a row fail."""

    name: str
    kind: str  # 'string' | 'text' | 'timestamp' | 'integer' | 'number' | 'list' | 'status'
    required: bool = False
    default: str | None = None  # SQL literal used when the value is missing
    max_value: int = BIGINT_MAX
    values: tuple[str, ...] = ()  # 'status': the values allowed (matched exactly)

    def compile(self, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
        """Parsed columns (over the file's relation), the value (over the parsed columns) and the checks."""
        return _COMPILERS[self.kind](self, source, source_type, ts_limit)

    def alias(self, suffix: str) -> str:
        return f"__{self.name}_{suffix}"

    def missing_check(self, is_missing: str) -> list[tuple[str, str]]:
        if not self.required:
            return []
        return [(is_missing, sql_literal(f"missing required field: {self.name}"))]


def _text_of(source: str, source_type: str) -> str:
    """The value as text, NULL when blank (only characters trim() removes)."""
    text = source if source_type == "VARCHAR" else f"CAST({source} AS VARCHAR)"
    # the same as trim(text) <> '', cheaper: a text starting with a visible ASCII character
    # (first byte 0x21-0x7F: compared bytewise, valid UTF-8) is not blank; otherwise
    # ltrim(x) = '' exactly when trim(x) = '', but ltrim stops at the first kept character
    # where trim decodes the whole text to find its end (slow on long prompt texts)
    return f"CASE WHEN ({text} >= '!' AND {text} < chr(128)) OR ltrim({text}) <> '' THEN {text} END"


def _compile_string(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    text = field.alias("text")
    checks = field.missing_check(f"{text} IS NULL")
    if field.kind == "status":
        allowed = ", ".join(sql_literal(s) for s in field.values)
        checks.append((f"{text} NOT IN ({allowed})", f"{sql_literal(f'unknown {field.name}: ')} || left({text}, 40)"))
    return {text: _text_of(source, source_type)}, text, checks


def _compile_timestamp(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    present, value = field.alias("present"), field.alias("ts")
    if source_type in TIMESTAMP_TYPES:
        parsed = {present: f"{source} IS NOT NULL", value: f"CAST({source} AS TIMESTAMP)"}
    elif source_type in TIMESTAMPTZ_TYPES:
        # in UTC a TIMESTAMPTZ holds the same microseconds as its TIMESTAMP: taken as is where that
        # is known to agree with timezone() (which goes through the ICU calendar, slowly)
        in_range = f"{source} BETWEEN {_tstz_literal(FAST_UTC_RANGE[0])} AND {_tstz_literal(FAST_UTC_RANGE[1])}"
        utc = f"CASE WHEN {in_range} THEN make_timestamp(epoch_us({source})) ELSE timezone('UTC', {source}) END"
        parsed = {present: f"{source} IS NOT NULL", value: utc}
    else:  # text: ISO-8601 with Z, +HH:MM, +HHMM, +HH or no offset (UTC: the session time zone)
        text = _text_of(source, source_type)
        parsed = {present: f"{text} IS NOT NULL", value: f"timezone('UTC', TRY_CAST(trim({text}) AS TIMESTAMPTZ))"}
    checks = field.missing_check(f"NOT {present}") + [
        (f"{present} AND {value} IS NULL", sql_literal(f"unparseable timestamp: {field.name}")),
        (f"{value} > {_ts_literal(ts_limit)}", sql_literal(f"timestamp in the future: {field.name}")),
    ]
    return parsed, value, checks


def _compile_number(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    """Integers and numbers: text or numeric sources; integers must be whole, all must be >= 0."""
    text, number = field.alias("text"), field.alias("number")
    whole = field.kind == "integer"
    if source_type in INTEGER_TYPES and field.max_value < 2**53:
        return _compile_typed_integer(field, source)
    if _is_numeric(source_type):
        parsed = {text: source, number: f"CAST({source} AS DOUBLE)"}  # text: only tested for NULL
        exact = f"TRY_CAST({text} AS BIGINT)" if source_type in INTEGER_TYPES else f"TRY_CAST({number} AS BIGINT)"
    else:
        parsed = {text: _text_of(source, source_type), number: f"TRY_CAST(trim({_text_of(source, source_type)}) AS DOUBLE)"}
        exact = f"coalesce(TRY_CAST(trim({text}) AS BIGINT), TRY_CAST({number} AS BIGINT))"
    invalid = f"{number} IS NULL OR NOT isfinite({number})" + (f" OR {number} <> trunc({number})" if whole else "")
    checks = field.missing_check(f"{text} IS NULL") + [
        (f"{text} IS NOT NULL AND ({invalid})", sql_literal(f"{'not an integer' if whole else 'not a number'}: {field.name}")),
        (f"{number} < 0", sql_literal(f"negative value: {field.name}")),
    ]
    checks.append((f"{number} > {field.max_value}", sql_literal(f"out of range: {field.name}")))
    # negative and out-of-range values become NULL too: the row is rejected, and the staging column holds NULL
    in_range = f"{number} BETWEEN 0 AND {field.max_value}"
    value = f"CASE WHEN {text} IS NOT NULL AND NOT ({invalid}) AND {in_range} THEN {exact if whole else number} END"
    if field.default is not None:
        value = f"coalesce({value}, {field.default})"
    return parsed, value, checks


def _compile_typed_integer(field: Field, source: str) -> Compiled:
    """An integer column: never fractional nor infinite, so only missing, negative and out of range.
    Compared as integers, which gives what comparing its DOUBLE gives for bounds below 2^53."""
    value = field.alias("integer")
    checks = field.missing_check(f"{value} IS NULL") + [
        (f"{value} < 0", sql_literal(f"negative value: {field.name}")),
        (f"{value} > {field.max_value}", sql_literal(f"out of range: {field.name}")),
    ]
    target = "BIGINT" if field.kind == "integer" else "DOUBLE"
    result = f"CASE WHEN {value} BETWEEN 0 AND {field.max_value} THEN CAST({value} AS {target}) END"
    if field.default is not None:
        result = f"coalesce({result}, {field.default})"
    return {value: source}, result, checks


def _compile_list(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    """A list of strings: a real list (Parquet, JSON) or a ';'-separated text (CSV, JSON string)."""
    value = field.alias("list")
    keep = "lambda x: x IS NOT NULL AND x <> ''"

    def split(text: str) -> str:
        return f"list_filter(list_transform(string_split({text}, ';'), lambda x: trim(x)), {keep})"

    if source_type == "JSON":
        json_kind = field.alias("json_type")
        as_text = f"({source} ->> '$')"
        expr = (
            f"CASE json_type({source}) WHEN 'ARRAY' THEN list_filter(CAST({source} AS VARCHAR[]), {keep}) "
            f"WHEN 'VARCHAR' THEN CASE WHEN trim({as_text}) <> '' THEN {split(as_text)} END END"
        )
        checks = [(f"{json_kind} NOT IN ('ARRAY', 'VARCHAR', 'NULL')", sql_literal(f"not a list: {field.name}"))]
        return {value: expr, json_kind: f"json_type({source})"}, value, checks
    if source_type.endswith("[]"):
        return {value: f"list_filter(CAST({source} AS VARCHAR[]), {keep})"}, value, []
    text = _text_of(source, source_type)
    return {value: f"CASE WHEN {text} IS NOT NULL THEN {split(text)} END"}, value, []


_COMPILERS: dict[str, Callable[[Field, str, str, datetime.datetime], Compiled]] = {
    "string": _compile_string,
    "text": _compile_string,
    "status": _compile_string,
    "timestamp": _compile_timestamp,
    "integer": _compile_number,
    "number": _compile_number,
    "list": _compile_list,
}


@dataclass(frozen=True)
class SideList:
    """An optional list field kept in a table of its own, one row per (id, value), so the raw table
    keeps its columns: people.aliases, changes.ai_coauthors, deployments.commit_shas."""

    field: str
    table: str
    column: str

    def insert_sql(self, id_field: str) -> str:
        """INSERT the staged valid rows' distinct non-blank values (an alias equal to the id is no alias)."""
        not_self = f" AND lower(v) <> lower(trim({id_field}))" if self.field == "aliases" else ""
        return (
            f"INSERT INTO main.{self.table} ({id_field}, {self.column}, file_id, position) "
            f"SELECT {id_field}, v, __file_id, __position FROM ("
            f"SELECT {id_field}, trim(unnest(list_distinct({self.field}))) AS v, __file_id, __position "
            f"FROM {CHECKED} WHERE __reason IS NULL) WHERE v <> ''{not_self} ORDER BY __file_id, __position"
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the contract: its fields, its id and its raw table's columns."""

    name: str
    id_field: str
    fields: tuple[Field, ...]
    required: bool
    columns: tuple[str, ...]  # raw table columns filled from the staging table (file_id, position aside)
    side_lists: tuple[SideList, ...] = ()

    def outputs(self, values: dict[str, str], *, has_text: bool) -> dict[str, str]:
        """Staging column -> SQL over the parsed columns (and `s`, the prompt texts' hashes by row:
        a row has one exactly when its text is not blank, if has_text)."""
        out = dict(values)
        if self.name == "invocations":
            text, given_hash = values["prompt_text"], values["prompt_hash"]
            has_fingerprint = "s.fingerprint IS NOT NULL" if has_text else f"{text} IS NOT NULL"
            out["prompt_fingerprint"] = (
                f"CASE WHEN {has_fingerprint} THEN {'s.fingerprint' if has_text else 'NULL'} "
                f"WHEN {given_hash} IS NOT NULL THEN 'hash:' || {keyed_sql(given_hash)} END"
            )
            out["prompt_simhash"] = "s.simhash" if has_text else "NULL"
            out["prompt_length"] = f"coalesce({values['prompt_length']}, {'s.length' if has_text else f'length({text})'})"
        if self.name == "token_usage":
            out["cost_source"] = "NULL"
        return out

    def insert_sql(self) -> str:
        """INSERT the staging table's valid rows into the raw table (token_usage: priced)."""
        if self.name != "token_usage":
            return (
                f"INSERT INTO main.{self.name} ({', '.join(self.columns)}, file_id, position) "
                f"SELECT {', '.join(self.columns)}, __file_id, __position FROM {CHECKED} WHERE __reason IS NULL"
            )
        priced = (
            "(c.input_tokens * p.input_per_mtok + c.output_tokens * p.output_per_mtok"
            " + c.cache_read_tokens * coalesce(p.cache_read_per_mtok, 0)"
            " + c.cache_write_tokens * coalesce(p.cache_write_per_mtok, 0)) / 1e6"
        )
        selected = [
            f"coalesce(c.cost_usd, {priced})" if column == "cost_usd"
            else "CASE WHEN c.cost_usd IS NOT NULL THEN 'input' WHEN p.model IS NOT NULL THEN 'price_table' "
                 "ELSE 'unpriced' END" if column == "cost_source"
            else f"c.{column}"
            for column in self.columns
        ]
        return (
            f"INSERT INTO main.token_usage ({', '.join(self.columns)}, file_id, position) "
            f"SELECT {', '.join(selected)}, c.__file_id, c.__position "
            f"FROM {CHECKED} c LEFT JOIN {PRICES} p ON p.model = c.model WHERE c.__reason IS NULL"
        )


# settings
CHECKED, REJECTED, PRICES = "__load_checked", "__load_rejected", "__load_prices"
BATCH_ROWS = 1_000_000  # Parquet rows checked in one scan (their prompt texts are in memory at once)
HASHED_IDS_MAX = 25_000_000  # ids whose 64-bit hashes are checked for repeats in memory (~0.6 GB)
VIEW_BATCH_ROWS = 50_000  # record batch of the prompt hashes' view (DuckDB scans batches in parallel)
BATCH_RESERVED = frozenset({"__file_id", "__position", "file_index", "file_row_number"})
STATUSES = ("success", "failure", "rolled_back")  # deployments.status
REVIEW_STATES = ("approved", "changes_requested", "commented")  # reviews.state
REDACT = frozenset({"prompt_text"})  # never stored, never shown in raw text

DATASETS: tuple[DatasetSpec, ...] = (  # prices first: token_usage is priced from them
    DatasetSpec(
        "prices", "model",
        (
            Field("model", "string", required=True),
            Field("input_per_mtok", "number", required=True, max_value=PRICE_MAX),
            Field("output_per_mtok", "number", required=True, max_value=PRICE_MAX),
            Field("cache_read_per_mtok", "number", max_value=PRICE_MAX),
            Field("cache_write_per_mtok", "number", max_value=PRICE_MAX),
        ),
        required=False,
        columns=("model", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"),
    ),
    DatasetSpec(
        "people", "user_id",
        (Field("user_id", "string", required=True), Field("team", "string"), Field("org", "string"), Field("aliases", "list")),
        required=False,
        columns=("user_id", "team", "org"),
        side_lists=(SideList("aliases", "people_aliases", "alias"),),
    ),
    DatasetSpec(
        "token_usage", "request_id",
        (
            Field("request_id", "string", required=True),
            Field("ts", "timestamp", required=True),
            Field("user_id", "string", required=True),
            Field("session_id", "string", required=True),
            Field("model", "string", required=True),
            Field("input_tokens", "integer", required=True, max_value=COUNT_MAX),
            Field("output_tokens", "integer", required=True, max_value=COUNT_MAX),
            Field("cache_read_tokens", "integer", default="0", max_value=COUNT_MAX),
            Field("cache_write_tokens", "integer", default="0", max_value=COUNT_MAX),
            Field("cost_usd", "number", max_value=COST_MAX),
            Field("tool", "string"),
        ),
        required=True,
        columns=(
            "request_id", "ts", "user_id", "session_id", "model", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_write_tokens", "cost_usd", "cost_source", "tool",
        ),
    ),
    DatasetSpec(
        "invocations", "invocation_id",
        (
            Field("invocation_id", "string", required=True),
            Field("ts", "timestamp", required=True),
            Field("user_id", "string", required=True),
            Field("session_id", "string", required=True),
            Field("repo", "string"),
            Field("prompt_text", "text"),
            Field("prompt_hash", "string"),
            Field("prompt_length", "integer", max_value=INTEGER_MAX),
            Field("lines_accepted", "integer", max_value=INTEGER_MAX),
            Field("tool_calls", "integer", max_value=INTEGER_MAX),
            Field("commit_sha", "string"),
        ),
        required=True,
        columns=(
            "invocation_id", "ts", "user_id", "session_id", "repo", "prompt_fingerprint", "prompt_simhash",
            "prompt_length", "lines_accepted", "tool_calls", "commit_sha",
        ),
    ),
    DatasetSpec(
        "changes", "change_id",
        (
            Field("change_id", "string", required=True),
            Field("repo", "string", required=True),
            Field("author_id", "string"),
            Field("merged_at", "timestamp"),
            Field("lines_added", "integer", max_value=COUNT_MAX),
            Field("lines_deleted", "integer", max_value=COUNT_MAX),
            Field("ai_session_ids", "list"),
            Field("commit_shas", "list"),
            Field("ai_coauthors", "list"),
        ),
        required=True,
        columns=(
            "change_id", "repo", "author_id", "merged_at", "lines_added", "lines_deleted", "ai_session_ids", "commit_shas",
        ),
        side_lists=(SideList("ai_coauthors", "change_ai_coauthors", "coauthor"),),
    ),
    DatasetSpec(
        "deployments", "deployment_id",
        (
            Field("deployment_id", "string", required=True),
            Field("repo", "string", required=True),
            Field("deployed_at", "timestamp", required=True),
            Field("status", "status", required=True, values=STATUSES),
            Field("change_ids", "list"),
            Field("commit_shas", "list"),
        ),
        required=True,
        columns=("deployment_id", "repo", "deployed_at", "status", "change_ids"),
        side_lists=(SideList("commit_shas", "deployment_commits", "commit_sha"),),
    ),
    DatasetSpec(  # optional; change_id need not name a loaded change (it may arrive later)
        "reviews", "review_id",
        (
            Field("review_id", "string", required=True),
            Field("change_id", "string", required=True),
            Field("reviewer_id", "string", required=True),
            Field("submitted_at", "timestamp", required=True),
            Field("state", "status", required=True, values=REVIEW_STATES),
            Field("ai_session_ids", "list"),
            Field("comments", "integer", max_value=INTEGER_MAX),
        ),
        required=False,
        columns=("review_id", "change_id", "reviewer_id", "submitted_at", "state", "ai_session_ids", "comments"),
    ),
    DatasetSpec(  # optional; a commit SHA names one commit whatever the repository (a fork holds the same one)
        "ai_commits", "commit_sha",
        (
            Field("commit_sha", "string", required=True),
            Field("repo", "string"),
            Field("user_id", "string"),
            Field("committed_at", "timestamp"),
            Field("ai_lines_added", "integer", max_value=COUNT_MAX),
            Field("ai_lines_deleted", "integer", max_value=COUNT_MAX),
            Field("lines_added", "integer", max_value=COUNT_MAX),
            Field("lines_deleted", "integer", max_value=COUNT_MAX),
            Field("tool", "string"),
        ),
        required=False,
        columns=("commit_sha", "repo", "user_id", "committed_at", "ai_lines_added", "ai_lines_deleted", "lines_added",
                 "lines_deleted", "tool"),
    ),
)
