"""No prompt text anywhere the pipeline writes: a canary prompt, given in every way a row can be
loaded or rejected, is found in no table, no file, no log line and no report. Nor its plain
sha256 (fingerprints are keyed), nor the fingerprint key itself (docs/security.md).

The database is searched through SQL (every column of every table, cast to text), not only as
bytes: DuckDB compresses strings, so a byte search alone could miss a stored prompt.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest.fingerprint import prompt_fingerprint
from tests.conftest import TEST_KEY, TEST_KEY_HEX
from tests.reliability.conftest import CANARY, goodhart

pytestmark = pytest.mark.slow

HEADER = "invocation_id,ts,user_id,session_id,repo,prompt_text"


def _line(**row) -> str:
    return json.dumps(row) + "\n"


def canary_inputs(contract_example: Path, root: Path) -> Path:
    """The contract example plus the canary prompt in every shape of row the loader handles."""
    input_dir = root / "input"
    shutil.copytree(contract_example, input_dir)
    folder = input_dir / "invocations"
    folder.mkdir()
    (input_dir / "invocations.jsonl").rename(folder / "a-example.jsonl")
    ok = {"ts": "2026-10-05T09:20:00Z", "user_id": "alice", "session_id": "s-100", "repo": "shop/checkout"}
    secret = f"please keep {CANARY} secret"
    (folder / "b-canary.jsonl").write_text(
        _line(invocation_id="c-1", **ok, prompt_text=secret)                                 # loaded
        + _line(invocation_id="c-2", **{**ok, "ts": "yesterday"}, prompt_text=secret)        # rejected: timestamp
        + _line(invocation_id="c-1", **ok, prompt_text=secret + " again")                    # rejected: duplicate
        + _line(invocation_id="c-3", **ok, prompt_text={"nested": secret})                   # not a string
        + '{"invocation_id": "c-4", "prompt_text": "' + secret + '", "prompt_text": "twice", "ts": "x"}\n'
        + '{"invocation_id": "c-5", "prompt_text": "' + secret + '", "ts": \n'              # malformed JSON
        + '{"invocation_id": "c-6", "prompt\\u005ftext": "' + secret + '", "ts": \n'        # malformed, escaped key
        + '{"invocation_id": "c-7", "prompt_text": "' + secret + ' \\"quoted\\" \\\\ \\n", "ts": "x"}\n'
        + '["c-8", "' + secret + '"]\n'                                                     # not a JSON object
    )
    (folder / "c-canary.csv").write_text(
        f"{HEADER}\n"
        f"c-10,2026-10-05T09:21:00Z,alice,s-100,shop/checkout,{secret}\n"                   # loaded
        f"c-11,not a time,alice,s-100,shop/checkout,\"{secret}, with a comma\"\n"          # rejected: timestamp
        f"c-12,2026-10-05T09:21:00Z,alice,s-100,{secret}\n"                                 # ragged: malformed record
        f"c-13,2026-10-05T09:21:00Z,alice,s-100,x,\"{secret}\" tail\n"                     # stray quote
    )
    (folder / "d-canary-dup-header.csv").write_text(
        f"{HEADER},prompt_text,Prompt_Text\n"
        f"c-20,never,alice,s-100,x,{secret},{secret},{secret}\n"
    )
    table = pa.table({
        "invocation_id": ["c-30", "c-31"], "ts": ["2026-10-05T09:22:00Z", "bad"], "user_id": ["alice", "alice"],
        "session_id": ["s-100", "s-100"], "prompt_text": [secret, secret],
    })
    sink = io.BytesIO()
    pq.write_table(table, sink)
    (folder / "e-canary.parquet").write_bytes(sink.getvalue())
    (folder / "f-canary.parquet.gz").write_bytes(gzip.compress(sink.getvalue()))
    damaged = gzip.compress(_line(invocation_id="c-40", **ok, prompt_text="fine").encode()
                            + _line(invocation_id="c-41", **ok, prompt_text=secret).encode())
    (folder / "g-canary-truncated.jsonl.gz").write_bytes(damaged[:-12])
    (folder / "h-canary-latin1.csv").write_bytes(f"{HEADER}\nc-50,2026-10-05T09:23:00Z,al\u00efce,s,r,{secret}\n".encode("latin-1"))
    return input_dir


def tables_holding(db: Path, needle: str) -> list[str]:
    """table.column of every value that contains `needle`, cast to text."""
    found = []
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.sql(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal ORDER BY ALL").fetchall()
        tables = {t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        for table, column in columns:
            if table not in tables:
                continue
            hits = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE contains(CAST("{column}" AS VARCHAR), ?)', [needle]
            ).fetchall()[0][0]
            if hits:
                found.append(f"{table}.{column}")
    return found


def files_holding(root: Path, needle: str) -> list[Path]:
    forms = [needle.encode("utf-8"), needle.encode("utf-16-le")]
    return [p for p in root.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)]


@pytest.fixture(scope="module")
def canary_run(contract_example: Path, fast_config: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("privacy")
    input_dir = canary_inputs(contract_example, root)
    out = root / "out"
    out.mkdir()
    db = out / "g.duckdb"
    result = goodhart("-v", "run", "--input", str(input_dir), "--db", str(db), "--no-prefect", "--config",
                      str(fast_config), cwd=root)
    return {"result": result, "db": db, "out": out, "input": input_dir}


def test_the_canary_rows_went_through_every_path(canary_run: dict) -> None:
    assert canary_run["result"].returncode == 0, canary_run["result"].stderr
    with duckdb.connect(str(canary_run["db"]), read_only=True) as con:
        reasons = {r for (r,) in con.sql("SELECT DISTINCT reason FROM rejected_rows").fetchall()}
        loaded = {i for (i,) in con.sql("SELECT invocation_id FROM invocations WHERE invocation_id LIKE 'c-%'").fetchall()}
    assert {"duplicate", "malformed JSON", "not a JSON object", "malformed CSV record",
            "unparseable timestamp: ts", "unreadable file: invalid UTF-8"} <= reasons, reasons
    assert any(r.startswith("unreadable file: truncated gzip") for r in reasons), reasons
    assert {"c-1", "c-10", "c-30", "c-40"} <= loaded, loaded
    # the search works: a value that is stored is found
    assert "invocations.invocation_id" in tables_holding(canary_run["db"], "c-10")


def test_no_table_holds_the_prompt(canary_run: dict) -> None:
    assert tables_holding(canary_run["db"], CANARY) == []


def test_no_written_file_holds_the_prompt(canary_run: dict) -> None:
    assert files_holding(canary_run["out"], CANARY) == []


def test_no_log_line_holds_the_prompt(canary_run: dict) -> None:
    result = canary_run["result"]
    assert CANARY not in result.stdout + result.stderr
    assert "rejected" in result.stdout  # -v output was captured


def test_the_finance_report_holds_no_prompt(canary_run: dict, tmp_path: Path) -> None:
    report = pytest.importorskip("pipeline.publish.report", reason="pipeline/publish/report.py (the finance report) is not there yet")
    out = tmp_path / "report"
    report.write_report(canary_run["db"], out, min_team_size=1, include_people=True)
    assert any(out.iterdir())
    assert files_holding(out, CANARY) == []
    via_cli = goodhart("-v", "report", "--db", str(canary_run["db"]), "--out", str(tmp_path / "cli-report"),
                       "--include-people", "--min-team-size", "1", cwd=tmp_path)
    if via_cli.returncode == 2 and "invalid choice" in via_cli.stderr:
        pytest.skip("no `goodhart report` command yet")
    assert via_cli.returncode == 0, via_cli.stderr
    assert CANARY not in via_cli.stdout + via_cli.stderr
    assert files_holding(tmp_path / "cli-report", CANARY) == []


# --- keyed fingerprints: no guess can be confirmed, and the key is nowhere -------------------------

SECRET_PROMPT = f"please keep {CANARY} secret"  # loaded as c-1 and c-10, rejected in several shapes


def key_material() -> list[bytes]:
    """Every form the key could leak in: the secret and the keys derived from it, raw and as hex,
    and the HMAC pads the loader hands DuckDB."""
    padded = TEST_KEY.exact.ljust(64, b"\0")
    raw = [bytes.fromhex(TEST_KEY_HEX), TEST_KEY.exact, TEST_KEY.simhash,
           bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)]
    return raw + [r.hex().encode() for r in raw] + [r.hex().upper().encode() for r in raw]


def files_holding_bytes(root: Path, needles: list[bytes]) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_the_stored_fingerprint_of_a_known_prompt_is_not_its_plain_sha256(canary_run: dict) -> None:
    plain = hashlib.sha256(SECRET_PROMPT.encode()).hexdigest()
    with duckdb.connect(str(canary_run["db"]), read_only=True) as con:
        stored = dict(con.sql("SELECT invocation_id, prompt_fingerprint FROM invocations "
                              "WHERE invocation_id IN ('c-1', 'c-10')").fetchall())
        raws = [raw for (raw,) in con.sql("SELECT raw FROM rejected_rows WHERE raw IS NOT NULL").fetchall()]
    assert stored == {"c-1": prompt_fingerprint(SECRET_PROMPT, TEST_KEY), "c-10": prompt_fingerprint(SECRET_PROMPT, TEST_KEY)}
    assert plain not in stored.values()
    # whoever hashes a guess finds it nowhere: not in a table, not in a file the run wrote
    assert tables_holding(canary_run["db"], plain) == []
    assert files_holding(canary_run["out"], plain) == []
    assert any("hmac:" + stored["c-1"] in raw for raw in raws)  # rejected copies carry the keyed fingerprint
    assert not any("sha256:" in raw for raw in raws)


def test_no_file_the_run_wrote_holds_the_key(canary_run: dict, tmp_path: Path) -> None:
    material = key_material()
    assert files_holding_bytes(canary_run["out"], material) == []
    result = canary_run["result"]
    assert not any(m.decode("latin-1") in result.stdout + result.stderr for m in material)
    for hex_form in (TEST_KEY_HEX, TEST_KEY.exact.hex(), TEST_KEY.simhash.hex()):
        assert tables_holding(canary_run["db"], hex_form) == []
    report = tmp_path / "report"
    via_cli = goodhart("report", "--db", str(canary_run["db"]), "--out", str(report), "--min-team-size", "1", cwd=tmp_path)
    assert via_cli.returncode == 0, via_cli.stderr
    assert files_holding_bytes(report, material) == []
    with duckdb.connect(str(canary_run["db"]), read_only=True) as con:  # the database names the key, no more
        assert con.sql("SELECT key_id FROM fingerprint_keys").fetchall() == [(TEST_KEY.key_id,)]
