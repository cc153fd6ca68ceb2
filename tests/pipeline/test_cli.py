"""The `goodhart` command: exit codes, one-line messages and progress, through a real subprocess."""
from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.ops.workspace import run_lock
from tests.processes import children_running, wait_until_gone

GOODHART = [sys.executable, "-m", "pipeline.cli"]


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user without a Prefect server: runs start their own temporary one
    (under a Prefect home of this module's, so nothing else's server database is touched)."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home"))}
    env.pop("PREFECT_API_URL", None)
    return env


def goodhart(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GOODHART, *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line of a usage error: the last line of stderr, and nothing on it but progress lines."""
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("goodhart: "), result.stderr
    assert all(line.startswith("goodhart: ") for line in lines), result.stderr  # no traceback, no library noise
    assert "Traceback" not in result.stderr and "nanobind" not in result.stderr, result.stderr
    return lines[-1]


def test_run_without_prefect_exits_0_and_reruns_change_nothing(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    first = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "18 given, 18 loaded, 0 rejected" in first.stdout
    second = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 given, 0 loaded, 0 rejected" in second.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*), sum(files_skipped) FROM runs").fetchall() == [(2, 6)]
        assert con.sql("SELECT count(*) FROM token_usage").fetchall() == [(4,)]


def test_the_command_leaves_every_write_in_the_database_file(contract_example: Path, tmp_path: Path) -> None:
    # the command ends without tearing its modules down (cli.entry): whatever it wrote must already
    # be in the .duckdb file itself, not in a write-ahead log a copy of the file would lose
    db = tmp_path / "g.duckdb"
    assert goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        flag_id = con.sql("SELECT flag_id FROM flags ORDER BY flag_id LIMIT 1").fetchall()[0][0]
    labelled = goodhart("label", "--db", str(db), "--flag", flag_id, "--verdict", "legitimate", cwd=tmp_path)
    assert labelled.returncode == 0, labelled.stderr
    assert not list(tmp_path.glob("g.duckdb.wal"))
    copy = tmp_path / "copy" / "g.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(db, copy)  # the file alone, as a user copies it
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.sql("SELECT verdict FROM verdicts WHERE flag_id = $f", params={"f": flag_id}).fetchall() == [
            ("legitimate",)]


def test_missing_required_dataset_is_one_line_and_exit_2(contract_example: Path, tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    shutil.copytree(contract_example, input_dir)
    (input_dir / "deployments.jsonl").unlink()
    result = goodhart("run", "--input", str(input_dir), "--db", str(tmp_path / "g.duckdb"), "--no-prefect", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "deployments" in result.stderr
    assert not (tmp_path / "g.duckdb").exists()


def test_unusable_detector_settings_are_one_line_and_exit_2_before_anything_starts(
    contract_example: Path, tmp_path: Path
) -> None:
    # a world this small is scored by the rules alone: without the up-front check, an unknown
    # model member would never be noticed
    for text, said in (
        ('[detectors.levels.user_week.ensemble]\nmembers = ["nope"]\n', "unknown pyod member 'nope'"),
        ('[[detectors.rules]]\nname = "x"\nlevel = "user_week"\nconditions = ["tokens => 3"]\n', "cannot parse condition"),
    ):
        config = tmp_path / "bad.toml"
        config.write_text(text)
        result = goodhart("run", "--input", str(contract_example), "--db", str(tmp_path / "g.duckdb"), "--no-prefect",
                          "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("goodhart: error: [detectors] ") and said in lines[0]
        assert not (tmp_path / "g.duckdb").exists()


@pytest.mark.parametrize("plain", [True, False], ids=["no-prefect", "prefect"])
def test_detector_settings_reading_a_missing_feature_are_one_line_and_exit_2_before_scoring(
    contract_example: Path, tmp_path: Path, prefect_env: dict[str, str], plain: bool
) -> None:
    # columns are known once the features are built: checked then, before any week is scored; on
    # the Prefect path the error passes through a failed flow, and nothing it kept may print more
    for text, said in (
        ('[[detectors.rules]]\nname = "prompt_loop"\nlevel = "session"\nconditions = ["near_repeat_sharez >= 0.5"]\n',
         "rule prompt_loop: ['near_repeat_sharez'] not in the session features"),
        ('[[detectors.rules]]\nname = "burn_without_shipping"\nlevel = "user_week"\n'
         'sessions = { conditions = ["no_such_column == true"] }\n',
         "rule burn_without_shipping: its sessions use columns the session features lack: ['no_such_column']"),
    ):
        config = tmp_path / "bad.toml"
        config.write_text(text)
        result = goodhart("run", "--input", str(contract_example), "--db", str(tmp_path / "g.duckdb"),
                          *(["--no-prefect"] if plain else []), "--config", str(config), cwd=tmp_path, env=prefect_env)
        assert result.returncode == 2, result.stderr
        assert _one_line(result) == f"goodhart: error: [detectors] {said}"
        assert not (tmp_path / "g.duckdb").exists()  # nothing published


def test_unusable_arguments_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (
        ("run", "--input", str(tmp_path / "nope"), "--db", "x.duckdb"),
        ("run", "--db", "x.duckdb"),
        ("generate", str(tmp_path / "w"), "--users", "0"),
        ("generate", str(tmp_path / "w"), "--without", "user_id"),
        ("generate", str(tmp_path / "w"), "--style", "agentic", "--habit", "NO_SUCH_HABIT=1"),
        ("generate", str(tmp_path / "w"), "--habit", "APPROVAL_SHARE=0.4"),  # a chat world
        ("frobnicate",),
    ):
        result = goodhart(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.startswith("goodhart") and result.stderr.strip().count("\n") == 0, result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = goodhart("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "generate", "demo", "evaluate", "serve"):
        assert command in result.stdout


def test_usage_errors_on_the_prefect_path_are_one_line_before_prefect_starts(
    contract_example: Path, tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("x = [\n")
    db = tmp_path / "g.duckdb"
    cases = {
        "no dataset": (("run", "--input", str(empty), "--db", str(db)), 2, "no entry for required dataset"),
        "bad config": (("run", "--input", str(contract_example), "--db", str(db), "--config", str(bad_toml)), 2,
                       "cannot read"),
    }
    for name, (args, code, words) in cases.items():
        result = goodhart(*args, cwd=tmp_path, env=prefect_env)
        assert result.returncode == code, (name, result.stderr)
        assert result.stderr.strip().count("\n") == 0 and words in result.stderr, (name, result.stderr)
        assert "Prefect server" not in result.stderr, name  # refused before anything started

    with run_lock(db):  # another run holds the database
        busy = goodhart("run", "--input", str(contract_example), "--db", str(db), cwd=tmp_path, env=prefect_env)
    assert busy.returncode == 3 and busy.stderr.strip().count("\n") == 0, busy.stderr
    assert "another run is writing" in busy.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "empty"]  # no database, no stray lock file


def test_a_db_file_that_is_not_a_duckdb_database_is_refused_and_left_untouched(
    contract_example: Path, tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    for name, content in (("empty.duckdb", b""), ("notes.duckdb", b"my notes, not a database\n" * 10)):
        db = tmp_path / name
        db.write_bytes(content)
        for extra in ((), ("--no-prefect",)):
            result = goodhart("run", "--input", str(contract_example), "--db", str(db), *extra,
                              cwd=tmp_path, env=prefect_env)
            assert result.returncode == 2, result.stderr
            assert "is a file that is not a DuckDB database" in _one_line(result)
            assert "Prefect server" not in result.stderr  # refused before anything started
        assert db.read_bytes() == content


def test_a_writer_holding_the_database_stops_a_run_with_exit_3(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    assert goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; con = duckdb.connect({str(db)!r}); print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        result = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path)
    finally:
        holder.communicate("")
    assert result.returncode == 3, result.stderr
    assert f"process {holder.pid}" in _one_line(result) and "open for writing" in result.stderr


def _garbage_token_usage(contract_example: Path, tmp_path: Path) -> Path:
    input_dir = tmp_path / "input"
    shutil.copytree(contract_example, input_dir)
    (input_dir / "token_usage.csv").write_text("request_id,ts\nr-1,yesterday\nr-2,not a time\n")
    return input_dir


def test_a_required_dataset_that_loads_nothing_fails_after_publishing_its_load(contract_example: Path, tmp_path: Path) -> None:
    input_dir = _garbage_token_usage(contract_example, tmp_path)
    db = tmp_path / "g.duckdb"
    result = goodhart("run", "--input", str(input_dir), "--db", str(db), "--no-prefect", cwd=tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert "token_usage (2 rows rejected" in line and "nothing was scored" in line and "--allow-empty" in line
    with duckdb.connect(str(db), read_only=True) as con:
        (status, error), = con.sql("SELECT status, error FROM runs").fetchall()
        assert status == "failed" and "token_usage" in error
        assert con.sql("SELECT count(*) FROM rejected_rows WHERE dataset = 'token_usage'").fetchall() == [(2,)]
        tables = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "user_week_scores" not in tables and "flags" not in tables  # nothing flagged from nothing

    allowed = goodhart("run", "--input", str(input_dir), "--db", str(db), "--no-prefect", "--allow-empty", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT status FROM runs ORDER BY started_at").fetchall() == [("failed",), ("completed",)]
        assert con.sql("SELECT count(*) FROM user_week_scores WHERE tokens > 0").fetchall() == [(0,)]


@pytest.mark.slow
def test_an_error_inside_the_prefect_flow_is_one_line_and_its_server_stops(
    contract_example: Path, tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    input_dir = _garbage_token_usage(contract_example, tmp_path)
    result = goodhart("run", "--input", str(input_dir), "--db", str(tmp_path / "g.duckdb"), cwd=tmp_path, env=prefect_env)
    assert result.returncode == 2
    assert "required dataset loaded no rows: token_usage" in _one_line(result)
    assert "Prefect server ready" in result.stderr  # it did get inside the flow


@pytest.mark.slow
def test_a_killed_run_takes_its_temporary_prefect_server_with_it(
    contract_example: Path, tmp_path: Path, prefect_env: dict[str, str]
) -> None:
    run = subprocess.Popen(
        [*GOODHART, "run", "--input", str(contract_example), "--db", str(tmp_path / "g.duckdb")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=prefect_env,
    )
    try:
        for line in run.stderr:
            if "Prefect server ready" in line:
                break
        servers = children_running(run.pid, "prefect")
        assert servers, "no temporary Prefect server under the run"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert not wait_until_gone(servers, timeout=20), "the temporary Prefect server outlived its killed run"


def test_progress_is_plain_lines_off_a_terminal(contract_example: Path, tmp_path: Path) -> None:
    result = goodhart("run", "--input", str(contract_example), "--db", str(tmp_path / "g.duckdb"), "--no-prefect", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stages = [line for line in result.stderr.splitlines()]
    assert stages[0] == "goodhart: opening the database ..."
    assert re.search(r"^goodhart: loaded 18 of 18 rows \(0 rejected\) from 6 new files.*\(\d+\.\d s\)$", result.stderr, re.M)
    assert re.search(r"^goodhart: scored 2 user-weeks \(1 flagged\) and 2 sessions", result.stderr, re.M)
    assert stages[-1].startswith("goodhart: published run ")
    assert "\x1b[" not in result.stderr  # no terminal codes in a log


def test_progress_on_a_terminal_draws_bars_and_keeps_each_finished_stage(contract_example: Path, tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: goodhart on a terminal
        os.chdir(tmp_path)
        os.execv(sys.executable, [*GOODHART, "run", "--input", str(contract_example), "--db", "g.duckdb", "--no-prefect"])
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    drawn = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, drawn
    assert "\x1b[" in drawn  # drawn live
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    for finished in ("✓ database: new file", "✓ loaded 18 of 18 rows", "✓ features: full rebuild", "✓ scored 2 user-weeks",
                     "✓ published run"):
        assert finished in shown, (finished, shown)


def test_generate_vendor_writes_an_agentic_world_as_vendor_exports(tmp_path: Path) -> None:
    result = goodhart("generate", str(tmp_path / "v"), "--style", "agentic", "--vendor", "--users", "8", "--weeks", "1",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "v" / "sources").iterdir()) == [
        "claude_code_otel", "github_deployments", "github_pulls", "github_reviews", "litellm"]
    assert (tmp_path / "v" / "people.csv").read_text().startswith("user_id,team,org,aliases\n")
    refused = goodhart("generate", str(tmp_path / "c"), "--vendor", cwd=tmp_path)  # a chat world has no reviews
    assert refused.returncode == 2 and "--style agentic" in _one_line(refused)


def test_generate_habit_draws_a_stress_world_and_records_it(tmp_path: Path) -> None:
    result = goodhart("generate", str(tmp_path / "s"), "--style", "agentic", "--users", "8", "--weeks", "1",
                      "--habit", "APPROVAL_SHARE=0.4", "--habit", "WORK.code_share=0.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "s" / "labels" / "world.json").read_text())
    assert meta["habits"] == {"APPROVAL_SHARE": 0.4, "WORK.code_share": 0.3}


HEAVY = {"prefect", "sklearn", "pyod", "numba"}


def _heavy_imports(*args: str, cwd: Path) -> list[str]:
    """The heavy packages a `goodhart` command imports, run in a fresh interpreter."""
    code = (
        "import sys, pipeline.cli as cli\n"
        f"try:\n    cli.main({list(args)!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.rsplit("HEAVY ", 1)[1])


def test_commands_import_only_what_they_need(contract_example: Path, tmp_path: Path) -> None:
    """Reading commands load no Prefect, scikit-learn, PyOD or numba; `run --no-prefect` no Prefect."""
    db = tmp_path / "g.duckdb"
    assert "prefect" not in _heavy_imports("run", "--input", str(contract_example), "--db", str(db), "--no-prefect",
                                           cwd=tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        flag = con.sql("SELECT flag_id FROM flags ORDER BY flag_id LIMIT 1").fetchall()[0][0]
    commands = {
        "sql": ("sql", str(db), "SELECT count(*) FROM runs"),
        "report": ("report", "--db", str(db), "--out", str(tmp_path / "report")),
        "leaderboard": ("leaderboard", "--db", str(db)),
        "label": ("label", "--db", str(db), "--flag", flag, "--verdict", "unsure"),
        "explain": ("explain", flag, "--db", str(db), "--out", str(tmp_path / "case")),
    }
    for name, args in commands.items():
        assert _heavy_imports(*args, cwd=tmp_path) == [], name
    help_code = "import sys, pipeline.cli as cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n" \
                f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))\n"
    shown = subprocess.run([sys.executable, "-c", help_code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert shown.stdout.rsplit("HEAVY ", 1)[1].strip() == "[]", shown.stdout


def test_while_a_temporary_server_starts_the_run_imports_its_models_libraries() -> None:
    """The seconds `goodhart run` waits for its temporary Prefect server import the models' libraries
    (which the run would otherwise import beside its load); without a run's settings (serve), not."""
    code = ("import sys\nfrom pipeline import cli\nfrom pipeline.settings import Settings\n"
            "cli._import_flow_jobs({arg})\n"
            "print('LOADED', sorted(set(sys.modules) & {{'sklearn.ensemble', 'pyod.models.hbos'}}))\n")
    loaded = {}
    for name, arg in (("run", "Settings.from_file(None)"), ("serve", "")):
        shown = subprocess.run([sys.executable, "-c", code.format(arg=arg)], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        loaded[name] = shown.stdout.rsplit("LOADED ", 1)[-1].strip()
    assert loaded == {"run": "['pyod.models.hbos', 'sklearn.ensemble']", "serve": "[]"}, loaded


def test_runs_on_a_temporary_server_send_no_flow_heartbeats() -> None:
    # a server without services cannot act on heartbeats, and each flow run's end would wait up to
    # a second for its heartbeat thread (Prefect 3.8): the run turns them off against its own server
    import io

    from prefect.settings import get_current_settings

    from pipeline import progress
    from pipeline.ops.prefect_api import start_temporary_server, use_api

    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None  # Prefect's default: what a long-lived server with services gets
    server = start_temporary_server(services=False)
    try:
        with use_api(server, report=progress.PlainReporter(io.StringIO()), while_starting=lambda: None):
            assert get_current_settings().api.url == server.url
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == default
    finally:
        server.stop()
