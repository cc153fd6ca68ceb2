"""The contract's field checks compiled to SQL: typed values, and the first failing check as a reason.

A field compiles to parsed columns (SQL over the file's relation), a value (SQL over the parsed
columns) and checks (condition, reason); `check_sql` puts a dataset's fields together into one
INSERT into the staging table, whatever the file's column types (text, numbers, timestamps, lists).
The reasons are listed in pipeline/ingest/load.py's docstring.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Collection

from pipeline.ingest.contract import DatasetSpec, Field
from pipeline.ingest.fingerprint import keyed_sql
from pipeline.ingest.readers import quote_ident, sql_literal

Compiled = tuple[dict[str, str], str, list[tuple[str, str]]]  # (parsed columns, value expr, checks)


def check_sql(
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
        field_parsed, value, field_checks = compile_field(field, source, source_type or "VARCHAR", ts_limit)
        parsed.update(field_parsed)
        values[field.name] = value
        checks.extend(field_checks)
    outputs = staged_outputs(spec, values, has_text=simhash_view is not None, given=columns)
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



def staged_outputs(spec: DatasetSpec, values: dict[str, str], *, has_text: bool,
                   given: Collection[str]) -> dict[str, str]:
    """Staging column -> SQL over the parsed columns (and `s`, the prompt texts' hashes by row:
    a row has one exactly when its text is not blank, if has_text); `given`: the file's columns."""
    out = dict(values)
    for column in spec.derived:
        if column.absent is not None:
            out[column.name] = "false" if column.absent in given else "true"
    if spec.fingerprints_prompts:
        text, given_hash = values["prompt_text"], values["prompt_hash"]
        has_fingerprint = "s.fingerprint IS NOT NULL" if has_text else f"{text} IS NOT NULL"
        out["prompt_fingerprint"] = (
            f"CASE WHEN {has_fingerprint} THEN {'s.fingerprint' if has_text else 'NULL'} "
            f"WHEN {given_hash} IS NOT NULL THEN 'hash:' || {keyed_sql(given_hash)} END"
        )
        out["prompt_simhash"] = "s.simhash" if has_text else "NULL"
        out["prompt_length"] = f"coalesce({values['prompt_length']}, {'s.length' if has_text else f'length({text})'})"
    if spec.priced:
        out["cost_source"] = "NULL"  # set when the rows are priced on insert (pipeline.ingest.pricing)
    return out


def compile_field(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    """Parsed columns (over the file's relation), the value (over the parsed columns) and the checks."""
    return _COMPILERS[field.kind](field, source, source_type, ts_limit)


def text_of(source: str, source_type: str) -> str:
    """The value as text, NULL when blank (only characters trim() removes)."""
    text = source if source_type == "VARCHAR" else f"CAST({source} AS VARCHAR)"
    # the same as trim(text) <> '', cheaper: a text starting with a visible ASCII character
    # (first byte 0x21-0x7F: compared bytewise, valid UTF-8) is not blank; otherwise
    # ltrim(x) = '' exactly when trim(x) = '', but ltrim stops at the first kept character
    # where trim decodes the whole text to find its end (slow on long prompt texts)
    return f"CASE WHEN ({text} >= '!' AND {text} < chr(128)) OR ltrim({text}) <> '' THEN {text} END"


def ts_literal(moment: datetime.datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


# --- checks per kind of field ----------------------------------------------------------


def _alias(field: Field, suffix: str) -> str:
    return f"__{field.name}_{suffix}"


def _missing_check(field: Field, is_missing: str) -> list[tuple[str, str]]:
    if not field.required:
        return []
    return [(is_missing, sql_literal(f"missing required field: {field.name}"))]


def _is_numeric(source_type: str) -> bool:
    return source_type in INTEGER_TYPES or source_type in FLOAT_TYPES or source_type.startswith("DECIMAL")


def _tstz_literal(moment: datetime.datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat(sep=' ')}+00'"


def _compile_string(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    text = _alias(field, "text")
    checks = _missing_check(field, f"{text} IS NULL")
    if field.kind == "status":
        allowed = ", ".join(sql_literal(s) for s in field.values)
        checks.append((f"{text} NOT IN ({allowed})", f"{sql_literal(f'unknown {field.name}: ')} || left({text}, 40)"))
    return {text: text_of(source, source_type)}, text, checks


def _compile_timestamp(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    present, value = _alias(field, "present"), _alias(field, "ts")
    if source_type in TIMESTAMP_TYPES:
        parsed = {present: f"{source} IS NOT NULL", value: f"CAST({source} AS TIMESTAMP)"}
    elif source_type in TIMESTAMPTZ_TYPES:
        # in UTC a TIMESTAMPTZ holds the same microseconds as its TIMESTAMP: taken as is where that
        # is known to agree with timezone() (which goes through the ICU calendar, slowly)
        in_range = f"{source} BETWEEN {_tstz_literal(FAST_UTC_RANGE[0])} AND {_tstz_literal(FAST_UTC_RANGE[1])}"
        utc = f"CASE WHEN {in_range} THEN make_timestamp(epoch_us({source})) ELSE timezone('UTC', {source}) END"
        parsed = {present: f"{source} IS NOT NULL", value: utc}
    else:  # text: ISO-8601 with Z, +HH:MM, +HHMM, +HH or no offset (UTC: the session time zone)
        text = text_of(source, source_type)
        parsed = {present: f"{text} IS NOT NULL", value: f"timezone('UTC', TRY_CAST(trim({text}) AS TIMESTAMPTZ))"}
    checks = _missing_check(field, f"NOT {present}") + [
        (f"{present} AND {value} IS NULL", sql_literal(f"unparseable timestamp: {field.name}")),
        (f"{value} > {ts_literal(ts_limit)}", sql_literal(f"timestamp in the future: {field.name}")),
    ]
    return parsed, value, checks


def _compile_number(field: Field, source: str, source_type: str, ts_limit: datetime.datetime) -> Compiled:
    """Integers and numbers: text or numeric sources; integers must be whole, all must be >= 0."""
    text, number = _alias(field, "text"), _alias(field, "number")
    whole = field.kind == "integer"
    if source_type in INTEGER_TYPES and field.max_value < 2**53:
        return _compile_typed_integer(field, source)
    if _is_numeric(source_type):
        parsed = {text: source, number: f"CAST({source} AS DOUBLE)"}  # text: only tested for NULL
        exact = f"TRY_CAST({text} AS BIGINT)" if source_type in INTEGER_TYPES else f"TRY_CAST({number} AS BIGINT)"
    else:
        parsed = {text: text_of(source, source_type), number: f"TRY_CAST(trim({text_of(source, source_type)}) AS DOUBLE)"}
        exact = f"coalesce(TRY_CAST(trim({text}) AS BIGINT), TRY_CAST({number} AS BIGINT))"
    invalid = f"{number} IS NULL OR NOT isfinite({number})" + (f" OR {number} <> trunc({number})" if whole else "")
    checks = _missing_check(field, f"{text} IS NULL") + [
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
    value = _alias(field, "integer")
    checks = _missing_check(field, f"{value} IS NULL") + [
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
    value = _alias(field, "list")
    keep = "lambda x: x IS NOT NULL AND x <> ''"

    def split(text: str) -> str:
        return f"list_filter(list_transform(string_split({text}, ';'), lambda x: trim(x)), {keep})"

    if source_type == "JSON":
        json_kind = _alias(field, "json_type")
        as_text = f"({source} ->> '$')"
        expr = (
            f"CASE json_type({source}) WHEN 'ARRAY' THEN list_filter(CAST({source} AS VARCHAR[]), {keep}) "
            f"WHEN 'VARCHAR' THEN CASE WHEN trim({as_text}) <> '' THEN {split(as_text)} END END"
        )
        checks = [(f"{json_kind} NOT IN ('ARRAY', 'VARCHAR', 'NULL')", sql_literal(f"not a list: {field.name}"))]
        return {value: expr, json_kind: f"json_type({source})"}, value, checks
    if source_type.endswith("[]"):
        return {value: f"list_filter(CAST({source} AS VARCHAR[]), {keep})"}, value, []
    text = text_of(source, source_type)
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

# settings
CHECKED, REJECTED = "__load_checked", "__load_rejected"  # the staging table of checked rows, and the rejects
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE", "TIMESTAMP WITHOUT TIME ZONE"}
TIMESTAMPTZ_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
FAST_UTC_RANGE = (datetime.datetime(1900, 1, 1), datetime.datetime(2200, 1, 1))
