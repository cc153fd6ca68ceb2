"""The benchmark harness at a tiny size: every measured step runs and the results file has its rows.

No timed assertions: this checks the harness, not the pipeline's speed.
"""

import pytest

from bench import run as bench_run
from features.build import TEMPLATE_CONTEXT
from pipeline import sql_models

pytestmark = pytest.mark.slow

HAS_PANDAS = bench_run.pandas_available()
PIPELINE_STEPS = ("stage load", "stage features", "stage detect", "end to end: run_local")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One harness run on users=20 weeks=2 (the Prefect flow steps are left out: the start-up step
    already runs a flow, and the flow's stages are the ones run_local measures)."""
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "results.md"
    outcome = bench_run.main([
        "--users", "20", "--weeks", "2", "--out", str(out), "--workdir", str(folder / "work"),
        "--skip", "flow,flow_running_api" if HAS_PANDAS else "flow,flow_running_api,pandas",
    ])
    return outcome, out, folder


def test_every_measured_step_runs(tiny):
    outcome, _, _ = tiny
    steps = {s.label: s for s in outcome.steps}
    expected = ["python start-up", "imports", "numba JIT (pyod members, SimHash, feature functions)", "Prefect API start-up, cold",
                "Prefect API start-up, warm",
                "generate world", "floor: DuckDB scan-and-aggregate", *PIPELINE_STEPS]
    if HAS_PANDAS:
        expected.append("pandas + scikit-learn")
    for label in expected:
        assert steps[label].status == "ok", f"{label}: {steps[label].note}"
        assert steps[label].wall_s > 0 and steps[label].peak_gib > 0
        assert steps[label].work_s is not None
    assert steps["end to end: goodhart run (Prefect)"].status == "skipped"
    assert steps["end to end: goodhart run (Prefect, API already running)"].status == "skipped"
    assert outcome.world_rows["token_usage"] > 0


def test_stages_are_timed_inside_the_end_to_end_run(tiny):
    outcome, _, _ = tiny
    e2e = next(s for s in outcome.steps if s.label == "end to end: run_local")
    top = [p["name"] for p in e2e.phases if p["depth"] == 1]
    # the stages as every run reports them (pipeline.progress), plain or Prefect
    assert top == ["opening the database", "loading input files", "building sessions, links and features",
                   "scoring weeks", "publishing"]
    tables = [p["name"] for p in e2e.phases if p["name"].startswith("table ")]
    assert tables == [f"table {name}" for name in sql_models.load("features", TEMPLATE_CONTEXT).order()]
    publish = sql_models.load("pipeline.publish")
    models = [p["name"] for p in e2e.phases if p["name"].startswith("model ")]
    assert models == [f"model {name}" for name in publish.order("publish", kinds=(*sql_models.MATERIALIZED, "script"))]
    assert all(p["peak_gib"] > 0 and p["seconds"] >= 0 for p in e2e.phases)


def test_the_daily_run_replaces_the_republished_weeks_of_the_score_tables(tiny):
    outcome, _, _ = tiny
    daily = next(s for s in outcome.steps if s.label.startswith("daily run:"))
    assert daily.status == "ok", daily.note
    models = {p["name"] for p in daily.phases if p["name"].startswith("model ")}
    assert {"model session_scores (republished weeks)", "model user_week_scores (republished weeks)"} <= models


def test_results_file_has_a_row_per_step(tiny):
    outcome, out, _ = tiny
    text = out.read_text()
    assert text.startswith("# Goodhart benchmark results")
    assert f"## {outcome.size.label} token rows" in text
    assert "| step | kind | wall s | CPU s | work s | peak RSS GiB |" in text
    for step in outcome.steps:
        assert f"| {step.label} | {step.kind} |" in text
    assert "- machine: " in text and "CPUs (nproc)" in text
    assert "### Where the end-to-end run goes" in text
    assert "### Where the daily run goes" in text
    assert "x the floor" in text


def test_work_folder_is_cleaned_up_and_the_section_is_replaced(tiny):
    outcome, out, folder = tiny
    assert not (folder / "work" / "world").exists()
    section = f"## {outcome.size.label} token rows"
    bench_run.write_results(out, bench_run.section(outcome), outcome.size.label)
    bench_run.write_results(out, "## 10M token rows\n\nother\n", "10M")
    text = out.read_text()
    assert text.count(section) == 1
    assert text.index("## 10M token rows") < text.index(section)  # sizes first, custom worlds after


def test_an_error_inside_open_phases_reaches_the_caller():
    # a stage opened inside a phase and never closed (its run raised): the run's own error comes
    # out, not a complaint about the phases, and every phase is closed with its time
    from bench.steps import Meter

    meter = Meter()
    with pytest.raises(ValueError, match="out of memory"):
        with meter.phase("run_local"):
            meter.start("building sessions, links and features")
            raise ValueError("out of memory")
    assert [r["name"] for r in meter.records] == ["run_local", "building sessions, links and features"]
    assert all(r.get("seconds") is not None for r in meter.records) and meter._open == []
