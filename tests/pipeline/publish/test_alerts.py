"""Alerts (pipeline/publish/alerts.py) delivered by a real Prefect notification block to a local HTTP receiver."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

import flows
from pipeline.publish.alert_subscriptions import parse_subscriptions
from pipeline.publish.case_file import case_file_name
from pipeline.settings import ConfigError, Settings
from tests.pipeline.publish.test_report import rules_only_run


def send_alerts(db: Path, settings: Settings, now: datetime, run_id: str):
    """The detection flow's alert task, run as it is there: inside a flow run."""
    from prefect import flow

    @flow(name="alerts-under-test")
    def alerts_job() -> object:
        return flows.send_alerts_task(db, settings, now, run_id)

    return alerts_job()


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, keeping every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rules_only_run(tmp_path_factory.mktemp("alerts"), users=15, weeks=2, seed=1)


def _settings(tmp_path: Path, entries: str) -> Settings:
    path = tmp_path / "alerts.toml"
    path.write_text("[detectors.policy]\nmin_model_rows = 1000000\n" + entries, encoding="utf-8")
    return Settings.from_file(path)


# flags that alert: a session flagged only through its flagged week (week_rule:...) is that week's alert
WEEK_ONLY = "level = 'session' AND list_bool_and(list_transform(detectors, lambda d: starts_with(d, 'week_rule:')))"
ALERTING_FLAGS = f"SELECT * FROM flags WHERE NOT ({WEEK_ONLY})"


def _sent(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("SELECT subscription, frequency, period, item_kind, count(*) FROM alerts_sent GROUP BY ALL ORDER BY ALL").fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("frequency, first, same_period, next_period", [
    ("immediate", "2026-10-05T06:00:00", "2026-10-05T07:00:00", None),
    ("daily", "2026-10-05T06:00:00", "2026-10-05T23:00:00", "2026-10-06T06:00:00"),
    ("weekly", "2026-10-05T06:00:00", "2026-10-11T23:00:00", "2026-10-12T06:00:00"),
])
def test_round_trip_once_per_flag_and_period(
    prefect_harness, world: Path, tmp_path: Path, receiver: Receiver, frequency: str, first: str, same_period: str,
    next_period: str | None,
) -> None:
    db = tmp_path / "g.duckdb"
    db.write_bytes(world.read_bytes())
    settings = _settings(tmp_path, f"""
[[alerts]]
name = "company-{frequency}"
frequency = "{frequency}"
min_severity = "low"
wasted_usd_over = 1.0
to = "webhook:{receiver.url}"
""")
    with duckdb.connect(str(db), read_only=True) as con:
        flag_ids = {f for (f,) in con.sql(f"SELECT flag_id FROM ({ALERTING_FLAGS})").fetchall()}
        through_week = {f for (f,) in con.sql(f"SELECT flag_id FROM flags WHERE {WEEK_ONLY}").fetchall()}
    assert flag_ids and through_week

    def run(at: str):
        return send_alerts(db, settings, datetime.fromisoformat(at).replace(tzinfo=timezone.utc), "run-x")

    summary = run(first)
    assert len(receiver.payloads) == 1
    payload = receiver.payloads[0]
    assert payload["name"] == "goodhart"
    assert payload["subject"].startswith(f"Goodhart {frequency} ") and f"{len(flag_ids)} new flags" in payload["subject"]
    named = [f for f in sorted(flag_ids) if f"flag {f}:" in payload["body"]]
    assert len(named) == min(len(flag_ids), 25)
    assert f"Case file: {case_file_name(named[0])}, written by: goodhart explain '{named[0]}'" in payload["body"]
    assert "wasted $" in payload["body"] and "root cause: " in payload["body"]
    recorded = _sent(db)
    assert sum(n for *_, kind, n in recorded if kind == "flag") == len(flag_ids)
    assert not any(f in payload["body"] for f in through_week)
    assert summary.sent == {f"company-{frequency}": sum(n for *_, n in recorded)}
    assert {period for _, _, period, *_ in recorded} == {{"immediate": "run-x", "daily": "2026-10-05", "weekly": "2026-W41"}[frequency]}

    # the same period, or a rerun: nothing new is sent, nothing recorded twice
    assert run(same_period).sent == {}
    assert run(first).sent == {}
    if next_period:
        assert run(next_period).sent == {}  # a new period, but nothing new to say
    assert len(receiver.payloads) == 1 and _sent(db) == recorded


@pytest.mark.slow
def test_scope_and_failed_delivery(prefect_harness, world: Path, tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "g.duckdb"
    db.write_bytes(world.read_bytes())
    with duckdb.connect(str(db), read_only=True) as con:
        team, flagged = con.sql(
            f"SELECT team, count(*) FROM ({ALERTING_FLAGS}) GROUP BY team ORDER BY 2 DESC, 1 LIMIT 1").fetchall()[0]
    settings = _settings(tmp_path, f"""
[[alerts]]
name = "one-team"
team = "{team}"
min_severity = "low"
to = "webhook:{receiver.url}"

[[alerts]]
name = "nobody-listens"
min_severity = "low"
to = "webhook:http://127.0.0.1:9/closed"
""")
    now = datetime(2026, 10, 5, 6, tzinfo=timezone.utc)
    summary = send_alerts(db, settings, now, "run-y")
    assert summary.sent == {"one-team": flagged}
    assert list(summary.failed) == ["nobody-listens"]
    assert f"team {team}" in receiver.payloads[0]["subject"]
    assert [s for s, *_ in _sent(db)] == ["one-team"]  # the failed one is tried again next run


@pytest.mark.parametrize("entry, message", [
    ('name = "a"\nto = "webhook:http://x"', "give min_severity"),
    ('name = "a"\nmin_severity = "severe"\nto = "webhook:http://x"', "min_severity"),
    ('name = "a"\nmin_severity = "low"\nto = "pigeon:x"', "to must be"),
    ('name = "a"\nmin_severity = "low"\nfrequency = "hourly"\nto = "slack:x"', "frequency"),
    ('name = "a"\nteam = "t"\norg = "o"\nmin_severity = "low"\nto = "slack:x"', "not both"),
    ('name = "a"\nwasted_share_over = 1.5\nto = "slack:x"', "wasted_share_over"),
])
def test_bad_subscriptions_are_refused(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, f"[[alerts]]\n{entry}\n")


def test_subscriptions_are_parsed() -> None:
    (s,) = parse_subscriptions([{"name": "edge", "team": "edge", "wasted_share_over": 0.2, "frequency": "weekly",
                                 "to": "block:slack-webhook/edge"}])
    assert (s.scope, s.scope_name, s.wasted_share_over, s.destination, s.min_severity) == ("team", "edge", 0.2, "block", None)


@pytest.mark.slow
def test_the_scheduled_job_sends_its_alerts_after_publishing(prefect_harness, tmp_path: Path, receiver: Receiver) -> None:
    """End to end: the detection flow (what `goodhart run` and the schedule start) loads, scores,
    publishes, then delivers an immediate subscription's flags to the receiver, once."""
    from data.generate import generate_world

    generate_world(tmp_path / "world", users=15, weeks=2, seed=1)
    config = tmp_path / "alerts.toml"
    config.write_text(f"""[detectors.policy]
min_model_rows = 1000000
[[alerts]]
name = "company-immediate"
frequency = "immediate"
min_severity = "low"
to = "webhook:{receiver.url}"
""", encoding="utf-8")
    db = tmp_path / "g.duckdb"
    result = flows.detection_flow(str(tmp_path / "world"), str(db), str(config))
    with duckdb.connect(str(db), read_only=True) as con:
        flag_ids = {f for (f,) in con.sql(f"SELECT flag_id FROM ({ALERTING_FLAGS})").fetchall()}
    assert flag_ids and len(receiver.payloads) == 1
    assert f"{len(flag_ids)} new flags" in receiver.payloads[0]["subject"]
    assert {period for _, _, period, *_ in _sent(db)} == {result.run_id}
