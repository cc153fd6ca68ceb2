"""The measured steps. `bench.run` starts each one in its own fresh interpreter:

    python -m bench.steps STEP RESULT_JSON ARGS_JSON

Only the standard library is imported at module level, so whatever a step imports counts in
that step's wall time and memory (measured from outside by bench.run). Inside, a step times its
work alone (`seconds`, time.perf_counter, interpreter start and imports excluded) and, where it
has them, its phases: each with its own peak resident memory, the kernel's high-water mark
(VmHWM) reset at every phase boundary through /proc/self/clear_refs. It writes a JSON object to
RESULT_JSON: seconds, phases [{name, depth, seconds, peak_gib}], rows {name: count}, note.
"""
from __future__ import annotations

import importlib
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GIB = 1024**3


# --- memory and time of phases ------------------------------------------------------------


def status_kib(field: str) -> int:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM), or 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Nested phases, each with its wall time and its own peak RSS.

    A phase's peak covers every interval between peak resets while it is open: before a nested
    phase resets the high-water mark, the mark so far is credited to every open phase.
    """

    def __init__(self) -> None:
        self.overall = self._hwm()  # the process's own peak: a reset also clears what wait4 reports
        self.resettable = reset_peak()
        self.records: list[dict[str, Any]] = []
        self.totals: dict[str, float] = {}
        self._open: list[dict[str, Any]] = []

    def _hwm(self) -> int:
        mark = status_kib("VmHWM") * 1024
        self.overall = max(getattr(self, "overall", 0), mark)
        return mark

    def process_peak(self) -> int:
        """The process's peak RSS since it started, across every reset."""
        return max(self.overall, self._hwm())

    def start(self, name: str) -> None:
        if self.resettable:
            mark = self._hwm()
            for frame in self._open:
                frame["peak"] = max(frame["peak"], mark)
            reset_peak()
        frame = {"name": name, "depth": len(self._open), "peak": 0, "t0": time.perf_counter()}
        self.records.append(frame)
        self._open.append(frame)

    def stop(self, name: str | None = None) -> float:
        frame = self._open.pop()
        if name is not None and frame["name"] != name:
            raise RuntimeError(f"phase {frame['name']!r} closed as {name!r}")
        frame["seconds"] = time.perf_counter() - frame["t0"]
        frame["peak"] = max(frame["peak"], self._hwm())
        for outer in self._open:
            outer["peak"] = max(outer["peak"], frame["peak"])
        return frame["seconds"]

    def unwind(self, name: str) -> None:
        """Close every phase down to `name`, that one included: an error in flight left the phases
        opened inside it open, and must reach the step's log, not a complaint about them."""
        while self._open:
            if self._open[-1]["name"] == name:
                self.stop(name)
                return
            self.stop()

    def phase(self, name: str) -> "_Phase":
        return _Phase(self, name)

    def add(self, name: str, seconds: float) -> None:
        """Time spent in many small calls (e.g. per file), summed rather than one phase each."""
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {"name": r["name"], "depth": r["depth"], "seconds": r.get("seconds"), "peak_gib": r["peak"] / GIB}
            for r in self.records
        ]


class _Phase:
    def __init__(self, meter: Meter, name: str) -> None:
        self.meter, self.name = meter, name

    def __enter__(self) -> "_Phase":
        self.meter.start(self.name)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.meter.unwind(self.name)
            return
        self.meter.stop(self.name)


def wrap(owner: Any, attribute: str, meter: Meter, name: Callable[..., str] | str | None = None,
         *, summed: bool = False, only: Callable[..., bool] | None = None) -> bool:
    """Replace owner.attribute, a public function, by a timed wrapper (a phase, or a summed
    total) of the calls `only` accepts (every call without it); False if absent. Only for the
    insides of a stage (one feature table, file digests): the stages themselves are timed through
    the progress events every run reports (StageTimer)."""
    if attribute.startswith("_"):
        raise ValueError(f"bench times public functions only, not {attribute}")
    original = getattr(owner, attribute, None)
    if original is None or not callable(original):
        return False

    def timed(*args: Any, **kwargs: Any) -> Any:
        if only is not None and not only(*args, **kwargs):
            return original(*args, **kwargs)
        try:
            label = name(*args, **kwargs) if callable(name) else (name or attribute)
        except Exception:  # a changed signature: still time it, under the function's name
            label = attribute
        if summed:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                meter.add(label, time.perf_counter() - started)
        with meter.phase(label):
            return original(*args, **kwargs)

    timed.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, attribute, timed)
    return True


def stage_timer(meter: Meter):
    """A progress reporter (pipeline.progress) that makes each stage a run reports a phase: the
    same events, so the same phases, whether the chain runs plain or as Prefect flows."""
    from pipeline import progress

    class StageTimer(progress.Reporter):
        def stage(self, title: str, total: int | None = None) -> None:
            meter.start(title)

        def done(self, summary: str) -> None:
            meter.stop()

    return progress.reporting(StageTimer())


# --- the insides of the stages --------------------------------------------------------------


def instrument_load(meter: Meter) -> None:
    """The summed time of file digests, and identity reconciliation where the loader has it."""
    import pipeline.ingest.readers as readers_module

    wrap(readers_module, "file_digest", meter, "sha256 of input files", summed=True)
    try:
        import pipeline.ingest.reconcile as reconcile_module
    except ImportError:
        return
    wrap(reconcile_module, "reconcile", meter, "reconcile identities")


def instrument_features(meter: Meter) -> None:
    """Per feature table built (full builds, and the weeks an incremental build rebuilds)."""
    import features.build as build_module

    wrap(build_module, "build_table", meter,
         lambda con, table, **k: f"table {table}" + (" (rebuilt weeks)" if k.get("temporary") else ""))


def instrument_detect(meter: Meter) -> None:
    import flows
    from pipeline.publish import scores

    wrap(scores, "read_partition", meter, "read week partitions", summed=True)
    wrap(flows, "score_level", meter, "score week levels (summed over threads)", summed=True)
    wrap(scores, "publish_scores", meter, "publish scores, flags, views")
    wrap(scores, "summarise", meter, "summarise")
    instrument_publish(meter)


def instrument_publish(meter: Meter) -> None:
    """Per publish model built whole or for its republished weeks (the feature models are timed
    per table by instrument_features: this package's only)."""
    from pipeline import sql_models

    def publishing(package: Any, *args: Any, **kwargs: Any) -> bool:
        return package.name == "pipeline.publish"

    wrap(sql_models.Package, "build", meter, lambda package, con, name, **k: f"model {name}", only=publishing)
    wrap(sql_models.Package, "replace_weeks", meter, lambda package, con, name, *a: f"model {name} (republished weeks)",
         only=publishing)


def instrument_stages(meter: Meter) -> None:
    """The insides of every stage (the stages themselves: stage_timer)."""
    instrument_load(meter)
    instrument_features(meter)
    instrument_detect(meter)


# --- the steps ----------------------------------------------------------------------------


def step_python(args: dict, meter: Meter) -> dict:
    """A bare interpreter: the floor of every other step's start-up."""
    return {"seconds": 0.0}


IMPORTS = ("numpy", "pyarrow", "polars", "duckdb", "scipy", "sklearn.ensemble", "pyod.models.ecod",
           "pipeline.ingest.load", "prefect", "flows")


def step_imports(args: dict, meter: Meter) -> dict:
    """Import what a run imports, one module at a time (each after the ones before it)."""
    started = time.perf_counter()
    for module in IMPORTS:
        with meter.phase(f"import {module}"):
            importlib.import_module(module)
    return {"seconds": time.perf_counter() - started}


def step_prefect(args: dict, meter: Meter) -> dict:
    """A trivial flow, twice: the first run starts Prefect's ephemeral API server."""
    with meter.phase("import prefect"):
        from prefect import flow

    @flow(name="goodhart-bench-noop")
    def noop() -> int:
        return 1

    with meter.phase("first flow run (starts the ephemeral API)"):
        noop()
    with meter.phase("second flow run"):
        noop()
    first, second = (r["seconds"] for r in meter.records[1:3])
    return {"seconds": first, "note": f"first flow run {first:.1f} s (API start-up), second {second:.2f} s"}


JIT_MEMBERS = ("hbos", "ecod", "copod")  # the default pyod ensemble (detectors/default_config.toml)


def step_jit(args: dict, meter: Meter) -> dict:
    """First fit of each pyod ensemble member in a process (HBOS compiles its numba kernels then),
    the loader's first SimHash and the feature SQL's first function calls (their numba kernels).

    Every run pays this once, whatever the size; a second call shows the cost without it. Both
    keep their compiled code in numba's disk cache, so only the first process on a machine
    compiles (HBOS about 3 s, the SimHash kernels about 6 s); later ones load it (about 0.3 s).
    """
    with meter.phase("import pyod members"):
        import numpy as np

        from detectors.ensemble import PYOD_MEMBERS, _member_class

        classes = {name: _member_class(name) for name in JIT_MEMBERS if name in PYOD_MEMBERS}
    matrix = np.random.default_rng(0).random((200, 18))
    first = second = 0.0
    for name, cls in classes.items():
        with meter.phase(f"{name} first fit"):
            cls().fit(matrix).decision_function(matrix)
        first += meter.records[-1]["seconds"]
        with meter.phase(f"{name} second fit"):
            cls().fit(matrix).decision_function(matrix)
        second += meter.records[-1]["seconds"]
    # the loader's SimHash kernels (pipeline.ingest.simhash_kernels), cached the same way
    from pipeline.ingest.fingerprint import simhash64

    texts = ["Explain this code again (attempt 37)", "fix the failing test", None]
    with meter.phase("simhash first call"):
        simhash64(texts, key=b"k" * 32)
    first += meter.records[-1]["seconds"]
    with meter.phase("simhash second call"):
        simhash64(texts, key=b"k" * 32)
    second += meter.records[-1]["seconds"]
    # the feature SQL's functions (features.kernels), cached the same way
    import pyarrow as pa

    from features.sql_functions import near_earlier, peak_window_sum

    lists = pa.array([[5, 1, 9], [3]], pa.list_(pa.int64()))

    def feature_functions() -> None:
        near_earlier(lists, lists, pa.array([6, 6], pa.int32()))
        peak_window_sum(lists, lists, pa.array([4, 4], pa.int64()))

    with meter.phase("feature functions first call"):
        feature_functions()
    first += meter.records[-1]["seconds"]
    with meter.phase("feature functions second call"):
        feature_functions()
    second += meter.records[-1]["seconds"]
    parts = ", ".join(f"{r['name']} {r['seconds']:.2f} s" for r in meter.records[1:])
    return {"seconds": first - second, "note": f"first calls minus second calls; {parts}"}


def step_generate(args: dict, meter: Meter) -> dict:
    """One world (or one shard of a sharded world, re-keyed into the shared folder)."""
    import datetime

    from bench import world
    from data.generate import generate_world

    target = Path(args["out"]) if args.get("shard") is None else Path(args["scratch"])
    started = time.perf_counter()
    with meter.phase("generate_world"):
        summary = generate_world(target, users=args["users"], weeks=args["weeks"], seed=args["seed"],
                                 start=datetime.date.fromisoformat(args.get("start", "2026-09-07")))
    rows = dict(summary.rows)
    if args.get("shard") is not None:
        with meter.phase("re-key shard into the world"):
            world.merge_shard(target, Path(args["out"]), args["shard"])
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _settings(args: dict):
    """Default settings, or a TOML file merged over them (bench.run --config); with
    --duckdb-memory-limit, that DuckDB memory limit instead of the configured one."""
    from pipeline.settings import Settings

    settings = Settings.from_file(Path(args["config"]) if args.get("config") else None)
    if args.get("duckdb_memory_limit"):
        settings.config["engine"]["duckdb_memory_limit"] = args["duckdb_memory_limit"]
    return settings


def step_load(args: dict, meter: Meter) -> dict:
    """begin + load on a fresh database file (no run lock, no private copy)."""
    import datetime

    import flows

    settings = flows.with_detector_defaults(_settings(args))
    instrument_load(meter)
    now = datetime.datetime.now(datetime.UTC)
    db, input_dir = Path(args["db"]), Path(args["input"])
    started = time.perf_counter()
    with meter.phase("begin"):
        flows.begin(db, args["run_id"], now, input_dir, settings)
    with meter.phase("load"):
        summary = flows.PlainSteps().load(db, input_dir, args["run_id"], settings, now)
    seconds = time.perf_counter() - started
    rows = {name: d.rows_loaded for name, d in summary.datasets.items()}
    rejected = sum(d.rows_rejected for d in summary.datasets.values())
    return {"seconds": seconds, "rows": rows, "note": f"{sum(rows.values()):,} rows loaded, {rejected:,} rejected"}


def step_features(args: dict, meter: Meter) -> dict:
    import flows

    settings = flows.with_detector_defaults(_settings(args))
    instrument_features(meter)
    started = time.perf_counter()
    rows = flows.PlainSteps().features(Path(args["db"]), settings, False).rows
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows,
            "note": f"{rows.get('sessions', 0):,} sessions, {rows.get('user_week_features', 0):,} user-weeks, "
                    f"{rows.get('session_links', 0):,} links"}


def step_detect(args: dict, meter: Meter) -> dict:
    import flows

    settings = flows.with_detector_defaults(_settings(args))
    instrument_detect(meter)
    started = time.perf_counter()
    with meter.phase("detect"):
        summary = flows.PlainSteps().detect(Path(args["db"]), args["run_id"], settings, None)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": {"user_weeks": summary.user_weeks, "sessions": summary.sessions},
            "note": _flagged(summary)}


def _flagged(detect: Any) -> str:
    """How many user-weeks and sessions a detect summary flagged."""
    return (f"{detect.user_weeks_flagged:,} of {detect.user_weeks:,} user-weeks and "
            f"{detect.sessions_flagged:,} of {detect.sessions:,} sessions flagged")


def _run_result(result: Any, seconds: float) -> dict:
    rows = {f"loaded {name}": d.rows_loaded for name, d in result.load.datasets.items()}
    rows.update({f"table {name}": count for name, count in result.feature_rows.items()})
    built = result.features
    rebuilt = ("every week" if built.weeks is None
               else f"{len(built.weeks)} week(s) rebuilt ({', '.join(str(w) for w in built.weeks)})")
    return {"seconds": seconds, "rows": rows, "note": f"{rebuilt}; {_flagged(result.detect)}"}


def step_end_to_end(args: dict, meter: Meter) -> dict:
    """flows.run_local in one process: lock, private copy, every stage, atomic publish."""
    import flows

    settings = _settings(args)
    instrument_stages(meter)
    started = time.perf_counter()
    with meter.phase("run_local"), stage_timer(meter):
        result = flows.run_local(Path(args["input"]), Path(args["db"]), settings)
    return _run_result(result, time.perf_counter() - started)


def step_flow(args: dict, meter: Meter) -> dict:
    """`goodhart run` as a user runs it (a Prefect flow): the command's own path, `pipeline.cli.run_detection`,
    which starts the temporary Prefect API (or uses PREFECT_API_URL) while it imports the flows,
    runs detection_flow, and stops the API when the process exits (inside this step's wall time)."""
    from pipeline import cli

    config = args.get("config")
    if args.get("duckdb_memory_limit"):
        if config:
            raise ValueError("the flow step takes --config or --duckdb-memory-limit, not both")
        config = str(Path(args["db"]).with_suffix(".bench.toml"))
        Path(config).write_text(f'[engine]\nduckdb_memory_limit = "{args["duckdb_memory_limit"]}"\n')
    instrument_stages(meter)
    started = time.perf_counter()
    with meter.phase("goodhart run"):
        result = cli.run_detection(Path(args["input"]), Path(args["db"]), Path(config) if config else None, use_prefect=True)
    return _run_result(result, time.perf_counter() - started)


def step_floor(args: dict, meter: Meter) -> dict:
    from bench import floor

    with meter.phase("import duckdb"):
        import duckdb  # noqa: F401
    started = time.perf_counter()
    with meter.phase("scan and aggregate"):
        rows = floor.run(Path(args["input"]))
    return {"seconds": time.perf_counter() - started, "rows": rows,
            "note": f"{rows['user_weeks']:,} user-weeks from {rows['input_rows']:,} input rows"}


def step_pandas(args: dict, meter: Meter) -> dict:
    from bench import pandas_reference

    with meter.phase("import pandas, sklearn"):
        import pandas  # noqa: F401
        import sklearn.ensemble  # noqa: F401
    started = time.perf_counter()
    rows = pandas_reference.run(Path(args["input"]), meter)
    return {"seconds": time.perf_counter() - started, "rows": rows,
            "note": f"{rows['user_weeks']:,} user-weeks, {rows['sessions']:,} sessions, {rows['links']:,} links"}


STEPS: dict[str, Callable[[dict, Meter], dict]] = {
    "python": step_python,
    "imports": step_imports,
    "prefect": step_prefect,
    "jit": step_jit,
    "generate": step_generate,
    "load": step_load,
    "features": step_features,
    "detect": step_detect,
    "end_to_end": step_end_to_end,
    "flow": step_flow,
    "floor": step_floor,
    "pandas": step_pandas,
}


def main(argv: list[str]) -> None:
    step, result_path, raw_args = argv
    meter = Meter()
    result = STEPS[step](json.loads(raw_args), meter)
    result.setdefault("rows", {})
    result.setdefault("note", "")
    result["phases"] = meter.as_json()
    result["totals"] = meter.totals
    result["phase_peaks_exact"] = meter.resettable
    # Resetting the high-water mark also resets the ru_maxrss the parent gets from wait4, so the
    # process reports its true peak itself (the parent keeps the larger of the two).
    result["process_peak_gib"] = meter.process_peak() / GIB
    Path(result_path).write_text(json.dumps(result, indent=1, default=str))


# steps that stand for the goodhart run command end as it does (cli.entry: no module teardown)
ENDS_AS_THE_COMMAND = ("end_to_end", "flow")

if __name__ == "__main__":
    if sys.argv[1] in ENDS_AS_THE_COMMAND:
        from pipeline.cli import entry

        entry(lambda: main(sys.argv[1:]))
    else:
        main(sys.argv[1:])
