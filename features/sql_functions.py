"""SQL functions the feature models call, written in Python over Arrow with compiled insides
(features/kernels.py) where DuckDB's own operators cost several times more. build_features makes
them callable on its connection while it builds (`registered`).

- `near_earlier(signatures BIGINT[], seqs BIGINT[], bits INTEGER) -> BIGINT[]` (prompt_repeats):
  one scope's SimHash signatures (a session's prompts, or a user-week's) and the place (seq) of each
  prompt in; out, the seqs of those with an earlier prompt of the scope (a smaller seq) within
  `bits` bits, the same signature included. A repeated signature is settled first (its earliest
  prompt stands for it, the others are late), so a script sending the same prompt 10,000 times
  costs one signature; up to ALL_PAIRS_MAX distinct signatures are compared pairwise, more only
  where two share a band: `bits` + 1 bands split the 64 bits, and by pigeonhole two signatures at
  most `bits` apart agree on a whole band. So 10,000 unrelated prompts cost about signatures x
  bands comparisons, not signatures^2.
- `peak_window_sum(times BIGINT[], amounts BIGINT[], window BIGINT) -> BIGINT` (user_week_features):
  the largest sum of the amounts whose times lie within `window` from one of the times, that time
  included: `max(sum(amount) OVER (ORDER BY time RANGE BETWEEN CURRENT ROW AND window FOLLOWING))`
  over one list, in one pass over the sorted times instead of a window operator (a null amount
  counts 0, as sum() skips it).
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
    """The SQL function over a column of lists each (see the module doc); a null list gives null."""
    from features.kernels import near_earlier_mask  # numba: imported by the builds that call it only

    signatures, seqs = _combined(signatures), _combined(seqs)
    offsets = _offsets(signatures, seqs)
    seq_values = _values(seqs)
    bit_value = _one_value(bits, "bits")
    if bit_value is None or bit_value < 0:  # no distance is within a negative (or unknown) one
        late = np.zeros(seq_values.size, dtype=bool)
    else:
        late = near_earlier_mask(offsets, _values(signatures).view(np.uint64), seq_values, bit_value, ALL_PAIRS_MAX)
    # keep the late elements only: each list's new offsets count its late elements before it
    kept = np.concatenate([[0], np.cumsum(late, dtype=np.int64)])
    return pa.ListArray.from_arrays(pa.array(kept[offsets], pa.int32()), pa.array(seq_values[late]),
                                    mask=signatures.is_null())


def peak_window_sum(times: pa.Array | pa.ChunkedArray, amounts: pa.Array | pa.ChunkedArray,
                    window: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The SQL function over a column of lists each (see the module doc); a null or empty list gives null."""
    from features.kernels import peak_window_sums  # numba: imported by the builds that call it only

    times, amounts = _combined(times), _combined(amounts)
    offsets = _offsets(times, amounts)
    if times.values.null_count:
        raise ValueError("peak_window_sum: times must not be null")
    width = _one_value(window, "window")
    sums = peak_window_sums(offsets, _values(times), _values(amounts), 0 if width is None else width)
    empty = np.diff(offsets) == 0
    return pa.array(sums, pa.int64(), mask=times.is_null().to_numpy(zero_copy_only=False) | empty
                    | (width is None))


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The functions callable in the connection's SQL while the block runs. Removed after it: a
    connection still holding a Python function when the interpreter exits makes DuckDB's bindings
    report it as leaked, a screenful of noise."""
    functions = {
        "near_earlier": (near_earlier, ["BIGINT[]", "BIGINT[]", "INTEGER"], "BIGINT[]"),
        "peak_window_sum": (peak_window_sum, ["BIGINT[]", "BIGINT[]", "BIGINT"], "BIGINT"),
    }
    created = []
    try:
        for name, (function, parameters, returns) in functions.items():
            con.create_function(name, function, parameters, returns, type="arrow", null_handling="special",
                                side_effects=False)
            created.append(name)
        yield
    finally:
        for name in created:
            try:
                con.remove_function(name)
            except duckdb.Error:  # the connection failed (the error in flight says why)
                pass


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _offsets(first: pa.ListArray, second: pa.ListArray) -> np.ndarray:
    """The lists' offsets into their values (a slice keeps its parent's), the same for both."""
    offsets = first.offsets.to_numpy().astype(np.int64)
    if not np.array_equal(offsets, second.offsets.to_numpy()):
        raise ValueError("the two lists of each row must have the same length")
    return offsets


def _values(lists: pa.ListArray) -> np.ndarray:
    """The lists' values as int64 (nulls as 0)."""
    return lists.values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _one_value(column: pa.Array | pa.ChunkedArray, name: str) -> int | None:
    """The one value a scalar argument takes in a call (None when null)."""
    values = _combined(column).drop_null().unique().to_pylist()
    if len(values) > 1:
        raise ValueError(f"{name} must be one value for the whole call")
    return int(values[0]) if values else None
