"""Prompt fingerprints: an exact one (sha256) and a 64-bit SimHash for near-duplicates.

Prompt text is never stored; the loader keeps only what this module derives from it.
Every hash here is stable across processes, machines and library versions (hashlib),
never Python's `hash()` nor the polars/DuckDB `hash()` functions.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse


def simhash64(
    texts: pl.Series | pa.Array | pa.ChunkedArray | Iterable[str | None], *, chunk_rows: int = 25_000
) -> pl.Series:
    """64-bit SimHash of each text, as a UInt64 series aligned with `texts`.

    Tokens are the lowercase words `[a-z0-9]+` of the text, digits-only tokens dropped (so
    "attempt 37" and "attempt 38" tokenise alike), weighted by their count in the text. Bit i
    is set when the count-weighted sum of the tokens' i-th sign (+1/-1, from a stable hash of
    the token) is positive. A text that is null or has no token gets null.

    Texts are hashed in chunks of `chunk_rows`, on up to SIMHASH_THREADS threads.
    """
    if isinstance(texts, pl.Series):
        arrow = texts.cast(pl.String).to_arrow()
    elif isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arrow = texts
    else:
        arrow = pa.array(list(texts), type=pa.large_string())
    if arrow.type not in (pa.string(), pa.large_string()):
        arrow = arrow.cast(pa.large_string())
    if len(arrow) == 0:
        return pl.Series("prompt_simhash", [], dtype=pl.UInt64)
    # sums of +-1 per text, exact in this type: n tokens take at least 2n - 1 bytes
    dtype = _sum_dtype((int(pc.max(pc.binary_length(arrow)).as_py() or 0) + 1) // 2)
    arrays = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    chunks = [a.slice(start, chunk_rows) for a in arrays for start in range(0, len(a), max(chunk_rows, 1))]
    # arrow, numpy and scipy release the GIL for the heavy steps
    with ThreadPoolExecutor(min(SIMHASH_THREADS, len(chunks))) as pool:
        # texts cut at ASCII whitespace (which never splits a token) into pieces, each distinct
        # piece tokenised once, for all chunks together
        split = list(pool.map(_split, chunks))
        pieces = pa.chunked_array([p for p, _ in split], type=split[0][0].type).unify_dictionaries()
        piece_sums, piece_counts = _token_sums(pieces.chunk(0).dictionary, dtype)
        parts = list(pool.map(
            lambda chunk, starts: _combine(chunk.indices.to_numpy(), starts, piece_sums, piece_counts),
            pieces.chunks, [starts for _, starts in split],
        ))
    packed = np.concatenate([p for p, _ in parts])
    has_tokens = np.concatenate([h for _, h in parts])
    return pl.Series("prompt_simhash", pa.array(packed, type=pa.uint64(), mask=~has_tokens), dtype=pl.UInt64)


def _split(texts: pa.Array) -> tuple[pa.DictionaryArray, np.ndarray]:
    """The texts cut at ASCII whitespace, the pieces dictionary encoded, and where each text's
    pieces start (len(texts) + 1 offsets; a null text has none)."""
    lists = pc.ascii_split_whitespace(texts)
    starts = lists.offsets.to_numpy()
    return pc.dictionary_encode(lists.flatten()), starts - starts[0]


def _combine(
    piece_ids: np.ndarray, piece_starts: np.ndarray, piece_sums: np.ndarray, piece_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(SimHash, has tokens) of each text from its pieces: a text's sums are its pieces' sums."""
    n_docs = len(piece_starts) - 1
    tokens_before = np.concatenate(([0], np.cumsum(piece_counts[piece_ids])))
    has_tokens = tokens_before[piece_starts[1:]] > tokens_before[piece_starts[:-1]]
    if not has_tokens.any():
        return np.zeros(n_docs, dtype=np.uint64), has_tokens
    # one row per text, one entry per piece occurrence: repeated pieces add up in the product
    per_text = sparse.csr_matrix(
        (np.ones(len(piece_ids), dtype=piece_sums.dtype), piece_ids, piece_starts), shape=(n_docs, len(piece_sums))
    )
    sums = np.asarray(per_text @ piece_sums)
    bits = np.packbits(sums > 0, axis=1, bitorder="little")  # byte j, bit k <- dimension 8j+k
    return np.ascontiguousarray(bits).view("<u8").ravel(), has_tokens


def _token_sums(pieces: pa.Array, dtype: type[np.signedinteger]) -> tuple[np.ndarray, np.ndarray]:
    """Per piece: the (n, 64) sums of its kept tokens' signs, and its number of kept tokens.

    Tokens are the maximal runs of `[a-z0-9]` in the lowercase piece: every other byte becomes a
    space (a non-ASCII character's UTF-8 bytes are all >= 0x80, so never part of a token, and the
    text stays valid UTF-8) and the piece is split at spaces.
    """
    lowered = pl.Series(pieces).str.to_lowercase().to_arrow()
    if isinstance(lowered, pa.ChunkedArray):
        lowered = lowered.combine_chunks()
    lowered = lowered.cast(pa.large_string())
    _, offsets, data = lowered.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[lowered.offset : lowered.offset + len(lowered) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    separated = bytes(memoryview(data)[first:last]).translate(_SEPARATE) if last > first else b""
    separated_pieces = pa.LargeStringArray.from_buffers(len(lowered), pa.py_buffer(offsets - first), pa.py_buffer(separated))
    words, starts = _split(separated_pieces)
    vocab, word_ids = words.dictionary, words.indices.to_numpy()
    # a kept token is a word that is neither empty (from leading or trailing spaces) nor digits only
    keep_vocab = pc.and_(pc.greater(pc.binary_length(vocab), 0), pc.invert(pc.utf8_is_digit(vocab)))
    keep_vocab = keep_vocab.to_numpy(zero_copy_only=False)
    kept_ids = (np.cumsum(keep_vocab) - 1).astype(np.int32)  # vocabulary id -> id among kept tokens
    keep = keep_vocab[word_ids]
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    row_starts = kept_before[starts]  # words stay in order: piece i owns kept tokens [row_starts[i], row_starts[i+1])
    signs = token_signs(vocab.filter(pa.array(keep_vocab)).to_pylist()).astype(dtype)
    matrix = sparse.csr_matrix(
        (np.ones(int(kept_before[-1]), dtype=dtype), kept_ids[word_ids[keep]], row_starts),
        shape=(len(pieces), len(signs)),
    )
    return np.asarray(matrix @ signs), np.diff(row_starts)


def _sum_dtype(terms: int) -> type[np.signedinteger]:
    """The narrowest integer type exact for any sum of up to `terms` values +-1 (and its partial sums)."""
    return np.int16 if terms < 2**15 else np.int32 if terms < 2**31 else np.int64


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


# settings
TOKEN_PATTERN = r"[a-z0-9]+"  # a token (of the lowercase text), digits-only tokens dropped
SIMHASH_THREADS = min(os.cpu_count() or 1, 8)
# bytes.translate table: a token's bytes stay, every other byte becomes a space
_SEPARATE = bytes(c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else 0x20 for c in range(256))
