"""`goodhart`: the command line, the face that starts the flows."""
from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.settings import Settings

EXIT_INTERNAL = 1     # a bug or a failing machine (the traceback with -v)
EXIT_USAGE = 2        # an unusable argument, input folder or configuration
EXIT_BUSY = 3         # another run, or another writer, holds the database
EXIT_INTERRUPTED = 130


def _existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {value}")
    return path


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return number


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (usage stays available under --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="goodhart",
        description="Catch gamed AI-usage metrics: link AI sessions to shipped work and flag usage that produced nothing.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's and the pipeline's info logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="load, link, build features, detect and publish into a DuckDB file")
    run.add_argument("--input", required=True, type=_existing_dir, metavar="DIR", help="input folder in the contract's formats")
    run.add_argument("--db", required=True, type=Path, metavar="FILE", help="DuckDB file to create or update")
    run.add_argument("--config", type=_existing_file, metavar="FILE", help="TOML merged over the default settings")
    run.add_argument("--no-prefect", action="store_true", help="run the same stages without Prefect (no API server)")
    run.add_argument("--wait", action="store_true", help="wait for a running run on the same database instead of exiting")
    run.add_argument("--report-dir", type=Path, metavar="DIR", help="also write the finance report there")
    run.add_argument("--full", action="store_true", help="rebuild every week, not only those new rows change")
    run.add_argument("--allow-empty", action="store_true",
                     help="score even when a required dataset loaded no rows (by default the run stops after its load, exit 2)")

    generate = commands.add_parser("generate", help="write a sample world (contract input folder + labels/)")
    generate.add_argument("out", type=Path, metavar="OUT", help="folder to write")
    generate.add_argument("--users", type=_positive_int, default=200)
    generate.add_argument("--weeks", type=_positive_int, default=8)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet", dest="file_format")
    generate.add_argument("--style", choices=("chat", "agentic"), default="chat",
                          help="chat-style assistant use, or 2026 agent sessions calibrated to published traces (docs/worlds.md)")
    generate.add_argument("--intensity", type=float, default=1.0,
                          help="how hard gamers game, agentic worlds only (0.25, 0.5, 1.0 for a curve; default 1.0)")
    generate.add_argument("--vendor", action="store_true",
                          help="write the agentic world as the vendors export it: sources/ and people.csv (docs/sources.md)")
    generate.add_argument("--without", default="", metavar="COLUMNS",
                          help="optional columns left out, comma-separated, as sources not reporting them (docs/worlds.md)")
    generate.add_argument("--habit", action="append", default=[], metavar="NAME=VALUE",
                          help="agentic worlds: draw with one of data/agentic.py's habits changed, e.g. APPROVAL_SHARE=0.4 "
                               "(repeatable; a stress world, docs/worlds.md)")

    demo = commands.add_parser("demo", help="generate a sample world and run the whole pipeline on it")
    demo.add_argument("--dir", type=Path, default=Path("demo"), metavar="DIR", help="where to put the world and database")
    demo.add_argument("--users", type=_positive_int, default=200)
    demo.add_argument("--weeks", type=_positive_int, default=8)
    demo.add_argument("--seed", type=int, default=7)

    evaluate = commands.add_parser("evaluate", help="score a run of a generated world against its labels and two baselines")
    evaluate.add_argument("--input", required=True, type=_existing_dir, metavar="DIR", help="a generated world (with labels/)")
    evaluate.add_argument("--db", required=True, type=Path, metavar="FILE", help="its database; the run is made first if FILE does not exist")
    evaluate.add_argument("--config", type=_existing_file, metavar="FILE", help="settings for that first run")
    evaluate.add_argument("--k", type=_positive_int, default=50, help="k of the fixed precision-at-k (default 50)")

    curve = commands.add_parser("curve", help="detection over gaming intensity (0.25, 0.5, 1.0) on generated agentic worlds")
    curve.add_argument("out", type=Path, metavar="OUT", help="folder for the worlds and their databases")
    curve.add_argument("--users", type=_positive_int, default=600)
    curve.add_argument("--weeks", type=_positive_int, default=8)
    curve.add_argument("--seed", type=int, default=101, help="an evaluation seed (data/seeds.py), never a tuning one")
    curve.add_argument("--config", type=_existing_file, metavar="FILE", help="settings for the runs")

    report = commands.add_parser("report", help="write the finance report (HTML, CSV, FOCUS export) of a run")
    report.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    report.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the report into")
    report.add_argument("--min-team-size", type=_positive_int, default=5,
                        help="teams with fewer people are merged into 'other' (default 5)")
    report.add_argument("--include-people", action="store_true", help="name individuals (off by default)")

    label = commands.add_parser("label", help="record an analyst's verdict on a flag (kept by later runs)")
    label.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    label.add_argument("--flag", required=True, metavar="FLAG_ID", help="flags.flag_id, e.g. user_week:u0042:2026-10-05")
    label.add_argument("--verdict", required=True, choices=("confirmed", "legitimate", "unsure"))
    label.add_argument("--note", help="why, in a few words")
    label.add_argument("--analyst", help="who judged it")

    purge = commands.add_parser("purge", help="delete raw usage before a date and its derived rows (recorded in purges)")
    purge.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    purge.add_argument("--before", required=True, type=_iso_date, metavar="DATE", help="YYYY-MM-DD (UTC midnight)")
    purge.add_argument("--wait", action="store_true", help="wait for a running run instead of exiting")

    rekey = commands.add_parser(
        "rekey", help="make the installation's fingerprint key the database's, after rotating it (docs/security.md)")
    rekey.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    rekey.add_argument("--config", type=_existing_file, metavar="FILE", help="the settings naming the key's file or block")
    rekey.add_argument("--wait", action="store_true", help="wait for a running run instead of exiting")

    serve = commands.add_parser("serve", help="serve the detection flow as a Prefect deployment on a cron schedule")
    serve.add_argument("--input", required=True, type=_existing_dir, metavar="DIR")
    serve.add_argument("--db", required=True, type=Path, metavar="FILE")
    serve.add_argument("--config", type=_existing_file, metavar="FILE")
    serve.add_argument("--cron", default=None, help="cron expression (default: daily at 06:00 UTC)")
    serve.add_argument("--report-dir", type=Path, metavar="DIR", help="also write the finance report there after each run")

    board = commands.add_parser("leaderboard", help="AI-assisted shipped work per team (or person), the honest leaderboard")
    board.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    board.add_argument("--weeks", type=_positive_int, default=4, help="the last N weeks of the run (default 4)")
    board.add_argument("--by", choices=("team", "person"), default="team",
                       help="rank teams (default) or people (names individuals: only on request)")
    board.add_argument("--top", type=_positive_int, default=20, help="show the first N (default 20)")

    explain = commands.add_parser("explain", help="write a flag's case file: one self-contained HTML page telling its story")
    explain.add_argument("flag", metavar="FLAG_ID", help="flags.flag_id, e.g. user_week:u0042:2026-10-05 or session:s-1")
    explain.add_argument("--db", required=True, type=_existing_file, metavar="FILE")
    explain.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the case file into")

    sql = commands.add_parser("sql", help="a read-only SQL session on a published database (or one query, printed whole)")
    sql.add_argument("db", type=Path, metavar="FILE", help="a database written by goodhart run")
    sql.add_argument("query", nargs="?", metavar="QUERY", help="run this one query and exit (default: an interactive session)")
    return parser


def main(argv: Sequence[str] | None = None, *, on_stage: Callable[[str], None] | None = None) -> None:
    """The `goodhart` command; `on_stage(name)` is called as each stage of `run --no-prefect` starts (tests)."""
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    handlers = {"run": cmd_run, "generate": cmd_generate, "demo": cmd_demo, "evaluate": cmd_evaluate,
                "report": cmd_report, "label": cmd_label, "purge": cmd_purge, "serve": cmd_serve, "sql": cmd_sql,
                "curve": cmd_curve, "explain": cmd_explain, "leaderboard": cmd_leaderboard, "rekey": cmd_rekey}
    args.on_stage = on_stage
    from pipeline.ops.workspace import RunInProgressError

    try:
        if getattr(args, "db", None) is not None:
            _check_db_path(args.db)
        handlers[args.command](args)
    except UsageError as error:
        _exit_one_line(EXIT_USAGE, f"goodhart: error: {error}")
    except RunInProgressError as error:
        _exit_one_line(EXIT_BUSY, f"goodhart: {error}")
    except KeyboardInterrupt:
        _exit_one_line(EXIT_INTERRUPTED, "goodhart: interrupted; nothing was published")
    except Exception as error:  # a bug, or the machine failing: one line unless asked for the traceback
        if args.verbose:
            raise
        _exit_one_line(EXIT_INTERNAL, f"goodhart: internal error: {type(error).__name__}: {error} (rerun with -v for the traceback)")


def entry(command: Callable[[], object] = main) -> None:
    """The installed `goodhart` command (and `python -m pipeline.cli`): `command` (`main`, reading
    sys.argv), then the process ends as soon as every exit handler has run (the temporary Prefect
    server stopped, output flushed), without tearing down the imported modules one by one, which
    takes about 1 s after a run (Prefect, scikit-learn and pyod loaded). Nothing is lost: every
    database connection is closed in its `with` block before main returns. Only for a process's
    whole life (the benchmark's goodhart-run steps end this way too), never in `main`: a process
    that calls main (a test run) ends its own way."""
    outcome = {"code": EXIT_INTERNAL}  # an exception escaping main (with -v, its traceback) ends with 1
    atexit.register(_end_process, outcome)  # registered first, so it runs after every other handler
    try:
        command()
        outcome["code"] = 0
    except SystemExit as stop:
        outcome["code"] = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else EXIT_INTERNAL
        raise


def _end_process(outcome: dict[str, int]) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there
            pass
    os._exit(outcome["code"])


def _exit_one_line(code: int, message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr, flush=True)
    sys.exit(code)


def _quiet_libraries(verbose: bool) -> None:
    """Prefect and Dask read their logging settings from the environment at import: by default only
    our own lines reach the terminal (Prefect still sends its logs to its API, for the UI); -v shows
    everything. Set before any import of theirs, so served flow runs inherit it too."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # the local Dask cluster's start and stop
    # a temporary API server would otherwise report to Prefect's telemetry endpoint and log the failure offline
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _check_db_path(db: Path) -> None:
    """DuckDB reads a `?` in a database path as the start of options and a backslash as a separator;
    an existing file must be a DuckDB database (a run would otherwise fail, or replace it)."""
    bad = [c for c in "?\\" if c in str(db)]
    if bad:
        raise UsageError(f"--db path must not contain {' or '.join(repr(c) for c in bad)} (DuckDB cannot open it): {db}")
    from pipeline.storage import is_database_file

    if db.is_file() and not is_database_file(db):
        raise UsageError(f"--db is a file that is not a DuckDB database (empty, or another format): {db}")


def _preflight(input_dir: Path, db: Path, config: Path | None, *, wait: bool):
    """Every check that needs no run, made before anything starts (Prefect included), so that a
    usage error is one line within a second: the settings, the input folder's required datasets,
    the database path, whether another run or writer holds the database, and the fingerprint key."""
    from pipeline.ingest import fingerprint_key
    from pipeline.ops import permissions
    from pipeline.ingest.load import check_input_dir
    from pipeline.settings import Settings
    from pipeline.ops.workspace import refuse_if_writer, run_lock

    settings = Settings.from_file(config)
    if db.exists() and db.is_dir():
        raise UsageError(f"--db must be a file, not a directory: {db}")
    check_input_dir(input_dir)
    if not wait and db.parent.is_dir():
        with run_lock(db, modes=permissions.for_group(settings.group_readable)):
            pass
    refuse_if_writer(db)
    fingerprint_key.preflight(db, settings)
    return settings


def run_detection(input_dir: Path, db: Path, config: Path | None, *, use_prefect: bool, wait: bool = False,
                  report_dir: Path | None = None, on_stage: Callable[[str], None] | None = None, full: bool = False,
                  allow_empty: bool = False):
    """What `goodhart run` does before it prints: the checks, then the detection flow (under a
    Prefect API when `use_prefect`: PREFECT_API_URL's, or a temporary one started while the flows
    import), with progress on stderr. Returns the flow's RunResult; a usage error raises UsageError."""
    from pipeline import progress
    from pipeline.ops.prefect_api import api_server, use_api

    server = api_server(services=False) if use_prefect else None  # starts now, overlapping the checks
    settings = _preflight(input_dir, db, config, wait=wait)
    with progress.reporting(progress.for_stream(sys.stderr)) as report:
        if use_prefect:
            preload = settings if server is not None else None
            with use_api(server, report=report, while_starting=lambda: _import_flow_jobs(preload)):
                import flows

                return flows.detection_flow(str(input_dir), str(db), str(config) if config else None,
                                            str(report_dir) if report_dir else None, full=full,
                                            allow_empty=allow_empty, wait=wait)
        import flows

        return flows.run_local(input_dir, db, settings, wait=wait, full=full, allow_empty=allow_empty,
                               on_stage=on_stage, report_dir=report_dir)


def cmd_run(args: argparse.Namespace) -> None:
    result = run_detection(args.input, args.db, args.config, use_prefect=not args.no_prefect, wait=args.wait,
                           report_dir=args.report_dir, on_stage=args.on_stage, full=args.full,
                           allow_empty=args.allow_empty)
    _print_result(result)


def _print_result(result) -> None:
    from pipeline.publish.scores import through_week

    load = result.load
    given = sum(d.rows_given for d in load.datasets.values())
    rejected = sum(d.rows_rejected for d in load.datasets.values())
    d = result.detect
    print(f"run {result.run_id} -> {result.db_path}")
    print(f"  rows: {given:,} given, {given - rejected:,} loaded, {rejected:,} rejected (see rejected_rows)")
    built = result.features
    if built.weeks is None:
        print(f"  features: full rebuild ({built.reason})")
    else:
        weeks = ", ".join(str(week) for week in built.weeks) or "none"
        print(f"  features: incremental, weeks rebuilt and rescored: {weeks}")
    print(f"  user-weeks: {d.user_weeks:,} scored, {d.user_weeks_flagged:,} flagged")
    print(f"  sessions:   {d.sessions:,} scored, {d.sessions_flagged:,} flagged{through_week(d)}")
    print(f"  wasted cost: ${d.wasted_cost_usd:,.2f}")


def cmd_generate(args: argparse.Namespace) -> None:
    if args.vendor:
        return _generate_vendor_world(args)
    summary = _draw_world(args, args.out, file_format=args.file_format,
                          without=[name for name in args.without.replace(" ", "").split(",") if name])
    print(f"wrote {summary.out_dir}: " + ", ".join(f"{name} {count:,}" for name, count in summary.rows.items()))
    print(f"  labels: {summary.gaming_user_weeks:,} gaming of {summary.user_weeks:,} user-weeks in {summary.out_dir / 'labels'}")


def _draw_world(args: argparse.Namespace, out: Path, **options: Any) -> Any:
    """The world `generate` asks for, drawn into `out` (with its --habit changes, data/stress.py)."""
    from data.stress import generate_stressed_world, parse_habit

    try:
        changed = dict(parse_habit(text) for text in args.habit)
        return generate_stressed_world(out, changed, users=args.users, weeks=args.weeks, seed=args.seed,
                                       style=args.style, intensity=args.intensity, **options)
    except ValueError as error:  # a bad habit, an intensity out of range or given to a chat world, an unknown column
        raise UsageError(str(error)) from None


def _generate_vendor_world(args: argparse.Namespace) -> None:
    """An agentic world written as vendor exports (data/vendor_export.py); its contract form is not kept."""
    import tempfile

    from data.vendor_export import export_vendor_world

    if args.style != "agentic" or args.file_format != "parquet" or args.without:
        raise UsageError("--vendor writes agentic worlds: add --style agentic (and no --format or --without)")
    with tempfile.TemporaryDirectory() as world:
        _draw_world(args, Path(world))
        export = export_vendor_world(Path(world), args.out)
    files = ", ".join(f"{source} {len(paths)}" for source, paths in export.files.items())
    print(f"wrote {export.out_dir}: people.csv, sources/ ({files} files), labels/, vendor_ids/")


def cmd_demo(args: argparse.Namespace) -> None:
    from data.generate import generate_world

    world = args.dir / "input"
    db = args.dir / "goodhart.duckdb"
    print(f"generating a sample world of {args.users} people over {args.weeks} weeks in {world} ...")
    generate_world(world, users=args.users, weeks=args.weeks, seed=args.seed)
    report_dir = args.dir / "report"
    print("running the detection flow ...")
    result = run_detection(world, db, None, use_prefect=True, report_dir=report_dir)
    _print_result(result)
    print("\nResults are in", db, "and the finance report in", report_dir / "report.html")
    print("Try:")
    command = sys.argv[0] if Path(sys.argv[0]).name == "goodhart" else "goodhart"  # .venv/bin/goodhart under make
    print(f"  {command} sql {db} "
          "\"SELECT flag_id, round(score, 2) AS score, severity, reasons FROM flagged_user_weeks LIMIT 10\"")
    print(f"or any DuckDB client from 1.4 on, e.g.: duckdb -readonly {db}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from flows import evaluate_run
    from pipeline.ops.evaluate import markdown_table
    from pipeline.ops.verdicts import verdict_precision

    has_labels = (args.input / "labels").is_dir()
    if not args.db.exists():
        if not has_labels:
            raise UsageError(f"no ground truth in {args.input / 'labels'} and no database {args.db} with verdicts")
        _print_result(run_detection(args.input, args.db, args.config, use_prefect=False))
    if has_labels:
        for level, table in evaluate_run(args.db, args.input, fixed_k=args.k).items():
            print(f"\n{level.replace('_', '-')} level\n")
            print(markdown_table(table))
    judged = verdict_precision(args.db)
    precision = "n/a" if judged.precision is None else f"{judged.precision:.3f}"
    print(f"\nanalysts' verdicts: {judged.judged} flags judged, {judged.confirmed} confirmed, "
          f"{judged.legitimate} legitimate, {judged.unsure} unsure; precision {precision}")


def cmd_curve(args: argparse.Namespace) -> None:
    from flows import intensity_curve
    from pipeline.ops.evaluate import markdown_table
    from pipeline.settings import Settings

    settings = Settings.from_file(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    table = intensity_curve(args.out, users=args.users, weeks=args.weeks, seed=args.seed, settings=settings)
    print(f"user-week level, agentic worlds of {args.users} people over {args.weeks} weeks, seed {args.seed}, "
          "by gaming intensity\n")
    print(markdown_table(table))


def cmd_report(args: argparse.Namespace) -> None:
    from pipeline.publish.report import ReportError, write_report

    try:
        summary = write_report(args.db, args.out, min_team_size=args.min_team_size, include_people=args.include_people)
    except ReportError as error:
        raise UsageError(str(error)) from error
    share = summary.wasted_cost_usd / summary.total_cost_usd if summary.total_cost_usd else 0.0
    print(f"wrote {summary.out_dir / 'report.html'} and {len(summary.files) - 1} more files")
    print(f"  AI spend ${summary.total_cost_usd:,.2f}, wasted ${summary.wasted_cost_usd:,.2f} ({share:.1%}) "
          f"over {summary.weeks} weeks and {summary.teams} teams")


def cmd_purge(args: argparse.Namespace) -> None:
    from flows import purge
    from pipeline.ops.runs import utc_now

    summary = purge(args.db, args.before, now=utc_now(), wait=args.wait)
    deleted = ", ".join(f"{table} {rows:,}" for table, rows in summary.rows_deleted.items())
    print(f"purged usage before {args.before} from {args.db}: {deleted} (recorded as {summary.purge_id})")


def cmd_rekey(args: argparse.Namespace) -> None:
    from pipeline.ingest.fingerprint_key import adopt_key
    from pipeline.ops.runs import utc_now
    from pipeline.settings import Settings

    print(adopt_key(args.db, Settings.from_file(args.config), now=utc_now(), wait=args.wait))


def cmd_label(args: argparse.Namespace) -> None:
    from pipeline.ops.runs import utc_now
    from pipeline.ops.verdicts import record_verdict

    record_verdict(args.db, args.flag, args.verdict, now=utc_now(), note=args.note, analyst=args.analyst)
    print(f"recorded: {args.flag} is {args.verdict}")


def cmd_serve(args: argparse.Namespace) -> None:
    from pipeline import progress
    from pipeline.ops.prefect_api import api_server, use_api

    server = api_server(services=True)
    _preflight(args.input, args.db, args.config, wait=True)
    with progress.reporting(progress.PlainReporter(sys.stdout)) as report, \
            use_api(server, report=report, while_starting=_import_flow_jobs):
        import flows

        flows.serve(str(args.input), str(args.db), str(args.config) if args.config else None,
                    cron=args.cron or flows.DEFAULT_CRON, report_dir=str(args.report_dir) if args.report_dir else None)


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from pipeline.publish.leaderboard import LeaderboardError, format_leaderboard, leaderboard

    try:
        frame = leaderboard(args.db, weeks=args.weeks, by=args.by, top=args.top)
    except LeaderboardError as error:
        raise UsageError(str(error)) from None
    print(format_leaderboard(frame, args.by))


def cmd_explain(args: argparse.Namespace) -> None:
    from pipeline.publish.case_file import write_case_file

    print(f"wrote {write_case_file(args.db, args.flag, args.out)}")


def cmd_sql(args: argparse.Namespace) -> None:
    from pipeline.ops.sql_session import sql_session

    if code := sql_session(args.db, args.query):
        sys.exit(code)


def _import_flow_jobs(models_for: Settings | None = None) -> None:
    """Import the flows (and Prefect); given a run's settings, the libraries of its models too: while
    a temporary Prefect server starts this process would otherwise wait, and imported then they do
    not compete with the load for the cores (as the run's own background import does)."""
    import flows

    flows.prefect_jobs()
    if models_for is not None:
        flows.preload_model_libraries(models_for)


if __name__ == "__main__":
    entry()
