"""Benchmark harness (issue 7): `python -m bench.run --rows 1M|10M|100M [--keep] [--out bench/results.md]`.

Generates a world under /tmp, then runs every measured step in its own fresh interpreter
(bench/steps.py) and measures it from outside:
  wall s        time.perf_counter around the child, interpreter start and imports included
  peak RSS GiB  the child's own high-water mark (ru_maxrss from os.wait4 on that child alone)
  tree GiB      the sampled peak of the summed RSS of the child and its descendants (Prefect's
                ephemeral API runs as a separate process)
and from inside (the step's JSON): `work s`, the measured work alone, and its phases.

Steps: python start-up and imports (fixed costs), Prefect's ephemeral API (fixed cost, cold on
a new PREFECT_HOME, then warm), world generation (not part of the pipeline), the floor (bare
DuckDB scan-and-aggregate, best of two), the stages load / features / detect each in its own
process on one database file, the whole run through flows.run_local in one process
(stages timed inside it), the same through the Prefect flow `goodhart run` starts, and the
pandas + scikit-learn reference. Results go to a markdown file, one section per world size,
replaced when that size is run again.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from collections.abc import Callable
from typing import Any

from bench.world import SIZES, WorldSize, disk_bytes

ROOT = Path(__file__).resolve().parents[1]
# the pandas reference's own packages (`make bench` installs pandas here, not into the project's
# environment): with pandas importable, pyarrow imports it at its first array, which would charge
# Goodhart's steps about 1 s (1M, `--no-prefect`, A/B on 2026-12-07) for a library it never uses
REFERENCE_PACKAGES = ROOT / ".bench-deps"
DEFAULT_OUT = ROOT / "bench" / "results.md"
GIB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")
SIZE_ORDER = ("1M", "1M-daily", "10M", "10M-daily", "100M")
OPTIONAL_STEPS = ("prefect", "floor", "stages", "end_to_end", "flow", "flow_running_api", "pandas", "incremental")
DEFAULT_SKIPS = {"100M": ("pandas", "flow", "flow_running_api", "incremental"),
                 "10M-daily": ("stages", "pandas", "flow", "flow_running_api"),
                 "1M-daily": ("stages", "pandas", "flow", "flow_running_api")}
RUNNING_API_FLOW = "end to end: goodhart run (Prefect, API already running)"
TARGETS = {  # issue 17, on a 2-core 24 GiB machine, wall clock
    "1M": "`goodhart run` in at most 10 s",
    "10M": "`goodhart run` (Prefect, warm) in at most 40 s and 3 GiB, faster than the pandas reference; "
           "`--no-prefect` in at most 30 s",
    "100M": "out of core within 8 GiB, within 12x of the floor",
}
DAILY_TARGET = "a daily run over one new day takes at most 10% of a full run, with the same results"
RESULTS_HEADER = """# Goodhart benchmark results

Written by `python -m bench.run` (`make bench`); see bench/README.md for what each step measures.
One section per world size, replaced when that size is run again. `wall s` is the step's whole
process (interpreter start and imports included), `CPU s` its user + system time (all cores),
`work s` the measured work inside it (interpreter start and imports excluded). `peak RSS` is the
process's high-water mark; `tree` adds its child processes (sampled every 50 ms). `x floor` is
work s over the floor's work s. The machine may be shared: see the load average of each section.
"""


# --- measuring one child process ----------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Summed resident memory of a process and all its descendants, in bytes (0 once it is gone)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    stack.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


class Sampler(threading.Thread):
    """Samples a process tree's RSS; kills the tree (its own process group) past `limit` bytes of
    memory, or when the disk holding `folder` gets down to `min_free` bytes (DuckDB spills there)."""

    def __init__(self, pid: int, limit: int | None, folder: Path | None = None, min_free: int | None = None,
                 interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.limit, self.interval = pid, limit, interval
        self.folder, self.min_free = folder, min_free
        self.peak = 0
        self.killed: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        ticks = 0
        while not self._halt.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            if self.limit is not None and self.peak > self.limit and not self.killed:
                self.killed = f"memory past --max-rss-gib {self.limit / GIB:g}"
                _kill_group(self.pid, signal.SIGKILL)
            if self.min_free is not None and self.folder is not None and ticks % 20 == 0 and not self.killed:
                stats = os.statvfs(self.folder)
                if stats.f_bavail * stats.f_frsize < self.min_free:
                    self.killed = f"free disk under --min-free-disk-gib {self.min_free / GIB:g}"
                    _kill_group(self.pid, signal.SIGKILL)
            ticks += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _kill_group(pid: int, sig: int) -> None:
    """Signal the process group this harness started the step in (its id is the step's pid)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Step:
    label: str
    kind: str  # fixed | setup | pipeline | reference
    status: str = "ok"  # ok | failed | skipped
    wall_s: float | None = None
    cpu_s: float | None = None  # user + system time of the process and the children it waited for
    others_share: float | None = None  # share of the machine's CPU used by other processes meanwhile
    work_s: float | None = None
    peak_gib: float | None = None
    tree_gib: float | None = None
    note: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)


class Harness:
    def __init__(self, workdir: Path, max_rss: int | None, verbose: bool, min_free_disk: int | None = None) -> None:
        self.workdir = workdir
        self.max_rss = max_rss
        self.min_free_disk = min_free_disk
        self.verbose = verbose
        self.count = 0
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}  # always the ephemeral API
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PREFECT_HOME"] = str(workdir / "prefect-home")  # new: the first Prefect step starts cold
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env["PREFECT_LOGGING_LEVEL"] = "WARNING"
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
        self.env = env

    def run(self, label: str, kind: str, step: str, args: dict[str, Any] | None = None,
            env: dict[str, str] | None = None) -> Step:
        """Run one step in a fresh interpreter and measure it."""
        self.count += 1
        name = f"{self.count:02d}-{step}"
        result_path = self.workdir / "logs" / f"{name}.json"
        log_path = self.workdir / "logs" / f"{name}.log"
        command = [sys.executable, "-m", "bench.steps", step, str(result_path), json.dumps(args or {})]
        print(f"  {label} ...", end="", flush=True)
        with open(log_path, "w") as log:
            busy_before, total_before = cpu_jiffies()
            started = time.perf_counter()
            child = subprocess.Popen(command, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            sampler = Sampler(child.pid, self.max_rss, self.workdir, self.min_free_disk)
            sampler.start()
            try:
                _, status, usage = os.wait4(child.pid, 0)
            except BaseException:  # e.g. Ctrl-C: the step runs in its own session, so stop it too
                sampler.stop()
                _kill_group(child.pid, signal.SIGKILL)
                child.wait()
                raise
            wall = time.perf_counter() - started
            busy_after, total_after = cpu_jiffies()
            sampler.stop()
            child.returncode = os.waitstatus_to_exitcode(status)
        _kill_group(child.pid, signal.SIGTERM)  # anything the step left behind (none expected)
        measured = Step(label, kind, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
                        peak_gib=usage.ru_maxrss * 1024 / GIB, tree_gib=sampler.peak / GIB)
        if total_after > total_before:
            ticks = os.sysconf("SC_CLK_TCK")
            others = (busy_after - busy_before) / ticks - measured.cpu_s
            measured.others_share = max(0.0, others / ((total_after - total_before) / ticks))
        if child.returncode != 0 or not result_path.exists():
            measured.status = "failed"
            why = f"killed: {sampler.killed}" if sampler.killed else f"exit code {child.returncode}"
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            measured.note = f"FAILED ({why}): {tail[0][:160]} (log: {log_path})"
            print(f" {measured.note}")
            return measured
        data = json.loads(result_path.read_text())
        busy = (f"machine busy: other processes used {measured.others_share:.0%} of its CPU meanwhile"
                if measured.others_share is not None and measured.others_share >= 0.15 else "")
        # a step that resets its high-water mark for its phases clears ru_maxrss too: it reports its own
        measured.peak_gib = max(measured.peak_gib, data.get("process_peak_gib", 0.0))
        measured.work_s = data["seconds"]
        measured.note = "; ".join(filter(None, [data.get("note", ""), busy]))
        measured.rows = data.get("rows", {})
        measured.phases = data.get("phases", [])
        measured.totals = data.get("totals", {})
        print(f" {wall:.1f} s wall, {measured.cpu_s:.1f} s CPU, {measured.work_s:.1f} s work, {measured.peak_gib:.2f} GiB")
        if self.verbose:
            for phase in measured.phases:
                print(f"      {'  ' * phase['depth']}{phase['name']}: {phase['seconds']:.2f} s, {phase['peak_gib']:.2f} GiB")
        return measured


# --- the benchmark ------------------------------------------------------------------------


@dataclass
class Outcome:
    size: WorldSize
    steps: list[Step]
    world_rows: dict[str, int]
    world_bytes: int
    world_reused: bool
    started: datetime.datetime
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    db_bytes: int | None
    memory_limit: str | None = None
    note: str | None = None


def skipped(label: str, kind: str, why: str) -> Step:
    print(f"  {label}: skipped ({why})")
    return Step(label, kind, status="skipped", note=f"not run: {why}")


def best_of(runs: list[Step], label: str | None = None) -> Step:
    """The run with the least work among those that succeeded (the first failure if none did)."""
    done = [r for r in runs if r.status == "ok"]
    if not done:
        return runs[0]
    best = min(done, key=lambda r: r.work_s)
    if len(runs) > 1:
        others = ", ".join(f"{r.work_s:.2f}" if r.status == "ok" else r.status for r in runs if r is not best)
        best.note = "; ".join(filter(None, [best.note, f"best of {len(runs)} (others: {others} s work)"]))
    if label:
        best.label = label
    return best


def benchmark(size: WorldSize, harness: Harness, *, world_dir: Path | None, skip: set[str],
              config: str | None, repeat: int = 1, memory_limit: str | None = None) -> Outcome:
    """Every step (each `repeat` times but generation, the best kept; the floor at least twice)."""
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    workdir = harness.workdir
    steps: list[Step] = []
    print(f"Goodhart benchmark, {size.label} ({size.describe()}), work folder {workdir}")

    def measure(label: str, kind: str, step: str, args: dict | None = None, times: int = repeat,
                env: Callable[[int], dict[str, str]] | None = None,
                before: Callable[[], None] | None = None) -> Step:
        runs = []
        for attempt in range(times):
            if before:
                before()
            runs.append(harness.run(label, kind, step, args, env(attempt) if env else None))
        return best_of(runs)

    steps.append(measure("python start-up", "fixed", "python"))
    steps.append(measure("imports", "fixed", "imports"))
    steps.append(measure("numba JIT (pyod members, SimHash, feature functions)", "fixed", "jit"))
    if "prefect" in skip:
        steps.append(skipped("Prefect API start-up", "fixed", "--skip prefect"))
    else:
        # cold: a new PREFECT_HOME each time; warm: the home the first cold run made
        steps.append(measure("Prefect API start-up, cold", "fixed", "prefect",
                             env=lambda i: {"PREFECT_HOME": str(workdir / ("prefect-home" if i == 0 else f"prefect-home-{i}"))}))
        steps.append(measure("Prefect API start-up, warm", "fixed", "prefect"))

    reused = world_dir is not None
    if reused:
        input_dir = world_dir
        steps.append(skipped("generate world", "setup", f"reused {world_dir}"))
        world_rows: dict[str, int] = {}
    else:
        input_dir = workdir / "world"
        world_rows = generate(size, harness, input_dir, steps)
    world_bytes = disk_bytes(input_dir)

    if "floor" in skip:
        steps.append(skipped("floor: DuckDB scan-and-aggregate", "reference", "--skip floor"))
    else:
        floor = measure("floor: DuckDB scan-and-aggregate", "reference", "floor", {"input": str(input_dir)},
                        times=max(2, repeat))
        steps.append(floor)
        if not world_rows and floor.status == "ok":
            world_rows = {k: v for k, v in floor.rows.items() if k in ("token_usage", "invocations", "changes", "deployments")}

    common = {"input": str(input_dir), "config": config, "run_id": "bench-run", "duckdb_memory_limit": memory_limit}
    if "stages" in skip:
        steps.append(skipped("stages one by one", "pipeline", "--skip stages"))
    else:
        # each repetition loads into a new database, then builds features and detects on it
        chains: dict[str, list[Step]] = {"load": [], "features": [], "detect": []}
        db = workdir / "stages" / "goodhart.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(repeat):
            remove_db(db)
            for stage in chains:
                measured = harness.run(f"stage {stage}", "pipeline", stage, {**common, "db": str(db)})
                chains[stage].append(measured)
                if measured.status != "ok":
                    break
        remove_db(db)
        for stage, runs in chains.items():
            steps.append(best_of(runs) if runs else skipped(f"stage {stage}", "pipeline", "the stage before it failed"))

    db_bytes = None
    for step, label in (("end_to_end", "end to end: run_local"), ("flow", "end to end: goodhart run (Prefect)")):
        if step in skip:
            steps.append(skipped(label, "pipeline", f"--skip {step}" if step not in DEFAULT_SKIPS.get(size.label, ())
                                 else f"skipped at {size.label} by default"))
            continue
        db = workdir / step / "goodhart.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        runs = []
        for _ in range(repeat):
            remove_db(db)  # a run on an existing database would skip the files it loaded before
            runs.append(harness.run(label, "pipeline", step, {**common, "db": str(db)}))
            if step == "end_to_end" and db.exists():
                db_bytes = db.stat().st_size
        steps.append(best_of(runs))
        if step == "end_to_end" and "incremental" not in skip and steps[-1].status == "ok":
            steps += incremental(harness, input_dir, workdir, common, db)
        remove_db(db)

    if "flow_running_api" in skip:
        steps.append(skipped(RUNNING_API_FLOW, "pipeline", "--skip flow_running_api"
                             if "flow_running_api" not in DEFAULT_SKIPS.get(size.label, ())
                             else f"skipped at {size.label} by default"))
    else:
        steps.append(flow_on_a_running_api(harness, workdir, common))

    if "pandas" in skip:
        why = ("pandas holds everything in memory: about ten times its 10M peak (7.3 GiB), more than this "
               "machine has" if size.label == "100M" and "pandas" in DEFAULT_SKIPS.get(size.label, ())
               else "--skip pandas")
        steps.append(skipped("pandas + scikit-learn", "reference", why))
    elif not pandas_available():
        steps.append(skipped("pandas + scikit-learn", "reference", "pandas is not installed (`make bench` installs it)"))
    else:
        steps.append(measure("pandas + scikit-learn", "reference", "pandas", {"input": str(input_dir)},
                             env=lambda _: {"PYTHONPATH": reference_pythonpath(harness.env["PYTHONPATH"])}))

    for measured in steps:
        measured.rows.setdefault("token_usage", world_rows.get("token_usage", 0))
    return Outcome(size, steps, world_rows, world_bytes, reused, started, load_before, os.getloadavg(), db_bytes)


def flow_on_a_running_api(harness: Harness, workdir: Path, common: dict) -> Step:
    """`goodhart run` against a Prefect API that is already up, as a platform's scheduled runs find
    one (their `prefect server start`, usually on another machine): the command's Prefect cost
    without starting an API. The API is started and made ready before the measured run, with the
    benchmark's PREFECT_HOME, without the background services (which, on this machine's two cores,
    would compete with the run for CPU as a server elsewhere does not)."""
    from pipeline.ops.prefect_api import TemporaryServer

    saved = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = harness.env["PREFECT_HOME"]
    try:
        server = TemporaryServer(services=False).start()
    finally:
        if saved is None:
            os.environ.pop("PREFECT_HOME")
        else:
            os.environ["PREFECT_HOME"] = saved
    db = workdir / "flow_running_api" / "goodhart.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        url = server.wait_ready()
        remove_db(db)
        return harness.run(RUNNING_API_FLOW, "pipeline", "flow", {**common, "db": str(db)}, env={"PREFECT_API_URL": url})
    finally:
        server.stop()
        remove_db(db)


def incremental(harness: Harness, input_dir: Path, workdir: Path, common: dict, full_db: Path) -> list[Step]:
    """The daily job: a full run over all but the newest day, then an incremental run that adds
    that day; its flags are compared with the full run's over every day (`full_db`)."""
    from data.split import deliver, last_day, unsplittable, withhold_days

    why_not = unsplittable(input_dir)
    if why_not is not None:
        return [skipped("daily run", "pipeline", why_not)]
    split = workdir / "daily"
    shutil.rmtree(split, ignore_errors=True)
    day = last_day(input_dir)
    before, after = withhold_days(input_dir, split, {day})
    db = split / "goodhart.duckdb"
    history = harness.run("history run (all but the newest day)", "pipeline", "end_to_end",
                          {**common, "input": str(before), "db": str(db)})
    if history.status != "ok":
        return [history]
    deliver(after, before)  # the day lands in the folder the history was read from, as an export's would
    daily = harness.run(f"daily run: {day} added, incremental", "pipeline", "end_to_end",
                        {**common, "input": str(before), "db": str(db)})
    if daily.status == "ok":
        same = same_flags(db, full_db)
        daily.note = "; ".join([daily.note, "same flags and scores as the full run over every day" if same
                                else "DIFFERENT flags or scores from the full run over every day"])
        daily.rows["same_as_full"] = int(same)
    shutil.rmtree(split, ignore_errors=True)
    return [history, daily]


def same_flags(left: Path, right: Path) -> bool:
    """Whether two databases hold the same flags and user-week / session decisions."""
    import duckdb

    queries = (
        "SELECT flag_id, severity, detectors FROM flags ORDER BY flag_id",
        "SELECT user_id, week_start, flagged, round(score, 9) FROM user_week_scores ORDER BY user_id, week_start",
        "SELECT session_id, flagged, round(score, 9) FROM session_scores ORDER BY session_id",
    )
    with duckdb.connect(str(left), read_only=True) as a, duckdb.connect(str(right), read_only=True) as b:
        return all(a.sql(q).fetchall() == b.sql(q).fetchall() for q in queries)


def generate(size: WorldSize, harness: Harness, input_dir: Path, steps: list[Step]) -> dict[str, int]:
    """One generate step, or one per shard summed into one row (wall and work add, peaks max)."""
    if size.shards == 1:
        measured = harness.run("generate world", "setup", "generate",
                               {"out": str(input_dir), "users": size.users, "weeks": size.weeks, "seed": size.seed,
                                "start": size.start})
        steps.append(measured)
        return {k: v for k, v in measured.rows.items()}
    shards = []
    for shard in range(size.shards):
        shards.append(harness.run(
            f"generate shard {shard + 1}/{size.shards}", "setup", "generate",
            {"out": str(input_dir), "users": size.users, "weeks": size.weeks, "seed": size.seed + shard, "start": size.start,
             "shard": shard, "scratch": str(harness.workdir / f"shard-{shard:02d}")},
        ))
        if shards[-1].status != "ok":
            steps.append(shards[-1])
            raise SystemExit(f"generation failed: {shards[-1].note}")
    rows: dict[str, int] = {}
    for measured in shards:
        for name, count in measured.rows.items():
            rows[name] = rows.get(name, 0) + count
    steps.append(Step(
        "generate world", "setup",
        wall_s=sum(s.wall_s for s in shards), cpu_s=sum(s.cpu_s for s in shards), work_s=sum(s.work_s for s in shards),
        peak_gib=max(s.peak_gib for s in shards), tree_gib=max(s.tree_gib for s in shards),
        note=f"{size.shards} shards, one process each, re-keyed into one folder", rows=dict(rows),
    ))
    return rows


def remove_db(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        path.unlink(missing_ok=True)


# --- the report ---------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    memory = 0
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
        with open("/proc/meminfo") as fh:
            memory = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemTotal:"))
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} CPUs (nproc), {memory / GIB:.1f} GiB memory, {model}"


def versions() -> str:
    names = ("polars", "duckdb", "pyarrow", "scikit-learn", "pyod", "prefect")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    reference = next(metadata.distributions(name="pandas", path=[str(REFERENCE_PACKAGES)]), None)
    if reference is not None:
        found.append(f"pandas {reference.version} (the reference's, in {REFERENCE_PACKAGES.name})")
    if util.find_spec("pandas") is not None:  # an environment a user made; `make install` leaves none
        found.append(f"pandas {metadata.version('pandas')} importable by Goodhart's steps (pyarrow then imports it "
                     "at its first array: about 1 s of each run at 1M)")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def pandas_available() -> bool:
    """Whether the pandas reference can run: pandas in REFERENCE_PACKAGES or in the environment."""
    return (REFERENCE_PACKAGES / "pandas").is_dir() or util.find_spec("pandas") is not None


def reference_pythonpath(pythonpath: str) -> str:
    """The reference's PYTHONPATH: the steps' own, then REFERENCE_PACKAGES."""
    return os.pathsep.join([pythonpath, str(REFERENCE_PACKAGES)])


def commit() -> str:
    """The code measured: the checkout's commit, or GOODHART_BENCH_SOURCE (e.g. for a `git archive` copy)."""
    if os.environ.get("GOODHART_BENCH_SOURCE"):
        return os.environ["GOODHART_BENCH_SOURCE"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes" if dirty else "")


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _find(steps: list[Step], label: str) -> Step | None:
    return next((s for s in steps if s.label == label and s.status == "ok"), None)


def section(outcome: Outcome) -> str:
    size, steps = outcome.size, outcome.steps
    floor = _find(steps, "floor: DuckDB scan-and-aggregate")
    floor_work = floor.work_s if floor else None
    rows = outcome.world_rows
    token_rows = rows.get("token_usage", 0)
    lines = [
        f"## {size.label} token rows",
        "",
        f"- run: {outcome.started:%Y-%m-%d %H:%M} UTC, {commit()}",
        f"- machine: {machine()}; load average {outcome.load_before[0]:.2f} at start, "
        f"{outcome.load_after[0]:.2f} at end (1 min)",
        f"- software: {versions()}",
        *([f"- DuckDB memory_limit forced to {outcome.memory_limit} on the pipeline's connections (--duckdb-memory-limit)"]
          if outcome.memory_limit else []),
        *([f"- note: {outcome.note}"] if outcome.note else []),
        f"- world: {size.describe()}{' (reused folder)' if outcome.world_reused else ''}: "
        + ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in rows.items())
        + f"; {outcome.world_bytes / 1e6:,.0f} MB of parquet on disk"
        + (f"; database after the run {outcome.db_bytes / 1e6:,.0f} MB" if outcome.db_bytes else ""),
        "",
        "| step | kind | wall s | CPU s | work s | peak RSS GiB | tree GiB | token rows | x floor | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in steps:
        ratio = ""
        if floor_work and s.work_s is not None and s.kind in ("pipeline", "reference") and s is not floor:
            ratio = f"{s.work_s / floor_work:.1f}"
        token = s.rows.get("token_usage") if s.kind in ("setup", "pipeline", "reference") else None
        lines.append(
            f"| {s.label} | {s.kind} | {_num(s.wall_s)} | {_num(s.cpu_s)} | {_num(s.work_s)} | {_num(s.peak_gib)} "
            f"| {_num(s.tree_gib)} "
            f"| {f'{token:,}' if token else ''} | {ratio} | {s.note} |"
        )
    lines += ["", *summary(outcome, floor_work, token_rows), *breakdown(steps)]
    return "\n".join(lines).rstrip() + "\n"


def summary(outcome: Outcome, floor_work: float | None, token_rows: int) -> list[str]:
    steps = outcome.steps
    e2e = _find(steps, "end to end: run_local")
    flow = _find(steps, "end to end: goodhart run (Prefect)")
    imports = _find(steps, "imports")
    jit = _find(steps, "numba JIT (pyod members, SimHash, feature functions)")
    bare = _find(steps, "python start-up")
    cold = _find(steps, "Prefect API start-up, cold")
    warm = _find(steps, "Prefect API start-up, warm")
    floor = _find(steps, "floor: DuckDB scan-and-aggregate")
    floor_wall = floor.wall_s if floor else None
    out = ["Summary:", ""]
    if bare and imports:
        out.append(f"- fixed cost, every run: interpreter {bare.wall_s:.2f} s; imports {imports.work_s:.1f} s "
                   f"({imports.peak_gib:.2f} GiB)"
                   + (f"; numba code's first call (pyod members inside detect, the SimHash kernels inside load, the feature functions inside features) "
                      f"{jit.work_s:.1f} s (compiled once per machine and kept in numba's disk cache: about "
                      "18 s the first time)" if jit else ""))
    if cold and warm:
        out.append(f"- fixed cost with Prefect (`goodhart run` without --no-prefect): ephemeral API start-up and a "
                   f"trivial flow {warm.work_s:.1f} s warm, {cold.work_s:.1f} s on a new PREFECT_HOME; "
                   f"{warm.tree_gib:.2f} GiB with its server process")
    if e2e:
        fixed_inside = jit.work_s if jit else 0.0
        per_row = (f"; {(e2e.work_s - fixed_inside) / token_rows * 1e6:.1f} µs per token row"
                   + (" (the JIT left out)" if jit else "")) if token_rows else ""
        versus = f", {e2e.work_s / floor_work:.1f}x the floor ({floor_work:.2f} s)" if floor_work else ""
        out.append(f"- pipeline end to end (run_local): {e2e.work_s:.1f} s of work{versus}{per_row}; "
                   f"{e2e.wall_s:.1f} s wall with interpreter and imports; peak RSS {e2e.peak_gib:.2f} GiB")
    if flow:
        out.append(f"- `goodhart run` as a Prefect flow: {flow.wall_s:.1f} s wall, peak RSS {flow.peak_gib:.2f} GiB "
                   f"({flow.tree_gib:.2f} GiB with the API server)")
    running = _find(steps, RUNNING_API_FLOW)
    if running:
        out.append(f"- `goodhart run` against a Prefect server already running (a platform's scheduled runs): "
                   f"{running.wall_s:.1f} s wall, peak RSS {running.peak_gib:.2f} GiB (the server not counted)")
    daily = next((s for s in steps if s.label.startswith("daily run:") and s.status == "ok"), None)
    if daily and e2e:
        share = daily.wall_s / e2e.wall_s
        met = share <= 0.10 and daily.rows.get("same_as_full") == 1
        out.append(f"- daily run ({DAILY_TARGET}): {'met' if met else 'NOT met'}: {daily.wall_s:.1f} s wall, "
                   f"{share:.1%} of the full run's {e2e.wall_s:.1f} s ({daily.work_s:.1f} s of work, "
                   f"{daily.work_s / e2e.work_s:.1%}); "
                   + ("same flags and scores" if daily.rows.get("same_as_full") == 1 else "results DIFFER"))
    target = TARGETS.get(outcome.size.label)
    pandas = _find(steps, "pandas + scikit-learn")
    if e2e:
        versus_pandas = f"{e2e.wall_s / pandas.wall_s:.2f}x the pandas reference's wall clock" if pandas else ""
        versus_floor = f"{e2e.wall_s / floor_wall:.1f}x the floor's" if floor_wall else ""
        out.insert(2, f"- **headline: `goodhart run --no-prefect` {e2e.wall_s:.1f} s wall: "
                      + ", ".join(x for x in (versus_pandas, versus_floor) if x)
                      + (f"; `goodhart run` {flow.wall_s:.1f} s" + (f", {flow.wall_s / pandas.wall_s:.2f}x pandas"
                         if pandas else "") if flow else "") + "** (same invocation, same files)")
    if target and e2e:
        if outcome.size.label == "10M":
            met = e2e.wall_s <= 30 and bool(flow) and flow.wall_s <= 40 and flow.tree_gib <= 3 \
                and bool(pandas) and flow.wall_s < pandas.wall_s
            got = f"--no-prefect {e2e.wall_s:.1f} s wall, {e2e.peak_gib:.2f} GiB" + (
                f"; goodhart run {flow.wall_s:.1f} s, {flow.tree_gib:.2f} GiB" if flow else "; goodhart run not measured")
        elif outcome.size.label == "1M":
            met = bool(flow) and flow.wall_s <= 10
            got = (f"goodhart run {flow.wall_s:.1f} s wall" if flow else "goodhart run not measured") + (
                f" ({running.wall_s:.1f} s against a Prefect server already running)" if running else "")
        else:
            ratio = e2e.wall_s / floor_wall if floor_wall else float("inf")
            met = e2e.peak_gib <= 8 and ratio <= 12
            got = f"{e2e.peak_gib:.2f} GiB, {ratio:.1f}x the floor's wall clock"
        out.append(f"- target ({target}): {'met' if met else 'NOT met'}: {got}")
    elif target:
        ran = any(s.label == "end to end: run_local" and s.status != "skipped" for s in steps)
        out.append(f"- target ({target}): not measured (the end-to-end run {'failed' if ran else 'was not run'})")
    return out + [""]


def breakdown(steps: list[Step]) -> list[str]:
    """Where the end-to-end run's time and memory go, stage by stage, with the insides of each; the
    same for the daily run when there is one (its fixed part is what keeps it above 10%)."""
    daily = next((s for s in steps if s.label.startswith("daily run:")), None)
    out: list[str] = []
    for measured, title in ((_find(steps, "end to end: run_local"), "the end-to-end run goes (one process, run_local)"),
                            (daily, "the daily run goes (one process, run_local, the newest day added)")):
        if measured and measured.status == "ok" and measured.phases:
            out += phase_table(measured, title)
    for label in ("imports", "pandas + scikit-learn"):
        measured = _find(steps, label)
        if measured and measured.phases:
            parts = ", ".join(f"{p['name']} {p['seconds']:.2f} s" for p in measured.phases)
            out.append(f"- {label}: {parts}")
    return out


def phase_table(measured: Step, title: str) -> list[str]:
    """One run's stages and their insides (bench.steps.instrument_stages) as a table under
    "### Where `title`"."""
    total = next((p["seconds"] for p in measured.phases if p["name"] == "run_local"), measured.work_s) or 1.0
    out = [f"### Where {title}", "", "| stage / part | s | share | peak RSS GiB |", "|---|---:|---:|---:|"]
    staged = 0.0
    for phase in measured.phases:
        if phase["name"] == "run_local":
            continue
        if phase["depth"] == 1:
            staged += phase["seconds"]
        indent = "&nbsp;&nbsp;" * max(phase["depth"] - 1, 0) + ("· " if phase["depth"] > 1 else "")
        out.append(f"| {indent}{phase['name']} | {phase['seconds']:.2f} | {phase['seconds'] / total:.0%} "
                   f"| {phase['peak_gib']:.2f} |")
    out.append(f"| between the stages (empty-dataset check, closing the run record) | {total - staged:.2f} "
               f"| {(total - staged) / total:.0%} | |")
    for name, seconds in measured.totals.items():
        out.append(f"| (summed over calls) {name} | {seconds:.2f} | {seconds / total:.0%} | |")
    return out + [""]


def write_results(out: Path, text: str, label: str) -> None:
    """Replace (or add) this size's section of the results file, sections in size order."""
    sections: dict[str, str] = {}
    if out.exists():
        body = out.read_text()
        parts = body.split("\n## ")
        for part in parts[1:]:
            key = part.split(" ", 1)[0]
            sections[key] = "## " + part.rstrip() + "\n"
    sections[label] = text
    order = sorted(sections, key=lambda k: (SIZE_ORDER.index(k) if k in SIZE_ORDER else len(SIZE_ORDER), k))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(RESULTS_HEADER + "\n" + "\n".join(sections[k] for k in order))


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", choices=tuple(SIZES), default="1M", help="world size in token rows (default 1M)")
    parser.add_argument("--users", type=int, help="a custom world instead: people per shard")
    parser.add_argument("--weeks", type=int, help="a custom world: weeks (default 8)")
    parser.add_argument("--shards", type=int, help="a custom world: shards (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--world", type=Path, help="reuse this generated world folder instead of generating one")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results file (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--workdir", type=Path, help="where to put the world and databases (default: new folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (world, logs) instead of deleting it")
    defaults = "; ".join(f"{size}: {','.join(steps)}" for size, steps in DEFAULT_SKIPS.items())
    parser.add_argument("--skip", default=None,
                        help=f"comma-separated steps not to run: {', '.join(OPTIONAL_STEPS)} (default: {defaults})")
    parser.add_argument("--config", type=Path, help="a settings TOML for the pipeline steps (goodhart run --config)")
    parser.add_argument("--max-rss-gib", type=float, default=20.0,
                        help="kill a step whose process tree exceeds this (protects a shared machine; default 20)")
    parser.add_argument("--min-free-disk-gib", type=float, default=10.0,
                        help="kill a step when the work folder's disk has less free space than this (DuckDB "
                             "spills there past its memory limit; default 10)")
    parser.add_argument("--duckdb-memory-limit", metavar="SIZE",
                        help="SET memory_limit (e.g. 6GB) on every connection the pipeline steps open, to see "
                             "them run out of core; off by default (the pipeline's own settings)")
    parser.add_argument("--note", help="a line of context for the results section (why steps were skipped, ...)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each step (but generation) this many times and keep the best: steadier figures "
                             "on a shared machine (the floor always runs at least twice)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each step's phases as it ends")
    args = parser.parse_args(argv)
    if args.users is not None or args.weeks is not None or args.shards is not None:
        users, weeks, shards = args.users or 600, args.weeks or 8, args.shards or 1
        label = f"custom-u{users}-w{weeks}" + (f"-k{shards}" if shards > 1 else "")
        args.size = WorldSize(label, users=users, weeks=weeks, shards=shards, seed=args.seed)
    else:
        base = SIZES[args.rows]
        args.size = WorldSize(base.label, base.users, base.weeks, base.shards, args.seed, base.start)
    chosen = DEFAULT_SKIPS.get(args.size.label, ()) if args.skip is None else [s for s in args.skip.split(",") if s]
    unknown = set(chosen) - set(OPTIONAL_STEPS)
    if unknown:
        parser.error(f"unknown step(s) to skip: {', '.join(sorted(unknown))}")
    args.skip_set = set(chosen)
    return args


def main(argv: list[str] | None = None) -> Outcome:
    args = parse_args(argv)
    made = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="goodhart-bench-", dir="/tmp")) if made else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    harness = Harness(workdir, int(args.max_rss_gib * GIB) if args.max_rss_gib else None, args.verbose,
                      int(args.min_free_disk_gib * GIB) if args.min_free_disk_gib else None)
    try:
        outcome = benchmark(args.size, harness, world_dir=args.world, skip=args.skip_set,
                            config=str(args.config.resolve()) if args.config else None, repeat=args.repeat,
                            memory_limit=args.duckdb_memory_limit)
        outcome.memory_limit = args.duckdb_memory_limit
        outcome.note = args.note
        text = section(outcome)
        write_results(args.out, text, args.size.label)
        print()
        print(text)
        print(f"Results written to {args.out}")
    finally:
        if args.keep:
            print(f"Kept {workdir}")
        elif made:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for sub in ("world", "stages", "end_to_end", "flow", "logs", "prefect-home*", "shard-*"):
                for path in workdir.glob(sub):
                    shutil.rmtree(path, ignore_errors=True)
    return outcome


if __name__ == "__main__":
    main()
