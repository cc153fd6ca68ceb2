"""The Python SQL functions of the feature models (features/sql_functions.py) against their
definitions: near_earlier by brute force, pairwise and by band; peak_window_sum by DuckDB's window."""
from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from features.sql_functions import ALL_PAIRS_MAX, near_earlier, peak_window_sum, registered


def brute_force(signatures: list[int], seqs: list[int], bits: int) -> list[int]:
    return sorted(s for s, h in zip(seqs, signatures)
                  if any(t < s and bin((h ^ g) & (2**64 - 1)).count("1") <= bits for t, g in zip(seqs, signatures)))


def scope(rng: random.Random, size: int, flips: int) -> tuple[list[int], list[int]]:
    """`size` distinct signed 64-bit signatures, flipped around a few bases, and shuffled seqs."""
    bases = [rng.getrandbits(64) for _ in range(max(1, size // 40))]
    found: set[int] = set()
    while len(found) < size:
        value = rng.choice(bases)
        for bit in rng.sample(range(64), rng.randint(0, flips)):
            value ^= 1 << bit
        found.add(value - 2**64 if value >= 2**63 else value)
    seqs = rng.sample(range(10 * size), size)
    return list(found), seqs


@pytest.mark.parametrize("bits", [0, 3, 6, 7, 63, 64])
def test_matches_brute_force_pairwise_and_by_band(bits):
    rng = random.Random(bits)
    sizes = [0, 1, 2, 5, 40, ALL_PAIRS_MAX, ALL_PAIRS_MAX + 1, 700]
    scopes = [scope(rng, size, 10) for size in sizes]
    got = near_earlier(pa.array([s for s, _ in scopes], pa.list_(pa.int64())),
                       pa.array([q for _, q in scopes], pa.list_(pa.int64())), pa.array([bits] * len(scopes), pa.int32()))
    expected = [brute_force(s, q, bits) for s, q in scopes]
    assert [sorted(values) for values in got.to_pylist()] == expected
    if 3 <= bits <= 7:  # the big scopes have near and far pairs alike
        assert 0 < sum(map(len, expected[5:])) < sum(sizes[5:])


@pytest.mark.parametrize("bits", [0, 3, 64])
def test_repeated_signatures_match_brute_force(bits):
    # prompts of a scope repeat signatures (a script resending a prompt): a repeat is late
    # whatever the bits, and the earliest copy stands for its signature
    rng = random.Random(100 + bits)
    scopes = []
    for size in [2, 3, 30, ALL_PAIRS_MAX, ALL_PAIRS_MAX + 50, 600]:
        distinct, _ = scope(rng, max(1, size // 3), 10)
        signatures = [rng.choice(distinct) for _ in range(size)]
        scopes.append((signatures, rng.sample(range(10 * size), size)))
    got = near_earlier(pa.array([s for s, _ in scopes], pa.list_(pa.int64())),
                       pa.array([q for _, q in scopes], pa.list_(pa.int64())), pa.array([bits] * len(scopes), pa.int32()))
    expected = [brute_force(s, q, bits) for s, q in scopes]
    assert [sorted(values) for values in got.to_pylist()] == expected
    assert all(len(e) >= len(s) - len(set(s)) for e, (s, _) in zip(expected, scopes))  # every repeat at least


def test_a_prompt_sent_thousands_of_times_is_one_signature():
    # 20,000 copies of one signature, latest first, beside two far ones: all copies but the
    # earliest are late (settled before any comparison, so this is not 20,000^2 pairs)
    n = 20_000
    loop = 0x0F0F_0F0F_0F0F_0F0F
    signatures = [loop] * n + [0, -1]
    seqs = list(range(n + 10, 10, -1)) + [5, 1]
    got = near_earlier(pa.array([signatures], pa.list_(pa.int64())), pa.array([seqs], pa.list_(pa.int64())),
                       pa.array([3], pa.int32())).to_pylist()[0]
    assert sorted(got) == list(range(12, n + 11))


def test_null_lists_sliced_input_and_negative_bits():
    signatures = pa.array([[0, 1], None, [0, 3, 7]], pa.list_(pa.int64()))
    seqs = pa.array([[2, 1], None, [5, 6, 4]], pa.list_(pa.int64()))
    bits = pa.array([1, 1, 1], pa.int32())
    # 1 (seq 1) comes before 0 (seq 2); 7 (seq 4) before 0 (3 bits away) and 3 (1 bit away)
    assert near_earlier(signatures, seqs, bits).to_pylist() == [[2], None, [6]]
    # a slice keeps its parent's offsets into the values
    assert near_earlier(signatures[2:], seqs[2:], bits[2:]).to_pylist() == [[6]]
    assert near_earlier(signatures, seqs, pa.array([-1] * 3, pa.int32())).to_pylist() == [[], None, []]


def test_peak_window_sum_equals_the_range_window():
    # requests of several groups: ties at one moment, gaps longer than the window, one request alone
    rng = random.Random(3)
    rows = [(group, rng.choice([0, 0, 5, 60, 3600, 7200, 10800, 10801, 20000]) * 1_000_000 * (k % 7 + 1) // 3,
             rng.randint(0, 5_000)) for group in range(30) for k in range(rng.randint(1, 60))]
    con = duckdb.connect()
    con.execute("CREATE TABLE r (g INTEGER, t BIGINT, amount BIGINT)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
    expected = con.sql("""
        SELECT g, max(s) FROM (SELECT g, sum(amount) OVER (PARTITION BY g ORDER BY t
            RANGE BETWEEN CURRENT ROW AND 10800000000 FOLLOWING) AS s FROM r) GROUP BY g ORDER BY g""").fetchall()
    with registered(con):
        got = con.sql("SELECT g, peak_window_sum(list(t), list(amount), CAST(10800000000 AS BIGINT)) FROM r "
                      "GROUP BY g ORDER BY g").fetchall()
    con.close()
    assert got == expected
    assert len({s for _, s in expected}) > 10  # the groups differ


def test_peak_window_sum_null_and_empty_lists():
    times = pa.array([[5, 1, 9], None, [], [2]], pa.list_(pa.int64()))
    amounts = pa.array([[1, 2, None], None, [], [7]], pa.list_(pa.int64()))
    window = pa.array([4] * 4, pa.int64())
    # [1, 5] holds 2 + 1; a null amount counts 0
    assert peak_window_sum(times, amounts, window).to_pylist() == [3, None, None, 7]
    assert peak_window_sum(times[3:], amounts[3:], window[3:]).to_pylist() == [7]


def test_callable_in_sql_only_inside_the_block():
    con = duckdb.connect()
    with registered(con):
        got = con.sql("SELECT near_earlier([0, 1, 255]::BIGINT[], [1, 2, 3]::BIGINT[], 1)").fetchall()
    assert got == [([2],)]
    for function in ("near_earlier([0]::BIGINT[], [1]::BIGINT[], 1)", "peak_window_sum([0]::BIGINT[], [1]::BIGINT[], 1)"):
        with pytest.raises(duckdb.CatalogException):
            con.sql(f"SELECT {function}").fetchall()
    con.close()
