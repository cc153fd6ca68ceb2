"""What every source adapter shares: its output (`SourceRows`), reading a vendor file into
positioned JSON records or lines, and a few SQL macros.

An adapter never validates contract values: it shapes the vendor's records into the contract's
columns (as text, lists as lists of text) and the loader checks them like any contract file, so a
vendor record with a missing user or a bad number is rejected with the loader's own reasons.
An adapter rejects only what it cannot shape: malformed JSON, a record of the wrong kind.

Adapters work set-wise in an in-memory DuckDB of their own (`connect`); nothing they do touches
the pipeline's database.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from pipeline import storage
from pipeline.ingest import fingerprint, readers


@dataclass(frozen=True)
class SourceRows:
    """One vendor file as contract-shaped rows per dataset, plus the records no row came from.

    `rows[dataset]`: one row per contract row with `__position` (Int64, the 1-based number of the
    vendor record it comes from; unique within the dataset), `__raw` (that record as text, prompt
    text replaced by its fingerprint) and contract columns as strings, list columns as lists of
    strings. A column the frame lacks is NULL to the loader.
    `rejects`: dataset, position, raw, reason.
    """

    rows: dict[str, pl.DataFrame]
    rejects: pl.DataFrame


class UnreadableSourceError(Exception):
    """A vendor file that cannot be read at all; the message is the short reason."""


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (UTC) with the adapters' macros."""
    con = storage.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(MACROS)
    return con


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """The result of `sql` as a frame, `__position` as Int64 (an empty result keeps its columns)."""
    out = con.sql(sql).pl()
    return out.with_columns(pl.col("__position").cast(pl.Int64)) if "__position" in out.columns else out


def rejects_of(con: duckdb.DuckDBPyConnection, sql: str, dataset: str) -> pl.DataFrame:
    """Rejects selected by `sql` (columns position, raw, reason) under `dataset`, in the reject schema."""
    out = con.sql(sql).pl()
    if not out.height:
        return empty_rejects()
    return out.with_columns(dataset=pl.lit(dataset)).select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)


def register_lines(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> str | None:
    """Create temp table `table` (line_no, line, kind) from the file's non-blank lines (numbered
    among them, line break kept). kind is 'ok' (a JSON object), 'malformed JSON' or 'not a JSON
    object'. Returns the damage of a truncated or corrupt gzip (the lines decoded before it are
    kept; a cut last line is dropped).
    """
    data, damage = readers.read_bytes(path)
    return _register_lines(con, data, damage, table)


def _register_lines(con: duckdb.DuckDBPyConnection, data: bytes, damage: str | None, table: str) -> str | None:
    if damage is not None:
        data = data[: data.rfind(b"\n") + 1]
    try:
        lines = readers.lines_array(data)  # line breaks included: JSON reads them as whitespace
    except readers.UnreadableFileError as exc:
        raise UnreadableSourceError(str(exc)) from None
    # blank lines first (a narrow pass), so that numbering needs no sort of the (possibly huge) lines
    arrow = f"{table}_arrow"
    con.register(arrow, pa.table({"n": np.arange(len(lines), dtype=np.int64), "line": lines}))
    try:
        flags = con.sql(f"SELECT n, ltrim(line, {BLANK}) <> '' AS kept FROM {arrow}").fetchnumpy()
    finally:
        con.unregister(arrow)
    kept = np.zeros(len(lines), dtype=bool)
    kept[flags["n"]] = flags["kept"]
    con.register(arrow, pa.table({"line_no": np.cumsum(kept, dtype=np.int64), "line": lines, "kept": kept}))
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT line_no, line,
                   CASE WHEN NOT json_valid(line) THEN 'malformed JSON'
                        WHEN json_type(line) <> 'OBJECT' THEN 'not a JSON object'
                        ELSE 'ok' END AS kind
            FROM {arrow} WHERE kept
            """
        )
    finally:
        con.unregister(arrow)
    return damage


def register_json_records(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> str | None:
    """Create temp table `table` (position, record JSON, line VARCHAR, reason VARCHAR): the file's
    JSON objects in file order, whatever the layout: one JSON array, several arrays one after the
    other (`gh api --paginate`), an array of arrays (`--slurp`) or JSON lines. `record` is NULL
    and `reason` set for what is not a JSON object; `line` is the rejected text (lines layout).
    Returns the damage of a truncated gzip (JSON lines only; an array file must be whole).
    """
    data, damage = readers.read_bytes(path)
    if data.lstrip()[:1] != b"[":
        damage = _register_lines(con, data, damage, f"{table}_lines")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT line_no AS position, CASE WHEN kind = 'ok' THEN CAST(line AS JSON) END AS record,
                   rtrim(line, chr(13) || chr(10)) AS line, CASE WHEN kind <> 'ok' THEN kind END AS reason
            FROM {table}_lines
            """
        )
        return damage
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            WITH top AS (
                SELECT row_number() OVER () AS n, json AS v
                FROM read_json_objects({readers.sql_literal(readers.glob_literal(str(path)))}, format = 'unstructured',
                                       maximum_object_size = {MAX_JSON_BYTES})
            ),
            level1 AS (
                SELECT n, e.i AS i, e.v AS v
                FROM (SELECT n, unnest(CASE WHEN json_type(v) = 'ARRAY' THEN enumerate_list(json_extract(v, '$[*]'))
                                            ELSE [{{'i': 1, 'v': v}}] END) AS e FROM top)
            ),
            level2 AS (
                SELECT n, i, e.i AS j, e.v AS v
                FROM (SELECT n, i, unnest(CASE WHEN json_type(v) = 'ARRAY' THEN enumerate_list(json_extract(v, '$[*]'))
                                               ELSE [{{'i': 0, 'v': v}}] END) AS e FROM level1)
            )
            SELECT row_number() OVER (ORDER BY n, i, j) AS position,
                   CASE WHEN json_type(v) = 'OBJECT' THEN v END AS record,
                   CAST(v AS VARCHAR) AS line,
                   CASE WHEN json_type(v) <> 'OBJECT' THEN 'not a JSON object' END AS reason
            FROM level2
            """
        )
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:
        raise UnreadableSourceError(readers.short_error(exc)) from None
    return None


def register_api_records(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, items_key: str, record_key: str
) -> str | None:
    """Create temp table `table` (position, record, line, reason) like `register_json_records`, for
    files of API responses as well: a page, an object with `items_key` and without `record_key`
    (`{"data": [...], "has_more": ...}`), stands for the records in its `items_key`; pages may come
    one after another (pretty-printed or not, as JSON lines or in an array) and mix with loose
    records. A page whose `items_key` is not an array is rejected `malformed page: ITEMS_KEY is not a
    JSON array`. Positions count records, pages' and loose ones alike, in file order (a page itself
    takes none). Returns the damage of a truncated compressed file (JSON lines only)."""
    values = f"{table}_values"
    damage = register_json_values(con, path, values)
    items, record = readers.sql_literal(f"$.{items_key}"), readers.sql_literal(f"$.{record_key}")
    each_item = readers.sql_literal(f"$.{items_key}[*]")
    malformed = readers.sql_literal(f"malformed page: {items_key} is not a JSON array")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH given AS (
            SELECT *, coalesce(json_exists(record, {items}) AND NOT json_exists(record, {record}), false) AS is_page,
                   json_type(record -> {items}) = 'ARRAY' AS has_rows
            FROM {values}
        ),
        pieces AS (
            SELECT position AS outer_position, 0 AS i, record, line,
                   coalesce(reason, CASE WHEN is_page THEN {malformed} END) AS reason
            FROM given WHERE NOT (is_page AND has_rows)
            UNION ALL
            SELECT outer_position, e.i, CASE WHEN json_type(e.v) = 'OBJECT' THEN e.v END, CAST(e.v AS VARCHAR),
                   CASE WHEN json_type(e.v) <> 'OBJECT' THEN 'not a JSON object' END
            FROM (SELECT position AS outer_position, unnest(enumerate_list(json_extract(record, {each_item}))) AS e
                  FROM given WHERE is_page AND has_rows)
        )
        SELECT row_number() OVER (ORDER BY outer_position, i) AS position,
               CASE WHEN reason IS NULL THEN record END AS record, line, reason
        FROM pieces
        """
    )
    return damage


def register_json_values(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> str | None:
    """Create temp table `table` (position, record, line, reason) of the file's top-level JSON values,
    like `register_json_records`, but also for objects written one after another over several lines
    (pretty-printed API pages). Arrays, and files that are no clean sequence of JSON values (a
    malformed line, a damaged gzip), go to `register_json_records`. Returns its damage."""
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table}_top AS
            SELECT row_number() OVER () AS position, json AS v
            FROM read_json_objects({readers.sql_literal(readers.glob_literal(str(path)))}, format = 'unstructured',
                                   maximum_object_size = {MAX_JSON_BYTES})
            """
        )
    except duckdb.Error:
        return register_json_records(con, path, table)
    if con.sql(f"SELECT count(*) FROM {table}_top WHERE json_type(v) = 'ARRAY'").fetchall()[0][0]:
        return register_json_records(con, path, table)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT position, CASE WHEN json_type(v) = 'OBJECT' THEN v END AS record, CAST(v AS VARCHAR) AS line,
               CASE WHEN json_type(v) <> 'OBJECT' THEN 'not a JSON object' END AS reason
        FROM {table}_top
        """
    )
    return None


def damage_reject(con: duckdb.DuckDBPyConnection, dataset: str, after_sql: str, damage: str | None) -> pl.DataFrame:
    """The lost rest of a damaged gzip as one reject after the last position read (`after_sql`)."""
    if damage is None:
        return empty_rejects()
    last = con.sql(after_sql).fetchall()[0][0] or 0
    return pl.DataFrame(
        {"dataset": [dataset], "position": [last + 1 if last else 0], "raw": [None], "reason": [f"unreadable file: {damage}"]},
        schema=REJECT_SCHEMA,
    )


def otlp_resources_sql(table: str, signal: str, scope: str, items: str, item_schema: str, attributes_schema: str,
                       *, resource: str, where: str) -> str:
    """SQL: temp table `table` (line_no, ri, `resource`) of the resources of one OTLP signal
    (`resourceLogs`, `resourceMetrics`, `resourceSpans`) in the lines of `otlp_lines` matching `where`,
    each parsed once to the shape resource attributes / `scope` / `items` of `item_schema`."""
    shape = (f'{{"{signal}": [{{"resource": {{"attributes": {attributes_schema}}}, '
             f'"{scope}": [{{"{items}": [{item_schema}]}}]}}]}}')
    return f"""CREATE OR REPLACE TEMP TABLE {table} AS
SELECT line_no, e.i AS ri, e.v AS {resource}
FROM (SELECT line_no, unnest(enumerate_list(from_json(line, '{shape}').{signal})) AS e
      FROM otlp_lines WHERE {where});"""


def numbered_items_sql(table: str, resources: str, items: str, *, index: str, item: str) -> str:
    """SQL: temp table `table` (line_no, ri, `index`, `item`): the list `items` (SQL over a row of
    `resources`) unnested, each item numbered from 1 within its resource."""
    return f"""CREATE OR REPLACE TEMP TABLE {table} AS
SELECT line_no, ri, e[1] AS {index}, e[2] AS {item}
FROM (SELECT line_no, ri, unnest(list_zip(range(1, len(l) + 1), l)) AS e
      FROM (SELECT line_no, ri, {items} AS l FROM {resources}));"""


def withheld_sql(text: str, marker: str) -> str:
    """SQL: `text` as raw, or a note with its fingerprint when it mentions `marker` (may hold prompt text)."""
    return (
        f"CASE WHEN contains({text}, {readers.sql_literal(marker)}) THEN "
        f"{fingerprint.withheld_sql('record may hold prompt text', text)} ELSE {text} END"
    )


def stable_id_sql(prefix: str, *parts: str) -> str:
    """SQL: a stable id from the record's own values (the same record exported twice gets the same id)."""
    joined = " || '|' || ".join(f"coalesce(CAST({p} AS VARCHAR), '')" for p in parts)
    return f"{readers.sql_literal(prefix)} || left(sha256({joined}), 32)"


# settings
BLANK = "chr(32) || chr(9) || chr(13) || chr(10)"  # what a blank line holds
REJECT_SCHEMA = {"dataset": pl.String, "position": pl.Int64, "raw": pl.String, "reason": pl.String}
MAX_JSON_BYTES = 1 << 30  # one top-level JSON value (a page, or a whole --slurp array) may be this big
MACROS = """
CREATE OR REPLACE TEMP MACRO enumerate_list(l) AS list_transform(list_zip(range(1, len(l) + 1), l), lambda e: {'i': e[1], 'v': e[2]});
-- the value of key `key` in a list of {k, v} structs (first one wins), NULL when absent
CREATE OR REPLACE TEMP MACRO kv(l, key) AS list_filter(l, lambda a: a.k = key)[1].v;
-- a JSON value as text: strings unquoted, anything else as JSON text, NULL for JSON null
CREATE OR REPLACE TEMP MACRO json_text(j) AS CASE WHEN json_type(j) = 'VARCHAR' THEN j ->> '$'
                                                  WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
                                                  ELSE CAST(j AS VARCHAR) END;
-- the trailer lines `Name: value` of a commit message or PR body, values split on commas and blanks
CREATE OR REPLACE TEMP MACRO trailer_values(body, name) AS list_sort(list_distinct(list_filter(flatten(list_transform(
    regexp_extract_all(coalesce(body, ''), '(?mi)^' || name || ':[ \\t]*(.*?)[ \\t\\r]*$', 1),
    lambda x: string_split_regex(x, '[,\\s]+'))), lambda x: x <> '')));
-- whole lines `Name: value` (value kept whole), e.g. Co-authored-by lines
CREATE OR REPLACE TEMP MACRO trailer_lines(body, name) AS list_filter(list_transform(
    regexp_extract_all(coalesce(body, ''), '(?mi)^' || name || ':[ \\t]*(.*?)[ \\t\\r]*$', 1),
    lambda x: trim(x)), lambda x: x <> '');
-- nanoseconds since the epoch (OTLP's timeUnixNano, a string or a number; 0 = unset) as ISO-8601 UTC
CREATE OR REPLACE TEMP MACRO iso_from_nanos(n) AS CASE WHEN TRY_CAST(n AS HUGEINT) > 0 THEN
    strftime(make_timestamp(CAST(TRY_CAST(n AS HUGEINT) // 1000 AS BIGINT)), '%Y-%m-%dT%H:%M:%S.%fZ') END;
"""
