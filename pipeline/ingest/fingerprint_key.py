"""The installation's fingerprint key: where it comes from, and each database's record of the key
its prompt fingerprints were made with (pipeline.ingest.fingerprint keys both fingerprints with it).

The key is 32 random bytes written as 64 hex digits, taken from the first of:
  1. the environment variable GOODHART_FINGERPRINT_KEY;
  2. the Prefect Secret block named by `[security] fingerprint_key_block`;
  3. the file `[security] fingerprint_key_file` (default: fingerprint.key in $XDG_CONFIG_HOME/goodhart,
     else in ~/.config/goodhart), created on first use with mode 0600 in a folder created 0700.
     A key file that its group or others may read is refused.
It is never written into a database, a report, a log line or a Prefect parameter. A database keeps
only the key's id (`FingerprintKey.key_id`) in `fingerprint_keys`, one row per key it has used, so
that a run with another key is refused rather than silently matching no earlier prompt.

A database written before keys (plain sha256 fingerprints) is migrated by its next run (or by
`goodhart rekey`), on the run's private copy like every change: each exact fingerprint, a sha256
hex, becomes the HMAC of that hex, which is exactly what the keyed scheme computes for the same
text (and 'hash:' || h becomes 'hash:' || HMAC(h)), so exact repeats still match across the
migration; rejected rows' plain hashes are keyed the same way; the SimHashes, computed without a
key, cannot be keyed without the text and are cleared. Verdicts are not touched.
"""
from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.ops import runs
from pipeline.errors import UsageError
from pipeline.ingest.fingerprint import KEY_BYTES, FingerprintKey, keyed_raw_sql, keyed_sql, use_key
from pipeline.settings import Settings
from pipeline.storage import connect
from pipeline.ops.workspace import building, run_lock

ENV_VAR = "GOODHART_FINGERPRINT_KEY"

KEYS_DDL = """
-- grain: one row per fingerprint key the database's prompts were fingerprinted with
CREATE TABLE IF NOT EXISTS fingerprint_keys (
    seq      INTEGER NOT NULL,    -- 1, 2, ...: the order the keys were taken up; the highest is current
    key_id   VARCHAR NOT NULL,    -- FingerprintKey.key_id: names the key, reveals nothing of it
    since    TIMESTAMP NOT NULL,
    event    VARCHAR NOT NULL,    -- 'first use' | 'migrated from unkeyed sha256' | 'adopted'
    note     VARCHAR,             -- what a migration changed
    run_id   VARCHAR,             -- the run that recorded it; NULL: goodhart rekey
    os_user  VARCHAR,
    host     VARCHAR
)
"""
LATEST_KEY_SQL = "SELECT key_id FROM fingerprint_keys ORDER BY seq DESC LIMIT 1"


class FingerprintKeyError(UsageError):
    """No usable fingerprint key: malformed, unreadable, or readable by others."""


class KeyMismatchError(UsageError):
    """The database's fingerprints were made with another key than this installation's."""


def installation_key(settings: Settings) -> FingerprintKey:
    """The installation's fingerprint key (see the module doc for where it comes from); a key file
    is created on first use."""
    given = os.environ.get(ENV_VAR)
    if given is not None:
        return _parse(given, ENV_VAR)
    if settings.fingerprint_key_block:
        return _parse(_block_value(settings.fingerprint_key_block), f"Prefect Secret block {settings.fingerprint_key_block!r}")
    return _key_file(settings.fingerprint_key_file or default_key_file())


def key_source(settings: Settings) -> str:
    """Where `installation_key` takes the key from, in words (for messages; never the key)."""
    if os.environ.get(ENV_VAR) is not None:
        return f"the environment variable {ENV_VAR}"
    if settings.fingerprint_key_block:
        return f"the Prefect Secret block {settings.fingerprint_key_block!r}"
    return f"the file {settings.fingerprint_key_file or default_key_file()}"


def default_key_file() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "goodhart" / "fingerprint.key"


def new_key_text() -> str:
    """A new secret as written in a key file, a Secret block or the environment: 64 hex digits."""
    return secrets.token_hex(KEY_BYTES)


def _parse(text: str, where: str) -> FingerprintKey:
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) < KEY_BYTES:  # the value itself is never repeated in the message
        raise FingerprintKeyError(f"the fingerprint key in {where} is not {2 * KEY_BYTES} or more hex digits")
    return FingerprintKey(secret)


def _block_value(name: str) -> str:
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except Exception as error:  # no such block, no Prefect API: the environment's to fix
        why = " ".join(str(error).split())[:160]
        raise FingerprintKeyError(f"cannot load the Prefect Secret block {name!r}: {type(error).__name__}: {why}") from None
    if not isinstance(value, str):
        raise FingerprintKeyError(f"the Prefect Secret block {name!r} must hold a string of hex digits")
    return value


def _key_file(path: Path) -> FingerprintKey:
    """The key in `path`, created (0600, atomically, never over another process's) when absent."""
    path = Path(path).expanduser()
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as error:
            raise FingerprintKeyError(
                f"cannot create the fingerprint key file {path}: {error.strerror} "
                f"(choose another with [security] fingerprint_key_file, or set {ENV_VAR})") from None
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise FingerprintKeyError(
                f"the fingerprint key file {path} may be read by others (mode {mode & 0o777:o}): chmod 600 {path}")
        text = path.read_bytes().decode("ascii", errors="replace")  # a non-hex byte fails the parse
    except OSError as error:
        raise FingerprintKeyError(f"cannot read the fingerprint key file {path}: {error.strerror}") from None
    return _parse(text, f"the file {path}")


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (new_key_text() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, path)  # fails when another process created the key first: theirs wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()


# --- the database's record ------------------------------------------------------------------

def database_key_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The id of the key the database's latest fingerprints were made with; None before any."""
    con.execute(KEYS_DDL)
    rows = con.sql(LATEST_KEY_SQL).fetchall()
    return rows[0][0] if rows else None


def check_database(
    con: duckdb.DuckDBPyConnection, key: FingerprintKey, *, run_id: str | None, now: datetime, source: str,
) -> str | None:
    """Make sure the database's fingerprints are made with `key`, before a run loads anything:
    record it on first use, migrate a database fingerprinted before keys, and raise
    KeyMismatchError when the database uses another key. Returns what a migration did, or None."""
    current = database_key_id(con)
    if current == key.key_id:
        return None
    if current is not None:
        raise _mismatch(current, key, source)
    written_before = con.sql("SELECT count(*) FROM runs").fetchall()[0][0] > 0
    note = migrate_unkeyed(con, key) if written_before else None
    record_key(con, key, "migrated from unkeyed sha256" if written_before else "first use", now=now, run_id=run_id, note=note)
    return note


def record_key(
    con: duckdb.DuckDBPyConnection, key: FingerprintKey, event: str, *, now: datetime, run_id: str | None,
    note: str | None = None,
) -> None:
    os_user, host = runs.os_identity()
    con.execute(KEYS_DDL)
    con.execute(
        "INSERT INTO fingerprint_keys (seq, key_id, since, event, note, run_id, os_user, host) "
        "SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM fingerprint_keys",
        [key.key_id, now, event, note, run_id, os_user, host],
    )


def migrate_unkeyed(con: duckdb.DuckDBPyConnection, key: FingerprintKey) -> str:
    """Key the plain fingerprints of a database written before keys (module doc), in one
    transaction; returns what changed."""
    use_key(con, key)
    con.execute("BEGIN")
    (fingerprints, simhashes), = con.sql(
        "SELECT count(prompt_fingerprint), count(prompt_simhash) FROM invocations").fetchall()
    con.execute(f"""
        UPDATE invocations SET
            prompt_fingerprint = CASE WHEN starts_with(prompt_fingerprint, 'hash:')
                                      THEN 'hash:' || {keyed_sql("substr(prompt_fingerprint, 6)")}
                                      ELSE {keyed_sql("prompt_fingerprint")} END,
            prompt_simhash = NULL
        WHERE prompt_fingerprint IS NOT NULL OR prompt_simhash IS NOT NULL
    """)
    raws = con.execute(
        f"UPDATE rejected_rows SET raw = {keyed_raw_sql('raw')} WHERE contains(raw, 'sha256')").fetchall()[0][0]
    con.execute("COMMIT")
    return (f"migrated to keyed fingerprints: {fingerprints:,} prompt fingerprints keyed, {simhashes:,} unkeyed "
            f"SimHashes cleared (near repeats of earlier prompts are no longer found), {raws:,} rejected rows' hashes keyed")


def adopt_key(db_path: Path, settings: Settings, *, now: datetime, wait: bool = False) -> str:
    """`goodhart rekey`: make the installation's current key the database's (after a rotation), or
    migrate a database written before keys; published atomically like a run. Returns what it did."""
    key, source = installation_key(settings), key_source(settings)
    with run_lock(db_path, wait=wait), building(db_path) as work:
        with connect(work) as con:
            con.execute(KEYS_DDL)
            current = database_key_id(con)
            if current == key.key_id:
                return f"{db_path} already uses key {key.key_id} ({source}); nothing changed"
            if current is None:
                done = check_database(con, key, run_id=None, now=now, source=source) or f"recorded key {key.key_id}"
            else:
                record_key(con, key, "adopted", now=now, run_id=None, note=f"after key {current}")
                done = f"adopted key {key.key_id} after {current}: earlier prompts no longer match later ones as repeats"
            con.execute("CHECKPOINT")
    return f"{db_path}: {done}"


def preflight(db_path: Path, settings: Settings) -> None:
    """What a command checks before anything starts: the key is usable and the published database
    (if any) uses it. A key in a Prefect Secret block is left to the run: it needs the Prefect API."""
    if settings.fingerprint_key_block and os.environ.get(ENV_VAR) is None:
        return
    check_database_file(db_path, installation_key(settings), key_source(settings))


def check_database_file(db_path: Path, key: FingerprintKey, source: str) -> None:
    """Raise KeyMismatchError when the published database at `db_path` uses another key (read-only,
    so a usage error comes before anything starts; the run checks again on its copy)."""
    if not db_path.is_file():
        return
    with duckdb.connect(str(db_path), read_only=True) as con:
        if not con.sql("SELECT 1 FROM duckdb_tables() WHERE table_name = 'fingerprint_keys'").fetchall():
            return
        current = con.sql(LATEST_KEY_SQL).fetchall()
    if current and current[0][0] != key.key_id:
        raise _mismatch(current[0][0], key, source)


def _mismatch(current: str, key: FingerprintKey, source: str) -> KeyMismatchError:
    return KeyMismatchError(
        f"the database's prompt fingerprints were made with key {current}, not with {key.key_id} from {source}: "
        "give the run the key they were made with, or adopt this one with `goodhart rekey --db FILE` "
        "(prompts before and after it then never match as repeats; docs/security.md)"
    )
