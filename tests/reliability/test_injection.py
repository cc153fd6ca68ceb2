"""User-supplied values never reach SQL as text: injection strings in every CLI option that reaches
SQL (--input/--db/--report-dir paths, label --flag/--note/--analyst, config TOML keys and values)
and in the data itself (ids that become flag ids) drop nothing, attach nothing, and the run
either behaves normally or stops with one line and exit 2 before touching the database.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.build import set_variables
from pipeline.settings import ConfigError, Settings, deep_merge, default_config
from flows import run_local
from pipeline.storage import connect
from tests.reliability.conftest import goodhart

pytestmark = pytest.mark.slow

INJECTIONS = [
    "x'; DROP TABLE runs; --",
    "\"; ATTACH 'evil.duckdb' AS evil; CREATE TABLE evil.t AS SELECT 1; --",
    "'); DELETE FROM flags; --",
    "x = 1; DROP TABLE runs; SET VARIABLE y",
    "$value",
    "?",
]
EVIL_USER = "bob'; DROP TABLE runs; --"


def _state(db: Path) -> tuple[list[str], int, int]:
    """(tables, runs, flags) of a database, read through a fresh connection."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        (runs,), = con.sql("SELECT count(*) FROM runs").fetchall()
        (flags,), = con.sql("SELECT count(*) FROM flags").fetchall()
        attached = [d for (d,) in con.sql("SELECT database_name FROM duckdb_databases()").fetchall()]
    assert "evil" not in attached
    return tables, runs, flags


def _evil_world(contract_example: Path, target: Path) -> Path:
    """The contract example with bob renamed to an injection string (his week gets flagged)."""
    shutil.copytree(contract_example, target)
    for path in target.iterdir():
        if path.suffix == ".csv":
            path.write_text(re.sub(r"(?m)(^|,)bob(?=,|$)", lambda m: f'{m.group(1)}"{EVIL_USER}"', path.read_text()))
        elif path.suffix == ".jsonl":
            path.write_text(path.read_text().replace('"bob"', json.dumps(EVIL_USER)))
    return target


@pytest.fixture(scope="module")
def published(contract_example: Path, fast_settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("injection") / "g.duckdb"
    run_local(_evil_world(contract_example, db.parent / "input"), db, fast_settings)
    return db


def test_ids_are_data_not_sql(published: Path) -> None:
    with duckdb.connect(str(published), read_only=True) as con:
        users = {u for (u,) in con.sql("SELECT user_id FROM user_week_scores").fetchall()}
        flags = [f for (f,) in con.sql("SELECT flag_id FROM flags").fetchall()]
    assert EVIL_USER in users
    assert f"user_week:{EVIL_USER}:2026-10-05" in flags


@pytest.mark.parametrize("key", INJECTIONS)
def test_config_keys_that_are_not_names_are_refused(key: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[features]\n{json.dumps(key)} = 1\n")
    with pytest.raises(ConfigError, match="unknown setting features"):  # no such setting
        Settings.from_file(config)
    with pytest.raises(ConfigError, match="not a plain name"):  # settings built in code
        Settings(deep_merge(default_config(), {"features": {key: 1}}))
    # and the SQL sink refuses them even past the settings
    with connect() as con:
        con.execute("CREATE TABLE runs AS SELECT 1 AS x")
        with pytest.raises(ValueError, match="not a usable variable name"):
            set_variables(con, {key: 1})
        assert con.sql("SELECT count(*) FROM runs").fetchall() == [(1,)]


@pytest.mark.parametrize("section, key", [("load", "max_future_skew_hours"), ("links", "window_hours"),
                                          ("features", "peer_weeks"), ("engine", "scoring_threads")])
@pytest.mark.parametrize("value", ['"1; DROP TABLE runs; --"', "nan", "1e300", "true", "[1, 2]", "{ a = 1 }"])
def test_config_values_of_the_wrong_shape_are_refused(section: str, key: str, value: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=f"\\[{section}\\] {key}"):
        Settings.from_file(config)


def test_the_command_refuses_a_bad_config_in_one_line_before_touching_the_database(
    published: Path, contract_example: Path, tmp_path: Path
) -> None:
    before, published_bytes = _state(published), published.read_bytes()
    for text in (f'[features]\n{json.dumps(INJECTIONS[3])} = 1\n', "[load\nnot toml"):
        config = tmp_path / "c.toml"
        config.write_text(text)
        result = goodhart("run", "--input", str(contract_example), "--db", str(published), "--no-prefect",
                          "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("goodhart: error:") and result.stderr.strip().count("\n") == 0, result.stderr
        assert published.read_bytes() == published_bytes
    assert _state(published) == before


def test_free_text_in_the_config_is_stored_as_text(contract_example: Path, fast_config: Path, tmp_path: Path) -> None:
    """Detector texts (an unknown key is refused: test_settings) go through parameters and polars only."""
    config = tmp_path / "c.toml"
    config.write_text(fast_config.read_text() + "".join(
        f'[[detectors.rules]]\nname = "prompt_loop"\nlevel = "{level}"\ndescription = {json.dumps(text)}\n'
        for level, text in zip(("user_week", "session"), INJECTIONS)))
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings.from_file(config))
    tables, runs, flags = _state(db)
    assert "runs" in tables and runs == 1 and flags > 0
    with duckdb.connect(str(db), read_only=True) as con:
        stored = json.loads(con.sql("SELECT config FROM runs").fetchall()[0][0])
    described = {rule["level"]: rule["description"] for rule in stored["detectors"]["rules"] if rule["name"] == "prompt_loop"}
    assert described == {"user_week": INJECTIONS[0], "session": INJECTIONS[1]}


def test_paths_with_quotes_and_wildcards_are_only_paths(
    contract_example: Path, fast_config: Path, fast_settings, tmp_path: Path
) -> None:
    name = "x'; DROP TABLE runs; -- \"; ATTACH 'evil.duckdb' AS evil; -- $value"
    root = tmp_path / name
    input_dir = root / "in[1]*?"  # also a glob pattern, were it one
    shutil.copytree(contract_example, input_dir)
    (input_dir / "people.csv").unlink()  # a Parquet file instead: DuckDB reads it by path
    pq.write_table(pa.table({"user_id": ["alice", "bob", "carol"], "team": ["a", "b", "c"]}), input_dir / "people.parquet")
    decoy = root / "in1-decoy"  # what that pattern would match: its rows must never load
    decoy.mkdir()
    pq.write_table(pa.table({"user_id": ["mallory"], "team": ["x"]}), decoy / "people.parquet")
    db, report = root / f"{name}.duckdb", root / f"report {name}"

    result = goodhart("run", "--input", str(input_dir), "--db", str(db), "--no-prefect", "--config",
                      str(fast_config), "--report-dir", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_local(input_dir, db, fast_settings)  # and again, over the published file
    tables, runs, flags = _state(db)
    assert runs == 2 and "runs" in tables and "flags" in tables
    with duckdb.connect(str(db), read_only=True) as con:
        people = {u for (u,) in con.sql("SELECT user_id FROM people").fetchall()}
        paths = {Path(p).parent for (p,) in con.sql("SELECT path FROM loaded_files").fetchall()}
        (input_dir_stored,), = con.sql("SELECT DISTINCT input_dir FROM runs").fetchall()
    assert people == {"alice", "bob", "carol"}  # not mallory from the decoy folder
    assert paths == {input_dir} and input_dir_stored == str(input_dir)
    assert (report / "report.html").is_file()
    assert not list(tmp_path.rglob("evil.duckdb"))

    # the two characters DuckDB cannot take in a database path: refused in one line, nothing created
    for bad in ("g?x.duckdb", "g\\x.duckdb"):
        refused = goodhart("run", "--input", str(input_dir), "--db", str(root / bad), "--no-prefect", cwd=tmp_path)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
        assert "--db path must not contain" in refused.stderr
    assert not [p for p in root.iterdir() if p.name.startswith(("g?x", "g\\x"))]


def test_label_options_are_values(published: Path, tmp_path: Path) -> None:
    db = shutil.copyfile(published, tmp_path / "g.duckdb")
    before = _state(db)
    evil_flag = f"user_week:{EVIL_USER}:2026-10-05"
    result = goodhart("label", "--db", str(db), "--flag", evil_flag, "--verdict", "confirmed",
                      "--note", INJECTIONS[1], "--analyst", INJECTIONS[2], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    unknown = goodhart("label", "--db", str(db), "--flag", INJECTIONS[0], "--verdict", "unsure", "--note", INJECTIONS[0],
                       cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.strip().count("\n") == 0, unknown.stderr
    assert _state(db) == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT flag_id, verdict, note, analyst FROM verdicts").fetchall() == [
            (evil_flag, "confirmed", INJECTIONS[1], INJECTIONS[2])]
    assert not list(tmp_path.rglob("evil.duckdb"))
