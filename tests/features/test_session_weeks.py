"""session_weeks: one row per (session_id, user_id, week_start) with its events and active minutes
(docs/features.md, "sessions"): against a worked example and against the definition, event by event."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from tests.features.conftest import build, insert, rows


def test_gaps_inside_and_between_cap_wide_buckets(con):
    # one person: 09:00:30, 09:07, 09:14:59 (one 15-minute bucket), 09:15:10 (the next one), then
    # 11:00 (a long gap, capped) and 11:00 again (the same moment)
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00:30"), dict(ts="2026-10-05 09:07:00"), dict(ts="2026-10-05 09:14:59"),
        dict(ts="2026-10-05 09:15:10"), dict(ts="2026-10-05 11:00:00"),
    ])
    insert(con, "token_usage", [dict(ts="2026-10-05 11:00:00")])
    build(con, upto="session_weeks")
    assert rows(con, "session_weeks") == [dict(
        session_id="s1", user_id="u1", week_start=date(2026, 10, 5), events=6,
        first_ts=datetime(2026, 10, 5, 9, 0, 30), last_ts=datetime(2026, 10, 5, 11, 0),
        # 6.5 + 7.9833 + 0.1833 (09:14:59 -> 09:15:10 crosses buckets, under the cap) + 15 (capped) + 0
        active_minutes=pytest.approx(14 + 29 / 60 + 11 / 60 + 15, abs=1e-12),
    )]


def test_a_shared_session_counts_each_gap_for_the_later_events_person(con):
    # two people take turns inside one bucket: each gap counts for the person of the later event
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00", user_id="a", session_id="pair"),
        dict(ts="2026-10-05 09:02", user_id="b", session_id="pair"),   # b: 2
        dict(ts="2026-10-05 09:05", user_id="a", session_id="pair"),   # a: 3
        dict(ts="2026-10-05 09:06", user_id="b", session_id="pair"),   # b: 1
        dict(ts="2026-10-05 10:00", user_id="a", session_id="pair"),   # a: 54 -> 15
    ])
    build(con, upto="session_weeks")
    got = {r["user_id"]: (r["events"], r["active_minutes"]) for r in rows(con, "session_weeks")}
    assert got == {"a": (3, 18.0), "b": (2, 3.0)}


@pytest.mark.parametrize("cap", [15.0, 2.5, 0.0])
def test_matches_the_definition_event_by_event(con, cap):
    # random sessions over a week boundary, some shared, with repeated moments: the model equals
    # ordering every event of a session and capping each gap (definition in the model's header)
    rng = random.Random(int(cap * 10))
    start = datetime(2026, 10, 11, 20, 0)  # a Sunday evening: sessions run into Monday's ISO week
    events = []
    for session in range(40):
        people = ["u1", "u2"] if session % 7 == 0 else [f"u{session % 5}"]
        moment = start + timedelta(minutes=rng.randint(0, 300))
        for _ in range(rng.randint(1, 30)):
            step = rng.choice([0, 1, 30, 200, 899, 900, 901, 3600, rng.randint(0, 5000)])
            # two people's events at one moment have no order, so which one's the gap is would be arbitrary
            moment += timedelta(seconds=step or (len(people) - 1))
            events.append((f"s{session}", rng.choice(people), moment))
    prompt = [rng.random() < 0.5 for _ in events]  # each event a prompt or a request
    insert(con, "invocations", [dict(session_id=s, user_id=u, ts=t) for (s, u, t), p in zip(events, prompt) if p])
    insert(con, "token_usage", [dict(session_id=s, user_id=u, ts=t) for (s, u, t), p in zip(events, prompt) if not p])
    build(con, upto="session_weeks", active_gap_cap_minutes=cap)

    expected: dict[tuple, list] = defaultdict(lambda: [0, None, None, 0.0])
    for session in {s for s, _, _ in events}:
        ordered = sorted((t, u) for s, u, t in events if s == session)
        for k, (moment, user) in enumerate(ordered):
            row = expected[(session, user, (moment - timedelta(days=moment.weekday())).date())]
            row[0] += 1
            row[1] = moment if row[1] is None else min(row[1], moment)
            row[2] = moment if row[2] is None else max(row[2], moment)
            if k:
                row[3] += min((moment - ordered[k - 1][0]).total_seconds() / 60, cap)
    got = {(r["session_id"], r["user_id"], r["week_start"]): [r["events"], r["first_ts"], r["last_ts"], r["active_minutes"]]
           for r in rows(con, "session_weeks")}
    assert got.keys() == expected.keys()
    for key, (count, first, last, active) in expected.items():
        assert got[key][:3] == [count, first, last], key
        assert got[key][3] == pytest.approx(active, abs=1e-9), key
    assert len({week for _, _, week in got}) == 2
    assert any(v[3] > 0 for v in got.values()) == (cap > 0)
