"""The JSON lines reader: each non-blank line parsed once in DuckDB, the contract's fields extracted.

Positions are line numbers among non-blank lines; a malformed line or one that is not an object is
one reject, its raw text redacted. List fields are extracted as JSON so that real lists survive.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest import fingerprint
from pipeline.ingest.rows import FileRows, UnreadableFileError, damage_reject, json_path_key, quote_ident, sql_literal


def read_json_lines(
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
    con.register(lines_view, pa.table({"__line_no": np.arange(line_count(data), dtype=np.int64), "__line": lines_array(data)}))
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
        rejects = pa.concat_tables([rejects, damage_reject(given, damage)])
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


def line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def lines_array(data: bytes) -> pa.LargeStringArray:
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


NEWLINE = ord("\n")
