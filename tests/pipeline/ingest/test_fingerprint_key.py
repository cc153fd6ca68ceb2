"""The fingerprint key: where it comes from (environment, Prefect Secret block, owner-only file),
how a database records it, a run with another key refused, rotation (`goodhart rekey`), and the
migration of a database fingerprinted before keys, verdicts kept."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.ingest.fingerprint import FingerprintKey, given_hash_fingerprint, prompt_fingerprint, simhash64
from pipeline.ingest.fingerprint_key import (
    ENV_VAR,
    FingerprintKeyError,
    KeyMismatchError,
    adopt_key,
    check_database_file,
    installation_key,
    key_source,
)
from flows import purge
from pipeline.ops.runs import os_identity
from pipeline.settings import Settings, deep_merge, default_config
from flows import run_local
from pipeline.ops.verdicts import record_verdict
from tests.conftest import TEST_KEY, TEST_KEY_HEX
from tests.reliability.conftest import goodhart

OTHER_HEX = "0123456789abcdef" * 4
OTHER_KEY = FingerprintKey(bytes.fromhex(OTHER_HEX))
BOB_WEEK = "user_week:bob:2026-10-05"
NOW = datetime(2026, 10, 12, 9, 0)
REJECTED_TEXT = "Tell me the launch code zebra-harmonica"
TEXTS = {  # the example's prompts, by invocation_id
    "i-1": "Why does the cart total drop the discount when the currency changes?",
    "i-2": "Apply the fix and add a regression test",
}


def settings_with(**security: object) -> Settings:
    return Settings(deep_merge(default_config(), {"security": security}))


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key in the environment, and a config home under tmp_path (never the real home folder)."""
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "goodhart" / "fingerprint.key"


# --- where the key comes from --------------------------------------------------------------


def test_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, OTHER_HEX)
    assert installation_key(Settings()).key_id == OTHER_KEY.key_id
    assert key_source(Settings()) == f"the environment variable {ENV_VAR}"


@pytest.mark.parametrize("value", ["not-hex-but-a-secret-phrase", "abcd1234" * 7])
def test_a_malformed_key_is_refused_without_repeating_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(FingerprintKeyError, match=f"{ENV_VAR} is not 64 or more hex digits") as error:
        installation_key(Settings())
    assert value not in str(error.value)


def test_a_key_file_is_created_on_first_use_readable_by_its_owner_only(no_env_key: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: the file must be private whatever it is
    try:
        key = installation_key(Settings())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(no_env_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(no_env_key.parent.stat().st_mode) == 0o700
    text = no_env_key.read_text()
    assert len(text.strip()) == 64 and FingerprintKey(bytes.fromhex(text.strip())).key_id == key.key_id
    assert installation_key(Settings()).key_id == key.key_id  # the same key from then on
    assert [p.name for p in no_env_key.parent.iterdir()] == ["fingerprint.key"]  # no draft left behind
    assert key_source(Settings()) == f"the file {no_env_key}"


def test_a_configured_key_file_is_used_and_never_replaced(no_env_key: Path, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "goodhart.key"
    path.parent.mkdir()
    path.write_text(OTHER_HEX + "\n")
    path.chmod(0o600)
    assert installation_key(settings_with(fingerprint_key_file=str(path))).key_id == OTHER_KEY.key_id
    assert path.read_text() == OTHER_HEX + "\n"
    assert not no_env_key.exists()  # the default place is not touched


def test_a_key_file_others_may_read_is_refused(no_env_key: Path, tmp_path: Path) -> None:
    path = tmp_path / "open.key"
    path.write_text(OTHER_HEX)
    path.chmod(0o640)
    with pytest.raises(FingerprintKeyError, match=f"may be read by others .*chmod 600 {path}"):
        installation_key(settings_with(fingerprint_key_file=str(path)))


def test_a_key_file_that_cannot_be_created_is_one_usage_error(no_env_key: Path, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    with pytest.raises(FingerprintKeyError, match=f"cannot create the fingerprint key file .*{ENV_VAR}"):
        installation_key(settings_with(fingerprint_key_file=str(not_a_folder / "goodhart.key")))


@pytest.mark.slow
def test_a_key_from_a_prefect_secret_block(prefect_harness, no_env_key: Path) -> None:
    from prefect.blocks.system import Secret

    Secret(value=OTHER_HEX).save("goodhart-test-fingerprint-key", overwrite=True)
    settings = settings_with(fingerprint_key_block="goodhart-test-fingerprint-key")
    assert installation_key(settings).key_id == OTHER_KEY.key_id
    assert key_source(settings) == "the Prefect Secret block 'goodhart-test-fingerprint-key'"
    with pytest.raises(FingerprintKeyError, match="cannot load the Prefect Secret block 'no-such-block'"):
        installation_key(settings_with(fingerprint_key_block="no-such-block"))
    assert not no_env_key.exists()


# --- the database's record -------------------------------------------------------------------


def keys_of(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("SELECT key_id, event FROM fingerprint_keys ORDER BY seq").fetchall()


def fingerprints(db: Path) -> dict[str, str | None]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.sql("SELECT invocation_id, prompt_fingerprint FROM invocations").fetchall())


def test_the_database_records_the_key_id_never_the_key(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    run_local(contract_example, db, Settings())
    assert keys_of(db) == [(TEST_KEY.key_id, "first use")]
    assert fingerprints(db)["i-1"] == prompt_fingerprint(TEXTS["i-1"], TEST_KEY)


def test_a_run_with_another_key_is_refused_and_changes_nothing(
    contract_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    monkeypatch.setenv(ENV_VAR, OTHER_HEX)
    with pytest.raises(KeyMismatchError, match=f"made with key {TEST_KEY.key_id}, not with {OTHER_KEY.key_id}"):
        run_local(contract_example, db, Settings())
    with pytest.raises(KeyMismatchError, match="goodhart rekey"):
        check_database_file(db, OTHER_KEY, key_source(Settings()))  # the command line's check before it starts
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before

    result = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path,
                      env={ENV_VAR: OTHER_HEX})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert OTHER_HEX not in result.stderr and "goodhart rekey --db" in result.stderr


def test_rekey_adopts_a_rotated_key(contract_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    old = fingerprints(db)
    monkeypatch.setenv(ENV_VAR, OTHER_HEX)
    assert "adopted key " + OTHER_KEY.key_id in adopt_key(db, Settings(), now=NOW)
    assert keys_of(db) == [(TEST_KEY.key_id, "first use"), (OTHER_KEY.key_id, "adopted")]
    assert "already uses key" in adopt_key(db, Settings(), now=NOW)
    assert fingerprints(db) == old  # earlier fingerprints stay as they were: they cannot be re-keyed

    more = tmp_path / "more"
    shutil.copytree(contract_example, more)
    with open(more / "invocations.jsonl", "a") as fh:
        fh.write(json.dumps({"invocation_id": "i-4", "ts": "2026-10-05T09:20:00Z", "user_id": "alice",
                             "session_id": "s-100", "prompt_text": TEXTS["i-1"]}) + "\n")
    run_local(more, db, Settings())  # runs again, under the new key
    after = fingerprints(db)
    assert after["i-4"] == prompt_fingerprint(TEXTS["i-1"], OTHER_KEY) != after["i-1"]  # what a rotation breaks

    via_cli = goodhart("rekey", "--db", str(db), cwd=tmp_path, env={ENV_VAR: TEST_KEY_HEX})  # back to the first key
    assert via_cli.returncode == 0, via_cli.stderr
    assert f"adopted key {TEST_KEY.key_id} after {OTHER_KEY.key_id}" in via_cli.stdout


# --- a database written before keys ----------------------------------------------------------


def _example_with_a_rejected_prompt(contract_example: Path, root: Path) -> Path:
    input_dir = root / "input"
    shutil.copytree(contract_example, input_dir)
    with open(input_dir / "invocations.jsonl", "a") as fh:
        fh.write(json.dumps({"invocation_id": "i-9", "ts": "not a time", "user_id": "alice", "session_id": "s-100",
                             "prompt_text": REJECTED_TEXT}) + "\n")
    return input_dir


def _as_written_before_keys(db: Path) -> None:
    """Turn a database into what the code before keys wrote: plain sha256 fingerprints, unkeyed
    SimHashes, plain hashes in rejected rows, no fingerprint_keys, no OS user columns."""
    plain = {i: hashlib.sha256(t.encode()).hexdigest() for i, t in TEXTS.items()}
    unkeyed = dict(zip(TEXTS, simhash64(list(TEXTS.values()), key=b"").to_list()))  # blake2b without a key
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE fingerprint_keys")
        con.execute("CREATE TABLE purges (purge_id VARCHAR NOT NULL, before DATE NOT NULL, requested_at TIMESTAMP NOT NULL, "
                    "completed_at TIMESTAMP NOT NULL, run_id VARCHAR, rows_deleted JSON NOT NULL)")
        con.execute("INSERT INTO purges VALUES ('purge-old', DATE '2025-01-01', ?, ?, NULL, '{}')", [NOW, NOW])
        for table in ("runs", "verdicts"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN os_user")
            con.execute(f"ALTER TABLE {table} DROP COLUMN host")
        for invocation_id in TEXTS:
            con.execute("UPDATE invocations SET prompt_fingerprint = ?, prompt_simhash = ? WHERE invocation_id = ?",
                        [plain[invocation_id], unkeyed[invocation_id], invocation_id])
        con.execute("UPDATE invocations SET prompt_fingerprint = 'hash:4b1d9e' WHERE invocation_id = 'i-3'")
        keyed = "hmac:" + prompt_fingerprint(REJECTED_TEXT, TEST_KEY)
        con.execute("UPDATE rejected_rows SET raw = replace(raw, ?, ?)",
                    [keyed, "sha256:" + hashlib.sha256(REJECTED_TEXT.encode()).hexdigest()])


def test_a_database_fingerprinted_before_keys_migrates_and_keeps_its_verdicts(contract_example: Path, tmp_path: Path) -> None:
    input_dir = _example_with_a_rejected_prompt(contract_example, tmp_path)
    db = tmp_path / "g.duckdb"
    run_local(input_dir, db, Settings())
    record_verdict(db, BOB_WEEK, "legitimate", now=NOW, note="spike investigation", analyst="ana")
    with duckdb.connect(str(db), read_only=True) as con:
        keyed_raw = con.sql("SELECT raw FROM rejected_rows").fetchall()
    _as_written_before_keys(db)
    with duckdb.connect(str(db), read_only=True) as con:
        verdicts_before = con.sql("SELECT * FROM verdicts").fetchall()
        assert con.sql("SELECT raw FROM rejected_rows").fetchall() != keyed_raw  # plain hashes, as before keys

    run_local(input_dir, db, Settings())  # the next run migrates

    assert keys_of(db) == [(TEST_KEY.key_id, "migrated from unkeyed sha256")]
    assert fingerprints(db) == {
        "i-1": prompt_fingerprint(TEXTS["i-1"], TEST_KEY), "i-2": prompt_fingerprint(TEXTS["i-2"], TEST_KEY),
        "i-3": given_hash_fingerprint("4b1d9e", TEST_KEY),  # what a new load of the same rows stores
    }
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(prompt_simhash) FROM invocations").fetchall() == [(0,)]  # cleared
        assert con.sql("SELECT raw FROM rejected_rows").fetchall() == keyed_raw
        assert con.sql("SELECT * EXCLUDE (os_user, host) FROM verdicts").fetchall() == verdicts_before
        assert con.sql("SELECT verdict FROM user_week_scores WHERE flag_id = ?", params=[BOB_WEEK]).fetchall() == [
            ("legitimate",)]
        assert con.sql("SELECT count(*) FILTER (WHERE os_user IS NULL), count(os_user) FROM runs").fetchall() == [(1, 1)]
        (note,), = con.sql("SELECT note FROM fingerprint_keys").fetchall()
    assert note.startswith("migrated to keyed fingerprints: 3 prompt fingerprints keyed, 2 unkeyed SimHashes cleared")
    assert note.endswith("1 rejected rows' hashes keyed")

    purge(db, date(2026, 1, 1), now=NOW)  # the purges table gains its columns too, its rows kept
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT os_user, host FROM purges ORDER BY requested_at, purge_id DESC").fetchall() == [
            (None, None), os_identity()]
