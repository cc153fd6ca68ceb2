"""Incremental runs: history first, then new days, gives the same tables as one full run over
everything, while rebuilding only the weeks the new rows can change."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data.agentic import generate_agentic_world
from data.generate import generate_world
from data.split import last_day, withhold_days
from features.build import TEMPLATE_CONTEXT
from pipeline import sql_models
from pipeline.settings import Settings
from flows import RunResult, run_local
from pipeline.ops.verdicts import record_verdict

START = date(2026, 9, 7)  # a Monday: the generator's first day
WEEKS = 6
FEATURE_TABLES = sql_models.load("features", TEMPLATE_CONTEXT).order()
COMPARED_TABLES = (*FEATURE_TABLES, "scored_user_weeks", "scored_sessions", "user_week_scores", "session_scores", "flags",
                   "user_week_spend_shares", "waste_by_dimension_week")
IGNORED_COLUMNS = {"run_id"}  # differs between any two runs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(out, users=60, weeks=WEEKS, seed=5)
    return out


def _table(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    columns = [row[0] for row in con.sql(f"DESCRIBE {table}").fetchall() if row[0] not in IGNORED_COLUMNS]
    frame = con.sql(f"SELECT {', '.join(columns)} FROM {table}").pl()
    sortable = [c for c in frame.columns if not isinstance(frame.schema[c], (pl.List, pl.Struct))]
    return frame.sort(sortable)


def _assert_same_tables(incremental_db: Path, full_db: Path, tables: tuple[str, ...] = COMPARED_TABLES) -> None:
    with duckdb.connect(str(incremental_db), read_only=True) as inc, duckdb.connect(str(full_db), read_only=True) as full:
        for table in tables:
            left, right = _table(inc, table), _table(full, table)
            assert left.height > 0, table
            # sums of doubles may differ in the last bits with the order DuckDB adds them in
            try:
                assert_frame_equal(left, right, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
            except AssertionError as error:
                raise AssertionError(f"{table}: {error}") from None


def _runs(world: Path, tmp_path: Path, withheld: set[date]) -> tuple[RunResult, Path, Path]:
    before, after = withhold_days(world, tmp_path, withheld)
    return _history_then_new_days(before, after, tmp_path)


def _history_then_new_days(
    before: Path, after: Path, tmp_path: Path, settings: Settings | None = None,
    with_history: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> tuple[RunResult, Path, Path]:
    """A full run over `before` (the history), then a run over `after` on the same database (the
    daily run), and a full run over `after` on a database of its own; `with_history` looks at the
    history's database in between. Returns the daily run and the two databases."""
    settings = settings or Settings()
    incremental_db, full_db = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    first = run_local(before, incremental_db, settings)
    assert first.features.weeks is None  # nothing built before: a full build
    if with_history is not None:
        with duckdb.connect(str(incremental_db), read_only=True) as con:
            with_history(con)
    second = run_local(after, incremental_db, settings)
    run_local(after, full_db, settings)
    return second, incremental_db, full_db


def test_a_new_day_rebuilds_only_its_week_and_equals_a_full_run(world: Path, tmp_path: Path) -> None:
    second, incremental_db, full_db = _runs(world, tmp_path, {last_day(world)})

    assert second.features.weeks == (START + timedelta(weeks=WEEKS - 1),)
    _assert_same_tables(incremental_db, full_db)
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        (kind, weeks), = con.sql("SELECT kind, weeks_rebuilt FROM feature_state").fetchall()
    assert kind == "incremental" and weeks == [START + timedelta(weeks=WEEKS - 1)]


def test_a_late_day_in_an_old_week_rebuilds_the_weeks_its_windows_reach(world: Path, tmp_path: Path) -> None:
    late_day = START + timedelta(days=3)  # a Thursday of week 1, arriving after everything else
    second, incremental_db, full_db = _runs(world, tmp_path, {late_day})

    weeks = second.features.weeks
    assert weeks is not None and START in weeks
    # usual hours and peer baselines look back 4 weeks, the current one included, and one's own history
    # the 4 weeks before it: weeks 1-5 change, 6 does not
    assert START + timedelta(weeks=4) in weeks and START + timedelta(weeks=5) not in weeks
    _assert_same_tables(incremental_db, full_db)


def test_several_days_in_different_weeks_at_once_equal_a_full_run(world: Path, tmp_path: Path) -> None:
    days = {START + timedelta(days=9), START + timedelta(days=23), last_day(world)}  # weeks 2, 4 and 6
    second, incremental_db, full_db = _runs(world, tmp_path, days)

    assert second.features.weeks is not None  # incremental, though changes reach back to week 1
    _assert_same_tables(incremental_db, full_db)


def test_a_session_crossing_into_the_rebuilt_week_is_computed_from_all_its_events(world: Path, tmp_path: Path) -> None:
    # a session from Sunday night of week 5 into Monday of week 6, loaded with the history: the
    # daily run rebuilds week 6 only, yet the session's gap across midnight (active time in week 6)
    # needs its week-5 event
    before, after = withhold_days(world, tmp_path, {last_day(world)})
    sample = pl.read_parquet(next((world / "token_usage").glob("*.parquet"))).row(0, named=True)
    monday = START + timedelta(weeks=WEEKS - 1)
    crossing = pl.DataFrame({
        "request_id": ["r-cross-1", "r-cross-2", "r-cross-3"],
        "ts": [f"{monday - timedelta(days=1)}T23:52:00Z", f"{monday}T00:04:00Z", f"{monday}T00:09:00Z"],
        "user_id": [sample["user_id"]] * 3, "session_id": ["s-cross"] * 3, "model": [sample["model"]] * 3,
        "input_tokens": [9000, 8000, 7000], "output_tokens": [300, 200, 100],
        "cache_read_tokens": [0, 0, 0], "cache_write_tokens": [0, 0, 0], "cost_usd": [None, None, None],
        "tool": ["claude-code"] * 3,
    })
    crossing.write_csv(before / "token_usage" / "crossing.csv")
    (after / "token_usage" / "crossing.csv").hardlink_to(before / "token_usage" / "crossing.csv")
    second, incremental_db, full_db = _history_then_new_days(before, after, tmp_path)

    assert second.features.weeks == (monday,)
    with duckdb.connect(str(full_db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM session_weeks WHERE session_id = 's-cross'").fetchall() == [(2,)]
    _assert_same_tables(incremental_db, full_db)


def test_a_repositorys_first_deployment_reaches_every_week_it_merged_in(world: Path, tmp_path: Path) -> None:
    # a repository deploys once, late; the history holds no deployment of it: every week a change
    # merged into it counts a merge into a deploying repository anew, not only the deployed ones'
    before, after = withhold_days(world, tmp_path, {last_day(world)})
    history = pl.read_parquet(before / "deployments" / "history.parquet")
    repo = history.filter(pl.col("status") == "success").get_column("repo").mode().sort()[0]
    last = history.filter(pl.col("repo") == repo).sort("deployed_at").tail(1)
    for folder in (before, after):
        (folder / "deployments" / "history.parquet").unlink()  # a hard link: write each anew
        history.filter(pl.col("repo") != repo).write_parquet(folder / "deployments" / "history.parquet")
    last.write_parquet(after / "deployments" / "first-of-repo.parquet")
    second, incremental_db, full_db = _history_then_new_days(before, after, tmp_path)

    assert second.features.weeks is not None and START in second.features.weeks  # incremental, back to week 1
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        assert con.sql("SELECT sum(deploying_repo_merged_changes) FROM user_week_features").fetchall()[0][0] > 0
    _assert_same_tables(incremental_db, full_db)


def test_the_first_deployment_of_all_makes_every_week_known(world: Path, tmp_path: Path) -> None:
    # the history holds failed deployments only (whether a repository deploys is unknown); the
    # successful ones all arrive with the last day
    before, after = withhold_days(world, tmp_path, {last_day(world)})
    history = pl.read_parquet(before / "deployments" / "history.parquet")
    succeeded = pl.col("status") == "success"
    assert history.filter(~succeeded).height > 0
    for folder in (before, after):
        (folder / "deployments" / "history.parquet").unlink()
        history.filter(~succeeded).write_parquet(folder / "deployments" / "history.parquet")
    history.filter(succeeded).write_parquet(after / "deployments" / "all-at-once.parquet")
    def no_deploying_repository_known(con: duckdb.DuckDBPyConnection) -> None:
        assert con.sql("SELECT count(deploying_repo_merged_changes) FROM user_week_features").fetchall() == [(0,)]

    _, incremental_db, full_db = _history_then_new_days(before, after, tmp_path,
                                                        with_history=no_deploying_repository_known)
    _assert_same_tables(incremental_db, full_db)


def test_a_late_session_a_review_names_takes_the_window_credit_from_the_session_before_it(
        world: Path, tmp_path: Path) -> None:
    # rv-1 works in a repository late on a Sunday and reviews a change there just after midnight; the
    # review names a session of Monday that arrives a day late: it places the review's work, so the
    # Sunday session, in the week before, loses its window credit
    before, after = withhold_days(world, tmp_path, {last_day(world)})
    change = pl.read_parquet(world / "changes.parquet").filter(pl.col("merged_at").is_not_null()).row(0, named=True)
    sunday, monday = datetime(2026, 9, 13, 23, 30), datetime(2026, 9, 14, 0, 0)

    def prompts(session_id: str, start: datetime) -> pl.DataFrame:
        return pl.DataFrame({
            "invocation_id": [f"{session_id}-{i}" for i in range(2)], "ts": [start, start + timedelta(minutes=10)],
            "user_id": "rv-1", "session_id": session_id, "repo": change["repo"], "prompt_text": ["review this", "and this"],
        }).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))

    review = pl.DataFrame({
        "review_id": ["rv-review"], "change_id": [change["change_id"]], "reviewer_id": ["rv-1"],
        "submitted_at": [datetime(2026, 9, 14, 0, 20)], "state": ["commented"], "ai_session_ids": [["rv-named"]],
        "comments": [3],
    }).with_columns(pl.col("submitted_at").dt.replace_time_zone("UTC"))
    for folder in (before, after):
        prompts("rv-neighbour", sunday).write_parquet(folder / "invocations" / "reviewer.parquet")
        (folder / "reviews").mkdir(exist_ok=True)
        review.write_parquet(folder / "reviews" / "reviewer.parquet")
    prompts("rv-named", monday).write_parquet(after / "invocations" / "reviewer-late.parquet")
    _, incremental_db, full_db = _history_then_new_days(before, after, tmp_path)

    with duckdb.connect(str(full_db), read_only=True) as con:
        assert con.sql("SELECT session_id, credit FROM session_links WHERE change_id = ? ORDER BY session_id",
                       params=[change["change_id"]]).fetchall()[-2:] == [("rv-named", 1.0), ("rv-neighbour", 0.0)]
    _assert_same_tables(incremental_db, full_db)


def test_a_late_session_whose_commit_a_change_merges_takes_the_lines_left_to_a_window_session(
        world: Path, tmp_path: Path) -> None:
    # bg-helper keeps 20 lines on Sunday of week 1; bg-change merges on Monday with 40 added lines and
    # a commit of bg-agent, a Monday session that arrives a day late keeping 45 lines: it wrote all of
    # the change, so the helper, in the week before, loses its window credit
    before, after = withhold_days(world, tmp_path, {last_day(world)})

    def prompts(session_id: str, start: datetime, lines: int, commit_sha: str | None) -> pl.DataFrame:
        return pl.DataFrame({
            "invocation_id": [f"{session_id}-{i}" for i in range(2)], "ts": [start, start + timedelta(minutes=10)],
            "user_id": "bg-1", "session_id": session_id, "repo": "bg-repo", "prompt_text": ["write it", "commit it"],
            "lines_accepted": [lines, 0], "commit_sha": [None, commit_sha],
        }).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))

    changes = pl.read_parquet(before / "changes" / "history.parquet")
    change = pl.DataFrame({
        "change_id": ["bg-change"], "repo": ["bg-repo"], "author_id": ["bg-1"],
        "merged_at": [datetime(2026, 9, 14, 12, 0)], "lines_added": [40], "lines_deleted": [0],
        "ai_session_ids": [[]], "commit_shas": [["bgaaaa", "bgh1"]],
    }).with_columns(pl.col("merged_at").dt.replace_time_zone("UTC"))
    for folder in (before, after):
        change.select(changes.columns).cast(changes.schema).write_parquet(folder / "changes" / "bg.parquet")
        prompts("bg-helper", datetime(2026, 9, 13, 22, 0), 20, None).write_parquet(folder / "invocations" / "bg.parquet")
    prompts("bg-agent", datetime(2026, 9, 14, 9, 0), 45, "bgaaaa").write_parquet(after / "invocations" / "bg-late.parquet")
    def helper_credited_half(con: duckdb.DuckDBPyConnection) -> None:  # 20 of 40 lines, nothing declared yet
        assert con.sql("SELECT credit FROM session_links WHERE change_id = 'bg-change'").fetchall() == [(0.5,)]

    _, incremental_db, full_db = _history_then_new_days(before, after, tmp_path, with_history=helper_credited_half)

    with duckdb.connect(str(full_db), read_only=True) as con:
        assert con.sql("SELECT session_id, credit FROM session_links WHERE change_id = 'bg-change' ORDER BY 1").fetchall() \
            == [("bg-agent", 1.0), ("bg-helper", 0.0)]
    _assert_same_tables(incremental_db, full_db)


def test_a_rerun_without_new_rows_rebuilds_nothing_and_changes_nothing(world: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(world, db, Settings())
    with duckdb.connect(str(db), read_only=True) as con:
        before = {table: _table(con, table) for table in COMPARED_TABLES}
    rerun = run_local(world, db, Settings())
    assert rerun.features.weeks == ()
    with duckdb.connect(str(db), read_only=True) as con:
        for table in COMPARED_TABLES:
            assert _table(con, table).equals(before[table]), table


def test_changed_settings_or_new_people_force_a_full_build(world: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(world, db, Settings())
    changed = Settings()
    changed.config["features"]["tiny_change_lines"] = 20
    assert run_local(world, db, changed).features.reason == "the feature SQL or settings changed since the last build"

    more_people = tmp_path / "input"
    shutil.copytree(world, more_people)
    (more_people / "people.csv").write_text((world / "people.csv").read_text() + "newcomer,team-x,org-x\n")
    build = run_local(more_people, db, changed).features
    assert build.weeks is None and build.reason == "new people rows touch every week"


def test_changed_detector_settings_rescore_every_week(world: Path, tmp_path: Path) -> None:
    # the features are incremental (only the new day's week), but no week keeps scores of the old
    # threshold beside weeks scored with the new one
    before, after = withhold_days(world, tmp_path / "split", {last_day(world)})
    strict = tmp_path / "strict.toml"
    strict.write_text("[detectors.policy]\nagree_z = 3.5\nrule_alone_score = 0.9\n")
    incremental_db, full_db = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    run_local(before, incremental_db, Settings())
    second = run_local(after, incremental_db, Settings.from_file(strict))
    run_local(after, full_db, Settings.from_file(strict))

    assert second.features.weeks == (START + timedelta(weeks=WEEKS - 1),)
    assert second.detect.every_week_because == (
        "the detector settings or code, or the score tables' SQL, changed since the last scoring")
    _assert_same_tables(incremental_db, full_db)
    with duckdb.connect(str(incremental_db), read_only=True) as con, duckdb.connect(str(full_db), read_only=True) as full:
        assert con.sql("SELECT fingerprint FROM detect_state").fetchall() == full.sql("SELECT fingerprint FROM detect_state").fetchall()
    # the same settings again: back to the new weeks only
    assert run_local(after, incremental_db, Settings.from_file(strict)).detect.every_week_because is None


def test_a_verdict_on_an_old_week_recorded_between_runs_equals_a_full_run(world: Path, tmp_path: Path) -> None:
    # the daily run rebuilds the newest week only, yet the flag dismissed in an old week is
    # published dismissed, as a full rebuild with the same verdict publishes it
    before, after = withhold_days(world, tmp_path / "split", {last_day(world)})
    incremental_db, full_db = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    run_local(before, incremental_db, Settings())
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        (flag_id,), = con.sql("SELECT flag_id FROM flags WHERE level = 'user_week' AND week_start < $newest "
                              "ORDER BY score DESC, flag_id LIMIT 1",
                              params={"newest": START + timedelta(weeks=WEEKS - 1)}).fetchall()
    record_verdict(incremental_db, flag_id, "legitimate", now=datetime(2026, 10, 20, 9, 0), note="known load test")
    second = run_local(after, incremental_db, Settings())
    run_local(after, full_db, Settings())
    record_verdict(full_db, flag_id, "legitimate", now=datetime(2026, 10, 20, 9, 0), note="known load test")
    run_local(after, full_db, Settings(), full=True)

    assert second.features.weeks == (START + timedelta(weeks=WEEKS - 1),)
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        assert con.sql("SELECT dismissed, flagged FROM user_week_scores WHERE flag_id = $f",
                       params={"f": flag_id}).fetchall() == [(True, False)]
        assert con.sql("SELECT count(*) FROM flags WHERE flag_id = $f", params={"f": flag_id}).fetchall() == [(0,)]
    _assert_same_tables(incremental_db, full_db)


def test_full_flag_rebuilds_everything(world: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(world, db, Settings())
    assert run_local(world, db, Settings(), full=True).features.weeks is None
    no_incremental = Settings()
    no_incremental.config["run"]["incremental"] = False
    assert run_local(world, db, no_incremental).features.weeks is None



def test_run_ups_reaching_into_weeks_not_rebuilt_equal_a_full_run(tmp_path: Path) -> None:
    # an agentic world (reviews, ramps) with a loose sustained rule so that small worlds have
    # run-ups: the run-up of a flagged week reaches back into weeks the daily run does not rebuild
    world = tmp_path / "agentic"
    generate_agentic_world(world, users=120, weeks=WEEKS, seed=3, start=START, file_format="parquet", intensity=1.0)
    loose = tmp_path / "loose.toml"
    loose.write_text('[detectors.policy]\nrule_alone_score = 0.5\n\n[[detectors.rules]]\n'
                     'name = "sustained_unmerged_work"\nlevel = "user_week"\n'
                     'conditions = [{ feature = "unmerged_token_share", op = ">=", threshold = 0.3 }]\n')
    settings = Settings.from_file(loose)
    before, after = withhold_days(world, tmp_path / "split", {last_day(world)})
    second, incremental_db, full_db = _history_then_new_days(before, after, tmp_path, settings)

    assert second.features.weeks == (START + timedelta(weeks=WEEKS - 1),)
    with duckdb.connect(str(incremental_db), read_only=True) as con:
        run_up_weeks = [row[0] for row in con.sql("SELECT DISTINCT week_start FROM user_week_run_ups").fetchall()]
    assert any(week < START + timedelta(weeks=WEEKS - 1) for week in run_up_weeks)
    _assert_same_tables(incremental_db, full_db, (*COMPARED_TABLES, "user_week_run_ups", "session_run_ups"))
