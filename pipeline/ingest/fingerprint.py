"""Prompt fingerprints: an exact one (HMAC-SHA256) and a 64-bit SimHash for near-duplicates, both
keyed with the installation's secret (`FingerprintKey`; where it comes from: pipeline.ingest.fingerprint_key).

Prompt text is never stored; the loader keeps only what this module derives from it, and without
the key nobody can hash a guessed prompt and compare: the exact fingerprint is HMAC-SHA256 of the
text's sha256, and SimHash token signs come from blake2b keyed with a key derived from the secret.
Raw text of rejected rows carries a plain `unkeyed-sha256:<hex>` placeholder in memory only: the
loader keys every placeholder (`keyed_raw_sql`) before the row is stored, as `hmac:<hex>`.
Every hash here is stable across processes, machines and library versions (hashlib), never
Python's `hash()` nor the polars/DuckDB `hash()` functions.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa


class FingerprintKey:
    """The installation's secret and the keys derived from it, one per use. Its repr and str name
    the key by its id and never show the secret; it refuses to be pickled (so it never travels
    as a task parameter into an orchestrator's database)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"a fingerprint key has at least {KEY_BYTES} bytes")
        self._secret = bytes(secret)

    def _derive(self, purpose: bytes) -> bytes:
        return hmac.new(self._secret, b"goodhart " + purpose, hashlib.sha256).digest()

    @property
    def key_id(self) -> str:
        """Names the key ('k' and 16 hex digits): a keyed hash of a constant, which tells two keys
        apart and reveals nothing of either. The database records it, never the key."""
        return "k" + self._derive(b"key id").hex()[:16]

    @property
    def exact(self) -> bytes:
        """HMAC-SHA256 key of the exact fingerprints."""
        return self._derive(b"exact fingerprint v1")

    @property
    def simhash(self) -> bytes:
        """blake2b key of the SimHash token signs."""
        return self._derive(b"simhash v1")

    def __repr__(self) -> str:
        return f"FingerprintKey({self.key_id})"

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        raise TypeError("a fingerprint key is not pickled: it must not leave the process")


def simhash64(
    texts: pl.Series | pa.Array | pa.ChunkedArray | Iterable[str | None], *, key: bytes, chunk_rows: int = 25_000
) -> pl.Series:
    """64-bit SimHash of each text, as a UInt64 series aligned with `texts`; `key`: FingerprintKey.simhash.

    Tokens are the lowercase words `[a-z0-9]+` of the text, digits-only tokens dropped (so
    "attempt 37" and "attempt 38" tokenise alike), weighted by their count in the text. Bit i
    is set when the count-weighted sum of the tokens' i-th sign (+1/-1, from a keyed hash of
    the token) is positive. A text that is null or has no token gets null.

    Texts are tokenised in chunks of `chunk_rows` (and CHUNK_BYTES) on up to SIMHASH_THREADS
    threads (compiled kernels: pipeline.ingest.simhash_kernels); each distinct token of all
    chunks is hashed once.
    """
    from pipeline.ingest import simhash_kernels  # numba: imported by the loads that hash texts only

    if isinstance(texts, pl.Series):
        arrow = texts.cast(pl.String).to_arrow()
    elif isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arrow = texts
    else:
        arrow = pa.array(list(texts), type=pa.large_string())
    if arrow.type != pa.large_string():
        arrow = arrow.cast(pa.large_string())
    if len(arrow) == 0:
        return pl.Series("prompt_simhash", [], dtype=pl.UInt64)
    arrays = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    chunks = [chunk for a in arrays for chunk in simhash_kernels.chunks(a, max(chunk_rows, 1), CHUNK_BYTES)]
    with ThreadPoolExecutor(min(SIMHASH_THREADS, len(chunks))) as pool:
        tokenized = list(pool.map(simhash_kernels.tokenize, chunks))
        # one vocabulary over the chunks: chunk c's local token v is global token rows[c][v]
        vocabularies = [pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
                        for _, _, data, offsets in tokenized]
        encoded = pa.concat_arrays(vocabularies).dictionary_encode()
        rows = np.split(encoded.indices.to_numpy(zero_copy_only=False), np.cumsum([len(v) for v in vocabularies])[:-1])
        signs = token_signs(encoded.dictionary.to_pylist(), key).astype(np.int8)
        parts = list(pool.map(
            lambda part, token_rows: simhash_kernels.signatures(part[0], part[1], token_rows, signs), tokenized, rows))
    packed = np.concatenate([p for p, _ in parts])
    has_tokens = np.concatenate([h for _, h in parts])
    return pl.Series("prompt_simhash", pa.array(packed, type=pa.uint64(), mask=~has_tokens), dtype=pl.UInt64)


def token_signs(tokens: list[str], key: bytes) -> np.ndarray:
    """(len(tokens), 64) float32 matrix of +1/-1: bit i of blake2b-64(token, key) mapped to +1 (set) or -1."""
    if not tokens:
        return np.zeros((0, 64), dtype=np.float32)
    digests = b"".join(hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=key).digest() for token in tokens)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(len(tokens), 8), axis=1, bitorder="little")
    return bits.astype(np.float32) * 2.0 - 1.0


def prompt_fingerprint(text: str, key: FingerprintKey) -> str:
    """Exact fingerprint of a prompt text: HMAC-SHA256 hex, under the key, of the sha256 hex of its
    UTF-8 text (what the loader stores: `text_fingerprint_sql`)."""
    return keyed_hex(hashlib.sha256(text.encode("utf-8")).hexdigest(), key)


def given_hash_fingerprint(prompt_hash: str, key: FingerprintKey) -> str:
    """Exact fingerprint of a prompt given as `prompt_hash` (hashed upstream): 'hash:' and the
    HMAC-SHA256 hex of that hash under the key. A text and a hash never share a fingerprint."""
    return "hash:" + keyed_hex(prompt_hash, key)


def keyed_hex(value: str, key: FingerprintKey) -> str:
    """HMAC-SHA256 hex of `value`'s UTF-8 bytes under the key's exact key (`keyed_sql` in SQL)."""
    return hmac.new(key.exact, value.encode("utf-8"), hashlib.sha256).hexdigest()


def use_key(con: duckdb.DuckDBPyConnection, key: FingerprintKey) -> None:
    """Hand the key to the connection's SQL as variables: the HMAC pads of its exact key and its
    SimHash key. Variables live in the connection's memory only, never in the database file."""
    padded = key.exact.ljust(HMAC_BLOCK, b"\0")
    con.execute(f"SET VARIABLE {_INNER} = ?", [bytes(b ^ 0x36 for b in padded)])
    con.execute(f"SET VARIABLE {_OUTER} = ?", [bytes(b ^ 0x5C for b in padded)])
    con.execute(f"SET VARIABLE {_SIMHASH} = ?", [key.simhash])


def simhash_key_of(con: duckdb.DuckDBPyConnection) -> bytes:
    """The SimHash key `use_key` gave the connection."""
    (value,), = con.sql(f"SELECT getvariable('{_SIMHASH}')").fetchall()
    if value is None:
        raise RuntimeError("no fingerprint key on this connection (pipeline.ingest.fingerprint.use_key)")
    return bytes(value)


def keyed_sql(value: str) -> str:
    """SQL: HMAC-SHA256 hex of the text `value` under the connection's key (`use_key`); a query
    on a connection without one fails."""
    return f"sha256({_key_variable(_OUTER)} || unhex(sha256({_key_variable(_INNER)} || encode({value}))))"


def text_fingerprint_sql(text: str) -> str:
    """SQL: the exact fingerprint of the prompt text `text` (see prompt_fingerprint)."""
    return keyed_sql(f"sha256({text})")


def unkeyed_sql(value: str) -> str:
    """SQL: the placeholder standing for `value` in raw text until the loader keys it."""
    return f"{_literal(UNKEYED)} || sha256({value})"


def keyed_raw_sql(raw: str) -> str:
    """SQL: `raw` as stored in rejected_rows.raw: every `unkeyed-sha256:<hex>` placeholder replaced
    by 'hmac:' and the hex's HMAC under the connection's key (a prompt's placeholder becomes
    'hmac:' || its exact fingerprint). Plain sha256 forms written by older versions or by an
    adapter that still writes them (a JSON string "sha256:<hex>", a note's "sha256": "<hex>")
    are keyed the same way, so no plain hash of a text is stored whoever wrote it."""
    marked = (
        f"regexp_replace(regexp_replace({raw}, {_literal(_PLAIN_NOTE)}, {_literal(_NOTE_MARKED)}, 'g'), "
        f"{_literal(_PLAIN_VALUE)}, {_literal(_VALUE_MARKED)}, 'g')"
    )
    placeholders = f"regexp_extract_all({marked}, {_literal(UNKEYED_PATTERN)}, 1)"
    key_one = f"lambda acc, h: replace(acc, {_literal(UNKEYED)} || h, {_literal(KEYED)} || {keyed_sql('h')})"
    return (
        f"CASE WHEN {raw} IS NULL OR NOT contains({raw}, 'sha256') THEN {raw} "
        f"ELSE list_reduce(list_prepend({marked}, {placeholders}), {key_one}) END"
    )


def _key_variable(name: str) -> str:
    return f"coalesce(CAST(getvariable('{name}') AS BLOB), error('no fingerprint key on this connection'))"


def hamming64(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit signatures."""
    return (int(a) ^ int(b)).bit_count()


def withheld(why: str, data: bytes) -> str:
    """Raw text standing in for a record that may hold prompt text we cannot cut out safely."""
    return json.dumps({"withheld": why, "fingerprint": UNKEYED + hashlib.sha256(data).hexdigest()})


def withheld_sql(why: str, text: str) -> str:
    """SQL: `withheld` for the text `text` (a note and the text's fingerprint placeholder)."""
    return f"CAST(json_object('withheld', {_literal(why)}, 'fingerprint', {unkeyed_sql(text)}) AS VARCHAR)"


def redacted_struct_json(columns: Sequence[str], redact: Iterable[str]) -> str:
    """SQL: the row as a JSON object of `columns`, each `redact` column's text replaced by
    its fingerprint placeholder (CSV and Parquet raw text)."""
    if not columns:
        return "NULL"
    hidden = set(redact)
    fields = []
    for name in columns:
        column = _ident(name)
        value = unkeyed_sql(f"CAST({column} AS VARCHAR)") if name in hidden else column
        fields.append(f"{_ident(name)} := {value}")
    return f"to_json(struct_pack({', '.join(fields)}))"


def redacted_json_line(line: str, redact: Iterable[str], *, valid: bool) -> str:
    """SQL: a JSON line as raw text with every `redact` string value replaced by its fingerprint placeholder.

    valid=True: `line` is a valid JSON object. Each value is cut out by a regular expression and
    the result is kept only if parsing it back gives exactly the fingerprints; otherwise the line
    is withheld (replaced by a note and the line's fingerprint placeholder).
    valid=False: `line` is malformed or not an object. A line that never mentions a `redact`
    key (nor holds a \\u escape, which could spell one) is kept as is; a non-object line, or a
    malformed line that cutting the values out does not turn into valid JSON, is withheld. A value
    cut from a malformed line is fingerprinted as written (escapes not decoded), so it may differ
    from the loaded fingerprint.
    """
    names = sorted(set(redact))
    if not names:
        return line
    withheld_line = withheld_sql("line holds prompt text that could not be redacted", line)
    if valid:
        redacted = line
        checks = []
        for name in names:
            value = f"json_extract_string({line}, {_literal('$.' + _json_key(name))})"
            fingerprint = unkeyed_sql(value)
            replaced = f"regexp_replace({redacted}, {_literal(_value_pattern(name))}, {_replacement(name, fingerprint)}, 'g')"
            redacted = f"CASE WHEN {value} IS NULL THEN {redacted} ELSE {replaced} END"
            checks.append((name, value, fingerprint))
        agree = " AND ".join(
            f"json_extract_string({redacted}, {_literal('$.' + _json_key(name))}) "
            f"IS NOT DISTINCT FROM CASE WHEN {value} IS NULL THEN NULL ELSE {fingerprint} END"
            for name, value, fingerprint in checks
        )
        return f"CASE WHEN {agree} THEN {redacted} ELSE {withheld_line} END"
    # a key may also be spelled with \u escapes ("prompt\u005ftext"): such a line counts as mentioning
    mentions = " OR ".join([f"contains({line}, {_literal(name)})" for name in names] + [f"contains({line}, '\\u')"])
    redacted = line
    for name in names:
        raw_value = f"regexp_extract({line}, {_literal(_value_pattern(name))}, 1)"
        redacted = (
            f"regexp_replace({redacted}, {_literal(_value_pattern(name))}, "
            f"{_replacement(name, unkeyed_sql(raw_value))}, 'g')"
        )
    return (
        f"CASE WHEN json_valid({line}) THEN {withheld_line} "
        f"WHEN NOT ({mentions}) THEN {line} "
        f"WHEN json_valid({redacted}) THEN {redacted} "
        f"ELSE {withheld_line} END"
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


# settings
KEY_BYTES = 32  # a fingerprint key's least length (a new one is 32 random bytes)
HMAC_BLOCK = 64  # SHA-256's block size: the HMAC key is padded to it
UNKEYED = "unkeyed-sha256:"  # a plain sha256 in raw text, in memory only: keyed before it is stored
UNKEYED_PATTERN = "unkeyed-sha256:([0-9a-f]{64})"
KEYED = "hmac:"  # a keyed fingerprint in stored raw text
# plain sha256 forms in raw text (before keys; some adapters): a note's "sha256": "<hex>", a value "sha256:<hex>"
_PLAIN_NOTE, _NOTE_MARKED = r'"sha256"(\s*):(\s*)"([0-9a-f]{64})"', r'"fingerprint"\1:\2"unkeyed-sha256:\3"'
_PLAIN_VALUE, _VALUE_MARKED = r'"sha256:([0-9a-f]{64})"', r'"unkeyed-sha256:\1"'
_INNER, _OUTER, _SIMHASH = "goodhart_fingerprint_inner", "goodhart_fingerprint_outer", "goodhart_simhash_key"
TOKEN_PATTERN = r"[a-z0-9]+"  # a token (of the lowercase text), digits-only tokens dropped
SIMHASH_THREADS = min(os.cpu_count() or 1, 8)
CHUNK_BYTES = 32 * 2**20  # text bytes per SimHash chunk at most (one longer text makes a chunk alone)
