"""The runs record: who ran each run (OS account and host), and its settings without the secrets they name."""
from __future__ import annotations

import json
import os
import pwd
import socket
from datetime import date, datetime
from pathlib import Path

import duckdb

from flows import purge
from pipeline.ops.runs import os_identity
from pipeline.settings import Settings, deep_merge, default_config
from flows import run_local


def test_os_identity_is_the_effective_account_not_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("USER", "someone-else")
    monkeypatch.setenv("LOGNAME", "someone-else")
    assert os_identity() == (pwd.getpwuid(os.geteuid()).pw_name, socket.gethostname())


def test_each_run_records_who_ran_it_and_where(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    run_local(contract_example, db, Settings())
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("SELECT status, os_user, host FROM runs ORDER BY started_at").fetchall()
    assert rows == [("completed", *os_identity())] * 2


def test_alert_destinations_are_not_recorded(contract_example: Path, tmp_path: Path) -> None:
    hook = "https://hooks.example.com/services/T000/B000/s3cr3t-token"
    alerts = [{"name": "edge", "to": f"webhook:{hook}", "min_severity": "high"}]
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings(deep_merge(default_config(), {"alerts": alerts})))
    with duckdb.connect(str(db), read_only=True) as con:
        (config,), = con.sql("SELECT CAST(config AS VARCHAR) FROM runs").fetchall()
    assert "s3cr3t-token" not in config
    assert json.loads(config)["alerts"] == [{"name": "edge", "to": "webhook:(withheld)", "min_severity": "high"}]
    purge(db, date(2026, 1, 1), now=datetime(2026, 10, 12))  # the recorded settings still read back
