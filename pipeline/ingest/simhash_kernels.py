"""The compiled insides of `fingerprint.simhash64`: tokenising texts and adding up token signs.

Two kernels per chunk of texts (numba, compiled once per machine into numba's disk cache, run
without the GIL so chunks run on threads; where numba finds no writable place for its cache, next to
this module or in the user's cache directory, they are compiled once per process instead):

1. `tokenize` reads a chunk's UTF-8 bytes once: tokens are the maximal runs of `[a-z0-9]` after
   lowercasing, digits-only runs dropped. Each distinct token gets a local id (an open-addressing
   table compared byte by byte, so two tokens never share an id); the chunk's texts become runs
   of local ids, and its vocabulary a string array (bytes + offsets).
2. `signatures` adds up, per text, the 64 signs (+1/-1) of its tokens, and sets bit i of the
   SimHash where sum i is positive.

Lowercasing follows Unicode as `str.lower()` does, restricted to what can change a token: ASCII
A-Z, and the only two non-ASCII characters whose lowercase holds an ASCII letter or digit:
U+0130 (lowercase "i" + U+0307, which ends the token) and U+212A KELVIN SIGN ("k").
"""
from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LETTER, _DIGIT = 1, 2  # BYTE_CLASS: 0 for every byte that is no token byte
BYTE_CLASS = np.zeros(256, dtype=np.uint8)
LOWER = np.arange(256, dtype=np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyz":
    BYTE_CLASS[_c] = _LETTER
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    BYTE_CLASS[_c] = _LETTER
    LOWER[_c] = _c + 32
for _c in b"0123456789":
    BYTE_CLASS[_c] = _DIGIT

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
TABLE_START = 1 << 16  # slots of a chunk's token table at first (1 MiB)


def _compiled(function):  # type: ignore[no-untyped-def]
    """`function` compiled without the GIL, cached on disk where numba can write (a read-only
    install run by a user without a writable home has no such place: numba then refuses to cache
    and the kernels compile in each process, about 3 s, rather than fail)."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


def offsets(texts: pa.LargeStringArray) -> np.ndarray:
    """The texts' len + 1 byte offsets into their data buffer (a slice keeps its parent's buffers)."""
    return np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]


def chunks(texts: pa.LargeStringArray, rows: int, max_bytes: int) -> list[pa.LargeStringArray]:
    """Slices of at most `rows` texts and, past a text's own size, at most `max_bytes` of text: a
    chunk's kernel memory is a few times its bytes, so a file of huge prompts stays bounded."""
    bounds = offsets(texts)
    starts = [0]
    while starts[-1] < len(texts):
        start = starts[-1]
        by_bytes = int(np.searchsorted(bounds, bounds[start] + max_bytes, side="right")) - 1
        starts.append(min(start + rows, max(by_bytes, start + 1), len(texts)))
    return [texts.slice(a, b - a) for a, b in zip(starts, starts[1:])]


def tokenize(texts: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Texts -> (ids, text_starts, vocab_bytes, vocab_offsets): text t's tokens are the local ids
    ids[text_starts[t]:text_starts[t + 1]], in order; local id v is the token
    vocab_bytes[vocab_offsets[v]:vocab_offsets[v + 1]]. A null text (whose slot may span any
    bytes) has none."""
    data = texts.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    bounds = offsets(texts)
    starts, ends = bounds[:-1], bounds[1:]
    if texts.null_count:
        ends = np.where(pc.is_valid(texts).to_numpy(zero_copy_only=False), ends, starts)
    total = int((ends - starts).sum())
    capacity = TABLE_START
    while True:  # a table that fills up is started again 4x larger (most chunks fit the first)
        tokenized = _tokenize(data, starts, ends, total, capacity, BYTE_CLASS, LOWER)
        if tokenized[0] is not None:
            return tokenized
        capacity *= 4


@_compiled
def _tokenize(data, starts, ends, total, capacity, byte_class, lower):  # pragma: no cover - compiled
    """tokenize, with a table of `capacity` slots; (None, ...) when more than capacity / 2
    distinct tokens. Its arrays are never reassigned: numba counts references of a variable
    reassigned in a loop at every use, which costs more than the work here."""
    n = len(starts)
    ids = np.empty(total // 2 + 1, dtype=np.int32)  # a token and its separator take >= 2 bytes
    text_starts = np.empty(n + 1, dtype=np.int64)
    slots = np.full(capacity, -1, dtype=np.int32)
    slot_hashes = np.zeros(capacity, dtype=np.uint64)
    vocab_bytes = np.empty(max(total, 1), dtype=np.uint8)
    vocab_offsets = np.zeros(capacity // 2 + 1, dtype=np.int64)
    token = np.empty(max(total, 1), dtype=np.uint8)
    mask = np.uint64(capacity - 1)
    n_vocab = 0
    n_ids = 0
    for t in range(n):
        text_starts[t] = n_ids
        i = starts[t]
        end = ends[t]
        while i < end:
            length = 0
            letters = 0
            h = _FNV_OFFSET
            while i < end:  # once per byte: plain values, no helper call
                c = data[i]
                kind = byte_class[c]
                width = 1
                stop = 0
                if kind != 0:
                    b = lower[c]
                elif c == 0xC4 and i + 1 < end and data[i + 1] == 0xB0:  # U+0130 -> "i" + U+0307: ends the token
                    b, kind, width, stop = np.uint8(105), np.uint8(_LETTER), 2, 1
                elif c == 0xE2 and i + 2 < end and data[i + 1] == 0x84 and data[i + 2] == 0xAA:  # U+212A -> "k"
                    b, kind, width = np.uint8(107), np.uint8(_LETTER), 3
                else:
                    break
                token[length] = b
                length += 1
                letters |= kind & 1
                h = (h ^ np.uint64(b)) * _FNV_PRIME
                i += width
                if stop:
                    break
            if length == 0:
                i += 1
                continue
            if letters == 0:  # digits only
                continue
            slot = h & mask
            found = -1
            while slots[slot] != -1:
                v = slots[slot]
                if slot_hashes[slot] == h and vocab_offsets[v + 1] - vocab_offsets[v] == length:
                    first = vocab_offsets[v]
                    same = True
                    for k in range(length):
                        if vocab_bytes[first + k] != token[k]:
                            same = False
                            break
                    if same:
                        found = v
                        break
                slot = (slot + np.uint64(1)) & mask
            if found == -1:
                if 2 * (n_vocab + 1) > capacity:
                    return None, text_starts, vocab_bytes, vocab_offsets
                found = n_vocab
                first = vocab_offsets[n_vocab]
                vocab_bytes[first:first + length] = token[:length]
                vocab_offsets[n_vocab + 1] = first + length
                slots[slot] = n_vocab
                slot_hashes[slot] = h
                n_vocab += 1
            ids[n_ids] = found
            n_ids += 1
    text_starts[n] = n_ids
    return ids[:n_ids].copy(), text_starts, vocab_bytes[:vocab_offsets[n_vocab]].copy(), vocab_offsets[:n_vocab + 1].copy()


@_compiled
def signatures(ids, text_starts, token_rows, signs):  # pragma: no cover - compiled
    """(SimHash, has tokens) per text: bit i set where the sum over the text's tokens of
    signs[token_rows[id], i] (+1/-1) is positive."""
    n = len(text_starts) - 1
    packed = np.zeros(n, dtype=np.uint64)
    has_tokens = np.zeros(n, dtype=np.bool_)
    sums = np.zeros(64, dtype=np.int32)
    for t in range(n):
        first = text_starts[t]
        last = text_starts[t + 1]
        if first == last:
            continue
        sums[:] = 0
        for k in range(first, last):
            row = token_rows[ids[k]]
            for bit in range(64):
                sums[bit] += signs[row, bit]
        value = np.uint64(0)
        for bit in range(64):
            if sums[bit] > 0:
                value |= np.uint64(1) << np.uint64(bit)
        packed[t] = value
        has_tokens[t] = True
    return packed, has_tokens
