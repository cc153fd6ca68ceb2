"""The compiled insides of the SQL functions of features/sql_functions.py (numba, without the GIL,
cached on disk where numba can write, else compiled once per process): imported only when a build
calls them, so importing the feature code costs no numba."""
from __future__ import annotations

import numba
import numpy as np


def _compiled(function):  # type: ignore[no-untyped-def]
    """`function` compiled without the GIL, cached on disk where numba can write (else per process)."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


@_compiled
def _popcount(x):  # pragma: no cover - compiled
    """Set bits of a uint64."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@_compiled
def near_earlier_mask(offsets, signatures, seqs, bits, all_pairs_max):  # pragma: no cover - compiled
    """Per element of the lists (values[offsets[k]:offsets[k + 1]] is list k): whether an element of
    its list with a smaller seq lies within `bits` (>= 0) bits. Repeated signatures are settled
    first (each one's earliest element stands for it; the others are late), so a signature repeated
    10,000 times costs one; the distinct ones are compared pairwise up to `all_pairs_max`, else
    only where they agree on one of `bits` + 1 bands."""
    late = np.zeros(signatures.size, dtype=np.bool_)
    limit = np.uint64(bits)
    bands = min(max(bits + 1, 1), 64)
    for scope in range(offsets.size - 1):
        start, end = offsets[scope], offsets[scope + 1]
        n = end - start
        if n < 2:
            continue
        # by signature, then seq: the first element of each run of one signature stands for it
        by_seq = np.argsort(seqs[start:end], kind="mergesort")
        order = by_seq[np.argsort(signatures[start:end][by_seq], kind="mergesort")]
        first = np.empty(n, dtype=np.int64)
        m = 0
        for a in range(n):
            i = start + order[a]
            if a > 0 and signatures[i] == signatures[start + order[a - 1]]:
                late[i] = True
            else:
                first[m] = i
                m += 1
        if m < 2 or bits == 0:  # bits 0: only equal signatures are near, settled above
            continue
        _near_distinct(first[:m], signatures, seqs, late, limit, bands, bits >= 64 or m <= all_pairs_max)
    return late


@_compiled
def _near_distinct(items, signatures, seqs, late, limit, bands, pairwise):  # pragma: no cover - compiled
    """Mark late each of the `items` (element indices, distinct signatures) with an earlier item
    (smaller seq) within `limit` bits: every pair when `pairwise`, else the pairs sharing a band."""
    n = items.size
    if pairwise:
        order = items[np.argsort(seqs[items])]
        for a in range(1, n):
            i = order[a]
            for b in range(a):
                if _popcount(signatures[i] ^ signatures[order[b]]) <= limit:
                    late[i] = True
                    break
        return
    keys = np.empty(n, dtype=np.uint64)
    for band in range(bands):
        low = band * 64 // bands
        width = (band + 1) * 64 // bands - low
        mask = np.uint64(0xFFFFFFFFFFFFFFFF) if width == 64 else (np.uint64(1) << np.uint64(width)) - np.uint64(1)
        for k in range(n):
            keys[k] = (signatures[items[k]] >> np.uint64(low)) & mask
        order = np.argsort(keys, kind="mergesort")
        run = 0
        while run < n:
            stop = run + 1
            while stop < n and keys[order[stop]] == keys[order[run]]:
                stop += 1
            for a in range(run, stop):
                i = items[order[a]]
                if late[i]:
                    continue
                for b in range(run, stop):
                    j = items[order[b]]
                    if seqs[j] < seqs[i] and _popcount(signatures[i] ^ signatures[j]) <= limit:
                        late[i] = True
                        break
            run = stop


@_compiled
def peak_window_sums(offsets, times, amounts, window):  # pragma: no cover - compiled
    """Per list: the largest sum of the amounts whose times lie in [t, t + window] for one of its times t."""
    best = np.zeros(offsets.size - 1, dtype=np.int64)
    for group in range(offsets.size - 1):
        start, end = offsets[group], offsets[group + 1]
        n = end - start
        if n == 0:
            continue
        order = start + np.argsort(times[start:end], kind="mergesort")
        # two pointers over the times in order: `total` sums the amounts from element i up to
        # the last element within `window` of it (an element's peers at the same time come
        # after the first of them, whose window holds them all)
        total = 0
        top = 0
        stop = 0
        for i in range(n):
            limit = times[order[i]] + window
            while stop < n and times[order[stop]] <= limit:
                total += amounts[order[stop]]
                stop += 1
            if i == 0 or total > top:
                top = total
            total -= amounts[order[i]]
        best[group] = top
    return best
