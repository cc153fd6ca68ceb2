"""Prompt fingerprints: an exact one (sha256) and a 64-bit SimHash for near-duplicates.

Prompt text is never stored; the loader keeps only what this module derives from it.
Every hash here is stable across processes, machines and library versions (hashlib),
never Python's `hash()` nor the polars/DuckDB `hash()` functions.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl
from scipy import sparse


def simhash64(texts: pl.Series | Iterable[str | None], *, chunk_rows: int = 50_000) -> pl.Series:
    """64-bit SimHash of each text, as a UInt64 series aligned with `texts`.

    Tokens are the lowercase words `[a-z0-9]+` of the text, digits-only tokens dropped (so
    "attempt 37" and "attempt 38" tokenise alike), weighted by their count in the text. Bit i
    is set when the count-weighted sum of the tokens' i-th sign (+1/-1, from a stable hash of
    the token) is positive. A text that is null or has no token gets null.
    """
    series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String)
    n_docs = len(series)
    docs, token_ids, vocab = _tokenise(series.cast(pl.String))
    if len(docs) == 0:
        return pl.Series("prompt_simhash", [None] * n_docs, dtype=pl.UInt64)

    signs = token_signs(vocab)
    # one row per text, one entry per token occurrence (tokens come in text order); repeated
    # entries of a row add up in the product, so a token weighs its count in the text
    row_starts = np.concatenate(([0], np.cumsum(np.bincount(docs, minlength=n_docs)))).astype(np.int64)
    matrix = sparse.csr_matrix((np.ones(len(docs), dtype=np.float32), token_ids, row_starts), shape=(n_docs, len(vocab)))

    packed = np.zeros(n_docs, dtype=np.uint64)
    for start in range(0, n_docs, chunk_rows):
        sums = np.asarray(matrix[start : start + chunk_rows] @ signs)
        bits = np.packbits(sums > 0, axis=1, bitorder="little")  # byte j, bit k <- dimension 8j+k
        packed[start : start + chunk_rows] = bits.view("<u8").ravel()

    has_tokens = np.zeros(n_docs, dtype=bool)
    has_tokens[docs] = True
    return (
        pl.DataFrame({"simhash": packed, "has_tokens": has_tokens})
        .select(pl.when("has_tokens").then("simhash").alias("prompt_simhash"))
        .to_series()
    )


def token_signs(tokens: list[str]) -> np.ndarray:
    """(len(tokens), 64) float32 matrix of +1/-1: bit i of blake2b-64(token) mapped to +1 (set) or -1."""
    if not tokens:
        return np.zeros((0, 64), dtype=np.float32)
    digests = b"".join(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest() for token in tokens)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(len(tokens), 8), axis=1, bitorder="little")
    return bits.astype(np.float32) * 2.0 - 1.0


def prompt_fingerprint(text: str) -> str:
    """Exact fingerprint of a prompt: sha256 hex of its UTF-8 text (the same as DuckDB's sha256())."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hamming64(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit signatures."""
    return (int(a) ^ int(b)).bit_count()


def withheld(why: str, data: bytes) -> str:
    """Raw text standing in for a record that may hold prompt text we cannot cut out safely."""
    return json.dumps({"withheld": why, "sha256": hashlib.sha256(data).hexdigest()})


def redacted_struct_json(columns: Sequence[str], redact: Iterable[str]) -> str:
    """SQL: the row as a JSON object of `columns`, each `redact` column's text replaced by
    'sha256:' || its fingerprint (CSV and Parquet raw text)."""
    if not columns:
        return "NULL"
    hidden = set(redact)
    fields = []
    for name in columns:
        column = _ident(name)
        value = f"'sha256:' || sha256(CAST({column} AS VARCHAR))" if name in hidden else column
        fields.append(f"{_ident(name)} := {value}")
    return f"to_json(struct_pack({', '.join(fields)}))"


def redacted_json_line(line: str, redact: Iterable[str], *, valid: bool) -> str:
    """SQL: a JSON line as raw text with every `redact` string value replaced by 'sha256:<hex>'.

    valid=True: `line` is a valid JSON object. Each value is cut out by a regular expression and
    the result is kept only if parsing it back gives exactly the fingerprints; otherwise the line
    is withheld (replaced by a note and the line's sha256).
    valid=False: `line` is malformed or not an object. A line that never mentions a `redact`
    key (nor holds a \\u escape, which could spell one) is kept as is; a non-object line, or a
    malformed line that cutting the values out does not turn into valid JSON, is withheld. A value
    cut from a malformed line is fingerprinted as written (escapes not decoded), so it may differ
    from the loaded fingerprint.
    """
    names = sorted(set(redact))
    if not names:
        return line
    withheld_sql = (
        "CAST(json_object('withheld', 'line holds prompt text that could not be redacted', "
        f"'sha256', sha256({line})) AS VARCHAR)"
    )
    if valid:
        redacted = line
        checks = []
        for name in names:
            value = f"json_extract_string({line}, {_literal('$.' + _json_key(name))})"
            fingerprint = f"'sha256:' || sha256({value})"
            replaced = f"regexp_replace({redacted}, {_literal(_value_pattern(name))}, {_replacement(name, fingerprint)}, 'g')"
            redacted = f"CASE WHEN {value} IS NULL THEN {redacted} ELSE {replaced} END"
            checks.append((name, value, fingerprint))
        agree = " AND ".join(
            f"json_extract_string({redacted}, {_literal('$.' + _json_key(name))}) "
            f"IS NOT DISTINCT FROM CASE WHEN {value} IS NULL THEN NULL ELSE {fingerprint} END"
            for name, value, fingerprint in checks
        )
        return f"CASE WHEN {agree} THEN {redacted} ELSE {withheld_sql} END"
    # a key may also be spelled with \u escapes ("prompt\u005ftext"): such a line counts as mentioning
    mentions = " OR ".join([f"contains({line}, {_literal(name)})" for name in names] + [f"contains({line}, '\\u')"])
    redacted = line
    for name in names:
        raw_value = f"regexp_extract({line}, {_literal(_value_pattern(name))}, 1)"
        redacted = (
            f"regexp_replace({redacted}, {_literal(_value_pattern(name))}, "
            f"{_replacement(name, chr(39) + 'sha256:' + chr(39) + ' || sha256(' + raw_value + ')')}, 'g')"
        )
    return (
        f"CASE WHEN json_valid({line}) THEN {withheld_sql} "
        f"WHEN NOT ({mentions}) THEN {line} "
        f"WHEN json_valid({redacted}) THEN {redacted} "
        f"ELSE {withheld_sql} END"
    )


def _value_pattern(name: str) -> str:
    """RE2: `"name": "<JSON string>"`; group 1 is the string's content as written."""
    return '"' + _re_escape(name) + r'"\s*:\s*"((?:[^"\\]|\\.)*)"'


def _replacement(name: str, fingerprint_sql: str) -> str:
    return f"'\"' || {_literal(name)} || '\": \"' || {fingerprint_sql} || '\"'"


def _re_escape(text: str) -> str:
    return "".join("\\" + c if not c.isalnum() and c != "_" else c for c in text)


def _json_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tokenise(texts: pl.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every kept token occurrence as (doc row, token id), in doc order, and the vocabulary."""
    tokens = (
        pl.DataFrame({"text": texts})
        .with_row_index("doc")
        .select("doc", pl.col("text").str.to_lowercase().str.extract_all(TOKEN_PATTERN).alias("token"))
        .explode("token")
        .drop_nulls("token")
    )
    if tokens.height == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    # categorical codes are dense only per process: remap them to 0..V-1 in O(n), without sorting
    codes = tokens["token"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    present = np.zeros(codes.max() + 1, dtype=bool)
    present[codes] = True
    token_ids = (np.cumsum(present) - 1)[codes]
    first_seen = np.empty(len(present), dtype=np.int64)
    first_seen[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # last write wins: the first occurrence
    vocab = tokens["token"].gather(first_seen[present]).to_list()
    keep = np.array([not token.isdigit() for token in vocab], dtype=bool)[token_ids]  # digits-only: dropped
    return tokens["doc"].to_numpy().astype(np.int64)[keep], token_ids[keep], vocab


# settings
TOKEN_PATTERN = r"[a-z0-9]+"
