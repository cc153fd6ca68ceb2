"""Prompt fingerprints: exact sha256, SimHash near-duplicates, and redaction of raw lines."""
from __future__ import annotations

import hashlib
import json
import random
import re

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from pipeline.fingerprint import (
    hamming64,
    prompt_fingerprint,
    redacted_json_line,
    redacted_struct_json,
    simhash64,
    token_signs,
)

SENTENCE = "please refactor the checkout service so that the cart total keeps the discount when the customer switches the currency"
UNRELATED = [
    "Why does the nightly deploy to staging fail with a timeout on the database migration step",
    "Write unit tests for the invoice parser covering empty files and broken encodings",
    "Summarise this stack trace and tell me which module throws first",
    "Rename every occurrence of customerId to accountId across the payments package",
]


def test_token_signs_are_the_bits_of_blake2b() -> None:
    digest = hashlib.blake2b(b"hello", digest_size=8).digest()  # a7 b6 ...: 0xa7 = 0b10100111
    signs = token_signs(["hello"])[0]
    assert signs[:8].tolist() == [1, 1, 1, -1, -1, 1, -1, 1]
    assert sum(1 << bit for bit in range(64) if signs[bit] > 0) == int.from_bytes(digest, "little")


def test_simhash_of_one_token_is_its_hash() -> None:
    expected = int.from_bytes(hashlib.blake2b(b"hello", digest_size=8).digest(), "little")
    assert simhash64(["Hello!!", "  hello 42 "]).to_list() == [expected, expected]


def test_simhash_is_stable_across_processes() -> None:
    # a constant: Python's hash() or an engine's hash() would not give it in every process and version
    assert simhash64(["Explain this code again (attempt 37)"]).to_list() == [15961152861083156750]


def test_simhash_tokens_are_lowercase_words_without_digit_only_tokens() -> None:
    signatures = simhash64(["Fix the BUG.", "fix   the bug", "use v2 now", "use v3 now", "123 456", "", None, "¿¡"]).to_list()
    assert signatures[0] == signatures[1]
    assert signatures[2] != signatures[3]  # v2 is a word, not a number
    assert signatures[4:] == [None, None, None, None]


def test_simhash_is_the_same_whatever_the_chunk_size() -> None:
    texts = [SENTENCE, *UNRELATED, None, "attempt 3"]
    assert simhash64(texts, chunk_rows=2).to_list() == simhash64(texts).to_list()


def test_near_duplicates_land_close_and_unrelated_prompts_far() -> None:
    retry = simhash64(["Explain this code again (attempt 37)", "Explain this code again (attempt 38)"]).to_list()
    assert hamming64(*retry) <= 3

    words = SENTENCE.split()
    edited = [" ".join(words[:i] + ["banana"] + words[i + 1 :]) for i in range(len(words))]
    base, *variants = simhash64([SENTENCE, *edited]).to_list()
    one_word = [hamming64(base, v) for v in variants]
    unrelated = [hamming64(a, b) for i, a in enumerate(simhash64([SENTENCE, *UNRELATED]).to_list())
                 for b in simhash64([SENTENCE, *UNRELATED]).to_list()[i + 1 :]]
    # one word in 19 replaced: a few bits (random-hyperplane SimHash expects ~64 * angle / pi, about 6)
    assert max(one_word) <= 8 and sum(one_word) / len(one_word) <= 6
    assert min(unrelated) >= 20


def test_near_duplicates_statistically() -> None:
    rng = random.Random(7)
    vocabulary = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in ("ash", "ent", "ion", "ore", "ulk", "ix")]
    originals, edits, others = [], [], []
    for _ in range(200):
        words = [rng.choice(vocabulary) for _ in range(20)]
        originals.append(" ".join(words))
        words[rng.randrange(20)] = rng.choice(vocabulary)
        edits.append(" ".join(words))
        others.append(" ".join(rng.choice(vocabulary) for _ in range(20)))
    a, b, c = (simhash64(texts).to_list() for texts in (originals, edits, others))
    near = sorted(hamming64(x, y) for x, y in zip(a, b))
    far = sorted(hamming64(x, z) for x, z in zip(a, c))
    assert near[len(near) // 2] <= 6 and far[len(far) // 2] >= 26
    assert near[int(len(near) * 0.95)] < far[int(len(far) * 0.05)]


def reference_simhash(text: str | None) -> int | None:
    """The SimHash definition, one text at a time, the obvious way."""
    if text is None:
        return None
    tokens = [t for t in re.findall(r"[a-z0-9]+", text.lower()) if not t.isdigit()]
    if not tokens:
        return None
    sums = [0] * 64
    for token in tokens:
        value = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
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
    assert simhash64(texts).to_list() == expected
    assert simhash64(pl.Series(texts, dtype=pl.String), chunk_rows=97).to_list() == expected  # chunks on threads
    assert simhash64(pa.array(texts, pa.string())).to_list() == expected
    assert simhash64(pa.chunked_array([texts[:1000], texts[1000:]], pa.large_string()), chunk_rows=700).to_list() == expected


def test_simhash_of_no_text() -> None:
    assert simhash64([]).to_list() == []
    assert simhash64([None, None, "", "42"]).to_list() == [None, None, None, None]
    assert simhash64([None, None]).to_list() == [None, None]  # no piece at all
    assert simhash64(pl.Series([None], dtype=pl.String)).dtype == pl.UInt64


def test_prompt_fingerprint_matches_duckdb_sha256() -> None:
    text = "Ünïcode prompt ✓"
    assert duckdb.sql("SELECT sha256(?)", params=[text]).fetchall()[0][0] == prompt_fingerprint(text)


# --- redaction -------------------------------------------------------------------------


def redact(line: str, *, valid: bool) -> str:
    return duckdb.sql(f"SELECT {redacted_json_line('l', ['prompt_text'], valid=valid)} FROM (SELECT ? AS l)", params=[line]).fetchall()[0][0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": 1, "prompt_text": "say \\"hi\\"", "x": 2}', '{"id": 1, "prompt_text": "sha256:' + prompt_fingerprint('say "hi"') + '", "x": 2}'),
        ('{"id": 1}', '{"id": 1}'),
        ('{"id": 1, "prompt_text": null}', '{"id": 1, "prompt_text": null}'),
    ],
)
def test_redacted_valid_line(line: str, expected: str) -> None:
    assert redact(line, valid=True) == expected


def test_redacted_valid_line_withholds_what_it_cannot_cut() -> None:
    raw = json.loads(redact('{"id": 1, "prompt_text": 42}', valid=True))
    assert sorted(raw) == ["sha256", "withheld"]


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
        assert raw == '{"prompt_text": "sha256:' + prompt_fingerprint("secret \\q") + '"}'
    else:
        assert sorted(json.loads(raw)) == ["sha256", "withheld"]
    assert "secret" not in raw


def test_redacted_struct_json() -> None:
    sql = redacted_struct_json(["a", "prompt_text"], ["prompt_text"])
    assert duckdb.sql(f"SELECT {sql} FROM (SELECT 1 AS a, 'hello' AS prompt_text)").fetchall() == [
        ('{"a":1,"prompt_text":"sha256:' + prompt_fingerprint("hello") + '"}',)
    ]
