"""prompt_repeats: one row per invocation_id (docs/features.md, "prompt_repeats").

SimHash values are small integers chosen so the bit distances are obvious."""
import random

from tests.features.conftest import build, insert, rows

FLAGS = ("exact_repeat_in_session", "near_repeat_in_session", "exact_repeat_in_week", "near_repeat_in_week",
         "near_previous")


def flags(con, *columns):
    columns = columns or FLAGS
    return {r["invocation_id"]: tuple(r[c] for c in columns) for r in rows(con, "prompt_repeats")}


def test_exact_repeats_in_session_vs_only_in_week(con):
    insert(con, "invocations", [
        dict(invocation_id="a1", session_id="s1", ts="2026-10-05 09:00", prompt_fingerprint="A"),
        dict(invocation_id="a2", session_id="s1", ts="2026-10-05 09:01", prompt_fingerprint="A"),
        # another session of the same person and week: a repeat of the week, not of its session
        dict(invocation_id="a3", session_id="s2", ts="2026-10-08 09:00", prompt_fingerprint="A"),
        # the next ISO week (Monday): nothing earlier in that week or session
        dict(invocation_id="a4", session_id="s3", ts="2026-10-12 00:00", prompt_fingerprint="A"),
        # another person, same week
        dict(invocation_id="a5", session_id="s4", user_id="u2", ts="2026-10-05 10:00", prompt_fingerprint="A"),
        # no text at all: never a repeat
        dict(invocation_id="n1", session_id="s1", ts="2026-10-05 09:02", prompt_fingerprint=None),
        dict(invocation_id="n2", session_id="s1", ts="2026-10-05 09:03", prompt_fingerprint=None),
    ])
    build(con, upto="prompt_repeats")
    assert flags(con, "exact_repeat_in_session", "near_repeat_in_session",
                 "exact_repeat_in_week", "near_repeat_in_week") == {
        "a1": (False, False, False, False),
        "a2": (True, True, True, True),      # an exact repeat is also a near one
        "a3": (False, False, True, True),
        "a4": (False, False, False, False),
        "a5": (False, False, False, False),
        "n1": (False, False, False, False),
        "n2": (False, False, False, False),
    }
    assert {r["invocation_id"]: str(r["week_start"]) for r in rows(con, "prompt_repeats")}["a4"] == "2026-10-12"


def test_near_repeats_by_simhash_distance(con):
    insert(con, "invocations", [
        dict(invocation_id="p1", ts="2026-10-05 09:00", prompt_simhash=0b0000),
        dict(invocation_id="p2", ts="2026-10-05 09:01", prompt_simhash=0b0111),        # 3 bits from p1: near
        dict(invocation_id="p3", ts="2026-10-05 09:02", prompt_simhash=0b1111_0000),   # 4 from p1, 7 from p2: not
        dict(invocation_id="p4", ts="2026-10-05 09:03", prompt_simhash=0b0111),        # same signature as p2: near
        # one bit in each 16-bit band: 4 bits from p1, 5 from p2, 8 from p3
        dict(invocation_id="p5", ts="2026-10-05 09:04", prompt_simhash=1 | 1 << 16 | 1 << 32 | 1 << 48),
        # above the signed 64-bit range, 9 and 8 bits from 0 (far from p1-p5), 1 bit apart
        dict(invocation_id="h1", ts="2026-10-05 09:05", prompt_simhash=2**63 | 0xFF << 40),
        dict(invocation_id="h2", ts="2026-10-05 09:06", prompt_simhash=2**63 | 0xFE << 40),
        dict(invocation_id="x1", ts="2026-10-05 09:07", prompt_simhash=None),
        # bits 0, 12, 24, 36: 4 from p1, 5 from p2 and p4, 6 from p5, 8 from p3
        dict(invocation_id="p6", ts="2026-10-05 09:08", prompt_simhash=1 | 1 << 12 | 1 << 24 | 1 << 36),
    ])
    build(con, upto="prompt_repeats", near_duplicate_bits=3)
    near = flags(con, "exact_repeat_in_session", "near_repeat_in_session", "near_repeat_in_week", "near_previous")
    assert near == {
        "p1": (False, False, False, False),
        "p2": (False, True, True, True),    # 3 bits from p1, its previous prompt
        "p3": (False, False, False, False),
        "p4": (False, True, True, False),   # previous is p3 (7 bits away)
        "p5": (False, False, False, False),
        "h1": (False, False, False, False),
        "h2": (False, True, True, True),
        "x1": (False, False, False, False),
        "p6": (False, False, False, False),
    }

    # 4 bits: p3 and p5 (each 4 bits from p1) become near; p5's bits sit in four different bands
    build(con, upto="prompt_repeats", near_duplicate_bits=4)
    near = flags(con, "near_repeat_in_session", "near_previous")
    assert near["p3"] == (True, False)   # previous p2 is 7 bits away
    assert near["p5"] == (True, False)   # previous p4 is 5 bits away
    assert near["p6"] == (True, False)   # previous x1 has no signature
    # 2 bits: p2 (3 bits from p1) is not near any more; p4 still repeats p2's signature
    build(con, upto="prompt_repeats", near_duplicate_bits=2)
    near = flags(con, "near_repeat_in_session", "near_previous")
    assert (near["p2"], near["p4"], near["h2"]) == ((False, False), (True, False), (True, True))


def test_near_only_counts_earlier_prompts_and_orders_by_time(con):
    # inserted out of order: the later prompt in time is the repeat
    insert(con, "invocations", [
        dict(invocation_id="late", ts="2026-10-05 09:05", prompt_simhash=0b1000),
        dict(invocation_id="early", ts="2026-10-05 09:00", prompt_simhash=0b1011),
    ])
    build(con, upto="prompt_repeats")
    assert flags(con, "near_repeat_in_session", "near_previous") == {
        "early": (False, False), "late": (True, True)}


def test_near_previous_is_only_the_previous_prompt(con):
    insert(con, "invocations", [
        dict(invocation_id="q1", ts="2026-10-05 09:00", prompt_simhash=0),
        dict(invocation_id="q2", ts="2026-10-05 09:01", prompt_simhash=0xFF00),
        dict(invocation_id="q3", ts="2026-10-05 09:02", prompt_simhash=0b1),     # near q1, not q2
        dict(invocation_id="q4", ts="2026-10-05 09:03", prompt_simhash=0b11),    # near q3
        # same text, different signature (cannot happen for real text, but the fingerprint decides)
        dict(invocation_id="q5", ts="2026-10-05 09:04", prompt_simhash=0xFFFF, prompt_fingerprint="F"),
        dict(invocation_id="q6", ts="2026-10-05 09:05", prompt_simhash=0, prompt_fingerprint="F"),
        # another session: the previous prompt of a session is never in another one
        dict(invocation_id="o1", session_id="other", ts="2026-10-05 09:06", prompt_simhash=0),
    ])
    build(con, upto="prompt_repeats")
    assert flags(con, "exact_repeat_in_session", "near_repeat_in_session", "near_previous",
                 "near_repeat_in_week") == {
        "q1": (False, False, False, False),
        "q2": (False, False, False, False),
        "q3": (False, True, False, True),
        "q4": (False, True, True, True),
        "q5": (False, False, False, False),
        "q6": (True, True, True, True),
        "o1": (False, False, False, True),   # near q1 in the user-week only
    }


def _flipped(rng: random.Random, bases: list[int], max_bits: int) -> int:
    """One of `bases` with up to `max_bits` random bits flipped."""
    value = rng.choice(bases)
    for bit in rng.sample(range(64), rng.randint(0, max_bits)):
        value ^= 1 << bit
    return value


def test_near_repeat_matches_brute_force_for_any_bit_setting(con):
    # 40 signatures: random bit flips around three random bases, spread over the 64 bits
    rng = random.Random(7)
    bases = [rng.getrandbits(64) for _ in range(3)]
    hashes = [_flipped(rng, bases, 9) for _ in range(40)]
    insert(con, "invocations", [
        dict(invocation_id=f"z{n:02d}", ts=f"2026-10-05 09:{n:02d}", prompt_simhash=h) for n, h in enumerate(hashes)])
    for bits in (0, 3, 4, 7):
        build(con, upto="prompt_repeats", near_duplicate_bits=bits)
        expected = {
            f"z{n:02d}": (any(bin(h ^ e).count("1") <= bits for e in hashes[:n]),
                          n > 0 and bin(h ^ hashes[n - 1]).count("1") <= bits)
            for n, h in enumerate(hashes)
        }
        assert 3 <= sum(near for near, _ in expected.values()) <= 37  # the data has both near and far pairs
        assert flags(con, "near_repeat_in_session", "near_previous") == expected, f"near_duplicate_bits={bits}"



def test_order_holds_across_midnight_and_within_a_tie(con):
    # a session over a UTC midnight (prompts are numbered day by day): the first prompt of the text
    # is the one before midnight, and the same text at the same moment goes by invocation_id
    insert(con, "invocations", [
        dict(invocation_id="m2", ts="2026-10-06 00:00:01", prompt_fingerprint="A"),
        dict(invocation_id="m1", ts="2026-10-05 23:59:59", prompt_fingerprint="A"),
        dict(invocation_id="t2", ts="2026-10-06 00:00:05", prompt_fingerprint="B"),
        dict(invocation_id="t1", ts="2026-10-06 00:00:05", prompt_fingerprint="B"),
    ])
    build(con, upto="prompt_repeats")
    assert flags(con, "exact_repeat_in_session", "near_previous") == {
        "m1": (False, False), "m2": (True, True), "t1": (False, False), "t2": (True, True)}


def test_gap_seconds_since_the_previous_prompt_of_the_session(con):
    insert(con, "invocations", [
        dict(invocation_id="g1", ts="2026-10-05 09:00:00"),
        dict(invocation_id="g3", ts="2026-10-05 09:01:30"),
        # same time as g3: (ts, invocation_id) order puts it after g3
        dict(invocation_id="g4", ts="2026-10-05 09:01:30"),
        dict(invocation_id="o1", session_id="other", ts="2026-10-05 09:00:30"),
    ])
    build(con, upto="prompt_repeats")
    assert {r["invocation_id"]: r["gap_seconds"] for r in rows(con, "prompt_repeats")} == {
        "g1": None, "g3": 90.0, "g4": 0.0, "o1": None}


def brute_force(prompts, bits):
    """Expected flags by definition, comparing every pair: prompts are dicts in time order."""
    def near(a, b):
        return (a["prompt_fingerprint"] is not None and a["prompt_fingerprint"] == b["prompt_fingerprint"]) or (
            a["prompt_simhash"] is not None and b["prompt_simhash"] is not None
            and bin(a["prompt_simhash"] ^ b["prompt_simhash"]).count("1") <= bits)

    def exact(a, b):
        return a["prompt_fingerprint"] is not None and a["prompt_fingerprint"] == b["prompt_fingerprint"]

    expected = {}
    for n, p in enumerate(prompts):
        session = [e for e in prompts[:n] if e["session_id"] == p["session_id"]]
        expected[p["invocation_id"]] = (
            any(exact(e, p) for e in session), any(near(e, p) for e in session),
            any(exact(e, p) for e in prompts[:n]), any(near(e, p) for e in prompts[:n]),
            bool(session) and near(session[-1], p),
        )
    return expected


def test_loop_of_identical_prompts_with_near_variants(con):
    # a script sends one prompt 3,000 times, with a few edited variants and an unrelated prompt mixed in
    base = 0x0F0F_F0F0_1234_5678
    prompts = []
    for n in range(3000):
        if n % 1000 == 500:
            text, simhash = f"variant{n}", base ^ (1 << (n // 1000))   # one bit from the loop's prompt
        elif n == 1999:
            text, simhash = "other", ~base & (2**64 - 1)                  # 64 bits away
        else:
            text, simhash = "loop", base
        prompts.append(dict(invocation_id=f"l{n:04d}", session_id="s1" if n < 1600 else "s2",
                            ts=f"2026-10-05 09:{n // 60:02d}:{n % 60:02d}",
                            prompt_fingerprint=text, prompt_simhash=simhash))
    insert(con, "invocations", prompts)
    build(con, upto="prompt_repeats", near_duplicate_bits=3)
    got = flags(con)
    assert got == brute_force(prompts, bits=3)
    assert got["l0000"] == (False, False, False, False, False)
    assert got["l0500"] == (False, True, False, True, True)        # a variant: near, not exact
    assert got["l1600"] == (False, False, True, True, False)        # first of session s2, repeats the week
    assert got["l1999"] == (False, False, False, False, False)


def test_big_scope_compares_within_bands_exactly(con):
    # over 256 distinct signatures in a session and user-week: only signatures sharing a band are
    # compared there, which must still find every pair within near_duplicate_bits bits
    rng = random.Random(11)
    bases = [rng.getrandbits(64) for _ in range(40)]
    prompts = []
    for n in range(700):
        value = _flipped(rng, bases, 10)
        text = f"t{n}" if n % 7 else f"t{n - 7 * rng.randint(1, 3)}"   # some exact repeats too
        prompts.append(dict(invocation_id=f"b{n:03d}", session_id=f"s{n % 2 if n < 600 else 2}",
                            ts=f"2026-10-05 {9 + n // 60:02d}:{n % 60:02d}:00",
                            prompt_fingerprint=text, prompt_simhash=value))
    insert(con, "invocations", prompts)
    for bits in (3, 6, 7):
        build(con, upto="prompt_repeats", near_duplicate_bits=bits)
        expected = brute_force(prompts, bits)
        assert 50 <= sum(e[1] for e in expected.values()) <= 650, "the data has both near and far pairs"
        assert flags(con) == expected, f"near_duplicate_bits={bits}"
