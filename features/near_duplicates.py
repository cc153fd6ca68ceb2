"""`near_earlier`, the SQL function prompt_repeats finds near-duplicate prompts with.

`near_earlier(signatures, seqs, bits)` takes one scope's distinct SimHash signatures (a session's,
or a user-week's) and the place (seq) of each one's first prompt, and returns the seqs of those
with an earlier signature of the scope (smaller seq) within `bits` bits. A compiled kernel
(features/near_duplicate_kernels.py) compares a scope's signatures pairwise;
a scope of more than ALL_PAIRS_MAX signatures compares only those sharing a band: `bits` + 1
bands split the 64 bits, and by pigeonhole two signatures at most `bits` apart agree on a whole
band. So a script sending the same prompt 10,000 times costs one signature, and 10,000 unrelated
prompts cost about signatures x bands comparisons, not signatures^2.

build_features makes it callable on its connection while it builds (`registered`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

ALL_PAIRS_MAX = 256  # signatures in a scope compared pairwise; more: by band


def near_earlier(signatures: pa.Array | pa.ChunkedArray, seqs: pa.Array | pa.ChunkedArray,
                 bits: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Arrow form of the SQL function (a column of lists each): per list, the seqs of its
    signatures that have a signature of a smaller seq within `bits` bits; a null list gives null."""
    signatures, seqs = _combined(signatures), _combined(seqs)
    bit_values = _combined(bits).drop_null().unique().to_pylist()
    if len(bit_values) > 1:
        raise ValueError("near_earlier: bits must be one value for the whole call")
    offsets = signatures.offsets.to_numpy().astype(np.int64)
    if not np.array_equal(offsets, seqs.offsets.to_numpy()):
        raise ValueError("near_earlier: signatures and seqs must be lists of the same lengths")
    seq_values = seqs.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if not bit_values or bit_values[0] < 0:  # no distance is within a negative (or unknown) one
        late = np.zeros(seq_values.size, dtype=bool)
    else:
        values = signatures.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False).view(np.uint64)
        from features.near_duplicate_kernels import near_earlier_kernel  # numba: only when prompts are compared

        late = near_earlier_kernel(offsets, values, seq_values, int(bit_values[0]), ALL_PAIRS_MAX)
    # keep the late elements only: each list's new offsets count its late elements before it
    kept = np.concatenate([[0], np.cumsum(late, dtype=np.int64)])
    return pa.ListArray.from_arrays(pa.array(kept[offsets], pa.int32()), pa.array(seq_values[late]),
                                    mask=signatures.is_null())


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """`near_earlier(BIGINT[], BIGINT[], INTEGER) -> BIGINT[]` callable in the connection's SQL
    while the block runs. Removed after it: a connection still holding a Python function when the
    interpreter exits makes DuckDB's bindings report it as leaked, a screenful of noise."""
    con.create_function(
        "near_earlier", near_earlier, ["BIGINT[]", "BIGINT[]", "INTEGER"], "BIGINT[]",
        type="arrow", null_handling="special", side_effects=False,
    )
    try:
        yield
    finally:
        try:
            con.remove_function("near_earlier")
        except duckdb.Error:  # the connection failed (the error in flight says why)
            pass


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
