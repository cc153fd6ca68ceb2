"""Prompt fingerprints: exact (keyed HMAC-SHA256), keyed SimHash near-duplicates, and redaction of raw lines."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import pipeline
from pipeline.ingest import fingerprint, simhash_kernels
from pipeline.ingest.fingerprint import (
    UNKEYED,
    FingerprintKey,
    given_hash_fingerprint,
    hamming64,
    keyed_hex,
    keyed_raw_sql,
    keyed_sql,
    prompt_fingerprint,
    redacted_json_line,
    redacted_struct_json,
    simhash64,
    text_fingerprint_sql,
    token_signs,
    use_key,
)
from tests.conftest import TEST_KEY, TEST_KEY_HEX

KEY = TEST_KEY.simhash
OTHER_KEY = FingerprintKey(bytes(range(32)))
STABLE_SIMHASH = 83629694144606798  # "Explain this code again (attempt 37)" under the test key

SENTENCE = "please refactor the checkout service so that the cart total keeps the discount when the customer switches the currency"
UNRELATED = [
    "Why does the nightly deploy to staging fail with a timeout on the database migration step",
    "Write unit tests for the invoice parser covering empty files and broken encodings",
    "Summarise this stack trace and tell me which module throws first",
    "Rename every occurrence of customerId to accountId across the payments package",
]


def test_token_signs_are_the_bits_of_keyed_blake2b() -> None:
    digest = hashlib.blake2b(b"hello", digest_size=8, key=KEY).digest()
    signs = token_signs(["hello"], KEY)[0]
    assert signs[:8].tolist() == [1 if digest[0] >> bit & 1 else -1 for bit in range(8)]
    assert sum(1 << bit for bit in range(64) if signs[bit] > 0) == int.from_bytes(digest, "little")


def test_simhash_of_one_token_is_its_keyed_hash() -> None:
    expected = int.from_bytes(hashlib.blake2b(b"hello", digest_size=8, key=KEY).digest(), "little")
    assert simhash64(["Hello!!", "  hello 42 "], key=KEY).to_list() == [expected, expected]


def test_simhash_is_stable_across_processes() -> None:
    # a constant: Python's hash() or an engine's hash() would not give it in every process and version
    assert simhash64(["Explain this code again (attempt 37)"], key=KEY).to_list() == [STABLE_SIMHASH]


def test_simhash_without_anywhere_to_cache_compiled_code(tmp_path: Path) -> None:
    # a read-only install run by a user without a writable home: numba refuses to cache the kernels
    # there, so they compile in the process instead of failing the load
    shutil.copytree(Path(pipeline.__file__).parent, tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pipeline" / "ingest" / "__pycache__").write_text("")  # no cache directory can be made next to it
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME="/dev/null", PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    code = ("from pipeline.ingest.fingerprint import simhash64; "
            f"print(simhash64(['Explain this code again (attempt 37)'], key=bytes.fromhex('{KEY.hex()}')).to_list()[0])")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) == STABLE_SIMHASH


def test_simhash_cannot_be_computed_without_the_key() -> None:
    # whoever holds the database but not the key cannot compute a guess's signature and compare
    text = "Write a detailed 3000-word essay on the history of jazz"
    keyed = simhash64([text], key=KEY).item()
    assert keyed == reference_simhash(text, key=KEY)
    assert keyed != simhash64([text], key=OTHER_KEY.simhash).item()
    assert keyed != reference_simhash(text, key=b"")  # the SimHash without a key, as stored before keys


def test_simhash_tokens_are_lowercase_words_without_digit_only_tokens() -> None:
    texts = ["Fix the BUG.", "fix   the bug", "use v2 now", "use v3 now", "123 456", "", None, "¿¡"]
    signatures = simhash64(texts, key=KEY).to_list()
    assert signatures[0] == signatures[1]
    assert signatures[2] != signatures[3]  # v2 is a word, not a number
    assert signatures[4:] == [None, None, None, None]


def test_simhash_is_the_same_whatever_the_chunk_size() -> None:
    texts = [SENTENCE, *UNRELATED, None, "attempt 3"]
    assert simhash64(texts, chunk_rows=2, key=KEY).to_list() == simhash64(texts, key=KEY).to_list()


def test_near_duplicates_land_close_and_unrelated_prompts_far() -> None:
    retry = simhash64(["Explain this code again (attempt 37)", "Explain this code again (attempt 38)"], key=KEY).to_list()
    assert hamming64(*retry) <= 3

    words = SENTENCE.split()
    edited = [" ".join(words[:i] + ["banana"] + words[i + 1 :]) for i in range(len(words))]
    base, *variants = simhash64([SENTENCE, *edited], key=KEY).to_list()
    one_word = [hamming64(base, v) for v in variants]
    unrelated = [hamming64(a, b) for i, a in enumerate(simhash64([SENTENCE, *UNRELATED], key=KEY).to_list())
                 for b in simhash64([SENTENCE, *UNRELATED], key=KEY).to_list()[i + 1 :]]
    # one word in 19 replaced: a few bits (random-hyperplane SimHash expects ~64 * angle / pi, about 6)
    assert max(one_word) <= 8 and sum(one_word) / len(one_word) <= 6
    # under the test key: another key moves each pair a little (the statistics below hold for any key)
    assert min(unrelated) >= 18


@pytest.mark.parametrize("key", [KEY, OTHER_KEY.simhash], ids=["test key", "another key"])
def test_near_duplicates_statistically(key: bytes) -> None:  # whatever the key
    rng = random.Random(7)
    vocabulary = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in ("ash", "ent", "ion", "ore", "ulk", "ix")]
    originals, edits, others = [], [], []
    for _ in range(200):
        words = [rng.choice(vocabulary) for _ in range(20)]
        originals.append(" ".join(words))
        words[rng.randrange(20)] = rng.choice(vocabulary)
        edits.append(" ".join(words))
        others.append(" ".join(rng.choice(vocabulary) for _ in range(20)))
    a, b, c = (simhash64(texts, key=key).to_list() for texts in (originals, edits, others))
    near = sorted(hamming64(x, y) for x, y in zip(a, b))
    far = sorted(hamming64(x, z) for x, z in zip(a, c))
    assert near[len(near) // 2] <= 6 and far[len(far) // 2] >= 26
    assert near[int(len(near) * 0.95)] < far[int(len(far) * 0.05)]


def reference_simhash(text: str | None, key: bytes = KEY) -> int | None:
    """The SimHash definition, one text at a time, the obvious way."""
    if text is None:
        return None
    tokens = [t for t in re.findall(r"[a-z0-9]+", text.lower()) if not t.isdigit()]
    if not tokens:
        return None
    sums = [0] * 64
    for token in tokens:
        value = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=key).digest(), "little")
        for bit in range(64):
            sums[bit] += 1 if value >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if sums[bit] > 0)


PIECES = [
    "Fix", "the", "BUG", "bug", "refactor", "checkout_service", "v2", "2fa", "123", "0042", "x86_64", "e2e", "a", "Z",
    "internationalization", "supercalifragilisticexpialidocious", "ab" * 20,  # words longer than 8, 16, 24 bytes
    ".", ",", "!?", "(attempt", "37)", "--", "/", "'", '"', "{}", "\\", "_", "-", "+",  # separators inside pieces
    "é", "naïve", "straße", "İstanbul", "\u212a" + "elvin", "ΣΊΣΥΦΟΣ", "日本語", "🙂", "ǅemal", "ＡＢＣ", "٣٤",  # unicode
    "\x00", "\x7f", "\u00ad",  # control characters and a soft hyphen
]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "", "\x0b", "\x0c"]


def corpus(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = [
        None, "", " ", "\t\n", "\u00a0\u3000", "123 456", "!!!", "a", "A" * 1000, "word " * 5000, "Hello!!", "  hello 42 ",
        "attempt 37", "attempt 38", "tab\tseparated\nlines\r\nand crlf", "x\x00y", "İ", "\u212a", "ß" * 3,
    ]
    for _ in range(n):
        words = [rng.choice(PIECES) for _ in range(rng.randrange(0, 40))]
        if rng.random() < 0.3 and words:  # repeated words weigh their count
            words += [rng.choice(words)] * rng.randrange(1, 30)
            rng.shuffle(words)
        texts.append("".join(w + rng.choice(SPACES) for w in words))
    texts += [None] * 3 + texts[20:40]  # nulls and repeated texts
    return texts


def test_simhash_matches_the_reference_definition() -> None:
    texts = corpus(3000, seed=11)
    expected = [reference_simhash(t) for t in texts]
    assert simhash64(texts, key=KEY).to_list() == expected
    assert simhash64(pl.Series(texts, dtype=pl.String), chunk_rows=97, key=KEY).to_list() == expected  # chunks on threads
    assert simhash64(pa.array(texts, pa.string()), key=KEY).to_list() == expected
    chunked = pa.chunked_array([texts[:1000], texts[1000:]], pa.large_string())
    assert simhash64(chunked, chunk_rows=700, key=KEY).to_list() == expected


def test_simhash_when_a_chunks_tokens_outgrow_the_first_table(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = corpus(300, seed=5)
    monkeypatch.setattr(simhash_kernels, "TABLE_START", 4)  # a table of 4 slots fills at the third token
    assert simhash64(texts, key=KEY).to_list() == [reference_simhash(t) for t in texts]


def test_simhash_in_chunks_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = corpus(200, seed=3) + ["word " * 5000]  # texts longer than a chunk make a chunk alone
    monkeypatch.setattr(fingerprint, "CHUNK_BYTES", 64)
    assert simhash64(texts, key=KEY).to_list() == [reference_simhash(t) for t in texts]


def test_simhash_of_a_null_slot_that_spans_bytes() -> None:
    # Arrow lets a null slot's offsets span any bytes: they are not a text
    data = b"hello worldgoodbye"
    offsets = pa.py_buffer(np.array([0, 5, 11, 18], dtype=np.int64).tobytes())
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    texts = pa.LargeStringArray.from_buffers(3, offsets, pa.py_buffer(data), validity, null_count=1)
    assert simhash64(texts, key=KEY).to_list() == [reference_simhash("hello"), None, reference_simhash("goodbye")]


def test_simhash_of_no_text() -> None:
    assert simhash64([], key=KEY).to_list() == []
    assert simhash64([None, None, "", "42"], key=KEY).to_list() == [None, None, None, None]
    assert simhash64([None, None], key=KEY).to_list() == [None, None]  # no piece at all
    assert simhash64(pl.Series([None], dtype=pl.String), key=KEY).dtype == pl.UInt64


# --- the exact fingerprint ---------------------------------------------------------------


def keyed_connection(key: FingerprintKey = TEST_KEY) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    use_key(con, key)
    return con


def test_prompt_fingerprint_is_an_hmac_of_the_text_not_its_plain_sha256() -> None:
    text = "regenerate that"
    plain = hashlib.sha256(text.encode()).hexdigest()
    fingerprint = prompt_fingerprint(text, TEST_KEY)
    assert fingerprint == hmac.new(TEST_KEY.exact, plain.encode(), hashlib.sha256).hexdigest()
    assert fingerprint != plain and plain not in fingerprint
    assert fingerprint == prompt_fingerprint(text, FingerprintKey(bytes.fromhex(TEST_KEY_HEX)))  # same key: same
    assert fingerprint != prompt_fingerprint(text, OTHER_KEY)


def test_a_text_and_a_given_hash_never_share_a_fingerprint() -> None:
    text = "regenerate that"
    plain = hashlib.sha256(text.encode()).hexdigest()
    assert given_hash_fingerprint(plain, TEST_KEY) == "hash:" + prompt_fingerprint(text, TEST_KEY)
    assert given_hash_fingerprint(plain, TEST_KEY) != prompt_fingerprint(text, TEST_KEY)
    assert plain not in given_hash_fingerprint(plain, TEST_KEY)


def test_sql_fingerprints_equal_python_ones() -> None:
    texts = ["Ünïcode prompt ✓", "", "a" * 10_000, "line\nbreak 'quoted'"]
    with keyed_connection() as con:
        rows = con.execute(
            f"SELECT {text_fingerprint_sql('t')}, {keyed_sql('t')} FROM unnest(?::VARCHAR[]) AS u(t)", [texts]
        ).fetchall()
    assert rows == [(prompt_fingerprint(t, TEST_KEY), keyed_hex(t, TEST_KEY)) for t in texts]


def test_sql_fingerprints_fail_without_a_key() -> None:
    with pytest.raises(duckdb.InvalidInputException, match="no fingerprint key"):
        duckdb.sql(f"SELECT {text_fingerprint_sql('t')} FROM (SELECT 'x' AS t)").fetchall()


def test_the_key_never_shows_itself() -> None:
    shown = repr(TEST_KEY) + str(TEST_KEY) + f"{TEST_KEY}"
    assert TEST_KEY_HEX not in shown and TEST_KEY.key_id in shown
    assert TEST_KEY.key_id != OTHER_KEY.key_id and TEST_KEY.key_id.startswith("k") and len(TEST_KEY.key_id) == 17
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(TEST_KEY)
    with pytest.raises(ValueError):
        FingerprintKey(b"short")
    assert len({TEST_KEY.exact, TEST_KEY.simhash, bytes.fromhex(TEST_KEY_HEX)}) == 3  # one key per use


def test_keyed_raw_sql_keys_every_plain_hash() -> None:
    plain = hashlib.sha256(b"secret").hexdigest()
    keyed = "hmac:" + keyed_hex(plain, TEST_KEY)
    cases = [
        (None, None),
        ('{"a": 1}', '{"a": 1}'),
        ('{"prompt_text": "' + UNKEYED + plain + '", "b": "' + UNKEYED + plain + '"}',
         '{"prompt_text": "' + keyed + '", "b": "' + keyed + '"}'),
        ('{"prompt_text": "sha256:' + plain + '"}', '{"prompt_text": "' + keyed + '"}'),  # as written before keys
        ('{"withheld":"x","sha256":"' + plain + '"}', '{"withheld":"x","fingerprint":"' + keyed + '"}'),
        ('{"withheld": "x", "sha256": "' + plain + '"}', '{"withheld": "x", "fingerprint": "' + keyed + '"}'),
        ("sha256 mentioned, no hash", "sha256 mentioned, no hash"),
    ]
    with keyed_connection() as con:
        got = [con.execute(f"SELECT {keyed_raw_sql('r')} FROM (SELECT ?::VARCHAR AS r)", [raw]).fetchall()[0][0]
               for raw, _ in cases]
    assert got == [expected for _, expected in cases]
    assert keyed == "hmac:" + prompt_fingerprint("secret", TEST_KEY)  # a prompt's placeholder: its fingerprint


# --- redaction (placeholders: keyed by the loader before anything is stored) --------------


def placeholder(text: str) -> str:
    return UNKEYED + hashlib.sha256(text.encode()).hexdigest()


def redact(line: str, *, valid: bool) -> str:
    return duckdb.sql(f"SELECT {redacted_json_line('l', ['prompt_text'], valid=valid)} FROM (SELECT ? AS l)", params=[line]).fetchall()[0][0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": 1, "prompt_text": "say \\"hi\\"", "x": 2}', '{"id": 1, "prompt_text": "' + placeholder('say "hi"') + '", "x": 2}'),
        ('{"id": 1}', '{"id": 1}'),
        ('{"id": 1, "prompt_text": null}', '{"id": 1, "prompt_text": null}'),
    ],
)
def test_redacted_valid_line(line: str, expected: str) -> None:
    assert redact(line, valid=True) == expected


def test_redacted_valid_line_withholds_what_it_cannot_cut() -> None:
    raw = json.loads(redact('{"id": 1, "prompt_text": 42}', valid=True))
    assert sorted(raw) == ["fingerprint", "withheld"] and raw["fingerprint"].startswith(UNKEYED)


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ('{"id": 1, "ts": 2026-10', True),  # no prompt: kept as is
        ('{"prompt_text": "secret \\q"}', False),  # bad escape inside the text: cut out, then valid
        ('{"prompt_text": "secret", "ts": 2026-10', None),  # still malformed after the cut: withheld
        ('{"prompt_text": "say "secret" now"}', None),
        ('["secret prompt_text"]', None),  # not an object
    ],
)
def test_redacted_malformed_line(line: str, kept: bool | None) -> None:
    raw = redact(line, valid=False)
    if kept:
        assert raw == line
    elif kept is False:
        assert raw == '{"prompt_text": "' + placeholder("secret \\q") + '"}'
    else:
        assert sorted(json.loads(raw)) == ["fingerprint", "withheld"]
    assert "secret" not in raw


def test_redacted_struct_json() -> None:
    sql = redacted_struct_json(["a", "prompt_text"], ["prompt_text"])
    assert duckdb.sql(f"SELECT {sql} FROM (SELECT 1 AS a, 'hello' AS prompt_text)").fetchall() == [
        ('{"a":1,"prompt_text":"' + placeholder("hello") + '"}',)
    ]
